"""The fused streaming step as one ONNX graph run by onnxruntime: the function of
:class:`~sepaudio.nn.fast_stream.FastStreamingStep` (its folded weights) in about 40 graph nodes per block. At a few
frames per hop a small model's step is bound by the cost of each call, not by arithmetic: onnxruntime runs a node in
~2 us where a torch call costs ~10 us, so this step is about 2x faster than the fused torch step on tse_mini (see
``benchmarks/bench_streaming.py``).

One graph per stream, frame-major ``(frames, channels)``, every slice static (fixed offsets from either end):

- encoder: one strided ``Conv``; decoder: one ``ConvTranspose`` and the overlap-add of the previous tail;
- a block: its first 1x1 (speaker vector folded in) is one ``Gemm`` + activation over the whole
  ``(channels + skip)`` state, the skip part read through zero rows; the depthwise convolution is ``P``
  multiply-adds over the cached past concatenated with the new frames; residual + skip 1x1 is one ``Gemm`` into the
  state;
- cLN: each frame's mean and mean square (+ eps) over channels from one ``Gemm``, running sums in float32 as the
  offline model's cumulative sums.

Built when a stream starts (exporting and loading the graph takes 1-4 s); needs the ``export`` extra (onnx,
onnxruntime).
"""
from __future__ import annotations

import io
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .fast_stream import FastStreamingStep

__all__ = ["OnnxStreamingStep", "have_onnxruntime"]

OPSET = 17


def have_onnxruntime() -> bool:
    """Whether ``onnx`` and ``onnxruntime`` import (the ``export`` extra)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class _Norm(nn.Module):
    """A cLN (running sums carried) or cwLN of the fused step on one stream's frames. Shape: x ``(frames, channels)``,
    sums ``(1, 2)``, inv_seen ``(frames, 1)`` (1 / frames seen) -> ``(frames, channels)``, new sums."""

    def __init__(self, norm, channels: int):
        super().__init__()
        self.cumulative, self.eps, self.channels = norm.cumulative, norm.eps, channels
        self.register_buffer("weight", None if norm.weight is None else norm.weight.clone())
        self.register_buffer("bias", None if norm.bias is None else norm.bias.clone())
        if self.cumulative:  # [x, x * x] -> (mean, mean square + eps) over channels: one matrix product
            self.register_buffer("moments", torch.block_diag(*[torch.full((channels, 1), 1.0 / channels)] * 2))
            self.register_buffer("moments_bias", torch.tensor([0.0, self.eps]))

    def forward(self, x: torch.Tensor, sums: torch.Tensor, inv_seen: torch.Tensor):
        if not self.cumulative:
            y = F.layer_norm(x, (self.channels,), None, None, self.eps)
        else:
            running = torch.addmm(self.moments_bias, torch.cat([x, x * x], 1), self.moments).cumsum(0) + sums
            sums = running[-1:]
            mean, square = (running * inv_seen).split(1, 1)
            y = (x - mean) * torch.pow((square - mean * mean).clamp_min(self.eps), -0.5)  # max(var, 0) + eps
        return y if self.weight is None else y * self.weight + self.bias, sums


class _Block(nn.Module):
    """One folded TCN block (see :class:`~sepaudio.nn.fast_stream._Block`) on one stream's frames.

    Shape: state ``(frames, channels + skip)``, cache ``(past, hidden)``, sums ``[(1, 2)] * 2`` -> new state, new
    cache, new sums of norm1 and norm2."""

    def __init__(self, block, channels: int, width: int):
        super().__init__()
        (first,) = block.first  # one stream: one speaker vector
        # (width, hidden): the skip part of the state is read through zero rows
        self.register_buffer("first_w", torch.cat([first.wt, first.wt.new_zeros(width - channels, first.wt.shape[1])]))
        self.register_buffer("first_b", first.bias.clone())
        self.slope1, self.slope2 = first.slope, block.a2
        self.norm1, self.norm2 = _Norm(block.norm1, block.hidden), _Norm(block.norm2, block.hidden)
        self.taps = [tap.clone() for tap in block.taps]  # P x (hidden): graph constants
        self.register_buffer("b_dw", block.b_dw.clone())
        self.register_buffer("out_w", block.out.wt.clone())  # (hidden, width)
        self.dilation, self.past = block.dilation, block.past
        self.pad = block.pad.clone()  # (hidden): every row of the cache before the stream

    def forward(self, state: torch.Tensor, cache: torch.Tensor, sums: List[torch.Tensor], inv_seen: torch.Tensor):
        h = F.leaky_relu(torch.addmm(self.first_b, state, self.first_w), self.slope1)
        h, s1 = self.norm1(h, sums[0], inv_seen)
        past = torch.cat([cache, h])
        y = self.b_dw + h * self.taps[-1]  # the last tap reads the new frames
        for k, tap in enumerate(self.taps[:-1]):  # static slices: tap k reads k * d to (P - 1 - k) * d before the end
            y = y + past[k * self.dilation:(k + 1 - len(self.taps)) * self.dilation] * tap
        y, s2 = self.norm2(F.leaky_relu(y, self.slope2), sums[1], inv_seen)
        return torch.addmm(state, y, self.out_w), past[-self.past:] if self.past else cache, s1, s2


class _Graph(nn.Module):
    """The fused step of one stream as a module of graph-friendly ops (exported once, then run by onnxruntime).

    Shape: chunk ``(1, k * stride)``, context ``(1, L - S)``, tail ``(1, n_src, L - S)``, count ``(1,)`` float64,
    ``1 + 2 * blocks`` norm sums ``(1, 2)``, caches ``(past, hidden)`` -> output ``(1, n_src, k * stride)``,
    and the new state in the same order."""

    def __init__(self, fast: FastStreamingStep):
        super().__init__()
        self.stride, self.overlap, self.n_src = fast.stride, fast.overlap, fast.n_src
        self.channels, self.mask_attr = fast.channels, fast.mask_attr
        self.register_buffer("encoder", fast.encoder_t.t()[:, None].contiguous())  # (N, 1, L)
        self.register_buffer("decoder", fast.decoder_w[:, None].contiguous())  # (N, 1, L)
        n = self.encoder.shape[0]
        self.input_norm = _Norm(fast.input_norm, n)
        self.register_buffer("bottleneck_w", fast.bottleneck.wt.clone())  # (N, width)
        self.register_buffer("bottleneck_b", fast.bottleneck.bias.clone())
        width = self.bottleneck_w.shape[1]
        self.blocks = nn.ModuleList([_Block(block, fast.channels, width) for block in fast.blocks])
        self.register_buffer("skip_offset", fast.skip_offset.float().clone())
        self.out_prelu = fast.out_prelu
        self.register_buffer("output_w", fast.output.wt.clone())  # (skip, n_src * N)
        self.register_buffer("output_b", fast.output.bias.clone())

    def forward(self, chunk, context, tail, count, *rest):
        sums, caches = rest[:1 + 2 * len(self.blocks)], rest[1 + 2 * len(self.blocks):]
        wav = torch.cat([context, chunk], 1)
        rep = F.conv1d(wav[:, None], self.encoder, stride=self.stride)[0].t()  # (frames, N)
        frames = rep.shape[0]
        inv_seen = (1.0 / (count + torch.arange(1, frames + 1, dtype=torch.float64))).float()[:, None]
        z, s = self.input_norm(rep, sums[0], inv_seen)
        new_sums, new_caches = [s], []
        state = torch.addmm(self.bottleneck_b, z, self.bottleneck_w)
        for i, block in enumerate(self.blocks):
            state, cache, s1, s2 = block(state, caches[i], sums[1 + 2 * i:3 + 2 * i], inv_seen)
            new_caches.append(cache)
            new_sums += [s1, s2]
        skip = F.leaky_relu(state[:, self.channels:] + self.skip_offset, self.out_prelu)
        masks = torch.addmm(self.output_b, skip, self.output_w)
        if self.mask_attr == "sigmoid":
            masks = torch.sigmoid(masks)
        elif self.mask_attr == "relu":
            masks = torch.relu(masks)
        masks = masks.view(frames, self.n_src, -1)
        if self.mask_attr is None:
            masks = masks.softmax(1)
        masked = (masks * rep[:, None]).permute(1, 2, 0)  # (n_src, N, frames)
        out = F.conv_transpose1d(masked, self.decoder, stride=self.stride).view(1, self.n_src, -1)
        if not self.overlap:  # a stride of the whole window: no context, no tail
            return (out, wav[:, :0], out[..., :0], count + frames, *new_sums, *new_caches)
        out = torch.cat([out[..., :self.overlap] + tail, out[..., self.overlap:]], 2)
        return (out[..., :-self.overlap], wav[:, -self.overlap:], out[..., -self.overlap:], count + frames,
                *new_sums, *new_caches)


class OnnxStreamingStep:
    """:class:`~sepaudio.nn.fast_stream.FastStreamingStep` (fp32) exported to ONNX and run by onnxruntime on one
    thread, with its interface (``initial_state``, ``__call__(chunk, state)``): the state's first two entries are the
    encoder context and the decoder tail (tensors); the rest is one list of arrays per stream, kept as onnxruntime
    returns them. Streams with the same speaker vector share one graph.

    Args:
        step: the reference :class:`~sepaudio.nn.streaming.StreamingStep` (a TCN masker on the CPU).
        cond: the speaker vector(s) ``(batch, cond_dim)``, or ``None`` for unconditioned models.
        batch: streams processed side by side.

    Raises:
        ConfigError: onnx / onnxruntime are not installed.

    Shape:
        chunk ``(batch, k * stride)`` -> output ``(batch, n_src, k * stride)``.
    """

    def __init__(self, step, cond: Optional[torch.Tensor] = None, batch: int = 1):
        if not have_onnxruntime():
            raise ConfigError("the onnxruntime streaming engine needs onnx and onnxruntime: pip install "
                              "'sepaudio[export]', or stream with the torch engine (--engine torch).")
        import onnxruntime

        self.stride, self.overlap, self.n_src = step.stride, step.overlap, step.n_src
        self.feeds, self.sessions, built = [], [], {}
        for b in range(batch):
            key = None if cond is None else tuple(cond[b].tolist())
            if key not in built:
                graph = _Graph(FastStreamingStep(step, None if cond is None else cond[b:b + 1], "fp32")).eval()
                built[key] = (graph, self._session(onnxruntime, graph))
            self.sessions.append(built[key])

    def _session(self, onnxruntime, graph: _Graph):
        state = self._graph_state(graph)
        names = ["chunk", "context", "tail", "count", *(f"sums_{i}" for i in range(1 + 2 * len(graph.blocks))),
                 *(f"cache_{i}" for i in range(len(graph.blocks)))]
        buffer = io.BytesIO()
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(graph, (torch.zeros(1, 3 * self.stride), torch.zeros(1, self.overlap),
                                      torch.zeros(1, self.n_src, self.overlap), *state), buffer,
                              input_names=names, output_names=["output", *(f"new_{n}" for n in names[1:])],
                              opset_version=OPSET, dynamo=False, dynamic_axes={"chunk": {1: "time"},
                                                                               "output": {2: "time"}})
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        used = {arg.name for arg in session.get_inputs()}  # the export drops inputs a graph never reads (no tail)
        self.feeds = [(k, name) for k, name in enumerate(names) if name in used]
        return session

    @staticmethod
    def _graph_state(graph: _Graph) -> list:
        """One stream's state after the context and tail: frames seen, norm sums, depthwise caches."""
        return [torch.zeros(1, dtype=torch.float64), *(torch.zeros(1, 2) for _ in range(1 + 2 * len(graph.blocks))),
                *(block.pad.expand(block.past, -1).contiguous() for block in graph.blocks)]

    def initial_state(self, batch: int = 1) -> list:
        """``[context (batch, L - S), tail (batch, n_src, L - S), [frames seen (1,) float64, norm sums (1, 2) * (1 +
        2 * blocks), depthwise caches (past, hidden) * blocks] * batch]`` (arrays)."""
        assert batch == len(self.sessions), "the graphs were built for another batch"
        return [torch.zeros(batch, self.overlap), torch.zeros(batch, self.n_src, self.overlap),
                [[t.numpy() for t in self._graph_state(graph)] for graph, _ in self.sessions]]

    def __call__(self, chunk: torch.Tensor, state: list) -> Tuple[torch.Tensor, list]:
        """Shape: chunk ``(batch, k * stride)`` float32 -> ``(batch, n_src, k * stride)``, new state (this call costs
        ~2 us per graph node: no torch call here but the wrapping of the arrays)."""
        context, tail, streams = state
        chunk, context, tail = chunk.numpy(), context.numpy(), tail.numpy()
        outs, contexts, tails, new = [], [], [], []
        for b, ((_, session), rest) in enumerate(zip(self.sessions, streams)):
            values = [chunk[b:b + 1], context[b:b + 1], tail[b:b + 1], *rest]
            out, ctx, tl, *rest = session.run(None, {name: values[k] for k, name in self.feeds})
            outs.append(out), contexts.append(ctx), tails.append(tl), new.append(rest)
        join = lambda arrays: torch.from_numpy(arrays[0] if len(arrays) == 1 else np.concatenate(arrays))  # noqa: E731
        return join(outs), [join(contexts), join(tails), new]
