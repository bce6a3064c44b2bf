"""What makes an autoencoder sparse, denoising, contractive, k-sparse or geometry-preserving.

Each penalty returns one value per example, (B,), like the reconstruction term: batch-level
penalties (sparsity, embedding) are spread evenly over the batch's examples, so their batch mean is
the penalty itself.
"""
from __future__ import annotations

import torch

from . import noise

LATENT_ACTIVATIONS = {"linear": lambda a: a, "sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}


def activation_slope(name: str, a: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """d z / d a of an element-wise code activation, from its input a and output z."""
    if name == "sigmoid":
        return z * (1 - z)
    if name == "tanh":
        return 1 - z.square()
    if name == "relu":
        return (a > 0).to(a.dtype)
    return torch.ones_like(a)


def corrupt(x: torch.Tensor, kind: str, level: float) -> torch.Tensor:
    """Denoising autoencoders (Vincent et al. 2008/2010): masking noise zeroes a fraction of the
    inputs, salt-and-pepper sets a fraction to 0 or 1, Gaussian noise adds N(0, level^2). 'none' returns
    x itself (callers test identity to know whether the input was corrupted)."""
    if kind == "mask":
        return x * (noise.rand(x.shape, 0, x) >= level).to(x.dtype)
    if kind == "salt_pepper":
        u = noise.rand(x.shape, 0, x)
        flip = u < level
        return torch.where(flip, (u < level / 2).to(x.dtype), x)
    if kind == "gaussian":
        return x + level * noise.randn(x.shape, 0, x)
    return x


def keep_top_k(z: torch.Tensor, k: int) -> torch.Tensor:
    """k-sparse codes (Makhzani & Frey 2014): each row keeps its k largest units, the rest are 0.
    Gradients flow only through the kept units."""
    idx = z.topk(k, dim=-1).indices
    return torch.zeros_like(z).scatter(-1, idx, z.gather(-1, idx))


def bernoulli_kl(rho: float, rho_hat: torch.Tensor) -> torch.Tensor:
    """KL(Bernoulli(rho) || Bernoulli(rho_hat)) per unit (the sparse-autoencoder penalty, Ng 2011)."""
    rho_hat = rho_hat.clamp(1e-6, 1 - 1e-6)
    return rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))


def sparsity_penalty(z: torch.Tensor, rho: float) -> torch.Tensor:
    """sum_u KL(rho || mean over the batch of z_u), spread over the batch: (B,)."""
    return bernoulli_kl(rho, z.mean(0)).sum().expand(len(z))


def contractive_closed_form(a: torch.Tensor, z: torch.Tensor, weight: torch.Tensor, activation: str) -> torch.Tensor:
    """||J||_F^2 of z = s(W x + b), one dense layer: J = diag(s'(a)) W, so sum_j s'(a_j)^2 ||W_j||^2 (Rifai 2011)."""
    return (activation_slope(activation, a, z).square() * weight.square().sum(1)).sum(-1)


def contractive_exact(code_fn, x: torch.Tensor) -> torch.Tensor:
    """||d code / d x||_F^2 per example for any encoder, by reverse-mode Jacobians (one pass per code unit)."""
    from torch.func import jacrev, vmap

    jac = vmap(jacrev(lambda xi: code_fn(xi.unsqueeze(0))[0]))(x)  # (B, latent, *x.shape[1:])
    return jac.flatten(1).square().sum(1)


def embedding_penalty(x: torch.Tensor, z: torch.Tensor, kind: str) -> torch.Tensor:
    """Codes that keep the data's geometry within the batch (Yu et al. 2013), spread over the batch: (B,).

    'laplacian': sum_ij W_ij ||z_i - z_j||^2 / sum_ij W_ij with heat-kernel weights W_ij = exp(-||x_i - x_j||^2 / t),
    t the batch's median squared distance (Laplacian eigenmaps, Belkin & Niyogi 2003).
    'mds': mean_ij (d^z_ij - d^x_ij)^2 with each distance matrix divided by its mean (scale-free metric MDS stress).
    """
    dx = torch.cdist(x.flatten(1), x.flatten(1))  # (B, B)
    dz = torch.cdist(z, z)
    if kind == "laplacian":
        d2 = dx.square()
        w = torch.exp(-d2 / d2.median().clamp_min(1e-12)).detach()
        value = (w * dz.square()).sum() / w.sum()
    else:
        value = (dz / dz.mean().clamp_min(1e-12) - dx / dx.mean().clamp_min(1e-12)).square().mean()
    return value.expand(len(z))


@torch.no_grad()
def neighbour_targets(x: torch.Tensor, k: int, chunk: int = 256) -> torch.Tensor:
    """Generalised autoencoder targets (Wang et al. 2014): for every example the heat-kernel weighted mean
    of its k nearest neighbours (itself included), so the squared or cross-entropy error against it equals,
    up to a constant, the weighted reconstruction error of the neighbours themselves. (N, *shape), float32."""
    flat = x.flatten(1).float()
    if x.dtype == torch.uint8:
        flat = flat / 255
    sq = flat.square().sum(1)
    idx, dist = [], []
    for i in range(0, len(flat), chunk):
        d2 = (sq[i:i + chunk, None] - 2 * flat[i:i + chunk] @ flat.T + sq[None]).clamp_min(0)  # (chunk, N)
        top = d2.topk(k + 1, dim=1, largest=False)  # itself at distance 0, and k neighbours
        idx.append(top.indices)
        dist.append(top.values)
    idx, d2 = torch.cat(idx), torch.cat(dist)
    t = d2[:, 1:].mean().clamp_min(1e-12)  # heat-kernel width: the mean squared neighbour distance
    w = torch.exp(-d2 / t)
    w = w / w.sum(1, keepdim=True)
    out = torch.empty_like(flat)
    for i in range(0, len(flat), chunk):
        out[i:i + chunk] = (w[i:i + chunk, :, None] * flat[idx[i:i + chunk]]).sum(1)
    return out.view(len(x), *x.shape[1:])


def init_weights(module: torch.nn.Module, scheme: str) -> None:
    """Re-initialise every Linear / conv weight by scheme; biases start at 0."""
    if scheme == "default":
        return
    for m in module.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            if scheme == "xavier":
                torch.nn.init.xavier_uniform_(m.weight)
            elif scheme == "kaiming":
                torch.nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            else:
                torch.nn.init.orthogonal_(m.weight)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
