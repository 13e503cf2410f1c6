"""MiTAS (Tuan et al., arXiv 1912.03884): Conv-TasNet compressed by weight sharing in its TCN."""
from __future__ import annotations

from .base import register_model
from .conv_tasnet import ConvTasNet


@register_model("mitas")
class MiTAS(ConvTasNet):
    """Conv-TasNet whose depthwise convolutions are shared across the dilations of a stack and whose pointwise
    (1x1) convolutions are shared across stacks: the block at position x of every stack uses the same 1x1 weights.
    Norms and PReLUs stay per block. The 1x1 convolutions hold most of the separator's weights, so the separator
    shrinks by about ``repeats``.

    Args:
        share: ``both`` (MiTAS), or ``pointwise`` / ``depthwise`` for one kind of sharing alone.
        **kwargs: every other argument of :class:`ConvTasNet` (``n_src``, ``sample_rate``, ``n_filters``,
            ``bottleneck``, ``hidden``, ``blocks``, ``repeats``, ...), with the same defaults.

    Shape:
        ``(batch, time)`` -> ``(batch, n_src, time)``.
    """

    def __init__(self, share: str = "both", **kwargs):
        super().__init__(share=share, **kwargs)
