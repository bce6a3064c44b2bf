"""Latent-space work on sentences: the SentenceVAE estimator (sample, reconstruct, interpolate, neighbours) and
its measurements (metrics)."""
