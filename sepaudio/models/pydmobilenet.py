"""PydMobileNet (Hoang & Jo 2019, arXiv 1811.07083): MobileNet blocks with a pyramid of depthwise kernels.

Pre-activation residual block: BN -> ReLU -> 1x1 conv to ``d = alpha * C`` -> BN -> ReLU -> parallel depthwise
3x3 / 5x5 / 7x7 (strided) merged by add (``d`` channels) or concat (``3d``) -> BN -> ReLU -> 1x1 conv to ``C``
-> BN, plus the input (through a strided 1x1 conv + BN where the shape changes). CIFAR network: BN (no affine)
-> conv 3x3 to 32 -> three stages of 32 / 64 / 128 channels with ``(depth - 2) / 9`` blocks each (stride 2 at
the second and third) -> BN -> ReLU -> global average pool -> linear.
"""
from __future__ import annotations

from torch import nn

from ..nn import PyramidDepthwiseConv2d
from .base import register_model
from .classifier import Backbone

STAGES = ((32, 1), (64, 2), (128, 2))


def bn_relu(channels: int) -> nn.Sequential:
    """BatchNorm -> ReLU. Shape: ``(B, channels, H, W)`` -> same."""
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class PydBlock(nn.Module):
    """Pre-activation pyramid depthwise residual block (see the module docstring).

    Args:
        in_channels: input channels.
        out_channels: output channels (``C``).
        stride: of the depthwise pyramid (and of the residual's 1x1 conv).
        alpha: expansion of the inner width ``d = alpha * out_channels``.
        merge: ``"add"`` or ``"concat"`` of the pyramid branches.

    Shape:
        ``(batch, in_channels, H, W)`` -> ``(batch, out_channels, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, alpha: float, merge: str):
        super().__init__()
        inner = max(1, int(round(alpha * out_channels)))
        pyramid = PyramidDepthwiseConv2d(inner, (3, 5, 7), stride=stride, merge=merge)
        self.body = nn.Sequential(
            bn_relu(in_channels), nn.Conv2d(in_channels, inner, 1, bias=False),
            bn_relu(inner), pyramid,
            bn_relu(pyramid.out_channels), nn.Conv2d(pyramid.out_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels))
        if stride != 1 or in_channels != out_channels:
            self.skip = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                      nn.BatchNorm2d(out_channels))
        else:
            self.skip = nn.Identity()

    def forward(self, x):
        return self.body(x) + self.skip(x)


@register_model("pydmobilenet")
class PydMobileNet(Backbone):
    """PydMobileNet (CIFAR layout) for any number of input channels and classes.

    Args:
        num_classes: outputs of the classifier.
        in_chans: input channels.
        depth: 29 or 56 (3 or 6 blocks per stage); any ``9 n + 2``.
        alpha: inner-width multiplier of every block.
        merge: ``"add"`` or ``"concat"`` of the pyramid branches.

    Shape:
        ``(batch, in_chans, height, width)`` -> logits ``(batch, num_classes)``.
    """

    def __init__(self, num_classes: int = 10, in_chans: int = 3, depth: int = 29, alpha: float = 1.0,
                 merge: str = "add"):
        super().__init__()
        if (depth - 2) % 9:
            raise ValueError(f"depth must be 9 n + 2 (29, 56, ...), got {depth}")
        per_stage = (depth - 2) // 9
        layers = [nn.BatchNorm2d(in_chans, affine=False), nn.Conv2d(in_chans, 32, 3, padding=1, bias=False)]
        channels = 32
        for width, stride in STAGES:
            for i in range(per_stage):
                layers.append(PydBlock(channels, width, stride if i == 0 else 1, alpha, merge))
                channels = width
        layers.append(bn_relu(channels))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


def _variant(name: str, merge: str, depth: int):
    @register_model(name)
    def build(**kwargs) -> PydMobileNet:
        return PydMobileNet(merge=merge, depth=depth, **kwargs)

    build.__name__ = name
    build.__doc__ = f"PydMobileNet-{depth} with {merge} merge (pass alpha= to change the inner width)."
    return build


pydmobilenet_add29 = _variant("pydmobilenet_add29", "add", 29)
pydmobilenet_add56 = _variant("pydmobilenet_add56", "add", 56)
pydmobilenet_concat29 = _variant("pydmobilenet_concat29", "concat", 29)
pydmobilenet_concat56 = _variant("pydmobilenet_concat56", "concat", 56)
