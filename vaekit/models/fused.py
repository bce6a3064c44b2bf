"""The textbook VAE's loss with its backward written out: MLP encoder and decoder with ReLU, a Gaussian
posterior, the N(0, I) prior with its KL in closed form, and a Bernoulli likelihood.

At MNIST scale what stands between a training step and the time of its matrix products is mostly
bookkeeping, so this model's step has two short paths:
- textbook_loss: one autograd node for the whole loss (autograd would record 28), so clipping,
  optimisers and DistributedDataParallel see the usual gradients; the evaluation and DDP path.
- textbook_loss_and_grads: forward and backward as plain calls that write .grad themselves. Autograd's
  engine costs ~0.3 ms a 784-400-20 step even for one node (saving tensors, calling back into Python,
  accumulating eight gradients): 6% of the step. The trainer takes it in one process.
Tests check both against autograd in float64.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def textbook_forward(x_in: torch.Tensor, x: torch.Tensor, eps: torch.Tensor, n_enc: int, params):
    """(rec, kl, saved): rec and kl each (B,), saved what textbook_backward needs. params are the Linear
    layers' (weight, bias) in order: encoder hidden layers, encoder head (mu and log-variance), decoder
    hidden layers, decoder head (logits).

    Activations are kept feature-major, (features, B): each layer is W @ h, which MKL runs 5-9% faster
    than the batch-major h @ W.t() at these shapes, and a head's mu and log-variance are contiguous rows.
    """
    ws, bs = params[0::2], params[1::2]
    acts = [x_in.t()]  # the input of each Linear layer, (features, B)
    h = acts[0]
    for i in range(n_enc):
        h = torch.addmm(bs[i].unsqueeze(1), ws[i], h).relu_()
        acts.append(h)
    mu, log_var = torch.addmm(bs[n_enc].unsqueeze(1), ws[n_enc], h).chunk(2, dim=0)
    std = log_var.mul(0.5).exp_()
    eps = eps.t()
    h = torch.addcmul(mu, std, eps)  # z
    acts.append(h)
    for i in range(n_enc + 1, len(ws) - 1):
        h = torch.addmm(bs[i].unsqueeze(1), ws[i], h).relu_()
        acts.append(h)
    logits = torch.addmm(bs[-1].unsqueeze(1), ws[-1], h)
    x = x.t()
    p = torch.sigmoid(logits)  # the backward's, and the log terms of the forward's
    rec = _bernoulli_nll_columns(logits, x, p)
    var = std * std
    kl = torch.addcmul(var, mu, mu).sub_(log_var).sum(0).sub_(mu.shape[0]).mul_(0.5)
    return rec, kl, (p, x, mu, std, var, eps, *acts, *ws)


def textbook_backward(saved, n_enc: int, g_rec, g_kl, out=None) -> list[torch.Tensor]:
    """The gradients of sum(g_rec * rec + g_kl * kl) for every weight and bias, in params' order;
    g_rec and g_kl are numbers or (B,) tensors. out: tensors to write them into (None: new ones)."""
    p, x, mu, std, var, eps, *rest = saved
    n = len(rest) // 2
    acts, ws = rest[:n], rest[n:]
    grads = list(out) if out is not None else [None] * (2 * n)
    d = torch.sub(p, x).mul_(g_rec)  # d loss / d logits, (pixels, B)
    for i in range(n - 1, -1, -1):
        a = acts[i]
        grads[2 * i] = torch.mm(d, a.t(), out=grads[2 * i])
        grads[2 * i + 1] = torch.sum(d, 1, out=grads[2 * i + 1])
        if i == 0:
            break
        d = ws[i].t().mm(d)  # d loss / d acts[i]
        if i == n_enc + 1:  # acts[i] is z = mu + std * eps: to (d mu, d log_var)
            # d z / d log_var = eps * std / 2; d kl / d log_var = (var - 1) / 2; d kl / d mu = mu
            d_log_var = (d * eps).mul_(std).add_((var - 1).mul_(g_kl)).mul_(0.5)
            d = torch.cat([d.add(mu * g_kl), d_log_var], dim=0)
        else:
            d = torch.ops.aten.threshold_backward(d, a, 0)  # ReLU: zero where the output was 0
    return grads


class _TextbookVAELoss(torch.autograd.Function):
    """(rec, kl) of textbook_forward as one autograd node."""

    @staticmethod
    def forward(ctx, x_in, x, eps, n_enc: int, *params):
        rec, kl, saved = textbook_forward(x_in, x, eps, n_enc, params)
        ctx.n_enc = n_enc
        ctx.save_for_backward(*saved)
        return rec, kl

    @staticmethod
    def backward(ctx, g_rec, g_kl):
        return (None, None, None, None, *textbook_backward(ctx.saved_tensors, ctx.n_enc, g_rec, g_kl))


def _bernoulli_nll_columns(logits: torch.Tensor, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """-log p(x|logits) of each column, (B,), given p = sigmoid(logits) (the backward needs it anyway).

    softplus(l) = relu(l) - log sigmoid(|l|), and sigmoid(|l|) = max(p, 1 - p). The logs are taken of
    products of 16 such factors (each in [1/2, 1], so no underflow), one log per group of pixels: this
    costs a third of softplus, whose exp is slow on the CPU. In float32 the sum is as accurate as
    softplus's (both ~2e-7 relative); the gradient never sees it, it comes from p alone.
    """
    n, b = logits.shape
    group = math.gcd(n, 16)
    q = torch.maximum(p, 1 - p).view(n // group, group, b).prod(1)
    return torch.addcmul(logits.clamp_min(0), logits, x, value=-1).sum(0).sub_(q.log_().sum(0))


def textbook_layers(encoder: nn.Module, decoder: nn.Module) -> tuple[int, list[nn.Linear]] | None:
    """(number of encoder hidden layers, every Linear in order) when encoder and decoder are plain
    Linear + ReLU stacks; None when anything else is in them (convolutions, batch norm, dropout, ...)."""
    layers: list[nn.Linear] = []
    for net in (encoder, decoder):
        body = list(net.body)
        if any(not isinstance(m, nn.Linear) for m in body[0::2]) or any(type(m) is not nn.ReLU for m in body[1::2]) \
                or len(body) % 2:
            return None
        features = getattr(net, "features", None)  # the encoder's: Flatten, or convolutions
        if getattr(net, "upsample", None) is not None or not isinstance(features, (nn.Flatten, type(None))):
            return None
        layers += [*body[0::2], net.head]
    if any(layer.bias is None for layer in layers):
        return None
    return len(encoder.body) // 2, layers


def textbook_loss(n_enc: int, layers: list[nn.Linear], x_in: torch.Tensor, x: torch.Tensor,
                  eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(-log p(x|z), KL(q(z|x_in) || N(0, I))), each (B,), with z = mu + std * eps; inputs flattened."""
    params = [t for layer in layers for t in (layer.weight, layer.bias)]
    return _TextbookVAELoss.apply(x_in.flatten(1), x.flatten(1), eps, n_enc, *params)


@torch.no_grad()
def textbook_loss_and_grads(n_enc: int, layers: list[nn.Linear], x_in: torch.Tensor, x: torch.Tensor,
                            eps: torch.Tensor, g_rec: float, g_kl: float) -> tuple[torch.Tensor, torch.Tensor]:
    """textbook_loss's (rec, kl), detached, with each parameter's .grad set to the gradient of
    g_rec * rec.sum() + g_kl * kl.sum(), written over the tensor it held. Reusing the same 2.6 MB of
    gradients every step rather than fresh ones made 784-400-20 steps 3-4% faster (fewer cache misses)."""
    params = [t for layer in layers for t in (layer.weight, layer.bias)]
    rec, kl, saved = textbook_forward(x_in.flatten(1), x.flatten(1), eps, n_enc, params)
    buffers = [t.grad if t.grad is not None and t.grad.is_contiguous() and t.grad.dtype == t.dtype else None
               for t in params]
    for t, g in zip(params, textbook_backward(saved, n_enc, g_rec, g_kl, out=buffers)):
        t.grad = g
    return rec, kl
