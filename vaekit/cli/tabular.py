"""vaekit tabular fit|sample|report: synthetic tables that keep a real table's statistics.

fit trains a TabularVAE on a table file (.csv with a header, or .parquet) into a run folder; sample writes
synthetic rows as CSV, optionally with conditions (--condition income='>50K'); report compares synthetic rows
with real ones (fidelity, efficacy, privacy) in Markdown and PNG.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import VaekitError
from ..io import atomic_write, read_json
from ..runs import CONFIG_FILE
from .common import add_table_reading_args, count

HELP = "synthetic tables: fit a TabularVAE on a table, sample rows (with conditions), report on their quality"


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    fit = sub.add_parser("fit", help="train a synthesizer on a table")
    fit.add_argument("--data", required=True, help="the table: .csv with a header line, or .parquet")
    fit.add_argument("--out", required=True, help="run folder for the model")
    add_table_reading_args(fit)
    fit.add_argument("--epochs", type=count(), help="passes over the table (default: about 3000 training steps, "
                     "10 to 50 epochs)")
    fit.add_argument("--latent-dim", type=count(), help="code size (default: 16)")
    fit.add_argument("--beta", type=float, help="weight of the KL term (default: 1)")
    fit.add_argument("--autoregressive", type=int, metavar="WIDTH", help="units of the likelihood's masked layer "
                     "that lets each column depend on the ones before it (default: 512; 0: columns independent "
                     "given the code, faster to sample)")
    fit.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    fit.add_argument("--seed", type=int, default=0, help="seeds the encoding, the weights and the batches")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    sample = sub.add_parser("sample", help="write synthetic rows as CSV")
    sample.add_argument("run", help="a folder written by 'vaekit tabular fit'")
    sample.add_argument("-n", "--rows", type=count(), required=True, help="how many rows")
    sample.add_argument("--out", required=True, help="the CSV to write")
    sample.add_argument("--condition", action="append", default=[], metavar="COLUMN=VALUE",
                        help="every row holds this value (a categorical, boolean or few-valued column); repeatable")
    sample.add_argument("--seed", type=int, default=0, help="seed of the draw")
    report = sub.add_parser("report", help="compare synthetic rows with real ones: Markdown + PNG")
    report.add_argument("run", help="a folder written by 'vaekit tabular fit'")
    report.add_argument("--real", required=True, help="real rows to compare against, ideally a hold-out (.csv)")
    report.add_argument("--synthetic", required=True, help="synthetic rows (.csv from 'vaekit tabular sample')")
    report.add_argument("--out", required=True, help="folder for report.md, metrics.json and the pictures")
    report.add_argument("--train", help="the rows the model was fitted on (default: the table fit read, if it is "
                        "still there); for the train-on-real baseline and the privacy scores")
    report.add_argument("--target", help="the column a classifier predicts for the efficacy scores")
    report.add_argument("--positive", help="the target's positive class (default: its rarer value)")
    report.add_argument("--seed", type=int, default=0, help="seed of the classifier and of the subsamples")


def run(args) -> int:
    return {"fit": _fit, "sample": _sample, "report": _report}[args.action](args)


def _fit(args) -> int:
    from ..data.tables.reader import read_metadata, read_table
    from ..io import atomic_write_json
    from ..tasks.synthesis.synthesizer import TabularVAE

    types = read_metadata(args.metadata) if args.metadata else None
    table = read_table(args.data, coerce=args.coerce, categorical=args.categorical, types=types)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("latent_dim", args.latent_dim), ("beta", args.beta),
                                   ("autoregressive", args.autoregressive)) if v is not None}
    model = TabularVAE(random_state=args.seed, device=args.device, verbose=not args.quiet, **overrides)
    out = Path(args.out)
    model.fit(table, run_dir=out)
    model.save(out)
    doc = read_json(out / CONFIG_FILE)
    doc["data"] = {"path": str(Path(args.data).resolve()), "metadata": args.metadata,
                   "categorical": args.categorical, "coerce": args.coerce}
    atomic_write_json(out / CONFIG_FILE, doc)
    last = model.history_[-1]
    print(f"fitted on {len(table)} rows x {len(table.columns)} columns in {len(model.history_)} epochs "
          f"(loss {last['train_loss']:.3f}); model in {out}")
    return 0


def _load_synthesizer(run: str):
    """The TabularVAE in run; a model of images is refused with the commands that take it."""
    from .. import load

    model = load(run, device="cpu")
    if not hasattr(model, "encoding_"):
        raise VaekitError(f"{run} holds a {type(model).__name__} model, not a table synthesizer: use 'vaekit sample', "
                          f"'vaekit reconstruct' and the other image commands with it")
    return model


def _conditions(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        column, sep, value = pair.partition("=")
        if not sep or not column.strip():
            raise VaekitError(f"--condition '{pair}' is not COLUMN=VALUE; e.g. --condition income='>50K'")
        out[column.strip()] = value.strip()
    return out


def _sample(args) -> int:
    model = _load_synthesizer(args.run)
    rows = model.sample(args.rows, random_state=args.seed, conditions=_conditions(args.condition))
    atomic_write(args.out, lambda tmp: rows.to_csv(tmp, index=False))
    print(f"wrote {len(rows)} rows x {rows.shape[1]} columns to {args.out}")
    return 0


def _report(args) -> int:
    from ..tasks.synthesis.report import write_report

    model = _load_synthesizer(args.run)
    read = model.read_frame
    real, synthetic = read(args.real), read(args.synthetic)
    train_path = args.train or read_json(Path(args.run) / CONFIG_FILE).get("data", {}).get("path")
    train = None
    if train_path and Path(train_path).is_file():
        train = read(train_path)
    elif train_path:
        print(f"vaekit tabular report: warning: the training table {train_path} is not there; the privacy scores "
              f"and the train-on-real baseline are left out (give it with --train)", file=sys.stderr)
    metrics = write_report(real, synthetic, args.out, train, args.target, args.positive, args.seed)
    f = metrics["fidelity"]
    print(f"quality {f['quality']:.3f} (column shapes {f['column_shapes']:.3f}, pair trends "
          f"{f['column_pair_trends']:.3f}); report in {Path(args.out) / 'report.md'}")
    return 0
