"""Pyramid depthwise convolution (PydMobileNet, Hoang & Jo 2019).

Parallel depthwise convolutions with growing kernels (3x3, 5x5, 7x7 by default) over the same input, merged by
element-wise addition (``"add"``: the channel count stays) or concatenation (``"concat"``: one copy per kernel).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

MERGES = ("add", "concat")


class PyramidDepthwiseConv2d(nn.Module):
    """Depthwise convolutions of several kernel sizes in parallel, merged by ``add`` or ``concat``.

    Args:
        channels: input channels (each kernel size gets one depthwise filter per channel).
        kernel_sizes: odd kernel sizes of the parallel branches, padded "same".
        stride: of every branch.
        merge: ``"add"`` (output ``channels``) or ``"concat"`` (output ``channels * len(kernel_sizes)``).

    Shape:
        ``(batch, channels, height, width)`` -> ``(batch, out_channels, height / stride, width / stride)``.
    """

    def __init__(self, channels: int, kernel_sizes: Sequence[int] = (3, 5, 7), stride: int = 1, merge: str = "add"):
        super().__init__()
        if merge not in MERGES:
            raise ValueError(f"merge must be one of {MERGES}, got {merge!r}")
        if any(k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"kernel sizes must be odd so that 'same' padding is symmetric, got {kernel_sizes}")
        self.merge = merge
        self.branches = nn.ModuleList(
            nn.Conv2d(channels, channels, k, stride=stride, padding=k // 2, groups=channels, bias=False)
            for k in kernel_sizes
        )
        self.out_channels = channels * (len(kernel_sizes) if merge == "concat" else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self.branches]
        return torch.cat(outs, dim=1) if self.merge == "concat" else torch.stack(outs).sum(0)
