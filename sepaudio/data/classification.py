"""Classification datasets: folder-per-class corpora, manifests of labelled regions, clips cut with overlap.

A manifest is a CSV with columns ``path,label[,start,stop]`` (seconds; an empty stop means the end of the file).
:class:`ClipDataset` cuts every region into clips of ``clip_seconds`` with the given overlap (a region shorter
than a clip gives one zero-padded clip) and returns items ``{"audio": (time,), "label": (), "id": str}`` of fixed
length.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, WeightedRandomSampler

from .. import audio
from ..config import BALANCE
from ..errors import DatasetError
from ..fileio import atomic_path
from .augment import mixup, random_gain
from .registry import register_dataset
from .seeding import item_seed
from .speakers import list_audio

@dataclass(frozen=True)
class Region:
    """A labelled stretch of one file; ``stop=None`` means to the end."""

    path: str
    label: str
    start: float = 0.0
    stop: float | None = None


def scan_class_folders(root: str | os.PathLike) -> list[Region]:
    """``root/<class>/**/*.wav|flac|ogg`` -> one whole-file region per file, labelled by its top folder.

    Raises:
        DatasetError: ``root`` is missing or holds no class folder with audio.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder; give a folder with one sub-folder of audio files per class.")
    regions = [Region(str(path), folder.name)
               for folder in sorted(p for p in root.iterdir() if p.is_dir()) for path in list_audio(folder)]
    if not regions:
        raise DatasetError(f"{root}: found no audio (.wav/.flac/.ogg) in class sub-folders <root>/<class>/.")
    return regions


def write_manifest(path: str | os.PathLike, regions: Iterable[Region]) -> Path:
    """Write regions as a CSV manifest (atomically)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "start", "stop"])
        for r in regions:
            writer.writerow([r.path, r.label, f"{r.start:.3f}", "" if r.stop is None else f"{r.stop:.3f}"])
    return Path(path)


def read_manifest(path: str | os.PathLike) -> list[Region]:
    """Read a CSV manifest written by :func:`write_manifest`; relative paths are taken from its folder.

    Raises:
        DatasetError: missing file or missing ``path`` / ``label`` columns.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such manifest; run the recipe's preparation stage first.")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"path", "label"} <= set(rows[0]):
        raise DatasetError(f"{path}: a manifest needs the columns path,label[,start,stop]; found {list(rows[0])}.")
    return [Region(str(path.parent / r["path"]), r["label"], float(r.get("start") or 0.0),
                   float(r["stop"]) if r.get("stop") else None) for r in rows]


def metadata_regions(csv_path: str | os.PathLike, path_of, label_of, fold_of, folds: Sequence[int] | None
                     ) -> list[Region]:
    """Regions of the rows of a corpus's metadata CSV whose fold is in ``folds`` (``None``: all).

    Args:
        csv_path: the metadata file.
        path_of, label_of, fold_of: row (a dict) -> audio path, label name, fold number.
        folds: folds to keep.

    Raises:
        DatasetError: missing metadata, a missing column, or an audio file the metadata names but is not there.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: no such metadata file; point root at the unpacked corpus.")
    regions = []
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                fold, path, label = int(fold_of(row)), Path(path_of(row)), str(label_of(row))
            except KeyError as err:
                raise DatasetError(f"{csv_path}: missing column {err}; is this the corpus's original metadata?")
            if folds is not None and fold not in folds:
                continue
            if not path.is_file():
                raise DatasetError(f"{path}: listed in {csv_path} but missing; re-download or re-unpack the corpus.")
            regions.append(Region(str(path), label))
    if not regions:
        raise DatasetError(f"{csv_path}: no rows in folds {folds}.")
    return regions


def clip_starts(length: int, clip: int, overlap: float) -> list[int]:
    """Start samples of clips of ``clip`` samples over ``length`` samples, consecutive clips overlapping by the
    fraction ``overlap``; a remainder longer than half a hop gets one more clip ending at the end."""
    if length <= clip:
        return [0]
    hop = max(1, int(round(clip * (1 - overlap))))
    starts = list(range(0, length - clip + 1, hop))
    if length - (starts[-1] + clip) > hop // 2:
        starts.append(length - clip)
    return starts


def keep_share(clips: list[tuple], shares: dict, labels: Sequence[str]) -> list[tuple]:
    """``clips`` (label index last) with those of each class ``c`` of ``shares`` cut down to about ``shares[c]`` of
    the clips kept (at least one), chosen evenly spaced over the class's clips.

    Raises:
        ValueError: a class that is not in ``labels`` or a share outside (0, 1); the message names it.
    """
    for c, share in shares.items():
        if not isinstance(c, int):
            raise ValueError(f"class_share: no class {c!r} (classes: {', '.join(labels)})")
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share < 1:
            raise ValueError(f"class_share.{labels[c]}={share!r}: give a fraction between 0 and 1 (e.g. 0.02)")
    rest = 1 - sum(shares.values())
    if rest <= 0:
        raise ValueError(f"class_share: the shares add up to {1 - rest:g}; leave room for the other classes")
    classes = np.array([clip[-1] for clip in clips])
    keep = ~np.isin(classes, list(shares))
    others = int(keep.sum())
    for c, share in shares.items():
        mine = np.flatnonzero(classes == c)
        if mine.size:
            n = min(mine.size, max(1, round(share * others / rest)))
            keep[mine[np.linspace(0, mine.size - 1, n).round().astype(int)]] = True
    return [clip for clip, kept in zip(clips, keep) if kept]


class ClipDataset(Dataset):
    """Fixed-length labelled clips cut from regions, with optional gain and mixup augmentation.

    Args:
        regions: labelled regions (see :func:`scan_class_folders`, :func:`read_manifest`).
        labels: class names in index order; ``None`` takes the sorted names found in ``regions``.
        sample_rate: rate of the returned audio (files are resampled clip by clip).
        clip_seconds: clip length; ``None`` takes each region whole, padded to the longest (for fixed-length
            corpora such as ESC-50).
        overlap: fraction of a clip shared by consecutive clips (0 <= overlap < 1).
        gain_db: random gain in ``[-gain_db, +gain_db]`` dB per item (0: off).
        mixup_alpha: mix each item with a random other one, weight ~ Beta(alpha, alpha) (0: off; labels become
            soft vectors).
        rms_db: scale every clip to this RMS level in dBFS before augmentation (loudness equalisation); ``None``
            keeps the recorded level.
        seed: fixed augmentation of every clip when set; random otherwise, drawn anew for every rank, worker and
            epoch (see :func:`~sepaudio.data.seeding.item_seed`).
        class_share: an imbalanced dataset from a balanced corpus: class -> the share of all clips its clips are
            cut down to (at least one), e.g. ``{noise: 0.02}``; the clips kept are spread evenly over the class's
            clips, so over its files (see :func:`keep_share`).
        balance: one of :data:`BALANCE`: ``sampler`` makes ``sepaudio train`` draw the training clips with
            :meth:`balanced_sampler`; ``weights`` adds ``"weight": ()`` to every item (its class's weight from
            :meth:`class_weights`; mixed in proportion under mixup) for a class-weighted cross-entropy.

    Raises:
        DatasetError: a label outside ``labels``, or an unreadable file.
        ValueError: ``overlap`` outside [0, 1), a ``class_share`` that is not a fraction of a class, or ``balance``
            not one of :data:`~sepaudio.config.BALANCE`.

    Shape:
        item ``{"audio": (clip_samples,), "label": (), "id": "<path>@<start sample>"}`` (label ``(num_classes,)``
        float with mixup; and ``"weight": ()`` with ``balance="weights"``).
    """

    def __init__(self, regions: Sequence[Region], labels: Sequence[str] | None = None, sample_rate: int = 16000,
                 clip_seconds: float | None = 1.0, overlap: float = 0.5, gain_db: float = 0.0,
                 mixup_alpha: float = 0.0, rms_db: float | None = None, seed: int | None = None,
                 class_share: dict[str, float] | None = None, balance: Literal["none", "sampler", "weights"] = "none"):
        if not 0 <= overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        if balance not in BALANCE:
            raise ValueError(f"balance={balance!r} is not one of {', '.join(BALANCE)}")
        self.balance = balance
        self.labels = list(labels) if labels is not None else sorted({r.label for r in regions})
        index = {name: i for i, name in enumerate(self.labels)}
        unknown = sorted({r.label for r in regions} - set(index))
        if unknown:
            raise DatasetError(f"labels {unknown} are not among the classes {self.labels}; fix the manifest or "
                               f"the labels list.")
        self.sample_rate = sample_rate
        self.gain_db, self.mixup_alpha, self.rms_db, self.seed = gain_db, mixup_alpha, rms_db, seed
        # clips: (path, file rate, start sample, frames in the file's rate, label index)
        self.clips: list[tuple[str, int, int, int, int]] = []
        spans = []
        for r in regions:
            header = audio.info(r.path)
            rate = header.samplerate
            start = int(round(r.start * rate))
            stop = header.frames if r.stop is None else min(header.frames, int(round(r.stop * rate)))
            spans.append((r, rate, start, max(stop - start, 1)))
        longest = max((n * sample_rate // rate for _, rate, _, n in spans), default=0)
        self.clip_samples = int(round(clip_seconds * sample_rate)) if clip_seconds is not None else longest
        for r, rate, start, frames in spans:
            clip = int(round(self.clip_samples * rate / sample_rate))
            for offset in clip_starts(frames, clip, overlap) if clip_seconds is not None else [0]:
                self.clips.append((r.path, rate, start + offset, min(clip, frames - offset), index[r.label]))
        if class_share:
            self.clips = keep_share(self.clips, {index.get(k, k): v for k, v in class_share.items()}, self.labels)

    def __len__(self) -> int:
        return len(self.clips)

    def load_clip(self, i: int) -> dict:
        """Item ``i`` without augmentation."""
        path, _, start, frames, label = self.clips[i]
        wav, _ = audio.load(path, sample_rate=self.sample_rate, mono=True, start=start, frames=frames)
        wav = wav[0, : self.clip_samples]
        if wav.shape[0] < self.clip_samples:
            wav = torch.nn.functional.pad(wav, (0, self.clip_samples - wav.shape[0]))
        if self.rms_db is not None:
            wav = wav * (10 ** (self.rms_db / 20) / wav.pow(2).mean().sqrt().clamp_min(1e-5))
        return {"audio": wav, "label": torch.tensor(label)}

    def __getitem__(self, i: int) -> dict:
        item = self.load_clip(i)
        if self.mixup_alpha > 0 or self.gain_db > 0:
            rng = np.random.default_rng(item_seed(self.seed, i))
            if self.mixup_alpha > 0:
                other = self.load_clip(int(rng.integers(len(self))))
                item = mixup(item, other, float(rng.beta(self.mixup_alpha, self.mixup_alpha)), len(self.labels))
            if self.gain_db > 0:
                item["audio"] = random_gain(item["audio"], self.gain_db, rng)
        if self.balance == "weights":
            weights = self.class_weights()
            label = item["label"]
            item["weight"] = weights[label] if label.dim() == 0 else (weights * label).sum()
        path, _, start, _, _ = self.clips[i]
        return {**item, "id": f"{path}@{start}"}

    def class_counts(self) -> dict[str, int]:
        """Clips per class."""
        counts = np.bincount([c[-1] for c in self.clips], minlength=len(self.labels))
        return dict(zip(self.labels, counts.tolist()))

    def class_weights(self) -> torch.Tensor:
        """Inverse class frequency, ``clips / (classes * clips of the class)`` (1 for every class when they are
        equal; 0 for a class without clips), as torch's ``CrossEntropyLoss(weight=...)`` takes it.

        Shape: ``(num_classes,)``.
        """
        if not hasattr(self, "_class_weights"):
            counts = torch.tensor(list(self.class_counts().values()), dtype=torch.float32)
            present = counts > 0
            weights = torch.zeros_like(counts)
            weights[present] = counts.sum() / (present.sum() * counts[present])
            self._class_weights = weights
        return self._class_weights

    def balanced_sampler(self, generator: torch.Generator | None = None) -> WeightedRandomSampler:
        """A sampler of ``len(self)`` clips per epoch, drawn with replacement with probability inversely
        proportional to the size of their class: every class comes up equally often.

        Lightning wraps it for multi-process training (each process draws its own share); without a
        ``generator`` it draws from torch's, whose state a training checkpoint holds (exact resume).
        """
        per_clip = self.class_weights()[torch.tensor([c[-1] for c in self.clips])]
        return WeightedRandomSampler(per_clip.double(), len(self), replacement=True, generator=generator)


@register_dataset("audio_folder")
def audio_folder(root: str, labels: Sequence[str] | None = None, **kwargs) -> ClipDataset:
    """Clips from a folder-per-class corpus ``root/<class>/*.wav`` (keyword arguments: :class:`ClipDataset`)."""
    return ClipDataset(scan_class_folders(root), labels, **kwargs)


@register_dataset("manifest")
def manifest(path: str, labels: Sequence[str] | None = None, **kwargs) -> ClipDataset:
    """Clips from a CSV manifest ``path,label[,start,stop]`` (keyword arguments: :class:`ClipDataset`)."""
    return ClipDataset(read_manifest(path), labels, **kwargs)
