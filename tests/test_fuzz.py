"""Every reader fuzzed (benchmarks/fuzz.py, a few hundred inputs each here; the benchmark runs 10,000), and the
hostile files each refused by name: pickles, a lying safetensors header, headers that claim 10^9 rows."""
from __future__ import annotations

import gzip
import io
import json
import pickle
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
import torch

import vaekit
from conftest import load_benchmark, require_data

EXAMPLES = 150


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory):
    require_data("mnist")
    require_data("tabular", "adult", "adult.data")
    require_data("text", "brown", "brown_sentences.txt")
    module = load_benchmark("fuzz")
    return module, module.Readers(tmp_path_factory.mktemp("fuzz"))


@pytest.mark.parametrize("reader", ["idx", "idx-gzip", "png", "jpeg", "npy", "npz", "csv", "text", "config",
                                    "manifest", "safetensors", "vocabulary", "schema", "vkz"])
def test_every_mutated_input_is_loaded_or_refused_with_vaekit_s_error(fuzz, reader):
    module, readers = fuzz
    counts = module.fuzz(readers, reader, EXAMPLES, timeout=20)
    assert sum(counts.values()) == EXAMPLES and set(counts) <= {"loaded", "refused"}
    assert counts["refused"] > 0  # the mutations do reach the checks
    assert readers.outcome(reader, readers.seed(reader), 20) == "loaded"  # and the unmutated file loads


def test_a_pickle_bearing_npy_and_npz_are_refused_without_unpickling(tmp_path, monkeypatch):
    from vaekit.data.images.files import load_array_file

    def forbidden(*a, **k):
        raise AssertionError("unpickled")

    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "obj.npz", x=np.array([[1.0]]), y=np.array([object()], dtype=object))
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    for name in ("obj.npy", "obj.npz"):
        with pytest.raises(vaekit.VaekitError, match="Python objects, which only pickle can load"):
            load_array_file(tmp_path / name)


def _saved_run(tmp_path):
    x = (np.random.default_rng(0).random((64, 1, 8, 8)) > 0.5).astype(np.float32)
    vaekit.VAE(latent_dim=2, hidden=(8,), epochs=1, device="cpu").fit(x).save(tmp_path / "m")
    return tmp_path / "m"


def test_a_pickled_checkpoint_is_refused_and_runs_no_code(tmp_path):
    run = _saved_run(tmp_path)
    ran = tmp_path / "ran"

    class Payload:  # what a malicious pickle does on load
        def __reduce__(self):
            return (open, (str(ran), "w"))

    torch.save({"weights": Payload()}, run / "model.safetensors")  # torch.save pickles
    with pytest.raises(vaekit.VaekitError, match="model.safetensors"):
        vaekit.load(run)
    assert not ran.exists()


def test_a_safetensors_file_with_a_lying_header_is_refused(tmp_path):
    run = _saved_run(tmp_path)
    data = (run / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    name = next(k for k in header if k != "__metadata__")
    lies = {
        "size": struct.pack("<Q", 10 ** 12) + data[8:],  # a header length far past the end
        "offsets": None,  # a tensor whose offsets reach past the data
        "shape": None,  # a tensor whose shape does not match its bytes
    }
    for lie in ("offsets", "shape"):
        h = json.loads(data[8:8 + n])
        if lie == "offsets":
            h[name]["data_offsets"][1] += 10 ** 9
        else:
            h[name]["shape"] = [s * 7 for s in h[name]["shape"]]
        raw = json.dumps(h).encode()
        raw += b" " * (-len(raw) % 8)
        lies[lie] = struct.pack("<Q", len(raw)) + raw + data[8 + n:]
    for lie, content in lies.items():
        (run / "model.safetensors").write_bytes(content)
        with pytest.raises(vaekit.VaekitError, match="model.safetensors"):
            vaekit.load(run)
    (run / "model.safetensors").write_bytes(data)
    assert vaekit.load(run).transform(np.zeros((1, 1, 8, 8), np.float32)).shape == (1, 2)


def test_headers_that_claim_a_billion_rows_are_refused_before_allocating(tmp_path):
    from vaekit.data.images.files import load_array_file
    from vaekit.data.images.idx import read_idx

    idx = b"\x00\x00\x08\x03" + struct.pack(">III", 10 ** 9, 28, 28) + bytes(784 * 3)
    (tmp_path / "raw-idx3-ubyte").write_bytes(idx)
    (tmp_path / "gz-idx3-ubyte").write_bytes(gzip.compress(idx)[:-4] + struct.pack("<I", 2 ** 32 - 1))
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10 ** 9, 784)})
    (tmp_path / "big.npy").write_bytes(buf.getvalue() + bytes(3 * 784 * 4))
    tracemalloc.start()
    for path, call in [("raw-idx3-ubyte", read_idx), ("gz-idx3-ubyte", read_idx), ("big.npy", load_array_file)]:
        with pytest.raises(vaekit.VaekitError, match="truncated|trailer|header claims"):
            call(tmp_path / path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 2 ** 20  # refused from the headers: nowhere near the gigabytes they claim


def test_a_decompression_bomb_image_is_refused(tmp_path):
    from PIL import Image

    from vaekit.data.images.files import load_image_folder

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    folder = tmp_path / "imgs"
    folder.mkdir()
    side = 100_000  # 10^10 grey pixels claimed by a file of a few dozen bytes
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    (folder / "bomb.png").write_bytes(png)
    Image.new("L", (8, 8)).save(folder / "fine.png")
    with pytest.raises(vaekit.VaekitError, match="cannot read image .*bomb.png.*DecompressionBomb"):
        load_image_folder(folder)


def test_a_csv_header_of_fifty_thousand_columns_is_refused_before_pandas_builds_them(tmp_path):
    from vaekit.data.tables.reader import read_table

    (tmp_path / "wide.csv").write_text("," * 50_000 + "\n" + "1," * 50_000 + "\n")
    with pytest.raises(vaekit.VaekitError, match="header of 50001 or more columns"):
        read_table(tmp_path / "wide.csv")


@pytest.mark.parametrize("field, value", [("input_shape", [10 ** 9]), ("input_shape", [-3]),
                                          ("input_shape", "784"), ("hidden", [10 ** 8])])
def test_a_config_that_claims_a_huge_or_impossible_network_is_refused_before_building_it(tmp_path, field, value):
    run = _saved_run(tmp_path)
    doc = json.loads((run / "config.json").read_text())
    if field == "hidden":
        doc["model_config"]["hidden"] = value
    else:
        doc[field] = value
    (run / "config.json").write_text(json.dumps(doc))
    tracemalloc.start()
    with pytest.raises(vaekit.VaekitError, match="config.json"):
        vaekit.load(run)
    assert tracemalloc.get_traced_memory()[1] < 50 * 2 ** 20  # checked on the meta device, nothing allocated
    tracemalloc.stop()
