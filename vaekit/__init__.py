"""vaekit: autoencoders and variational autoencoders, and the work people do in their latent spaces."""
from .errors import VaekitError, VaekitWarning

__version__ = "0.1.0"
__all__ = ["VAE", "Autoencoder", "LatentModel", "TabularVAE", "SentenceVAE", "AnomalyDetector", "load_detector",
           "Codec", "VaekitError", "VaekitWarning", "estimator_for", "load", "__version__"]
_ESTIMATOR_NAMES = {"VAE", "Autoencoder", "LatentModel", "estimator_for", "load"}


def __getattr__(name: str):
    # the estimators import scikit-learn (~70 MB); a training process from the command line never needs it
    if name in _ESTIMATOR_NAMES:
        from . import estimators

        return getattr(estimators, name)
    if name == "TabularVAE":
        from .tasks.synthesis.synthesizer import TabularVAE

        return TabularVAE
    if name == "SentenceVAE":
        from .tasks.text.sentences import SentenceVAE

        return SentenceVAE
    if name == "Codec":
        from .tasks.compression import Codec

        return Codec
    if name in ("AnomalyDetector", "load_detector"):
        from .tasks.anomaly import detector

        return getattr(detector, name)
    raise AttributeError(f"module 'vaekit' has no attribute {name!r}")
