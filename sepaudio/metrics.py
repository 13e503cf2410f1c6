"""Scores of separation, classification and segmentation.

- Separation: ``(..., time)`` -> ``(...)``, values in dB; :func:`pit` lines sources up. SI-SDR and SDR are
  computed here (the figures of torchmetrics' functions, without importing torchmetrics, which takes seconds);
  :func:`perceptual` gives PESQ / STOI through the ``pesq`` and ``pystoi`` packages.
- Classification: :func:`confusion_matrix` of true and predicted classes, then :func:`classification_scores`.
- Segmentation: :func:`frame_accuracy` of a timeline against a reference.

scipy.optimize, pesq and pystoi load on first use, so importing this module (as :mod:`sepaudio.inference` does)
costs nothing to classification and segmentation.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .optional import require

__all__ = ["si_sdr", "sdr", "snr", "si_sdr_improvement", "sdr_improvement", "pit", "perceptual", "PESQ_MODES",
           "confusion_matrix", "classification_scores", "frame_accuracy"]

#: PESQ's mode for each sample rate it is defined for (narrow / wide band)
PESQ_MODES = {8000: "nb", 16000: "wb"}


def si_sdr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Scale-invariant SDR (zero-mean), torchmetrics' formula. Finite for silent references and estimates.

    Shape: est, ref ``(..., time)`` (broadcastable) -> ``(...)``.
    """
    eps = torch.finfo(est.dtype).eps
    est = est - est.mean(-1, keepdim=True)
    ref = ref - ref.mean(-1, keepdim=True)
    alpha = ((est * ref).sum(-1, keepdim=True) + eps) / ((ref ** 2).sum(-1, keepdim=True) + eps)
    scaled = alpha * ref
    return 10 * torch.log10(((scaled ** 2).sum(-1) + eps) / (((scaled - est) ** 2).sum(-1) + eps))


def snr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio of ``est`` against ``ref`` (zero-mean, no rescaling), torchmetrics' formula.

    Shape: est, ref ``(..., time)`` (broadcastable) -> ``(...)``.
    """
    eps = torch.finfo(est.dtype).eps
    est = est - est.mean(-1, keepdim=True)
    ref = ref - ref.mean(-1, keepdim=True)
    return 10 * torch.log10(((ref ** 2).sum(-1) + eps) / (((ref - est) ** 2).sum(-1) + eps))


def sdr(est: torch.Tensor, ref: torch.Tensor, filter_length: int = 512) -> torch.Tensor:
    """BSS-eval SDR (distortion filter of ``filter_length`` taps), as reported by the separation papers.

    The figures of torchmetrics' ``signal_distortion_ratio`` (float64 FFT correlations, one Toeplitz solve), with
    each reference's correlation and system computed once for every estimate scored against it: ``est`` may hold
    several estimates per reference in extra leading dimensions (e.g. the separated sources and the mixture).

    Shape: est ``(*extra, ..., time)``, ref ``(..., time)`` -> ``(*extra, ...)``.
    """
    extra = est.dim() - ref.dim()
    if extra < 0 or est.shape[extra:] != ref.shape:
        raise ValueError(f"sdr: estimate {tuple(est.shape)} does not end with the reference's shape {tuple(ref.shape)}")
    dtype, length, lead = est.dtype, ref.shape[-1], est.shape[:extra]
    est = est.double().reshape(-1, *ref.shape)  # (k, ..., time)
    ref = ref.double()
    est = est / est.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    ref = ref / ref.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    n_fft = 2 ** math.ceil(math.log2(2 * length - 1))
    ref_f = torch.fft.rfft(ref, n=n_fft)
    acf = torch.fft.irfft(ref_f.real ** 2 + ref_f.imag ** 2, n=n_fft)[..., :filter_length]  # (..., L)
    xcorr = torch.fft.irfft(ref_f.conj() * torch.fft.rfft(est, n=n_fft), n=n_fft)[..., :filter_length]  # (k, ..., L)
    taps = acf.shape[-1]
    index = (torch.arange(taps).unsqueeze(0) - torch.arange(taps).unsqueeze(1)).abs()
    rhs = xcorr.movedim(0, -1)  # (..., L, k): every estimate of a reference against one factorisation
    system = acf[..., index]
    # Cholesky: half an LU's work, and torch 2.11's batched LU solve fails after torch.set_num_threads(n > 1)
    factor, info = torch.linalg.cholesky_ex(system)
    solution = torch.cholesky_solve(rhs, factor) if not info.any() else torch.linalg.solve(system, rhs)
    coherence = (rhs * solution).sum(-2).movedim(-1, 0)
    return (10 * torch.log10(coherence / (1 - coherence))).reshape(*lead, *ref.shape[:-1]).to(dtype)


def si_sdr_improvement(est: torch.Tensor, ref: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """SI-SDR of the estimate minus SI-SDR of the mixture, against the same reference.

    Shape: est, ref ``(..., time)``; mixture broadcastable to them.
    """
    return si_sdr(est, ref) - si_sdr(mixture.expand_as(ref), ref)


def sdr_improvement(est: torch.Tensor, ref: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """BSS-eval SDR of the estimate minus that of the mixture (one system solve per reference for both).

    Shape: est, ref ``(..., time)``; mixture broadcastable to them -> ``(...)``.
    """
    est_sdr, mix_sdr = sdr(torch.stack([est, mixture.expand_as(ref)]), ref)
    return est_sdr - mix_sdr


def perceptual(est: np.ndarray, ref: np.ndarray, rate: int, metrics: Sequence[str] = ("pesq", "stoi")) -> dict:
    """PESQ (8 / 16 kHz only) and STOI, averaged over sources, through the ``pesq`` and ``pystoi`` packages (the
    figures torchmetrics gives); a metric that cannot be computed (no utterance in a silent reference, PESQ at
    another rate) is left out. A plain function of arrays, so that a process pool can run it.

    Shape: est, ref ``(n_src, time)`` float32 -> ``{"pesq": float, "stoi": float}``.
    """
    out = {}
    if "pesq" in metrics and rate in PESQ_MODES:
        pesq = require("pesq", "PESQ").pesq
        try:
            out["pesq"] = float(np.mean([pesq(rate, r, e, PESQ_MODES[rate]) for e, r in zip(est, ref)]))
        except RuntimeError:  # no utterance detected in a silent reference
            pass
    if "stoi" in metrics:
        stoi = require("pystoi", "STOI").stoi
        out["stoi"] = float(np.mean([stoi(r, e, rate, False) for e, r in zip(est, ref)]))
    return out


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
        reference: :class:`sepaudio.timeline.Segment` list (label, start, stop), sorted by start.
        hypothesis: the same, to score against ``reference``.
        step: frame length in seconds.
    """
    end = max(s.stop for s in reference)
    times = np.arange(0, end, step) + step / 2

    def labels_at(segments) -> np.ndarray:
        starts = np.array([s.start for s in segments])
        index = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(segments) - 1)
        return np.asarray([s.label for s in segments], dtype=object)[index]

    return float((labels_at(reference) == labels_at(hypothesis)).mean())
