"""File I/O below audio: atomic writes (every file sepaudio produces appears whole or not at all) and plain-text
lists of files (one item per line, whitespace-separated paths then optional fields, ``#`` comments)."""
from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from .errors import DatasetError, OutputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps the suffix, so writers that pick a format from the extension still work. The file
    gets the mode of the file it replaces, or of a new file under the user's umask. An exception, Ctrl-C included,
    removes the temporary file (``sepaudio``'s command line turns SIGTERM into one).
    """
    path = Path(path)
    kind = special_kind(path)
    if kind == "a folder":
        raise OutputError(f"{path}: is a folder; give a file name.")
    if kind is not None:  # renaming onto it would replace a device node or pipe (as root, /dev/null itself)
        raise OutputError(f"{path}: is {kind}; sepaudio writes regular files only: give a file name.")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{path}: exists and is not writable by you; sepaudio leaves it as it is: give another "
                          f"name, or make it writable.")
    tmp: Path | None = None
    try:
        with _signals_held():  # an interruption between creating the file and naming it here would leak it
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
            tmp = Path(name)
            os.close(fd)
        yield tmp
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~_umask())
        os.replace(tmp, path)
    except PermissionError as err:
        if tmp is not None:
            raise
        raise OutputError(f"cannot write {path}: permission denied in {path.parent}; give a folder you may write "
                          f"to.") from err
    except OSError as err:
        if err.errno in FULL:
            raise write_failed(path, err.errno) from err
        raise
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait (in this thread) until the block ends; they are delivered then."""
    hold = getattr(signal, "pthread_sigmask", None)
    if hold is None:  # Windows
        yield
        return
    previous = hold(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        hold(signal.SIG_SETMASK, previous)


#: errno values that mean the destination took no more bytes: a full disk, a file size limit, a quota
FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def write_failed(path: str | os.PathLike, code: int | None) -> OutputError:
    """The error for a write the system refused (``code``: its errno when known), after the partial file is gone."""
    reason = f"{os.strerror(code)}: the disk is full, or a file size limit or quota was reached" if code in FULL \
        else (os.strerror(code) if code else "the system refused the write")
    return OutputError(f"{path}: could not be written ({reason}); no partial file was left (an existing one is "
                       f"unchanged): free some space or write elsewhere, then run the command again.")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_outputs(outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike] = (),
                  out_dir: str | os.PathLike | None = None) -> None:
    """Refuse, before anything is written, outputs that would destroy data.

    Args:
        outputs: every file a command will write.
        inputs: every file it reads (the whole batch: an output may not replace an input read later either).
        out_dir: when given, every output must lie inside it.

    Raises:
        OutputError: an output is an input (symbolic and hard links included), two outputs are the same file, an
            output lies outside ``out_dir``, or an output is an existing folder.
    """
    read = {_identity(p): Path(p) for p in inputs}
    written: dict = {}
    root = Path(out_dir).resolve() if out_dir is not None else None
    for out in map(Path, outputs):
        key = _identity(out)
        if key in read:
            raise OutputError(f"{out}: is an input of this command ({read[key]}); writing it would destroy the "
                              f"input. Choose another output name or folder.")
        if key in written:
            raise OutputError(f"{out}: two outputs of this command would be this one file (also {written[key]}); "
                              f"give them different names.")
        if root is not None and not out.resolve().is_relative_to(root):
            raise OutputError(f"{out}: lies outside the output folder {out_dir}; outputs stay inside it (give a "
                              f"path relative to it without '..').")
        if out.is_dir():
            raise OutputError(f"{out}: is a folder; give a file name.")
        written[key] = out


def _identity(path: str | os.PathLike):
    """What makes two paths the same file: device and inode when it exists, else the resolved path."""
    path = Path(path)
    try:
        info = path.stat()
        return info.st_dev, info.st_ino
    except OSError:
        return str(path.resolve())


def check_out_dir(path: str | os.PathLike, option: str = "-o") -> Path:
    """An output folder: refuse an existing file of that name (``option`` names the command-line option)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path}: is a file, not a folder; give a folder for the outputs.")
    return path


_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def special_kind(path: str | os.PathLike) -> str | None:
    """What ``path`` is when it exists and is not a regular file ("a FIFO (named pipe)", "a character device",
    "a folder", ...); ``None`` for a regular file or a missing path. Links are followed."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), None if stat.S_ISREG(mode) else "not a regular file")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (file names in it that are not valid UTF-8 keep their bytes)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, errors="surrogateescape")
    return Path(path)


def check_readable(path: str | os.PathLike, error: type[Exception]) -> None:
    """Raise ``error`` naming ``path`` when it exists but this process may not read it (root reads any file)."""
    if os.path.exists(path) and not os.access(path, os.R_OK):
        raise error(f"cannot read {path}: permission denied; make it readable to you (chmod u+r) or run as a user "
                    f"who may read it.")


def readable(path: str | os.PathLike) -> str:
    """``path`` for people (titles, labels): bytes that are not valid UTF-8 become U+FFFD."""
    return os.fsencode(path).decode("utf-8", "replace")


def read_list(list_path: str | os.PathLike, n_paths: int, n_optional: int = 0, root: str | os.PathLike | None = None,
              usage: str = "path") -> list[tuple[int, list[Path], list[str]]]:
    """Read a list whose lines hold ``n_paths`` existing files and up to ``n_optional`` more fields.

    Args:
        list_path: the list file.
        n_paths: leading fields that name files which must exist.
        n_optional: further fields a line may have (returned as strings).
        root: where relative paths start; default the list's folder.
        usage: the line format, for error messages (e.g. ``"mixture target enrollment [speaker]"``).

    Returns:
        ``(line number, paths, optional fields)`` for every non-empty line.

    Raises:
        DatasetError: missing or empty list, a line with the wrong number of fields, or a missing file (naming the
            list and the line).
    """
    list_path = Path(list_path)
    if not list_path.is_file():
        raise DatasetError(f"{list_path}: no such list; write one '{usage}' line per item.")
    check_readable(list_path, DatasetError)
    root = Path(root) if root is not None else list_path.parent
    rows = []
    for number, line in enumerate(list_path.read_text(errors="surrogateescape").splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if not n_paths <= len(fields) <= n_paths + n_optional:
            raise DatasetError(f"{list_path}, line {number}: expected '{usage}', got {len(fields)} field(s).")
        paths = [Path(f) if Path(f).is_absolute() else root / f for f in fields[:n_paths]]
        for path in paths:
            if not path.is_file():
                raise DatasetError(f"{list_path}, line {number}: {path} not found; fix the path or the list "
                                   f"(relative paths start at {root}).")
        rows.append((number, paths, fields[n_paths:]))
    if not rows:
        raise DatasetError(f"{list_path}: lists nothing; write one '{usage}' line per item.")
    return rows
