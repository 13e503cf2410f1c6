"""SwishNet (Hussain & Haque 2018, arXiv 1812.00149): a tiny causal 1-D CNN for speech / music / noise.

Figure 1, as built here (widths for ``width=1``, "slim"; ``width=2``, "wide", doubles every one):

=====  ====================================================================  ==========
block  layers (every conv causal, then tanh(a) * sigmoid(b) halving filters)  output ch
=====  ====================================================================  ==========
B1     conv 16 k3  ||  separable conv 16 k6, concatenated                     16
B2     conv 8 k3   ||  separable conv 8 k6, concatenated                      8
B3     as B2, + B2's output (residual)                                        8
B4     conv 16 k3 dilation 3, + residual                                      8
B5     conv 16 k3 dilation 2, + residual                                      8
B6     conv 16 k3 dilation 2, + residual                                      8
B7     conv 16 k3 dilation 2                                                  8
B8     conv 32 k3 dilation 2                                                  16
head   concat(B5, B6, B7, B8) -> 1x1 conv to classes -> mean over time        classes
=====  ====================================================================  ==========

Dilations instead of the paper's "strides" keep every frame, so the residual adds line up (as public
re-implementations do). Separable convs carry one bias, after the pointwise conv (Keras ``SeparableConv1D``).
Parameters with 20 MFCCs and 3 classes: **4,899** (slim) / **15,819** (wide), exactly the "natural reading" of
figure 1. The paper reports 5,483 / 18,267 (584 / 2,448 more); the figure does not show where the difference lies
(a bias on the depthwise convs would add only 44 / 68), so we keep the layout the figure draws.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..features import MFCC
from ..nn import SeparableConv1d, pad_amounts
from .base import register_model
from .classifier import AudioClassifier, resolve_labels


SMN_LABELS = ("speech", "music", "noise")


class GatedConv1d(nn.Module):
    """Causal convolution with ``2 * out_channels`` filters -> ``tanh(first half) * sigmoid(second half)``.

    Args:
        in_channels: input channels.
        out_channels: channels after gating (the conv has twice as many filters).
        kernel_size: of the causal convolution.
        dilation: of the causal convolution.
        separable: depthwise + pointwise (one bias, after the pointwise conv) instead of a regular conv.

    Shape:
        ``(batch, in_channels, frames)`` -> ``(batch, out_channels, frames)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1,
                 separable: bool = False):
        super().__init__()
        filters = 2 * out_channels
        if separable:
            self.conv = SeparableConv1d(in_channels, filters, kernel_size, dilation=dilation, padding="causal")
            self.bias = nn.Parameter(torch.zeros(filters))
        else:
            self.conv = nn.Conv1d(in_channels, filters, kernel_size, dilation=dilation)
            self.bias = None
        self.pad = pad_amounts(kernel_size, dilation, "causal")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            y = self.conv(F.pad(x, self.pad))
        else:
            y = self.conv(x) + self.bias.unsqueeze(-1)
        a, b = y.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)


class GatedPair(nn.Module):
    """A regular gated conv (k=3) beside a separable gated conv (k=6), outputs concatenated.

    Shape: ``(batch, in_channels, frames)`` -> ``(batch, filters, frames)`` (``filters / 2`` from each branch).
    """

    def __init__(self, in_channels: int, filters: int):
        super().__init__()
        self.regular = GatedConv1d(in_channels, filters // 2, 3)
        self.separable = GatedConv1d(in_channels, filters // 2, 6, separable=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.regular(x), self.separable(x)], dim=1)


class SwishNetBackbone(nn.Module):
    """Blocks B1-B8 and the 1x1 head of figure 1 (see the module docstring).

    Args:
        in_channels: feature channels (20 MFCCs).
        num_classes: outputs of the 1x1 head.
        width: 1 (slim) or 2 (wide): multiplies every filter count.
        dilations: of B4-B8.

    Shape:
        ``(batch, in_channels, frames)`` -> logits ``(batch, num_classes)``; :meth:`frame_logits` gives
        ``(batch, num_classes, frames)`` before the mean over time.
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 1, dilations: Sequence[int] = (3, 2, 2, 2, 2)):
        super().__init__()
        if len(dilations) != 5:
            raise ValueError(f"dilations: give one per block B4-B8 (5 values), got {list(dilations)}")
        w = width
        self.b1 = GatedPair(in_channels, 16 * w)
        self.b2 = GatedPair(16 * w, 8 * w)
        self.b3 = GatedPair(8 * w, 8 * w)
        self.b4, self.b5, self.b6, self.b7 = (GatedConv1d(8 * w, 8 * w, 3, dilation=d) for d in dilations[:4])
        self.b8 = GatedConv1d(8 * w, 16 * w, 3, dilation=dilations[4])
        self.head = nn.Conv1d(40 * w, num_classes, 1)

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.b2(self.b1(x))
        x = x + self.b3(x)
        x = x + self.b4(x)
        s5 = x = x + self.b5(x)
        s6 = x = x + self.b6(x)
        return self.head(torch.cat([s5, s6, self.b7(x), self.b8(x)], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.frame_logits(x).mean(-1)


@register_model("swishnet")
class SwishNet(AudioClassifier):
    """SwishNet on MFCCs (20 coefficients, 32 mel bands, 25 ms window, 10 ms hop), raw audio in.

    Args:
        num_classes: class count.
        labels: class names (neither given: speech, music, noise).
        sample_rate: of the input audio (16 kHz in the paper).
        width: 1 = slim (4,899 parameters at 3 classes), 2 = wide (15,819).
        n_mfcc: MFCC coefficients of the front-end.
        n_mels: mel bands of the front-end.
        dilations: of blocks B4-B8 (the paper's 3, 2, 2, 2, 2).
        spec_augment: SpecAugment arguments applied to the MFCCs while training, or ``None``.

    Shape:
        audio ``(batch, time)`` -> logits ``(batch, num_classes)``.
    """

    def __init__(self, num_classes: int | None = None, labels: Sequence[str] | None = None,
                 sample_rate: int = 16000, width: int = 1, n_mfcc: int = 20, n_mels: int = 32,
                 dilations: Sequence[int] = (3, 2, 2, 2, 2), spec_augment: dict | None = None):
        if num_classes is None and labels is None:
            labels = SMN_LABELS
        frontend = MFCC(sample_rate, n_mfcc=n_mfcc, n_mels=n_mels)
        labels = resolve_labels(num_classes, labels)
        backbone = SwishNetBackbone(n_mfcc, len(labels), width, dilations)
        super().__init__(frontend, backbone, labels, sample_rate, spec_augment)


@register_model("swishnet_slim")
def swishnet_slim(**kwargs) -> SwishNet:
    """SwishNet slim (width 1)."""
    return SwishNet(width=1, **kwargs)


@register_model("swishnet_wide")
def swishnet_wide(**kwargs) -> SwishNet:
    """SwishNet wide (width 2: every filter count doubled)."""
    return SwishNet(width=2, **kwargs)
