"""Tables for the autoencoder family: CSV / .npz reading and a preprocessing schema fitted on training data.

Numeric columns are centred on their median, scaled by their inter-quartile range (robust to the
outliers an anomaly detector is looking for) and passed through asinh, which is linear near 0 and
logarithmic in the tails: heavy-tailed columns (ADBench's ALOI reaches 20,000 IQRs) stay ordered, so
extreme values stay extreme, without swamping the loss; categorical columns (any non-numeric column) become
one-hot blocks, with categories unseen in training scored as no block at all (and reported); constant
columns are dropped and recorded. A column of numbers with a few stray text cells is refused with those
cells named, not read as categories. Missing values are never dropped or imputed silently: they are reported with
their rows and columns. The fitted schema is plain JSON, saved with a model and checked against new data.
"""
from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data.files import reading_arrays
from .errors import VaekitError, VaekitWarning

MISSING = {"", "?", "na", "n/a", "nan", "null", "none"}


NUMERIC_SHARE = 0.9  # a column whose cells are at least this share numbers is numeric with a few bad cells


@dataclass
class Table:
    columns: list[str]
    values: list[np.ndarray]  # one array per column: float64, or object (strings) for categorical columns
    label: np.ndarray | None = None  # the label column as read (numbers or strings); see anomaly.anomaly_labels
    rows: np.ndarray | None = None  # each row's number in the input (0 = the first data row); kept by drop_missing

    def __post_init__(self):
        if self.rows is None:
            self.rows = np.arange(len(self))

    def __len__(self) -> int:
        return len(self.values[0]) if self.values else 0

    @classmethod
    def from_array(cls, x: np.ndarray, label: np.ndarray | None = None, source: str = "X") -> Table:
        """A numeric (rows, columns) array as a table with columns x0, x1, ..."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise VaekitError(f"{source}: a table is (rows, columns); got shape {x.shape}")
        return cls([f"x{j}" for j in range(x.shape[1])], [x[:, j] for j in range(x.shape[1])], label)


def _is_missing(cell: str) -> bool:
    return cell.lower() in MISSING


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _cells(bad: list[tuple[int, str]], limit: int = 5) -> str:
    """'row 17 (line 19) 'abc', ...': data rows counted from 0, file lines from 1 with the header as line 1."""
    shown = ", ".join(f"row {i} (line {i + 2}) {c!r}" for i, c in bad[:limit])
    return shown + (f" and {len(bad) - limit} more" if len(bad) > limit else "")


def _parse_column(raw: list[str], name: str, source, coerce: bool = False, categorical: bool = False) -> np.ndarray:
    """float64 if the non-missing cells are numbers (missing -> NaN), else stripped strings (missing -> None).

    A column that is numbers except for a few cells (at least NUMERIC_SHARE of them numbers) is refused with
    those cells named: one typo must not silently turn an age into a category. coerce reads such cells as
    missing, with a warning; categorical reads the column as categories whatever it holds.
    """
    cells = [c.strip() for c in raw]
    if categorical:
        return np.array([None if _is_missing(c) else c for c in cells], dtype=object)
    numbers = [np.nan if _is_missing(c) else _number(c) for c in cells]
    bad = [(i, c) for i, (c, v) in enumerate(zip(cells, numbers)) if v is None]
    present = sum(not _is_missing(c) for c in cells)
    if not bad:
        return np.array(numbers, dtype=np.float64)
    if present and (present - len(bad)) / present < NUMERIC_SHARE:
        return np.array([None if _is_missing(c) else c for c in cells], dtype=object)
    if not coerce:
        raise VaekitError(
            f"{source}: column '{name}' holds numbers except for {len(bad)} cell(s): {_cells(bad)}. Fix those "
            f"cells, leave them empty to mark them missing, pass --coerce (coerce=True) to read them as missing, "
            f"or --categorical {name} (categorical=[...]) to read the column as categories")
    warnings.warn(f"{source}: column '{name}': read {len(bad)} non-numeric cell(s) as missing (--coerce): {_cells(bad)}",
                  VaekitWarning, stacklevel=3)
    return np.array([np.nan if v is None else v for v in numbers], dtype=np.float64)


def read_csv(path, label_column: str | None = None, coerce: bool = False,
             categorical: tuple[str, ...] | list[str] = ()) -> Table:
    """A CSV with a header row; label_column (if given) is split off as the table's label, as read.

    coerce: read the stray non-numeric cells of an otherwise numeric column as missing (with a warning)
    instead of refusing them; categorical: columns read as categories even where they hold numbers.
    """
    path = Path(path)
    if not path.is_file():
        raise VaekitError(f"table not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as e:
        raise VaekitError(f"{path} is not UTF-8 text (byte {e.start}): save the table as a UTF-8 CSV") from None
    except csv.Error as e:
        raise VaekitError(f"{path} is not a readable CSV ({e}); save it again as CSV") from None
    blank = [i for i, r in enumerate(rows) if not any(c.strip() for c in r)]
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise VaekitError(f"{path} has no data rows: expected a header line and at least one row")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    if blank:  # row numbers count data rows as written: a blank line is no row, and says so
        warnings.warn(f"{path}: skipped {len(blank)} blank line(s)", VaekitWarning, stacklevel=2)
    bad = next((i for i, r in enumerate(body) if len(r) != len(header)), None)
    if bad is not None:
        raise VaekitError(f"{path}: data row {bad} (line {bad + 2}) has {len(body[bad])} cells but the header has "
                          f"{len(header)} columns; fix the row (quote cells that contain commas)")
    unknown = [c for c in categorical if c not in header]
    if unknown:
        raise VaekitError(f"--categorical names column(s) {unknown} that {path} does not have; its columns are {header}")
    cols = {h: _parse_column([r[j] for r in body], h, path, coerce, h in categorical) if h != label_column
            else np.array([c.strip() for c in (r[j] for r in body)], dtype=object)
            for j, h in enumerate(header)}
    label = None
    if label_column is not None:
        if label_column not in cols:
            raise VaekitError(f"label column '{label_column}' is not in {path}; its columns are {header}")
        label = cols.pop(label_column)
    return Table(list(cols), list(cols.values()), label)


def read_table(path, label_column: str | None = None, coerce: bool = False,
               categorical: tuple[str, ...] | list[str] = ()) -> Table:
    """A .csv file (see read_csv), or an .npz with X (and optional y): every column of X is numeric."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return read_csv(path, label_column, coerce, categorical)
    if path.suffix.lower() == ".npz":
        if not path.is_file():
            raise VaekitError(f"table not found: {path}")
        with reading_arrays(path), np.load(path, allow_pickle=False) as z:
            key = next((k for k in ("X", "x", "data") if k in z), None)
            if key is None:
                raise VaekitError(f"{path} holds {list(z.keys())}; expected the table under X (and labels under y)")
            x = np.asarray(z[key], dtype=np.float64)
            y = np.asarray(z["y"]) if "y" in z else None
        if y is not None and len(y) != len(x):
            raise VaekitError(f"{path}: {len(x)} rows in {key} but {len(y)} labels in y; they must match one to one")
        return Table.from_array(x, y, source=f"{path}: {key}")
    raise VaekitError(f"cannot read {path} as a table: expected a .csv file with a header line, or an .npz file "
                      f"with X (and y)")


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
        parts, unseen = [], []
        for name in self.order:
            col = given[name]
            if name in self.numeric:
                if col.dtype == object:
                    bad = [(int(r), v) for r, v in zip(table.rows, col) if v is not None and _number(v) is None]
                    raise VaekitError(f"column '{name}' was numeric in training but holds text here: "
                                      f"{_cells(bad)}; fix those cells, or fit the model on data like these")
                med, scale = self.numeric[name]
                parts.append(np.arcsinh((col - med) / scale)[:, None])
            elif name in self.categorical:
                cats = self.categorical[name]
                strings = col if col.dtype == object else np.array([_category(v) for v in col], dtype=object)
                block = np.stack([strings == c for c in cats], axis=1)
                if (new := ~block.any(1)).any():
                    values = sorted({str(v) for v in strings[new]})
                    unseen.append(f"'{name}': {', '.join(repr(v) for v in values[:5])}"
                                  f"{f' and {len(values) - 5} more' if len(values) > 5 else ''} "
                                  f"({int(new.sum())} rows, first: row {int(table.rows[new][0])})")
                parts.append(block.astype(np.float64))
        if unseen:
            warnings.warn("categories not seen in training, scored as none of the known ones (an all-zero one-hot "
                          "block): " + "; ".join(unseen), VaekitWarning, stacklevel=2)
        return np.concatenate(parts, axis=1).astype(np.float32)

    def to_dict(self) -> dict:
        return {"numeric": {k: list(v) for k, v in self.numeric.items()}, "categorical": self.categorical,
                "dropped": self.dropped, "order": self.order}

    @classmethod
    def from_dict(cls, d: dict) -> TableSchema:
        return cls({k: tuple(v) for k, v in d["numeric"].items()}, d["categorical"], d["dropped"], d["order"])


def _category(v: float) -> str:
    """A number read where categories were fitted, as the category text it was read from: 3.0 -> '3'."""
    return str(int(v)) if float(v).is_integer() else str(v)


def missing_rows(table: Table) -> tuple[np.ndarray, dict[str, int]]:
    """(positions of the rows with a missing value, count of missing values per column)."""
    masks = {n: (np.isnan(v) if v.dtype != object else np.array([c is None for c in v]))
             for n, v in zip(table.columns, table.values)}
    per_col = {n: int(m.sum()) for n, m in masks.items() if m.any()}
    rows = np.flatnonzero(np.any(np.stack(list(masks.values())), axis=0)) if masks else np.array([], int)
    return rows, per_col


def check_missing(table: Table) -> None:
    rows, per_col = missing_rows(table)
    if len(rows):
        cols = ", ".join(f"{c} ({n})" for c, n in per_col.items())
        raise VaekitError(f"{len(rows)} rows have missing values (first rows: {table.rows[rows[:5]].tolist()}; "
                          f"columns: {cols}); "
                          f"impute them, or drop those rows (--drop-missing drops them and says how many)")


def drop_missing(table: Table) -> tuple[Table, np.ndarray]:
    """The table without its rows that have missing values (each kept row keeps its number in table.rows),
    and the numbers of the rows dropped."""
    rows, _ = missing_rows(table)
    keep = np.setdiff1d(np.arange(len(table)), rows)
    label = None if table.label is None else table.label[keep]
    return Table(table.columns, [v[keep] for v in table.values], label, table.rows[keep]), table.rows[rows]
