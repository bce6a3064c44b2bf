"""A table as a generative model sees it, and back: every column becomes one block of codes (and at most one
scalar), fitted on the training rows and saved as JSON with the model.

- categorical and boolean columns, and numeric columns with at most DISCRETE_MAX distinct values (ratings,
  counts, 0/1 flags): one code per value seen, so a sample never invents a category or a value;
- other numeric columns (continuous, integer, datetime as seconds): mode-specific normalisation (Xu et al.,
  "Modeling Tabular Data using Conditional GAN", 2019): a variational Gaussian mixture finds the column's
  modes; a value is coded as its mode plus its offset inside it, alpha = (v - mean) / (4 std). A value that
  holds at least POINT_SHARE of the rows (a 0 in capital-gain, 40 hours a week) is a mode of its own, with no
  offset, so it comes back exactly. Samples are clipped to the training range and integers rounded;
- a column with missing values has one more code, "missing", so missing values are modelled, not dropped:
  a column 10% missing comes back about 10% missing;
- identifiers are not modelled (each sample gets a fresh one), and constant columns come back constant.

The features a model reads are the blocks one-hot, then the scalars; `TableBatches` gathers them per batch
from compact codes (the batch protocol of data.batches).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch

from ...errors import VaekitError, listed
from .reader import COLUMN_TYPES, Table, category_text, missing_mask, refuse_empty_columns

DISCRETE_MAX = 20  # a numeric column with at most this many distinct values is coded value by value
POINT_SHARE = 0.05  # a value that holds this share of a numeric column's rows is a mode of its own
MAX_MODES = 10  # mixture components tried per numeric column (a Dirichlet-process prior prunes the unused)
MIN_MODE_WEIGHT = 0.005  # components lighter than this are dropped
FIT_ROWS = 10_000  # rows the mixture of one column is fitted on (a random subset of larger tables)


@dataclass
class ColumnCode:
    """How one column is coded. kind: 'discrete' (values), 'numeric' (points, then the modes means/stds),
    'id' (not modelled) or 'constant' (values[0])."""

    name: str
    type: str  # the column's type in the table (tables.COLUMN_TYPES)
    dtype: str  # the pandas dtype it was given in (what sample() gives back)
    kind: str
    values: list = field(default_factory=list)  # discrete: the values seen; numeric: the point masses
    means: list[float] = field(default_factory=list)  # numeric: the modes
    stds: list[float] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    missing: bool = False  # the last code stands for a missing value
    low: float | None = None  # numeric: the training range
    high: float | None = None

    @property
    def n_codes(self) -> int:
        if self.kind in ("id", "constant"):
            return 0
        return len(self.values) + len(self.means) + self.missing

    @property
    def has_scalar(self) -> bool:
        return self.kind == "numeric" and bool(self.means)

    @property
    def numeric_values(self) -> bool:
        return self.type in ("continuous", "integer", "datetime")


class TableEncoding:
    """The columns' codes, fitted on a table (fit) and saved as JSON (to_dict / from_dict)."""

    def __init__(self, columns: list[ColumnCode]):
        self.columns = columns
        self.modelled = [c for c in columns if c.n_codes]
        self.blocks = [c.n_codes for c in self.modelled]
        self.offsets = np.concatenate([[0], np.cumsum(self.blocks)]).astype(int)
        self.n_codes = int(self.offsets[-1])
        self.scalar_columns = [i for i, c in enumerate(self.modelled) if c.has_scalar]
        # scalar_codes[s]: the codes (in the one-hot layout) of scalar s's column that carry an offset
        self.scalar_codes = [[int(self.offsets[i]) + len(self.modelled[i].values) + k
                              for k in range(len(self.modelled[i].means))] for i in self.scalar_columns]

    @property
    def n_features(self) -> int:
        return self.n_codes + len(self.scalar_columns)

    # -- fitting ------------------------------------------------------------------------------
    @classmethod
    def fit(cls, table: Table, dtypes: dict[str, str] | None = None, seed: int = 0) -> TableEncoding:
        """Codes for each column of table (at least two rows); dtypes: column -> the pandas dtype to give back."""
        if len(table) < 2:
            raise VaekitError(f"the table has {len(table)} row(s); a synthesizer needs at least 2 (and hundreds "
                              f"to learn relations between columns)")
        refuse_empty_columns(table)
        rng = np.random.default_rng(seed)
        dtypes = dtypes or {}
        columns = [_fit_column(name, table.types[name], dtypes.get(name, _default_dtype(table.types[name])), v, rng)
                   for name, v in zip(table.columns, table.values)]
        if not any(c.n_codes for c in columns):
            kinds = {c.name: c.kind for c in columns}
            raise VaekitError(f"no column is left to learn from: {kinds} (identifiers name rows and constant "
                              f"columns hold one value); give a column its type in the metadata if it is neither")
        return cls(columns)

    # -- rows <-> codes -------------------------------------------------------------------------
    def encode(self, table: Table, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(codes (N, modelled columns) int64, scalars (N, scalar columns) float32) of table's rows. A value's
        mode is drawn from its posterior over the modes (seeded), as mode-specific normalisation does."""
        given = self._columns_of(table, self.modelled)
        rng = np.random.default_rng(seed)
        codes = np.zeros((len(table), len(self.modelled)), np.int64)
        scalars = np.zeros((len(table), len(self.scalar_columns)), np.float32)
        for j, col in enumerate(self.modelled):
            codes[:, j], alpha = _encode_column(col, given[col.name], rng)
            if col.has_scalar:
                scalars[:, self.scalar_columns.index(j)] = alpha
        return codes, scalars

    def features(self, codes: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
        """The model's input (N, n_features): each block one-hot, then the scalars."""
        x = torch.zeros(len(codes), self.n_features, device=codes.device)
        x.scatter_(1, codes + torch.as_tensor(self.offsets[:-1], device=codes.device), 1.0)
        x[:, self.n_codes:] = scalars
        return x

    def codes_of(self, features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(codes, scalars) of features, each block read by its largest entry (a one-hot's one)."""
        f = features.detach().cpu().numpy()
        codes = np.stack([f[:, a:b].argmax(1) for a, b in zip(self.offsets[:-1], self.offsets[1:])], 1) \
            if self.modelled else np.zeros((len(f), 0), np.int64)
        return codes, f[:, self.n_codes:]

    def decode(self, codes: np.ndarray, scalars: np.ndarray):
        """A pandas DataFrame of the rows the codes stand for, in the fitted column order and dtypes."""
        import pandas as pd

        n = len(codes)
        out = {}
        for col in self.columns:
            if col.kind == "id":
                values = np.array([f"{col.name}-{i}" for i in range(n)], dtype=object)
                out[col.name] = pd.Series(np.arange(n) if col.numeric_values else values)
                continue
            if col.kind == "constant":
                out[col.name] = _as_dtype(np.array([col.values[0]] * n, dtype=object), col)
                continue
            j = self.modelled.index(col)
            alpha = scalars[:, self.scalar_columns.index(j)] if col.has_scalar else None
            out[col.name] = _as_dtype(_decode_column(col, codes[:, j], alpha), col)
        return pd.DataFrame(out)

    def frame(self, table: Table):
        """A table read from a file as the DataFrame sample() would give: the fitted columns, in their dtypes."""
        import pandas as pd

        given = self._columns_of(table, self.columns)
        return pd.DataFrame({c.name: _as_dtype(given[c.name], c) for c in self.columns})

    @staticmethod
    def _columns_of(table: Table, needed: list[ColumnCode]) -> dict[str, np.ndarray]:
        """table's columns by name, refused when it lacks one of needed."""
        given = dict(zip(table.columns, table.values))
        lacking = [c.name for c in needed if c.name not in given]
        if lacking:
            raise VaekitError(f"the table lacks column(s) {lacking} that the model was fitted on; its columns are "
                              f"{table.columns}")
        return given

    def code_of(self, column: str, value) -> tuple[int, int]:
        """(block, code) of a value of a discrete column: what a condition fixes. Refuses unknown columns, values
        never seen in training and columns that are not coded value by value."""
        names = [c.name for c in self.columns]
        if column not in names:
            raise VaekitError(f"cannot condition on '{column}': the table has no such column; its columns are "
                              f"{listed(names, 30)}")
        col = self.columns[names.index(column)]
        if col.kind != "discrete":
            raise VaekitError(f"cannot condition on '{column}': it is {'an' if col.type[0] in 'aeiou' else 'a'} {col.type} column modelled by its "
                              f"modes, not value by value; conditions "
                              f"fix categorical, boolean or few-valued columns")
        block = self.modelled.index(col)
        for k, v in enumerate(col.values):
            if _same_value(v, value, col):
                return block, k
        raise VaekitError(f"cannot condition on {column}={value!r}: training never saw that value; the values "
                          f"of '{column}' are {listed(map(repr, col.values), 20)}")

    # -- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, d: dict, where: str = "the table encoding") -> TableEncoding:
        """The encoding to_dict wrote, every field checked: a damaged file is refused by name, not met later as
        a shape error deep in the likelihood."""
        columns = d.get("columns") if isinstance(d, dict) else None
        if not isinstance(columns, list) or not columns:
            raise VaekitError(f"{where} is damaged: it holds no list of columns; fit the model again")
        return cls([_column_from_dict(c, i, where) for i, c in enumerate(columns)])


def _column_from_dict(c, i: int, where: str) -> ColumnCode:
    def bad(what: str):
        return VaekitError(f"{where} is damaged: column {i} {what}; fit the model again")

    if not isinstance(c, dict) or set(c) != {f.name for f in fields(ColumnCode)}:
        raise bad("does not hold the fields vaekit writes")
    if not isinstance(c["name"], str) or not isinstance(c["dtype"], str) or c["type"] not in COLUMN_TYPES:
        raise bad("has a name, dtype or type of the wrong kind")
    if c["kind"] not in ("discrete", "numeric", "id", "constant") or not isinstance(c["missing"], bool):
        raise bad(f"has kind {c['kind']!r} or a non-boolean 'missing'")
    numbers = [c["means"], c["stds"], c["weights"]]
    if not isinstance(c["values"], list) or not all(isinstance(v, list) for v in numbers) \
            or len({len(v) for v in numbers}) != 1:
        raise bad("has values, means, stds or weights that are not lists of one length")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in sum(numbers, [])) \
            or any(s <= 0 for s in c["stds"]):
        raise bad("has means, stds or weights that are not finite numbers (stds > 0)")
    for bound in ("low", "high"):
        if c[bound] is not None and not (isinstance(c[bound], (int, float)) and math.isfinite(c[bound])):
            raise bad(f"has a {bound} bound that is not a finite number")
    if any(isinstance(v, (list, dict)) for v in c["values"]):
        raise bad("has values that are not single values")
    col = ColumnCode(**c)
    if col.kind == "discrete" and not col.values or col.kind == "numeric" and not (col.values or col.means):
        raise bad(f"is {col.kind} but has nothing to code")
    if col.kind == "numeric" and any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in col.values):
        raise bad("is numeric but has point masses that are not numbers")
    return col


# -- one column ---------------------------------------------------------------------------------
def _default_dtype(kind: str) -> str:
    return {"continuous": "float64", "integer": "int64", "boolean": "bool", "datetime": "datetime64[ns]"}.get(
        kind, "object")


def _fit_column(name: str, kind: str, dtype: str, values: np.ndarray, rng) -> ColumnCode:
    present = ~missing_mask(values)
    missing = bool((~present).any())
    col = ColumnCode(name, kind, dtype, "discrete", missing=missing)
    if kind == "id":
        col.kind = "id"
        return col
    seen = values[present]
    distinct = sorted(set(seen.tolist()))
    if len(distinct) == 1 and not missing:
        col.kind, col.values = "constant", distinct
        return col
    if values.dtype == object or len(distinct) <= DISCRETE_MAX:
        col.values = [str(v) for v in distinct] if values.dtype == object else [float(v) for v in distinct]
        return col
    col.kind, col.low, col.high = "numeric", float(seen.min()), float(seen.max())
    uniq, counts = np.unique(seen, return_counts=True)
    points = uniq[counts >= POINT_SHARE * len(seen)]
    col.values = [float(v) for v in points]
    rest = seen[~np.isin(seen, points)]
    if len(rest):
        col.means, col.stds, col.weights = _modes(rest, rng)
    return col


def _modes(x: np.ndarray, rng) -> tuple[list[float], list[float], list[float]]:
    """(means, stds, weights) of a variational Gaussian mixture over x, fitted on standardised values."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import BayesianGaussianMixture

    centre, scale = float(np.mean(x)), float(np.std(x)) or 1.0
    z = (x - centre) / scale
    if len(np.unique(z)) < 2 * MAX_MODES:
        return [centre], [max(scale, 1e-6 * (abs(centre) + 1))], [1.0]
    fit_on = z if len(z) <= FIT_ROWS else rng.choice(z, FIT_ROWS, replace=False)
    gm = BayesianGaussianMixture(n_components=MAX_MODES, weight_concentration_prior_type="dirichlet_process",
                                 weight_concentration_prior=1e-3, max_iter=100, n_init=1,
                                 random_state=int(rng.integers(2 ** 31)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(fit_on[:, None])
    keep = gm.weights_ > MIN_MODE_WEIGHT
    means = gm.means_[keep, 0] * scale + centre
    stds = np.sqrt(gm.covariances_[keep, 0, 0]) * scale
    order = np.argsort(means)
    w = gm.weights_[keep][order]
    return means[order].tolist(), np.maximum(stds[order], 1e-6 * scale).tolist(), (w / w.sum()).tolist()


def _same_value(known, value, col: ColumnCode) -> bool:
    if isinstance(known, str):
        return known == str(value).strip() or (col.type == "boolean" and known == str(value).strip().lower())
    try:
        return float(value) == known
    except (TypeError, ValueError):
        return False


def _encode_column(col: ColumnCode, values: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray | None]:
    n = len(values)
    present = ~missing_mask(values)
    codes = np.full(n, col.n_codes - 1 if col.missing else 0, np.int64)
    alpha = np.zeros(n, np.float32)
    if col.kind == "discrete":
        lookup = {v: k for k, v in enumerate(col.values)}
        keys = [str(v) if isinstance(col.values[0], str) else float(v) for v in values[present]]
        if values.dtype != object and isinstance(col.values[0], str):  # numbers read where text was fitted
            keys = [category_text(v) for v in values[present]]
        found = np.array([lookup.get(k, -1) for k in keys], np.int64)
        if (found < 0).any():
            new = sorted({str(k) for k, f in zip(keys, found) if f < 0})
            raise VaekitError(f"column '{col.name}' holds value(s) {listed(map(repr, new), 5)} not seen when the "
                              f"encoding was fitted; its values are {listed(map(repr, col.values), 20)}")
        codes[present] = found
    else:
        if values.dtype == object:
            raise VaekitError(f"column '{col.name}' was numeric when fitted but holds text here")
        v = values[present]
        is_point = np.isin(v, col.values)
        c = np.zeros(len(v), np.int64)
        c[is_point] = np.searchsorted(col.values, v[is_point])
        a = np.zeros(len(v), np.float32)
        rest = ~is_point
        if rest.any():
            if not col.means:
                raise VaekitError(f"column '{col.name}' held only the values {col.values} when fitted")
            k, a[rest] = _assign_modes(v[rest], col, rng)
            c[rest] = len(col.values) + k
        codes[present], alpha[present] = c, a
    if col.missing is False and not present.all():
        raise VaekitError(f"column '{col.name}' has missing values here but had none when the encoding was fitted")
    return codes, alpha


def _assign_modes(v: np.ndarray, col: ColumnCode, rng) -> tuple[np.ndarray, np.ndarray]:
    """A mode for each value, drawn from its posterior over the modes, and its offset in that mode."""
    means, stds, w = np.array(col.means), np.array(col.stds), np.array(col.weights)
    log_p = np.log(w) - np.log(stds) - 0.5 * ((v[:, None] - means) / stds) ** 2
    p = np.exp(log_p - log_p.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    k = (p.cumsum(1) < rng.random((len(v), 1))).sum(1).clip(max=len(means) - 1)
    return k, np.clip((v - means[k]) / (4 * stds[k]), -0.99, 0.99).astype(np.float32)


def _decode_column(col: ColumnCode, codes: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    n_values = len(col.values)
    missing = codes == col.n_codes - 1 if col.missing else np.zeros(len(codes), bool)
    if col.kind == "discrete":
        numbers = not isinstance(col.values[0], str)
        out = np.asarray(col.values, dtype=float if numbers else object)[np.minimum(codes, len(col.values) - 1)]
        out[missing] = np.nan if numbers else None
        return out
    out = np.full(len(codes), np.nan)
    point = (codes < n_values) & ~missing
    out[point] = np.asarray(col.values)[codes[point]]
    mode = (codes >= n_values) & ~missing
    if mode.any():
        k = codes[mode] - n_values
        out[mode] = np.clip(alpha[mode], -1, 1) * 4 * np.asarray(col.stds)[k] + np.asarray(col.means)[k]
    out = np.clip(out, col.low, col.high)
    if col.type in ("integer", "datetime"):
        out = np.round(out)
    return out


def _as_dtype(values: np.ndarray, col: ColumnCode):
    """A column of decoded values as a pandas Series of the dtype the column came in (a nullable one when
    values are missing and the dtype has no missing value of its own)."""
    import pandas as pd

    if col.type == "datetime":
        secs = pd.to_numeric(pd.Series(values), errors="coerce")
        return pd.to_datetime(secs, unit="s")
    if col.type == "boolean":
        s = pd.Series([None if v is None else str(v).lower() == "true" for v in values], dtype="boolean")
        return s.astype(bool) if col.dtype == "bool" and s.notna().all() else s
    dtype = col.dtype
    numeric = dtype.startswith(("int", "uint", "float", "Int", "UInt", "Float"))
    if numeric:
        s = pd.Series(values) if values.dtype.kind == "f" else pd.to_numeric(pd.Series(values, dtype=object),
                                                                             errors="coerce")
        if dtype.startswith(("int", "uint", "Int", "UInt")):
            nullable = dtype[0].upper() + dtype[1:]
            return s.round().astype(nullable if s.isna().any() or dtype[0].isupper() else dtype)
        return s.astype(dtype)
    return pd.Series(values, dtype=object)


class TableBatches:
    """A table's rows as compact codes and scalars (data.batches protocol): each batch is the one-hot
    features the model reads, gathered on the device."""

    def __init__(self, encoding: TableEncoding, codes, scalars):
        self.encoding = encoding
        self.codes = torch.as_tensor(codes)
        self.scalars = torch.as_tensor(scalars)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.codes), self.encoding.n_features)

    def __len__(self) -> int:
        return len(self.codes)

    def to(self, device: torch.device) -> TableBatches:
        return TableBatches(self.encoding, self.codes.to(device), self.scalars.to(device))

    def batch(self, idx) -> tuple:
        return (self.inputs(idx),)

    def inputs(self, idx) -> torch.Tensor:
        if isinstance(idx, slice):
            return self.encoding.features(self.codes[idx], self.scalars[idx])
        return self.encoding.features(self.codes.index_select(0, idx), self.scalars.index_select(0, idx))
