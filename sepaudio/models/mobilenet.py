"""MobileNet v1 (Howard et al. 2017), laid out as timm's ``mobilenetv1_100`` so its weights load one-to-one.

Stem conv 3x3 stride 2, then 13 depthwise separable blocks (depthwise 3x3 -> BN -> ReLU6 -> pointwise -> BN
-> ReLU6) of widths 64, 128s, 128, 256s, 256, 512s, 5x512, 1024s, 1024 (s = stride 2), global average pool,
dropout, linear classifier. Strided layers pad 1 pixel on every side (PyTorch / timm); Keras pads bottom-right
only, which changes no parameter. At 1000 classes: 4,231,976 parameters at width 1.0, 470,072 at width 0.25.
"""
from __future__ import annotations

from torch import nn

from ..nn import SeparableConv2d
from .base import register_model
from .classifier import Backbone

#: (output width, stride) of the 13 depthwise separable blocks at width 1.0
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1),
          (512, 1), (1024, 2), (1024, 1))


def conv_bn_relu6(conv: nn.Module, channels: int) -> nn.Sequential:
    """``conv`` -> BatchNorm -> ReLU6. Shape: ``(B, C_in, H, W)`` -> ``(B, channels, H', W')``."""
    return nn.Sequential(conv, nn.BatchNorm2d(channels), nn.ReLU6(inplace=True))


@register_model("mobilenet_v1")
class MobileNetV1(Backbone):
    """MobileNet v1 for any number of input channels and classes.

    Args:
        num_classes: outputs of the classifier.
        in_chans: input channels (1 for a log-mel spectrogram, 3 for RGB).
        width: width multiplier alpha (1.0, 0.75, 0.5, 0.25); every layer has ``int(channels * width)``.
        drop_rate: dropout before the classifier.

    Shape:
        ``(batch, in_chans, height, width)`` -> logits ``(batch, num_classes)``.
    """

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, width: float = 1.0, drop_rate: float = 0.0):
        super().__init__()
        channels = int(32 * width)
        layers = [conv_bn_relu6(nn.Conv2d(in_chans, channels, 3, stride=2, padding=1, bias=False), channels)]
        for out, stride in BLOCKS:
            out = int(out * width)
            dw_bn_relu6 = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU6(inplace=True))
            sep = SeparableConv2d(channels, out, 3, stride=stride, activation=dw_bn_relu6)
            layers.append(conv_bn_relu6(sep, out))
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(self.dropout(self.pool(self.features(x)).flatten(1)))


def _variant(name: str, width: float):
    @register_model(name)
    def build(**kwargs) -> MobileNetV1:
        return MobileNetV1(width=width, **kwargs)

    build.__name__ = name
    build.__doc__ = f"MobileNet v1 at width {width}."
    return build


mobilenet_v1_100 = _variant("mobilenet_v1_100", 1.0)
mobilenet_v1_075 = _variant("mobilenet_v1_075", 0.75)
mobilenet_v1_050 = _variant("mobilenet_v1_050", 0.5)
mobilenet_v1_025 = _variant("mobilenet_v1_025", 0.25)
