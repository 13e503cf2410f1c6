"""Building blocks. Nothing here knows about files or the command line."""
from .augment import SpecAugment
from .conv import SeparableConv1d, SeparableConv2d, make_activation, pad_amounts
from .fusion import SpeakerFusion
from .norms import ChannelwiseLayerNorm, CumulativeLayerNorm, GlobalLayerNorm, make_norm
from .pyramid import PyramidDepthwiseConv2d
from .speaker_encoder import SpeakerEncoder, SpeakerResBlock
from .slicenet import ConvModule, ConvStep, SliceNetAttention, SliceNetConfig, SliceNetMasker
from .streaming import Streamer, StreamingStep
from .tcn import TCN, TCNBlock, TCNConfig, TCNMasker

__all__ = [
    "SeparableConv1d", "SeparableConv2d", "make_activation", "pad_amounts", "SpeakerFusion",
    "GlobalLayerNorm", "CumulativeLayerNorm", "ChannelwiseLayerNorm", "make_norm", "TCN", "TCNBlock", "TCNConfig",
    "TCNMasker", "PyramidDepthwiseConv2d", "SpeakerEncoder", "SpeakerResBlock", "SpecAugment",
    "StreamingStep", "Streamer", "ConvStep", "ConvModule", "SliceNetAttention", "SliceNetConfig", "SliceNetMasker",
]
