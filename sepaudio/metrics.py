"""Separation metrics (torchmetrics underneath). Shapes: ``(..., time)`` -> ``(...)``, values in dB."""
from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torchmetrics.functional.audio import (scale_invariant_signal_distortion_ratio, signal_distortion_ratio,
                                           signal_noise_ratio)

__all__ = ["si_sdr", "sdr", "snr", "si_sdr_improvement", "sdr_improvement", "pit"]


def si_sdr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Scale-invariant SDR (zero-mean). Finite for silent references and estimates."""
    return scale_invariant_signal_distortion_ratio(est, ref, zero_mean=True)


def snr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio of ``est`` against ``ref`` (no rescaling)."""
    return signal_noise_ratio(est, ref, zero_mean=True)


def sdr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """BSS-eval SDR (distortion filter of 512 taps), as reported by the separation papers."""
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
    n_src = est.shape[1]
    # pairs[b, i, j] = metric(est[b, j], ref[b, i])
    pairs = metric(est.unsqueeze(1).expand(-1, n_src, -1, -1), ref.unsqueeze(2).expand(-1, -1, n_src, -1))
    perm = torch.stack([torch.as_tensor(linear_sum_assignment(m, maximize=True)[1])
                        for m in pairs.detach().cpu().double().numpy()]).to(est.device)
    return pairs.gather(2, perm.unsqueeze(-1)).squeeze(-1).mean(-1), perm
