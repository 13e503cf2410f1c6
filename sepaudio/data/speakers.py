"""Speakers: folders of single-speaker utterances (``root/<speaker>/**/*.{wav,flac,ogg}``), speaker lists, and
pseudo-speakers made by speed perturbation.

Pseudo-speakers: with ``speed_factors`` (e.g. ``[0.9, 1.0, 1.1]``) a dataset treats every speaker played at every
factor as a speaker of its own (``spk03`` at 1.1 is ``spk03@sp1.1``), the perturbation applied alike to the
speaker's mixtures, targets and enrollments: three times the voices for the extractor to tell apart.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

from ..errors import DatasetError
from ..fileio import read_list

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def list_audio(folder: str | os.PathLike) -> list[Path]:
    """Audio files below ``folder``, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def scan_speakers(root: str | os.PathLike, min_utterances: int = 1) -> dict[str, list[Path]]:
    """Map each speaker (a sub-folder of ``root``) to its utterance files.

    Raises:
        DatasetError: ``root`` missing, or no speaker folder with at least ``min_utterances`` audio files.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder; give a folder with one sub-folder of audio files per speaker.")
    speakers = {d.name: list_audio(d) for d in sorted(root.iterdir()) if d.is_dir()}
    speakers = {name: files for name, files in speakers.items() if len(files) >= min_utterances}
    if not speakers:
        raise DatasetError(f"{root}: no speaker sub-folder holds {min_utterances} or more .wav/.flac/.ogg files; "
                           f"expected root/<speaker>/<utterance>.wav.")
    return speakers


def read_speaker_list(path: str | os.PathLike) -> list[str]:
    """Speaker names from a text file, one per line (``#`` starts a comment).

    Raises:
        DatasetError: a missing file, or one that names no speaker.
    """
    return [extra[0] for _, _, extra in read_list(path, 0, 1, usage="speaker")]


def check_speed_factors(factors: Sequence[float], where: str) -> tuple[float, ...]:
    """The speed factors as a tuple, or a DatasetError naming ``where`` when one is not a number in [0.5, 2]."""
    try:
        factors = tuple(float(f) for f in factors)
    except (TypeError, ValueError):
        factors = ()
    valid = all(math.isfinite(f) and 0.5 <= f <= 2.0 for f in factors)
    if not factors or not valid or len(set(factors)) < len(factors):
        raise DatasetError(f"{where}: speed_factors must be distinct numbers between 0.5 and 2, e.g. [0.9, 1.0, 1.1].")
    return factors


def pseudo_speaker(name: str, factor: float) -> str:
    """The name of speaker ``name`` played ``factor`` times as fast: ``spk03``, 1.1 -> ``spk03@sp1.1``."""
    return name if factor == 1 else f"{name}@sp{factor:g}"
