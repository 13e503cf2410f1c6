"""MUSAN (Snyder et al. 2015) for speech / music / noise classification, as SwishNet uses it.

Layout: ``ROOT/{music,speech,noise}/<source>/*.wav`` (16 kHz). Preparation splits each class's files at random
65 / 10 / 25 % into train / valid / test (by file, so no recording is in two splits), removes silence (keeps the
stretches louder than a threshold, :func:`remove_silence`) and writes one manifest per split
(``path,label,start,stop``). Training then reads clips of 0.5, 1 or 2 s from the manifests (dataset ``manifest`` or
``musan``), loudness-equalised.

``sepaudio prepare musan ROOT OUT`` prepares.
"""
from __future__ import annotations

import os
from pathlib import Path

import librosa
import numpy as np
from tqdm import tqdm

from .. import audio
from ..errors import DatasetError
from .classification import ClipDataset, Region, read_manifest, write_manifest
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


def remove_silence(path: str | os.PathLike, label: str, silence_db: float = -50.0, frame_seconds: float = 0.025,
                   min_gap: float = 0.3, min_region: float = 0.5, block_seconds: float = 60.0) -> list[Region]:
    """The stretches of a file whose frame RMS is above ``silence_db`` dBFS (``librosa.effects.split`` on blocks
    of ``block_seconds``, so memory stays bounded), as regions labelled ``label``.

    Frames are ``frame_seconds`` long, one every half frame. Quiet gaps of at most ``min_gap`` seconds are
    bridged (also across blocks); regions shorter than ``min_region`` seconds are dropped.
    """
    header = audio.info(path)
    rate = header.samplerate
    frame = max(2, int(frame_seconds * rate))
    block = max(frame, int(block_seconds * rate))
    regions: list[list[float]] = []
    for start in range(0, header.frames, block):
        wav = audio.load(path, mono=True, start=start, frames=min(block, header.frames - start))[0][0].numpy()
        for a, b in librosa.effects.split(wav, top_db=-silence_db, ref=1.0, frame_length=frame,
                                          hop_length=frame // 2):
            a, b = (start + a) / rate, (start + b) / rate
            if regions and a - regions[-1][1] <= min_gap:
                regions[-1][1] = b
            else:
                regions.append([a, b])
    return [Region(str(path), label, round(a, 3), round(b, 3)) for a, b in regions if b - a >= min_region]


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
                regions[split] += remove_silence(path, label, silence_db)
    return {split: write_manifest(out / f"{split}.csv", rows) for split, rows in regions.items()}


@register_dataset("musan")
def musan(manifests: str, split: str = "train", **kwargs) -> ClipDataset:
    """Clips of a prepared MUSAN split (``manifests/<split>.csv``); labels speech, music, noise.

    Keyword arguments go to :class:`ClipDataset` (``clip_seconds`` 0.5 / 1 / 2, ``overlap``, ``rms_db``, ...).
    """
    return ClipDataset(read_manifest(Path(manifests) / f"{split}.csv"), LABELS, **kwargs)
