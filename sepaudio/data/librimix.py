"""LibriMix (Libri2Mix / Libri3Mix) metadata CSVs.

Layout: ``<Libri2Mix>/wav8k/min/metadata/mixture_<split>_mix_clean.csv`` with columns ``mixture_ID,
mixture_path, source_1_path, source_2_path[, source_3_path][, noise_path], length`` and the audio under
``<Libri2Mix>/wav8k/min/<split>/{mix_clean,s1,s2,...}/<mixture_ID>.wav``. The CSVs hold the absolute paths of the
machine that generated them; paths that do not exist are looked up again under ``root`` by their last three parts.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import audio
from ..errors import DatasetError
from .registry import register_dataset
from .seeding import item_seed


def read_librimix_csv(csv_path: str | os.PathLike, root: str | os.PathLike | None = None) -> list[dict]:
    """Rows of a LibriMix metadata CSV with every audio path resolved and checked.

    Args:
        csv_path: the metadata CSV.
        root: the ``wav8k/min``-level folder the split folders live in; default: the CSV folder's parent.

    Returns:
        One dict per mixture: ``id``, ``mixture`` (Path), ``sources`` (list of Paths), ``length`` (samples).

    Raises:
        DatasetError: missing CSV or column, or a listed file that is not found (naming the CSV line).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: no such metadata CSV; give <LibriMix>/wav8k/min/metadata/<file>.csv.")
    root = Path(root) if root is not None else csv_path.parent.parent
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        sources = sorted((c for c in fields if c.startswith("source_") and c.endswith("_path")),
                         key=lambda c: int(c.split("_")[1]))
        missing = {"mixture_ID", "mixture_path", "length"} - set(fields)
        if missing or not sources:
            raise DatasetError(f"{csv_path}: not a LibriMix metadata CSV (missing columns "
                               f"{sorted(missing) or ['source_1_path']}).")
        rows = []
        for line, row in enumerate(reader, start=2):
            resolve = lambda column: _resolve(row[column], root, csv_path, line)  # noqa: E731
            rows.append({"id": row["mixture_ID"], "mixture": resolve("mixture_path"),
                         "sources": [resolve(c) for c in sources], "length": int(row["length"])})
    if not rows:
        raise DatasetError(f"{csv_path}: lists no mixtures.")
    return rows


def _resolve(listed: str, root: Path, csv_path: Path, line: int) -> Path:
    path = Path(listed)
    candidates = [path] if path.is_absolute() else [root / path]
    candidates.append(root.joinpath(*path.parts[-3:]))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{csv_path}, line {line}: {listed} not found (also looked for {candidates[-1]}); "
                       f"check the corpus path or regenerate the metadata.")


@register_dataset("librimix")
class LibriMix(Dataset):
    """Separation items from a LibriMix metadata CSV (two or three sources, from the CSV's columns).

    Args:
        csv_path: see :func:`read_librimix_csv`.
        root: see :func:`read_librimix_csv`.
        sample_rate: files of other rates are resampled.
        segment: seconds per item, cropped at a random offset (``seed`` fixes it); ``None`` = whole mixtures.
        seed: fixed crops when set.

    Items: ``mixture`` (T,), ``sources`` (n_src, T), ``id`` (str).
    """

    def __init__(self, csv_path: str | os.PathLike, root: str | os.PathLike | None = None, sample_rate: int = 8000,
                 segment: float | None = None, seed: int | None = None):
        self.rows = read_librimix_csv(csv_path, root)
        self.n_src = len(self.rows[0]["sources"])
        self.sample_rate, self.seed = sample_rate, seed
        self.samples = int(segment * sample_rate) if segment else None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        start, frames = 0, -1
        if self.samples is not None:
            rate = audio.info(row["mixture"]).samplerate
            needed = int(np.ceil(self.samples * rate / self.sample_rate))
            rng = np.random.default_rng(item_seed(self.seed, index))
            start, frames = int(rng.integers(max(row["length"] - needed, 0) + 1)), needed
        load = lambda p: audio.load(p, self.sample_rate, mono=True, start=start, frames=frames)[0][0]  # noqa: E731
        mixture = load(row["mixture"])
        sources = torch.stack([load(p) for p in row["sources"]])
        if self.samples is not None:
            pad = self.samples - mixture.shape[-1]
            mixture, sources = (torch.nn.functional.pad(x, (0, max(pad, 0)))[..., :self.samples]
                                for x in (mixture, sources))
        return {"mixture": mixture, "sources": sources, "id": row["id"]}
