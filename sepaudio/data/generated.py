"""Folders of generated corpora: written once, reused when asked again, and never written over anything else."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from ..errors import DatasetError
from ..fileio import write_text

STAMP = "corpus.json"


def needs_generating(root: Path, params: dict, files: Iterable[Path] = ()) -> bool:
    """Whether ``root`` must be generated: ``False`` when it already holds the corpus ``params`` describe.

    Args:
        root: the corpus folder.
        params: every setting the corpus is a function of (written to ``root/corpus.json`` by :func:`mark_generated`).
        files: files the corpus must have; a missing one means regenerating the same corpus.

    Raises:
        DatasetError: ``root`` holds files that are not this corpus (another generated corpus, or anyone's data):
            they are never written over.
    """
    stamp = root / STAMP
    if stamp.is_file():
        try:
            found = json.loads(stamp.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            found = None
        if found == json.loads(json.dumps(params)):
            return not all(Path(f).is_file() for f in files)
        raise DatasetError(f"{root}: holds a generated corpus with other settings ({found}); asked for {params}. "
                           f"Choose another folder, or delete this one to regenerate it.")
    if root.is_dir() and any(root.iterdir()):
        raise DatasetError(f"{root}: the folder is not empty and holds no generated corpus ({STAMP}); nothing is "
                           f"written over existing files: choose an empty or new folder.")
    return True


def mark_generated(root: Path, params: dict) -> None:
    """Record that ``root`` now holds the corpus ``params`` describe (after all its files are written)."""
    write_text(root / STAMP, json.dumps(params))
