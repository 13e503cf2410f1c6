"""File I/O below audio: atomic writes (every file sepaudio produces appears whole or not at all) and plain-text
lists of files (one item per line, whitespace-separated paths then optional fields, ``#`` comments)."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import DatasetError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps the suffix, so writers that pick a format from the extension still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


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
    root = Path(root) if root is not None else list_path.parent
    rows = []
    for number, line in enumerate(list_path.read_text().splitlines(), start=1):
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
