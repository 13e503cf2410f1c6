"""Conv-TasNet's temporal convolutional network: blocks, stacks with conditioning and weight sharing, masker."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .conv import pad_amounts
from .fusion import SpeakerFusion
from .norms import CAUSAL_NORMS, make_norm

SHARING = ("none", "pointwise", "depthwise", "both")


class TCNBlock(nn.Module):
    """1x1 -> PReLU -> norm -> dilated depthwise -> PReLU -> norm -> residual 1x1 and skip 1x1.

    Args:
        in_channels: input channels (the bottleneck, plus a speaker vector when it is concatenated here).
        channels: bottleneck channels B, the width of the residual output.
        hidden: H, the width of the depthwise convolution.
        skip_channels: Sc, the width of the skip output.
        kernel_size: P, of the depthwise convolution.
        dilation: of the depthwise convolution.
        norm: ``gLN`` | ``cLN`` | ``cwLN`` | ``BN``.
        causal: pad the depthwise convolution on the past side only.
        residual: build the residual 1x1 (the last block of a network has no use for it).

    Shape:
        ``(batch, in_channels, time)`` -> residual ``(batch, channels, time)`` or ``None``,
        skip ``(batch, skip_channels, time)``.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        hidden: int,
        skip_channels: int,
        kernel_size: int,
        dilation: int,
        norm: str = "gLN",
        causal: bool = False,
        residual: bool = True,
    ):
        super().__init__()
        self.in_conv = nn.Conv1d(in_channels, hidden, 1)
        self.prelu1 = nn.PReLU()
        self.norm1 = make_norm(norm, hidden)
        self.depthwise = nn.Conv1d(hidden, hidden, kernel_size, groups=hidden)
        self.prelu2 = nn.PReLU()
        self.norm2 = make_norm(norm, hidden)
        self.res_conv = nn.Conv1d(hidden, channels, 1) if residual else None
        self.skip_conv = nn.Conv1d(hidden, skip_channels, 1)
        self.dilation = dilation
        self.pads = pad_amounts(kernel_size, dilation, "causal" if causal else "same")

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
        return (self.res_conv(y) if self.res_conv is not None else None), self.skip_conv(y)


class TCN(nn.Module):
    """``repeats`` stacks of ``blocks`` TCN blocks with dilations 1, 2, ..., 2**(blocks-1); returns the skip sum.

    Conditioning: with ``cond_dim > 0`` a :class:`SpeakerFusion` feeds the vector into the first block of every
    stack; that block's residual is added to the representation from before the fusion (TseNet).

    Sharing (MiTAS): ``pointwise`` makes the block at position x of every stack use the same 1x1 convolutions;
    ``depthwise`` makes all blocks of a stack use one depthwise kernel across their dilations; ``both`` does both.
    Norms and PReLUs stay per block.

    Shape:
        x ``(batch, channels, time)``, cond ``(batch, cond_dim)`` or ``None`` -> ``(batch, skip_channels, time)``.
    """

    def __init__(
        self,
        channels: int = 128,
        hidden: int = 512,
        skip_channels: int = 128,
        kernel_size: int = 3,
        blocks: int = 8,
        repeats: int = 3,
        norm: str = "gLN",
        causal: bool = False,
        cond_dim: int = 0,
        fusion: str = "concat",
        share: str = "none",
    ):
        super().__init__()
        if share not in SHARING:
            raise ValueError(f"unknown sharing {share!r}; choose one of {SHARING}")
        if causal and norm not in CAUSAL_NORMS:
            raise ValueError(f"causal=True needs a causal norm ({sorted(CAUSAL_NORMS)}), not {norm!r}")
        self.n_blocks = blocks
        self.fusions = nn.ModuleList(
            [SpeakerFusion(fusion, channels, cond_dim) for _ in range(repeats)] if cond_dim else []
        )
        fused = self.fusions[0].out_channels if cond_dim else channels
        share_pointwise = share in ("pointwise", "both")
        self.blocks = nn.ModuleList()
        for r in range(repeats):
            for x in range(blocks):
                last = r == repeats - 1 and x == blocks - 1
                block = TCNBlock(
                    fused if x == 0 else channels, channels, hidden, skip_channels, kernel_size, 2**x, norm, causal,
                    residual=not last or (share_pointwise and r > 0),
                )
                if share_pointwise and r > 0:
                    first = self.blocks[x]
                    block.in_conv, block.res_conv, block.skip_conv = first.in_conv, first.res_conv, first.skip_conv
                if share in ("depthwise", "both") and x > 0:
                    block.depthwise = self.blocks[r * blocks].depthwise
                self.blocks.append(block)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.fusions and cond is None:
            raise ValueError("this network is conditioned on a speaker vector: pass cond of shape (batch, cond_dim)")
        skip_sum = 0
        for i, block in enumerate(self.blocks):
            inp = x
            if self.fusions and i % self.n_blocks == 0:
                inp = self.fusions[i // self.n_blocks](x, cond)
            residual, skip = block(inp)
            if residual is not None and i < len(self.blocks) - 1:
                x = x + residual
            skip_sum = skip_sum + skip
        return skip_sum


MASK_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "softmax": lambda: nn.Softmax(dim=1)}


class TCNMasker(nn.Module):
    """Conv-TasNet separator: norm -> 1x1 bottleneck -> :class:`TCN` -> PReLU -> 1x1 -> mask activation.

    Args:
        in_channels: N, channels of the encoder output.
        n_src: masks to estimate.
        bottleneck, hidden, skip_channels, kernel_size, blocks, repeats, norm, causal, cond_dim, fusion, share:
            passed to :class:`TCN` (``bottleneck`` is its ``channels``).
        mask_act: ``sigmoid`` | ``relu`` | ``softmax`` (over sources).

    Shape:
        rep ``(batch, in_channels, frames)``, cond ``(batch, cond_dim)`` or ``None``
        -> masks ``(batch, n_src, in_channels, frames)``.
    """

    def __init__(
        self,
        in_channels: int,
        n_src: int,
        bottleneck: int = 128,
        hidden: int = 512,
        skip_channels: int = 128,
        kernel_size: int = 3,
        blocks: int = 8,
        repeats: int = 3,
        norm: str = "gLN",
        causal: bool = False,
        mask_act: str = "sigmoid",
        cond_dim: int = 0,
        fusion: str = "concat",
        share: str = "none",
    ):
        super().__init__()
        if mask_act not in MASK_ACTIVATIONS:
            raise ValueError(f"unknown mask activation {mask_act!r}; choose one of {sorted(MASK_ACTIVATIONS)}")
        self.n_src = n_src
        self.input_norm = make_norm(norm, in_channels)
        self.bottleneck = nn.Conv1d(in_channels, bottleneck, 1)
        self.tcn = TCN(bottleneck, hidden, skip_channels, kernel_size, blocks, repeats, norm, causal, cond_dim,
                       fusion, share)
        self.output_prelu = nn.PReLU()
        self.output_conv = nn.Conv1d(skip_channels, in_channels * n_src, 1)
        self.mask_act = MASK_ACTIVATIONS[mask_act]()

    def forward(self, rep: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        batch, channels, frames = rep.shape
        y = self.tcn(self.bottleneck(self.input_norm(rep)), cond)
        y = self.output_conv(self.output_prelu(y)).view(batch, self.n_src, channels, frames)
        return self.mask_act(y)
