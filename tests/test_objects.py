"""The Multi-Entity VAE and the object measurements: the KL map's top-K, the reduction to a spatial VAE, the
foreground ARI, and a small model that finds objects in Multi-dSprites-like scenes."""
import numpy as np
import torch

import vaekit
from vaekit.data.scenes import generate
from vaekit.models import MODELS, build_module
from vaekit.tasks.objects import count_accuracy, foreground_ari, object_segmentation


def _module(**overrides):
    cfg = MODELS["mevae"].config(**{"latent_dim": 4, "conv_channels": (8, 8, 8), "hidden": (16,), **overrides})
    torch.manual_seed(0)
    return build_module("mevae", cfg, (1, 32, 32))


def test_the_kl_map_s_top_k_are_the_k_largest():
    m = _module(objects=3)
    mu, log_var = torch.randn(5, 16, 4), torch.randn(5, 16, 4) * 0.3
    kl = m.kl_map(mu, log_var)
    cells = m.select(mu, log_var)
    assert cells.shape == (5, 3)
    for b in range(5):
        order = torch.argsort(kl[b], descending=True)
        assert cells[b].tolist() == order[:3].tolist()
        assert kl[b, cells[b]].min() >= kl[b][order[3:]].max()


def test_with_every_candidate_kept_and_summed_it_is_a_spatial_vae():
    """K = every cell and sum aggregation: the ELBO is that of a VAE whose code is the whole grid and whose
    image parameters are the background plus each cell's decoded patch, pasted at its place (computed here
    by slicing, not by the module's scatter)."""
    m = _module(objects=16, aggregation="sum")
    x = (torch.rand(3, 1, 32, 32) > 0.8).float()
    with vaekit.models.noise.seeded(0, torch.device("cpu")):
        nll, neg_kl = m.bound_terms(x, 1, analytic_top=True)
    mu, log_var = m.encode(x)
    with vaekit.models.noise.seeded(0, torch.device("cpu")):
        eps = vaekit.models.noise.randn((1, *mu.shape), 1, mu)[0]
    z = mu + (0.5 * log_var).exp() * eps  # (3, 16 cells, 4)
    s, cell = m.patch, m.cell
    canvas = m.background.view(1, 1, 1, 1).expand(3, 1, 32 + s, 32 + s).clone()
    for c in range(16):
        r0, c0 = (c // 4) * cell + cell // 2, (c % 4) * cell + cell // 2
        canvas[:, :, r0:r0 + s, c0:c0 + s] += m.decoder(z[:, c]).view(3, 1, s, s)
    params = canvas[:, :, s // 2:s // 2 + 32, s // 2:s // 2 + 32]
    expected_nll = m.likelihood.nll(params, x)
    expected_kl = (0.5 * (mu.square() + log_var.exp() - 1 - log_var)).sum((1, 2))
    torch.testing.assert_close(nll[0], expected_nll, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(-neg_kl, expected_kl, rtol=1e-5, atol=1e-4)


def test_max_aggregation_puts_each_object_where_its_cell_is():
    m = _module(objects=2)
    z = torch.randn(1, 2, 4)
    cells = torch.tensor([[0, 15]])  # the top-left and the bottom-right cells
    objects = m.object_params(z, cells)  # (1, 2, 1, 32, 32)
    reach0 = objects[0, 0, 0] > -1e3
    reach1 = objects[0, 1, 0] > -1e3
    assert reach0[0, 0] and not reach0[-1, -1] and reach1[-1, -1] and not reach1[0, 0]
    merged = m.aggregate(objects)
    torch.testing.assert_close(merged, torch.maximum(objects.max(1).values, m.background.view(1, 1, 1, 1)))


def test_each_object_decoded_alone_merges_by_max_into_the_scene_and_context_convs_make_a_finer_grid():
    m = _module(objects=3)
    codes = torch.cat([torch.randn(2, 3, 4), torch.randint(0, 4, (2, 3, 2)).float()], -1)
    alone = m.object_images(codes)  # (2, 3, 1, 32, 32), each over the background
    scene = m.generative(codes).mean
    torch.testing.assert_close(alone.max(1).values, scene)  # max-merge commutes with the monotone sigmoid
    assert (alone.std((2, 3, 4)) > 0).all() and not torch.equal(alone[:, 0], alone[:, 1])
    fine = _module(objects=3, conv_channels=(8, 8), context_convs=2, object_patch=16)
    assert fine.grid == (8, 8) and fine.patch == 16 and fine.encode(torch.zeros(1, 1, 32, 32))[0].shape == (1, 64, 4)


def test_the_foreground_ari_is_one_for_the_truth_and_zero_for_one_label():
    s = generate("binarized", 20, seed=0)
    true = s.segmentation
    np.testing.assert_allclose(foreground_ari(true, true), 1.0)
    permuted = np.where(true > 0, 4 - true, 0)  # other label numbers, the same partition
    np.testing.assert_allclose(foreground_ari(true, permuted), 1.0)
    constant = np.ones_like(true)
    scenes_with_two = s.visible >= 2
    np.testing.assert_allclose(foreground_ari(true, constant)[scenes_with_two], 0.0, atol=1e-12)
    assert np.isnan(foreground_ari(np.zeros((1, 8, 8), int), np.zeros((1, 8, 8), int))[0])
    assert count_accuracy(np.array([[9.0, 5.0, 0.1]]), np.array([2]), threshold=1.0) == 1.0


def test_a_small_mevae_learns_and_its_segmentation_has_the_scene_s_shape():
    x = generate("binarized", 600, seed=0).images
    model = vaekit.estimator_for("mevae", latent_dim=4, conv_channels=(16, 32, 32), hidden=(64,), epochs=3,
                                 batch_size=50, random_state=0).fit(x)
    losses = [r["train_loss"] for r in model.history_]
    assert losses[-1] < losses[0]
    test = generate("binarized", 40, seed=0, first=1000)
    labels, kl = object_segmentation(model.module_, test.images)
    assert labels.shape == (40, 64, 64) and set(np.unique(labels)) <= {1, 2, 3} and kl.shape == (40, 3)
    assert (np.diff(kl, axis=1) <= 1e-6).all()  # the objects come largest KL first
    codes = model.transform(test.images[:2])
    assert codes.shape == (2, 3, 6) and (codes[..., 4:] == np.round(codes[..., 4:])).all()
    assert np.isfinite(foreground_ari(test.segmentation, labels)).any()


def test_the_command_line_verbs_take_a_scene_run(tmp_path, capsys):
    from vaekit.cli import main

    run = tmp_path / "scenes"
    assert main(["train", "--data", "multi-dsprites-binarized", "--limit", "300", "--model", "mevae", "--latent-dim",
                 "4", "--hidden", "32", "--conv-channels", "8", "8", "8", "--epochs", "1", "--out", str(run),
                 "--quiet"]) == 0
    for verb, extra in (("reconstruct", ["-n", "3"]), ("sample", ["-n", "3"]), ("latent-map", []),
                        ("interpolate", ["--from", "0", "--to", "1", "--steps", "3"]),
                        ("traverse", ["--dims", "0", "5", "--steps", "3"])):
        assert main([verb, str(run), "--out", str(tmp_path / f"{verb}.npy"), *extra]) == 0, verb
    assert np.load(tmp_path / "interpolate.npy").shape == (6, 1, 64, 64)  # linear and spherical rows
    assert np.load(tmp_path / "traverse.npy").shape == (2, 3, 1, 64, 64)
    assert np.load(tmp_path / "latent-map.npy").shape[1:] == (3 * 6,)
    capsys.readouterr()
    assert main(["manifold", str(run), "--out", str(tmp_path / "m.png")]) == 2
    assert "use 'vaekit traverse'" in capsys.readouterr().err
