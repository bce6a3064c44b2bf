"""Test-set measurements: the ELBO and its terms, bits/dim, the importance-sampled NLL with its standard
error, posterior-collapse diagnostics and sample quality. Nats per example unless named otherwise."""
from __future__ import annotations

import contextlib
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import torch
from tqdm.auto import tqdm

from . import diagnostics
from .errors import VaekitError, check_count
from .models import VAEModule, noise
from .data.batches import binarize_once, to_unit_float

LOG2 = math.log(2.0)
BLOCK_ELEMENTS = 2 ** 20  # decoder outputs per call on CPU: 4 MB blocks; 64 MB ones miss the cache, 1 MB ones pay Python per call
GPU_BLOCK_ELEMENTS = 2 ** 26  # a GPU wants big launches, and has the memory for them (256 MB blocks)


@torch.no_grad()
def iw_log_likelihood(module, x: torch.Tensor, k: int, max_elements: int | None = None,
                      verbose: bool = False, seed: int = 0) -> torch.Tensor:
    """Per-example log p(x) estimates (N,) from k importance samples (Burda et al. 2016, eq. 8).

    x is unit-scaled. Examples go in groups small enough that k samples of each make about
    max_elements decoder outputs per call (default: by device); the module combines its chunks with one
    logsumexp. Each example's samples come from its own generator (seed and a hash of its bytes), so an
    estimate depends neither on the other examples in x nor on how many threads score them.
    """
    check_count("k (importance samples per example)", k)
    module.eval()
    dev = next(module.parameters()).device
    max_elements = max_elements or (GPU_BLOCK_ELEMENTS if dev.type == "cuda" else BLOCK_ELEMENTS)
    per_call = max(1, max_elements // (math.prod(module.shape) * k))
    groups = [x[i:i + per_call] for i in range(0, len(x), per_call)]

    def score(xb: torch.Tensor) -> torch.Tensor:
        xb = xb.to(dev)
        with torch.no_grad(), noise.per_example(noise.example_seeds(xb, seed)):  # grad mode is per thread
            return module.iw_log_likelihood(xb, k, max_elements).cpu()

    workers = min(torch.get_num_threads(), len(groups)) if dev.type == "cpu" else 1
    out = []
    with tqdm(total=len(x), disable=not verbose, file=sys.stderr, unit="ex", desc=f"IS-NLL k={k}",
              mininterval=1.0) as bar, _single_threaded_workers(workers) as pool:
        for xb, log_px in zip(groups, map(score, groups) if pool is None else pool.map(score, groups)):
            out.append(log_px)
            bar.update(len(xb))
    return torch.cat(out)


@contextlib.contextmanager
def _single_threaded_workers(n: int):
    """n threads that each run torch ops on one core (None for n < 2).

    A group's 1000 x 400 x 784 product splits over cores with some loss: on the 2-core benchmark machine
    two groups at a time, one core each, score ~5% faster than one group on both (interleaved A/B).
    torch's thread count is per thread; its default for threads started later is restored after.
    """
    if n < 2:
        yield None
        return
    threads = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(n, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            yield pool
    finally:
        torch.set_num_threads(threads)


def _mean_stderr(v: torch.Tensor) -> tuple[float, float]:
    v = v.double()
    return v.mean().item(), (v.std() / math.sqrt(len(v))).item() if len(v) > 1 else 0.0


def evaluate(model, x, k: int = 100, seed: int = 0, binarize: bool = False,
             quality_net=None, quality_samples: int = 10000, verbose: bool = False) -> dict:
    """Metrics of a fitted model (a vaekit.LatentModel) on x (a test split), as a JSON-ready dict.

    binarize: read x as pixel probabilities and score one Bernoulli draw of it (fixed by seed): the
    test protocol of dynamically binarised MNIST. quality_net: a quality.FeatureNet, to add the
    FD-classifier and precision/recall of model samples against x.
    """
    check_count("k (importance samples per example)", k)
    check_count("quality_samples", quality_samples)
    if len(x) == 0:
        raise VaekitError("no test examples to evaluate; pass at least one")
    module = model.module_
    dev = model._device()
    x_unit = to_unit_float(model._as_tensor(x)).float()
    if binarize:
        x_unit = binarize_once(x_unit, seed)
    n_dims = math.prod(model.input_shape_)
    result: dict = {"n_examples": len(x_unit), "n_dims": n_dims, "binarized": binarize}
    with noise.seeded(seed, dev), torch.no_grad():
        module.eval()
        rec, kl = [], []
        for i in range(0, len(x_unit), 1000):
            r, q = _elbo_terms(module, x_unit[i:i + 1000].to(dev))
            rec.append(r.cpu())
            kl.append(None if q is None else q.cpu())
        rec_t = torch.cat(rec)
        result["reconstruction_nats"], result["reconstruction_stderr"] = _mean_stderr(rec_t)
        if module.variational:
            neg_elbo = rec_t + torch.cat(kl)
            result["neg_elbo_nats"], result["neg_elbo_stderr"] = _mean_stderr(neg_elbo)
            result["neg_elbo_bits_per_dim"] = result["neg_elbo_nats"] / (n_dims * LOG2)
            result["kl_nats"] = torch.cat(kl).double().mean().item()
            t0 = time.perf_counter()
            nll = -iw_log_likelihood(module, x_unit, k, verbose=verbose, seed=seed)
            result["iw_k"] = k
            result["nll_nats"], result["nll_stderr"] = _mean_stderr(nll)
            result["nll_bits_per_dim"] = result["nll_nats"] / (n_dims * LOG2)
            result["nll_seconds"] = round(time.perf_counter() - t0, 2)
            result.update(_latent_diagnostics(module, x_unit, dev))
        else:
            codes = torch.from_numpy(model.transform(x_unit.numpy()))
            result["latent_dim"], result["active_units"] = codes.shape[1], diagnostics.active_units(codes)
    if quality_net is not None:
        from .quality import sample_quality

        fake = model.sample(min(quality_samples, len(x_unit)), random_state=seed)
        result.update(sample_quality(quality_net, x_unit.numpy(), fake))
    return result


def _elbo_terms(module, x: torch.Tensor):
    """(-log p(x|z), KL) per example for a VAE of any training k, (-log p(x|f(x)), None) for an autoencoder."""
    if module.variational:
        nll, log_ratio = module.bound_terms(x, 1, analytic_top=True)
        return nll[0], -log_ratio.expand_as(nll)[0]
    return module.loss(x)["rec"], None


@torch.no_grad()
def _latent_diagnostics(module: VAEModule, x: torch.Tensor, dev) -> dict:
    mu, log_var = (torch.cat(t).cpu() for t in zip(*(module.posterior_params(x[i:i + 1000].to(dev))
                                                      for i in range(0, len(x), 1000))))
    out = {"latent_dim": mu.shape[1], "active_units": diagnostics.active_units(mu),
           "mutual_info_nats": diagnostics.mutual_information(mu, log_var, torch.Generator().manual_seed(0))}
    if module.learned_prior is None:  # per-dimension KL has a closed form only against N(0, I)
        out["kl_per_dim"] = [round(v, 4) for v in diagnostics.kl_per_dim(mu, log_var)]
    warning = diagnostics.collapse_warning(out["active_units"], out["latent_dim"])
    if warning:
        out["warning"] = warning
    return out
