"""The hand-differentiated loss of the textbook VAE (vaekit.models.fused) against autograd, on real MNIST."""
import pytest
import torch

from vaekit.models import MODELS, build_module, fused


def _vae(hidden, **options):
    torch.manual_seed(0)
    return build_module("vae", MODELS["vae"].config(latent_dim=3, hidden=hidden, **options), (1, 28, 28)).double()


@pytest.fixture(scope="module")
def digits(mnist_small):
    return torch.from_numpy(mnist_small[0][:6]).double() / 255


@pytest.mark.parametrize("hidden", [(), (5,), (5, 4)])
def test_hand_written_backward_passes_gradcheck(digits, hidden):
    n_enc, layers = _vae(hidden)._textbook
    x = digits[:3].flatten(1)
    eps = torch.randn(3, 3, dtype=torch.double)
    weights = torch.tensor([0.3, 1.0, 2.0], dtype=torch.double)

    def loss(*params):
        rec, kl = fused._TextbookVAELoss.apply(x, x, eps, n_enc, *params)
        return rec * weights, kl * weights.flip(0)  # per-example upstream gradients

    params = [t.detach().clone().requires_grad_() for layer in layers for t in (layer.weight, layer.bias)]
    assert torch.autograd.gradcheck(loss, params, eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("hidden", [(), (16,), (16, 8)])
def test_module_loss_and_gradients_equal_the_autograd_path(digits, hidden):
    model = _vae(hidden, beta=4.0, corruption="mask")  # beta weighs the KL; the encoder sees corrupted input
    results = []
    for textbook in (model._textbook, None):
        model._textbook = textbook
        torch.manual_seed(1)  # the same corruption and the same eps on both paths
        out = model.loss(digits)
        grads = torch.autograd.grad(out["loss"].sum() + out["kl"][0], list(model.parameters()))
        results.append((out, grads))
    (out, grads), (ref, ref_grads) = results
    for key in ("loss", "rec", "kl"):
        torch.testing.assert_close(out[key], ref[key], rtol=1e-12, atol=1e-10)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("options", [dict(architecture="conv"), dict(batch_norm=True), dict(dropout=0.1),
                                     dict(activation="tanh"), dict(likelihood="gaussian"),
                                     dict(stochastic_layers=(8,)), dict(prior="mog", prior_components=4)])
def test_other_models_keep_the_autograd_path(options):
    assert _vae((16,), **options)._textbook is None
    assert _vae((16,))._textbook is not None


def test_autocast_iwae_and_input_gradients_fall_back_to_autograd(digits, monkeypatch):
    calls = []
    apply = fused._TextbookVAELoss.apply
    monkeypatch.setattr(fused._TextbookVAELoss, "apply", lambda *a: calls.append(1) or apply(*a))
    model = _vae((16,)).float()
    x = digits.float()
    model.loss(x)
    assert len(calls) == 1  # the plain case takes the fused path
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(model.loss(x)["loss"]).all()
    xg = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(model.loss(xg)["loss"].sum(), xg)
    assert grad.abs().sum() > 0  # saliency-style gradients need autograd through x
    model.cfg = MODELS["vae"].config(latent_dim=3, hidden=(16,), k=5)
    model.loss(x)
    assert len(calls) == 1


@pytest.mark.parametrize("kl_scale", [1.0, 0.25])
def test_loss_with_grads_writes_autograds_gradients(digits, kl_scale):
    """The trainer's step without autograd's engine: the same terms, the same gradients, set in place."""
    model = _vae((16,), beta=2.0, corruption="mask")
    model.kl_scale = kl_scale
    params = list(model.parameters())
    torch.manual_seed(1)
    ref = model.loss(digits)
    ref_grads = torch.autograd.grad(ref["loss"].sum() / 3, params)
    for p in params:
        p.grad = torch.ones_like(p)  # the last step's gradients: overwritten, in their own memory
    buffers = [p.grad.data_ptr() for p in params]
    torch.manual_seed(1)
    out = model.loss_with_grads(digits, 1 / 3)
    for key in ("loss", "rec", "kl"):
        assert not out[key].requires_grad
        torch.testing.assert_close(out[key], ref[key], rtol=1e-12, atol=1e-10)
    for p, r in zip(params, ref_grads):
        torch.testing.assert_close(p.grad, r, rtol=1e-10, atol=1e-12)
    assert [p.grad.data_ptr() for p in params] == buffers
    for p in params:
        p.grad = None
    model.loss_with_grads(digits, 1 / 3)
    assert all(p.grad is not None for p in params)


def test_loss_with_grads_declines_where_the_fused_path_does_not_apply(digits):
    assert _vae((16,), architecture="conv").loss_with_grads(digits, 1.0) is None
    model = _vae((16,))
    assert model.loss_with_grads(digits.clone().requires_grad_(), 1.0) is None
    model.cfg = MODELS["vae"].config(latent_dim=3, hidden=(16,), k=5)
    assert model.loss_with_grads(digits, 1.0) is None


def test_trainer_takes_the_direct_step_and_lands_where_autograd_does(digits, monkeypatch):
    from vaekit.config import TrainConfig
    from vaekit.train import Trainer

    x = torch.cat([digits] * 6)  # 36 real digits, 3 steps of 12 per epoch
    cfg = TrainConfig(epochs=2, batch_size=12, optimizer="sgd", lr=0.05, seed=0)  # SGD: the step scales with the gradient
    weights, calls = [], []
    for direct in (True, False):
        model = _vae((16,))
        if direct:
            step = model.loss_with_grads
            monkeypatch.setattr(model, "loss_with_grads", lambda *a: calls.append(step(*a)) or calls[-1], raising=False)
        else:
            monkeypatch.setattr(model, "loss_with_grads", lambda *a: None, raising=False)
        history = Trainer(model, cfg, verbose=False).fit(x)
        weights.append((history, [p.detach().clone() for p in model.parameters()]))
    assert len(calls) == 6 and all(out is not None for out in calls)
    (h_direct, w_direct), (h_auto, w_auto) = weights
    for a, b in zip(h_direct, h_auto):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-12)
    for a, b in zip(w_direct, w_auto):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
