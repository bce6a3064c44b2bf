"""Synthetic tables: the table encoding, the mixed likelihood, TabularVAE and `vaekit tabular`."""
import numpy as np
import pandas as pd
import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.data.tables.encoding import TableBatches, TableEncoding
from vaekit.data.tables.reader import Table
from vaekit.models.likelihoods import TableLikelihood

from conftest import require_data

SMALL = dict(epochs=300, latent_dim=8, hidden=(64, 64), prior_components=8, device="cpu")


def every_type(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """One column of every type, with missing values, and columns that depend on each other."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2])
    level = np.where(group == "north", rng.normal(0, 1, n), rng.normal(10, 1, n))  # bimodal, follows group
    level[rng.random(n) < 0.1] = np.nan  # 10% missing
    return pd.DataFrame({
        "group": group,
        "level": level,
        "age": rng.integers(18, 91, n),
        "rating": rng.integers(1, 6, n),  # few values: coded value by value
        "member": rng.random(n) < 0.3,
        "joined": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), unit="D"),
        "customer": [f"c{i:05d}" for i in range(n)],  # an identifier
        "country": "NL",  # constant
        "colour": pd.Series(rng.choice(["red", "blue", None], n, p=[0.6, 0.3, 0.1]), dtype=object),
    })


@pytest.fixture(scope="module")
def fitted():
    df = every_type()
    return df, vaekit.TabularVAE(random_state=0, **SMALL).fit(df)


def test_a_table_of_every_type_comes_back_with_its_columns_types_bounds_and_missing_share(fitted):
    df, model = fitted
    s = model.sample(3000, random_state=1)
    assert list(s.columns) == list(df.columns)
    assert s.dtypes.astype(str).to_dict() == {**df.dtypes.astype(str).to_dict(), "joined": "datetime64[ns]"}
    assert abs(s["level"].isna().mean() - 0.1) < 0.04 and abs(s["colour"].isna().mean() - 0.1) < 0.04
    assert s["age"].between(df["age"].min(), df["age"].max()).all() and (s["age"] % 1 == 0).all()
    assert s["level"].min() >= df["level"].min() and s["level"].max() <= df["level"].max()
    assert set(s["rating"]) <= set(df["rating"]) and set(s["group"]) == set(df["group"])
    assert set(s["colour"].dropna()) <= {"red", "blue"}
    assert s["joined"].between(df["joined"].min(), df["joined"].max()).all()
    assert (s["country"] == "NL").all() and s["customer"].is_unique and not set(s["customer"]) & set(df["customer"])
    assert abs(s["member"].mean() - df["member"].mean()) < 0.06
    # both modes of the bimodal column, in their shares
    assert abs((s["level"] > 5).mean() - (df["level"] > 5).mean()) < 0.06
    losses = [r["train_loss"] for r in model.history_]
    assert len(losses) == model.epochs_ and losses[-1] < losses[0]


def test_conditions_hold_in_every_row_and_the_other_columns_follow_that_class(fitted):
    df, model = fitted
    s = model.sample(1000, random_state=2, conditions={"group": "north"})
    assert (s["group"] == "north").all()
    real = df[df["group"] == "north"]["level"].dropna()
    assert abs(s["level"].dropna().mean() - real.mean()) < 1.0  # north is the mode at 0, not the one at 10
    other = model.sample(1000, random_state=2, conditions={"group": "south", "rating": 3})
    assert (other["group"] == "south").all() and (other["rating"] == 3).all()
    assert other["level"].dropna().mean() > 8


def test_rows_encode_to_codes_and_a_code_decodes_to_rows_drawn_from_the_decoder_s_distribution(fitted):
    df, model = fitted
    z = model.transform(df)
    assert z.shape == (len(df), 8) and z.dtype == np.float32
    assert np.array_equal(z, model.transform(df))  # posterior means: no randomness
    back = model.inverse_transform(z[:50], random_state=0)
    assert list(back.columns) == list(df.columns) and len(back) == 50
    pd.testing.assert_frame_equal(back, model.inverse_transform(z[:50], random_state=0))
    with pytest.raises(vaekit.VaekitError, match=r"codes must have shape \(N, 8\)"):
        model.inverse_transform(z[:, :3])
    # columns independent given z: one code drawn 4,000 times gives each group as often as the decoder says
    plain = vaekit.TabularVAE(random_state=0, autoregressive=0, **{**SMALL, "epochs": 30}).fit(df)
    code = plain.transform(df.iloc[:1])
    rows = plain.inverse_transform(np.repeat(code, 4000, 0), random_state=1)
    with torch.no_grad():
        logits = plain.module_.decoder(torch.as_tensor(code))[0, slice(*plain.module_.likelihood.slices[0])]
    groups = plain.encoding_.columns[[c.name for c in plain.encoding_.columns].index("group")].values
    shares = rows["group"].value_counts(normalize=True).reindex(groups, fill_value=0).to_numpy()
    assert np.abs(shares - logits.softmax(0).numpy()).max() < 0.03


def test_seeded_fits_and_draws_are_reproducible_and_survive_save_and_load(fitted, tmp_path):
    df, model = fitted
    again = vaekit.TabularVAE(random_state=0, **SMALL).fit(df)
    pd.testing.assert_frame_equal(model.sample(200, random_state=5), again.sample(200, random_state=5))
    assert not model.sample(200, random_state=5).equals(model.sample(200, random_state=6))
    model.save(tmp_path / "m")
    loaded = vaekit.load(tmp_path / "m", device="cpu")
    assert isinstance(loaded, vaekit.TabularVAE) and loaded.get_params() == {**model.get_params()}
    pd.testing.assert_frame_equal(loaded.sample(200, random_state=5, conditions={"member": True}),
                                  model.sample(200, random_state=5, conditions={"member": True}))
    assert loaded.history_ == model.history_
    assert {p.suffix for p in (tmp_path / "m").iterdir()} <= {".json", ".safetensors"}  # nothing pickled
    import json

    manifest = json.loads((tmp_path / "m" / "vaekit.json").read_text())
    assert manifest["kind"] == "model" and manifest["modality"].startswith("tables")
    assert manifest["artefacts"]["encoding"] == "encoding.json"
    # the image commands refuse it by name
    assert main(["sample", str(tmp_path / "m"), "-n", "4", "--out", str(tmp_path / "s.png")]) == 2


def test_the_table_likelihood_nll_is_the_distributions_log_probability():
    """The fast nll (one matrix product for every block's normaliser) against torch.distributions, term by term."""
    enc = TableEncoding.fit(Table.from_frame(every_type(300)))
    lik = TableLikelihood.of(enc)
    codes, scalars = enc.encode(Table.from_frame(every_type(300)))
    x = enc.features(torch.as_tensor(codes), torch.as_tensor(scalars))
    params = torch.randn(3, *x.shape)  # three samples of z for each row
    expected = torch.zeros(3, len(x))
    for j, (a, b) in enumerate(lik.slices):
        expected -= torch.distributions.Categorical(logits=params[..., a:b]).log_prob(torch.as_tensor(codes[:, j]))
    scale = lik.log_scale.exp()
    for s, cols in enumerate(enc.scalar_codes):
        used = x[:, cols].sum(1)
        lp = torch.distributions.Normal(params[..., enc.n_codes + s], scale[s]).log_prob(x[:, enc.n_codes + s])
        expected -= lp * used
    torch.testing.assert_close(lik.nll(params, x), expected, rtol=1e-5, atol=1e-4)
    # a draw is a valid row: one code per block, decoded to the fitted columns
    draw = lik(params[0]).sample(torch.Generator().manual_seed(0))
    assert all(float(v) == 1 for a, b in lik.slices for v in draw[:, a:b].sum(1))
    assert list(enc.decode(*enc.codes_of(draw)).columns) == list(every_type(5).columns)



def test_the_autoregressive_table_likelihood_is_a_normalised_distribution_its_draws_follow():
    """Three discrete columns (2, 3 and 4 codes): with random weights, exp(-nll) summed over all 24 rows is 1,
    a column's parameters move with the columns before it and with no other, draws fall on the rows as often as
    exp(-nll) says, and a condition's log-probability is that of the row drawn."""
    torch.manual_seed(0)
    lik = TableLikelihood([2, 3, 4], [], width=16)
    for p in lik.parameters():  # the masked output starts at zero (the independent model): move it
        torch.nn.init.normal_(p)
    rows = torch.cartesian_prod(torch.arange(2), torch.arange(3), torch.arange(4))
    x = torch.cat([torch.nn.functional.one_hot(rows[:, j], k) for j, k in enumerate((2, 3, 4))], 1).float()
    params = torch.randn(lik.param_shape).expand(len(x), -1)  # one z for every row
    prob = (-lik.nll(params, x)).exp()
    torch.testing.assert_close(prob.sum(), torch.tensor(1.0))
    assert prob.std() > 0.01  # the columns depend on each other: not a uniform table
    changed = x.clone()
    changed[:, 2:5] = changed[:, 2:5].roll(1, 1)  # the middle column's code moved
    before, after = lik.conditionals(params, x), lik.conditionals(params, changed)
    torch.testing.assert_close(before[:, :5], after[:, :5])  # its own and the first column's parameters stay
    assert not torch.allclose(before[:, 5:], after[:, 5:])  # the last column's move

    gen = torch.Generator().manual_seed(1)
    draws = lik(params[:1].expand(40_000, -1)).sample(gen)
    index = (draws[:, :2].argmax(1) * 12 + draws[:, 2:5].argmax(1) * 4 + draws[:, 5:].argmax(1))
    freq = torch.bincount(index, minlength=24) / len(draws)
    assert (freq - prob).abs().max() < 0.01
    held, log_p = lik(params[:1].expand(500, -1)).sample_given([(1, 2)], gen)
    assert (held[:, 2:5].argmax(1) == 2).all()
    first = held[:, :2].argmax(1)  # log p(column 1 = 2 | z, column 0), column 0 drawn first
    marginal = prob.view(2, 3, 4).sum(2)
    torch.testing.assert_close(log_p, (marginal[first, 2] / marginal[first].sum(1)).log())
    flat = TableLikelihood([2, 3, 4], [])  # columns independent given z: the held column's own probability
    held, log_p = flat(params[:3, :9]).sample_given([(1, 2)], gen)
    assert (held[:, 2:5].argmax(1) == 2).all()
    torch.testing.assert_close(log_p, params[:3, 2:5].log_softmax(-1)[:, 2])

def test_autoregressive_draws_with_a_scalar_follow_the_conditionals_they_were_drawn_from():
    """A numeric column (codes 3 and 4 of the middle block carry its offset) between two discrete ones: each
    drawn offset is a draw of its Gaussian given the codes before it, and the last column, which reads that
    offset, falls on its codes as often as its conditional says, so the block-by-block sampler computes the
    same parameters as the model's own conditionals."""
    torch.manual_seed(0)
    lik = TableLikelihood([2, 3, 2], [[3, 4]], width=24)
    for p in lik.parameters():
        torch.nn.init.normal_(p, std=0.7)
    params = torch.randn(lik.param_shape).expand(60_000, -1)
    draws = lik(params).sample(torch.Generator().manual_seed(3))
    expected = lik.conditionals(params, draws)
    used = draws[:, 3:5].sum(1) == 1
    assert 0.1 < used.float().mean() < 0.9
    residual = (draws[used, 7] - expected[used, 7]) / lik.log_scale[0].exp()
    assert abs(residual.mean()) < 0.02 and abs(residual.std() - 1) < 0.02
    torch.testing.assert_close(draws[:, 5:7].mean(0), expected[:, 5:7].softmax(-1).mean(0), atol=0.01, rtol=0)


def test_the_encoding_round_trips_rows_and_json():
    df = every_type(400)
    enc = TableEncoding.fit(Table.from_frame(df), {c: str(df[c].dtype) for c in df.columns})
    back = TableEncoding.from_dict(enc.to_dict()).decode(*enc.encode(Table.from_frame(df)))
    for name in ("group", "rating", "member", "colour", "country"):
        pd.testing.assert_series_equal(back[name], df[name], check_dtype=False, check_names=False)
    present = df["level"].notna()
    assert back["level"].isna().equals(~present)
    np.testing.assert_allclose(back["level"][present], df["level"][present], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(back["age"], df["age"])


def test_the_trainer_takes_a_modalitys_batches_without_looking_inside():
    """TableBatches only implements the batch protocol; the shared trainer fits the shared VAE module on it."""
    from vaekit.config import TrainConfig
    from vaekit.models import build_module, get_spec
    from vaekit.train import Trainer

    enc = TableEncoding.fit(Table.from_frame(every_type(300)))
    data = TableBatches(enc, *enc.encode(Table.from_frame(every_type(300))))
    module = build_module("tabular-vae", get_spec("tabular-vae").config(latent_dim=4, hidden=(32,)), data.shape[1:],
                          TableLikelihood.of(enc))
    history = Trainer(module, TrainConfig(epochs=5, batch_size=50, device="cpu"), verbose=False).fit(data, data)
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    with pytest.raises(vaekit.VaekitError, match="assembled from a fitted table encoding"):
        build_module("tabular-vae", get_spec("tabular-vae").config(), (10,))


@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame(), "is empty"),
    (pd.DataFrame({"a": [1.0], "b": ["x"]}), "needs at least 2"),
    (pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [None, None, None]}), "missing in every row"),
    (pd.DataFrame({"id": [f"r{i}" for i in range(50)], "k": ["same"] * 50}), "no column is left to learn from"),
])
def test_bad_tables_are_refused_with_the_problem_named(frame, message):
    with pytest.raises(vaekit.VaekitError, match=message):
        vaekit.TabularVAE(epochs=1).fit(frame)


@pytest.mark.parametrize("width", [-1, 2.5, True])
def test_a_bad_autoregressive_width_is_refused(width):
    with pytest.raises(vaekit.VaekitError, match=r"autoregressive must be an int >= 0"):
        vaekit.TabularVAE(epochs=1, autoregressive=width).fit(every_type(50))


@pytest.mark.parametrize("conditions, message", [
    ({"nope": "x"}, "no such column"),
    ({"group": "west"}, r"never saw that value.*'east'"),
    ({"level": 3}, "not value by value"),
])
def test_bad_conditions_are_refused(fitted, conditions, message):
    with pytest.raises(vaekit.VaekitError, match=message):
        fitted[1].sample(10, conditions=conditions)


def test_cli_refuses_bad_tables_with_one_message_and_a_nonzero_exit(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b\n")
    one = tmp_path / "one.csv"
    one.write_text("a,b\n1,x\n")
    changing = tmp_path / "changing.csv"
    changing.write_text("a,b\n" + "".join(f"{i},x\n" for i in range(40)) + "oops,y\n")
    for path, message in ((empty, "no data rows"), (one, "needs at least 2"), (changing, "holds numbers except")):
        assert main(["tabular", "fit", "--data", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and err.count("error:") == 1, err


def test_cli_fit_sample_condition_and_report_on_german_credit(german_csv, tmp_path, capsys):
    run, synth, report = tmp_path / "run", tmp_path / "synth.csv", tmp_path / "report"
    assert main(["tabular", "fit", "--data", str(german_csv), "--out", str(run), "--quiet"]) == 0
    assert main(["tabular", "sample", str(run), "-n", "1000", "--out", str(synth), "--condition", "class=2"]) == 0
    rows = pd.read_csv(synth)
    assert len(rows) == 1000 and (rows["class"] == 2).all()
    assert main(["tabular", "sample", str(run), "-n", "1000", "--out", str(synth)]) == 0
    assert main(["tabular", "sample", str(run), "-n", "5", "--out", str(synth), "--condition", "class"]) == 2
    assert "is not COLUMN=VALUE" in capsys.readouterr().err
    assert main(["tabular", "report", str(run), "--real", str(german_csv), "--synthetic", str(synth),
                 "--out", str(report), "--target", "class"]) == 0
    import json

    m = json.loads((report / "metrics.json").read_text())
    assert m["fidelity"]["quality"] > 0.8 and m["efficacy"]["positive"] == "2"
    assert m["efficacy"]["synthetic"]["auc"] > 0.6 and 0 <= m["privacy"]["dcr_baseline"] <= 1
    text = (report / "report.md").read_text()
    assert "## Machine-learning efficacy" in text and "DCR baseline protection" in text
    from PIL import Image

    for name in ("columns.png", "pairs.png"):
        assert Image.open(report / name).size[0] > 500


def test_adult_conditioned_on_income_keeps_the_real_class_statistics(tmp_path):
    """UCI Adult: every row conditioned on income >50K holds it, and follows the real >50K rows (sdmetrics'
    quality of the conditioned subset against the real subset)."""
    from vaekit.tasks.synthesis.evaluate import fidelity

    path = require_data("tabular", "adult", "adult.data")
    names = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
             "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
             "income"]
    df = pd.read_csv(path, names=names, skipinitialspace=True, na_values=["?"])
    model = vaekit.TabularVAE(epochs=8, random_state=0, device="cpu").fit(df)
    rich = model.sample(3000, random_state=0, conditions={"income": ">50K"})
    assert (rich["income"] == ">50K").all()
    real_rich = df[df["income"] == ">50K"]
    assert fidelity(real_rich, rich)["quality"] > 0.85
    # the relation moved with the class: married husbands dominate >50K, not the table at large
    assert abs((rich["relationship"] == "Husband").mean() - (real_rich["relationship"] == "Husband").mean()) < 0.1
    assert abs(rich["occupation"].isna().mean() - real_rich["occupation"].isna().mean()) < 0.03
