"""Shared fixtures. Real data come from ../shared/data: skipped with a reason when absent, but under
CI (CI=true) the folder is always there and its absence is a failure."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def require_data(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        msg = f"real data not found at {path} (the shared data folder beside the project)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + "; CI must provide it")
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    require_data("mnist")
    return DATA


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    """(x_train uint8 (N,1,28,28), y_train, x_test, y_test) of real MNIST."""
    from vaekit.data import load_idx_set

    xtr, ytr, xte, yte = load_idx_set("mnist", mnist_dir, download=False)
    return xtr[:, None], ytr, xte[:, None], yte


@pytest.fixture(scope="session")
def mnist_small(mnist):
    """2,000 training and 500 test images: enough to learn something in seconds."""
    xtr, ytr, xte, yte = mnist
    return xtr[:2000], ytr[:2000], xte[:500], yte[:500]


@pytest.fixture(scope="session")
def fashion_small(mnist_dir):
    require_data("fashion-mnist")
    from vaekit.data import load_idx_set

    xtr, ytr, xte, yte = load_idx_set("fashion-mnist", DATA, download=False)
    return xtr[:2000, None], ytr[:2000], xte[:500, None], yte[:500]


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """Feature nets and downloads go to a temporary cache, never the user's ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    mp.delenv("VAEKIT_DATA", raising=False)
    yield
    mp.undo()


@pytest.fixture()
def rng():
    return np.random.default_rng(0)
