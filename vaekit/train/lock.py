"""One writer per run folder: an exclusive lock on RUN/.vaekit.lock while a process trains into it.

The lock is the kernel's (flock), not the file's existence, so a process that is killed, however it dies,
leaves nothing stuck: the kernel drops its locks with its files. The file keeps the holder's pid and host for
the message a second writer gets. Locks are re-entrant within a process (the command line takes it before
it writes the config, and the training it calls takes it again). Where flock does not exist (Windows), runs
are not locked.
"""
from __future__ import annotations

import os
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

from ..errors import VaekitError

LOCK_FILE = ".vaekit.lock"
_held: dict[str, tuple[int, object]] = {}  # resolved folder -> (depth, open file holding the lock)
_guard = threading.Lock()


def acquire(run_dir) -> None:
    """Take the folder's lock (creating the folder), or refuse with who holds it."""
    try:
        import fcntl
    except ImportError:  # no flock on this platform
        return
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    key = str(run.resolve())
    with _guard:
        if key in _held:
            depth, f = _held[key]
            _held[key] = (depth + 1, f)
            return
        f = open(run / LOCK_FILE, "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise VaekitError(f"{run} is in use: {holder} is training into it. Wait for it to finish (or stop "
                              f"it), or train into another folder; a killed process does not keep the lock")
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        _held[key] = (1, f)


def release(run_dir) -> None:
    try:
        import fcntl
    except ImportError:
        return
    key = str(Path(run_dir).resolve())
    with _guard:
        if key not in _held:
            return
        depth, f = _held[key]
        if depth > 1:
            _held[key] = (depth - 1, f)
            return
        del _held[key]
        f.seek(0)
        f.truncate()  # the pid no longer holds it; the file stays, so no second writer ever locks another inode
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        f.close()


@contextmanager
def run_lock(run_dir):
    """Hold the folder's lock for the block; run_dir None: nothing to lock."""
    if run_dir is None:
        yield
        return
    acquire(run_dir)
    try:
        yield
    finally:
        release(run_dir)
