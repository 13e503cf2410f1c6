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

    Takes the arguments of :class:`ConvTasNet`, with the same defaults except the ``tcn`` field ``share``:
    ``both`` (MiTAS) unless the ``tcn`` dict names ``pointwise`` / ``depthwise`` for one kind of sharing alone.

    Shape:
        ``(batch, time)`` -> ``(batch, n_src, time)``.
    """

    tcn_defaults = {"share": "both"}
