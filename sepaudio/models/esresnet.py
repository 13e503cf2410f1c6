"""ESResNet (Guzhov et al. 2020, arXiv 2004.07301): ResNet-50 on log-power STFT bands, with optional attention.

The backbone is torchvision's ResNet-50 (``pretrained=True`` fetches its ImageNet weights where the machine can
download them) with ``fc -> Linear(2048, num_classes)``. The attention variant adds, after each ResNet stage, a
depthwise separable block on the stage's input, max-pooled to the stage's output size: depthwise conv (kernels
(3,1), (1,5), (3,1), (1,5), and (3,5) after the global pool) -> pointwise 1x1 -> BN -> sigmoid, multiplied onto
the output. Parameters at 10 classes: 23,528,522 without, 30,552,138 with attention.

``esresnet`` / ``esresnet_attention`` are full audio classifiers: 44.1 kHz audio -> STFT (n_fft 2048, hop 561,
window 1654 Blackman-Harris) in dB -> 3 bands of 341 bins as channels -> backbone.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import register_model
from .classifier import Backbone, SpectrogramClassifier

#: (kernel, padding) of the attention blocks after layer1..layer4 and after the global pool
ATTENTION_KERNELS = (((3, 1), (1, 0)), ((1, 5), (0, 2)), ((3, 1), (1, 0)), ((1, 5), (0, 2)), ((3, 5), (1, 2)))


class Attention2d(nn.Module):
    """Max-pool to a size -> depthwise conv -> pointwise 1x1 -> BN -> sigmoid (ESResNet's attention block).

    Shape: ``(batch, in_channels, H, W)``, size ``(h, w)`` -> ``(batch, out_channels, h, w)`` in (0, 1).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int], padding: tuple[int, int]):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, padding=padding, groups=in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = F.adaptive_max_pool2d(x, size)
        return torch.sigmoid(self.bn(self.pointwise(self.depthwise(x))))


@register_model("resnet50")
class ResNet50(Backbone):
    """torchvision ResNet-50 with ``num_classes`` outputs, ``in_chans`` inputs and ESResNet's optional attention.

    Args:
        num_classes: outputs of the final linear layer.
        in_chans: input channels; with ``pretrained`` and ``in_chans != 3`` the first conv's RGB weights are
            summed (1 channel) or tiled and rescaled (timm's rule).
        attention: add ESResNet's depthwise separable attention blocks.
        pretrained: start from torchvision's ImageNet weights (downloads them once; needs internet).

    Shape:
        ``(batch, in_chans, height, width)`` -> logits ``(batch, num_classes)``.
    """

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, attention: bool = False, pretrained: bool = False):
        super().__init__()
        from torchvision.models import ResNet50_Weights, resnet50  # lazy: importing torchvision takes ~1.5 s

        net = resnet50(weights=ResNet50_Weights.IMAGENET1K_V1 if pretrained else None)
        if in_chans != 3:
            rgb = net.conv1.weight.data
            net.conv1 = nn.Conv2d(in_chans, 64, 7, stride=2, padding=3, bias=False)
            if pretrained:
                adapted = rgb.sum(1, keepdim=True) if in_chans == 1 else rgb.repeat(1, -(-in_chans // 3), 1, 1)
                net.conv1.weight.data = adapted[:, :in_chans] * (1.0 if in_chans == 1 else 3.0 / in_chans)
        net.fc = nn.Linear(net.fc.in_features, num_classes)
        self.net = net
        if attention:
            widths = (64, 256, 512, 1024, 2048, 2048)
            self.attention = nn.ModuleList(
                Attention2d(widths[i], widths[i + 1], kernel, pad) for i, (kernel, pad) in enumerate(ATTENTION_KERNELS))
        else:
            self.attention = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        for i, stage in enumerate((net.layer1, net.layer2, net.layer3, net.layer4)):
            y = stage(x)
            x = y if self.attention is None else y * self.attention[i](x, y.shape[-2:])
        y = net.avgpool(x)
        if self.attention is not None:
            y = y * self.attention[4](x, y.shape[-2:])
        return net.fc(y.flatten(1))


def _esresnet(attention: bool, **kwargs) -> SpectrogramClassifier:
    kwargs.setdefault("sample_rate", 44100)
    backbone_args = {"attention": attention, **kwargs.pop("backbone_args", {})}
    return SpectrogramClassifier("resnet50", frontend="stft_bands", backbone_args=backbone_args, **kwargs)


@register_model("esresnet")
def esresnet(**kwargs) -> SpectrogramClassifier:
    """ESResNet: STFT bands + ResNet-50 (keyword arguments as :class:`SpectrogramClassifier`'s)."""
    return _esresnet(False, **kwargs)


@register_model("esresnet_attention")
def esresnet_attention(**kwargs) -> SpectrogramClassifier:
    """ESResNet with depthwise separable attention blocks."""
    return _esresnet(True, **kwargs)
