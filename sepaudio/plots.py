"""The figures sepaudio draws, each saved atomically as a PNG (matplotlib's Agg backend, no display needed).

- :func:`plot_training_curves`: train / validation loss per epoch, and a classifier's validation F1 (``sepaudio train``).
- :func:`plot_spectrograms`: a grid of spectrograms with time and frequency axes (``sepaudio evaluate`` examples).
- :func:`plot_confusion`: a confusion matrix (``sepaudio evaluate`` of a classifier).
- :func:`plot_timeline`: a segmentation timeline over the waveform's envelope (``sepaudio segment --plot``).
"""
from __future__ import annotations

import csv
import itertools
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .fileio import atomic_path

__all__ = ["figure", "save_figure", "plot_training_curves", "plot_spectrograms", "plot_confusion", "plot_timeline"]

TIMELINE_COLOURS = {"speech": "tab:blue", "music": "tab:orange", "noise": "tab:green", "silence": "lightgrey"}


def figure(rows: int = 1, cols: int = 1, figsize: tuple[float, float] = (6, 4)):
    """A new figure and its axes (a 2-D array of ``rows`` x ``cols``), drawn with the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(rows, cols, figsize=figsize, squeeze=False)


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG atomically, then close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def plot_training_curves(log: str | os.PathLike, path: str | os.PathLike) -> Path | None:
    """Train and validation loss per epoch from Lightning's CSV log (``train_loss_epoch``, ``val_loss`` columns);
    beside them, for a classifier, the validation macro F1 and the F1 of every class (``val_macro_f1``,
    ``val_f1_<label>``).

    Returns:
        ``path``, or ``None`` when there is no log yet.
    """
    if not Path(log).exists():
        return None
    curves: dict[str, dict[int, float]] = {}
    with open(log, newline="") as f:
        for row in csv.DictReader(f):
            for name, value in row.items():
                if value and row.get("epoch") and (name in ("train_loss_epoch", "val_loss", "val_macro_f1")
                                                   or name.startswith("val_f1_")):
                    curves.setdefault(name, {})[int(row["epoch"])] = float(value)
    scores = sorted((name for name in curves if "f1" in name), key=lambda name: name != "val_macro_f1")
    fig, axes = figure(1, 2 if scores else 1, (11, 4) if scores else (6, 4))
    for ax, names, unit in [(axes[0, 0], ["train_loss_epoch", "val_loss"], "loss"),
                            *([(axes[0, 1], scores, "validation F1")] if scores else [])]:
        for name in names:
            points = curves.get(name)
            if points:
                ax.plot(list(points), list(points.values()), marker="o", label=name.removeprefix("val_"),
                        linewidth=2.5 if name == "val_macro_f1" else 1.2)
        ax.set_xlabel("epoch")
        ax.set_ylabel(unit)
        ax.legend()
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_spectrograms(path: str | os.PathLike, panels: Sequence[tuple[str, torch.Tensor] | None], sample_rate: int,
                      cols: int = 2) -> Path:
    """Log-magnitude spectrograms (dB re full scale, one colour scale for all) in a grid filled row by row.

    Args:
        path: the PNG to write.
        panels: ``(title, waveform)`` pairs; ``None`` leaves a cell empty.
        sample_rate: of the waveforms.
        cols: panels per row.

    Shape: each waveform ``(time,)``.
    """
    import librosa
    import librosa.display

    n_fft = 2 ** round(math.log2(0.032 * sample_rate))  # about 32 ms
    hop = n_fft // 4
    specs = [None if p is None else librosa.amplitude_to_db(
        np.abs(librosa.stft(p[1].detach().cpu().double().numpy(), n_fft=n_fft, hop_length=hop)), ref=1.0,
        top_db=None) for p in panels]
    top = max((float(s.max()) for s in specs if s is not None), default=0.0)
    rows = math.ceil(len(panels) / cols)
    fig, axes = figure(rows, cols, figsize=(5 * cols, 2.2 * rows))
    for ax, panel, spec in itertools.zip_longest(axes.flat, panels, specs):
        if panel is None:
            ax.axis("off")
            continue
        librosa.display.specshow(spec, sr=sample_rate, hop_length=hop, n_fft=n_fft, x_axis="time", y_axis="hz",
                                 ax=ax, cmap="magma", vmin=top - 80, vmax=top)
        ax.set_title(panel[0], fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=80)


def plot_confusion(path: str | os.PathLike, confusion: Sequence[Sequence[int]], labels: Sequence[str],
                   title: str = "") -> Path:
    """A confusion matrix (rows: true class, columns: predicted) with the counts written in the cells."""
    matrix = np.asarray(confusion)
    size = 1.5 + 0.6 * len(labels)
    fig, axes = figure(figsize=(size, size))
    ax = axes[0, 0]
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if value > matrix.max() / 2 else "black", fontsize=8)
    ax.set_title(title)
    return save_figure(fig, path)


def plot_timeline(path: str | os.PathLike, segments: Sequence, peak: np.ndarray, hop: float,
                  title: str = "") -> Path:
    """A timeline as coloured bands over the waveform's peak envelope.

    Args:
        path: the PNG to write.
        segments: :class:`sepaudio.timeline.Segment` objects (label, start, stop in seconds).
        peak: largest absolute sample of each ``hop``-second frame.
        hop: frame step in seconds.
        title: drawn above.

    Shape: peak ``(frames,)``.
    """
    import matplotlib.pyplot as plt

    t = np.arange(peak.shape[0]) * hop
    fig, axes = figure(figsize=(12, 3))
    ax = axes[0, 0]
    ax.fill_between(t, -peak, peak, color="black", linewidth=0, step="post")
    palette = itertools.cycle(plt.get_cmap("tab10").colors[4:])
    colours = dict(TIMELINE_COLOURS)
    for s in segments:
        if s.label not in colours:
            colours[s.label] = next(palette)
        ax.axvspan(s.start, s.stop, color=colours[s.label], alpha=0.35, linewidth=0)
    names = list(dict.fromkeys(s.label for s in segments))
    ax.legend([plt.Rectangle((0, 0), 1, 1, color=colours[n], alpha=0.35) for n in names], names,
              loc="upper right", ncol=4, fontsize=8)
    ax.set_xlim(0, t[-1] + hop if len(t) else 1)
    ax.set_xlabel("time (s)")
    ax.set_yticks([])
    ax.set_title(title)
    return save_figure(fig, path)
