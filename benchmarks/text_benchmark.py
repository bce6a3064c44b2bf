"""Sentence models on the Brown corpus: the LSTM language model, the sentence VAE with no collapse remedies and
vaekit's default recipe (cyclical KL annealing, batch-normalised posterior means), side by side in one run.

    python benchmarks/text_benchmark.py [--sentences 57340] [--epochs 10] [--k 100] [--out docs/text-benchmark]

The corpus (../shared/data/text/brown) is split 90/5/5 by vaekit's seeded split; the test split is scored with
SentenceVAE.evaluate (importance-sampled NLL with k draws, PPL, KL, active units, I(x; z), token accuracy,
BLEU). Training speed: tokens per second of each fit, and of vaekit's training step for the language model
against a plain PyTorch loop over the same network with padded batches in random order. Writes OUT.md (with
an interpolation table of 5 pairs of test sentences) and OUT.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import vaekit  # noqa: E402 (after the path to this checkout)
from vaekit.data.text import read_sentences, split_sentences  # noqa: E402

BROWN = Path(os.environ.get("VAEKIT_DATA", ROOT.parent / "shared" / "data")) / "text" / "brown" / "brown_sentences.txt"
VARIANTS = {  # name -> SentenceVAE options
    "lstm-lm": {"model": "lstm-lm"},
    "vae, no remedies": {"model": "sentence-vae", "word_dropout": 0.0, "free_bits": 0.0, "posterior_bn": 0.0,
                         "kl_schedule": "none"},
    "vae, vaekit default": {"model": "sentence-vae"},
}


def plain_loop_tokens_per_second(train_ids: list[list[int]], vocab: int, cfg, batch_size: int, steps: int,
                                 seed: int) -> float:
    """The language model's network trained by a hand-written loop: random batches padded to their longest."""
    from torch import nn

    torch.manual_seed(seed)
    embed, rnn = nn.Embedding(vocab, cfg["embed_dim"], padding_idx=0), nn.LSTM(cfg["embed_dim"], cfg["hidden_dim"],
                                                                               batch_first=True)
    out = nn.Linear(cfg["hidden_dim"], vocab)
    params = [*embed.parameters(), *rnn.parameters(), *out.parameters()]
    opt = torch.optim.Adam(params, 1e-3)
    rng = np.random.default_rng(seed)
    tokens, t0 = 0, time.perf_counter()
    for _ in range(steps):
        rows = [train_ids[i] for i in rng.choice(len(train_ids), batch_size, replace=False)]
        longest = max(len(r) for r in rows)
        ids = torch.tensor([r + [0] * (longest - len(r)) for r in rows])
        inputs = torch.cat([torch.ones_like(ids[:, :1]), ids[:, :-1]], 1)
        h, _ = rnn(embed(inputs))
        loss = nn.functional.cross_entropy(out(h).transpose(1, 2), ids, ignore_index=0)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        tokens += sum(len(r) for r in rows)
    return tokens / (time.perf_counter() - t0)


def _tokens(model, sentences: list[str], max_length: int) -> int:
    """Tokens a pass over sentences trains on (each cut to max_length, then </s>)."""
    return sum(len(model.tokenizer_.encode(s)[:max_length]) + 1 for s in sentences)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sentences", type=int, default=None, help="use the first N sentences of the corpus")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--k", type=int, default=100, help="importance samples per test sentence")
    p.add_argument("--vocab-size", type=int, default=10000)
    p.add_argument("--max-length", type=int, default=50)
    p.add_argument("--hidden-dim", type=int, default=256)
    p.add_argument("--embed-dim", type=int, default=256)
    p.add_argument("--latent-dim", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--speed-steps", type=int, default=50, help="steps of each loop in the speed comparison")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "docs" / "text-benchmark"))
    p.add_argument("--save-model", default=None, help="also save vaekit's default model in this folder")
    args = p.parse_args()
    sentences = read_sentences(BROWN)[:args.sentences]
    train, val, test = split_sentences(sentences, 0.05, 0.05, args.seed)
    net = {"vocab_size": args.vocab_size, "max_length": args.max_length, "hidden_dim": args.hidden_dim,
           "embed_dim": args.embed_dim, "epochs": args.epochs, "batch_size": args.batch_size,
           "random_state": args.seed, "verbose": True}
    results, models = {}, {}
    for name, options in VARIANTS.items():
        print(f"== {name}", flush=True)
        extra = {} if options["model"] == "lstm-lm" else {"latent_dim": args.latent_dim}
        model = vaekit.SentenceVAE(**net, **extra, **options)
        t0 = time.perf_counter()
        model.fit(train, val_sentences=val)
        fit_s = time.perf_counter() - t0
        tokens = _tokens(model, train, args.max_length) * args.epochs
        metrics = model.evaluate(test, k=args.k, seed=args.seed)
        results[name] = {"fit_s": fit_s, "train_tokens_per_s": tokens / fit_s, **metrics}
        models[name] = model
        print(json.dumps(results[name]), flush=True)
    lm = models["lstm-lm"]
    ids = [lm.tokenizer_.encode(s)[:args.max_length] + [2] for s in train]
    cfg = {"embed_dim": args.embed_dim, "hidden_dim": args.hidden_dim}
    plain = plain_loop_tokens_per_second(ids, lm.tokenizer_.vocab_size, cfg, args.batch_size, args.speed_steps,
                                         args.seed)
    ours = vaekit.SentenceVAE(**{**net, "epochs": 1, "verbose": False}, model="lstm-lm")
    few = train[:args.batch_size * args.speed_steps]
    t0 = time.perf_counter()
    ours.fit(few)
    vaekit_tps = _tokens(ours, few, args.max_length) / (time.perf_counter() - t0)
    speed = {"plain_pytorch_tokens_per_s": plain, "vaekit_tokens_per_s": vaekit_tps, "ratio": vaekit_tps / plain}

    default = models["vae, vaekit default"]
    if args.save_model:
        default.save(args.save_model)
    short = [s for s in test if 6 <= len(s.split()) <= 14]
    rng = np.random.default_rng(args.seed)
    chosen = rng.choice(len(short), 10, replace=False)
    pairs = [(short[a], short[b]) for a, b in zip(chosen[::2], chosen[1::2])]
    paths = {f"greedy{'' if unk else ', no <unk>'}": [default.interpolate(a, b, steps=5, allow_unk=unk)
                                                     for a, b in pairs] for unk in (True, False)}
    write(args, results, speed, pairs, paths, len(train), len(val), len(test))


def write(args, results, speed, pairs, paths, n_train, n_val, n_test) -> None:
    cols = [("nll", "NLL (nats/sentence)", "{:.2f}"), ("ppl", "PPL", "{:.1f}"), ("kl", "KL", "{:.2f}"),
            ("mutual_info", "MI", "{:.2f}"), ("active_units", "active units", "{}"),
            ("token_accuracy", "token acc.", "{:.3f}"), ("bleu", "BLEU", "{:.1f}"), ("fit_s", "fit s", "{:.0f}"),
            ("train_tokens_per_s", "tokens/s", "{:.0f}")]
    lines = ["| model | " + " | ".join(c[1] for c in cols) + " |", "|---|" + "---|" * len(cols)]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(fmt.format(r[k]) if k in r else "-" for k, _, fmt in cols) + " |")
    lm_nll = results["lstm-lm"]["nll"]
    ours = results["vae, vaekit default"]
    verdict = (f"vaekit's default recipe: KL {ours['kl']:.2f} nats, {ours['active_units']} active units, NLL "
               f"{100 * (ours['nll'] / lm_nll - 1):+.2f}% against the language model's {lm_nll:.2f}.")
    interp = []
    for j, (a, b) in enumerate(pairs):
        interp.append(f"\n**{a}**  ->  **{b}**\n")
        for decoding, all_paths in paths.items():
            path = all_paths[j]
            interp += [f"*{decoding}*\n", *[f"{i / (len(path) - 1):.2f}. {s}" for i, s in enumerate(path)], ""]
    doc = (f"# Sentence models on the Brown corpus\n\nWritten by `python benchmarks/text_benchmark.py "
           f"{' '.join(sys.argv[1:])}` on {os.cpu_count()} CPU cores ({torch.get_num_threads()} threads). "
           f"{n_train} training, {n_val} validation and {n_test} test sentences (vaekit's seeded 90/5/5 split), "
           f"lower-cased words, a vocabulary of {args.vocab_size}, at most {args.max_length} tokens; "
           f"{args.epochs} epochs, batch {args.batch_size}, embeddings {args.embed_dim}, LSTM {args.hidden_dim}, "
           f"code {args.latent_dim}. NLL: nats per test sentence (importance-sampled with k={args.k} for the "
           f"VAEs, exact for the language model); PPL per token, </s> included.\n\n" + "\n".join(lines) +
           f"\n\n{verdict}\n\nTraining speed of the language model's network: vaekit's trainer "
           f"{speed['vaekit_tokens_per_s']:.0f} tokens/s, a plain PyTorch loop with padded random batches "
           f"{speed['plain_pytorch_tokens_per_s']:.0f} tokens/s (ratio {speed['ratio']:.2f}).\n\n"
           "## Interpolations between test sentences (vaekit default; greedy decoding, with and without <unk>)\n" +
           "\n".join(interp) + "\n")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(doc)
    out.with_suffix(".json").write_text(json.dumps({"results": results, "speed": speed,
                                                    "interpolations": [{"from": a, "to": b,
                                                                        **{d: p[j] for d, p in paths.items()}}
                                                                       for j, (a, b) in enumerate(pairs)]},
                                                   indent=1))
    print(doc)


if __name__ == "__main__":
    main()
