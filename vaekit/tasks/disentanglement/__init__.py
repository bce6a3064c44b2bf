"""How well single latents capture single ground-truth factors, on data whose factors are known (the
dSprites-like grid): the FactorVAE metric and the mutual information gap (metrics)."""
from .metrics import factor_vae_metric, factors_of_run, mig

__all__ = ["factor_vae_metric", "factors_of_run", "mig"]
