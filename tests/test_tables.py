"""Reading tables: column types that a stray cell can not silently change, row numbers that survive
dropping rows, categories never seen in training reported, on real UCI Adult and small fixtures."""
import csv
import json

import numpy as np
import pytest

from vaekit.errors import VaekitError, VaekitWarning
from vaekit.data.tables.reader import TableSchema, drop_missing, read_table
from conftest import require_data


@pytest.fixture(scope="module")
def telco_path():
    return require_data("tabular", "telco-churn", "telco_churn_wa.csv")


def _write(path, header, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def _with_cell(adult_csv, tmp_path, row: int, column: str, value: str):
    with open(adult_csv, newline="") as f:
        rows = list(csv.reader(f))
    rows[row + 1][rows[0].index(column)] = value
    return _write(tmp_path / "adult-edited.csv", rows[0], rows[1:])


def test_one_bad_cell_in_a_numeric_column_is_named_not_read_as_categories(adult_csv, tmp_path):
    path = _with_cell(adult_csv, tmp_path, 17, "age", "abc")
    with pytest.raises(VaekitError, match=r"column 'age' holds numbers except for 1 cell\(s\): row 17 \(line 19\) "
                                          r"'abc'.*--coerce.*--categorical age"):
        read_table(path, "income")
    with pytest.warns(VaekitWarning, match=r"column 'age': read 1 non-numeric cell\(s\) as missing.*row 17"):
        table = read_table(path, "income", coerce=True)
    age = table.values[table.columns.index("age")]
    assert age.dtype == np.float64 and np.isnan(age[17]) and np.isnan(age).sum() == 1
    forced = read_table(adult_csv, "income", categorical=["education-num"])
    assert forced.values[forced.columns.index("education-num")].dtype == object
    with pytest.raises(VaekitError, match=r"--categorical names column\(s\) \['agee'\]"):
        read_table(adult_csv, "income", categorical=["agee"])


def test_a_mostly_text_column_is_categorical(tmp_path):
    path = _write(tmp_path / "t.csv", ["code", "v"], [["A1", 1], ["7", 2], ["B2", 3], ["C3", 4]])
    table = read_table(path)
    assert table.values[0].dtype == object and table.values[1].dtype == np.float64


def test_text_at_score_time_names_the_offending_cells_and_rows(tmp_path):
    train = _write(tmp_path / "train.csv", ["a", "c"], [[i, "xy"[i % 2]] for i in range(20)])
    schema = TableSchema.fit(read_table(train))
    new = _write(tmp_path / "new.csv", ["a", "c"], [["6", "x"], ["seven", "y"], ["eight", "x"], ["9", "x"]])
    with pytest.raises(VaekitError, match=r"column 'a' was numeric in training but holds text here: "
                                          r"row 1 \(line 3\) 'seven', row 2 \(line 4\) 'eight'"):
        schema.transform(read_table(new))


def test_unseen_categories_are_reported_with_their_rows(adult_csv):
    table = read_table(adult_csv, "income")
    table, _ = drop_missing(table)
    col = table.columns.index("native-country")
    train_rows = table.values[col] != "Holand-Netherlands"  # one country seen only once
    assert (~train_rows).sum() == 1
    where = int(table.rows[~train_rows][0])  # its number in the input file, not its position after the drop
    assert where > np.flatnonzero(~train_rows)[0]
    schema = TableSchema.fit(type(table)(table.columns, [v[train_rows] for v in table.values]))
    with pytest.warns(VaekitWarning, match=rf"categories not seen in training.*'native-country': 'Holand-Netherlands' "
                                           rf"\(1 rows, first: row {where}\)"):
        x = schema.transform(table)
    block = [i for i, n in enumerate(schema.feature_names()) if n.startswith("native-country=")]
    assert not x[~train_rows][:, block].any() and x[train_rows][:, block].sum(1).min() == 1


def test_dropping_missing_rows_keeps_every_rows_number(adult_csv):
    table = read_table(adult_csv, "income")
    kept, dropped = drop_missing(table)
    assert len(dropped) == 2399 and len(kept) + len(dropped) == len(table) == 32561
    np.testing.assert_array_equal(np.sort(np.concatenate([kept.rows, dropped])), np.arange(len(table)))
    occupation = table.values[table.columns.index("occupation")]
    assert all(occupation[r] is None or table.values[table.columns.index("workclass")][r] is None
               or table.values[table.columns.index("native-country")][r] is None for r in dropped)
    assert dropped[:2].tolist() == [14, 27]  # lines 16 and 29 of the file hold a '?'
    assert kept.rows[13:16].tolist() == [13, 15, 16] and kept.rows[-1] == 32560
    assert kept.label[0] == "<=50K"  # labels stay as read, matched to their rows


def _every_type(n: int = 120):
    import pandas as pd

    rng = np.random.default_rng(0)
    income = rng.lognormal(10, 1, n)
    income[::10] = np.nan  # a tenth missing
    return pd.DataFrame({
        "customer": [f"C{i:05d}" for i in range(n)],  # an identifier: one value per row
        "joined": pd.date_range("2021-01-01", periods=n, freq="D"),
        "active": rng.random(n) < 0.5,
        "children": rng.integers(0, 4, n),
        "income": income,
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "zip": rng.choice(["10115", "20095", "80331"], n),  # numeric-looking codes
    })


def test_column_types_are_inferred_from_a_dataframe_and_overridable():
    from vaekit.data.tables.reader import Table

    df = _every_type()
    table = Table.from_frame(df)
    assert table.types == {"customer": "id", "joined": "datetime", "active": "boolean", "children": "integer",
                           "income": "continuous", "plan": "categorical", "zip": "integer"}
    joined = table.values[table.columns.index("joined")]
    assert joined[1] - joined[0] == 86400.0 and joined[0] == df["joined"][0].timestamp()  # seconds since 1970
    assert set(table.values[table.columns.index("active")]) == {"true", "false"}
    forced = Table.from_frame(df, types={"zip": "categorical"})
    assert forced.types["zip"] == "categorical" and set(forced.values[forced.columns.index("zip")]) == {"10115", "20095", "80331"}
    with pytest.raises(VaekitError, match=r"column types are given for \['zipp'\]"):
        Table.from_frame(df, types={"zipp": "categorical"})
    with pytest.raises(VaekitError, match="unknown type 'text'"):
        Table.from_frame(df, types={"zip": "text"})


def test_the_schema_models_every_type_but_identifiers_and_round_trips(tmp_path):
    from vaekit.data.tables.reader import Table

    df = _every_type()
    table, dropped = drop_missing(Table.from_frame(df, types={"zip": "categorical"}))
    assert len(dropped) == 12 and dropped.tolist() == list(range(0, 120, 10))  # the missing incomes, by row
    schema = TableSchema.fit(table)
    assert schema.identifiers == ["customer"] and "customer" not in schema.feature_names()
    assert set(schema.numeric) == {"joined", "children", "income"} and set(schema.categorical) == {"active", "plan", "zip"}
    again = TableSchema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert again == schema
    np.testing.assert_array_equal(again.transform(table), schema.transform(table))
    table.values[table.columns.index("customer")][:] = None  # identifiers are neither modelled nor checked
    assert schema.transform(table).shape == (108, len(schema.feature_names()))


def test_metadata_file_sets_column_types_and_parquet_needs_pyarrow(adult_csv, tmp_path):
    from vaekit.data.tables.reader import read_metadata

    (tmp_path / "meta.json").write_text(json.dumps({"columns": {"education-num": "categorical"}}))
    table = read_table(adult_csv, "income", types=read_metadata(tmp_path / "meta.json"))
    assert table.types["education-num"] == "categorical" and table.types["age"] == "integer"
    (tmp_path / "bad.json").write_text(json.dumps({"columns": {"age": "number"}}))
    with pytest.raises(VaekitError, match=r"unknown column type\(s\) \{'age': 'number'\}"):
        read_metadata(tmp_path / "bad.json")
    try:
        import pyarrow  # noqa: F401  (only whether it imports)
    except ImportError:
        (tmp_path / "t.parquet").write_bytes(b"PAR1")
        with pytest.raises(VaekitError, match="needs pyarrow: pip install pyarrow"):
            read_table(tmp_path / "t.parquet")


def test_a_detector_fits_a_dataframe_as_it_fits_the_same_csv(telco_path):
    import pandas as pd

    from vaekit.tasks.anomaly import AnomalyDetector

    df = pd.read_csv(telco_path).dropna().head(600).drop(columns="churn")
    table = read_table(telco_path, "churn")
    kept = table.take(np.flatnonzero(~np.isnan(table.values[table.columns.index("total_charges")]))[:600])
    a = AnomalyDetector(n_members=1, epochs=3, random_state=0).fit(df)
    b = AnomalyDetector(n_members=1, epochs=3, random_state=0).fit(kept)
    assert a.schema_.categorical == b.schema_.categorical and a.schema_.numeric == b.schema_.numeric
    np.testing.assert_allclose(a.decision_function(df), b.decision_function(kept), rtol=1e-6)


def test_a_column_missing_in_every_row_is_named(tmp_path):
    path = _write(tmp_path / "t.csv", ["a", "b", "c"], [[1, "", "x"], [2, "", "y"], [3, "?", "x"]])
    with pytest.raises(VaekitError, match=r"column\(s\) \['b'\] are missing in every row.*remove them"):
        drop_missing(read_table(path))
    with pytest.raises(VaekitError, match=r"column\(s\) \['b'\] are missing in every row"):
        TableSchema.fit(read_table(path))


def test_messages_give_file_lines_only_for_tables_read_from_files():
    import pandas as pd

    from vaekit.data.tables.reader import Table

    schema = TableSchema.fit(Table.from_frame(pd.DataFrame({"a": range(20), "c": ["x", "y"] * 10})))
    with pytest.raises(VaekitError, match=r"holds text here: row 1 'seven'; fix"):
        schema.transform(Table.from_frame(pd.DataFrame({"a": ["6", "seven"], "c": ["x", "y"]})))


def test_the_schema_not_the_new_rows_decides_which_columns_are_modelled():
    """Ten new rows all look like identifiers; a fitted identifier may look like a category in them."""
    from vaekit.data.tables.reader import Table

    df = _every_type()
    df["code"] = np.random.default_rng(1).choice(["K1", "K2"], len(df))
    fitted = Table.from_frame(df.dropna(), types={"zip": "categorical"})
    schema = TableSchema.fit(fitted)
    assert schema.identifiers == ["customer"] and "code" in schema.categorical
    few = df.dropna().head(10).copy()  # ten rows: read alone, their identifiers look like a category
    few["customer"] = few["customer"].astype(object)
    few.iloc[3, few.columns.get_loc("customer")] = None  # an identifier is not modelled: a gap there is fine
    assert schema.transform(Table.from_frame(few, types={"zip": "categorical"})).shape[0] == 10
    new = df.dropna().head(30).copy()
    new["code"] = [f"new-{i}" for i in range(30)]  # 30 distinct values: read alone, an identifier
    new.iloc[5, new.columns.get_loc("code")] = None
    with pytest.raises(VaekitError, match=r"1 rows have missing values \(first rows: \[5\]; columns: code \(1\)\)"):
        schema.transform(Table.from_frame(new, types={"zip": "categorical"}))
