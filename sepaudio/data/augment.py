"""Waveform augmentation: speed perturbation (pseudo-speakers for separation and extraction, see
:mod:`sepaudio.data.speakers`), random gain and mixup of classification items (see
:class:`sepaudio.data.classification.ClipDataset`). SpecAugment, which a model applies to its features, is a block:
:class:`sepaudio.nn.SpecAugment`.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch
from torch import nn

from ..audio import resample


def speed_perturb(wav: torch.Tensor, factor: float) -> torch.Tensor:
    """Play ``wav`` ``factor`` times as fast, as speed perturbation does in Kaldi's recipes: tempo, pitch and
    formants all scale by ``factor`` (resampling; the ratio is rounded to a fraction with a denominator up to 100).

    Shape: ``(..., time)`` -> ``(..., about time / factor)``.
    """
    if factor == 1:
        return wav
    ratio = Fraction(factor).limit_denominator(100)
    return resample(wav, ratio.numerator, ratio.denominator)


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
