"""The disentanglement metrics against models whose answer is known: a 'model' whose code is the factors
themselves scores near the top, one whose code ignores them near chance, and a trained run reports both."""
import numpy as np

from vaekit.tasks.disentanglement import factor_vae_metric, mig


class _FromImages:
    """A stand-in model whose codes are read off the images: the true factors (recovered from a lookup of
    the rendered grid rows) or noise."""

    def __init__(self, code):
        self.code = code

    def transform(self, x):
        return self.code(x)


def _factor_code(x):
    """The sprite's centroid, area, and a second moment: posX, posY and scale nearly exactly, shape and
    orientation not at all."""
    on = x[:, 0] > 0
    area = on.sum((1, 2)).astype(float)
    rows = (on * np.arange(64)[None, :, None]).sum((1, 2)) / area
    cols = (on * np.arange(64)[None, None, :]).sum((1, 2)) / area
    return np.stack([cols, rows, np.sqrt(area)], 1)


def test_a_code_of_position_and_size_scores_high_on_those_factors_and_noise_scores_at_chance():
    good = mig(_FromImages(_factor_code), n=3000)
    assert good["per_factor"]["pos_x"] > 0.5 and good["per_factor"]["pos_y"] > 0.5
    noise = mig(_FromImages(lambda x: np.random.default_rng(len(x)).normal(size=(len(x), 3))), n=3000)
    assert noise["mig"] < 0.05 and good["mig"] > 5 * noise["mig"]
    fv = factor_vae_metric(_FromImages(_factor_code), votes=200, batch=32)
    # three latents each tied to one factor: their votes say which; shape and orientation go to no latent
    assert fv["active_latents"] == 3 and fv["accuracy"] >= 0.5
    rnd = factor_vae_metric(_FromImages(lambda x: np.random.default_rng(len(x)).normal(size=(len(x), 3))),
                            votes=200, batch=32)
    assert rnd["accuracy"] < 0.35  # five factors: chance is 0.2


def test_the_metrics_are_seeded_and_evaluate_reports_them_for_a_dsprites_run(tmp_path, capsys):
    import json

    from vaekit.cli import main

    assert mig(_FromImages(_factor_code), n=1000, seed=3) == mig(_FromImages(_factor_code), n=1000, seed=3)
    run = tmp_path / "run"
    assert main(["train", "--data", "dsprites", "--limit", "1000", "--model", "vae", "--latent-dim", "4",
                 "--hidden", "64", "--epochs", "1", "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--k", "1", "--limit", "100", "--no-quality", "--quiet"]) == 0
    d = json.loads(capsys.readouterr().out)["disentanglement"]
    assert 0 <= d["factor_vae"]["accuracy"] <= 1 and 0 <= d["mig"]["mig"] <= 1
    assert set(d["mig"]["per_factor"]) == {"shape", "scale", "orientation", "pos_x", "pos_y"}
