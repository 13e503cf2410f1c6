"""Per-class decision thresholds of a classifier, fitted on labelled validation clips for the best macro F1
(``sepaudio evaluate --calibrate``).

A classifier trained on imbalanced data is biased toward its frequent classes; dividing each class's probability by
a threshold before the argmax moves the decision boundaries back. The thresholds live in the classifier
(``class_thresholds``, saved with its weights) and every decision uses them: ``evaluate``, ``classify``,
``segment``, ``predict`` and the timeline smoothing.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .metrics import classification_scores
from .models.classifier import AudioClassifier

__all__ = ["fit_thresholds", "calibrate"]


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
