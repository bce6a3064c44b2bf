"""How well a sentence model fits held-out text, and whether its VAE uses the code.

nll: nats per sentence, by importance sampling with q(z|x) for the VAE (an upper bound that tightens with k,
Burda et al. 2016), exact for the language model; ppl: exp(total nll / total tokens), the tokens counting each
sentence's </s>; kl: the mean KL(q(z|x) || p(z)); active_units: latent units whose posterior mean varies over the
data (Burda et al. 2016); mutual_info: I(x; z) under q (Hoffman & Johnson 2016); token_accuracy: share of tokens
that the decoder at z = E[z|x] predicts right from the true prefix; bleu: sacreBLEU of greedy reconstructions
against the input sentences.
"""
from __future__ import annotations

import torch

from ...data.text.batches import TextBatches, TokenBatch
from ...diagnostics import active_units, mutual_information
from ...models.priors import kl_to_standard_normal
from ...models.text import generate, teacher_inputs, token_mask

BATCH = 64  # sentences per pass: with k draws and the vocabulary, the logits stay near LOGIT_BUDGET


@torch.no_grad()
def text_metrics(module, data: TextBatches, tokenizer, k: int = 20, seed: int = 0, bleu_sentences: int = 1000
                 ) -> dict:
    """The measurements of module on data (sentences encoded by tokenizer); k importance samples per sentence."""
    from sacrebleu.metrics import BLEU

    module.eval()
    dev = next(module.parameters()).device
    data = data.to(dev)
    gen = torch.Generator(device=dev).manual_seed(seed)
    variational = module.variational
    nll, mus, log_vars, refs, hyps, correct = [], [], [], [], [], 0.0
    for i in range(0, len(data), BATCH):
        x = data.inputs(slice(i, i + BATCH))
        nll.append(-module.log_likelihood(x, k, gen).cpu())
        if variational:
            mu, log_var = module.posterior_params(x)
            mus.append(mu.cpu())
            log_vars.append(log_var.cpu())
            correct += float(_correct_tokens(module.decoder, x, mu))
            if i < bleu_sentences:  # greedy reconstructions of the first bleu_sentences
                m = min(len(x), bleu_sentences - i)
                longest = int(x.lengths[:m].max())
                hyps += [tokenizer.decode(ids) for ids in generate(module.decoder, mu[:m], m, longest)]
                refs += [tokenizer.decode(row[:n - 1]) for row, n in zip(x.ids[:m].tolist(), x.lengths[:m].tolist())]
    nll = torch.cat(nll)
    tokens = int(data.lengths.sum())
    out = {"sentences": len(data), "tokens": tokens, "nll": float(nll.mean()),
           "ppl": float(torch.exp(nll.sum() / tokens)), "importance_samples": k if variational else 0}
    if variational:
        mu, log_var = torch.cat(mus), torch.cat(log_vars)
        out.update(kl=float(kl_to_standard_normal(mu, log_var).mean()), active_units=active_units(mu),
                   mutual_info=mutual_information(mu, log_var, torch.Generator().manual_seed(seed)),
                   token_accuracy=correct / tokens, bleu=float(BLEU(force=True).corpus_score(hyps, [refs]).score))
    return out


def _correct_tokens(decoder, x: TokenBatch, z: torch.Tensor) -> torch.Tensor:
    """How many of x's tokens (</s> included) the decoder's likeliest next token gets right at z."""
    logits, _ = decoder(teacher_inputs(x), z)
    return ((logits.argmax(-1) == x.ids) & token_mask(x)).sum()
