"""Clip classification: class probabilities of whole files and their top-k labels (``sepaudio classify``).

Timelines of long recordings are :mod:`sepaudio.segment`'s job; scores on a labelled dataset are
:mod:`sepaudio.evaluate`'s.
"""
from __future__ import annotations

import os
from typing import Sequence

import torch
from tqdm import tqdm

from .errors import ConfigError
from .inference import ChunkReader, resolve_device
from .models import load_model
from .models.classifier import AudioClassifier, check_window, clip_probabilities, min_samples  # noqa: F401

__all__ = ["load_classifier", "classify_file", "classify_files", "top_k", "format_classifications", "min_samples",
           "check_window"]


def load_classifier(path: str | os.PathLike) -> AudioClassifier:
    """A saved audio classifier (``sepaudio train`` output).

    Raises:
        ModelFileError: missing or corrupt file, or another kind of model.
    """
    return load_model(path, expected=AudioClassifier)


@torch.no_grad()
def classify_file(model: AudioClassifier, path: str | os.PathLike, window: float = 10.0) -> torch.Tensor:
    """Class probabilities of a whole file (:func:`~sepaudio.models.classifier.clip_probabilities`, which
    ``AudioClassifier.predict`` runs on arrays), read one ``window``-second block at a time.

    Shape: returns ``(num_classes,)``.

    Raises:
        ConfigError: ``window`` shorter than the front-end's frame.
        AudioError: missing, unreadable or empty file.
    """
    check_window(model, window)
    return clip_probabilities(model, ChunkReader(path, model.sample_rate), window)


def top_k(probs: torch.Tensor, labels: Sequence[str], k: int,
          thresholds: torch.Tensor | None = None) -> list[tuple[str, float]]:
    """The ``k`` first ``(label, probability)`` pairs in the order of the decision: most probable first, or with
    per-class ``thresholds`` (a classifier's calibrated ``class_thresholds``) largest ``probs / thresholds`` first.

    Shape: probs, thresholds ``(num_classes,)``.
    """
    scores = probs if thresholds is None else probs / thresholds.to(probs)
    indices = scores.topk(min(k, probs.shape[0])).indices.tolist()
    return [(labels[i], float(probs[i])) for i in indices]


def classify_files(model_path: str | os.PathLike, files: Sequence[str | os.PathLike], k: int = 3,
                   window: float = 10.0, device: str = "cpu") -> list[dict]:
    """Top-``k`` labels of each file: ``[{"file", "top": [{"label", "probability"}, ...]}]``, with the model on
    ``device`` (``cpu``, ``cuda`` or ``cuda:N``).

    Raises:
        ConfigError: ``k`` not in ``[1, classes]``, ``window`` not positive, or an unusable ``device``.
    """
    model = load_classifier(model_path).to(resolve_device(device))
    if not 1 <= k <= model.num_classes:
        raise ConfigError(f"--top-k {k}: give 1 to {model.num_classes} labels (the model's classes).")
    check_window(model, window, "--clip-seconds")
    results, thresholds = [], model.class_thresholds.cpu()
    for path in tqdm(files, desc="classify", unit="file", disable=len(files) < 2):
        probs = classify_file(model, path, window)
        results.append({"file": str(path), "top": [{"label": label, "probability": p}
                                                   for label, p in top_k(probs, model.labels, k, thresholds)]})
    return results


def format_classifications(results: Sequence[dict]) -> str:
    """Plain-text table of :func:`classify_files` results, one line per file."""
    width = max([len(r["file"]) for r in results] + [4])
    lines = [f"{'file':<{width}}  top labels (probability)"]
    for r in results:
        top = "  ".join(f"{t['label']} ({t['probability']:.3f})" for t in r["top"])
        lines.append(f"{r['file']:<{width}}  {top}")
    return "\n".join(lines) + "\n"
