"""The user's own data: image folders and arrays, with their bad-input messages; deterministic splits."""
import numpy as np
import pytest
from PIL import Image

from vaekit.config import DataConfig
from vaekit.data import load_data
from vaekit.errors import VaekitError


def _folder(tmp_path, mnist_small, classes=("a", "b"), size=28, per_class=20, colour=False):
    x, y = mnist_small[0], mnist_small[1]
    root = tmp_path / "imgs"
    for c_i, c in enumerate(classes):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            im = Image.fromarray(x[c_i * per_class + i, 0]).resize((size, size))
            (im.convert("RGB") if colour else im).save(root / c / f"{i}.png")
    return root


def test_image_folder_with_class_subfolders(tmp_path, mnist_small):
    root = _folder(tmp_path, mnist_small)
    d = load_data(DataConfig(str(root), val_fraction=0.1, test_fraction=0.25))
    assert d.shape == (1, 28, 28) and d.classes == ["a", "b"]
    assert len(d.train.x) + len(d.val.x) + len(d.test.x) == 40
    assert set(np.unique(np.concatenate([d.train.y, d.test.y]))) == {0, 1}
    again = load_data(DataConfig(str(root), val_fraction=0.1, test_fraction=0.25))
    np.testing.assert_array_equal(d.test.x, again.test.x)  # deterministic split


def test_colour_images_and_resizing(tmp_path, mnist_small):
    root = _folder(tmp_path, mnist_small, colour=True)
    Image.fromarray(mnist_small[0][99, 0]).resize((20, 20)).save(root / "a" / "odd.png")
    with pytest.raises(VaekitError, match=r"2 different sizes.*--image-size H W"):
        load_data(DataConfig(str(root)))
    d = load_data(DataConfig(str(root), image_size=(16, 16)))
    assert d.shape == (3, 16, 16)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VaekitError, match="no images in"):
        load_data(DataConfig(str(tmp_path / "empty")))


def test_npz_and_npy(tmp_path, mnist_small):
    x, y = mnist_small[0][:100, 0], mnist_small[1][:100]
    np.savez(tmp_path / "d.npz", x=x, y=y)
    d = load_data(DataConfig(str(tmp_path / "d.npz")))
    assert d.shape == (1, 28, 28) and d.train.y is not None
    np.save(tmp_path / "d.npy", x.reshape(100, -1).astype(np.float32) / 255)
    assert load_data(DataConfig(str(tmp_path / "d.npy"))).shape == (784,)


def test_nan_and_inf_are_named(tmp_path):
    x = np.random.default_rng(0).random((50, 4)).astype(np.float32)
    x[7, 2] = np.nan
    x[9, 0] = np.inf
    np.save(tmp_path / "bad.npy", x)
    with pytest.raises(VaekitError, match=r"NaN or inf values in 2 rows \(first: row 7\)"):
        load_data(DataConfig(str(tmp_path / "bad.npy")))


def test_object_arrays_are_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(VaekitError, match="no objects"):
        load_data(DataConfig(str(tmp_path / "obj.npy")))


def test_real_mnist_splits(mnist_dir):
    d = load_data(DataConfig("mnist", data_dir=str(mnist_dir), val_fraction=0.1))
    assert (len(d.train.x), len(d.val.x), len(d.test.x)) == (54000, 6000, 10000)
    assert d.train.x.dtype == np.uint8 and d.shape == (1, 28, 28)


def test_tests_find_real_data_where_vaekit_finds_named_sets(tmp_path, monkeypatch):
    """A user's clone without ../shared/data still runs the data tests on MNIST kept in $VAEKIT_DATA or in
    the per-user cache, as `vaekit train --data mnist` finds it."""
    from conftest import ROOT, data_roots, find_data
    from vaekit.data import data_dirs

    env = {"VAEKIT_DATA": str(tmp_path / "mine"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    roots = data_roots(env)
    assert roots == [ROOT.parent / "shared" / "data", tmp_path / "mine", tmp_path / "cache" / "vaekit"]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert roots[1:] == data_dirs(None)  # the package's own order, after the shared folder
    (tmp_path / "cache" / "vaekit" / "mnist").mkdir(parents=True)
    assert find_data("mnist", roots=roots[1:]) == tmp_path / "cache" / "vaekit" / "mnist"
    (tmp_path / "mine" / "mnist").mkdir(parents=True)
    assert find_data("mnist", roots=roots[1:]) == tmp_path / "mine" / "mnist"  # $VAEKIT_DATA comes first
    assert find_data("tabular", "adult", roots=roots[1:]) is None
