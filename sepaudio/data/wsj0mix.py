"""WSJ0-2mix / WSJ0-3mix in the layout the standard generation scripts write.

Layout: ``<wsj0-mix>/2speakers/wav8k/min/{tr,cv,tt}/{mix,s1,s2}/<name>.wav`` (``s3`` for three speakers; also
``wav16k`` and ``max``). Give the ``wav8k/min``-level folder as ``root``; a mixture is ``mix/<name>.wav`` and its
sources are the files of the same name in ``s1``, ``s2``, ...
"""
from __future__ import annotations

import os
from pathlib import Path

from .. import audio
from ..errors import DatasetError
from .librimix import LibriMix
from .registry import register_dataset

SPLITS = ("tr", "cv", "tt")


def scan_wsj0mix(root: str | os.PathLike, split: str) -> list[dict]:
    """Mixtures of one split with their sources, checked.

    Args:
        root: the ``wav8k/min``-level folder (holding ``tr``, ``cv``, ``tt``).
        split: ``tr``, ``cv`` or ``tt``.

    Returns:
        One dict per mixture: ``id``, ``mixture`` (Path), ``sources`` (list of Paths), ``length`` (samples),
        the rows :class:`~sepaudio.data.librimix.LibriMix` reads.

    Raises:
        DatasetError: unknown split, missing folder, no mixtures, or a mixture without all its source files.
    """
    if split not in SPLITS:
        raise DatasetError(f"unknown WSJ0-mix split {split!r}; choose one of {SPLITS}.")
    folder = Path(root) / split
    source_dirs = sorted((d for d in folder.glob("s[0-9]*") if d.is_dir()), key=lambda d: int(d.name[1:]))
    if not (folder / "mix").is_dir() or not source_dirs:
        raise DatasetError(f"{folder}: expected mix/ and s1/, s2/, ... folders (the wav8k/min/{split} level of "
                           f"WSJ0-2mix as the generation scripts write it); check the root.")
    mixtures = sorted((folder / "mix").glob("*.wav"))
    if not mixtures:
        raise DatasetError(f"{folder / 'mix'}: holds no .wav mixtures.")
    rows = []
    for mix in mixtures:
        sources = [d / mix.name for d in source_dirs]
        missing = [str(s) for s in sources if not s.is_file()]
        if missing:
            raise DatasetError(f"{mix}: source file(s) {', '.join(missing)} missing; the corpus is incomplete.")
        rows.append({"id": mix.stem, "mixture": mix, "sources": sources, "length": audio.info(mix).frames})
    return rows


@register_dataset("wsj0mix")
class Wsj0Mix(LibriMix):
    """Separation items from a WSJ0-2mix (or -3mix) split folder; cropping as :class:`LibriMix`.

    Args:
        root: the ``wav8k/min``-level folder.
        split: ``tr``, ``cv`` or ``tt``.
        sample_rate: files of other rates are resampled.
        segment: seconds per item, cropped at a random offset (zero-padded when shorter); ``None`` = whole.
        seed: fixed crops when set.

    Items: ``mixture`` (T,), ``sources`` (n_src, T), ``id`` (str).
    """

    def __init__(self, root: str | os.PathLike, split: str = "tt", sample_rate: int = 8000,
                 segment: float | None = None, seed: int | None = None):
        self.rows = scan_wsj0mix(root, split)
        self.n_src = len(self.rows[0]["sources"])
        self.sample_rate, self.seed = sample_rate, seed
        self.samples = int(segment * sample_rate) if segment else None
