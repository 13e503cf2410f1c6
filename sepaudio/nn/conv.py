"""Depthwise separable convolutions (Chollet 2017), 1-D and 2-D.

A spatial convolution split into ``groups`` channel segments followed by a pointwise 1x1 convolution:
``groups=1`` is a regular convolution (+1x1), a few groups is Inception-like, ``groups=in_channels``
(the default) is depthwise separable.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

PADDINGS = ("same", "valid", "causal")


def make_activation(activation: str | nn.Module | None) -> nn.Module:
    """``None`` | ``"relu"`` | ``"elu"`` | ``"prelu"`` | a module -> module (Identity for ``None``)."""
    if activation is None:
        return nn.Identity()
    if isinstance(activation, nn.Module):
        return activation
    table = {"relu": nn.ReLU, "elu": nn.ELU, "prelu": nn.PReLU, "relu6": nn.ReLU6}
    if activation not in table:
        raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(table)} or None")
    return table[activation]()


def pad_amounts(kernel_size: int, dilation: int, padding: str) -> tuple[int, int]:
    """(left, right) zero padding of one axis. ``causal`` puts it all on the left (the past)."""
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    total = dilation * (kernel_size - 1)
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return total, 0
    return total // 2, total - total // 2


class _SeparableConv(nn.Module):
    _dims = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        dilation: int | Sequence[int] = 1,
        depth_multiplier: int = 1,
        groups: int | None = None,
        padding: str = "same",
        activation: str | nn.Module | None = None,
        bias: bool = False,
    ):
        super().__init__()
        n = self._dims
        self.kernel_size = _tuple(kernel_size, n)
        self.dilation = _tuple(dilation, n)
        groups = in_channels if groups is None else groups
        if in_channels % groups:
            raise ValueError(f"in_channels={in_channels} is not divisible into groups={groups}")
        # F.pad takes (last-axis left, last-axis right, second-to-last left, ...). Causal padding applies to the
        # last axis (time); any other axis is padded "same".
        pads = []
        for axis in reversed(range(n)):
            mode = padding if (padding != "causal" or axis == n - 1) else "same"
            pads.extend(pad_amounts(self.kernel_size[axis], self.dilation[axis], mode))
        self.pads = tuple(pads)
        conv = nn.Conv1d if n == 1 else nn.Conv2d
        self.depthwise = conv(
            in_channels, in_channels * depth_multiplier, self.kernel_size, stride=stride, dilation=self.dilation,
            groups=groups, bias=bias,
        )
        self.activation = make_activation(activation)
        self.pointwise = conv(in_channels * depth_multiplier, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pads):
            x = F.pad(x, self.pads)
        return self.pointwise(self.activation(self.depthwise(x)))


class SeparableConv1d(_SeparableConv):
    """Depthwise (or grouped) conv -> optional activation -> pointwise 1x1.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size, stride, dilation: of the spatial (depthwise) convolution.
        depth_multiplier: spatial filters per input channel.
        groups: channel segments of the spatial conv; ``None`` = ``in_channels`` (depthwise).
        padding: ``"same"`` | ``"valid"`` | ``"causal"`` (all padding on the past side).
        activation: between depthwise and pointwise: ``None`` (Xception's finding), ``"relu"``, ``"elu"``.
        bias: whether both convolutions have a bias.

    Shape:
        ``(batch, in_channels, time)`` -> ``(batch, out_channels, time')``.
    """

    _dims = 1


class SeparableConv2d(_SeparableConv):
    """2-D form of :class:`SeparableConv1d`; ``causal`` pads the last axis (time) on the past side only.

    Shape:
        ``(batch, in_channels, freq, time)`` -> ``(batch, out_channels, freq', time')``.
    """

    _dims = 2


def _tuple(value: int | Sequence[int], n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(value)
    if len(value) != n:
        raise ValueError(f"expected {n} values, got {value}")
    return value
