"""Tables for the autoencoder family: CSV / .npz reading and a preprocessing schema fitted on training data.

Numeric columns are centred on their median, scaled by their inter-quartile range (robust to the
outliers an anomaly detector is looking for) and passed through asinh, which is linear near 0 and
logarithmic in the tails: heavy-tailed columns (ADBench's ALOI reaches 20,000 IQRs) stay ordered, so
extreme values stay extreme, without swamping the loss; categorical columns (any non-numeric column) become
one-hot blocks, with unseen categories at scoring time mapped to no block at all; constant columns are
dropped and recorded. Missing values are never dropped or imputed silently: they are reported with
their rows and columns. The fitted schema is plain JSON, saved with a model and checked against new data.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import VaekitError

MISSING = {"", "?", "na", "n/a", "nan", "null", "none"}


@dataclass
class Table:
    columns: list[str]
    values: list[np.ndarray]  # one array per column: float64, or object (strings) for categorical columns
    label: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.values[0]) if self.values else 0

    @classmethod
    def from_array(cls, x: np.ndarray, label: np.ndarray | None = None, source: str = "X") -> Table:
        """A numeric (rows, columns) array as a table with columns x0, x1, ..."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise VaekitError(f"{source}: a table is (rows, columns); got shape {x.shape}")
        return cls([f"x{j}" for j in range(x.shape[1])], [x[:, j] for j in range(x.shape[1])], label)


def _parse_column(raw: list[str]) -> np.ndarray:
    """float64 if every non-missing cell is a number (missing -> NaN), else stripped strings (missing -> None)."""
    cells = [c.strip() for c in raw]
    try:
        return np.array([np.nan if c.lower() in MISSING else float(c) for c in cells], dtype=np.float64)
    except ValueError:
        return np.array([None if c.lower() in MISSING else c for c in cells], dtype=object)


def read_csv(path, label_column: str | None = None) -> Table:
    """A CSV with a header row; label_column (if given) is split off as y (1 = anomaly, or class labels)."""
    path = Path(path)
    if not path.is_file():
        raise VaekitError(f"table not found: {path}")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise VaekitError(f"{path} has no data rows: expected a header line and at least one row")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    bad = next((i for i, r in enumerate(body) if len(r) != len(header)), None)
    if bad is not None:
        raise VaekitError(f"{path}: data row {bad + 1} has {len(body[bad])} cells but the header has {len(header)} "
                          f"columns; fix the row (quote cells that contain commas)")
    cols = {h: _parse_column([r[j] for r in body]) for j, h in enumerate(header)}
    label = None
    if label_column is not None:
        if label_column not in cols:
            raise VaekitError(f"label column '{label_column}' is not in {path}; its columns are {header}")
        label = _labels(cols.pop(label_column), label_column)
    return Table(list(cols), list(cols.values()), label)


def _labels(col: np.ndarray, name: str) -> np.ndarray:
    if col.dtype == object:
        values = sorted({v for v in col if v is not None})
        return np.array([values.index(v) for v in col])
    if np.isnan(col).any():
        raise VaekitError(f"label column '{name}' has missing values in rows {np.flatnonzero(np.isnan(col))[:5].tolist()}")
    return col.astype(np.int64)


def read_table(path, label_column: str | None = None) -> Table:
    """A .csv file, or an .npz with X (and optional y): every column of X is numeric."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return read_csv(path, label_column)
    if path.suffix.lower() == ".npz":
        if not path.is_file():
            raise VaekitError(f"table not found: {path}")
        with np.load(path, allow_pickle=False) as z:
            key = next((k for k in ("X", "x", "data") if k in z), None)
            if key is None:
                raise VaekitError(f"{path} holds {list(z.keys())}; expected the table under X (and labels under y)")
            x = np.asarray(z[key], dtype=np.float64)
            y = np.asarray(z["y"]).astype(np.int64) if "y" in z else None
        return Table.from_array(x, y, source=f"{path}: {key}")
    raise VaekitError(f"cannot read {path} as a table: expected a .csv or an .npz file")


@dataclass
class TableSchema:
    """How raw columns become model features, fitted on training rows. JSON-ready via to_dict()."""

    numeric: dict[str, tuple[float, float]] = field(default_factory=dict)  # column -> (median, scale)
    categorical: dict[str, list[str]] = field(default_factory=dict)  # column -> categories seen in training
    dropped: list[str] = field(default_factory=list)  # constant columns
    order: list[str] = field(default_factory=list)  # the raw columns fitted on, in order

    @classmethod
    def fit(cls, table: Table) -> TableSchema:
        check_missing(table)
        s = cls(order=list(table.columns))
        for name, col in zip(table.columns, table.values):
            if col.dtype == object:
                cats = sorted(set(col))
                if len(cats) <= 1:
                    s.dropped.append(name)
                else:
                    s.categorical[name] = cats
            else:
                q1, med, q3 = np.percentile(col, [25, 50, 75])
                scale = q3 - q1 or col.std()
                if scale == 0:
                    s.dropped.append(name)
                else:
                    s.numeric[name] = (float(med), float(scale))
        if not s.numeric and not s.categorical:
            raise VaekitError(f"every column is constant ({', '.join(s.dropped)}): there is nothing to learn")
        return s

    def feature_names(self) -> list[str]:
        names = []
        for name in self.order:
            if name in self.numeric:
                names.append(name)
            elif name in self.categorical:
                names += [f"{name}={c}" for c in self.categorical[name]]
        return names

    def feature_groups(self) -> list[tuple[str, slice]]:
        """(raw column, its slice of model features): one-hot blocks count as their column."""
        groups, j = [], 0
        for name in self.order:
            width = 1 if name in self.numeric else len(self.categorical.get(name, []))
            if width:
                groups.append((name, slice(j, j + width)))
                j += width
        return groups

    def transform(self, table: Table) -> np.ndarray:
        """Model features (rows, features) float32, after checking the columns and missing values."""
        check_missing(table)
        given = dict(zip(table.columns, table.values))
        missing = [c for c in self.order if c not in given]
        if missing:
            raise VaekitError(f"the table lacks column(s) {missing} that the model was trained on; "
                              f"its columns are {table.columns}")
        parts = []
        for name in self.order:
            col = given[name]
            if name in self.numeric:
                if col.dtype == object:
                    raise VaekitError(f"column '{name}' was numeric in training but holds text here, e.g. "
                                      f"{next(v for v in col if v is not None)!r}")
                med, scale = self.numeric[name]
                parts.append(np.arcsinh((col - med) / scale)[:, None])
            elif name in self.categorical:
                cats = self.categorical[name]
                strings = col.astype(str) if col.dtype != object else col
                parts.append(np.stack([strings == c for c in cats], axis=1).astype(np.float64))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def to_dict(self) -> dict:
        return {"numeric": {k: list(v) for k, v in self.numeric.items()}, "categorical": self.categorical,
                "dropped": self.dropped, "order": self.order}

    @classmethod
    def from_dict(cls, d: dict) -> TableSchema:
        return cls({k: tuple(v) for k, v in d["numeric"].items()}, d["categorical"], d["dropped"], d["order"])


def missing_rows(table: Table) -> tuple[np.ndarray, dict[str, int]]:
    """(rows with a missing value, count of missing values per column)."""
    masks = {n: (np.isnan(v) if v.dtype != object else np.array([c is None for c in v]))
             for n, v in zip(table.columns, table.values)}
    per_col = {n: int(m.sum()) for n, m in masks.items() if m.any()}
    rows = np.flatnonzero(np.any(np.stack(list(masks.values())), axis=0)) if masks else np.array([], int)
    return rows, per_col


def check_missing(table: Table) -> None:
    rows, per_col = missing_rows(table)
    if len(rows):
        cols = ", ".join(f"{c} ({n})" for c, n in per_col.items())
        raise VaekitError(f"{len(rows)} rows have missing values (first rows: {rows[:5].tolist()}; columns: {cols}); "
                          f"impute them, or drop those rows (--drop-missing drops them and says how many)")


def drop_missing(table: Table) -> tuple[Table, np.ndarray]:
    """The table without its rows that have missing values, and the indices of the rows dropped."""
    rows, _ = missing_rows(table)
    keep = np.setdiff1d(np.arange(len(table)), rows)
    return Table(table.columns, [v[keep] for v in table.values], None if table.label is None else table.label[keep]), rows
