"""Segmentation of recordings of any length into a speech / music / noise / silence timeline.

A classifier labels a window of ``window`` seconds centred on every ``hop``-second frame; class probabilities are
median-filtered over ``smooth`` seconds; frames quieter than ``silence_db`` are silence; runs of equal labels
become segments (:mod:`sepaudio.timeline`). The file is read ``block_seconds`` at a time through
:class:`sepaudio.inference.ChunkReader`, so memory stays bounded whatever its length (per-frame results take a
few bytes per hop), and the frames do not depend on the block length.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from scipy.ndimage import median_filter
from tqdm import tqdm

from .classify import check_window, load_classifier
from .errors import ConfigError
from .features import window_features
from .fileio import check_out_dir, check_outputs, readable
from .inference import ChunkReader, resolve_device
from .models.classifier import AudioClassifier
from .plots import plot_timeline
from .timeline import FORMATS, SUFFIXES, Segment, frames_to_segments, write_timeline

__all__ = ["FrameResults", "frame_posteriors", "smooth_labels", "segment_file", "segment_files", "SILENCE"]

SILENCE = "silence"


@dataclass
class FrameResults:
    """Per-frame output of :func:`frame_posteriors` (one frame every ``hop`` seconds).

    Shape: probs ``(frames, classes)``; energy_db (RMS in dBFS) and peak (largest absolute sample) ``(frames,)``.
    """

    probs: np.ndarray
    energy_db: np.ndarray
    peak: np.ndarray
    hop: float
    duration: float  # of the file, in seconds


@torch.no_grad()
def frame_posteriors(model: AudioClassifier, path: str | os.PathLike, window: float = 1.0, hop: float = 0.1,
                     block_seconds: float = 60.0, batch_size: int = 64) -> FrameResults:
    """Class probabilities of a ``window``-second window centred on every ``hop``-second frame of a file.

    The file is read one block of ``block_seconds`` (plus a window of context) at a time; the result does not
    depend on the block length. The front-end runs once over each block (:func:`sepaudio.features.window_features`:
    the same features as framing every window alone), the backbone on every window.
    """
    rate, device = model.sample_rate, next(model.parameters()).device
    reader = ChunkReader(path, rate)
    hop_n, win_n = int(round(hop * rate)), int(round(window * rate))
    n_frames = max(1, math.ceil(reader.length / hop_n))
    per_block = max(1, int(block_seconds / hop))
    lead = win_n // 2 - hop_n // 2  # samples of context before a frame's start
    # The results are allocated once: small arrays kept from every block would pin the allocator's heap between
    # the blocks' large transient buffers, and memory would grow with the file's length.
    results = FrameResults(np.empty((n_frames, model.num_classes), np.float32), np.empty(n_frames, np.float32),
                           np.empty(n_frames, np.float32), hop, reader.length / rate)
    for f0 in range(0, n_frames, per_block):
        f1 = min(n_frames, f0 + per_block)
        span = reader.read(f0 * hop_n - lead, (f1 - 1) * hop_n - lead + win_n)
        features = window_features(model.frontend, span.to(device), win_n, hop_n)  # (f1 - f0, *feature_dims, frames)
        for b in range(0, f1 - f0, batch_size):
            e = min(b + batch_size, f1 - f0)
            results.probs[f0 + b:f0 + e] = torch.softmax(model.backbone(features[b:e]), -1).cpu()
        frames = span[lead:lead + (f1 - f0) * hop_n].reshape(f1 - f0, hop_n)
        results.energy_db[f0:f1] = 10 * torch.log10(frames.pow(2).mean(1) + 1e-12)
        results.peak[f0:f1] = frames.abs().amax(1)
    return results


def smooth_labels(results: FrameResults, labels: Sequence[str], smooth: float = 2.0,
                  silence_db: float | None = -55.0) -> list[str]:
    """Frame labels: the argmax of median-filtered class probabilities; smoothed low-energy frames are silence.

    Args:
        results: per-frame probabilities and energies.
        labels: class names of the probability columns.
        smooth: median filter length in seconds (the paper uses 200 frames of 10 ms = 2 s); 0 turns it off.
        silence_db: frames with RMS below this many dBFS are silence; ``None`` turns silence off.
    """
    size = max(1, int(round(smooth / results.hop)) | 1)
    probs = median_filter(results.probs, size=(size, 1), mode="nearest")
    names = np.asarray(labels, dtype=object)[probs.argmax(1)]
    if silence_db is not None:
        quiet = median_filter((results.energy_db < silence_db).astype(np.uint8), size=size, mode="nearest")
        names[quiet.astype(bool)] = SILENCE
    return names.tolist()


def segment_file(model: AudioClassifier, path: str | os.PathLike, window: float = 1.0, hop: float = 0.1,
                 smooth: float = 2.0, silence_db: float | None = -55.0, block_seconds: float = 60.0,
                 batch_size: int = 64) -> tuple[list[Segment], FrameResults]:
    """Timeline of a file (see the module docstring): its segments and the per-frame results they came from.

    Raises:
        ConfigError: ``hop`` not in ``(0, window]``, a window or block that is not positive and finite, a negative
            ``smooth``.
        AudioError: missing, unreadable or empty file.
    """
    if not 0 < hop <= window < math.inf:
        raise ConfigError(f"--hop {hop} / --window {window}: the hop must be positive and at most the window.")
    check_window(model, window)
    if not (0 < block_seconds < math.inf and 0 <= smooth < math.inf and int(round(hop * model.sample_rate)) > 0):
        raise ConfigError(f"--block {block_seconds} / --smooth {smooth} / --hop {hop}: give a positive block, a "
                          f"smoothing length of 0 or more, and a hop of at least one sample.")
    results = frame_posteriors(model, path, window, hop, block_seconds, batch_size)
    names = smooth_labels(results, model.labels, smooth, silence_db)
    return frames_to_segments(names, hop, results.duration), results


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
