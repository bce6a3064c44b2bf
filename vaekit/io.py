"""Writes that never leave a half file in place of a good one: write a sibling temp file, fsync, rename.

The temporary file is created with mode 0o666 filtered by the umask, as open() creates a file (mkstemp's
0o600 would make every result private to its owner), and a file that is replaced keeps its own mode.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import VaekitError


def _temp_sibling(path: Path) -> tuple[Path, int]:
    """A new, empty file beside path, and the mode a plain open(path, 'w') would give path."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
        except FileExistsError:
            continue
        try:
            # replacing a file keeps its mode, as writing into it would; a new one gets 0o666 less the umask
            mode = (path.stat() if path.exists() else os.fstat(fd)).st_mode & 0o7777
        finally:
            os.close(fd)
        return tmp, mode
    raise FileExistsError(f"could not create a temporary file beside {path}")


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call write(tmp_path), then atomically replace path with it; on any failure path is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, mode = _temp_sibling(path)
    try:
        write(str(tmp))
        os.chmod(tmp, mode)  # a writer may have made the file anew with its own mode (safetensors: 0o600)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_npy(path, array) -> None:
    """np.save to path, atomically (into an open file: np.save(name) would add .npy to the temporary name)."""
    def save(tmp):
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)
    atomic_write(path, save)


def _finite(obj: Any) -> Any:
    """obj with every NaN or infinite float replaced by None: JSON has no such numbers (json.dumps would
    write NaN, which strict readers such as JavaScript's JSON.parse refuse)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def atomic_write_json(path, obj: Any) -> None:
    """obj as indented JSON; NaN and infinities become null, so the file is valid JSON for every reader."""
    atomic_write_bytes(path, (json.dumps(_finite(obj), indent=2, allow_nan=False) + "\n").encode())


def read_json(path, fix: str = "fix it, or replace it with a good copy") -> Any:
    """The JSON document at path; a damaged or non-JSON file is a VaekitError that names it, the place, and
    what to do (fix)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise VaekitError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); {fix}") from None
    except UnicodeDecodeError as e:
        raise VaekitError(f"{path} is not UTF-8 text (byte {e.start}), so not JSON; {fix}") from None


@contextlib.contextmanager
def replacing_folder(directory, start_from: tuple[str, ...] = ()):
    """Write a whole folder at once: yields a new sibling folder to write into; on success it takes directory's
    place in one step, so a crash at any moment leaves directory as it was or as it is now, never old files
    beside new ones. Files of directory the block does not write (a run's state/, a user's own) are carried over
    by hard links. The step is Linux's renameat2(RENAME_EXCHANGE), an atomic swap of the two folders;
    elsewhere two renames, between which a crash leaves the old folder beside, under a .old name.
    start_from: files of directory the new folder starts with (a config the writer updates, not replaces)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    fresh = directory.parent / f".{directory.name}.{secrets.token_hex(4)}.saving"
    fresh.mkdir()
    try:
        for name in start_from:
            if (directory / name).is_file():
                _link_tree(directory / name, fresh / name)
        yield fresh
        if not directory.exists():
            os.rename(fresh, directory)
            return
        for p in directory.iterdir():
            if not (fresh / p.name).exists():
                _link_tree(p, fresh / p.name)
        if _exchange(fresh, directory):
            shutil.rmtree(fresh)  # it holds the old folder now
            return
        old = directory.parent / f".{directory.name}.{secrets.token_hex(4)}.old"
        os.rename(directory, old)
        os.rename(fresh, directory)
        shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise


def _link_tree(src: Path, dst: Path) -> None:
    def link(a, b):
        try:
            os.link(a, b)
        except OSError:  # another file system, or one without hard links
            shutil.copy2(a, b)

    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True, copy_function=link)
    elif src.is_symlink():
        os.symlink(os.readlink(src), dst)
    else:
        link(src, dst)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (renameat2 with RENAME_EXCHANGE); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except AttributeError:  # a C library older than glibc 2.28
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # a file system that cannot swap
        return False
    raise OSError(ctypes.get_errno(), f"could not swap {a} and {b}: {os.strerror(ctypes.get_errno())}")
