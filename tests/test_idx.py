import gzip
import struct

import numpy as np
import pytest

from vaekit.data import parse_idx, read_idx
from vaekit.errors import VaekitError
from conftest import require_data


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def test_round_trip_raw_and_gzip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(a))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(a)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), a)


def test_multibyte_types_are_big_endian():
    a = np.array([[1, -2], [300, 70000]], dtype=np.int32)
    np.testing.assert_array_equal(parse_idx(idx_bytes(a, 0x0C)), a)
    f = np.array([0.5, -1.25], dtype=np.float32)
    np.testing.assert_array_equal(parse_idx(idx_bytes(f, 0x0D)), f)


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b"\x01\x00" + b[2:], "bad magic number"),
    (lambda b: b[:2] + b"\x42" + b[3:], "unknown IDX type code"),
    (lambda b: b[:-5], "truncated"),
    (lambda b: b + b"\x00", "longer than its header"),
    (lambda b: b[:6], "cut short"),
])
def test_corrupt_headers_are_named(mutate, message):
    good = idx_bytes(np.zeros((3, 2, 2), np.uint8))
    with pytest.raises(VaekitError, match=message):
        parse_idx(mutate(good))


def test_truncated_gzip_is_reported(tmp_path):
    blob = gzip.compress(idx_bytes(np.zeros((50, 28, 28), np.uint8)))
    (tmp_path / "t.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(VaekitError, match="damaged gzip"):
        read_idx(tmp_path / "t.gz")


def test_real_mnist_files():
    folder = require_data("mnist")
    images = read_idx(folder / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))
    assert images.flags.writeable
    assert 30 < images.mean() < 40  # MNIST's mean pixel is about 33
