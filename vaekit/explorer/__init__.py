"""The latent-space explorer: `vaekit explore RUN` serves a local web page over one run folder (space: what is
shown of each modality; server: the app and its limits; static: the page)."""
from .server import Explorer, create_app
from .space import Space, open_space

__all__ = ["Explorer", "Space", "create_app", "open_space"]
