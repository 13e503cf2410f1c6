"""MUSAN (Snyder et al. 2015) for speech / music / noise classification, as SwishNet uses it.

Layout: ``ROOT/{music,speech,noise}/<source>/*.wav`` (16 kHz). Preparation splits each class's files at random
65 / 10 / 25 % into train / valid / test (by file, so no recording is in two splits), removes silence (keeps the
stretches louder than a threshold) and writes one manifest per split (``path,label,start,stop``). Training then
reads clips of 0.5, 1 or 2 s from the manifests (dataset ``manifest`` or ``musan``), loudness-equalised.

``python -m sepaudio.classify prepare musan ROOT OUT`` prepares.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import DatasetError
from .classification import ClipDataset, nonsilent_regions, read_manifest, write_manifest
from .registry import register_dataset
from .speakers import list_audio

LABELS = ("speech", "music", "noise")
SPLIT_FRACTIONS = {"train": 0.65, "valid": 0.10, "test": 0.25}


def split_files(files: list[Path], seed: int = 0) -> dict[str, list[Path]]:
    """Random 65 / 10 / 25 split of one class's files (at least one file per split when there are three)."""
    order = np.random.default_rng(seed).permutation(len(files))
    n_valid = max(1, round(SPLIT_FRACTIONS["valid"] * len(files))) if len(files) >= 3 else 0
    n_test = max(1, round(SPLIT_FRACTIONS["test"] * len(files))) if len(files) >= 3 else 0
    n_train = len(files) - n_valid - n_test
    picked = [files[i] for i in order]
    return {"train": picked[:n_train], "valid": picked[n_train:n_train + n_valid], "test": picked[n_train + n_valid:]}


def prepare_musan(root: str | os.PathLike, out: str | os.PathLike, silence_db: float = -50.0,
                  seed: int = 0) -> dict[str, Path]:
    """Write ``OUT/{train,valid,test}.csv`` manifests of the non-silent regions of MUSAN's files.

    Raises:
        DatasetError: ``root`` lacks one of the class folders or a class has no audio.
    """
    root, out = Path(root), Path(out)
    regions = {split: [] for split in SPLIT_FRACTIONS}
    for k, label in enumerate(LABELS):
        folder = root / label
        files = list_audio(folder) if folder.is_dir() else []
        if not files:
            raise DatasetError(f"{folder}: missing or without audio; ROOT must be the unpacked musan/ folder "
                               f"with music/, speech/ and noise/ inside.")
        for split, chosen in split_files(files, seed + k).items():
            for path in tqdm(chosen, desc=f"{label} {split}: removing silence", unit="file", leave=False):
                regions[split] += nonsilent_regions(path, label, silence_db)
    return {split: write_manifest(out / f"{split}.csv", rows) for split, rows in regions.items()}


@register_dataset("musan")
def musan(manifests: str, split: str = "train", **kwargs) -> ClipDataset:
    """Clips of a prepared MUSAN split (``manifests/<split>.csv``); labels speech, music, noise.

    Keyword arguments go to :class:`ClipDataset` (``clip_seconds`` 0.5 / 1 / 2, ``overlap``, ``rms_db``, ...).
    """
    return ClipDataset(read_manifest(Path(manifests) / f"{split}.csv"), LABELS, **kwargs)
