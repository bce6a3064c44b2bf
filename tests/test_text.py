"""Text: tokenizers, bucketed batches, the sentence VAE's bounds, its language-model limit, save/load, bad input."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.config import TextModelConfig
from vaekit.data.text import (EOS, PAD, TextBatches, fit_tokenizer, read_sentences,
                              split_sentences, tokenizer_from_dict)
from vaekit.errors import VaekitError
from vaekit.models.text import LanguageModelModule, SentenceVAEModule

BROWN = Path(__file__).resolve().parents[2] / "shared" / "data" / "text" / "brown" / "brown_sentences.txt"


def brown(n: int) -> list[str]:
    if not BROWN.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{BROWN} is missing under CI")
        pytest.skip(f"the Brown corpus is not at {BROWN}")
    return read_sentences(BROWN)[:n]


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_a_tokenizer_gives_its_training_sentences_back_and_survives_json(kind):
    sentences = brown(2000)
    tok = fit_tokenizer(kind, sentences, vocab_size=3000, min_count=1, lower=True)
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())), "tokenizer.json")
    for s in sentences[:200]:
        ids = tok.encode(s)
        assert again.encode(s) == ids
        if kind == "bpe" or all(w in tok.index for w in s.lower().split()):
            assert tok.decode(ids) == " ".join(s.lower().split())
    assert tok.encode("qqzx unseenword") != [] and (kind == "bpe" or set(tok.encode("qqzx")) == {3})


def test_a_damaged_tokenizer_file_is_refused():
    with pytest.raises(VaekitError, match="not a vaekit tokenizer"):
        tokenizer_from_dict({"kind": "word", "lower": True, "tokens": ["a", "b"]}, "t.json")
    with pytest.raises(VaekitError, match="not a vaekit tokenizer"):
        tokenizer_from_dict({"kind": "bpe", "lower": True, "tokenizer": {"model": 3}}, "t.json")
    with pytest.raises(VaekitError, match="not a vaekit tokenizer"):
        tokenizer_from_dict([1, 2], "t.json")


def test_bucketed_batches_lose_no_sentence_and_keep_each_in_order():
    rng = np.random.default_rng(0)
    sentences = [list(rng.integers(4, 50, rng.integers(1, 30))) + [EOS] for _ in range(1037)]
    data = TextBatches(sentences, 50)
    order = data.epoch_order(16, torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == list(range(len(sentences)))
    spreads = []
    for i in range(0, len(order), 16):
        idx = order[i:i + 16]
        batch = data.inputs(idx)
        for row, n, j in zip(batch.ids.tolist(), batch.lengths.tolist(), idx.tolist()):
            assert row[:n] == sentences[j] and all(t == PAD for t in row[n:])
        spreads.append(int(batch.lengths.max() - batch.lengths.min()))
    random_spread = np.mean([np.ptp(rng.choice([len(s) for s in sentences], 16)) for _ in range(200)])
    assert np.mean(spreads) < 0.3 * random_spread  # bucketing: far less padding than random batches
    again = data.epoch_order(16, torch.Generator().manual_seed(0))
    assert torch.equal(order, again)


def _module(vocab=40, **kw):
    cfg = TextModelConfig(latent_dim=4, embed_dim=8, hidden_dim=16, **kw).validate()
    torch.manual_seed(0)
    return SentenceVAEModule(cfg, (vocab,)).eval(), cfg


def _batch(vocab=40, n=6, seed=0):
    rng = np.random.default_rng(seed)
    return TextBatches([list(rng.integers(4, vocab, rng.integers(2, 9))) + [EOS] for _ in range(n)],
                       vocab).inputs(slice(0, n))


def test_the_importance_sampled_nll_is_the_elbo_at_k_1_and_tightens_with_k():
    module, _ = _module()
    with torch.no_grad():
        for p in module.to_posterior.parameters():  # a posterior far from the prior: a loose ELBO
            p.mul_(3)
    x = _batch()
    gen = torch.Generator().manual_seed(0)
    one = torch.stack([module.log_likelihood(x, 1, gen) for _ in range(400)]).mean(0)
    with torch.no_grad():
        torch.manual_seed(1)
        elbo = -torch.stack([(lambda o: o["rec"] + o["kl"])(module.loss(x)) for _ in range(400)]).mean(0)
    torch.testing.assert_close(one.float(), elbo.float(), atol=0.15, rtol=0.0)
    bounds = [torch.stack([module.log_likelihood(x, k, gen) for _ in range(20)]).mean(0) for k in (1, 10, 100)]
    assert bounds[0].mean() < bounds[1].mean() < bounds[2].mean() and (bounds[2] > bounds[0]).all()


def test_importance_sampling_in_chunks_of_draws_gives_the_same_likelihoods(monkeypatch):
    import vaekit.models.text as text_models

    module, _ = _module()
    x = _batch(n=7, seed=5)
    whole = module.log_likelihood(x, 9, torch.Generator().manual_seed(0))
    monkeypatch.setattr(text_models, "LOGIT_BUDGET", 1)  # one draw per pass
    chunked = module.log_likelihood(x, 9, torch.Generator().manual_seed(0))
    torch.testing.assert_close(chunked, whole)


def test_with_the_code_ignored_the_sentence_vae_is_exactly_the_language_model():
    module, cfg = _module()
    torch.manual_seed(3)
    lm = LanguageModelModule(cfg, (40,)).eval()
    dec = module.decoder
    with torch.no_grad():
        dec.embed.weight.copy_(lm.decoder.embed.weight)
        dec.out.load_state_dict(lm.decoder.out.state_dict())
        e = cfg.embed_dim
        for name, p in dec.rnn.named_parameters():
            q = dict(lm.decoder.rnn.named_parameters())[name]
            if name.startswith("weight_ih"):
                p.zero_()[:, :e] = q  # the code's input columns are zero
            else:
                p.copy_(q)
        dec.init_state.weight.zero_()
        dec.init_state.bias.zero_()
    x = _batch(n=9, seed=4)
    z = torch.randn(len(x), cfg.latent_dim)
    torch.testing.assert_close(dec.token_nll(x, z), lm.decoder.token_nll(x, None))
    torch.testing.assert_close(lm.log_likelihood(x), -lm.decoder.token_nll(x, None).double())


def test_word_dropout_and_free_bits_change_training_only():
    module, _ = _module(word_dropout=0.5, free_bits=0.5)
    x = _batch()
    module.train()
    torch.manual_seed(0)
    out = module.loss(x)
    assert torch.allclose(out["loss"], out["rec"])  # every unit's KL is below the floor: not penalised
    module.eval()
    torch.manual_seed(0)
    a = module.loss(x)
    torch.manual_seed(0)
    b = module.loss(x)
    torch.testing.assert_close(a["rec"], b["rec"])  # no word dropout in eval mode: the same z gives the same rec
    assert torch.allclose(a["loss"], a["rec"] + a["kl"])


def test_batch_normalised_posterior_means_hold_each_unit_s_kl_above_its_floor():
    gamma = 0.6
    module, cfg = _module(posterior_bn=gamma)
    x = _batch(n=64, seed=2)
    module.train()
    mu, log_var = module.posterior_params(x)
    torch.testing.assert_close(mu.mean(0), module.mu_shift.detach().expand(cfg.latent_dim), atol=1e-5, rtol=0)
    torch.testing.assert_close(mu.var(0, unbiased=False), torch.full((cfg.latent_dim,), gamma ** 2), atol=0,
                               rtol=0.05)  # BatchNorm's eps shrinks a small raw variance a little
    kl = 0.5 * (mu.square() + log_var.exp() - 1 - log_var)
    assert (kl.mean(0) >= 0.95 * gamma ** 2 / 2).all()  # E[mu^2] = gamma^2 + shift^2 and the rest is >= 0
    one, _ = module.posterior_params(_batch(n=1, seed=3))  # one sentence: the running statistics, no error
    assert torch.isfinite(one).all()
    module.eval()
    a, _ = module.posterior_params(x)
    b, _ = module.posterior_params(TextBatches([x.ids[0, :int(x.lengths[0])].tolist()], 40).inputs(slice(0, 1)))
    torch.testing.assert_close(a[:1], b)  # at evaluation a sentence's code does not depend on its batch


def test_decoding_without_unk_never_writes_it():
    from vaekit.data.text.tokens import UNK
    from vaekit.models.text import generate

    module, cfg = _module()
    with torch.no_grad():
        module.decoder.out.bias[UNK] = 50.0  # a decoder that would write nothing but <unk>
    z = torch.randn(4, cfg.latent_dim)
    for method in ("greedy", "sample", "beam"):
        kept = generate(module.decoder, z, 4, 12, method, allow_unk=True, generator=torch.Generator())
        assert all(row and set(row) == {UNK} for row in kept)
        banned = generate(module.decoder, z, 4, 12, method, allow_unk=False, generator=torch.Generator())
        assert all(UNK not in row for row in banned) and any(banned)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    sentences = brown(1500)
    train, val, test = split_sentences(sentences, 0.05, 0.1, 0)
    run = tmp_path_factory.mktemp("text") / "run"
    model = vaekit.SentenceVAE(epochs=2, latent_dim=8, embed_dim=32, hidden_dim=64, vocab_size=2000,
                               random_state=0, max_length=30)
    with pytest.warns(vaekit.VaekitWarning):  # a few Brown sentences are longer than 30 tokens
        model.fit(train, val_sentences=val, run_dir=run)
    return model, run, test


def test_a_fit_records_the_kl_and_save_and_load_give_identical_outputs(fitted, tmp_path):
    model, run, test = fitted
    assert {"train_rec", "train_kl", "val_kl", "active_units", "mutual_info"} <= set(model.history_[-1])
    for folder in (run, model.save(tmp_path / "saved")):
        back = vaekit.load(folder, device="cpu")
        assert isinstance(back, vaekit.SentenceVAE)
        np.testing.assert_array_equal(back.transform(test[:20]), model.transform(test[:20]))
        assert back.sample(5, random_state=3) == model.sample(5, random_state=3)
        assert back.reconstruct(test[:5]) == model.reconstruct(test[:5])
    manifest = json.loads((run / "vaekit.json").read_text())
    assert manifest["modality"].startswith("text") and manifest["artefacts"]["tokenizer"] == "tokenizer.json"


def test_the_latent_verbs_give_sentences(fitted):
    model, _, test = fitted
    path = model.interpolate(test[0], test[1], steps=5, kind="spherical")
    assert len(path) == 5 and all(isinstance(s, str) for s in path)
    beams = model.sample(3, method="beam", beam=3, random_state=0)
    assert len(beams) == 3
    near = model.neighbours(test[0], k=3)
    assert len(near) == 3 and near[0][1] <= near[1][1] <= near[2][1]
    metrics = model.evaluate(test[:50], k=3)
    for key in ("nll", "ppl", "kl", "active_units", "mutual_info", "token_accuracy", "bleu"):
        assert np.isfinite(metrics[key])
    assert metrics["ppl"] > 1 and 0 <= metrics["token_accuracy"] <= 1


def test_a_folder_of_text_files_is_read_in_name_order_and_split_the_same_every_time(tmp_path):
    (tmp_path / "b.txt").write_text("third one\n\nfourth one\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("\ufefffirst one\r\n  second one  \n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("not a sentence file\n")
    assert read_sentences(tmp_path) == ["first one", "second one", "third one", "fourth one"]
    parts = split_sentences([f"s{i}" for i in range(100)], 0.1, 0.2, seed=5)
    assert [len(p) for p in parts] == [70, 10, 20]
    assert parts == split_sentences([f"s{i}" for i in range(100)], 0.1, 0.2, seed=5)
    assert sorted(sum(parts, [])) == sorted(f"s{i}" for i in range(100))


def test_bad_text_input_gets_a_clear_message(tmp_path, fitted):
    model, run, _ = fitted
    (tmp_path / "empty.txt").write_text("\n  \n")
    with pytest.raises(VaekitError, match="no sentences"):
        read_sentences(tmp_path / "empty.txt")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin1"))
    with pytest.raises(VaekitError, match="not UTF-8.*line 1"):
        read_sentences(tmp_path / "latin1.txt")
    with pytest.raises(VaekitError, match="unknown to the model's vocabulary"):
        model.transform(["qqzx zzqq"])
    assert main(["sample", str(run), "--out", str(tmp_path / "x.png")]) == 2
    assert main(["text", "sample", str(run), "-n", "2"]) == 0
    out = tmp_path / "image-run"  # a text model given to the image trainer: refused before anything is written
    assert main(["train", "--data", "digits", "--model", "sentence-vae", "--out", str(out)]) == 2
    assert not out.exists()


def test_text_train_on_the_command_line_writes_a_run_that_evaluate_scores(tmp_path, capsys):
    corpus = tmp_path / "brown.txt"
    corpus.write_text("\n".join(brown(400)) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    assert main(["text", "train", "--data", str(corpus), "--out", str(run), "--epochs", "2", "--hidden-dim", "32",
                 "--embed-dim", "16", "--latent-dim", "4", "--vocab-size", "800", "--quiet"]) == 0
    assert {"tokenizer.json", "train-sentences.txt", "history.png", "history.json", "model.safetensors",
            "vaekit.json"} <= {p.name for p in run.iterdir()}
    capsys.readouterr()
    assert main(["evaluate", str(run), "--k", "2"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["sentences"] == 20 and metrics["importance_samples"] == 2 and metrics["nll"] > 0
    assert main(["text", "interpolate", str(run), "--from", "the jury said", "--to", "it was not", "--steps",
                 "3"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3


def test_cyclical_kl_annealing_rises_over_each_cycle_s_first_half_and_then_holds():
    from vaekit.config import TrainConfig
    from vaekit.models import MODELS, build_module
    from vaekit.train import Trainer

    module = build_module("vae", MODELS["vae"].config(latent_dim=2, hidden=(8,)), (4,))
    seen = []
    trainer = Trainer(module, TrainConfig(epochs=2, batch_size=8, kl_cycles=2).validate(), verbose=False,
                      on_step=lambda epoch, step: seen.append(module.kl_scale))
    trainer.fit(torch.rand(64, 4))  # 8 steps per epoch, 16 in all: two cycles of 8
    assert seen == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0] * 2
    assert module.kl_scale == 1.0  # scored with the true bound afterwards
    with pytest.raises(VaekitError, match="choose one KL schedule"):
        TrainConfig(kl_cycles=2, kl_warmup_epochs=1).validate()
