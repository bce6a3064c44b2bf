"""scikit-learn's own estimator checks over vaekit's estimators, and their use in Pipeline and GridSearchCV.

The checks feed small random Gaussian tables, so they run with likelihood='gaussian': a Bernoulli
likelihood refuses data outside [0, 1] by design (a ValueError that names the fix).
"""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import vaekit

SMALL = dict(latent_dim=2, hidden=(8,), epochs=2, likelihood="gaussian", random_state=0)


@parametrize_with_checks([vaekit.VAE(**SMALL), vaekit.Autoencoder(**SMALL)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_pipeline_and_grid_search_on_real_digits(mnist_small):
    xtr, ytr, xte, yte = mnist_small
    x = xtr.reshape(len(xtr), -1)[:1000].astype(np.float32)
    pipe = Pipeline([("scale", MinMaxScaler()), ("vae", vaekit.VAE(hidden=(64,), epochs=15, random_state=0)),
                     ("clf", LogisticRegression(max_iter=300))])
    search = GridSearchCV(pipe, {"vae__latent_dim": [2, 8]}, cv=2).fit(x, ytr[:1000])
    assert search.best_params_["vae__latent_dim"] == 8  # 8-D codes separate digits better than 2-D ones
    assert search.score(xte.reshape(len(xte), -1).astype(np.float32), yte) > 0.5  # chance is 0.1


def test_sample_counts_must_be_positive_ints(mnist_small):
    model = vaekit.VAE(latent_dim=2, hidden=(16,), epochs=1, random_state=0).fit(mnist_small[0][:200])
    assert model.sample(np.int64(3), random_state=0).shape == (3, 1, 28, 28)  # numpy ints are ints
    for bad in (0, -3, 2.5):
        with pytest.raises(vaekit.VaekitError, match=r"n \(samples\) must be an int >= 1"):
            model.sample(bad)


def test_clone_keeps_the_registry_variant(mnist_small):
    """The registry name is a constructor parameter: clone (GridSearchCV, cross_val_score) keeps the model."""
    from sklearn.base import clone

    x = mnist_small[0][:200]
    for name, module, beta in (("split-brain-ae", "SplitBrainModule", None), ("beta-vae", "VAEModule", 4.0)):
        est = clone(vaekit.estimator_for(name, latent_dim=2, hidden=(16,), epochs=1, random_state=0))
        assert est.model == name and est.get_params()["model"] == name
        est.fit(x)
        assert type(est.module_).__name__ == module
        if beta is not None:
            assert est.module_.cfg.beta == beta
    with pytest.raises(vaekit.VaekitError, match=r"model 'ae' is trained by vaekit.Autoencoder, not VAE"):
        vaekit.VAE(model="ae", epochs=1).fit(x)
    with pytest.raises(vaekit.VaekitError, match="unknown model 'vea'"):
        vaekit.VAE(model="vea", epochs=1).fit(x)
