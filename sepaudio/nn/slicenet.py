"""SliceNet blocks (Kaiser, Gomez, Chollet 2017, "Depthwise Separable Convolutions for Neural Machine Translation",
arXiv 1706.03059) as a separator / extractor masker for 1-D audio frames.

What is taken from the paper and from its authors' code (tensor2tensor ``models/slicenet.py``):

- **Convolution step**: ``ConvStep_{d,k}(x) = LN(SepConv_{d,k}(ReLU(x)))``: ReLU of the input, a depthwise
  separable convolution of kernel ``k`` and dilation ``d`` (a depthwise convolution, then a pointwise 1x1), then layer
  normalisation over the channel (depth) axis with a learned scale and shift, for every frame on its own.
- **Super-separable convolution**: the channels are split into ``g`` groups and each group gets its own separable
  convolution, i.e. the pointwise 1x1 is grouped too (``groups=g``). As in tensor2tensor (separability ``-2``: its
  successive steps use different group counts, so the groups exchange information), the steps of a module alternate
  between ``g`` groups and a full pointwise convolution.
- **Convolution module**: steps in pairs, each pair a residual: ``h = x + S2(S1(x))``, ``out = h + S4(S3(h))``
  (tensor2tensor's ``multi_conv_res``: kernels ``3, 7, 15, 31`` is its ``kernel_scheme`` "3.7.15.31", dilations
  ``1, 1, 2, 4`` its ``dilation_scheme`` "1.1.2.4": windows and dilations grow along the module).
- **Attention module**: the target goes through ``ConvStep_{d=1,k=5}`` then ``ConvStep_{d=4,k=5}`` (the paper's
  attention1 / attention2), then ``Attend(source, target) = softmax(target . source^T / sqrt(depth)) . source``,
  and the result is added to the target and layer-normalised (tensor2tensor's "simple" attention).

What differs, for audio: the paper adds a sinusoidal timing signal to the attention's target; audio frames have no
word positions and chunked or streamed inference would see other positions than training, so there is none. The
paper's encoder (no attention) is the masker of blind separation; its decoder attends to an encoded source, which
for extraction is the target speaker's enrollment (:class:`SliceNetSourceEncoder`). Dropout is left out (the
recipes are small). ``causal`` pads every step on the past side only; the channel LayerNorm is frame-local, so a
causal network streams with the last ``d * (k - 1)`` inputs of every step cached (:class:`SliceNetStreamStep`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .conv import SeparableConv1d
from .fusion import FUSIONS, SpeakerFusion
from .norms import ChannelwiseLayerNorm
from .tcn import MASK_ACTIVATIONS


@dataclass(frozen=True)
class SliceNetConfig:
    """Hyper-parameters of a SliceNet masker.

    Args:
        channels: depth of the residual path (the paper's hidden size).
        kernel_sizes: of the steps of one convolution module (an even count: pairs of steps are residuals).
        dilations: of the same steps.
        modules: convolution modules, one after the other.
        groups: super-separable groups of the grouped steps (1: depthwise separable everywhere).
        attention_kernel: kernel of the two steps before an attention (the paper: 5, dilations 1 and 4).
        causal: pad on the past side only (a streamable network).
        share: MiTAS-style weight sharing: one convolution module (and one attention module) applied ``modules``
            times, so the depth stays and the weights are those of one module.

    Raises:
        ConfigError: naming the field, for a non-positive size, ``groups`` not dividing ``channels``, kernels and
            dilations of different counts or an odd count, or an even kernel in a non-causal network (its window
            would not be centred).
    """

    channels: int = 128
    kernel_sizes: Tuple[int, ...] = (3, 7, 15, 31)
    dilations: Tuple[int, ...] = (1, 1, 2, 4)
    modules: int = 4
    groups: int = 1
    attention_kernel: int = 5
    causal: bool = False
    share: bool = False

    def __post_init__(self):
        for name in ("causal", "share"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"slicenet.{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("kernel_sizes", "dilations"):
            value = getattr(self, name)
            if isinstance(value, int) or not isinstance(value, Sequence) or not value:
                raise ConfigError(f"slicenet.{name} must be a non-empty list of positive integers, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for name, value in [("channels", self.channels), ("modules", self.modules), ("groups", self.groups),
                            ("attention_kernel", self.attention_kernel)] + \
                [(f"kernel_sizes[{i}]", k) for i, k in enumerate(self.kernel_sizes)] + \
                [(f"dilations[{i}]", d) for i, d in enumerate(self.dilations)]:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"slicenet.{name} must be a positive integer, got {value!r}")
        if len(self.kernel_sizes) != len(self.dilations) or len(self.kernel_sizes) % 2:
            raise ConfigError(f"slicenet.kernel_sizes and slicenet.dilations: one kernel and one dilation per step, "
                              f"an even number of steps (pairs are residuals); got {list(self.kernel_sizes)} and "
                              f"{list(self.dilations)}")
        if self.channels % self.groups:
            raise ConfigError(f"slicenet.groups={self.groups} does not divide slicenet.channels={self.channels}; "
                              f"choose a divisor of the channels")
        if not self.causal:
            for name, kernel in [(f"kernel_sizes[{i}]", k) for i, k in enumerate(self.kernel_sizes)] + \
                    [("attention_kernel", self.attention_kernel)]:
                if kernel % 2 == 0:
                    raise ConfigError(f"slicenet.{name}={kernel}: a non-causal step needs an odd kernel (a window "
                                      f"centred on its frame); use {kernel + 1}, or causal: true")


class ConvStep(nn.Module):
    """``LN(SepConv(ReLU(x)))``: ReLU, depthwise + (grouped) pointwise convolution, LayerNorm over channels.

    Args:
        channels: in and out.
        kernel_size, dilation: of the depthwise convolution.
        groups: of the pointwise convolution (super-separable when > 1).
        causal: pad on the past side only.

    Shape:
        ``(batch, channels, frames)`` -> same.
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int = 1, groups: int = 1, causal: bool = False):
        super().__init__()
        self.conv = SeparableConv1d(channels, channels, kernel_size, dilation=dilation,
                                    padding="causal" if causal else "same", bias=True)
        if groups > 1:
            self.conv.pointwise = nn.Conv1d(channels, channels, 1, groups=groups)
        self.norm = ChannelwiseLayerNorm(channels)
        self.dilation, self.past = dilation, dilation * (kernel_size - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(torch.relu(x)))

    def step(self, x: torch.Tensor, cache: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """A causal step on new frames, given the last ``past`` (ReLU'd) inputs.

        Shape: x ``(batch, channels, frames)``, cache ``(batch, channels, past)`` -> same as x, new cache.
        """
        y = torch.cat([cache, torch.relu(x)], dim=-1)
        cache = y[..., y.shape[-1] - self.past:]
        dw = self.conv.depthwise
        y = F.conv1d(y, dw.weight, dw.bias, dilation=self.dilation, groups=y.shape[1])
        return self.norm(self.conv.pointwise(y)), cache


class ConvModule(nn.Module):
    """Convolution steps in residual pairs: ``h = x + S2(S1(x))``, ``h = h + S4(S3(h))``, ...

    Args:
        channels: in and out.
        kernel_sizes, dilations: one per step.
        groups: super-separable groups of every other step (the others are fully pointwise).
        causal: pad on the past side only.

    Shape:
        ``(batch, channels, frames)`` -> same.
    """

    def __init__(self, channels: int, kernel_sizes: Sequence[int], dilations: Sequence[int], groups: int = 1,
                 causal: bool = False):
        super().__init__()
        self.steps = nn.ModuleList([ConvStep(channels, k, d, groups if i % 2 == 0 else 1, causal)
                                    for i, (k, d) in enumerate(zip(kernel_sizes, dilations))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(0, len(self.steps), 2):
            x = x + self.steps[i + 1](self.steps[i](x))
        return x


def attend(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``softmax(target . source^T / sqrt(depth)) . source``: every target frame, a mix of the source frames.

    Shape: source ``(batch, depth, source_frames)``, target ``(batch, depth, frames)`` -> ``(batch, depth, frames)``.
    """
    weights = torch.softmax(torch.matmul(target.transpose(1, 2), source) / source.shape[1] ** 0.5, dim=-1)
    return torch.matmul(source, weights.transpose(1, 2))


class SliceNetAttention(nn.Module):
    """The attention module: ``LN(x + Attend(source, S2(S1(x))))``, S1 / S2 the paper's two steps (dilations 1, 4).

    Args:
        channels: of the target ``x``.
        source_channels: of the source (projected by a 1x1 to ``channels`` when they differ).
        kernel_size: of the two steps.
        causal: pad the steps on the past side only (the source is whole: it is known before the target).

    Shape:
        x ``(batch, channels, frames)``, source ``(batch, source_channels, source_frames)`` -> same as x.
    """

    def __init__(self, channels: int, source_channels: int, kernel_size: int = 5, causal: bool = False):
        super().__init__()
        self.steps = nn.ModuleList([ConvStep(channels, kernel_size, 1, causal=causal),
                                    ConvStep(channels, kernel_size, 4, causal=causal)])
        self.source_proj = nn.Conv1d(source_channels, channels, 1) if source_channels != channels else nn.Identity()
        self.norm = ChannelwiseLayerNorm(channels)

    def forward(self, x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        return self.finish(x, self.steps[1](self.steps[0](x)), source)

    def finish(self, x: torch.Tensor, query: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """The attention and its residual, from the two steps' output ``query`` (shape of x)."""
        return self.norm(x + attend(self.source_proj(source), query))


class SliceNetSourceEncoder(nn.Module):
    """The paper's encoder for an attention source (TseNet: the enrollment): cwLN -> 1x1 -> one non-causal
    :class:`ConvModule`.

    Args:
        in_channels: of the waveform encoder's output.
        channels: of the encoded source (TseNet's ``speaker_dim``).
        config: kernels, dilations and groups of the module (its causality is ignored: the source is whole).

    Shape:
        ``(batch, in_channels, source_frames)`` -> ``(batch, channels, source_frames)``.
    """

    def __init__(self, in_channels: int, channels: int, config: SliceNetConfig):
        super().__init__()
        if channels % config.groups:
            raise ConfigError(f"slicenet.groups={config.groups} does not divide speaker_dim={channels}, the "
                              f"channels of the encoded enrollment")
        self.input = nn.Sequential(ChannelwiseLayerNorm(in_channels), nn.Conv1d(in_channels, channels, 1))
        self.module = ConvModule(channels, config.kernel_sizes, config.dilations, config.groups,
                                 causal=False)

    def forward(self, rep: torch.Tensor) -> torch.Tensor:
        return self.module(self.input(rep))


class SliceNetMasker(nn.Module):
    """SliceNet separator: cwLN -> 1x1 bottleneck -> ``modules`` x ([fusion] -> :class:`ConvModule` ->
    [:class:`SliceNetAttention` to the source]) -> PReLU -> 1x1 -> mask activation.

    Conditioning: a speaker vector ``(batch, cond_dim)`` is fused before every module (``concat`` is followed by a
    1x1 back to ``channels``). With ``source_channels > 0`` the masker attends after every module to a source
    sequence, given as ``cond`` of shape ``(batch, source_channels, source_frames)``; its mean over frames is then
    the speaker vector of the fusions.

    Args:
        in_channels: N, channels of the encoder output.
        n_src: masks to estimate.
        config: the network's hyper-parameters.
        mask_act: ``sigmoid`` | ``relu`` | ``softmax`` (over sources).
        cond_dim: size of the speaker vector; 0 for none.
        fusion: ``concat`` | ``add`` | ``multiply`` | ``film``.
        source_channels: channels of the attention source; 0 for no attention.

    Shape:
        rep ``(batch, in_channels, frames)``, cond ``(batch, cond_dim)``, ``(batch, source_channels,
        source_frames)`` or ``None`` -> masks ``(batch, n_src, in_channels, frames)``.
    """

    def __init__(self, in_channels: int, n_src: int, config: SliceNetConfig, mask_act: str = "sigmoid",
                 cond_dim: int = 0, fusion: str = "film", source_channels: int = 0):
        super().__init__()
        if mask_act not in MASK_ACTIVATIONS:
            raise ConfigError(f"mask_act: unknown mask activation {mask_act!r}; choose one of "
                              f"{sorted(MASK_ACTIVATIONS)}")
        if fusion not in FUSIONS:
            raise ConfigError(f"fusion: unknown fusion {fusion!r}; choose one of {FUSIONS}")
        if source_channels and source_channels != cond_dim:
            raise ConfigError(f"the attention source ({source_channels} channels) is also the speaker vector "
                              f"(cond_dim={cond_dim}); give both the same size")
        self.config, self.n_src = config, n_src
        channels = config.channels
        self.input_norm = ChannelwiseLayerNorm(in_channels)
        self.bottleneck = nn.Conv1d(in_channels, channels, 1)
        self.fusions = nn.ModuleList([SpeakerFusion(fusion, channels, cond_dim) for _ in range(config.modules)]
                                     if cond_dim else [])
        self.fuse_proj = nn.ModuleList([nn.Conv1d(channels + cond_dim, channels, 1) for _ in range(config.modules)]
                                       if cond_dim and fusion == "concat" else [])
        distinct, repeats = (1, config.modules) if config.share else (config.modules, 1)
        self.conv_modules = nn.ModuleList([ConvModule(channels, config.kernel_sizes, config.dilations, config.groups,
                                                      config.causal) for _ in range(distinct)] * repeats)
        self.attentions = nn.ModuleList([SliceNetAttention(channels, source_channels, config.attention_kernel,
                                                           config.causal) for _ in range(distinct)] * repeats
                                        if source_channels else [])
        self.output_prelu = nn.PReLU()
        self.output_conv = nn.Conv1d(channels, in_channels * n_src, 1)
        self.mask_act = MASK_ACTIVATIONS[mask_act]()

    def split_cond(self, cond: Optional[torch.Tensor]) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """``cond`` -> (speaker vector, attention source), checked against what the masker needs."""
        source = cond if cond is not None and cond.dim() == 3 else None
        if len(self.attentions) > 0 and source is None:
            raise ValueError("this masker attends to a source sequence: pass cond of shape (batch, source_channels, "
                             "source_frames) (TseNet: model.embed(enrollment))")
        if len(self.fusions) > 0 and cond is None:
            raise ValueError("this masker is conditioned on a speaker vector: pass cond of shape (batch, cond_dim)")
        return (cond.mean(-1) if source is not None else cond), source

    def fuse(self, i: int, x: torch.Tensor, vector: Optional[torch.Tensor]) -> torch.Tensor:
        """The input of module ``i``: ``x`` with the speaker vector fused in (when the masker is conditioned)."""
        if len(self.fusions) == 0 or vector is None:
            return x
        x = self.fusions[i](x, vector)
        return self.fuse_proj[i](x) if len(self.fuse_proj) > 0 else x

    def masks(self, y: torch.Tensor, rep: torch.Tensor) -> torch.Tensor:
        """The output head. Shape: y ``(batch, channels, frames)``, rep ``(batch, N, frames)`` -> masks."""
        y = self.output_conv(self.output_prelu(y))
        return self.mask_act(y.view(rep.shape[0], self.n_src, rep.shape[1], rep.shape[2]))

    def forward(self, rep: torch.Tensor, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        vector, source = self.split_cond(cond)
        x = self.bottleneck(self.input_norm(rep))
        for i, module in enumerate(self.conv_modules):
            x = module(self.fuse(i, x, vector))
            if source is not None and len(self.attentions) > 0:
                x = self.attentions[i](x, source)
        return self.masks(x, rep)


class SliceNetStreamStep(nn.Module):
    """A causal :class:`SliceNetMasker`, frame by frame, with the past of every step cached.

    Args:
        masker: a masker of ``config.causal``; its modules are used, not copied.

    Shape:
        rep ``(batch, N, frames)``, caches (see :meth:`initial_state`), cond as the masker's
        -> masks ``(batch, n_src, N, frames)``, new caches.
    """

    def __init__(self, masker: SliceNetMasker):
        super().__init__()
        self.masker = masker
        attentions = list(masker.attentions)
        #: every step in the order of the computation: module 0, its attention, module 1, ...
        self.steps = [step for i, module in enumerate(masker.conv_modules)
                      for step in list(module.steps) + (list(attentions[i].steps) if attentions else [])]

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> List[torch.Tensor]:
        """Zeros: one cache ``(batch, channels, d * (k - 1))`` per step, in the order of :attr:`steps`."""
        return [torch.zeros(batch, self.masker.config.channels, step.past, device=device, dtype=dtype)
                for step in self.steps]

    def forward(self, rep: torch.Tensor, caches: List[torch.Tensor],
                cond: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        masker = self.masker
        vector, source = masker.split_cond(cond)
        x = masker.bottleneck(masker.input_norm(rep))
        new: List[torch.Tensor] = []
        k = 0
        for i, module in enumerate(masker.conv_modules):
            x = masker.fuse(i, x, vector)
            for j in range(0, len(module.steps), 2):
                y, c1 = module.steps[j].step(x, caches[k])
                y, c2 = module.steps[j + 1].step(y, caches[k + 1])
                x, k = x + y, k + 2
                new.extend([c1, c2])
            if source is not None and len(masker.attentions) > 0:
                attention = masker.attentions[i]
                query, c1 = attention.steps[0].step(x, caches[k])
                query, c2 = attention.steps[1].step(query, caches[k + 1])
                x, k = attention.finish(x, query, source), k + 2
                new.extend([c1, c2])
        return masker.masks(x, rep), new
