"""Conv-TasNet (Luo & Mesgarani 2019): learned encoder, TCN masker, learned decoder."""
from __future__ import annotations

from dataclasses import fields

import torch
import torch.nn.functional as F
from asteroid_filterbanks import Encoder

from ..filterbanks import make_filterbank
from ..nn import TCNConfig, TCNMasker
from .base import EncoderMaskerDecoder, register_model

#: format-1 model arguments (flat) -> fields of the ``tcn`` dict
_V1_TCN_NAMES = {"bottleneck": "channels", "hidden": "hidden", "skip_channels": "skip_channels",
                 "conv_kernel": "kernel_size", "blocks": "blocks", "repeats": "repeats", "norm": "norm",
                 "causal": "causal", "share": "share"}


def tcn_config(tcn: dict | None, defaults: dict) -> TCNConfig:
    """The :class:`TCNConfig` of a model's ``tcn`` argument: its fields over the model's ``defaults``."""
    if isinstance(tcn, TCNConfig):  # the model's arguments are saved as plain values
        raise TypeError("pass tcn as a dict of TCNConfig fields, e.g. dataclasses.asdict(config)")
    tcn, known = dict(tcn or {}), [field.name for field in fields(TCNConfig)]
    unknown = sorted(set(tcn) - set(known))
    if unknown:
        raise ValueError(f"tcn: unknown field(s) {unknown}; known: {known}")
    return TCNConfig(**{**defaults, **tcn})


def upgrade_tcn_args(cls, args: dict, version: int) -> dict:
    """``upgrade_args`` of the models with a TCN: map format-1 arguments (``kernel_size`` = L, flat ``bottleneck``,
    ``conv_kernel``, ...) to the current ones (``filter_length`` and a ``tcn`` dict)."""
    if version >= 2:
        return args
    args = dict(args)
    tcn = {new: args.pop(old) for old, new in _V1_TCN_NAMES.items() if old in args}
    if "kernel_size" in args:
        args["filter_length"] = args.pop("kernel_size")
    return {**args, "tcn": tcn}


ENCODER_ACTIVATIONS = (None, "relu")
FRAMINGS = ("centered", "asteroid")


class ReLUEncoder(Encoder):
    """An asteroid-filterbanks encoder followed by a ReLU (same weights and names as the plain one).

    Shape: as :class:`asteroid_filterbanks.Encoder`.
    """

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return torch.relu(super().forward(waveform))


@register_model("conv_tasnet")
class ConvTasNet(EncoderMaskerDecoder):
    """Conv-TasNet. Defaults are torchaudio's (4,984,881 parameters for two sources).

    Args:
        n_src: sources to separate.
        sample_rate: of the input.
        filterbank: encoder / decoder kind (see :mod:`sepaudio.filterbanks`).
        n_filters: N, the encoder's filters.
        filter_length: L, the encoder's window in samples.
        stride: the encoder's hop (default L/2).
        mask_act: ``sigmoid`` | ``relu`` | ``softmax``.
        tcn: fields of :class:`~sepaudio.nn.TCNConfig` (B, H, Sc, P, X, R, norm, causal, share) over
            ``tcn_defaults``; causal models take ``norm: cLN`` or ``cwLN``.
        encoder_activation: ``None`` or ``relu``, applied to the encoder output that the masker reads and the
            masks multiply (Asteroid's ``encoder_activation``).
        framing: ``centered``: ``L // 2`` zeros at both ends and the end padded so that the frames cover every
            sample (torchaudio's convention); ``asteroid``: no padding, frames only over whole windows of the
            input, and the samples after the last whole window come out as zeros (Asteroid's convention, which
            its trained models need to give their outputs exactly).

    Shape:
        ``(batch, time)`` -> ``(batch, n_src, time)``.
    """

    #: TCN fields a ``tcn`` argument is laid over
    tcn_defaults: dict = {}
    upgrade_args = classmethod(upgrade_tcn_args)

    def __init__(
        self,
        n_src: int = 2,
        sample_rate: int = 8000,
        filterbank: str = "free",
        n_filters: int = 512,
        filter_length: int = 16,
        stride: int | None = None,
        mask_act: str = "sigmoid",
        tcn: dict | None = None,
        encoder_activation: str | None = None,
        framing: str = "centered",
    ):
        if encoder_activation not in ENCODER_ACTIVATIONS:
            raise ValueError(f"unknown encoder_activation {encoder_activation!r}; choose one of {ENCODER_ACTIVATIONS}")
        if framing not in FRAMINGS:
            raise ValueError(f"unknown framing {framing!r}; choose one of {FRAMINGS}")
        encoder, decoder = make_filterbank(filterbank, n_filters=n_filters, filter_length=filter_length, stride=stride,
                                           sample_rate=sample_rate)
        if encoder_activation == "relu":
            encoder = ReLUEncoder(encoder.filterbank, padding=encoder.padding)
        if framing == "asteroid":
            encoder.padding = decoder.padding = 0
        masker = TCNMasker(encoder.filterbank.n_feats_out, n_src, tcn_config(tcn, self.tcn_defaults),
                           mask_act=mask_act)
        super().__init__(encoder, masker, decoder, sample_rate)
        self.framing = framing

    def forward(self, wav: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Separate; the output is as long as the input in both framings.

        Shape: ``(batch, time)`` | ``(time)`` | ``(batch, 1, time)`` -> ``(batch, n_src, time)`` | ``(n_src, time)``.
        """
        est = super().forward(wav, cond)
        missing = wav.shape[-1] - est.shape[-1]  # asteroid framing: the samples after the last whole window
        return F.pad(est, (0, missing)) if missing > 0 else est

    def pad(self, wav: torch.Tensor) -> torch.Tensor:
        """As :meth:`EncoderMaskerDecoder.pad`; with ``framing="asteroid"`` only an input shorter than one window
        is padded (to one window).

        Shape: ``(batch, time)`` -> ``(batch, time + extra)``.
        """
        if self.framing == "centered":
            return super().pad(wav)
        short = self.encoder.filterbank.kernel_size - wav.shape[-1]
        return F.pad(wav, (0, short)) if short > 0 else wav

    def streamer(self, cond: torch.Tensor | None = None, batch: int = 1, precision: str | None = "fp32",
                 engine: str = "torch"):
        """As :meth:`EncoderMaskerDecoder.streamer`, for the ``centered`` framing without encoder activation.

        Raises:
            ValueError: an ``asteroid`` framing or an encoder activation (the stream step knows neither).
        """
        if self.framing != "centered" or isinstance(self.encoder, ReLUEncoder):
            raise ValueError("streaming takes Conv-TasNets of framing='centered' without encoder_activation; this "
                             "one (converted from Asteroid?) runs whole recordings or chunks only")
        return super().streamer(cond, batch, precision, engine)

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
            filter_length=model.enc_kernel_size,
            stride=model.enc_stride,
            mask_act=type(gen.mask_activate).__name__.lower(),
            tcn=dict(
                channels=gen.input_conv.out_channels,
                hidden=first[0].out_channels,
                skip_channels=gen.conv_layers[0].skip_out.out_channels,
                kernel_size=first[3].kernel_size[0],
                blocks=len(gen.conv_layers) // _stacks(gen),
                repeats=_stacks(gen),
            ),
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
