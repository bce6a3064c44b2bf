"""Sentences in: a UTF-8 file of one sentence per line, or a folder of such .txt files, split deterministically."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import VaekitError

MAX_LINE_BYTES = 1 << 20  # a "sentence" longer than 1 MiB is not one: the file is not one sentence per line


def read_sentences(path) -> list[str]:
    """The non-blank lines of a text file, or of every .txt file of a folder (in name order), stripped."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise VaekitError(f"{path} holds no .txt files; give a file of sentences (one per line) or a folder "
                              f"of .txt files")
    elif path.is_file():
        files = [path]
    else:
        raise VaekitError(f"no such file or folder: {path}")
    sentences = []
    for file in files:
        sentences += _lines(file)
    if not sentences:
        raise VaekitError(f"{path} holds no sentences (every line is blank); give a file with one sentence per "
                          f"line")
    return sentences


def _lines(file: Path) -> list[str]:
    raw = file.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise VaekitError(f"{file} is not UTF-8 text: byte {e.start} (line {line}) cannot be decoded. Convert it, "
                          f"e.g. 'iconv -f latin1 -t utf-8 {file.name} > {file.stem}.utf8.txt'") from None
    if "\x00" in text:
        raise VaekitError(f"{file} holds NUL bytes: it is a binary file, not text of one sentence per line")
    lines = text.splitlines()
    longest = max((len(line) for line in lines), default=0)
    if longest > MAX_LINE_BYTES:
        raise VaekitError(f"{file} has a line of {longest} characters: it is not one sentence per line. Put each "
                          f"sentence on its own line")
    return [s for s in (line.strip() for line in lines) if s]


def split_sentences(sentences: list[str], val_fraction: float, test_fraction: float, seed: int = 0
                    ) -> tuple[list[str], list[str], list[str]]:
    """(train, validation, test): a seeded permutation cut by the fractions, each part in corpus order."""
    if not (0 <= val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise VaekitError(f"val_fraction must lie in [0, 1), test_fraction in (0, 1) and their sum below 1; got "
                          f"{val_fraction} and {test_fraction}")
    n = len(sentences)
    n_test, n_val = int(round(n * test_fraction)), int(round(n * val_fraction))
    if n - n_test - n_val < 1:
        raise VaekitError(f"{n} sentence{'s' if n != 1 else ''} leave none to train on after the validation and "
                          f"test shares; give more sentences or smaller fractions")
    perm = np.random.default_rng(seed).permutation(n)
    test, val, train = np.sort(perm[:n_test]), np.sort(perm[n_test:n_test + n_val]), np.sort(perm[n_test + n_val:])
    return [sentences[i] for i in train], [sentences[i] for i in val], [sentences[i] for i in test]
