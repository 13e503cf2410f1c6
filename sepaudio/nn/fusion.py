"""Fusing a speaker vector into a ``(batch, channels, time)`` representation."""
from __future__ import annotations

import torch
from torch import nn

FUSIONS = ("concat", "add", "multiply", "film")


class SpeakerFusion(nn.Module):
    """Condition a representation on a per-utterance vector.

    ``concat`` (TseNet) repeats the vector over time and appends it as channels; ``add`` / ``multiply`` project it
    to the channel count and add / multiply; ``film`` projects it to a per-channel scale and shift.

    Args:
        kind: one of ``concat``, ``add``, ``multiply``, ``film``.
        channels: channels of the representation.
        cond_dim: size of the conditioning vector.

    Shape:
        x ``(batch, channels, time)``, cond ``(batch, cond_dim)`` -> ``(batch, out_channels, time)`` where
        ``out_channels`` is ``channels + cond_dim`` for concat, else ``channels``.
    """

    def __init__(self, kind: str, channels: int, cond_dim: int):
        super().__init__()
        if kind not in FUSIONS:
            raise ValueError(f"unknown fusion {kind!r}; choose one of {FUSIONS}")
        self.kind = kind
        self.out_channels = channels + cond_dim if kind == "concat" else channels
        if kind in ("add", "multiply"):
            self.proj = nn.Linear(cond_dim, channels)
        elif kind == "film":
            self.proj = nn.Linear(cond_dim, 2 * channels)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if self.kind == "concat":
            return torch.cat([x, cond.unsqueeze(-1).expand(-1, -1, x.shape[-1])], dim=1)
        proj = self.proj(cond).unsqueeze(-1)
        if self.kind == "add":
            return x + proj
        if self.kind == "multiply":
            return x * proj
        scale, shift = proj.chunk(2, dim=1)
        return x * scale + shift
