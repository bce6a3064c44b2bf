"""Shared fixtures. Real data are looked for where vaekit looks for named sets, so that a user's clone
with MNIST somewhere runs the real-data tests: ../shared/data, then $VAEKIT_DATA, then the per-user cache
(~/.cache/vaekit), each holding the sets in their own folders (mnist/, tabular/adult/, ...). A data test
skips with a reason when no root has its files; under CI (CI=true) ../shared/data is always there, and a
missing file is a failure."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def data_roots(environ=os.environ) -> list[Path]:
    """Where real data are looked for, in order. Read once at import: the private_cache fixture below
    then points XDG_CACHE_HOME at a temporary folder and clears VAEKIT_DATA for the tests themselves."""
    roots = [ROOT.parent / "shared" / "data"]
    if environ.get("VAEKIT_DATA"):
        roots.append(Path(environ["VAEKIT_DATA"]).expanduser())
    cache = Path(environ["XDG_CACHE_HOME"]) if environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return roots + [cache / "vaekit"]


DATA_ROOTS = data_roots()


def find_data(*parts: str, roots: list[Path] | None = None) -> Path | None:
    """The first root's parts that exist (a named set's folder may hold its IDX files raw or gzipped)."""
    for root in DATA_ROOTS if roots is None else roots:
        if root.joinpath(*parts).exists():
            return root.joinpath(*parts)
    return None


def require_data(*parts: str) -> Path:
    path = find_data(*parts)
    if path is None:
        where = ", ".join(str(r.joinpath(*parts)) for r in DATA_ROOTS)
        msg = f"real data not found at {where} (the shared data folder, $VAEKIT_DATA, or the per-user cache)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + "; CI must provide it")
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The data root holding mnist/ (pass it as --data-dir)."""
    return require_data("mnist").parent


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
def fashion_small():
    root = require_data("fashion-mnist").parent
    from vaekit.data import load_idx_set

    xtr, ytr, xte, yte = load_idx_set("fashion-mnist", root, download=False)
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


ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
                 "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
                 "income"]


@pytest.fixture(scope="session")
def adult_csv(tmp_path_factory) -> Path:
    """UCI Adult's training file as a CSV with a header line (the raw file has none), as a user makes one."""
    import csv

    raw = require_data("tabular", "adult", "adult.data")
    rows = [[c.strip() for c in line.split(",")] for line in raw.read_text().splitlines() if line.strip()]
    path = tmp_path_factory.mktemp("adult") / "adult.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([ADULT_COLUMNS, *rows])
    return path


@pytest.fixture(scope="session")
def german_csv(tmp_path_factory) -> Path:
    """UCI German credit (space-separated, no header; class 1 = good, 2 = bad) as a CSV with a header."""
    import csv

    raw = require_data("tabular", "german-credit", "german.data")
    rows = [line.split() for line in raw.read_text().splitlines() if line.strip()]
    path = tmp_path_factory.mktemp("german") / "german.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([[*(f"a{i}" for i in range(1, 21)), "class"], *rows])
    return path


def load_benchmark(name: str):
    """benchmarks/<name>.py as a module, reading real data from the first root that has MNIST."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if hasattr(module, "DATA"):
        module.DATA = require_data("mnist").parent
    return module
