"""UrbanSound8K (Salamon et al. 2014): 8,732 clips of up to 4 s, 10 classes, 10 predefined folds.

Layout: ``ROOT/audio/fold<N>/<slice_file_name>`` and ``ROOT/metadata/UrbanSound8K.csv`` with columns
slice_file_name, fsID, start, end, salience, fold, classID, class. Always cross-validate on the official folds
(clips of one recording share a fold). Clips are zero-padded to 4 s.

``sepaudio prepare urbansound8k ROOT`` checks the layout and prints clips per fold.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from .classification import ClipDataset, metadata_regions
from .registry import register_dataset

FOLDS = tuple(range(1, 11))


def us8k_labels(root: str | Path) -> list[str]:
    """Class names in ``classID`` order."""
    with open(Path(root) / "metadata" / "UrbanSound8K.csv", newline="") as f:
        names = {int(r["classID"]): r["class"] for r in csv.DictReader(f)}
    return [names[i] for i in sorted(names)]


def _regions(root: Path, folds):
    return metadata_regions(root / "metadata" / "UrbanSound8K.csv",
                            lambda r: root / "audio" / f"fold{r['fold']}" / r["slice_file_name"],
                            lambda r: r["class"], lambda r: r["fold"], folds)


@register_dataset("urbansound8k")
def urbansound8k(root: str, folds: Sequence[int] = FOLDS, sample_rate: int = 44100, **kwargs) -> ClipDataset:
    """UrbanSound8K clips of the given folds, padded to 4 s; keyword arguments go to :class:`ClipDataset`."""
    root = Path(root)
    kwargs.setdefault("clip_seconds", 4.0)
    kwargs.setdefault("overlap", 0.0)
    return ClipDataset(_regions(root, list(folds)), us8k_labels(root), sample_rate, **kwargs)


def us8k_fold_sizes(root: str | Path) -> dict[int, int]:
    """Clips per fold; checks that every file the metadata lists is there."""
    return {k: len(_regions(Path(root), [k])) for k in FOLDS}
