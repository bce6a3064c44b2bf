"""Fuzzing every reader with Hypothesis: each input ends in the data loaded or in vaekit's own error.

Each reader starts from a valid file made from real data (MNIST digits as IDX, PNG, JPEG, .npy and .npz;
UCI Adult rows as CSV; Brown sentences as text; small trained runs for run folders, vocabularies, table
encodings and a compressed .vkz file) and Hypothesis mutates it: bytes flipped, cut, inserted, 32-bit fields
overwritten with extreme values (a header that claims 10^9 rows), and, for JSON files, values replaced with
other JSON (wrong types, huge numbers), keys dropped. An outcome is 'loaded', 'refused' (a VaekitError, whose
message must be non-empty), or a failure: any other exception, or a call that runs past --timeout seconds.

    python benchmarks/fuzz.py [--examples 10000] [--readers idx png ...]

prints a table of inputs tried and outcomes per reader; tests/test_fuzz.py runs a few hundred per reader.
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VAEKIT_DATA", ROOT.parent / "shared" / "data"))
EXTREMES = [0, 1, 0x7F, 0xFF, 0x7FFF_FFFF, 0xFFFF_FFFF, 10 ** 9, 0x8000_0000]


class Hang(Exception):
    pass


# -- mutations ------------------------------------------------------------------------------------------------
def mutations():
    """A Hypothesis strategy: a short list of byte-level edits."""
    from hypothesis import strategies as st

    pos = st.integers(0, 2 ** 31)
    return st.lists(st.one_of(
        st.tuples(st.just("flip"), pos, st.integers(1, 255)),
        st.tuples(st.just("cut"), pos),
        st.tuples(st.just("insert"), pos, st.binary(min_size=1, max_size=64)),
        st.tuples(st.just("field"), pos, st.sampled_from(EXTREMES), st.sampled_from(["big", "little"])),
        st.tuples(st.just("repeat"), pos, st.integers(1, 64), st.integers(2, 2000)),
    ), min_size=1, max_size=4)


def json_mutations():
    """A Hypothesis strategy: edits of a JSON document's values and keys."""
    from hypothesis import strategies as st

    leaf = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 20, 10 ** 20), st.floats(allow_nan=False),
                     st.text(max_size=20), st.just(10 ** 400), st.just(-1), st.just(""))
    value = st.recursive(leaf, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                                                           max_size=4), max_leaves=8)
    return st.lists(st.one_of(st.tuples(st.just("set"), st.integers(0, 10 ** 6), value),
                              st.tuples(st.just("drop"), st.integers(0, 10 ** 6))), min_size=1, max_size=3)


def mutate(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for edit in edits:
        kind, at = edit[0], edit[1] % (len(b) + 1)
        if kind == "flip" and b:
            b[at % len(b)] ^= edit[2]
        elif kind == "cut":
            del b[at:]
        elif kind == "insert":
            b[at:at] = edit[2]
        elif kind == "field":
            b[at:at + 4] = edit[2].to_bytes(4, edit[3])
        elif kind == "repeat":
            b[at:at + edit[2]] = bytes(b[at:at + edit[2]]) * edit[3]
    return bytes(b)


def mutate_json(data: bytes, edits) -> bytes:
    doc = json.loads(data)
    for kind, at, *value in edits:
        paths = list(_paths(doc))
        if not paths:  # an earlier edit emptied the document
            break
        path = paths[at % len(paths)]
        parent = _at(doc, path[:-1])
        if kind == "drop" and isinstance(parent, dict):
            parent.pop(path[-1], None)
        elif kind == "set":
            parent[path[-1]] = value[0]
    return json.dumps(doc).encode()


def _paths(doc, prefix=()):
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def _at(doc, path):
    for p in path:
        doc = doc[p]
    return doc


# -- the readers ----------------------------------------------------------------------------------------------
class Readers:
    """Each reader: a valid seed file and a call that reads the (mutated) bytes. Built once, from real data."""

    def __init__(self, work: Path):
        from vaekit.data import load_idx_set

        self.work = work
        x = load_idx_set("mnist", DATA, download=False)[2][:20]  # 20 real test digits
        self.digits = np.ascontiguousarray(x)
        self._runs: dict[str, Path] = {}

    # seeds ----------------------------------------------------------------------------------------------
    def seed(self, name: str) -> bytes:
        from PIL import Image

        x = self.digits
        if name in ("idx", "idx-gzip"):
            raw = b"\x00\x00\x08\x03" + b"".join(int(d).to_bytes(4, "big") for d in x.shape) + x.tobytes()
            return raw if name == "idx" else gzip.compress(raw, mtime=0)
        if name in ("png", "jpeg"):
            buf = io.BytesIO()
            Image.fromarray(x[0]).save(buf, format="PNG" if name == "png" else "JPEG")
            return buf.getvalue()
        if name == "npy":
            buf = io.BytesIO()
            np.save(buf, x.astype(np.float32) / 255)
            return buf.getvalue()
        if name == "npz":
            buf = io.BytesIO()
            np.savez(buf, x=x, y=np.arange(len(x)))
            return buf.getvalue()
        if name == "csv":
            lines = (DATA / "tabular" / "adult" / "adult.data").read_text().splitlines()[:40]
            return ("age,workclass,fnlwgt,education,education-num,marital-status,occupation,relationship,race,"
                    "sex,capital-gain,capital-loss,hours-per-week,native-country,income\n"
                    + "\n".join(lines) + "\n").encode()
        if name == "text":
            lines = (DATA / "text" / "brown" / "brown_sentences.txt").read_text(encoding="utf-8").splitlines()[:40]
            return ("\n".join(lines) + "\n").encode()
        run, file = self._file_of(name)
        return (run / file).read_bytes()

    def _file_of(self, name: str) -> tuple[Path, str]:
        kind, file = {"config": ("image", "config.json"), "manifest": ("image", "vaekit.json"),
                      "safetensors": ("image", "model.safetensors"), "vocabulary": ("text", "tokenizer.json"),
                      "schema": ("table", "encoding.json"), "vkz": ("vkz", "scene.vkz")}[name]
        return self.run(kind), file

    def run(self, kind: str) -> Path:
        """Small real-data runs, trained once: an image VAE, a sentence VAE, a table VAE, and a .vkz file."""
        if kind in self._runs:
            return self._runs[kind]
        import vaekit

        out = self.work / f"run-{kind}"
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tiny runs collapse and cut long sentences: not what is fuzzed
            if kind in ("image", "vkz"):
                model = vaekit.VAE(latent_dim=4, hidden=(32,), epochs=1, binarize=True, random_state=0,
                                   device="cpu").fit(self.digits[:, None])
                model.save(out)
                if kind == "vkz":
                    codec = vaekit.Codec(model)
                    self.vkz_images = (self.digits[:4, None] > 127).astype(np.uint8)
                    (out / "scene.vkz").write_bytes(codec.compress(self.vkz_images))
                    self.codec = codec
            elif kind == "text":
                sentences = self.seed("text").decode().splitlines()
                vaekit.SentenceVAE(latent_dim=4, hidden_dim=16, embed_dim=8, epochs=1, device="cpu").fit(
                    sentences).save(out)
            else:
                import pandas as pd

                frame = pd.read_csv(io.BytesIO(self.seed("csv")))
                vaekit.TabularVAE(epochs=1, latent_dim=4, hidden=(16,), device="cpu").fit(frame).save(out)
        self._runs[kind] = out
        return out

    # reading --------------------------------------------------------------------------------------------
    def read(self, name: str, data: bytes):
        """Write data where the reader looks and read it; returns what was loaded."""
        import vaekit
        from vaekit.data.images.files import load_array_file, load_image_folder
        from vaekit.data.images.idx import read_idx
        from vaekit.data.tables.reader import read_table
        from vaekit.data.text import read_sentences

        case = self.work / f"case-{name}"  # one folder per reader, kept: only the fuzzed file changes
        if not case.exists():
            case.mkdir()
            if name in ("png", "jpeg"):  # a good image beside the fuzzed one
                (case / f"b.{name}").write_bytes(self.seed(name))
            elif name in JSON_READERS or name == "safetensors":
                shutil.copytree(self._file_of(name)[0], case / "run")
        if name in ("idx", "idx-gzip"):
            (case / "f-idx3-ubyte").write_bytes(data)
            return read_idx(case / "f-idx3-ubyte")
        if name in ("png", "jpeg"):
            (case / f"a.{name}").write_bytes(data)
            return load_image_folder(case)
        if name in ("npy", "npz"):
            (case / f"a.{name}").write_bytes(data)
            return load_array_file(case / f"a.{name}")
        if name == "csv":
            (case / "t.csv").write_bytes(data)
            return read_table(case / "t.csv")
        if name == "text":
            (case / "s.txt").write_bytes(data)
            return read_sentences(case / "s.txt")
        if name == "vkz":  # a file that decodes must give back exactly the images it was made from
            x = self.codec.decompress(data)
            if not np.array_equal(np.asarray(x).reshape(self.vkz_images.shape), self.vkz_images):
                raise AssertionError("a damaged .vkz file decoded to wrong pixels")
            return x
        (case / "run" / self._file_of(name)[1]).write_bytes(data)
        return vaekit.load(case / "run", device="cpu")

    def outcome(self, name: str, data: bytes, timeout: float) -> str:
        """'loaded' or 'refused'; raises for anything else (another exception, a hang, an empty message)."""
        from vaekit.errors import VaekitError

        def alarm(signum, frame):
            raise Hang(f"{name}: still reading after {timeout} s")

        old = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            self.read(name, data)
            return "loaded"
        except VaekitError as e:
            if not str(e).strip():
                raise AssertionError(f"{name}: a VaekitError without a message") from e
            return "refused"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


JSON_READERS = ("config", "manifest", "vocabulary", "schema")
READERS = ("idx", "idx-gzip", "png", "jpeg", "npy", "npz", "csv", "text", "config", "manifest", "safetensors",
           "vocabulary", "schema", "vkz")


def fuzz(readers: Readers, name: str, examples: int, timeout: float = 20.0, seed: int = 0) -> Counter:
    """Run examples mutated inputs of one reader through Hypothesis; returns the outcome counts."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    base = readers.seed(name)
    counts: Counter = Counter()
    strategy = st.one_of(mutations(), json_mutations().map(lambda e: ("json", e))) if name in JSON_READERS \
        else mutations()

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(strategy)
    def one(edits):
        if isinstance(edits, tuple) and edits[0] == "json":
            data = mutate_json(base, edits[1])
        else:
            data = mutate(base, edits)
        counts[readers.outcome(name, data, timeout)] += 1

    one()
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=10_000, help="inputs per reader")
    p.add_argument("--readers", nargs="+", default=list(READERS), choices=READERS)
    p.add_argument("--timeout", type=float, default=20.0, help="seconds one read may take")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        readers = Readers(Path(tmp))
        for name in args.readers:
            t0 = time.perf_counter()
            counts = fuzz(readers, name, args.examples, args.timeout)
            rows.append((name, counts, time.perf_counter() - t0))
            print(f"{name}: {dict(counts)} in {rows[-1][2]:.0f} s", flush=True)
    print("\n| reader | inputs | loaded | refused (vaekit's error) | anything else | seconds |")
    print("|---|---|---|---|---|---|")
    for name, c, s in rows:
        total = sum(c.values())
        print(f"| {name} | {total} | {c['loaded']} | {c['refused']} | {total - c['loaded'] - c['refused']} | {s:.0f} |")


if __name__ == "__main__":
    sys.exit(main())
