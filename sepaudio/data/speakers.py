"""Folders of single-speaker utterances: ``root/<speaker>/**/*.{wav,flac,ogg}``."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import DatasetError

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
