"""Run folders (``exp_dir``) belong to sepaudio: a run writes only into a folder that is new (or empty) or that a
sepaudio run created, and only one process writes into it at a time.

A run folder holds :data:`MARKER` (JSON: what created it, when, with which sepaudio, and the config it was created
with) and, while a run is writing, :data:`LOCK` (the owner's host and process id; a lock whose process is gone is
stale and taken over). Anything else — the current folder with the user's files, ``/``, a home folder, a file — is
refused before anything is written.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from .errors import ConfigError
from .fileio import write_text

MARKER, LOCK = ".sepaudio-run.json", ".sepaudio-run.lock"
#: what a run folder of a sepaudio version before the marker holds (a resumable training checkpoint)
LEGACY_CHECKPOINT = Path("checkpoints") / "last.ckpt"

__all__ = ["MARKER", "LOCK", "claim_run_dir", "run_lock", "is_run_dir"]


def is_run_dir(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` carries a readable sepaudio run marker."""
    try:
        record = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("sepaudio_run") == 1


def claim_run_dir(folder: str | os.PathLike, config: dict, resuming: bool = False) -> Path:
    """Make sure ``folder`` may hold a run and mark it as sepaudio's; returns it.

    Args:
        folder: the run's ``exp_dir``.
        config: the resolved config, recorded in the marker of a new run folder.
        resuming: the folder's ``checkpoints/last.ckpt`` was checked to be this run's training checkpoint: a run
            folder of a sepaudio version before the marker, which is then marked.

    Raises:
        ConfigError: ``folder`` is a file, or a folder holding files that no sepaudio run wrote (naming a few).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"exp_dir={folder}: is an existing file, not a run folder; give a new folder name.")
    if is_run_dir(folder):
        return folder
    entries = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if entries and not (resuming and (folder / LEGACY_CHECKPOINT).is_file()):
        shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
        raise ConfigError(f"exp_dir={folder}: holds files that no sepaudio run wrote ({shown}); a run writes "
                          f"config.yaml, model.pt, README.md and more into exp_dir and would replace them. Give a "
                          f"new folder (e.g. exp_dir=exp/my_run).")
    folder.mkdir(parents=True, exist_ok=True)
    from . import __version__

    write_text(folder / MARKER, json.dumps({"sepaudio_run": 1, "created_by": "sepaudio train", "version": __version__,
                                            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "config": config},
                                           indent=1, default=str) + "\n")
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold ``folder``'s lock for the block: one writer per run folder.

    A lock left by a process that no longer runs on this host (a killed run) is taken over.

    Raises:
        ConfigError: another live process holds the lock (naming its host and pid).
    """
    lock = Path(folder) / LOCK
    host = socket.gethostname()
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                owner = json.loads(lock.read_text())
                owner_host, owner_pid = str(owner["host"]), int(owner["pid"])
            except (OSError, ValueError, KeyError, TypeError):
                owner_host, owner_pid = host, -1  # unreadable: left half-written by a kill
            if owner_host != host or (owner_pid > 0 and _alive(owner_pid)):
                raise ConfigError(f"exp_dir={folder}: another training (pid {owner_pid} on {owner_host}) is writing "
                                  f"into this run folder; wait for it to end, or give another exp_dir. (If that "
                                  f"process is gone, delete {lock}.)") from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps({"host": host, "pid": os.getpid()}))
        break
    else:
        raise ConfigError(f"exp_dir={folder}: could not take the run folder's lock {lock} ({errno.errorcode[errno.EEXIST]}).")
    try:
        yield lock
    finally:
        with contextlib.suppress(OSError):
            if json.loads(lock.read_text()).get("pid") == os.getpid():
                lock.unlink()
