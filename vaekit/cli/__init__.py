"""The command line: `vaekit COMMAND ...`; main(argv) runs in-process and returns the exit code."""
from __future__ import annotations

import sys
import warnings

from ..errors import VaekitError, VaekitWarning
from . import anomaly, compress, demo, evaluate, explore, finetune, models, tabular, text, train, views
from .options import Parser


def _commands():
    cmds = {
        "train": (train.HELP, train.add_arguments, train.run),
        "models": (models.HELP, models.add_arguments, models.run),
        **views.COMMANDS,
        "evaluate": (evaluate.HELP, evaluate.add_arguments, evaluate.run),
        "finetune": (finetune.HELP, finetune.add_arguments, finetune.run),
        "anomaly": (anomaly.HELP, anomaly.add_arguments, anomaly.run),
        "tabular": (tabular.HELP, tabular.add_arguments, tabular.run),
        "text": (text.HELP, text.add_arguments, text.run),
        "compress": (compress.HELP, compress.add_arguments, compress.run),
        "decompress": (compress.DECOMPRESS_HELP, compress.add_decompress_arguments, compress.run_decompress),
        "explore": (explore.HELP, explore.add_arguments, explore.run),
        "demo": (demo.HELP, demo.add_arguments, demo.run),
    }
    return cmds


def build_parser() -> Parser:
    from .. import __version__

    parser = Parser(prog="vaekit", description="Autoencoders, VAEs and their latent spaces.")
    parser.add_argument("--version", action="version", version=f"vaekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name, (help_text, add, run) in _commands().items():
        p = sub.add_parser(name, help=help_text, description=help_text)  # a Parser: its help shows defaults
        add(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns 0 on success, 2 on bad input (message on stderr), 130 on Ctrl-C."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits on --help and on usage errors
        return int(e.code or 0)
    args.argv = argv  # the command line as given, for commands that relaunch themselves
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _plain_warning(args.command, warnings.showwarning)
            return args._run(args)
    except VaekitError as e:
        print(f"vaekit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vaekit {args.command}: interrupted; a run folder keeps its last finished epoch "
              f"(continue with 'vaekit train --out RUN --resume')", file=sys.stderr)
        return 130


def _plain_warning(command: str, default):
    """vaekit's own warnings as 'vaekit COMMAND: warning: ...'; other libraries' warnings as they come."""
    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, VaekitWarning):
            print(f"vaekit {command}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)
    return show


def entry_point() -> None:
    sys.exit(main())
