"""Test-set measurements: ELBO and its terms, bits/dim, active units, importance-sampled NLL."""
from __future__ import annotations

import math

import numpy as np
import torch

from .estimators import LatentModel
from .train import to_unit_float

LOG2 = math.log(2.0)


@torch.no_grad()
def iw_log_likelihood(module, x: torch.Tensor, k: int, batch_size: int = 500,
                      max_elements: int = 2 ** 24) -> torch.Tensor:
    """Per-example log p(x) estimates (N,) from k importance samples (Burda et al. 2016, eq. 8)."""
    module.eval()
    dev = next(module.parameters()).device
    return torch.cat([module.iw_log_likelihood(to_unit_float(x[i:i + batch_size].to(dev)), k, max_elements).cpu()
                      for i in range(0, len(x), batch_size)])


@torch.no_grad()
def active_units(codes: np.ndarray, threshold: float = 0.01) -> int:
    """Latent units whose posterior mean varies across the data: Cov_x(E[z_u|x]) > threshold (Burda et al.)."""
    return int((np.var(codes, axis=0) > threshold).sum())


def evaluate(model: LatentModel, x, k: int = 100, seed: int = 0) -> dict:
    """Metrics on x (a test split) as a JSON-ready dict; nats per example unless named otherwise."""
    xt = model._as_tensor(x)
    n_dims = math.prod(model.input_shape_)
    module = model.module_
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module.eval()
        terms = {key: [] for key in ("rec", "kl")}
        with torch.no_grad():
            for i in range(0, len(xt), 1000):
                losses = module.loss(to_unit_float(xt[i:i + 1000].to(model._device())))
                for key in terms:
                    if key in losses:
                        terms[key].append(losses[key].cpu())
        rec = torch.cat(terms["rec"]).double()
        result = {"n_examples": len(xt), "n_dims": n_dims, "reconstruction_nats": rec.mean().item()}
        codes = model.transform(x)
        result["active_units"] = active_units(codes)
        result["latent_dim"] = codes.shape[1]
        if terms["kl"]:
            kl = torch.cat(terms["kl"]).double()
            neg_elbo = rec + kl
            result.update({
                "neg_elbo_nats": neg_elbo.mean().item(),
                "neg_elbo_stderr": (neg_elbo.std() / math.sqrt(len(neg_elbo))).item(),
                "neg_elbo_bits_per_dim": neg_elbo.mean().item() / (n_dims * LOG2),
                "kl_nats": kl.mean().item(),
            })
            nll = -iw_log_likelihood(module, xt, k).double()
            result.update({
                "iw_k": k,
                "nll_nats": nll.mean().item(),
                "nll_stderr": (nll.std() / math.sqrt(len(nll))).item(),
                "nll_bits_per_dim": nll.mean().item() / (n_dims * LOG2),
            })
    return result
