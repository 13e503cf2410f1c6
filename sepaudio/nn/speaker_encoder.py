"""A speaker encoder learned jointly with the extractor (SpEx+ style), built from depthwise separable convolutions."""
from __future__ import annotations

import torch
from torch import nn

from .conv import SeparableConv1d
from .norms import make_norm


class SpeakerResBlock(nn.Module):
    """Separable conv -> BN -> PReLU -> separable conv -> BN, + residual (1x1 when widths differ), PReLU, max-pool 3.

    Shape: ``(batch, in_channels, frames)`` -> ``(batch, out_channels, frames // 3)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.body = nn.Sequential(
            SeparableConv1d(in_channels, out_channels, kernel_size), nn.BatchNorm1d(out_channels), nn.PReLU(),
            SeparableConv1d(out_channels, out_channels, kernel_size), nn.BatchNorm1d(out_channels),
        )
        self.shortcut = nn.Conv1d(in_channels, out_channels, 1, bias=False) if in_channels != out_channels else None
        self.out = nn.Sequential(nn.PReLU(), nn.MaxPool1d(3, ceil_mode=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.shortcut is None else self.shortcut(x)
        return self.out(self.body(x) + residual)


class SpeakerEncoder(nn.Module):
    """Encoded enrollment -> one speaker embedding: LN -> 1x1 -> residual blocks -> 1x1 -> mean over time.

    Args:
        in_channels: channels of the (shared) waveform encoder's output.
        embedding_dim: size of the embedding.
        channels: width of the residual blocks.
        blocks: residual blocks (each pools time by 3).

    Shape:
        ``(batch, in_channels, frames)`` -> ``(batch, embedding_dim)``.
    """

    def __init__(self, in_channels: int, embedding_dim: int = 100, channels: int = 256, blocks: int = 3):
        super().__init__()
        self.input = nn.Sequential(make_norm("cwLN", in_channels), nn.Conv1d(in_channels, channels, 1))
        self.blocks = nn.Sequential(*[SpeakerResBlock(channels, channels) for _ in range(blocks)])
        self.output = nn.Conv1d(channels, embedding_dim, 1)

    def forward(self, rep: torch.Tensor) -> torch.Tensor:
        return self.output(self.blocks(self.input(rep))).mean(-1)
