"""SliceNet-TasNet: Conv-TasNet's learned encoder and decoder around a SliceNet masker (Kaiser, Gomez, Chollet 2017;
see :mod:`sepaudio.nn.slicenet`)."""
from __future__ import annotations

from dataclasses import fields

from ..errors import ConfigError
from ..filterbanks import make_filterbank
from ..nn.slicenet import SliceNetConfig, SliceNetMasker
from .base import EncoderMaskerDecoder, register_model


def slicenet_config(slicenet: dict | None, defaults: dict | None = None) -> SliceNetConfig:
    """The :class:`SliceNetConfig` of a model's ``slicenet`` argument: its fields over ``defaults``.

    Raises:
        ConfigError: an unknown field, or a bad value (see :class:`SliceNetConfig`).
    """
    given, known = dict(slicenet or {}), [field.name for field in fields(SliceNetConfig)]
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(f"slicenet: unknown field(s) {unknown}; known: {known}")
    return SliceNetConfig(**{**(defaults or {}), **given})


@register_model("slicenet_tasnet")
class SliceNetTasNet(EncoderMaskerDecoder):
    """Blind separation: learned encoder -> SliceNet masker (convolution modules, no attention: the paper's encoder
    side) -> learned decoder.

    Args:
        n_src: sources to separate.
        sample_rate: of the input.
        filterbank: encoder / decoder kind (see :mod:`sepaudio.filterbanks`).
        n_filters: N, the encoder's filters.
        filter_length: L, the encoder's window in samples.
        stride: the encoder's hop (default L/2).
        mask_act: ``sigmoid`` | ``relu`` | ``softmax``.
        slicenet: fields of :class:`~sepaudio.nn.slicenet.SliceNetConfig` (channels, kernel_sizes, dilations,
            modules, groups, attention_kernel, causal, share).

    Shape:
        ``(batch, time)`` -> ``(batch, n_src, time)``.
    """

    def __init__(self, n_src: int = 2, sample_rate: int = 8000, filterbank: str = "free", n_filters: int = 512,
                 filter_length: int = 16, stride: int | None = None, mask_act: str = "sigmoid",
                 slicenet: dict | None = None):
        encoder, decoder = make_filterbank(filterbank, n_filters=n_filters, filter_length=filter_length, stride=stride,
                                           sample_rate=sample_rate)
        masker = SliceNetMasker(encoder.filterbank.n_feats_out, n_src, slicenet_config(slicenet), mask_act=mask_act)
        super().__init__(encoder, masker, decoder, sample_rate)
