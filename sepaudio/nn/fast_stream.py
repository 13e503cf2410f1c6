"""A fused streaming step for causal TCN models on CPU: the function of :class:`~sepaudio.nn.streaming.StreamingStep`
with few, large operations per block.

Built once from a :class:`StreamingStep` (a snapshot of the model's weights) and the speaker vector of the stream,
it computes in a ``(batch * frames, channels)`` layout:

- the speaker fusion (``concat``, ``add``, ``multiply``, ``film``) is folded into each block's first 1x1 (the
  vector is fixed for the whole stream): one ``addmm`` (MKL; at a few rows per step oneDNN's pre-packed
  ``_linear_pointwise`` costs ~50 us more per call) and an in-place PReLU;
- every norm's affine that feeds a 1x1 (the input norm, each block's norm2) is folded into that 1x1's weight; the
  residual and skip 1x1 of a block are one ``addmm_`` into one ``(batch * frames, channels + skip_channels)``
  state: no separate residual, skip or bias additions (constant offsets ride in the next first 1x1's bias; the
  skip part's is added once, before the output PReLU);
- the bottleneck writes that state at once (zero rows for the skip part);
- cLN: each frame's statistics from one ``native_layer_norm``, running sums and per-frame scale / shift as Python
  scalars, one ``addcmul``; cwLN is ``F.layer_norm``;
- the causal depthwise convolution is ``P`` multiply-adds over views of a per-block buffer that the new frames are
  written into after its cached past (no concatenation: with dilations up to 128 the past is hundreds of frames;
  the last ``past`` frames move to the front only when the buffer is full); norm1's affine is folded into its
  kernel;
- encoder and decoder are matrix products on the frames (``unfold``) and an overlap-add.

Precisions (:data:`~sepaudio.nn.fast_tcn.PRECISIONS`): ``fp32`` (equal to the reference step to float32 rounding),
``bf16`` (activations and GEMMs in bfloat16, norm statistics in float32), ``int8`` (each block's two 1x1 GEMMs in
8-bit integers through :class:`~sepaudio.nn.fast_tcn._QLinear`, activations quantized per call).
"""
from __future__ import annotations

import array
import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

from .fast_tcn import _MASK_ATTRS, PRECISIONS, _QLinear

__all__ = ["FastStreamingStep", "fusable"]

#: frames of room after the past in a depthwise buffer (when full, the past moves to the front of a new one)
ROOM = 128

def fusable(step) -> bool:
    """Whether :class:`FastStreamingStep` runs ``step`` (a :class:`~sepaudio.nn.streaming.StreamingStep`): a TCN
    masker (not SliceNet) on the CPU."""
    return step.slicenet is None and step.output_conv.weight.device.type == "cpu"


class _Linear:
    """A 1x1 convolution ``(out, in)`` + bias: ``attr(x @ W.T + b)``, or ``state += x @ W.T`` (no bias: constant
    offsets are carried, see :class:`FastStreamingStep`). fp32 / bf16 run MKL's ``addmm`` (a few rows per step:
    oneDNN's packed ``_linear_pointwise`` costs ~50 us more per call at these sizes), int8 oneDNN's qlinear.

    Shape: ``(rows, in)`` (rows may be strided) -> ``(rows, out)``; state ``(rows, out)``, contiguous.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, precision: str, attr: str = "none", slope=0.0):
        self.int8, self.attr, self.slope = precision == "int8", attr, float(slope)
        dtype = PRECISIONS[precision]
        if self.int8:
            self.q, self.bias = _QLinear(weight), bias.float()
        else:
            self.wt, self.bias = weight.to(dtype).t().contiguous(), bias.to(dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.int8:
            return self.q(x.contiguous(), self.bias, x.shape[0], self.attr, [self.slope] if self.slope else [])
        y = torch.addmm(self.bias, x, self.wt)
        if self.attr == "leaky_relu":
            return F.leaky_relu(y, self.slope, inplace=True)
        return torch.sigmoid_(y) if self.attr == "sigmoid" else torch.relu_(y) if self.attr == "relu" else y

    def add_into(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        if self.int8:
            return self.q(x.contiguous(), None, x.shape[0], into=state)
        return state.addmm_(x, self.wt)


def _fold_fusion(fusion, w: torch.Tensor, w_cond: torch.Tensor, b: torch.Tensor, cond: torch.Tensor
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
    """The first 1x1 ``(w, b)`` of a block fed by ``fusion(x, cond)``, as a map of ``x`` alone.

    Shape: w ``(hidden, channels)``, w_cond ``(hidden, cond_dim)`` (concat), b ``(hidden)``, cond ``(cond_dim)``.
    """
    if fusion is None:
        return w, b
    if fusion.kind == "concat":
        return w, b + w_cond @ cond
    proj = fusion.proj(cond).detach().float()
    if fusion.kind == "add":
        return w, b + w @ proj
    scale, shift = (proj, None) if fusion.kind == "multiply" else proj.chunk(2)
    return w * scale, b if shift is None else b + w @ shift


class _Norm:
    """A cLN or cwLN; ``affine`` false leaves the affine to the next 1x1.

    cLN: each frame's mean and variance over channels come from one ``native_layer_norm``; their running sums
    (Python floats, double precision, per stream) and the per-frame scale and shift are a few scalar operations in Python, cheaper
    than a dozen tiny tensor ops at a few frames per step; the normalization is one ``addcmul``.

    Shape: x ``(batch, frames, channels)``, sums ``[(sum of means, sum of mean squares)] * batch``, count (frames
    seen before x) -> ``(batch, frames, channels)`` float32, new sums.
    """

    def __init__(self, norm, affine: bool):
        self.cumulative, self.eps = norm.cumulative, float(norm.eps)
        self.weight = norm.weight.detach().float() if affine else None
        self.bias = norm.bias.detach().float() if affine else None

    def __call__(self, x: torch.Tensor, sums: list, count: int) -> Tuple[torch.Tensor, list]:
        if x.dtype != torch.float32:
            x = x.float()
        if not self.cumulative:
            return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps), sums
        # each frame's mean and 1 / std over channels (layer_norm's statistics: one fast op; var_mean is slower)
        _, mean, rstd = torch.native_layer_norm(x, x.shape[-1:], None, None, self.eps)
        scales, shifts, new_sums = array.array("f"), array.array("f"), []
        for (total, power), means, rstds in zip(sums, mean.tolist(), rstd.tolist()):
            for seen, ((m,), (r,)) in enumerate(zip(means, rstds), count + 1):
                total, power = total + m, power + 1.0 / (r * r) - self.eps + m * m
                mu = total / seen
                scale = 1.0 / math.sqrt(max(power / seen - mu * mu, 0.0) + self.eps)
                scales.append(scale)
                shifts.append(-mu * scale)
            new_sums.append((total, power))
        scales.extend(shifts)  # one buffer, one tensor (torch.tensor of a list costs more than the rest together)
        scale, shift = torch.frombuffer(scales, dtype=torch.float32).view(2, *x.shape[:2], 1).unbind(0)
        y = torch.addcmul(shift, x, scale)
        if self.weight is not None:
            y = torch.addcmul(self.bias, y, self.weight)
        return y, new_sums


class _Block:
    """One causal TCN block, folded (see module doc). ``fusion``: the SpeakerFusion feeding it, or ``None``;
    ``offset``: the constant the state lacks so far (its bias enters the first 1x1), updated in place."""

    def __init__(self, block, fusion, conds: list, channels: int, precision: str, offset: torch.Tensor):
        f32 = lambda t: t.detach().float()  # noqa: E731
        w_in, b_in = f32(block.in_conv.weight)[:, :, 0], f32(block.in_conv.bias)
        a1 = float(block.prelu1.weight.detach())
        self.first = []  # one first 1x1 per distinct speaker vector of the batch (one for an unconditioned block)
        for cond in (conds if fusion is not None else conds[:1]):
            w, b = _fold_fusion(fusion, w_in[:, :channels], w_in[:, channels:], b_in, cond)
            self.first.append(_Linear(w, b + w @ offset[:channels], precision, "leaky_relu", a1))
        # norm1's affine goes into the depthwise kernel (a per-channel map) where its scale has no zero: the cache
        # then holds normalized frames, and the zero padding before the stream becomes -bias / scale
        g1, b1 = f32(block.norm1.weight), f32(block.norm1.bias)
        fold = bool((g1 != 0).all())
        self.norm1, self.norm2 = _Norm(block.norm1, affine=not fold), _Norm(block.norm2, affine=False)
        self.dtype = dtype = PRECISIONS[precision]
        weight = f32(block.depthwise.weight)[:, 0]
        b_dw = f32(block.depthwise.bias)
        self.pad = -b1 / g1 if fold else torch.zeros_like(b1)  # the cache before the stream
        if fold:
            weight, b_dw = weight * g1[:, None], b_dw + b1 * weight.sum(1)
        self.taps = [weight[:, k].to(dtype).contiguous() for k in range(weight.shape[1])]
        self.b_dw, self.a2 = b_dw.to(dtype), float(block.prelu2.weight.detach())
        self.dilation, self.past, self.hidden = block.dilation, block.past, weight.shape[0]
        skip = f32(block.skip_conv.weight)[:, :, 0]
        if block.residual:
            res, b_res = f32(block.res_conv.weight)[:, :, 0], f32(block.res_conv.bias)
        else:  # the last block: a zero residual keeps one GEMM into the whole state
            res, b_res = skip.new_zeros(channels, skip.shape[1]), skip.new_zeros(channels)
        w_out, b_out = torch.cat([res, skip]), torch.cat([b_res, f32(block.skip_conv.bias)])
        self.out = _Linear(w_out * f32(block.norm2.weight), b_out, precision)
        offset += b_out + w_out @ f32(block.norm2.bias)

    def initial_cache(self, batch: int) -> Tuple[torch.Tensor, int]:
        """The depthwise buffer before the stream, ``(batch, past + ROOM, hidden)``, and where the next frame goes."""
        buf = self.pad.to(self.dtype).expand(batch, self.past + ROOM, -1).contiguous()
        return buf, self.past

    def __call__(self, state: torch.Tensor, channels: int, batch: int, cache: Tuple[torch.Tensor, int], sums: list,
                 count: int) -> Tuple[torch.Tensor, Tuple[torch.Tensor, int], list]:
        """Shape: state ``(batch * frames, channels + skip)``, cache ``((batch, size, hidden), next frame)`` -> new
        state, new cache (the same buffer, written after the old frames, or a new one), new sums of norm1 and
        norm2."""
        x = state[:, :channels]
        if len(self.first) == 1:
            h = self.first[0](x)
        else:  # per-stream weights (multiply / film with different speakers)
            h = torch.cat([first(part) for first, part in zip(self.first, x.chunk(batch))])
        h, s1 = self.norm1(h.view(batch, -1, self.hidden), sums[0], count)
        frames = h.shape[1]
        buf, pos = cache
        if pos + frames > buf.shape[1]:  # full: a new buffer with the last ``past`` frames at its front
            new = buf.new_empty(batch, self.past + max(ROOM, frames), self.hidden)
            new[:, :self.past] = buf[:, pos - self.past:pos]
            buf, pos = new, self.past
        buf[:, pos:pos + frames] = h
        start = pos - self.past  # output frame t reads frames start + t + k * dilation, k < P
        y = torch.addcmul(self.b_dw, buf[:, start:start + frames], self.taps[0])
        for k in range(1, len(self.taps)):
            y.addcmul_(buf[:, start + k * self.dilation:start + k * self.dilation + frames], self.taps[k])
        y, s2 = self.norm2(F.leaky_relu(y, self.a2, inplace=True), sums[1], count)
        state = self.out.add_into(y.view(-1, self.hidden).to(state.dtype), state)
        return state, (buf, pos + frames), [s1, s2]


class FastStreamingStep:
    """The function of a :class:`~sepaudio.nn.streaming.StreamingStep` (a TCN masker on CPU) with the speaker
    vector folded in, for inference (module doc).

    Its state has the same first two entries as the reference step's (encoder context, decoder tail), so
    :class:`~sepaudio.nn.streaming.Streamer` drives either; the rest (frame count, norm sums, depthwise buffers)
    is its own. A state is consumed: the step writes new frames into its depthwise buffers (past the frames the
    state holds), so continue from the state it returns, not from an older one with other input. Constant offsets
    (biases, norm shifts) never touch the state: each block's first 1x1 takes the residual part of the sum so far
    in its bias, the output the skip part.

    Args:
        step: the reference step (its modules' current weights are read once).
        cond: the speaker vector(s) of the stream(s) ``(batch, cond_dim)``; ``None`` for unconditioned models.
        precision: ``fp32`` | ``bf16`` | ``int8`` (the caller checks that the CPU runs it).

    Shape:
        chunk ``(batch, k * stride)`` -> output ``(batch, n_src, k * stride)`` (float32).
    """

    def __init__(self, step, cond: Optional[torch.Tensor] = None, precision: str = "fp32"):
        if not fusable(step):
            raise ValueError("the fused streaming step takes TCN maskers on the CPU")
        self.dtype = PRECISIONS[precision]
        self.window, self.stride, self.overlap, self.n_src = step.window, step.stride, step.overlap, step.n_src
        f32 = lambda t: t.detach().float()  # noqa: E731
        self.encoder_t = f32(step.encoder.get_filters())[:, 0].t().contiguous()  # (L, N)
        self.decoder_w = f32(step.decoder.get_filters())[:, 0]  # (N, L)
        self.input_norm = _Norm(step.input_norm, affine=False)
        self.channels = c = int(step.bottleneck.weight.shape[0])
        width = c + int(step.blocks[-1].skip_conv.weight.shape[0])
        w, b = f32(step.bottleneck.weight)[:, :, 0], f32(step.bottleneck.bias)
        pad = w.new_zeros(width - c, w.shape[1])  # the bottleneck writes the whole state, skip part zero
        self.bottleneck = _Linear(torch.cat([w * f32(step.input_norm.weight), pad]),
                                  torch.cat([b + w @ f32(step.input_norm.bias), pad[:, 0]]), precision
                                  if precision != "int8" else "fp32")
        conds = [None]
        if cond is not None:
            cond = cond.detach().float()
            conds = [cond[0]] if bool((cond == cond[:1]).all()) else list(cond)
        offset = w.new_zeros(width)
        self.blocks = [_Block(block, step.fusions[step.fusion_of[i]] if step.fusion_of[i] >= 0 else None, conds,
                              c, precision, offset) for i, block in enumerate(step.blocks)]
        self.skip_offset = offset[c:].to(self.dtype)
        self.out_prelu = float(step.output_prelu.weight.detach())
        self.mask_attr = _MASK_ATTRS.get(type(step.mask_act).__name__)  # None: softmax over sources
        self.output = _Linear(f32(step.output_conv.weight)[:, :, 0], f32(step.output_conv.bias), precision
                              if precision != "int8" else "fp32", self.mask_attr or "none")

    def initial_state(self, batch: int = 1) -> list:
        """``[encoder context (batch, L - S), decoder tail (batch, n_src, L - S), frames seen (int), cLN running
        sums [[(float, float)] * batch] * (1 + 2 * blocks), depthwise buffers [((batch, size, hidden), next frame)]
        * blocks]``."""
        zeros = lambda *shape, dtype=torch.float32: torch.zeros(shape, dtype=dtype)  # noqa: E731
        return [zeros(batch, self.overlap), zeros(batch, self.n_src, self.overlap), 0,
                [[(0.0, 0.0)] * batch for _ in range(1 + 2 * len(self.blocks))],
                [blk.initial_cache(batch) for blk in self.blocks]]

    @torch.inference_mode()
    def __call__(self, chunk: torch.Tensor, state: list) -> Tuple[torch.Tensor, list]:
        context, tail, count, sums, caches = state
        batch = chunk.shape[0]
        wav = torch.cat((context, chunk.float()), -1)
        rep = torch.matmul(wav.unfold(-1, self.window, self.stride), self.encoder_t)  # (batch, frames, N)
        frames, n = rep.shape[1], rep.shape[2]
        z, s = self.input_norm(rep, sums[0], count)
        new_sums, new_caches = [s], []
        state2d = self.bottleneck(z.view(-1, n) if self.dtype == torch.float32 else z.view(-1, n).to(self.dtype))
        for i, block in enumerate(self.blocks):
            state2d, cache, s = block(state2d, self.channels, batch, caches[i], sums[1 + 2 * i:3 + 2 * i], count)
            new_caches.append(cache)
            new_sums.extend(s)
        skip = F.leaky_relu(state2d[:, self.channels:] + self.skip_offset, self.out_prelu, inplace=True)
        masks = self.output(skip).float().view(batch, frames, self.n_src, n)
        if self.mask_attr is None:
            masks = masks.softmax(2)
        contrib = torch.matmul(masks * rep.unsqueeze(2), self.decoder_w)  # (batch, frames, n_src, L)
        out = F.fold(contrib.permute(0, 2, 3, 1).reshape(batch * self.n_src, self.window, frames),
                     (1, (frames - 1) * self.stride + self.window), (1, self.window), stride=(1, self.stride))
        out = out.view(batch, self.n_src, -1)
        out[..., :self.overlap] += tail
        n_out = frames * self.stride
        return out[..., :n_out], [wav[:, wav.shape[-1] - self.overlap:], out[..., n_out:], count + frames,
                                  new_sums, new_caches]
