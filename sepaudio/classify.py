"""Clip classification, streaming segmentation into a labelled timeline, timeline writers, evaluation and plots.

- :func:`classify_file`: class probabilities of a whole file, read block by block (top-k for the CLI).
- :func:`segment_file`: a speech / music / noise / silence timeline. Windows of ``window`` seconds, one every
  ``hop`` seconds, are classified; frames quieter than ``silence_db`` are silence; class probabilities are
  median-filtered over ``smooth`` seconds. The file is read ``block_seconds`` at a time, so memory stays bounded
  whatever its length (per-frame results take a few bytes per hop).
- Writers: CSV (``label,start,stop``), RTTM, Audacity labels; :func:`plot_timeline` draws the timeline over the
  waveform envelope.
- :func:`evaluate`: accuracy, per-class precision / recall / F1 and the confusion matrix of a labelled dataset;
  :func:`frame_accuracy` scores a timeline against a reference.

``python -m sepaudio.classify {prepare,evaluate,frame-accuracy,cv-summary}`` are the recipes' entry points
(``--help``).
"""
from __future__ import annotations

import argparse
import csv
import ctypes
import itertools
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from scipy.ndimage import median_filter
from tqdm import tqdm

from . import audio
from .errors import AudioError, ConfigError, SepaudioError
from .fileio import atomic_path, write_text
from .models import load_model
from .models.classifier import AudioClassifier

SILENCE = "silence"
FORMATS = ("csv", "rttm", "audacity")
SUFFIXES = {"csv": ".csv", "rttm": ".rttm", "audacity": ".txt"}


@dataclass
class Segment:
    """One labelled stretch of a timeline, in seconds."""

    label: str
    start: float
    stop: float


def load_classifier(path: str | os.PathLike) -> AudioClassifier:
    """A saved audio classifier (``sepaudio train`` output); another kind of model raises ``ModelFileError``."""
    return load_model(path, expected=AudioClassifier)


def read_span(path: str | os.PathLike, start: int, stop: int, rate: int) -> torch.Tensor:
    """Samples ``[start, stop)`` of a file, counted at ``rate`` (resampled, mono), zeros outside the file.

    Only the needed part of the file is read.

    Shape: ``(stop - start,)``.
    """
    header = audio.info(path)
    out = torch.zeros(stop - start)
    first = max(0, math.floor(start * header.samplerate / rate))
    last = min(header.frames, math.ceil(stop * header.samplerate / rate))
    if last <= first:
        return out
    wav = audio.load(path, sample_rate=rate, mono=True, start=first, frames=last - first)[0][0]
    offset = round(first * rate / header.samplerate) - start
    lo = max(0, offset)
    n = min(out.shape[0] - lo, wav.shape[0] - (lo - offset))
    if n > 0:
        out[lo:lo + n] = wav[lo - offset:lo - offset + n]
    return out


def duration_samples(path: str | os.PathLike, rate: int) -> int:
    """Length of a file counted at ``rate``.

    Raises:
        AudioError: missing, unreadable or empty file.
    """
    header = audio.info(path)
    if header.frames == 0:
        raise AudioError(f"{path}: has zero samples; give a recording with audio in it.")
    return int(round(header.frames * rate / header.samplerate))


@torch.no_grad()
def classify_file(model: AudioClassifier, path: str | os.PathLike, window: float = 10.0) -> torch.Tensor:
    """Class probabilities of a whole file: the mean of the softmax over consecutive ``window``-second blocks,
    weighted by block length (a file shorter than a window is one block).

    Shape: returns ``(num_classes,)``.
    """
    rate = model.sample_rate
    total, step = duration_samples(path, rate), int(round(window * rate))
    probs, weights = [], []
    for start in range(0, total, step):
        stop = min(start + step, total)
        probs.append(torch.softmax(model(read_span(path, start, stop, rate).unsqueeze(0)), -1)[0])
        weights.append(stop - start)
    w = torch.tensor(weights, dtype=torch.float32)
    return (torch.stack(probs) * (w / w.sum()).unsqueeze(1)).sum(0)


def top_k(probs: torch.Tensor, labels: Sequence[str], k: int) -> list[tuple[str, float]]:
    """The ``k`` most probable ``(label, probability)`` pairs, best first."""
    values, indices = probs.topk(min(k, probs.shape[0]))
    return [(labels[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]


@dataclass
class FrameResults:
    """Per-frame output of :func:`frame_posteriors` (one frame every ``hop`` seconds)."""

    probs: np.ndarray  # (frames, classes)
    energy_db: np.ndarray  # (frames,) RMS of the frame in dBFS
    peak: np.ndarray  # (frames,) largest absolute sample (for plots)
    hop: float


@torch.no_grad()
def frame_posteriors(model: AudioClassifier, path: str | os.PathLike, window: float = 1.0, hop: float = 0.1,
                     block_seconds: float = 60.0, batch_size: int = 64) -> FrameResults:
    """Class probabilities of a ``window``-second window centred on every ``hop``-second frame, read block by block.

    Memory holds one block (plus a window of context) at a time, whatever the file's length.
    """
    rate = model.sample_rate
    hop_n, win_n = int(round(hop * rate)), int(round(window * rate))
    n_frames = max(1, math.ceil(duration_samples(path, rate) / hop_n))
    per_block = max(1, int(block_seconds / hop))
    probs, energy, peak = [], [], []
    lead = win_n // 2 - hop_n // 2  # samples of context before a frame's start
    for f0 in range(0, n_frames, per_block):
        f1 = min(n_frames, f0 + per_block)
        start = f0 * hop_n - lead
        span = read_span(path, start, (f1 - 1) * hop_n - lead + win_n, rate)
        windows = span.unfold(0, win_n, hop_n)  # (f1 - f0, win_n)
        for b in range(0, windows.shape[0], batch_size):
            probs.append(torch.softmax(model(windows[b:b + batch_size]), -1).numpy())
        frames = span[lead:lead + (f1 - f0) * hop_n].reshape(f1 - f0, hop_n)
        energy.append((10 * torch.log10(frames.pow(2).mean(1) + 1e-12)).numpy())
        peak.append(frames.abs().amax(1).numpy())
    return FrameResults(np.concatenate(probs), np.concatenate(energy), np.concatenate(peak), hop)


def frames_to_segments(labels: Sequence[str], hop: float, duration: float) -> list[Segment]:
    """Runs of equal frame labels -> segments (the last one ends at ``duration``)."""
    segments: list[Segment] = []
    for i, label in enumerate(labels):
        if segments and segments[-1].label == label:
            continue
        if segments:
            segments[-1].stop = round(i * hop, 3)
        segments.append(Segment(label, round(i * hop, 3), 0.0))
    if segments:
        segments[-1].stop = round(duration, 3)
    return segments


def smooth_labels(results: FrameResults, labels: Sequence[str], smooth: float = 2.0,
                  silence_db: float | None = -55.0) -> list[str]:
    """Frame labels: median-filtered class probabilities' argmax; smoothed low-energy frames become ``silence``.

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
    """Timeline of a file (see the module docstring): segments and the per-frame results they came from."""
    if not 0 < hop <= window:
        raise ConfigError(f"hop ({hop} s) must be positive and at most the window ({window} s).")
    results = frame_posteriors(model, path, window, hop, block_seconds, batch_size)
    names = smooth_labels(results, model.labels, smooth, silence_db)
    duration = duration_samples(path, model.sample_rate) / model.sample_rate
    return frames_to_segments(names, hop, duration), results


def format_timeline(segments: Iterable[Segment], fmt: str, file_id: str = "file") -> str:
    """Text of a timeline: ``csv`` (header ``label,start,stop``), ``rttm`` (NIST, one SPEAKER line per segment,
    the label as speaker name) or ``audacity`` (tab-separated start, stop, label)."""
    if fmt == "csv":
        lines = ["label,start,stop"] + [f"{s.label},{s.start:.3f},{s.stop:.3f}" for s in segments]
    elif fmt == "rttm":
        lines = [f"SPEAKER {file_id} 1 {s.start:.3f} {s.stop - s.start:.3f} <NA> <NA> {s.label} <NA> <NA>"
                 for s in segments]
    elif fmt == "audacity":
        lines = [f"{s.start:.6f}\t{s.stop:.6f}\t{s.label}" for s in segments]
    else:
        raise ValueError(f"unknown timeline format {fmt!r}; choose one of {FORMATS}")
    return "\n".join(lines) + "\n"


def write_timeline(path: str | os.PathLike, segments: Iterable[Segment], fmt: str, file_id: str = "file") -> Path:
    """Write a timeline atomically in ``fmt`` (see :func:`format_timeline`)."""
    return write_text(path, format_timeline(segments, fmt, file_id))


def read_timeline(path: str | os.PathLike) -> list[Segment]:
    """Read a ``label,start,stop`` CSV timeline (also the reference files the mini corpus writes)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such timeline file.")
    with open(path, newline="") as f:
        return [Segment(r["label"], float(r["start"]), float(r["stop"])) for r in csv.DictReader(f)]


def frame_accuracy(reference: Sequence[Segment], hypothesis: Sequence[Segment], step: float = 0.01) -> float:
    """Fraction of ``step``-second frames over the reference's span where the two timelines agree."""
    end = max(s.stop for s in reference)
    times = np.arange(0, end, step) + step / 2

    def at(segments):
        starts = np.array([s.start for s in segments])
        idx = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(segments) - 1)
        return np.asarray([s.label for s in segments], dtype=object)[idx]

    return float((at(reference) == at(hypothesis)).mean())


def classify_files(model_path: str | os.PathLike, files: Sequence[str | os.PathLike], k: int = 3,
                   window: float = 10.0) -> list[dict]:
    """Top-``k`` labels of each file: ``[{"file", "top": [{"label", "probability"}, ...]}]``."""
    model = load_classifier(model_path)
    results = []
    for path in tqdm(files, desc="classify", unit="file", disable=len(files) < 2):
        probs = classify_file(model, path, window)
        results.append({"file": str(path), "top": [{"label": label, "probability": p}
                                                   for label, p in top_k(probs, model.labels, k)]})
    return results


def format_classifications(results: Sequence[dict]) -> str:
    """Plain-text table of :func:`classify_files` results, one line per file."""
    width = max([len(r["file"]) for r in results] + [4])
    lines = [f"{'file':<{width}}  top labels (probability)"]
    for r in results:
        top = "  ".join(f"{t['label']} ({t['probability']:.3f})" for t in r["top"])
        lines.append(f"{r['file']:<{width}}  {top}")
    return "\n".join(lines) + "\n"


def limit_heap_growth() -> None:
    """Fix glibc's mmap threshold at its 128 KiB default so large freed buffers go straight back to the OS.

    glibc raises the threshold after each large ``free``, after which the per-block buffers of a long stream are
    carved from the heap, which fragments and grows by a few MB per block (it looks like a leak). With the
    threshold fixed, memory stays flat however long the file. Does nothing where glibc is absent.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def segment_files(model_path: str | os.PathLike, files: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                  fmt: str = "csv", plot: bool = False, **options) -> list[Path]:
    """Segment every file and write ``out_dir/<file stem>.<csv|rttm|txt>`` (and ``.png`` with ``plot``).

    Args:
        model_path: a saved audio classifier.
        files: audio files of any length (read block by block).
        out_dir: output folder.
        fmt: ``csv`` | ``rttm`` | ``audacity``.
        plot: also draw the timeline over the waveform.
        options: :func:`segment_file` keyword arguments (window, hop, smooth, silence_db, block_seconds, ...).

    Returns:
        The timeline files written.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown timeline format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    model = load_classifier(model_path)
    limit_heap_growth()
    out_dir = Path(out_dir)
    written = []
    for path in tqdm(files, desc="segment", unit="file"):
        segments, results = segment_file(model, path, **options)
        stem = Path(path).stem
        written.append(write_timeline(out_dir / f"{stem}{SUFFIXES[fmt]}", segments, fmt, stem))
        if plot:
            plot_timeline(out_dir / f"{stem}.png", segments, results, title=str(path))
    return written


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


COLOURS = {"speech": "tab:blue", "music": "tab:orange", "noise": "tab:green", SILENCE: "lightgrey"}


def plot_timeline(path: str | os.PathLike, segments: Sequence[Segment], results: FrameResults,
                  title: str = "") -> Path:
    """PNG of the timeline as coloured bands over the waveform's peak envelope."""
    plt = _pyplot()
    t = np.arange(results.peak.shape[0]) * results.hop
    fig, ax = plt.subplots(figsize=(12, 3))
    ax.fill_between(t, -results.peak, results.peak, color="black", linewidth=0, step="post")
    palette = itertools.cycle(plt.get_cmap("tab10").colors[4:])
    colours = dict(COLOURS)
    for s in segments:
        if s.label not in colours:
            colours[s.label] = next(palette)
        ax.axvspan(s.start, s.stop, color=colours[s.label], alpha=0.35, linewidth=0)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[name], alpha=0.35) for name in dict.fromkeys(
        s.label for s in segments)]
    ax.legend(handles, list(dict.fromkeys(s.label for s in segments)), loc="upper right", ncol=4, fontsize=8)
    ax.set_xlim(0, t[-1] + results.hop if len(t) else 1)
    ax.set_xlabel("time (s)")
    ax.set_yticks([])
    ax.set_title(title)
    return _save(fig, path)


def _save(fig, path) -> Path:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


@torch.no_grad()
def evaluate(model: AudioClassifier, dataset, batch_size: int = 64) -> dict:
    """Clip-level scores of a classifier on a labelled dataset (items ``{"audio", "label"}``).

    Returns:
        ``{"accuracy", "macro_f1", "per_class": {label: {precision, recall, f1, support}}, "confusion":
        [[...]] (rows: true class, columns: predicted), "labels", "clips", "ms_per_clip"}``.
    """
    model.eval()
    n = model.num_classes
    confusion = np.zeros((n, n), dtype=np.int64)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size)
    seconds = 0.0
    for batch in tqdm(loader, desc="evaluate", unit="batch", leave=False):
        began = time.perf_counter()
        pred = model(batch["audio"]).argmax(-1)
        seconds += time.perf_counter() - began
        label = batch["label"].argmax(-1) if batch["label"].dim() == 2 else batch["label"]
        np.add.at(confusion, (label.numpy(), pred.numpy()), 1)
    return scores_from_confusion(confusion, model.labels) | {
        "ms_per_clip": 1000 * seconds / max(1, confusion.sum())}


def scores_from_confusion(confusion: np.ndarray, labels: Sequence[str]) -> dict:
    """Accuracy, per-class precision / recall / F1 and macro F1 from a confusion matrix (rows: truth)."""
    tp = np.diag(confusion).astype(float)
    precision = tp / np.maximum(confusion.sum(0), 1)
    recall = tp / np.maximum(confusion.sum(1), 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    per_class = {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                 for name, p, r, f, s in zip(labels, precision, recall, f1, confusion.sum(1))}
    return {"accuracy": float(tp.sum() / max(1, confusion.sum())), "macro_f1": float(f1.mean()),
            "per_class": per_class, "confusion": confusion.tolist(), "labels": list(labels),
            "clips": int(confusion.sum())}


def plot_confusion(path: str | os.PathLike, confusion: Sequence[Sequence[int]], labels: Sequence[str],
                   title: str = "") -> Path:
    """PNG of a confusion matrix (rows: true class, columns: predicted), counts written in the cells."""
    plt = _pyplot()
    matrix = np.asarray(confusion)
    size = 1.5 + 0.6 * len(labels)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if value > matrix.max() / 2 else "black", fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


def results_table(results: dict[str, dict]) -> str:
    """Markdown table of :func:`evaluate` results keyed by run name."""
    labels = next(iter(results.values()))["labels"] if results else []
    head = ["model", "parameters", "clip accuracy", "macro F1", *[f"F1 {c}" for c in labels], "ms / clip"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        cells = [name, f"{r.get('parameters', 0):,}", f"{100 * r['accuracy']:.2f} %", f"{r['macro_f1']:.4f}",
                 *[f"{r['per_class'][c]['f1']:.4f}" for c in labels], f"{r['ms_per_clip']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _evaluate_command(args) -> None:
    from .data import create_dataset

    try:
        dataset_args = json.loads(args.dataset_args)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--dataset-args: not JSON ({err}); e.g. '{{\"root\": \"data\", \"split\": \"test\"}}'")
    out = Path(args.out)
    results = {}
    for model_path in args.models:
        model = load_classifier(model_path)
        name = Path(model_path).parent.name or Path(model_path).stem
        dataset = create_dataset(args.dataset, **dataset_args)
        results[name] = evaluate(model, dataset, args.batch_size) | {"parameters": model.num_parameters}
        plot_confusion(out / f"{name}_confusion.png", results[name]["confusion"], model.labels, name)
    write_text(out / "metrics.json", json.dumps(results, indent=2))
    table = results_table(results)
    write_text(out / "results.md", table)
    print(table, end="")


def cross_validation_summary(metrics_files: Sequence[str | os.PathLike]) -> dict:
    """Mean and standard deviation of clip accuracy over folds, from the ``metrics.json`` of each fold's
    ``evaluate`` run (every run in a file counts as one fold)."""
    accuracies = [run["accuracy"] for path in metrics_files for run in json.loads(Path(path).read_text()).values()]
    return {"folds": len(accuracies), "mean_accuracy": float(np.mean(accuracies)),
            "std_accuracy": float(np.std(accuracies)), "accuracies": accuracies}


def _cv_summary_command(args) -> None:
    summary = cross_validation_summary(args.metrics)
    print(f"{summary['folds']} folds: accuracy {100 * summary['mean_accuracy']:.2f} +- "
          f"{100 * summary['std_accuracy']:.2f} %")
    if args.out:
        write_text(args.out, json.dumps(summary, indent=2))


def _frame_accuracy_command(args) -> None:
    reference = read_timeline(args.reference)
    scores = {hyp: frame_accuracy(reference, read_timeline(hyp)) for hyp in args.hypotheses}
    for hyp, acc in scores.items():
        print(f"{hyp}: frame accuracy {100 * acc:.2f} %")
    if args.out:
        write_text(args.out, json.dumps(scores, indent=2))


def main(argv: list[str] | None = None) -> int:
    from .data.prepare import add_prepare_commands

    parser = argparse.ArgumentParser(prog="python -m sepaudio.classify",
                                     description="Prepare classification corpora; evaluate classifiers and timelines.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("evaluate", help="clip accuracy, per-class F1, confusion matrices of saved classifiers")
    p.add_argument("models", nargs="+", help="model files (model.pt from 'sepaudio train')")
    p.add_argument("--dataset", required=True, help="registered dataset name, e.g. smn_mini, manifest, esc50")
    p.add_argument("--dataset-args", default="{}", help="JSON keyword arguments of the dataset")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("-o", "--out", required=True, help="folder for metrics.json, results.md and confusion PNGs")
    p.set_defaults(func=_evaluate_command)
    p = sub.add_parser("frame-accuracy", help="agreement of timelines (CSV label,start,stop) with a reference")
    p.add_argument("reference")
    p.add_argument("hypotheses", nargs="+")
    p.add_argument("-o", "--out", help="write the scores as JSON here")
    p.set_defaults(func=_frame_accuracy_command)
    p = sub.add_parser("prepare", help="generate, split or check a classification corpus")
    add_prepare_commands(p.add_subparsers(dest="corpus", required=True))
    p = sub.add_parser("cv-summary", help="mean +- std clip accuracy over the folds of a cross-validation")
    p.add_argument("metrics", nargs="+", help="metrics.json of each fold's evaluate run")
    p.add_argument("-o", "--out", help="write the summary as JSON here")
    p.set_defaults(func=_cv_summary_command)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except SepaudioError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
