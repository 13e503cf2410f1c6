"""Segmentation of recordings of any length into a speech / music / noise / silence timeline.

A classifier labels a window of ``window`` seconds centred on every ``hop``-second frame; class probabilities are
median-filtered over ``smooth`` seconds; frames quieter than ``silence_db`` are silence; runs of equal labels
become segments (:mod:`sepaudio.timeline`). The file is read ``block_seconds`` at a time through
:class:`sepaudio.inference.ChunkReader`, so memory stays bounded whatever its length (per-frame results take a
few bytes per hop), and the frames do not depend on the block length.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
from tqdm import tqdm

from .classify import load_classifier
from .errors import ConfigError
from .fileio import check_out_dir, check_outputs, readable
from .inference import ChunkReader, resolve_device
from .models.classifier import SILENCE, AudioClassifier, FrameResults, check_timeline_options, smooth_labels  # noqa
from .models.classifier import frame_posteriors as posteriors, timeline
from .plots import plot_timeline
from .timeline import FORMATS, SUFFIXES, Segment, write_timeline

__all__ = ["FrameResults", "frame_posteriors", "smooth_labels", "segment_file", "segment_files", "SILENCE"]


def frame_posteriors(model: AudioClassifier, path: str | os.PathLike, window: float = 1.0, hop: float = 0.1,
                     block_seconds: float = 60.0, batch_size: int = 64) -> FrameResults:
    """Class probabilities of a ``window``-second window centred on every ``hop``-second frame of a file, read one
    block of ``block_seconds`` at a time (:func:`sepaudio.models.classifier.frame_posteriors`)."""
    with torch.no_grad():
        return posteriors(model, ChunkReader(path, model.sample_rate), window, hop, block_seconds, batch_size)


def segment_file(model: AudioClassifier, path: str | os.PathLike, window: float = 1.0, hop: float = 0.1,
                 smooth: float = 2.0, silence_db: float | None = -55.0, block_seconds: float = 60.0,
                 batch_size: int = 64) -> tuple[list[Segment], FrameResults]:
    """Timeline of a file (:func:`sepaudio.models.classifier.timeline`, which ``AudioClassifier.segment`` runs on
    arrays): its segments and the per-frame results they came from.

    Raises:
        ConfigError: ``hop`` not in ``(0, window]``, a window or block that is not positive and finite, a negative
            ``smooth``.
        AudioError: missing, unreadable or empty file.
    """
    check_timeline_options(model, window, hop, smooth, block_seconds)
    with torch.no_grad():
        return timeline(model, ChunkReader(path, model.sample_rate), window, hop, smooth, silence_db, block_seconds,
                        batch_size)


def segment_files(model_path: str | os.PathLike, files: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                  fmt: str = "csv", plot: bool = False, device: str = "cpu", **options) -> list[Path]:
    """Segment every file and write ``out_dir/<file stem>.<csv|rttm|txt>`` (and ``.png`` with ``plot``).

    Args:
        model_path: a saved audio classifier.
        files: audio files of any length.
        out_dir: output folder.
        fmt: ``csv`` | ``rttm`` | ``audacity`` (:mod:`sepaudio.timeline`).
        plot: also draw each timeline over the waveform.
        device: where the model runs: ``cpu``, ``cuda`` or ``cuda:N``.
        options: :func:`segment_file` keyword arguments (window, hop, smooth, silence_db, block_seconds, ...).

    Returns:
        The timeline files written.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown timeline format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    out_dir = check_out_dir(out_dir)
    outputs = {path: out_dir / f"{Path(path).stem}{SUFFIXES[fmt]}" for path in files}
    check_outputs([*outputs.values(), *([out.with_suffix(".png") for out in outputs.values()] if plot else [])],
                  files, out_dir)
    model = load_classifier(model_path).to(resolve_device(device))
    written = []
    for path in tqdm(files, desc="segment", unit="file"):
        segments, results = segment_file(model, path, **options)
        written.append(write_timeline(outputs[path], segments, fmt, Path(path).stem))
        if plot:
            plot_timeline(outputs[path].with_suffix(".png"), segments, results.peak, results.hop, title=readable(path))
    return written
