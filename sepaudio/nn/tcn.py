"""Conv-TasNet's temporal convolutional network: blocks, stacks with conditioning and weight sharing, masker."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .conv import pad_amounts
from .fusion import SpeakerFusion
from .norms import CAUSAL_NORMS, NORMS, make_norm

SHARING = ("none", "pointwise", "depthwise", "both")
_SIZES = ("channels", "hidden", "skip_channels", "kernel_size", "blocks", "repeats")


@dataclass(frozen=True)
class TCNConfig:
    """Hyper-parameters of a :class:`TCN` (Conv-TasNet's letters in brackets); defaults are torchaudio's Conv-TasNet.

    Args:
        channels: B, bottleneck channels, the width of the residual path.
        hidden: H, the width of each block's depthwise convolution.
        skip_channels: Sc, the width of the skip outputs.
        kernel_size: P, of the depthwise convolutions.
        blocks: X, blocks per stack, of dilations 1, 2, ..., 2**(X-1).
        repeats: R, stacks.
        norm: ``gLN`` | ``cLN`` | ``cwLN`` | ``BN``.
        causal: pad the depthwise convolutions on the past side only (needs ``cLN`` or ``cwLN``).
        share: MiTAS weight sharing: ``none`` | ``pointwise`` | ``depthwise`` | ``both`` (see :class:`TCN`).

    Raises:
        ValueError: naming the field, for a non-positive size, an unknown norm or sharing, or a causal network with
            a norm that sees the future.
    """

    channels: int = 128
    hidden: int = 512
    skip_channels: int = 128
    kernel_size: int = 3
    blocks: int = 8
    repeats: int = 3
    norm: str = "gLN"
    causal: bool = False
    share: str = "none"

    def __post_init__(self):
        for name in _SIZES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TCNConfig.{name} must be a positive integer, got {value!r}")
        if self.norm not in NORMS:
            raise ValueError(f"TCNConfig.norm: unknown norm {self.norm!r}; choose one of {sorted(NORMS)}")
        if self.share not in SHARING:
            raise ValueError(f"TCNConfig.share: unknown sharing {self.share!r}; choose one of {SHARING}")
        if self.causal and self.norm not in CAUSAL_NORMS:
            raise ValueError(f"TCNConfig.causal=True needs a causal norm ({sorted(CAUSAL_NORMS)}), "
                             f"not norm={self.norm!r}")


class TCNBlock(nn.Module):
    """1x1 -> PReLU -> norm -> dilated depthwise -> PReLU -> norm -> residual 1x1 and skip 1x1.

    Args:
        in_channels: input channels (``config.channels``, plus a speaker vector when it is concatenated here).
        config: the network's sizes, norm and causality.
        dilation: of the depthwise convolution.
        residual: compute the residual output (the last block of a network has no use for it).
        pointwise: a block whose 1x1 convolutions this one uses instead of building its own (its residual 1x1 is
            held even when ``residual`` is false, so that every stack has the same weight names).
        depthwise: a depthwise convolution to use instead of building one.

    Shape:
        ``(batch, in_channels, time)`` -> residual ``(batch, channels, time)`` or ``None``,
        skip ``(batch, skip_channels, time)``.
    """

    def __init__(
        self,
        in_channels: int,
        config: TCNConfig,
        dilation: int,
        residual: bool = True,
        pointwise: TCNBlock | None = None,
        depthwise: nn.Conv1d | None = None,
    ):
        super().__init__()
        hidden = config.hidden
        shared = pointwise is not None
        self.in_conv = pointwise.in_conv if shared else nn.Conv1d(in_channels, hidden, 1)
        self.prelu1 = nn.PReLU()
        self.norm1 = make_norm(config.norm, hidden)
        if depthwise is None:
            depthwise = nn.Conv1d(hidden, hidden, config.kernel_size, groups=hidden)
        self.depthwise = depthwise
        self.prelu2 = nn.PReLU()
        self.norm2 = make_norm(config.norm, hidden)
        if shared:
            self.res_conv = pointwise.res_conv
        else:
            self.res_conv = nn.Conv1d(hidden, config.channels, 1) if residual else None
        self.skip_conv = pointwise.skip_conv if shared else nn.Conv1d(hidden, config.skip_channels, 1)
        self.residual = residual
        self.dilation = dilation
        self.pads = pad_amounts(config.kernel_size, dilation, "causal" if config.causal else "same")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        y = self.norm1(self.prelu1(self.in_conv(x)))
        # The depthwise weights are applied through F.conv1d with this block's dilation, so one depthwise
        # module can serve blocks of different dilations (MiTAS sharing).
        left, right = self.pads
        if left == right:  # let the convolution pad: no padded copy of the hidden tensor
            y = F.conv1d(y, self.depthwise.weight, self.depthwise.bias, padding=left, dilation=self.dilation,
                         groups=y.shape[1])
        else:
            y = F.conv1d(F.pad(y, self.pads), self.depthwise.weight, self.depthwise.bias, dilation=self.dilation,
                         groups=y.shape[1])
        y = self.norm2(self.prelu2(y))
        return (self.res_conv(y) if self.residual else None), self.skip_conv(y)


FUSE_AT = ("stack", "block")


class TCN(nn.Module):
    """``repeats`` stacks of ``blocks`` TCN blocks with dilations 1, 2, ..., 2**(blocks-1); returns the skip sum.

    Conditioning: with ``cond_dim > 0`` a :class:`SpeakerFusion` feeds the vector into the first block of every
    stack (``fuse_at="stack"``, TseNet) or into every block (``"block"``); a fused block's residual is added to the
    representation from before the fusion.

    Sharing (MiTAS): ``pointwise`` makes the block at position x of every stack use the same 1x1 convolutions;
    ``depthwise`` makes all blocks of a stack use one depthwise kernel across their dilations; ``both`` does both.
    Norms and PReLUs stay per block.

    Args:
        config: sizes, norm, causality and sharing.
        cond_dim: size of the speaker vector; 0 for none.
        fusion: ``concat`` | ``add`` | ``multiply`` | ``film`` (see :class:`SpeakerFusion`).
        fuse_at: ``stack`` (first block of every stack) | ``block`` (every block).

    Shape:
        x ``(batch, channels, time)``, cond ``(batch, cond_dim)`` or ``None`` -> ``(batch, skip_channels, time)``.
    """

    def __init__(self, config: TCNConfig, cond_dim: int = 0, fusion: str = "concat", fuse_at: str = "stack"):
        super().__init__()
        if fuse_at not in FUSE_AT:
            raise ValueError(f"unknown fuse_at {fuse_at!r}; choose one of {FUSE_AT}")
        self.config = config
        n_blocks, repeats = config.blocks, config.repeats
        fused_blocks = [i for i in range(n_blocks * repeats) if fuse_at == "block" or i % n_blocks == 0]
        self.fusions = nn.ModuleList(
            [SpeakerFusion(fusion, config.channels, cond_dim) for _ in fused_blocks] if cond_dim else []
        )
        #: per block, the index into ``fusions`` of the fusion feeding it, or -1
        self.fusion_of = [fused_blocks.index(i) if cond_dim and i in fused_blocks else -1
                          for i in range(n_blocks * repeats)]
        fused = self.fusions[0].out_channels if cond_dim else config.channels
        share_pointwise = config.share in ("pointwise", "both")
        share_depthwise = config.share in ("depthwise", "both")
        self.blocks = nn.ModuleList()
        for r in range(repeats):
            for x in range(n_blocks):
                self.blocks.append(TCNBlock(
                    fused if self.fusion_of[r * n_blocks + x] >= 0 else config.channels, config, 2**x,
                    residual=not (r == repeats - 1 and x == n_blocks - 1),
                    pointwise=self.blocks[x] if share_pointwise and r > 0 else None,
                    depthwise=self.blocks[r * n_blocks].depthwise if share_depthwise and x > 0 else None,
                ))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.fusions and cond is None:
            raise ValueError("this network is conditioned on a speaker vector: pass cond of shape (batch, cond_dim)")
        skip_sum = 0
        for i, block in enumerate(self.blocks):
            inp = x if self.fusion_of[i] < 0 else self.fusions[self.fusion_of[i]](x, cond)
            residual, skip = block(inp)
            if residual is not None:
                x = x + residual
            skip_sum = skip_sum + skip
        return skip_sum


MASK_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "softmax": lambda: nn.Softmax(dim=1)}


class TCNMasker(nn.Module):
    """Conv-TasNet separator: norm -> 1x1 bottleneck -> :class:`TCN` -> PReLU -> 1x1 -> mask activation.

    Args:
        in_channels: N, channels of the encoder output.
        n_src: masks to estimate.
        tcn: the TCN's hyper-parameters (its ``norm`` also normalizes the input).
        mask_act: ``sigmoid`` | ``relu`` | ``softmax`` (over sources).
        cond_dim, fusion, fuse_at: speaker conditioning, passed to :class:`TCN`.

    Shape:
        rep ``(batch, in_channels, frames)``, cond ``(batch, cond_dim)`` or ``None``
        -> masks ``(batch, n_src, in_channels, frames)``.
    """

    def __init__(
        self,
        in_channels: int,
        n_src: int,
        tcn: TCNConfig,
        mask_act: str = "sigmoid",
        cond_dim: int = 0,
        fusion: str = "concat",
        fuse_at: str = "stack",
    ):
        super().__init__()
        if mask_act not in MASK_ACTIVATIONS:
            raise ValueError(f"unknown mask activation {mask_act!r}; choose one of {sorted(MASK_ACTIVATIONS)}")
        self.n_src = n_src
        self.input_norm = make_norm(tcn.norm, in_channels)
        self.bottleneck = nn.Conv1d(in_channels, tcn.channels, 1)
        self.tcn = TCN(tcn, cond_dim=cond_dim, fusion=fusion, fuse_at=fuse_at)
        self.output_prelu = nn.PReLU()
        self.output_conv = nn.Conv1d(tcn.skip_channels, in_channels * n_src, 1)
        self.mask_act = MASK_ACTIVATIONS[mask_act]()

    def forward(self, rep: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        batch, channels, frames = rep.shape
        y = self.tcn(self.bottleneck(self.input_norm(rep)), cond)
        y = self.output_conv(self.output_prelu(y)).view(batch, self.n_src, channels, frames)
        return self.mask_act(y)
