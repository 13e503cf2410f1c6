"""Waveform augmentation of classification items: random gain and mixup (see
:class:`sepaudio.data.classification.ClipDataset`). SpecAugment, which a model applies to its features, is a block:
:class:`sepaudio.nn.SpecAugment`.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def random_gain(wav: torch.Tensor, max_db: float, rng: np.random.Generator) -> torch.Tensor:
    """Scale by a gain drawn uniformly in ``[-max_db, +max_db]`` dB.

    Shape: any -> same.
    """
    return wav * float(10 ** (rng.uniform(-max_db, max_db) / 20))


def one_hot(label: int | torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class index (or an already soft label) -> float probability vector. Shape: ``()`` -> ``(num_classes,)``."""
    label = torch.as_tensor(label)
    if label.dim() == 1:
        return label.float()
    return nn.functional.one_hot(label.long(), num_classes).float()


def mixup(first: dict, second: dict, lam: float, num_classes: int) -> dict:
    """Mix two items: ``lam * first + (1 - lam) * second``, labels made soft the same way.

    Args:
        first, second: items ``{"audio": (time,), "label": ()}`` of the same length.
        lam: weight of ``first``; draw it from ``Beta(alpha, alpha)`` (alpha 0.2-0.4 is usual).
        num_classes: length of the soft label.

    Returns:
        ``{"audio": (time,), "label": (num_classes,) float}``.
    """
    return {"audio": lam * first["audio"] + (1 - lam) * second["audio"],
            "label": lam * one_hot(first["label"], num_classes) + (1 - lam) * one_hot(second["label"], num_classes)}
