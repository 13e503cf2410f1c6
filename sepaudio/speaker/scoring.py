"""Speaker verification scoring: cosine scores over all trials of a labelled set, equal error rate."""
from __future__ import annotations

from typing import Sequence

import torch


def cosine_trials(vectors: torch.Tensor, speakers: Sequence) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine score of every pair of distinct utterances, and whether the pair shares a speaker.

    Args:
        vectors: one embedding per utterance.
        speakers: one label per utterance.

    Returns:
        ``(scores, same)``: float ``(pairs,)`` and bool ``(pairs,)``, ``pairs = n * (n - 1) / 2``.

    Shape:
        vectors ``(n, dim)``.
    """
    x = torch.nn.functional.normalize(vectors.float(), dim=1)
    ids = {s: i for i, s in enumerate(dict.fromkeys(speakers))}
    y = torch.tensor([ids[s] for s in speakers], device=x.device)
    i, j = torch.triu_indices(len(x), len(x), offset=1, device=x.device)
    return (x[i] * x[j]).sum(1), y[i] == y[j]


def equal_error_rate(scores: torch.Tensor, same: torch.Tensor) -> float:
    """The rate at which false acceptances equal false rejections when thresholding ``scores``.

    Args:
        scores: higher means more likely the same speaker.
        same: ground truth of every trial; both kinds must be present.

    Returns:
        EER in [0, 1] (interpolated between the two closest thresholds).

    Shape:
        scores, same ``(trials,)``.
    """
    if same.all() or not same.any():
        raise ValueError("the EER needs both target (same speaker) and non-target trials")
    order = torch.argsort(scores, descending=True)
    same = same[order].float()
    n_target, n_nontarget = same.sum(), (1 - same).sum()
    # Accept the k highest scores, k = 0..n: false acceptances rise, false rejections fall.
    fa = torch.cat([torch.zeros(1, device=same.device), torch.cumsum(1 - same, 0)]) / n_nontarget
    fr = 1 - torch.cat([torch.zeros(1, device=same.device), torch.cumsum(same, 0)]) / n_target
    k = int(torch.nonzero(fa >= fr)[0])
    if k == 0:
        return float(fa[0])
    # Interpolate the crossing between step k-1 and k.
    d_prev, d_next = fr[k - 1] - fa[k - 1], fa[k] - fr[k]
    t = d_prev / (d_prev + d_next)
    return float(fa[k - 1] + t * (fa[k] - fa[k - 1]))
