"""ESC-50 (Piczak 2015): 2,000 five-second clips, 50 classes, 5 folds for cross-validation.

Layout: ``ROOT/audio/*.wav`` (44.1 kHz) and ``ROOT/meta/esc50.csv`` with columns filename, fold, target,
category, esc10, src_file, take. Fold-wise cross-validation trains on four folds and validates on the fifth
(``folds`` selects them). ``esc10=True`` keeps the ESC-10 subset (10 classes).

``sepaudio prepare esc50 ROOT`` checks the layout and prints clips per fold.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from ..errors import DatasetError
from ..fileio import check_readable, special_kind
from .classification import ClipDataset, metadata_regions
from .registry import register_dataset

FOLDS = (1, 2, 3, 4, 5)
COLUMNS = ("filename", "fold", "target", "category", "esc10")


def esc50_labels(root: str | Path, esc10: bool = False) -> list[str]:
    """Category names in ``target`` order (the ESC-10 subset in its own order when ``esc10``)."""
    names: dict[int, str] = {}
    for r in _rows(Path(root)):
        if not esc10 or r["esc10"] == "True":
            names[int(r["target"])] = r["category"]
    return [names[t] for t in sorted(names)]


def _rows(root: Path) -> list[dict]:
    """The rows of ``meta/esc50.csv``, checked: its columns, a file name and a category on every row, a fold in
    ``FOLDS``, an integer target of one category.

    Raises:
        DatasetError: naming the metadata file, the line and the value at fault.
    """
    path = root / "meta" / "esc50.csv"
    if not path.is_file() or special_kind(path):
        raise DatasetError(f"{path}: no such metadata file; point root at the unpacked ESC-50 folder.")
    check_readable(path, DatasetError)
    categories: dict[int, str] = {}
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}; the ESC-50 metadata has the "
                                   f"columns filename, fold, target, category, esc10, src_file, take: use the "
                                   f"corpus's original file.")
            for row in reader:
                where = f"{path}, line {reader.line_num}"
                if not all(row.get(c) for c in ("filename", "category")):
                    raise DatasetError(f"{where}: a row without a filename or category; use the corpus's original "
                                       f"metadata.")
                fold, target = row["fold"], row["target"]
                if _natural(fold) not in FOLDS:
                    raise DatasetError(f"{where}: fold {fold!r} is not one of {', '.join(map(str, FOLDS))}; use the "
                                       f"corpus's original metadata.")
                if _natural(target) is None:
                    raise DatasetError(f"{where}: target {target!r} is not a class number (0, 1, ...); use the "
                                       f"corpus's original metadata.")
                known = categories.setdefault(int(target), row["category"])
                if known != row["category"]:
                    raise DatasetError(f"{where}: target {int(target)} is {row['category']!r} here but {known!r} "
                                       f"above; each target names one category: fix the metadata.")
                rows.append(row)
    except (UnicodeDecodeError, csv.Error) as err:
        raise DatasetError(f"{path}: not a readable CSV file ({err}); use the corpus's original metadata.") from err
    return rows


def _natural(text: str | None) -> int | None:
    """``text`` as a number 0, 1, 2, ... (``None`` for anything else)."""
    text = (text or "").strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _regions(root: Path, folds):
    _rows(root)
    return metadata_regions(root / "meta" / "esc50.csv", lambda r: root / "audio" / r["filename"],
                            lambda r: r["category"], lambda r: r["fold"], folds)


@register_dataset("esc50")
def esc50(root: str, folds: Sequence[int] = FOLDS, esc10: bool = False, sample_rate: int = 44100,
          **kwargs) -> ClipDataset:
    """ESC-50 clips of the given folds, whole (5 s); keyword arguments go to :class:`ClipDataset`."""
    root = Path(root)
    regions = _regions(root, list(folds))
    keep = set(esc50_labels(root, esc10))
    kwargs.setdefault("clip_seconds", None)
    return ClipDataset([r for r in regions if r.label in keep], esc50_labels(root, esc10), sample_rate, **kwargs)


def esc50_fold_sizes(root: str | Path) -> dict[int, int]:
    """Clips per fold; checks that every file the metadata lists is there."""
    return {k: len(_regions(Path(root), [k])) for k in FOLDS}
