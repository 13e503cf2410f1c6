"""Normalisations for ``(batch, channels, time)`` tensors (Conv-TasNet's gLN, cLN and channel-wise LN)."""
from __future__ import annotations

import torch
from torch import nn

EPS = 1e-8


class GlobalLayerNorm(nn.GroupNorm):
    """gLN: statistics over channels and time, one gain and bias per channel (= GroupNorm with one group).

    Shape: ``(batch, channels, time)`` -> same.
    """

    def __init__(self, channels: int):
        super().__init__(1, channels, eps=EPS)


class CumulativeLayerNorm(nn.Module):
    """cLN: statistics over channels and frames ``0..t`` only, so frame ``t`` never sees the future (causal).

    Shape: ``(batch, channels, time)`` -> same.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        count = torch.arange(1, x.shape[-1] + 1, device=x.device, dtype=x.dtype) * x.shape[1]
        mean = x.sum(1, keepdim=True).cumsum(-1) / count
        power = x.pow(2).sum(1, keepdim=True).cumsum(-1) / count
        var = (power - mean.pow(2)).clamp_min(0)
        x = (x - mean) / torch.sqrt(var + EPS)
        return x * self.weight[:, None] + self.bias[:, None]


class ChannelwiseLayerNorm(nn.LayerNorm):
    """cwLN: statistics over channels, separately for every frame (causal).

    Shape: ``(batch, channels, time)`` -> same.
    """

    def __init__(self, channels: int):
        super().__init__(channels, eps=EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, -1)).transpose(1, -1)


NORMS = {"gLN": GlobalLayerNorm, "cLN": CumulativeLayerNorm, "cwLN": ChannelwiseLayerNorm, "BN": nn.BatchNorm1d}
CAUSAL_NORMS = {"cLN", "cwLN"}


def make_norm(name: str, channels: int) -> nn.Module:
    """Build a norm by name: ``gLN`` | ``cLN`` | ``cwLN`` | ``BN``."""
    if name not in NORMS:
        raise ValueError(f"unknown norm {name!r}; choose one of {sorted(NORMS)}")
    return NORMS[name](channels)
