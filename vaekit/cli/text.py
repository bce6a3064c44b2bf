"""vaekit text train|sample|reconstruct|interpolate|neighbours: sentence VAEs and their latent space.

train reads a file of sentences (one per line) or a folder of .txt files, splits it (the split is kept in the
run's config.json, so 'vaekit evaluate RUN' scores the same test sentences) and trains model sentence-vae
(default) or lstm-lm into a run folder.
"""
from __future__ import annotations

import json

from ..errors import VaekitError
from .common import count

HELP = "sentences: train a sentence VAE (or LSTM language model), sample, reconstruct, interpolate, neighbours"
DECODINGS = ("greedy", "sample", "beam")


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    tr = sub.add_parser("train", help="train a sentence model on a file of sentences")
    tr.add_argument("--data", required=True, help="a UTF-8 file, one sentence per line, or a folder of .txt files")
    tr.add_argument("--out", required=True, help="run folder")
    tr.add_argument("--model", default="sentence-vae", help="sentence-vae or lstm-lm")
    tr.add_argument("--epochs", type=count(), default=10, help="passes over the training sentences")
    tr.add_argument("--batch-size", type=count(), default=64, help="sentences per step")
    tr.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    tr.add_argument("--latent-dim", type=count(), help="code size (default: 32)")
    tr.add_argument("--hidden-dim", type=count(), help="recurrent units (default: 256)")
    tr.add_argument("--embed-dim", type=count(), help="embedding size (default: 256)")
    tr.add_argument("--cell", choices=["lstm", "gru"], help="recurrent cell (default: lstm)")
    tr.add_argument("--word-dropout", type=float, help="share of decoder inputs replaced by <unk> (default: 0)")
    tr.add_argument("--free-bits", type=float, help="nats per latent unit left unpenalised (default: 0)")
    tr.add_argument("--posterior-bn", type=float, help="BN-VAE: fixed scale of the batch-normalised posterior means "
                                                        "(default: 0.6; 0 = off)")
    tr.add_argument("--kl-schedule", choices=["cyclical", "linear", "none"], default="cyclical",
                    help="how the KL weight rises from 0 to 1")
    tr.add_argument("--kl-cycles", type=count(), default=4, help="cycles of the cyclical schedule")
    tr.add_argument("--tokenizer", choices=["word", "bpe"], default="word", help="words or BPE sub-words")
    tr.add_argument("--vocab-size", type=count(5), default=10000, help="most tokens, the 4 special ones included")
    tr.add_argument("--min-count", type=count(), default=2, help="rarer words become <unk> (word tokenizer)")
    tr.add_argument("--no-lower", action="store_true", help="keep the text's case")
    tr.add_argument("--max-length", type=count(), default=50, help="most tokens per sentence (longer are cut)")
    tr.add_argument("--limit", type=count(), help="use only the first N sentences of the corpus")
    tr.add_argument("--val-fraction", type=float, default=0.05, help="share held out for validation")
    tr.add_argument("--test-fraction", type=float, default=0.05, help="share held out for testing")
    tr.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    tr.add_argument("--seed", type=int, default=0, help="seeds the split, the weights and the batches")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")

    def run_arg(q):
        q.add_argument("run", help="a folder written by 'vaekit text train'")
        q.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")

    def decoding(q):
        q.add_argument("--decode", choices=DECODINGS, default=None,
                       help="greedy (the likeliest token), sample (drawn, with --temperature) or beam search")
        q.add_argument("--temperature", type=float, default=1.0, help="for --decode sample")
        q.add_argument("--beam", type=count(), default=5, help="beam width for --decode beam")
        q.add_argument("--no-unk", action="store_true", help="never write <unk> (decode among the known words)")

    sa = sub.add_parser("sample", help="sentences decoded from codes drawn from the prior")
    run_arg(sa)
    sa.add_argument("-n", type=count(), default=10, help="how many sentences")
    sa.add_argument("--seed", type=int, default=0, help="seed of the codes (and of sampled tokens)")
    decoding(sa)
    rc = sub.add_parser("reconstruct", help="a sentence through its code")
    run_arg(rc)
    rc.add_argument("--sentence", action="append", required=True, help="a sentence (repeatable)")
    decoding(rc)
    ip = sub.add_parser("interpolate", help="sentences along the path between two sentences' codes")
    run_arg(ip)
    ip.add_argument("--from", dest="start", required=True, help="the first sentence")
    ip.add_argument("--to", dest="end", required=True, help="the last sentence")
    ip.add_argument("--steps", type=count(2), default=7, help="sentences on the path, both ends included")
    ip.add_argument("--kind", choices=["linear", "spherical"], default="linear", help="straight line or great circle")
    decoding(ip)
    nb = sub.add_parser("neighbours", help="the training sentences whose codes lie nearest a sentence's")
    run_arg(nb)
    nb.add_argument("--sentence", required=True, help="the sentence")
    nb.add_argument("-k", type=count(), default=5, help="how many neighbours")


def run(args) -> int:
    return {"train": _train, "sample": _sample, "reconstruct": _reconstruct, "interpolate": _interpolate,
            "neighbours": _neighbours}[args.action](args)


def text_splits(doc: dict) -> tuple[list[str], list[str], list[str]]:
    """(train, validation, test) sentences of a text run, read again from its corpus with its split."""
    if not doc.get("corpus"):
        raise VaekitError("this text model does not record its corpus (it was saved from Python); evaluate it "
                          "with SentenceVAE.evaluate(sentences)")
    return _splits(doc["corpus"])


def _splits(corpus: dict) -> tuple[list[str], list[str], list[str]]:
    """The split a corpus record (path, limit, fractions, seed) describes."""
    from ..data.text import read_sentences, split_sentences

    sentences = read_sentences(corpus["path"])[:corpus["limit"]]
    return split_sentences(sentences, corpus["val_fraction"], corpus["test_fraction"], corpus["seed"])


def _train(args) -> int:
    from pathlib import Path

    from ..io import atomic_write_json, read_json
    from ..plots import training_curve
    from ..runs import CONFIG_FILE
    from ..tasks.text.sentences import SentenceVAE

    corpus = {"path": str(Path(args.data).resolve()), "limit": args.limit, "val_fraction": args.val_fraction,
              "test_fraction": args.test_fraction, "seed": args.seed}
    train, val, test = _splits(corpus)
    model = SentenceVAE(model=args.model, latent_dim=args.latent_dim, hidden_dim=args.hidden_dim,
                        embed_dim=args.embed_dim, cell=args.cell, word_dropout=args.word_dropout,
                        free_bits=args.free_bits, posterior_bn=args.posterior_bn, tokenizer=args.tokenizer,
                        lower=not args.no_lower, vocab_size=args.vocab_size, min_count=args.min_count,
                        max_length=args.max_length,
                        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, kl_schedule=args.kl_schedule,
                        kl_cycles=args.kl_cycles, device=args.device, random_state=args.seed,
                        verbose=not args.quiet)
    model.fit(train, val_sentences=val or None, run_dir=args.out)
    path = Path(args.out) / CONFIG_FILE
    doc = read_json(path)
    doc["corpus"] = corpus  # what 'vaekit evaluate' reads the test split from
    atomic_write_json(path, doc)
    training_curve(model.history_, Path(args.out) / "history.png")
    last = model.history_[-1]
    shown = {k: round(v, 3) for k, v in last.items() if k in ("train_loss", "val_loss", "val_rec", "val_kl",
                                                                 "active_units", "mutual_info")}
    print(json.dumps({"run": args.out, "sentences": {"train": len(train), "val": len(val), "test": len(test)},
                      **shown}))
    return 0


def _load(args):
    from ..estimators import load

    model = load(args.run, device=args.device)
    if type(model).__name__ != "SentenceVAE":
        raise VaekitError(f"{args.run} is not a text run (it holds a {type(model).__name__}); 'vaekit text' "
                          f"takes folders written by 'vaekit text train'")
    return model


def _decoding(args) -> dict:
    return {"method": args.decode or "greedy", "temperature": args.temperature, "beam": args.beam,
            "allow_unk": not args.no_unk}


def _sample(args) -> int:
    model = _load(args)
    kw = _decoding(args)
    if args.decode is None:
        kw["method"] = None  # the model's own default: greedy for the VAE, sample for the language model
    for s in model.sample(args.n, random_state=args.seed, **kw):
        print(s)
    return 0


def _reconstruct(args) -> int:
    model = _load(args)
    for s, r in zip(args.sentence, model.reconstruct(args.sentence, **_decoding(args))):
        print(f"{s}\n  -> {r}")
    return 0


def _interpolate(args) -> int:
    model = _load(args)
    kw = _decoding(args)
    for i, s in enumerate(model.interpolate(args.start, args.end, args.steps, args.kind, **kw)):
        print(f"{i / (args.steps - 1):.2f}  {s}")
    return 0


def _neighbours(args) -> int:
    model = _load(args)
    for s, d in model.neighbours(args.sentence, args.k):
        print(f"{d:.3f}  {s}")
    return 0
