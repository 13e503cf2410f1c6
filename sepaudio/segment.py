"""Segmentation of recordings of any length into a speech / music / noise / silence timeline.

A classifier labels a window of ``window`` seconds centred on every ``hop``-second frame; class probabilities are
median-filtered over ``smooth`` seconds; frames quieter than ``silence_db`` are silence; runs of equal labels
become segments (:mod:`sepaudio.timeline`). The file is read ``block_seconds`` at a time through
:class:`sepaudio.inference.ChunkReader`, so memory stays bounded whatever its length (per-frame results take a
few bytes per hop), and the frames do not depend on the block length.

:func:`score_timeline` scores a timeline as the field does (``sepaudio evaluate TIMELINE --reference REFERENCE
[--collar SECONDS]``): both read from CSV (``label,start,stop``), NIST RTTM (``SPEAKER`` lines, the label as speaker
name) or Audacity labels (``start<TAB>stop<TAB>label``), by suffix (``.csv``, ``.rttm``, other: Audacity). The
reference's span is cut into frames of ``step`` seconds; a frame no segment covers is silence; with a collar, frames
within ``collar`` seconds of a reference boundary are not scored (the forgiveness collar of NIST's and pyannote's
segmentation scores). The scores: frame accuracy, per-class precision / recall / F1 and their macro mean.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from .classify import load_classifier
from .errors import ConfigError
from .fileio import check_out_dir, check_outputs, readable
from .inference import ChunkReader, resolve_device
from .metrics import classification_scores, confusion_matrix
from .models.classifier import SILENCE, AudioClassifier, FrameResults, check_timeline_options, smooth_labels  # noqa
from .models.classifier import frame_posteriors as posteriors, timeline
from .plots import plot_timeline
from .timeline import FORMATS, SUFFIXES, Segment, read_timeline, write_timeline

__all__ = ["FrameResults", "frame_posteriors", "smooth_labels", "segment_file", "segment_files", "SILENCE",
           "read_any_timeline", "score_timeline", "format_timeline_scores"]


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


def read_any_timeline(path: str | os.PathLike) -> list[Segment]:
    """Segments of a CSV, RTTM or Audacity-label timeline file, sorted by start.

    Raises:
        ConfigError: a missing file, or a line that is not a segment of its format (naming the line).
    """
    path = Path(path)
    if path.suffix.lower() == ".csv" or not path.is_file():
        return sorted(read_timeline(path), key=lambda s: s.start)
    segments = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields or line.startswith((";", "#")):
            continue
        try:
            if path.suffix.lower() == ".rttm":
                if fields[0] != "SPEAKER":
                    continue
                start, length, label = float(fields[3]), float(fields[4]), fields[7]
                segments.append(Segment(label, start, start + length))
            else:
                start, stop, label = float(fields[0]), float(fields[1]), " ".join(line.split("\t")[2:]).strip()
                segments.append(Segment(label or fields[2], start, stop))
        except (IndexError, ValueError):
            raise ConfigError(f"{path}, line {number}: not a timeline segment ({line[:80]!r}); give CSV "
                              f"(label,start,stop), RTTM or Audacity labels (start, stop, label).") from None
    return sorted(segments, key=lambda s: s.start)


def _labels_at(segments: Sequence[Segment], times: np.ndarray) -> np.ndarray:
    labels = np.full(times.shape, SILENCE, dtype=object)
    for s in segments:  # later segments win where two overlap
        labels[(times >= s.start) & (times < s.stop)] = s.label
    return labels


def score_timeline(reference: Sequence[Segment], hypothesis: Sequence[Segment], step: float = 0.01,
                   collar: float = 0.0) -> dict:
    """Frame-level scores of ``hypothesis`` against ``reference`` over the reference's span.

    Args:
        reference, hypothesis: segments (label, start, stop) in seconds.
        step: frame length in seconds.
        collar: seconds on each side of every reference boundary left unscored (0: all frames).

    Returns:
        ``{"task": "timeline", "accuracy", "macro_f1", "per_class", "labels", "confusion", "n" (frames scored),
        "step", "collar", "seconds" (scored)}``.

    Raises:
        ConfigError: an empty reference, a step that is not positive or a negative collar.
    """
    if not reference:
        raise ConfigError("the reference timeline has no segments.")
    if not (0 < step < math.inf and 0 <= collar < math.inf):
        raise ConfigError(f"step {step} / --collar {collar}: give a positive step and a collar of 0 or more.")
    times = np.arange(0, max(s.stop for s in reference), step) + step / 2
    if collar > 0:
        edges = np.unique([t for s in reference for t in (s.start, s.stop)])
        after = np.clip(np.searchsorted(edges, times), 1, edges.size - 1)  # nearest edge: before or after
        nearest = np.minimum(np.abs(times - edges[after - 1]), np.abs(edges[after] - times)) if edges.size > 1 \
            else np.abs(times - edges[0])
        times = times[nearest >= collar]
    ref, hyp = _labels_at(reference, times), _labels_at(hypothesis, times)
    labels = sorted(set(ref) | set(hyp))
    index = {label: i for i, label in enumerate(labels)}
    confusion = confusion_matrix(np.array([index[x] for x in ref], dtype=int),
                                 np.array([index[x] for x in hyp], dtype=int), len(labels))
    return {"task": "timeline", **classification_scores(confusion, labels), "step": step, "collar": collar,
            "seconds": float(len(times) * step)}


def format_timeline_scores(scores: dict) -> str:
    """A two-column text table of :func:`score_timeline`'s scores."""
    lines = [f"{'frames':<14} {scores['n']} of {scores['step']} s ({scores['seconds']:.1f} s scored, collar "
             f"{scores['collar']} s)", f"{'accuracy':<14} {100 * scores['accuracy']:.2f} %",
             f"{'macro F1':<14} {scores['macro_f1']:.4f}"]
    lines += [f"{'F1 ' + c:<14} {s['f1']:.4f}  (precision {s['precision']:.3f}, recall {s['recall']:.3f})"
              for c, s in scores["per_class"].items()]
    return "\n".join(lines)
