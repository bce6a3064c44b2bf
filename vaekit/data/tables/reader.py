"""Tables for the autoencoder family: reading (CSV and Parquet through pandas, DataFrames, .npz arrays), each
column typed, and a preprocessing schema fitted on training data.

Columns are typed from their values (infer_column): a column of numbers with a few stray text cells is
refused with those cells named, not read as categories. Numeric columns are centred on their median,
scaled by their inter-quartile range (robust to the outliers an anomaly detector is looking for) and passed
through asinh, which is linear near 0 and logarithmic in the tails: heavy-tailed columns (ADBench's ALOI
reaches 20,000 IQRs) stay ordered, so extreme values stay extreme, without swamping the loss. Categorical
columns become one-hot blocks, with categories unseen in training scored as no block at all (and reported);
constant columns are dropped and recorded. Missing values are never dropped or imputed silently: they are
reported with their rows and columns. The fitted schema is plain JSON, saved with a model and checked
against new data.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..images.files import reading_arrays
from ...errors import VaekitError, VaekitWarning, listed

MISSING = {"", "?", "na", "n/a", "nan", "null", "none"}
NUMERIC_SHARE = 0.9  # a column whose cells are at least this share numbers is numeric with a few bad cells
ID_SHARE = 0.95  # a text column with at least this share of distinct values (and > 20 rows) names its rows
# what a column holds; numbers (continuous, integer, datetime as seconds) are float64, the rest text
MAX_COLUMNS = 10_000  # a table with more is not one a generative model of its columns can learn
HEADER_BYTES = 4 * 2 ** 20  # the header line is read this far to count its columns
COLUMN_TYPES = ("continuous", "integer", "boolean", "categorical", "datetime", "id")
_BOOLEAN = {"true", "false"}


@dataclass
class Table:
    columns: list[str]
    values: list[np.ndarray]  # one array per column: float64 (numbers, NaN missing) or object (text, None missing)
    label: np.ndarray | None = None  # the label column as read (numbers or strings); see anomaly.anomaly_labels
    rows: np.ndarray | None = None  # each row's number in the input (0 = the first data row); kept by drop_missing
    types: dict[str, str] | None = None  # column -> one of COLUMN_TYPES (default: by the values' dtype)
    lines: bool = False  # read from a file: messages give a row's line too (its number + 2, the header first)

    def __post_init__(self):
        if self.rows is None:
            self.rows = np.arange(len(self))
        if self.types is None:
            self.types = {c: "categorical" if v.dtype == object else "continuous"
                          for c, v in zip(self.columns, self.values)}

    def __len__(self) -> int:
        return len(self.values[0]) if self.values else 0

    def take(self, keep) -> Table:
        """The rows keep (positions or a mask), each keeping its number and the column types."""
        label = None if self.label is None else self.label[keep]
        return Table(self.columns, [v[keep] for v in self.values], label, self.rows[keep], self.types, self.lines)

    @classmethod
    def from_array(cls, x: np.ndarray, label: np.ndarray | None = None, source: str = "X") -> Table:
        """A numeric (rows, columns) array as a table with columns x0, x1, ..."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise VaekitError(f"{source}: a table is (rows, columns); got shape {x.shape}")
        return cls([f"x{j}" for j in range(x.shape[1])], [x[:, j] for j in range(x.shape[1])], label)

    @classmethod
    def from_frame(cls, df, label_column: str | None = None, coerce: bool = False, types: dict | None = None,
                   source: str = "the DataFrame", lines: bool = False) -> Table:
        """A pandas DataFrame as a table: each column's type inferred from its dtype and values (see
        infer_column), or given in types (column -> one of COLUMN_TYPES)."""
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise VaekitError(f"{source} is a {type(df).__name__}, not a pandas DataFrame")
        names = [str(c) for c in df.columns]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise VaekitError(f"{source} has more than one column named {twice}; give every column its own name")
        if len(df) == 0 or not names:
            raise VaekitError(f"{source} is empty ({len(df)} rows, {len(names)} columns); a table needs rows and "
                              f"columns")
        types = dict(types or {})
        unknown = sorted(set(types) - set(names))
        if unknown:
            raise VaekitError(f"column types are given for {unknown}, which {source} does not have; its columns "
                              f"are {names}")
        if label_column is not None and label_column not in names:
            raise VaekitError(f"label column '{label_column}' is not in {source}; its columns are {names}")
        columns, values, found, label = [], [], {}, None
        for name, series in zip(names, (df[c] for c in df.columns)):
            if name == label_column:
                label = np.array([None if _missing_value(v) else (v.strip() if isinstance(v, str) else v)
                                  for v in series.tolist()], dtype=object)
                continue
            kind, col = infer_column(series, name, source, coerce, types.get(name), lines)
            columns.append(name)
            values.append(col)
            found[name] = kind
        if not columns:
            raise VaekitError(f"{source} has no column besides the label column '{label_column}'")
        return cls(columns, values, label, None, found, lines)


def _missing_value(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and v.strip().lower() in MISSING)


def _text_cells(series) -> tuple[np.ndarray, Callable[[], tuple[np.ndarray, np.ndarray]]]:
    """(each cell stripped, '' where missing, as an object array; a function giving each cell's number, NaN
    where missing, None where not a number). A column of strings (every CSV column) is factorised and each
    distinct text looked at once: a wide table of few values per column costs hashing, not a call per cell."""
    import pandas as pd

    raw = series.to_numpy(dtype=object)
    if len(raw) and pd.api.types.infer_dtype(raw, skipna=False) == "string":
        inverse, uniques = pd.factorize(raw)  # hashed: numpy's unique would copy every cell to the longest's width
        cleaned = np.array(["" if u.strip().lower() in MISSING else u.strip() for u in uniques], dtype=object)
    else:
        inverse = np.arange(len(raw))
        cleaned = np.array(["" if _missing_value(v) else str(v).strip() for v in raw], dtype=object)

    def numbers() -> tuple[np.ndarray, np.ndarray]:
        """(float64 numbers, NaN where missing or not a number; where a present cell is not a number)."""
        parsed = [np.nan if not c else _number(c) for c in cleaned]
        bad = np.array([v is None for v in parsed], dtype=bool)
        values = np.array([np.nan if v is None else v for v in parsed], dtype=np.float64)
        return values[inverse], bad[inverse]

    return cleaned[inverse], numbers


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _cells(bad: list[tuple[int, str]], limit: int = 5, lines: bool = True) -> str:
    """'row 17 (line 19) 'abc', ...': data rows counted from 0; with lines, the file's line (1 = the header)."""
    return listed((f"row {i}{f' (line {i + 2})' if lines else ''} {c!r}" for i, c in bad), limit)


def _numeric(x: np.ndarray, kind: str | None) -> tuple[str, np.ndarray]:
    """(type, x) of a float64 column: kind if given, else 'integer' when every present value is whole."""
    finite = x[~np.isnan(x)]
    whole = bool(len(finite)) and bool(np.all(finite == np.round(finite)))
    return kind or ("integer" if whole else "continuous"), x


def infer_column(series, name: str, source, coerce: bool = False, kind: str | None = None,
                 lines: bool = False) -> tuple[str, np.ndarray]:
    """(type, values) of one column: float64 for numbers (NaN missing), object text otherwise (None missing).

    Numbers are 'integer' when every one is whole, else 'continuous'; text is 'boolean' (true/false only),
    'datetime' (every cell a date or time, kept as seconds since 1970), 'id' (nearly every row its own value,
    more than 20 rows: an identifier, not a category) or 'categorical'. A column that is numbers except for a
    few cells (at least NUMERIC_SHARE of them numbers) is refused with those cells named: one typo must not
    silently turn an age into a category; coerce reads such cells as missing, with a warning. kind forces
    a type (a categorical column of numeric codes, say). lines: messages give each cell's line in a file.
    """
    import pandas as pd

    if kind is not None and kind not in COLUMN_TYPES:
        raise VaekitError(f"column '{name}': unknown type '{kind}'; the types are {', '.join(COLUMN_TYPES)}")
    if pd.api.types.is_bool_dtype(series.dtype) and kind in (None, "boolean"):
        return "boolean", np.array([None if pd.isna(v) else str(bool(v)).lower() for v in series.tolist()], object)
    if pd.api.types.is_datetime64_any_dtype(series.dtype) and kind in (None, "datetime"):
        return "datetime", _seconds(series)
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype) \
            and kind in (None, "continuous", "integer"):
        return _numeric(series.to_numpy(dtype=np.float64, na_value=np.nan), kind)
    cells_arr, numbers_of = _text_cells(series)
    cells = cells_arr.tolist()
    empty = cells_arr == ""
    text = np.where(empty, None, cells_arr).astype(object)
    present = cells_arr[~empty].tolist()
    if kind in ("categorical", "id"):
        return kind, text
    if kind == "boolean":
        bad = [(i, c) for i, c in enumerate(cells) if c and c.lower() not in _BOOLEAN]
        if bad:
            raise VaekitError(f"{source}: column '{name}' is boolean but holds {_cells(bad, lines=lines)}: "
                              f"only true/false")
        return "boolean", np.array([c.lower() if c else None for c in cells], dtype=object)
    if kind == "datetime":
        parsed = pd.to_datetime(pd.Series(text), errors="coerce", format="mixed")
        bad = [(i, c) for i, (c, p) in enumerate(zip(cells, parsed.tolist())) if c and pd.isna(p)]
        if bad:
            raise VaekitError(f"{source}: column '{name}' is datetime but holds {_cells(bad, lines=lines)}, which "
                              f"are not dates or times")
        return "datetime", _seconds(parsed)
    numbers, not_number = numbers_of()
    n_bad = int(not_number.sum())

    def bad() -> list[tuple[int, str]]:  # the cells that are not numbers, for messages only
        return [(int(i), cells[i]) for i in np.flatnonzero(not_number)]

    if not n_bad or kind in ("continuous", "integer"):
        if n_bad and not coerce:
            raise VaekitError(f"{source}: column '{name}' is {kind} but holds text: {_cells(bad(), lines=lines)}; "
                              f"fix those cells, or pass --coerce (coerce=True) to read them as missing")
        return _numeric(numbers, kind)
    if present and (len(present) - n_bad) / len(present) >= NUMERIC_SHARE:
        if not coerce:
            raise VaekitError(
                f"{source}: column '{name}' holds numbers except for {n_bad} cell(s): {_cells(bad(), lines=lines)}. "
                f"Fix those cells, leave them empty to mark them missing, pass --coerce (coerce=True) to read them "
                f"as missing, or --categorical {name} (categorical=[...]) to read the column as categories")
        warnings.warn(f"{source}: column '{name}': read {n_bad} non-numeric cell(s) as missing (--coerce): "
                      f"{_cells(bad(), lines=lines)}", VaekitWarning, stacklevel=3)
        return _numeric(numbers, None)
    if present and {c.lower() for c in present} <= _BOOLEAN:
        return "boolean", np.array([c.lower() if c else None for c in cells], dtype=object)
    if present and all(any(ch in c for ch in "-/:") for c in present):
        parsed = pd.to_datetime(pd.Series(text), errors="coerce", format="mixed")
        if parsed.notna().sum() == len(present):  # every present cell is a date or time
            return "datetime", _seconds(parsed)
    if len(present) > 20 and len(set(present)) >= ID_SHARE * len(present):
        return "id", text
    return "categorical", text


def _seconds(parsed) -> np.ndarray:
    """Parsed dates and times (a datetime64 Series) as float64 seconds since 1970-01-01 (a zoned time by its
    wall clock), NaN missing: a number the models can scale."""
    import pandas as pd

    stamps = parsed.dt.tz_localize(None) if parsed.dt.tz is not None else parsed
    return (stamps - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)


def read_metadata(path) -> dict[str, str]:
    """Column types from a JSON file {"columns": {"name": "categorical", ...}} (types: COLUMN_TYPES)."""
    from ...io import read_json

    doc = read_json(path, "fix the file: {\"columns\": {\"column name\": \"type\"}}")
    cols = doc.get("columns") if isinstance(doc, dict) else None
    if not isinstance(cols, dict) or not all(isinstance(v, str) for v in cols.values()):
        raise VaekitError(f"{path} must hold {{\"columns\": {{\"column name\": \"type\", ...}}}} with types from "
                          f"{', '.join(COLUMN_TYPES)}")
    wrong = {k: v for k, v in cols.items() if v not in COLUMN_TYPES}
    if wrong:
        raise VaekitError(f"{path}: unknown column type(s) {wrong}; the types are {', '.join(COLUMN_TYPES)}")
    return cols


def read_csv(path, label_column: str | None = None, coerce: bool = False,
             categorical: tuple[str, ...] | list[str] = (), types: dict | None = None) -> Table:
    """A CSV with a header row, read by pandas as text and typed column by column (infer_column); a row
    with fewer cells than the header has its last cells empty (as spreadsheets write them), one with more is
    refused. label_column (if given) is split off as the table's label, as read. coerce: read the stray
    non-numeric cells of an otherwise numeric column as missing (with a warning) instead of refusing them;
    categorical (column names) and types (column -> type) override the inferred types."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise VaekitError(f"table not found: {path}")
    with open(path, "rb") as f:  # the header's width, before pandas builds a column per cell of it
        columns = f.readline(HEADER_BYTES).count(b",") + 1
    if columns > MAX_COLUMNS:
        raise VaekitError(f"{path} has a header of {columns} or more columns, more than the {MAX_COLUMNS} a table "
                          f"vaekit models can have: it is not a CSV of named columns, or it is damaged")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=True,
                         encoding="utf-8-sig", skipinitialspace=True)
    except UnicodeDecodeError as e:
        raise VaekitError(f"{path} is not UTF-8 text (byte {e.start}): save the table as a UTF-8 CSV") from None
    except pd.errors.EmptyDataError:
        raise VaekitError(f"{path} has no data rows: expected a header line and at least one row") from None
    except pd.errors.ParserError as e:
        raise VaekitError(f"{path} is not a readable CSV ({str(e).strip()}); fix the row it names (quote cells "
                          f"that contain commas)") from None
    if len(df) == 0:
        raise VaekitError(f"{path} has no data rows: expected a header line and at least one row")
    df.columns = [str(c).strip() for c in df.columns]
    return _typed(df, path, label_column, coerce, categorical, types, lines=True)


def _typed(df, path: Path, label_column, coerce, categorical, types, lines: bool = False) -> Table:
    """A DataFrame read from path as a table, with the columns named by --categorical (checked) and the
    metadata's types forced."""
    unknown = [c for c in categorical if c not in df.columns]
    if unknown:
        raise VaekitError(f"--categorical names column(s) {unknown} that {path} does not have; its columns are "
                          f"{list(df.columns)}")
    return Table.from_frame(df, label_column, coerce, {**{c: "categorical" for c in categorical}, **(types or {})},
                            source=str(path), lines=lines)


def read_table(path, label_column: str | None = None, coerce: bool = False,
               categorical: tuple[str, ...] | list[str] = (), types: dict | None = None) -> Table:
    """A .csv file (see read_csv), a .parquet file (with pyarrow installed), or an .npz with X (and optional
    y): every column of X is numeric."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return read_csv(path, label_column, coerce, categorical, types)
    if path.suffix.lower() == ".parquet":
        return _read_parquet(path, label_column, coerce, categorical, types)
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
    raise VaekitError(f"cannot read {path} as a table: expected a .csv file with a header line, a .parquet file, "
                      f"or an .npz file with X (and y)")


def _read_parquet(path: Path, label_column, coerce, categorical, types) -> Table:
    import pandas as pd

    if not path.is_file():
        raise VaekitError(f"table not found: {path}")
    try:
        df = pd.read_parquet(path)
    except ImportError:
        raise VaekitError(f"reading {path} needs pyarrow: pip install pyarrow, or save the table as CSV") from None
    except (OSError, ValueError) as e:
        raise VaekitError(f"cannot read {path} as Parquet ({e}); save it again") from None
    return _typed(df, path, label_column, coerce, categorical, types)


@dataclass
class TableSchema:
    """How raw columns become model features, fitted on training rows. JSON-ready via to_dict()."""

    numeric: dict[str, tuple[float, float]] = field(default_factory=dict)  # column -> (median, scale)
    categorical: dict[str, list[str]] = field(default_factory=dict)  # column -> categories seen in training
    dropped: list[str] = field(default_factory=list)  # constant columns
    order: list[str] = field(default_factory=list)  # the raw columns fitted on, in order
    identifiers: list[str] = field(default_factory=list)  # 'id' columns: they name rows, and are not modelled
    types: dict[str, str] = field(default_factory=dict)  # column -> its type when fitted (COLUMN_TYPES)

    @classmethod
    def fit(cls, table: Table) -> TableSchema:
        if len(table) == 0:
            raise VaekitError("the table has no rows to fit on")
        refuse_empty_columns(table)
        check_missing(table)
        s = cls(order=list(table.columns), types=dict(table.types))
        for name, col in zip(table.columns, table.values):
            if table.types.get(name) == "id":
                s.identifiers.append(name)
            elif col.dtype == object:
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
            raise VaekitError(f"no column is left to learn from: constant {s.dropped}, identifiers {s.identifiers} "
                              f"(a column whose every row has its own value; give it a type in the metadata if it "
                              f"is not one)")
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
        """Model features (rows, features) float32, after checking the columns and missing values. Which columns
        count is the schema's to say, not the types inferred for the new rows: a few rows can look like an
        identifier (all distinct) where training saw a category, or the other way round."""
        check_missing(table, [c for c in self.order if c in self.numeric or c in self.categorical])
        given = dict(zip(table.columns, table.values))
        missing = [c for c in self.order if c not in given and c not in self.identifiers]
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
                                      f"{_cells(bad, lines=table.lines)}; fix those cells, or fit the model on "
                                      f"data like these")
                med, scale = self.numeric[name]
                parts.append(np.arcsinh((col - med) / scale)[:, None])
            elif name in self.categorical:
                cats = self.categorical[name]
                strings = col if col.dtype == object else np.array([category_text(v) for v in col], dtype=object)
                block = np.stack([strings == c for c in cats], axis=1)
                if (new := ~block.any(1)).any():
                    values = sorted({str(v) for v in strings[new]})
                    unseen.append(f"'{name}': {listed(map(repr, values), 5)} "
                                  f"({int(new.sum())} rows, first: row {int(table.rows[new][0])})")
                parts.append(block.astype(np.float64))
        if unseen:
            warnings.warn("categories not seen in training, scored as none of the known ones (an all-zero one-hot "
                          "block): " + "; ".join(unseen), VaekitWarning, stacklevel=2)
        return np.concatenate(parts, axis=1).astype(np.float32)

    def to_dict(self) -> dict:
        return {"numeric": {k: list(v) for k, v in self.numeric.items()}, "categorical": self.categorical,
                "dropped": self.dropped, "order": self.order, "identifiers": self.identifiers, "types": self.types}

    @classmethod
    def from_dict(cls, d: dict) -> TableSchema:
        return cls({k: tuple(v) for k, v in d["numeric"].items()}, d["categorical"], d["dropped"], d["order"],
                   d.get("identifiers", []), d.get("types", {}))


def category_text(v: float) -> str:
    """A number read where categories were fitted, as the category text it was read from: 3.0 -> '3'."""
    return str(int(v)) if float(v).is_integer() else str(v)


def missing_mask(values: np.ndarray) -> np.ndarray:
    """Which cells of a column are missing: NaN in a numeric column, None in a text one."""
    return np.isnan(values) if values.dtype != object else np.array([v is None for v in values], dtype=bool)


def missing_rows(table: Table, columns: list[str] | None = None) -> tuple[np.ndarray, dict[str, int]]:
    """(positions of the rows with a missing value, count of missing values per column), over columns
    (default: every column but the identifiers, which are not modelled)."""
    if columns is None:
        columns = [n for n in table.columns if table.types.get(n) != "id"]
    given = dict(zip(table.columns, table.values))
    masks = {n: missing_mask(given[n]) for n in columns if n in given}
    per_col = {n: int(m.sum()) for n, m in masks.items() if m.any()}
    rows = np.flatnonzero(np.any(np.stack(list(masks.values())), axis=0)) if masks else np.array([], int)
    return rows, per_col


def check_missing(table: Table, columns: list[str] | None = None) -> None:
    rows, per_col = missing_rows(table, columns)
    if len(rows):
        cols = ", ".join(f"{c} ({n})" for c, n in per_col.items())
        raise VaekitError(f"{len(rows)} rows have missing values (first rows: {table.rows[rows[:5]].tolist()}; "
                          f"columns: {cols}); "
                          f"impute them, or drop those rows (--drop-missing drops them and says how many)")


def refuse_empty_columns(table: Table) -> None:
    """A column missing in every row can not be imputed from its own values, and dropping rows would drop all."""
    _, per_col = missing_rows(table)
    empty = [c for c, n in per_col.items() if n == len(table)]
    if empty:
        raise VaekitError(f"column(s) {empty} are missing in every row: there is nothing to learn from them; "
                          f"remove them from the table")


def drop_missing(table: Table) -> tuple[Table, np.ndarray]:
    """The table without its rows that have missing values (each kept row keeps its number in table.rows),
    and the numbers of the rows dropped."""
    refuse_empty_columns(table)
    rows, _ = missing_rows(table)
    return table.take(np.setdiff1d(np.arange(len(table)), rows)), table.rows[rows]
