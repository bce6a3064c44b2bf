"""Atomic writes: the mode an ordinary open() gives, JSON that every reader accepts, damaged JSON named."""
import json
import os
import stat

import numpy as np
import pytest

from vaekit.cli import main
from vaekit.errors import VaekitError
from vaekit.io import atomic_write_bytes, atomic_write_json, read_json


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_get_the_mode_open_gives_and_keep_their_own(tmp_path, umask_022):
    atomic_write_bytes(tmp_path / "a.bin", b"x")
    with open(tmp_path / "b.bin", "wb") as f:  # what a plain open() gives under this umask
        f.write(b"x")
    assert _mode(tmp_path / "a.bin") == _mode(tmp_path / "b.bin") == 0o644
    os.chmod(tmp_path / "a.bin", 0o600)  # a file the user made private stays private when replaced
    atomic_write_bytes(tmp_path / "a.bin", b"y")
    assert _mode(tmp_path / "a.bin") == 0o600 and (tmp_path / "a.bin").read_bytes() == b"y"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.bin"]  # no temporary file left


def test_every_file_of_a_run_folder_is_readable_by_others_under_umask_022(tmp_path, umask_022, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--epochs", "1", "--hidden", "16", "--latent-dim", "2",
                 "--out", str(out), "--quiet"]) == 0
    assert main(["sample", str(out), "-n", "4", "--out", str(out / "s.png")]) == 0
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"config.json", "model.safetensors", "history.json", "history.png",
                                       "last.safetensors", "s.png"}
    assert {p.relative_to(out).as_posix(): oct(_mode(p)) for p in files} == \
        {p.relative_to(out).as_posix(): oct(0o644) for p in files}


def test_json_has_no_nan_and_damaged_json_is_named(tmp_path):
    atomic_write_json(tmp_path / "m.json", {"a": float("nan"), "b": [1.0, float("inf")], "c": 2})
    text = (tmp_path / "m.json").read_text()

    def refuse(name):
        raise ValueError(f"{name} in JSON")
    assert json.loads(text, parse_constant=refuse) == {"a": None, "b": [1.0, None], "c": 2}
    (tmp_path / "bad.json").write_text('{"model": ')
    with pytest.raises(VaekitError, match=r"bad.json is not valid JSON \(Expecting value at line 1, column 11\)"):
        read_json(tmp_path / "bad.json")
    (tmp_path / "bin.json").write_bytes(np.arange(200, 256, dtype=np.uint8).tobytes())
    with pytest.raises(VaekitError, match="is not UTF-8 text"):
        read_json(tmp_path / "bin.json")
