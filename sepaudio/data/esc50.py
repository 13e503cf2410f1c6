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

from .classification import ClipDataset, metadata_regions
from .registry import register_dataset

FOLDS = (1, 2, 3, 4, 5)


def esc50_labels(root: str | Path, esc10: bool = False) -> list[str]:
    """Category names in ``target`` order (the ESC-10 subset in its own order when ``esc10``)."""
    with open(Path(root) / "meta" / "esc50.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if not esc10 or r["esc10"] == "True"]
    names = {int(r["target"]): r["category"] for r in rows}
    return [names[t] for t in sorted(names)]


def _regions(root: Path, folds):
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
