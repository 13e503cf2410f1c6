"""Target speaker extraction data: (mixture, target, enrollment) triples.

- :class:`ExtractionList` reads WSJ0-2mix-extr style lists: one ``mixture target enrollment [speaker]`` line per
  item (paths relative to ``root``);
- :class:`LibriMixExtraction` makes every source of a LibriMix metadata CSV a target, with an enrollment drawn from
  another utterance of the same speaker;
- :class:`WithIVectors` adds the i-vector of each item's enrollment (``ivector``), for TseNet.

Items: ``mixture`` (T,), ``target`` (T,), ``enrollment`` (Te,), ``speaker`` () long when speakers are known
(index into ``dataset.speaker_names``), ``id`` (str). With ``segment`` set, mixture and target are cut at the same
random offset (or zero-padded) and the enrollment to ``enrollment_seconds``, so the default collate stacks items.
With ``speed_factors`` every item is played at one of them (drawn per item) - mixture, target and enrollment alike,
so the target is the pseudo-speaker ``speaker@spF`` (see :mod:`sepaudio.data.speakers`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import audio
from ..errors import DatasetError
from ..fileio import read_list, write_text
from ..speaker import load_ivector_extractor
from .librimix import read_librimix_csv
from .augment import speed_perturb
from .registry import create_dataset, register_dataset
from .seeding import item_seed
from .speakers import check_speed_factors, pseudo_speaker


def fix_length(wav: torch.Tensor, samples: int, rng: np.random.Generator) -> torch.Tensor:
    """Cut a random window of ``samples`` from the last axis, or zero-pad at a random offset.

    Shape: ``(..., time)`` -> ``(..., samples)`` (every row cut at the same place).
    """
    length = wav.shape[-1]
    if length >= samples:
        start = int(rng.integers(length - samples + 1))
        return wav[..., start:start + samples]
    start = int(rng.integers(samples - length + 1))
    return torch.nn.functional.pad(wav, (start, samples - length - start))


class _Triples(Dataset):
    """Loading, cropping and speaker indexing shared by the extraction datasets.

    Subclasses fill ``self.items`` with dicts ``{"id", "mixture", "target", "enrollment", "speaker"}`` (paths and
    a speaker name or ``None``) and may override :meth:`enrollment_path`.
    """

    def __init__(self, items: list[dict], sample_rate: int, segment: float | None, enrollment_seconds: float | None,
                 seed: int | None, speed_factors: tuple[float, ...], where: str):
        self.items = items
        self.speed_factors = check_speed_factors(speed_factors, where)
        self.sample_rate, self.seed = sample_rate, seed
        self.samples = int(segment * sample_rate) if segment else None
        enroll = enrollment_seconds or segment
        self.enroll_samples = int(enroll * sample_rate) if enroll else None
        names = {item["speaker"] for item in items}
        self.speaker_names = ([pseudo_speaker(n, f) for n in sorted(names) for f in self.speed_factors]
                              if None not in names else [])

    def __len__(self) -> int:
        return len(self.items)

    def enrollment_path(self, index: int, rng: np.random.Generator) -> Path:
        return self.items[index]["enrollment"]

    def _load(self, path: Path) -> torch.Tensor:
        return audio.load(path, sample_rate=self.sample_rate, mono=True)[0][0]

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        rng = np.random.default_rng(item_seed(self.seed, index))
        mixture, target = self._load(item["mixture"]), self._load(item["target"])
        length = min(mixture.shape[-1], target.shape[-1])
        pair = torch.stack([mixture[:length], target[:length]])
        enrollment = self._load(self.enrollment_path(index, rng))
        factor = self.speed_factors[int(rng.integers(len(self.speed_factors)))] if len(self.speed_factors) > 1 else 1.0
        pair, enrollment = speed_perturb(pair, factor), speed_perturb(enrollment, factor)
        if self.samples is not None:
            pair = fix_length(pair, self.samples, rng)
        if self.enroll_samples is not None:
            enrollment = fix_length(enrollment, self.enroll_samples, rng)
        out = {"mixture": pair[0], "target": pair[1], "enrollment": enrollment, "id": item["id"]}
        if self.speaker_names:
            out["speaker"] = torch.tensor(self.speaker_names.index(pseudo_speaker(item["speaker"], factor)))
        return out


def read_extraction_list(list_path: str | os.PathLike, root: str | os.PathLike | None = None) -> list[dict]:
    """Read a WSJ0-2mix-extr style list: ``mixture target enrollment [speaker]`` per line, ``#`` comments.

    Args:
        list_path: the list file.
        root: folder the relative paths start from; default the list's folder.

    Returns:
        One dict per line: ``id`` (mixture file stem), ``mixture``, ``target``, ``enrollment`` (Paths), ``speaker``
        (str or ``None``).

    Raises:
        DatasetError: missing list, a malformed line, or a listed file that does not exist (naming the line).
    """
    rows = read_list(list_path, 3, 1, root, "mixture target enrollment [speaker]")
    return [{"id": paths[0].stem, "mixture": paths[0], "target": paths[1], "enrollment": paths[2],
             "speaker": extra[0] if extra else None} for _, paths, extra in rows]


def write_extraction_list(path: str | os.PathLike, items: list[dict], root: str | os.PathLike | None = None) -> Path:
    """Write items (``mixture``, ``target``, ``enrollment`` paths, optional ``speaker``) as a list that
    :func:`read_extraction_list` reads; paths below ``root`` are written relative to it.
    """
    def show(p: Path) -> str:
        return str(Path(p).relative_to(root)) if root is not None and Path(p).is_relative_to(root) else str(p)

    lines = [" ".join([show(i["mixture"]), show(i["target"]), show(i["enrollment"])]
                      + ([str(i["speaker"])] if i.get("speaker") is not None else [])) for i in items]
    return write_text(path, "\n".join(lines) + "\n")


@register_dataset("extraction_list")
class ExtractionList(_Triples):
    """Extraction triples from a WSJ0-2mix-extr style list (see :func:`read_extraction_list`).

    Args:
        list_path: see :func:`read_extraction_list`.
        root: see :func:`read_extraction_list`.
        sample_rate: files of other rates are resampled.
        segment: seconds of mixture / target per item (random crop, ``seed`` fixes it); ``None`` = whole files.
        enrollment_seconds: enrollment length; default ``segment`` (``None``: whole enrollment).
        seed: fixed crops when set (validation); random otherwise, per rank, worker and epoch.
        speed_factors: speeds an item is played at, one drawn per item (pseudo-speakers); default ``(1.0,)``.
    """

    def __init__(self, list_path: str | os.PathLike, root: str | os.PathLike | None = None, sample_rate: int = 8000,
                 segment: float | None = None, enrollment_seconds: float | None = None, seed: int | None = None,
                 speed_factors: tuple[float, ...] = (1.0,)):
        super().__init__(read_extraction_list(list_path, root), sample_rate, segment, enrollment_seconds, seed,
                         speed_factors, str(list_path))


def librispeech_utterance(mixture_id: str, source: int) -> tuple[str, str]:
    """The LibriSpeech utterance of source ``source`` (0-based) of a LibriMix mixture, and its speaker.

    ``"1272-128104-0000_2035-147961-0014"``, 1 -> ``("2035-147961-0014", "2035")``.
    """
    utterance = mixture_id.split("_")[source]
    return utterance, utterance.split("-")[0]


@register_dataset("librimix_extraction")
class LibriMixExtraction(_Triples):
    """Every source of a LibriMix metadata CSV as a target, enrolled by another utterance of its speaker.

    The enrollment is the source file of another mixture in the same CSV that holds a *different* LibriSpeech
    utterance of the target speaker (never the target utterance itself). With ``seed`` the choice is fixed per
    item; without, it is drawn anew every time. Targets whose speaker has no other utterance in the CSV are left out.

    Args:
        csv_path: see :func:`~sepaudio.data.librimix.read_librimix_csv`.
        root: see :func:`~sepaudio.data.librimix.read_librimix_csv`.
        sample_rate: see :class:`ExtractionList`.
        segment: see :class:`ExtractionList`.
        enrollment_seconds: see :class:`ExtractionList`.
        seed: see :class:`ExtractionList`.
        speed_factors: see :class:`ExtractionList`.
    """

    def __init__(self, csv_path: str | os.PathLike, root: str | os.PathLike | None = None, sample_rate: int = 8000,
                 segment: float | None = None, enrollment_seconds: float | None = None, seed: int | None = None,
                 speed_factors: tuple[float, ...] = (1.0,)):
        rows = read_librimix_csv(csv_path, root)
        by_speaker: dict[str, dict[str, Path]] = {}  # speaker -> utterance -> one file holding it
        for row in rows:
            for k, path in enumerate(row["sources"]):
                utterance, speaker = librispeech_utterance(row["id"], k)
                by_speaker.setdefault(speaker, {}).setdefault(utterance, path)
        items = []
        for row in rows:
            for k, path in enumerate(row["sources"]):
                utterance, speaker = librispeech_utterance(row["id"], k)
                others = sorted(p for u, p in by_speaker[speaker].items() if u != utterance)
                if others:
                    items.append({"id": f"{row['id']}_s{k + 1}", "mixture": row["mixture"], "target": path,
                                  "enrollment": others, "speaker": speaker})
        if not items:
            raise DatasetError(f"{csv_path}: no target speaker has a second utterance to enroll with.")
        super().__init__(items, sample_rate, segment, enrollment_seconds, seed, speed_factors, str(csv_path))

    def enrollment_path(self, index: int, rng: np.random.Generator) -> Path:
        others = self.items[index]["enrollment"]
        return others[int(rng.integers(len(others)))]

    def fixed_items(self, seed: int) -> list[dict]:
        """The items with the enrollment each gets under ``seed``: a fixed test set for
        :func:`write_extraction_list`."""
        return [{**item, "enrollment": self.enrollment_path(i, np.random.default_rng([seed, i]))}
                for i, item in enumerate(self.items)]


@register_dataset("with_ivectors")
class WithIVectors(Dataset):
    """Wrap an extraction dataset and add ``ivector``: the i-vector of each item's enrollment.

    The i-vector is computed from the enrollment waveform of the item (on the CPU, a few milliseconds), so it works
    for fixed lists and on-the-fly mixtures alike and always matches the enrollment the item holds.

    Args:
        extractor: i-vector extractor file (``sepaudio ivector train``).
        dataset: name of the registered dataset to wrap; ``**kwargs`` are its arguments.

    Items: those of the wrapped dataset plus ``ivector`` (D,).
    """

    def __init__(self, extractor: str | os.PathLike, dataset: str, **kwargs):
        self.extractor = load_ivector_extractor(extractor)
        self.dataset = create_dataset(dataset, **kwargs)
        rate = getattr(self.dataset, "sample_rate", self.extractor.sample_rate)
        if rate != self.extractor.sample_rate:
            raise DatasetError(f"{extractor}: the i-vector extractor takes {self.extractor.sample_rate} Hz audio but "
                               f"the dataset gives {rate} Hz; train the extractor at the dataset's rate.")

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str):
        # speaker_names, sample_rate, ... of the wrapped dataset
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        item["ivector"] = self.extractor.extract([item["enrollment"]])[0]
        return item

