"""Building blocks. Nothing here knows about files or the command line."""
from .conv import SeparableConv1d, SeparableConv2d, make_activation, pad_amounts
from .fusion import SpeakerFusion
from .norms import ChannelwiseLayerNorm, CumulativeLayerNorm, GlobalLayerNorm, make_norm
from .pyramid import PyramidDepthwiseConv2d
from .tcn import TCN, TCNBlock, TCNMasker

__all__ = [
    "SeparableConv1d", "SeparableConv2d", "make_activation", "pad_amounts", "SpeakerFusion",
    "GlobalLayerNorm", "CumulativeLayerNorm", "ChannelwiseLayerNorm", "make_norm", "TCN", "TCNBlock", "TCNMasker",
    "PyramidDepthwiseConv2d",
]
