"""What the explorer shows of a run, whatever its modality: the codes of held-out examples, a 2-D map of them,
each latent dimension's range, and decoding codes into what the page draws.

A `Space` holds the shared part (codes, map, ranges, neighbours, interpolation, checking a code the page sends);
each modality adds how it reads its examples and renders an item: an image as a PNG, a sentence as text, a
table row as a record. Items are JSON dicts, so the server and the page never look inside a modality.
"""
from __future__ import annotations

import base64
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import torch

from ..errors import VaekitError
from ..latent import interpolate_codes
from ..runs import read_config

MAX_POINTS = 2000  # examples on the map: enough to see the clusters, few enough to draw and search at once
SLIDERS = 16  # dimensions with a slider: the codes' most varied, when there are more
MAP_METHODS = ("pca", "umap")


class Space:
    """A run's latent space as the explorer serves it. codes: the examples' codes (N, *code_shape)."""

    kind = ""

    def __init__(self, run: str, model, codes: np.ndarray, labels: list[str], label_name: str,
                 map_method: str = "pca", seed: int = 0):
        self.run, self.model = str(run), model
        self.code_shape = tuple(codes.shape[1:])
        self.codes = np.ascontiguousarray(codes.reshape(len(codes), -1), dtype=np.float32)
        self.labels, self.label_name = [str(v) for v in labels], label_name
        self.dim = self.codes.shape[1]
        lo, hi = self.codes.min(0), self.codes.max(0)
        pad = np.maximum(0.1 * (hi - lo), 0.5)
        self.low, self.high = (lo - pad).astype(np.float64), (hi + pad).astype(np.float64)
        span = self.high - self.low
        self.limit_low, self.limit_high = self.low - span, self.high + span  # what a request may ask for
        spread = self.codes.var(0)
        self.sliders = [int(d) for d in np.argsort(-spread, kind="stable")[:SLIDERS]]
        self.map_method = map_method
        self.points, self._projector = _project(self.codes, map_method, seed)

    # -- what the page is told once -----------------------------------------------------------
    def info(self) -> dict:
        classes = list(dict.fromkeys(sorted(set(self.labels), key=_natural)))
        return {"kind": self.kind, "run": Path(self.run).name, "model": read_config(self.run).get("model"),
                "dim": self.dim, "code_shape": list(self.code_shape), "sliders": self.sliders,
                "low": _rounded(self.low), "high": _rounded(self.high), "map": self.map_method,
                "points": [[round(float(u), 4), round(float(v), 4)] for u, v in self.points],
                "labels": [classes.index(v) for v in self.labels], "classes": classes,
                "label_name": self.label_name, "origin": _rounded(self.codes.mean(0)),
                "projection": self._projection(), **self.extra_info()}

    def _projection(self) -> dict | None:
        """PCA's mean and axes, for the page to place a code on the map (None: 2-D codes, or UMAP)."""
        if self._projector is None or self.map_method != "pca":
            return None
        return {"mean": _rounded(self._projector.mean_), "components": [_rounded(c) for c in self._projector.components_]}

    def extra_info(self) -> dict:
        return {}

    # -- the verbs ------------------------------------------------------------------------------
    def check_code(self, z) -> np.ndarray:
        """z as a (dim,) float array, refused unless every entry is a finite number inside the explored range."""
        if not isinstance(z, list) or len(z) != self.dim:
            raise ValueError(f"z must be a list of {self.dim} numbers")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in z):
            raise ValueError("z must hold numbers only")
        arr = np.asarray(z, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ValueError("z must be finite (no NaN or infinity)")
        out = np.flatnonzero((arr < self.limit_low) | (arr > self.limit_high))
        if len(out):
            d = int(out[0])
            raise ValueError(f"z[{d}] = {arr[d]:.4g} is outside [{self.limit_low[d]:.3g}, {self.limit_high[d]:.3g}], "
                             f"twice the range this run's codes span")
        return arr.astype(np.float32)

    def decode(self, z: np.ndarray) -> dict:
        return self.decode_many(z[None])[0]

    def decode_many(self, z: np.ndarray) -> list[dict]:
        """Items of codes z (n, dim)."""
        raise NotImplementedError

    def example(self, i: int) -> dict:
        """The real example i with its code."""
        return {**self.example_item(i), "index": i, "label": self.labels[i], "z": _rounded(self.codes[i])}

    def example_item(self, i: int) -> dict:
        raise NotImplementedError

    def point(self, u: float, v: float) -> np.ndarray:
        """The code under a point of the map: PCA's inverse (exact for a 2-D code); for UMAP, which has no
        inverse, the nearest example's code."""
        if self._projector is None:
            return np.asarray([u, v], dtype=np.float32)
        if self.map_method == "pca":
            return self._projector.inverse_transform(np.asarray([[u, v]]))[0].astype(np.float32)
        return self.codes[int(np.argmin(((self.points - [u, v]) ** 2).sum(1)))]

    def neighbours(self, z: np.ndarray, k: int) -> list[dict]:
        """The k examples whose codes lie nearest z (Euclidean), nearest first."""
        dist = np.sqrt(((self.codes - z) ** 2).sum(1))
        order = np.argsort(dist, kind="stable")[:k]
        return [{**self.example_item(int(i)), "index": int(i), "label": self.labels[i],
                 "distance": round(float(dist[i]), 4)} for i in order]

    def interpolate(self, a: int, b: int, steps: int, method: str) -> list[dict]:
        z = interpolate_codes(self.codes[a], self.codes[b], steps, "slerp" if method == "spherical" else "linear")
        return self.decode_many(np.asarray(z, dtype=np.float32))

    def sample(self, n: int, seed: int, conditions: dict | None = None) -> list[dict]:
        raise NotImplementedError


class ImageSpace(Space):
    """An image run: test images, drawn as PNGs."""

    kind = "image"

    def __init__(self, run, model, images: np.ndarray, labels, **kw):
        self.images = images
        super().__init__(run, model, model.transform(images), labels, "label", **kw)

    def _png(self, x: np.ndarray) -> dict:
        return {"image": png_data_url(x)}

    def decode_many(self, z):
        codes = z.reshape(len(z), *self.code_shape)
        items = [self._png(x) for x in self.model.inverse_transform(codes)]
        module = self.model.module_
        if hasattr(module, "object_images"):  # a Multi-Entity VAE: each object alone, too
            with torch.no_grad():
                parts = module.object_images(torch.as_tensor(codes, device=next(module.parameters()).device))
            for item, objects in zip(items, parts.cpu().numpy()):
                item["parts"] = [png_data_url(o) for o in objects]
        return items

    def example_item(self, i):
        return self._png(self.images[i])

    def sample(self, n, seed, conditions=None):
        return [self._png(x) for x in self.model.sample(n, random_state=seed)]


class TextSpace(Space):
    """A sentence run: test sentences; codes decoded greedily, never writing <unk> (the model's next most likely
    word instead), so a small vocabulary's run still reads as words."""

    kind = "text"

    def __init__(self, run, model, sentences: list[str], **kw):
        from ..data.text import UNK

        # a sentence of words the model never saw has no code to show (transform refuses it): leave it off the map
        sentences = [s for s in sentences if any(i != UNK for i in model.tokenizer_.encode(s))]
        self.sentences = sentences
        lengths = [len(s.split()) for s in sentences]
        labels = [f"{5 * ((n - 1) // 5) + 1}-{5 * ((n - 1) // 5) + 5} words" if n <= 30 else "31+ words"
                  for n in lengths]
        super().__init__(run, model, model.transform(sentences), labels, "length", **kw)

    def decode_many(self, z):
        return [{"text": s} for s in self.model.inverse_transform(z, allow_unk=False)]

    def example_item(self, i):
        return {"text": self.sentences[i]}

    def sample(self, n, seed, conditions=None):
        return [{"text": s} for s in self.model.sample(n, random_state=seed, allow_unk=False)]


class TableSpace(Space):
    """A table run: rows of its table, drawn as records; decoding a code draws one row from p(x | z) with a
    fixed seed, so the same code shows the same row."""

    kind = "table"

    def __init__(self, run, model, frame, label: str | None = None, **kw):
        self.frame = frame.reset_index(drop=True)
        self.columns = [str(c) for c in self.frame.columns]
        discrete = {c.name: c for c in model.encoding_.columns if c.kind == "discrete"}
        if label is None:  # the last column with a few values: a table's target usually comes last
            few = [c for c in self.columns if c in discrete and len(discrete[c].values) <= 20]
            label = few[-1] if few else None
        elif label not in self.columns:
            raise VaekitError(f"--label {label}: the table has no such column; its columns are {self.columns}")
        self.conditions = {name: [_json_value(v) for v in col.values] for name, col in discrete.items()
                           if len(col.values) <= 50}
        self._values = {name: list(col.values) for name, col in discrete.items()}
        labels = self.frame[label].astype(str).tolist() if label else ["row"] * len(self.frame)
        super().__init__(run, model, model.transform(self.frame), labels, label or "", **kw)

    def extra_info(self):
        return {"columns": self.columns, "conditions": self.conditions}

    def _records(self, frame) -> list[dict]:
        return [{"row": r} for r in json.loads(frame.to_json(orient="records", date_format="iso"))]

    def decode_many(self, z):
        return self._records(self.model.inverse_transform(z, random_state=0))

    def example_item(self, i):
        return self._records(self.frame.iloc[[i]])[0]

    def sample(self, n, seed, conditions=None):
        fixed = {}
        for column, value in (conditions or {}).items():
            if column not in self.conditions or value not in self.conditions[column]:
                raise ValueError(f"cannot condition on {column}={value!r}: choose a column and value the page lists")
            fixed[column] = self._values[column][self.conditions[column].index(value)]
        return self._records(self.model.sample(n, random_state=seed, conditions=fixed))


def open_space(run: str, *, points: int = MAX_POINTS, map_method: str = "pca", label: str | None = None,
               data_dir: str | None = None, device: str = "cpu") -> Space:
    """The Space of any run folder in the registry, with up to `points` held-out examples on its map."""
    import vaekit

    if map_method not in MAP_METHODS:
        raise VaekitError(f"unknown map '{map_method}'; use one of {list(MAP_METHODS)}")
    doc = read_config(run)
    model = vaekit.load(run, device=device)
    kw = {"map_method": map_method}
    name = type(model).__name__
    if name == "TabularVAE":
        path = doc.get("data", {}).get("path")
        if not path or not Path(path).is_file():
            raise VaekitError(f"{run} does not record a table file that exists ({path!r}): explore a run made by "
                              f"'vaekit tabular fit --data TABLE'")
        frame = model.read_frame(path)
        if len(frame) > points:  # a seeded subset, in the table's order
            frame = frame.iloc[np.sort(np.random.default_rng(0).choice(len(frame), points, replace=False))]
        return TableSpace(run, model, frame, label, **kw)
    if name == "SentenceVAE":
        if not model.module_.variational:
            raise VaekitError(f"{run} is a language model ({doc.get('model')}): it has no latent space to explore; "
                              f"explore a sentence-vae run")
        from ..cli.text import text_splits

        _, _, test = text_splits(doc)
        return TextSpace(run, model, test[:points] if test else model.train_sentences_[:points], **kw)
    from ..cli.common import load_run_data

    shape = tuple(model.input_shape_)
    if len(shape) != 3:
        raise VaekitError(f"{run} was trained on vectors of shape {shape}, not images: the explorer draws images, "
                          f"sentences and table rows")
    test = load_run_data(run, data_dir).test
    labels = test.y[:points] if test.y is not None else np.zeros(min(points, len(test.x)), dtype=int)
    return ImageSpace(run, model, np.asarray(test.x[:points]), [int(v) for v in labels], **kw)


def png_data_url(x: np.ndarray) -> str:
    """An image (C, H, W) or (H, W), floats in [0, 1] or uint8, as a data: URL of a PNG."""
    from PIL import Image

    x = np.asarray(x)
    if x.ndim == 3:
        x = x[0] if x.shape[0] == 1 else np.moveaxis(x, 0, -1)
    if x.dtype != np.uint8:
        x = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _project(codes: np.ndarray, method: str, seed: int):
    """(2-D points of the codes, the fitted projector or None when the codes are 2-D already)."""
    if codes.shape[1] == 2:
        return codes.astype(np.float64), None
    if method == "umap":
        try:
            import umap  # optional: umap-learn
        except ImportError:
            raise VaekitError("--map umap needs the optional package umap-learn: pip install umap-learn, "
                              "or use --map pca") from None
        proj = umap.UMAP(n_components=2, random_state=seed)
        return proj.fit_transform(codes).astype(np.float64), proj
    from sklearn.decomposition import PCA

    proj = PCA(n_components=2, random_state=seed).fit(codes)
    return proj.transform(codes), proj


def _rounded(v: np.ndarray) -> list[float]:
    return [round(float(x), 4) for x in v]


def _natural(label: str):
    """Sort labels by the number they start with ('2' before '10', '6-10 words' before '11-15 words'), then as text."""
    m = re.match(r"-?\d+(\.\d*)?", label)
    return (0, float(m.group()), label) if m else (1, 0.0, label)


def _json_value(v):
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
