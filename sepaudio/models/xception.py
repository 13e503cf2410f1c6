"""Xception (Chollet 2017), laid out as Keras Applications / timm ``legacy_xception`` (weights load one-to-one).

Entry flow: conv 32 3x3 s2 valid -> conv 64 3x3 valid (BN + ReLU each), blocks of 128, 256, 728 channels.
Middle flow: 8 blocks of 3 x (ReLU -> separable 728 -> BN) with identity residuals. Exit flow: a 728 -> 1024 block,
separable 1536 and 2048 (BN + ReLU each), global average pool, linear classifier. No conv has a bias.
At 3 x 299 x 299 and 1000 classes: 22,855,952 trainable parameters (BN statistics are buffers).
"""
from __future__ import annotations

from torch import nn

from ..nn import SeparableConv2d
from .base import register_model
from .classifier import Backbone


class XceptionBlock(nn.Module):
    """``reps`` x ([ReLU ->] separable 3x3 -> BN), [max-pool 3 s2], + residual (1x1 strided conv + BN if needed).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        reps: separable convolutions in the block.
        stride: 2 ends the block with a 3x3 max-pool and makes the residual a strided 1x1 conv.
        start_with_relu: the first block of the entry flow starts without ReLU.
        grow_first: the first conv changes the width (else the last one does, as in the exit flow).

    Shape:
        ``(batch, in_channels, H, W)`` -> ``(batch, out_channels, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, reps: int, stride: int = 1, start_with_relu: bool = True,
                 grow_first: bool = True):
        super().__init__()
        if out_channels != in_channels or stride != 1:
            self.skip = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                      nn.BatchNorm2d(out_channels))
        else:
            self.skip = nn.Identity()
        widths = [in_channels] + ([out_channels] * reps if grow_first else [in_channels] * (reps - 1) + [out_channels])
        layers = []
        for i in range(reps):
            if i > 0 or start_with_relu:
                layers.append(nn.ReLU(inplace=i > 0))
            layers += [SeparableConv2d(widths[i], widths[i + 1], 3), nn.BatchNorm2d(widths[i + 1])]
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, padding=1))
        self.rep = nn.Sequential(*layers)

    def forward(self, x):
        return self.rep(x) + self.skip(x)


def sep_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """Separable 3x3 -> BN -> ReLU. Shape: ``(B, in_channels, H, W)`` -> ``(B, out_channels, H, W)``."""
    return nn.Sequential(SeparableConv2d(in_channels, out_channels, 3), nn.BatchNorm2d(out_channels),
                         nn.ReLU(inplace=True))


@register_model("xception")
class Xception(Backbone):
    """Xception for any number of input channels and classes.

    Args:
        num_classes: outputs of the classifier.
        in_chans: input channels (1 for a spectrogram, 3 for RGB).
        middle_blocks: blocks in the middle flow (8 in the paper).

    Shape:
        ``(batch, in_chans, height, width)`` -> logits ``(batch, num_classes)``; height and width at least 32.
    """

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, middle_blocks: int = 8):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, 32, 3, stride=2, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(
            XceptionBlock(64, 128, 2, 2, start_with_relu=False),
            XceptionBlock(128, 256, 2, 2),
            XceptionBlock(256, 728, 2, 2),
            *(XceptionBlock(728, 728, 3, 1) for _ in range(middle_blocks)),
            XceptionBlock(728, 1024, 2, 2, grow_first=False),
            sep_bn_relu(1024, 1536),
            sep_bn_relu(1536, 2048))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.blocks(self.stem(x))).flatten(1))
