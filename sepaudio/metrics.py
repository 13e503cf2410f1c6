"""Scores of separation, classification and segmentation.

- Separation (torchmetrics underneath): ``(..., time)`` -> ``(...)``, values in dB; :func:`pit` lines sources up.
- Classification: :func:`confusion_matrix` of true and predicted classes, then :func:`classification_scores`.
- Segmentation: :func:`frame_accuracy` of a timeline against a reference.

torchmetrics and scipy.optimize load on the first separation score, so that importing this module (as
:mod:`sepaudio.inference` does) costs nothing to classification and segmentation.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

__all__ = ["si_sdr", "sdr", "snr", "si_sdr_improvement", "sdr_improvement", "pit", "confusion_matrix",
           "classification_scores", "frame_accuracy"]


def si_sdr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Scale-invariant SDR (zero-mean). Finite for silent references and estimates."""
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

    return scale_invariant_signal_distortion_ratio(est, ref, zero_mean=True)


def snr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio of ``est`` against ``ref`` (no rescaling)."""
    from torchmetrics.functional.audio import signal_noise_ratio

    return signal_noise_ratio(est, ref, zero_mean=True)


def sdr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """BSS-eval SDR (distortion filter of 512 taps), as reported by the separation papers."""
    from torchmetrics.functional.audio import signal_distortion_ratio

    return signal_distortion_ratio(est.double(), ref.double()).to(est.dtype)


def si_sdr_improvement(est: torch.Tensor, ref: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """SI-SDR of the estimate minus SI-SDR of the mixture, against the same reference.

    Shape: est, ref ``(..., time)``; mixture broadcastable to them.
    """
    return si_sdr(est, ref) - si_sdr(mixture.expand_as(ref), ref)


def sdr_improvement(est: torch.Tensor, ref: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """BSS-eval SDR of the estimate minus that of the mixture."""
    return sdr(est, ref) - sdr(mixture.expand_as(ref), ref)


def pit(metric, est: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Best permutation of sources under a higher-is-better metric, by Hungarian assignment (exact for any count).

    Written here rather than taken from torchmetrics, whose module-wide permutation cache breaks training after a
    first call under ``torch.inference_mode`` (evaluation, Lightning validation).

    Shape: est, ref ``(batch, n_src, time)`` -> mean metric ``(batch,)``, permutation ``(batch, n_src)``
    such that ``est[b, perm[b]]`` lines up with ``ref[b]``.
    """
    from scipy.optimize import linear_sum_assignment

    n_src = est.shape[1]
    # pairs[b, i, j] = metric(est[b, j], ref[b, i])
    pairs = metric(est.unsqueeze(1).expand(-1, n_src, -1, -1), ref.unsqueeze(2).expand(-1, -1, n_src, -1))
    perm = torch.stack([torch.as_tensor(linear_sum_assignment(m, maximize=True)[1])
                        for m in pairs.detach().cpu().double().numpy()]).to(est.device)
    return pairs.gather(2, perm.unsqueeze(-1)).squeeze(-1).mean(-1), perm


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of (true, predicted) class pairs: rows are true classes, columns predicted ones.

    Shape: true, predicted ``(n,)`` class indices -> ``(num_classes, num_classes)`` int64.
    """
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true), np.asarray(predicted)), 1)
    return matrix


def classification_scores(confusion: np.ndarray, labels: Sequence[str]) -> dict:
    """Accuracy, per-class precision / recall / F1 and their macro mean, from a confusion matrix (rows: truth).

    A class never predicted has precision 0; one never present has recall 0 (and counts in the macro F1).

    Returns:
        ``{"accuracy", "macro_f1", "per_class": {label: {"precision", "recall", "f1", "support"}}, "labels",
        "confusion": [[...]], "n"}``.
    """
    confusion = np.asarray(confusion)
    tp = np.diag(confusion).astype(float)
    precision = tp / np.maximum(confusion.sum(0), 1)
    recall = tp / np.maximum(confusion.sum(1), 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    per_class = {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                 for name, p, r, f, s in zip(labels, precision, recall, f1, confusion.sum(1))}
    return {"accuracy": float(tp.sum() / max(1, confusion.sum())), "macro_f1": float(f1.mean()),
            "per_class": per_class, "labels": list(labels), "confusion": confusion.tolist(),
            "n": int(confusion.sum())}


def frame_accuracy(reference: Sequence, hypothesis: Sequence, step: float = 0.01) -> float:
    """Fraction of ``step``-second frames over the reference's span on which two timelines give the same label.

    Args:
        reference, hypothesis: :class:`sepaudio.timeline.Segment` lists (label, start, stop), sorted by start.
        step: frame length in seconds.
    """
    end = max(s.stop for s in reference)
    times = np.arange(0, end, step) + step / 2

    def labels_at(segments) -> np.ndarray:
        starts = np.array([s.start for s in segments])
        index = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(segments) - 1)
        return np.asarray([s.label for s in segments], dtype=object)[index]

    return float((labels_at(reference) == labels_at(hypothesis)).mean())
