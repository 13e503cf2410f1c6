"""Clip classification: class probabilities of whole files and their top-k labels (``sepaudio classify``), and the
per-class decision thresholds fitted on labelled validation clips for the best macro F1 (``sepaudio evaluate
--calibrate``): a classifier trained on imbalanced data favours its frequent classes, and dividing each class's
probability by a threshold before the argmax moves the boundaries back. The thresholds live in the classifier
(``class_thresholds``, saved with its weights) and every decision uses them: ``evaluate``, ``classify``, ``segment``,
``predict`` and the timeline smoothing.

Timelines of long recordings are :mod:`sepaudio.segment`'s job; scores on a labelled dataset are
:mod:`sepaudio.evaluate`'s.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .errors import ConfigError
from .inference import ChunkReader, resolve_device
from .metrics import classification_scores
from .models import load_model
from .models.classifier import AudioClassifier, check_window, clip_probabilities, min_samples  # noqa: F401

__all__ = ["load_classifier", "classify_file", "classify_files", "top_k", "format_classifications", "min_samples",
           "check_window", "fit_thresholds", "calibrate"]


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


def fit_thresholds(probs: torch.Tensor, labels: torch.Tensor, rounds: int = 4,
                   grid: Sequence[float] = tuple(np.linspace(-4, 4, 81))) -> torch.Tensor:
    """Per-class decision thresholds that maximise the macro F1 of ``argmax(probs / thresholds)`` on labelled
    clips: coordinate ascent on the log-thresholds over ``grid`` (the first class's stays 1: only ratios count;
    of equal scores the threshold nearest 1 wins), for at most ``rounds`` passes.

    Shape: probs ``(clips, classes)``, labels ``(clips,)`` -> ``(classes,)``.
    """
    logp, truth = torch.log(probs.double().clamp_min(1e-12)).numpy(), labels.numpy()
    k = logp.shape[1]

    def macro_f1(offsets: np.ndarray) -> float:
        confusion = np.bincount(truth * k + (logp - offsets).argmax(1), minlength=k * k).reshape(k, k)
        return classification_scores(confusion, [str(c) for c in range(k)])["macro_f1"]

    offsets, best = np.zeros(k), macro_f1(np.zeros(k))
    for _ in range(rounds):
        before = best
        for c in range(1, k):
            for value in sorted(grid, key=abs):
                trial = offsets.copy()
                trial[c] = value
                score = macro_f1(trial)
                if score > best + 1e-9:
                    offsets, best = trial, score
        if best <= before:
            break
    return torch.from_numpy(np.exp(offsets)).float()


def calibrate(model: AudioClassifier, dataset: Dataset, batch_size: int = 32) -> dict[str, float]:
    """Fit ``model.class_thresholds`` on a labelled dataset (:func:`fit_thresholds`) and set them; returns them
    by label."""
    device, probs, truth = next(model.parameters()).device, [], []
    model.eval()
    with torch.inference_mode():
        for batch in tqdm(DataLoader(dataset, batch_size=batch_size), desc="calibrating", unit="batch"):
            probs.append(torch.softmax(model(*[batch[k].to(device) for k in model.input_keys]), -1).float().cpu())
            truth.append(batch["label"].argmax(-1) if batch["label"].dim() == 2 else batch["label"])
    thresholds = fit_thresholds(torch.cat(probs), torch.cat(truth))
    model.class_thresholds.copy_(thresholds.to(model.class_thresholds.device))
    return dict(zip(model.labels, thresholds.tolist()))
