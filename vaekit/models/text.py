"""Sentence models: the sentence VAE (Bowman et al. 2016, "Generating Sentences from a Continuous Space") and the
same network with its latent removed, a recurrent language model, so that the two compare fairly.

An LSTM (or GRU) encoder reads the sentence; its last state gives q(z|x) = N(mu, diag sigma^2). The decoder is
a recurrent language model that sees z twice: its first state is tanh(W z + b), and z is appended to every
input embedding. With W, b and z's input weights at zero it is exactly the language model. Against posterior
collapse (the decoder ignoring z, KL -> 0): word dropout replaces decoder inputs by <unk>, free bits leave a
latent unit's KL unpenalised below a floor, batch-normalised posterior means hold each unit's expected KL
above a floor, and the trainer's KL schedules (kl_warmup_epochs, kl_cycles) anneal the KL weight. Every loss
is per sentence, in nats; a sentence's tokens end with </s>.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TextModelConfig
from ..data.text.batches import TokenBatch
from ..data.text.tokens import BOS, EOS, PAD, UNK
from . import noise
from .priors import gaussian_log_prob_from_eps, standard_normal_log_prob


LOGIT_BUDGET = 1 << 24  # decoder logits (floats) one importance-sampling pass holds at a time: 64 MB


def _rnn(cfg: TextModelConfig, n_in: int) -> nn.Module:
    return (nn.LSTM if cfg.cell == "lstm" else nn.GRU)(n_in, cfg.hidden_dim, batch_first=True)


class SentenceDecoder(nn.Module):
    """p(x | z) = prod_t p(x_t | x_<t, z) by a recurrent layer; latent_dim=0 makes it a plain language model."""

    def __init__(self, cfg: TextModelConfig, vocab_size: int, latent_dim: int):
        super().__init__()
        self.cfg, self.latent_dim = cfg, latent_dim
        self.embed = nn.Embedding(vocab_size, cfg.embed_dim, padding_idx=PAD)
        self.rnn = _rnn(cfg, cfg.embed_dim + latent_dim)
        self.init_state = nn.Linear(latent_dim, cfg.hidden_dim) if latent_dim else None
        self.out = nn.Linear(cfg.hidden_dim, vocab_size)
        self.drop = nn.Dropout(cfg.dropout)

    def initial(self, z: torch.Tensor | None, batch: int, device) -> tuple | torch.Tensor | None:
        if z is None:
            return None  # zeros
        h = torch.tanh(self.init_state(z))[None]
        return (h, torch.zeros_like(h)) if self.cfg.cell == "lstm" else h

    def forward(self, inputs: torch.Tensor, z: torch.Tensor | None, state=None) -> tuple[torch.Tensor, object]:
        """Logits (B, T, V) of the next token after each input token, and the last state. The layer is causal,
        so padding after a sentence's end changes none of its logits."""
        e = self.drop(self.embed(inputs))
        if z is not None:
            e = torch.cat([e, z[:, None].expand(-1, e.shape[1], -1)], -1)
        if state is None:
            state = self.initial(z, len(inputs), inputs.device)
        out, state = self.rnn(e, state)
        return self.out(self.drop(out)), state

    def token_nll(self, x: TokenBatch, z: torch.Tensor | None, word_dropout: float = 0.0) -> torch.Tensor:
        """-log p(x | z) of each sentence, (B,): its tokens after <s>, </s> included."""
        inputs = teacher_inputs(x)
        if word_dropout > 0 and self.training:
            drop = noise.rand(inputs.shape, 0, z if z is not None else inputs.float()) < word_dropout
            drop[:, 0] = False  # <s> stays
            inputs = inputs.masked_fill(drop, UNK)
        logits, _ = self(inputs, z)
        nll = F.cross_entropy(logits.transpose(1, 2).float(), x.ids, reduction="none")
        return (nll * token_mask(x)).sum(1)


def teacher_inputs(x: TokenBatch) -> torch.Tensor:
    """The decoder's inputs for sentences x: <s> and each sentence's tokens but its last (teacher forcing)."""
    return torch.cat([torch.full_like(x.ids[:, :1], BOS), x.ids[:, :-1]], 1)


def token_mask(x: TokenBatch) -> torch.Tensor:
    """(B, T): True at each sentence's own tokens, False at its padding."""
    return torch.arange(x.ids.shape[1], device=x.ids.device)[None] < x.lengths[:, None]


class SentenceVAEModule(nn.Module):
    estimator = "SentenceVAE"
    variational = True

    def __init__(self, cfg: TextModelConfig, shape: tuple[int, ...]):
        super().__init__()
        self.cfg, self.shape = cfg, tuple(shape)
        vocab = int(shape[0])
        self.embed = nn.Embedding(vocab, cfg.embed_dim, padding_idx=PAD)
        self.encoder = _rnn(cfg, cfg.embed_dim)
        self.to_posterior = nn.Linear(cfg.hidden_dim, 2 * cfg.latent_dim)
        if cfg.posterior_bn > 0:  # BN-VAE: means normalised over the batch, scale fixed, shift learned
            self.mu_norm = nn.BatchNorm1d(cfg.latent_dim, affine=False)
            self.mu_shift = nn.Parameter(torch.zeros(cfg.latent_dim))
        self.decoder = SentenceDecoder(cfg, vocab, cfg.latent_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.kl_scale = 1.0  # set by the trainer's KL schedules

    def posterior_params(self, x: TokenBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log_var) of q(z|x), each (B, latent_dim), from the encoder's state at each sentence's last token."""
        out, _ = self.encoder(self.drop(self.embed(x.ids)))
        last = out[torch.arange(len(x), device=out.device), (x.lengths - 1).clamp(min=0)]
        mu, log_var = self.to_posterior(last).float().chunk(2, -1)
        if self.cfg.posterior_bn > 0:
            norm = self.mu_norm
            if self.training and len(mu) == 1:  # one sentence has no batch statistics: use the running ones
                normed = F.batch_norm(mu, norm.running_mean, norm.running_var, eps=norm.eps)
            else:
                normed = norm(mu)
            mu = self.cfg.posterior_bn * normed + self.mu_shift
        return mu, log_var

    def loss(self, x: TokenBatch) -> dict[str, torch.Tensor]:
        """Per sentence: rec = -log p(x|z) at one z ~ q(z|x), kl = KL(q(z|x) || N(0, I)), and the loss
        rec + beta * kl_scale * (the KL of the units above the free-bits floor)."""
        mu, log_var = self.posterior_params(x)
        eps = noise.randn(mu.shape, 0, mu)
        z = mu + (0.5 * log_var).exp() * eps
        rec = self.decoder.token_nll(x, z, self.cfg.word_dropout)
        kl_units = 0.5 * (mu.square() + log_var.exp() - 1.0 - log_var)  # (B, D)
        penalised = kl_units
        if self.cfg.free_bits > 0 and self.training:
            penalised = kl_units * (kl_units.mean(0) > self.cfg.free_bits).detach()
        kl = kl_units.sum(-1)
        return {"loss": rec + self.cfg.beta * self.kl_scale * penalised.sum(-1), "rec": rec, "kl": kl}

    @torch.no_grad()
    def log_likelihood(self, x: TokenBatch, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """log p(x) of each sentence by importance sampling with q(z|x), (B,): log mean_k p(x|z_k) p(z_k) / q(z_k|x)
        (Burda et al. 2016). k=1 is one draw of the ELBO; larger k tightens the bound towards log p(x)."""
        mu, log_var = self.posterior_params(x)
        eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device)
        z = mu + (0.5 * log_var).exp() * eps  # (k, B, D)
        # draws in chunks, so that the decoder's logits (draws * B * T * vocabulary) stay near LOGIT_BUDGET
        chunk = max(1, LOGIT_BUDGET // (x.ids.numel() * self.decoder.out.out_features))
        log_px = []
        for i in range(0, k, chunk):
            n = len(z[i:i + chunk])
            rep = TokenBatch(x.ids.repeat(n, 1), x.lengths.repeat(n))
            log_px.append(-self.decoder.token_nll(rep, z[i:i + n].reshape(-1, z.shape[-1])).view(n, -1))
        log_px = torch.cat(log_px)
        log_w = log_px + standard_normal_log_prob(z) - gaussian_log_prob_from_eps(eps, log_var)
        return torch.logsumexp(log_w.double(), 0) - math.log(k)


class LanguageModelModule(nn.Module):
    """The sentence VAE's decoder with no latent: a recurrent language model, trained by the same trainer."""

    estimator = "SentenceVAE"
    variational = False

    def __init__(self, cfg: TextModelConfig, shape: tuple[int, ...]):
        super().__init__()
        self.cfg, self.shape = cfg, tuple(shape)
        self.decoder = SentenceDecoder(cfg, int(shape[0]), 0)

    def loss(self, x: TokenBatch) -> dict[str, torch.Tensor]:
        rec = self.decoder.token_nll(x, None, self.cfg.word_dropout)
        return {"loss": rec, "rec": rec}

    @torch.no_grad()
    def log_likelihood(self, x: TokenBatch, k: int = 1, generator=None) -> torch.Tensor:
        """The exact log p(x) of each sentence (k is ignored: there is no latent to sample)."""
        return -self.decoder.token_nll(x, None).double()


@torch.no_grad()
def generate(decoder: SentenceDecoder, z: torch.Tensor | None, n: int, max_length: int, method: str = "greedy",
             temperature: float = 1.0, beam: int = 5, generator: torch.Generator | None = None,
             allow_unk: bool = True) -> list[list[int]]:
    """Token ids of n sentences (without </s>) from p(x | z): 'greedy' (the likeliest next token), 'sample'
    (drawn, logits divided by temperature) or 'beam' (beam search of width beam, by total log-probability).
    allow_unk=False never emits <unk>: the distribution is renormalised over the known tokens."""
    if method == "beam":
        return [_beam(decoder, None if z is None else z[i:i + 1], max_length, beam, allow_unk) for i in range(n)]
    device = decoder.out.weight.device
    token = torch.full((n, 1), BOS, dtype=torch.long, device=device)
    state, done = None, torch.zeros(n, dtype=torch.bool, device=device)
    out = []
    for _ in range(max_length + 1):
        logits, state = decoder(token, z, state)
        logits = _next_logits(logits, allow_unk)
        if method == "greedy":
            token = logits.argmax(-1, keepdim=True)
        else:
            probs = (logits / temperature).softmax(-1)
            token = torch.multinomial(probs.cpu(), 1, generator=generator).to(device)
        token = token.masked_fill(done[:, None], PAD)
        out.append(token[:, 0])
        done |= token[:, 0] == EOS
        if bool(done.all()):
            break
    ids = torch.stack(out, 1).tolist()
    return [[t for t in row[:row.index(EOS) if EOS in row else len(row)] if t != PAD] for row in ids]


def _next_logits(logits: torch.Tensor, allow_unk: bool) -> torch.Tensor:
    """The logits of each sequence's next token (from the decoder's (B, T, V) output), float32; with
    allow_unk=False, <unk> gets none of the mass."""
    logits = logits[:, -1].float()
    if not allow_unk:
        logits[:, UNK] = -math.inf
    return logits


def _beam(decoder: SentenceDecoder, z: torch.Tensor | None, max_length: int, width: int, allow_unk: bool
          ) -> list[int]:
    device = decoder.out.weight.device
    beams = [([], 0.0, None)]  # (tokens, log-probability, state)
    finished = []
    for _ in range(max_length + 1):
        tokens = torch.tensor([[b[0][-1] if b[0] else BOS] for b in beams], device=device)
        states = [b[2] for b in beams]
        state = None if states[0] is None else _stack_states(states)
        zz = None if z is None else z.expand(len(beams), -1)
        logits, state = decoder(tokens, zz, state)
        logp = _next_logits(logits, allow_unk).log_softmax(-1)
        scores = torch.tensor([b[1] for b in beams], device=device)[:, None] + logp
        top = scores.view(-1).topk(min(width, scores.numel()))
        new = []
        for s, flat in zip(top.values.tolist(), top.indices.tolist()):
            b, t = divmod(flat, logp.shape[1])
            seq = beams[b][0] + [t]
            if t == EOS:
                finished.append((seq[:-1], s))
            else:
                new.append((seq, s, _select_state(state, b)))
        beams = new[:width]
        if not beams or (finished and max(f[1] for f in finished) > max(b[1] for b in beams)):
            break
    best = max(finished or [(b[0], b[1]) for b in beams], key=lambda f: f[1])
    return best[0]


def _stack_states(states):
    if isinstance(states[0], tuple):
        return tuple(torch.cat([s[i] for s in states], 1) for i in range(2))
    return torch.cat(states, 1)


def _select_state(state, b: int):
    if isinstance(state, tuple):
        return tuple(s[:, b:b + 1] for s in state)
    return state[:, b:b + 1]
