"""vaekit: autoencoders and variational autoencoders, and the work people do in their latent spaces."""
from .errors import VaekitError
from .estimators import VAE, Autoencoder, LatentModel, estimator_for, load

__version__ = "0.1.0"
__all__ = ["VAE", "Autoencoder", "LatentModel", "VaekitError", "estimator_for", "load", "__version__"]
