"""SpecAugment: frequency and time masks a classifier applies to its front-end output while training."""
from __future__ import annotations

import torch
from torch import nn


class SpecAugment(nn.Module):
    """Frequency and time masks (Park et al. 2019), drawn per example, applied in training only.

    Args:
        freq_masks, time_masks: number of masks along each axis.
        freq_width, time_width: largest mask width in bins / frames.
        value: what masked cells are set to (0 suits normalised features; use a low log value otherwise).

    Shape:
        ``(batch, ..., freq, frames)`` -> same.
    """

    def __init__(self, freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2, time_width: int = 10,
                 value: float = 0.0):
        super().__init__()
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width = time_masks, time_width
        self.value = value

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return feats
        mask = torch.zeros(feats.shape[0], feats.shape[-2], feats.shape[-1], dtype=torch.bool, device=feats.device)
        for axis, count, width in ((1, self.freq_masks, self.freq_width), (2, self.time_masks, self.time_width)):
            size = mask.shape[axis]
            for _ in range(count):
                w = torch.randint(0, min(width, size) + 1, (mask.shape[0], 1), device=feats.device)
                start = (torch.rand(mask.shape[0], 1, device=feats.device) * (size - w + 1)).long()
                pos = torch.arange(size, device=feats.device)
                hit = (pos >= start) & (pos < start + w)
                mask |= hit.unsqueeze(2) if axis == 1 else hit.unsqueeze(1)
        mask = mask.view(mask.shape[0], *([1] * (feats.dim() - 3)), *mask.shape[1:])
        return feats.masked_fill(mask, self.value)
