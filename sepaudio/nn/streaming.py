"""Streaming inference of causal encoder / TCN masker / decoder models (Conv-TasNet, MiTAS, TseNet).

Two levels:

- :class:`StreamingStep` is a pure function of tensors, ``(chunk, state[, cond]) -> (output, new state)``, for
  chunks of whole encoder strides (so it can be traced, scripted or exported). The state holds everything a
  causal model keeps from the past: the encoder's last ``L - S`` input samples, the decoder's overlap-add tail, the
  frame count and running sums of every cumulative layer norm (cLN), and the last ``dilation * (P - 1)`` inputs of
  every dilated depthwise convolution.
- :class:`Streamer` takes chunks of any length (1 sample to hours), buffers the remainder of a stride, drops the
  encoder's start padding and, on :meth:`Streamer.flush`, the zero padding at the end, so that the concatenation of
  its outputs equals the model's offline output sample for sample (to float rounding). For inference on the CPU
  it runs a TCN model through :class:`~sepaudio.nn.fast_stream.FastStreamingStep` (the same function with few large
  operations per block, in ``fp32``, ``bf16`` or ``int8``); ``precision=None`` keeps the reference step.

A :class:`StreamingStep` reads the model's own modules (weights are shared, never copied); the fused step is a
snapshot of them taken when the :class:`Streamer` is made.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .fast_stream import FastStreamingStep, fusable
from .norms import EPS, ChannelwiseLayerNorm, CumulativeLayerNorm
from .slicenet import SliceNetMasker, SliceNetStreamStep

__all__ = ["ENGINES", "StreamingStep", "Streamer", "check_streamable"]

#: what runs the fused streaming step: ``torch`` (:class:`~sepaudio.nn.fast_stream.FastStreamingStep`), or
#: ``onnxruntime`` (:class:`~sepaudio.nn.onnx_stream.OnnxStreamingStep`: fp32 TCN models on the CPU, about 2x faster
#: at small hops, needs the ``export`` extra)
ENGINES = ("torch", "onnxruntime")


def check_streamable(model: nn.Module) -> None:
    """Raise ``ValueError`` saying why ``model`` cannot stream (a non-causal TCN, a norm that sees the future, or
    no encoder / TCN masker / decoder)."""
    masker = getattr(model, "masker", None)
    if isinstance(masker, SliceNetMasker) and hasattr(model, "encoder") and hasattr(model, "decoder"):
        if not masker.config.causal:
            raise ValueError(f"{type(model).__name__} is not causal (slicenet.causal: false): its output at every "
                             f"moment depends on the whole future, so it cannot stream. Train a causal model "
                             f"(slicenet: {{causal: true}}).")
        return
    tcn = getattr(masker, "tcn", None)
    if tcn is None or not hasattr(model, "encoder") or not hasattr(model, "decoder"):
        raise ValueError(f"{type(model).__name__} is not an encoder / TCN masker / decoder model; streaming takes "
                         f"conv_tasnet, mitas and tsenet models")
    config = tcn.config
    if not config.causal:
        raise ValueError(f"{type(model).__name__} is not causal (tcn.causal: false, norm: {config.norm}): its output "
                         f"at every moment depends on the whole future, so it cannot stream. Train a causal model "
                         f"(tcn: {{causal: true, norm: cLN}} or cwLN), e.g. recipes/tse_mini/conf_causal.yml.")
    for name, module in masker.named_modules():
        if "norm" in name.rsplit(".", 1)[-1] and not isinstance(module, (CumulativeLayerNorm, ChannelwiseLayerNorm)):
            raise ValueError(f"masker.{name} is a {type(module).__name__}, which sees the future; streaming needs "
                             f"cLN or cwLN norms")


class _NormStep(nn.Module):
    """One norm of the masker, frame by frame: cLN carries its running sums, cwLN is frame-local.

    Shape: x ``(batch, channels, frames)``, stats ``(batch, 2)`` (running sum and sum of squares; unused by cwLN),
    seen ``(frames,)`` frames seen up to each frame of x (1-based) -> ``(batch, channels, frames)``, new stats
    ``(batch, 2)``.
    """

    def __init__(self, norm: nn.Module):
        super().__init__()
        self.weight, self.bias = norm.weight, norm.bias
        self.cumulative, self.eps = isinstance(norm, CumulativeLayerNorm), float(EPS)

    def forward(self, x: torch.Tensor, stats: torch.Tensor, seen: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if not self.cumulative:
            y = F.layer_norm(x.transpose(1, -1), (x.shape[1],), self.weight, self.bias, self.eps)
            return y.transpose(1, -1), stats
        seen = seen * x.shape[1]
        total = x.sum(1).cumsum(-1) + stats[:, :1]
        power = x.pow(2).sum(1).cumsum(-1) + stats[:, 1:]
        mean = (total / seen).unsqueeze(1)
        var = (power / seen).unsqueeze(1) - mean.pow(2)
        y = (x - mean) / torch.sqrt(var.clamp_min(0) + self.eps)
        y = y * self.weight[:, None] + self.bias[:, None]
        return y, torch.stack([total[:, -1], power[:, -1]], dim=-1)


class _BlockStep(nn.Module):
    """A causal :class:`~sepaudio.nn.TCNBlock`, frame by frame, with the past of its depthwise convolution cached.

    Shape: x ``(batch, in_channels, frames)``, cache ``(batch, hidden, dilation * (P - 1))``, stats
    ``(batch, 2, 2)`` (norm1, norm2), seen ``(frames,)`` -> residual ``(batch, channels, frames)`` (to be ignored when
    ``residual`` is false), skip ``(batch, skip_channels, frames)``, new cache, new stats.
    """

    def __init__(self, block: nn.Module):
        super().__init__()
        self.in_conv, self.prelu1, self.prelu2 = block.in_conv, block.prelu1, block.prelu2
        self.norm1, self.norm2 = _NormStep(block.norm1), _NormStep(block.norm2)
        self.depthwise, self.skip_conv = block.depthwise, block.skip_conv
        self.res_conv = block.res_conv if block.residual else nn.Identity()  # the last block's is never read
        self.residual, self.dilation, self.past = bool(block.residual), int(block.dilation), int(block.pads[0])

    def forward(self, x: torch.Tensor, cache: torch.Tensor, stats: torch.Tensor, seen: torch.Tensor):
        y, stats1 = self.norm1(self.prelu1(self.in_conv(x)), stats[:, 0], seen)
        y = torch.cat([cache, y], dim=-1)
        cache = y[..., y.shape[-1] - self.past:]
        y = F.conv1d(y, self.depthwise.weight, self.depthwise.bias, dilation=self.dilation, groups=y.shape[1])
        y, stats2 = self.norm2(self.prelu2(y), stats[:, 1], seen)
        return self.res_conv(y), self.skip_conv(y), cache, torch.stack([stats1, stats2], dim=1)


class StreamingStep(nn.Module):
    """One step of a causal encoder / TCN masker / decoder model on a chunk of whole strides.

    ``state`` is a list of tensors (see :meth:`initial_state`); the function keeps nothing else between calls.
    Fed the model's zero-padded input (``P = encoder.padding`` zeros first, then the signal, then zeros) in chunks
    of any number of strides, the outputs concatenated are the decoder's output before it drops ``P`` samples at the
    start: :class:`Streamer` does that bookkeeping.

    Args:
        model: a causal :class:`~sepaudio.models.base.EncoderMaskerDecoder` with a TCN masker (``tcn.causal`` and
            cLN / cwLN norms); its modules are used, not copied.

    Shape:
        chunk ``(batch, k * stride)``, cond ``(batch, cond_dim)`` (conditioned models) -> output
        ``(batch, n_src, k * stride)``.

    Raises:
        ValueError: the model cannot stream (see :func:`check_streamable`).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        check_streamable(model)
        self.encoder, self.decoder = model.encoder, model.decoder
        masker = model.masker
        fb = model.encoder.filterbank
        self.window, self.stride, self.padding = int(fb.kernel_size), int(fb.stride), int(model.encoder.padding)
        self.overlap = self.window - self.stride
        self.n_src = int(masker.n_src)
        #: a SliceNet masker's step (its state: one cache per convolution step, no norm sums), else None (a TCN)
        self.slicenet = SliceNetStreamStep(masker) if isinstance(masker, SliceNetMasker) else None
        if self.slicenet is not None:
            self.fusions, self.output_conv = masker.fusions, masker.output_conv
            return
        self.input_norm, self.bottleneck = _NormStep(masker.input_norm), masker.bottleneck
        self.fusions, self.fusion_of = masker.tcn.fusions, masker.tcn.fusion_of
        self.blocks = nn.ModuleList([_BlockStep(block) for block in masker.tcn.blocks])
        self.output_prelu, self.output_conv, self.mask_act = masker.output_prelu, masker.output_conv, masker.mask_act

    def initial_state(self, batch: int = 1) -> List[torch.Tensor]:
        """The state before the first sample, zeros on the model's device and dtype: ``[encoder context
        (batch, L - S), decoder tail (batch, n_src, L - S), frame count (1,), norm sums (batch, 1 + 2 * blocks, 2),
        one depthwise cache per block (batch, H, d * (P - 1))]``."""
        weight = self.output_conv.weight
        zeros = lambda *shape: torch.zeros(shape, device=weight.device, dtype=weight.dtype)  # noqa: E731
        state = [zeros(batch, self.overlap), zeros(batch, self.n_src, self.overlap),
                 torch.zeros(1, dtype=torch.long, device=weight.device)]
        if self.slicenet is not None:  # SliceNet: [context, tail, frame count, one cache per step]
            return state + self.slicenet.initial_state(batch, weight.device, weight.dtype)
        state.append(zeros(batch, 1 + 2 * len(self.blocks), 2))
        return state + [zeros(batch, block.depthwise.weight.shape[0], block.past) for block in self.blocks]

    def state_names(self) -> List[str]:
        """Names of the tensors of :meth:`initial_state`, in order (the inputs of an exported step)."""
        caches = len(self.slicenet.steps) if self.slicenet is not None else len(self.blocks)
        return ["context", "tail", "frames", *(["norm_stats"] if self.slicenet is None else []),
                *(f"cache_{i}" for i in range(caches))]

    def forward(self, chunk: torch.Tensor, state: List[torch.Tensor],
                cond: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        context, tail, count = state[0], state[1], state[2]
        if len(self.fusions) > 0 and cond is None:
            raise ValueError("this model is conditioned on a speaker vector: pass cond of shape (batch, cond_dim)")
        wav = torch.cat([context, chunk], dim=-1)
        rep = F.conv1d(wav.unsqueeze(1), self.encoder.get_filters(), stride=self.stride)
        frames = rep.shape[-1]
        if self.slicenet is not None:
            masks, masker_state = self.slicenet(rep, state[3:], cond)
        else:
            masks, masker_state = self._tcn_masks(rep, count, state[3], state[4:], cond)
        masked = (masks * rep.unsqueeze(1)).reshape(-1, rep.shape[1], frames)
        out = F.conv_transpose1d(masked, self.decoder.get_filters(), stride=self.stride)
        out = out.view(rep.shape[0], self.n_src, -1)
        out = torch.cat([out[..., :self.overlap] + tail, out[..., self.overlap:]], dim=-1)
        n_out = frames * self.stride
        new_state = [wav[:, wav.shape[-1] - self.overlap:], out[..., n_out:], count + frames]
        return out[..., :n_out], new_state + masker_state

    def _tcn_masks(self, rep: torch.Tensor, count: torch.Tensor, stats: torch.Tensor, caches: List[torch.Tensor],
                   cond: Optional[torch.Tensor]) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """The TCN masker on new frames. Returns the masks and the masker's new state ``[norm sums, *caches]``."""
        frames = rep.shape[-1]
        seen = (count + torch.arange(1, frames + 1, device=rep.device)).to(rep.dtype)
        x, stat = self.input_norm(rep, stats[:, 0], seen)
        new_stats = [stat]
        x = self.bottleneck(x)
        new_caches: List[torch.Tensor] = []
        skip_sum = torch.zeros(0)
        for i, block in enumerate(self.blocks):
            inp = x if self.fusion_of[i] < 0 else self.fusions[self.fusion_of[i]](x, cond)
            residual, skip, cache, stat = block(inp, caches[i], stats[:, 1 + 2 * i:3 + 2 * i], seen)
            if block.residual:
                x = x + residual
            skip_sum = skip if i == 0 else skip_sum + skip
            new_caches.append(cache)
            new_stats.extend([stat[:, 0], stat[:, 1]])
        y = self.output_conv(self.output_prelu(skip_sum))
        masks = self.mask_act(y.view(y.shape[0], self.n_src, rep.shape[1], frames))
        return masks, [torch.stack(new_stats, dim=1)] + new_caches


class Streamer:
    """Run a causal model on a stream in hops of any size; the outputs joined equal the offline output.

    Each call takes the next ``hop`` samples (any length, it may change from call to call) and returns the output
    samples that are final: those no later input can change. Input shorter than a stride is buffered. At the end of
    the stream :meth:`flush` pads with zeros as the offline model does and returns the rest, so that the outputs
    together have exactly as many samples as the input.

    Algorithmic latency: an output sample needs input up to ``L - 1`` samples later (the encoder window ``L``), and
    input waits for the end of its hop, so every sample leaves at most ``L + hop`` samples after it came in (see
    :meth:`latency`), plus compute time.

    Args:
        model: a causal encoder / TCN masker / decoder model (see :class:`StreamingStep`).
        cond: the speaker vector of a conditioned model (TseNet: ``model.embed(ivector_or_enrollment)``), given once.
        batch: streams processed side by side.
        precision: ``fp32`` (default; on the CPU a TCN model runs the fused step, equal to the reference to float32
            rounding), ``bf16``, ``int8`` (as :meth:`~sepaudio.models.base.EncoderMaskerDecoder.fast`, with its
            refusals), or ``None`` for the reference :class:`StreamingStep`. The fused step is a snapshot of the
            weights: make a new streamer after changing them.
        engine: what runs the fused step (:data:`ENGINES`): ``torch``, or ``onnxruntime`` (the same function as one
            ONNX graph per stream, fp32 TCN models on the CPU; built in 1-4 s, then about 2x faster per step on small
            models).

    Shape:
        ``__call__``: chunk ``(batch, hop)`` | ``(hop)`` -> ``(batch, n_src, m)`` | ``(n_src, m)``, ``m`` the
        samples that became final (0 when a hop is shorter than a stride).

    Raises:
        ValueError: the model cannot stream, or a conditioned model without ``cond``.
        ConfigError: a precision this CPU or device cannot run (see ``model.fast``); the ``onnxruntime`` engine
            with another precision, another device or masker, or without onnxruntime installed.

    Example::

        streamer = model.streamer()             # TseNet: model.streamer(model.embed(ivector))
        out = [streamer(hop) for hop in hops] + [streamer.flush()]
        torch.cat(out, -1)                      # == model(torch.cat(hops, -1)) to 1e-5
    """

    def __init__(self, model: nn.Module, cond: Optional[torch.Tensor] = None, batch: int = 1,
                 precision: Optional[str] = "fp32", engine: str = "torch"):
        self.step = StreamingStep(model)
        if len(self.step.fusions) > 0 and cond is None:
            raise ValueError("this model is conditioned on a speaker vector: pass cond=model.embed(speaker)")
        if precision is not None and hasattr(model, "check_precision"):
            model.check_precision(precision)  # the refusals of model.fast(precision)
        if cond is not None and cond.dim() == 1:
            cond = cond.unsqueeze(0)
        self.cond = None if cond is None else cond.expand(batch, *cond.shape[1:])
        self.sample_rate, self.n_src, self.batch = int(model.sample_rate), self.step.n_src, batch
        self.precision = precision
        fused = bool(precision) and fusable(self.step)
        if engine not in ENGINES:
            raise ConfigError(f"unknown streaming engine {engine!r}; choose one of {', '.join(ENGINES)}")
        if engine == "onnxruntime" and (precision != "fp32" or not fused):
            raise ConfigError(f"the onnxruntime streaming engine runs fp32 TCN models on the CPU (this stream: "
                              f"precision {precision}, {type(model.masker).__name__} on "
                              f"{self.step.output_conv.weight.device.type}); use --engine torch.")
        #: the fused step (a TCN masker on the CPU with a precision), else None: the reference step runs
        self.fast = None
        if engine == "onnxruntime":
            from .onnx_stream import OnnxStreamingStep

            self.fast = OnnxStreamingStep(self.step, self.cond, batch)
        elif fused:
            self.fast = FastStreamingStep(self.step, self.cond, precision)
        self._autocast = precision == "bf16" and self.fast is None  # SliceNet, or a GPU: the reference under autocast
        self._pad = model.pad  # the offline model's end padding, ``(batch, time) -> (batch, time + extra)``
        self.reset()

    @property
    def window(self) -> int:
        """The encoder window L in samples."""
        return self.step.window

    def latency(self, hop: int) -> int:
        """Algorithmic latency in samples for hops of ``hop`` samples: encoder window + hop (an upper bound; the
        exact worst case is ``L + hop - 2``)."""
        return self.window + hop

    def reset(self) -> None:
        """Start a new stream (the speaker vector is kept)."""
        step = self.step
        self.state = (self.fast or step).initial_state(self.batch)
        # The padded stream starts with ``padding`` zeros. The step's zero context stands for the first ``overlap``
        # of them; a context longer than the padding is filled from the stream itself before the first step.
        device, dtype = self.state[0].device, self.state[0].dtype
        self._primed = step.overlap <= step.padding
        ahead = step.padding - step.overlap if self._primed else step.padding
        self._pending = torch.zeros(self.batch, ahead, device=device, dtype=dtype)
        self._skip, self._seen, self._sent, self._unbatched = step.padding, 0, 0, False

    @torch.inference_mode()
    def __call__(self, chunk: torch.Tensor) -> torch.Tensor:
        self._unbatched = chunk.dim() == 1
        chunk = chunk.reshape(self.batch, -1).to(self._pending)
        self._seen += chunk.shape[-1]
        out = self._feed(chunk)
        return out.squeeze(0) if self._unbatched else out

    @torch.inference_mode()
    def flush(self) -> torch.Tensor:
        """End the stream: the remaining output (the input padded at the end as the offline model pads it), then
        :meth:`reset`.

        Shape: ``(batch, n_src, m)``, or ``(n_src, m)`` when the chunks were ``(hop)``.
        """
        padded = self._pad(self._pending.new_zeros(0, self._seen)).shape[-1] + self.step.padding
        out = self._feed(self._pending.new_zeros(self.batch, padded - self._seen), final=True)
        unbatched = self._unbatched
        self.reset()
        return out.squeeze(0) if unbatched else out

    def _feed(self, chunk: torch.Tensor, final: bool = False) -> torch.Tensor:
        """Step over the whole strides of the buffered input; at the end (``final``) add the decoder's tail."""
        pending = torch.cat([self._pending, chunk], dim=-1)  # a copy: the caller may reuse its buffer
        if not self._primed:
            if pending.shape[-1] < self.step.overlap:
                self._pending = pending
                return pending.new_zeros(self.batch, self.n_src, 0)
            self.state[0], pending = pending[:, :self.step.overlap], pending[:, self.step.overlap:]
            self._primed = True
        usable = pending.shape[-1] - pending.shape[-1] % self.step.stride
        self._pending = pending[:, usable:]
        if usable:
            out, self.state = self._step(pending[:, :usable])
        else:
            out = pending.new_zeros(self.batch, self.n_src, 0)
        if final:
            out = torch.cat([out, self.state[1]], dim=-1)
        drop = min(self._skip, out.shape[-1])
        self._skip -= drop
        keep = min(out.shape[-1] - drop, self._seen - self._sent)
        self._sent += keep
        return out[..., drop:drop + keep]

    def _step(self, chunk: torch.Tensor) -> Tuple[torch.Tensor, list]:
        """One step of the fused or reference step on whole strides. Shape: ``(batch, k * stride)`` ->
        ``(batch, n_src, k * stride)``, new state."""
        if self.fast is not None:
            return self.fast(chunk, self.state)
        if self._autocast:
            with torch.autocast(chunk.device.type, dtype=torch.bfloat16):
                out, state = self.step(chunk, self.state, self.cond)
            return out.float(), state
        return self.step(chunk, self.state, self.cond)
