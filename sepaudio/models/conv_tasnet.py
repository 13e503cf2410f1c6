"""Conv-TasNet (Luo & Mesgarani 2019): learned encoder, TCN masker, learned decoder."""
from __future__ import annotations

import torch

from ..filterbanks import make_filterbank
from ..nn import TCNMasker
from .base import EncoderMaskerDecoder, register_model


@register_model("conv_tasnet")
class ConvTasNet(EncoderMaskerDecoder):
    """Conv-TasNet. Defaults are torchaudio's (4,984,881 parameters for two sources).

    Args:
        n_src: sources to separate.
        sample_rate: of the input.
        filterbank: encoder / decoder kind (see :mod:`sepaudio.filterbanks`).
        n_filters, kernel_size, stride: N, L and hop of the encoder.
        bottleneck, hidden, skip_channels, conv_kernel, blocks, repeats: B, H, Sc, P, X, R of the TCN.
        norm: ``gLN`` (non-causal) or ``cLN`` / ``cwLN`` (causal).
        causal: causal depthwise convolutions.
        mask_act: ``sigmoid`` | ``relu`` | ``softmax``.
        share: TCN weight sharing (``none``; see :class:`sepaudio.models.mitas.MiTAS`).

    Shape:
        ``(batch, time)`` -> ``(batch, n_src, time)``.
    """

    def __init__(
        self,
        n_src: int = 2,
        sample_rate: int = 8000,
        filterbank: str = "free",
        n_filters: int = 512,
        kernel_size: int = 16,
        stride: int | None = None,
        bottleneck: int = 128,
        hidden: int = 512,
        skip_channels: int = 128,
        conv_kernel: int = 3,
        blocks: int = 8,
        repeats: int = 3,
        norm: str = "gLN",
        causal: bool = False,
        mask_act: str = "sigmoid",
        share: str = "none",
    ):
        encoder, decoder = make_filterbank(filterbank, n_filters, kernel_size, stride, sample_rate)
        masker = TCNMasker(encoder.filterbank.n_feats_out, n_src, bottleneck, hidden, skip_channels, conv_kernel,
                           blocks, repeats, norm, causal, mask_act, share=share)
        super().__init__(encoder, masker, decoder, sample_rate)

    @classmethod
    def from_torchaudio(cls, model: torch.nn.Module, sample_rate: int = 8000) -> "ConvTasNet":
        """Build a ConvTasNet carrying the weights of a ``torchaudio.models.ConvTasNet``.

        The two give the same output on the same input (to float32 rounding).
        """
        gen = model.mask_generator
        first = gen.conv_layers[0].conv_layers
        ours = cls(
            n_src=model.num_sources,
            sample_rate=sample_rate,
            n_filters=model.enc_num_feats,
            kernel_size=model.enc_kernel_size,
            stride=model.enc_stride,
            bottleneck=gen.input_conv.out_channels,
            hidden=first[0].out_channels,
            skip_channels=gen.conv_layers[0].skip_out.out_channels,
            conv_kernel=first[3].kernel_size[0],
            blocks=len(gen.conv_layers) // _stacks(gen),
            repeats=_stacks(gen),
            mask_act=type(gen.mask_activate).__name__.lower(),
        )
        ours.load_state_dict(_torchaudio_state_dict(model))
        return ours


def _stacks(gen) -> int:
    """Every stack starts with a dilation-1 block."""
    return sum(1 for layer in gen.conv_layers if layer.conv_layers[3].dilation[0] == 1)


_BLOCK_KEYS = {"conv_layers.0": "in_conv", "conv_layers.1": "prelu1", "conv_layers.2": "norm1",
               "conv_layers.3": "depthwise", "conv_layers.4": "prelu2", "conv_layers.5": "norm2",
               "res_out": "res_conv", "skip_out": "skip_conv"}
_TOP_KEYS = {"encoder.weight": "encoder.filterbank._filters", "decoder.weight": "decoder.filterbank._filters",
             "mask_generator.input_norm": "masker.input_norm", "mask_generator.input_conv": "masker.bottleneck",
             "mask_generator.output_prelu": "masker.output_prelu",
             "mask_generator.output_conv": "masker.output_conv"}


def _torchaudio_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Rename torchaudio ConvTasNet weights to this implementation's names."""
    out = {}
    for key, value in model.state_dict().items():
        if key.startswith("mask_generator.conv_layers."):
            index, rest = key[len("mask_generator.conv_layers."):].split(".", 1)
            module, param = rest.rsplit(".", 1)
            out[f"masker.tcn.blocks.{index}.{_BLOCK_KEYS[module]}.{param}"] = value
            continue
        for old, new in _TOP_KEYS.items():
            if key.startswith(old):
                out[new + key[len(old):]] = value
                break
        else:
            raise KeyError(f"unexpected torchaudio ConvTasNet weight {key!r}")
    return out
