"""Fused inference of a trained :class:`~sepaudio.nn.TCNMasker` on CPU: the same function, fewer passes over memory.

Built once from the masker's weights (packed once; rebuilt by the next call after any in-place change of them, which
their version counters show; a parameter replaced by a new tensor needs ``model.fast()`` again), it computes in a
``(time, channels)`` layout, one utterance at a time, so that every 1x1 convolution is a GEMM with many rows:

- each block's first 1x1 carries its bias and PReLU in the GEMM (oneDNN post-op, pre-packed weights);
- gLN needs its statistics (one reduction per tensor), but its affine and the normalization itself are folded into
  the next linear map: norm1 into the depthwise kernel (per utterance; the few edge frames, where zero padding
  differs, are recomputed exactly), norm2 into the residual + skip 1x1, which are one GEMM whose post-op adds its
  output to one ``(time, channels + skip_channels)`` state (no separate residual or skip additions);
- constant offsets (biases, the folded means) never touch the big tensors: they are carried as vectors and enter
  the next block's GEMM bias;
- the depthwise convolution runs channels-last with its bias and PReLU fused (oneDNN);
- speaker fusion becomes a per-utterance bias (``concat``, ``add``) or weight (``multiply``, ``film``) of the
  block's first 1x1;
- ``bf16`` runs the same computation in bfloat16 (AVX512-BF16 / AMX GEMMs); statistics accumulate in float32. oneDNN
  runs bfloat16 only on CPUs with AVX512-BW/VL/DQ or AVX-NE-CONVERT (:func:`cpu_has_bf16`); elsewhere it is refused.
- ``int8`` runs every block's two 1x1 GEMMs (96 % of the 1x1 arithmetic of the default Conv-TasNet) in 8-bit
  integers (:class:`_QLinear`): weights per output channel (symmetric, int8), activations per tensor and per call
  (asymmetric uint8, range from the valid frames), int32 accumulation, float32 output with the same fused post-ops
  (PReLU; the sum into the residual + skip state). gLN's 1/std is a scalar, so it goes into the activation scale
  for free. The bottleneck and the mask 1x1 stay float32: 4 % of the arithmetic, and the mask one sets the output.

cLN / cwLN / BN are applied explicitly (their statistics vary over time), the rest stays fused.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .norms import GlobalLayerNorm

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "int8": torch.float32}  # int8: the GEMMs; the rest fp32
_mkldnn = torch.ops.mkldnn
_MASK_ATTRS = {"Sigmoid": "sigmoid", "ReLU": "relu"}


def cpu_has_bf16() -> bool:
    """Whether this CPU runs oneDNN's bfloat16 kernels (AVX512-BW/VL/DQ or AVX-NE-CONVERT; AVX2 alone does not)."""
    return bool(_mkldnn._is_mkldnn_bf16_supported())


def _pack(weight: torch.Tensor) -> torch.Tensor:
    """A linear weight ``(out, in)`` in oneDNN's blocked layout (reused by every call)."""
    return _mkldnn._reorder_linear_weight(weight.contiguous(), None)


def _linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor, attr: str = "none", scalars=()) -> torch.Tensor:
    """``attr(x @ W.T + bias)`` with a packed weight. Shape: ``(rows, in)`` -> ``(rows, out)``."""
    return _mkldnn._linear_pointwise(x, packed, bias, attr, list(scalars), "")


def cpu_has_int8() -> bool:
    """Whether this torch build and CPU run oneDNN's int8 GEMMs with fused post-ops (``torch.ops.onednn``, AVX2 or
    newer); elsewhere ``int8`` is refused."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.onednn, "qlinear_pointwise") and \
        torch.cpu._is_avx2_supported()


class _QLinear:
    """A 1x1 convolution ``(out, in)`` in 8-bit integers through oneDNN (``torch.ops.onednn.qlinear_pointwise``).

    Weights: int8, symmetric, one scale per output channel, packed once. Activations: uint8 with a scale and zero
    point per call, from the min / max of the valid rows. Without VNNI (AVX2, AVX-512F) the u8 x s8 products are
    summed in pairs into int16, which saturates for 8-bit activations, so they use 7 bits there (as fbgemm's
    ``reduce_range``); with VNNI / AMX all 8.

    Why oneDNN's qlinear and not the others (measured on an AVX2 EPYC without VNNI, one thread, the block shapes of
    the default Conv-TasNet and ``benchmarks/bench_conv_tasnet.py --onnxruntime``): ``torch.ops.quantized.
    linear_dynamic`` (fbgemm / onednn engines; the eager ``torch.ao.quantization`` API around it warns that it is
    deprecated) ran the bare GEMMs about as fast as oneDNN's qlinear (within 30 %, noisy), but has no post-ops, so
    the PReLU and the residual / skip sum would be extra passes over the biggest tensors, and gLN's 1/std could
    not ride in the activation scale; onnxruntime's dynamically quantized graph (``quantize_dynamic`` of the
    exported model: 1x1 convolutions as ``ConvInteger`` took twice as long as this path; as time-major
    ``DynamicQuantizeMatMul``, what ``sepaudio export --precision int8`` writes, 1.4-1.5x as long) would also need
    the ``export`` extra at inference. oneDNN's kernel takes the activation scale as an argument,
    fuses the post-ops of the fp32 path, and is what torch's own x86 quantization (PT2E + inductor) lowers to.
    On that CPU int8 is no faster than fp32 (oneDNN's AVX2 int8 GEMM runs at the fp32 rate); it is meant for VNNI
    / AMX CPUs.
    """

    def __init__(self, weight: torch.Tensor):
        weight = weight.detach().float()
        self.scales = (weight.abs().amax(1) / 127).clamp_min(1e-30)
        q = torch.round(weight / self.scales[:, None]).clamp_(-127, 127).to(torch.int8)
        self.packed = torch.ops.onednn.qlinear_prepack(q, None)
        self.zeros = torch.zeros(weight.shape[0], dtype=torch.long)
        self.levels = 255 if torch.cpu._is_vnni_supported() else 127

    def _quantize(self, x: torch.Tensor, frames: int) -> tuple[torch.Tensor, float, int]:
        """``x`` as uint8 (rows past ``frames`` clipped to the range of the first ``frames``), its scale and zero
        point. Shape: ``(rows, in)`` -> same."""
        lo, hi = torch.aminmax(x[:frames])
        lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
        scale = max(hi - lo, 1e-30) / (self.levels - 1)  # one level to spare: round(hi / scale) + zero <= levels
        zero = round(-lo / scale)
        q = torch.quantize_per_tensor(x, scale, zero, torch.quint8)
        u8 = torch.empty(0, dtype=torch.uint8).set_(q.untyped_storage(), 0, q.shape, q.stride())  # no copy
        return u8, scale, zero

    def __call__(self, x: torch.Tensor, bias: torch.Tensor | None, frames: int, attr: str = "none", scalars=(),
                 into: torch.Tensor | None = None, gain: float = 1.0) -> torch.Tensor:
        """``attr(gain * x @ W.T + bias)``, or with ``into``: ``into += gain * x @ W.T`` in place (returned).

        Shape: ``(rows, in)`` -> ``(rows, out)``; ``into`` ``(rows, out)``, contiguous.
        """
        u8, scale, zero = self._quantize(x, frames)
        if into is None:
            return torch.ops.onednn.qlinear_pointwise(u8, scale * gain, zero, self.packed, self.scales, self.zeros,
                                                      bias, 1.0, 0, torch.float32, attr, list(scalars), "")
        return torch.ops.onednn.qlinear_pointwise.binary(u8, scale * gain, zero, self.packed, self.scales, self.zeros,
                                                         into, bias, 1.0, 0, torch.float32, 1.0, 0, "sum", 1.0,
                                                         "none", [], "")


def _versions(module: torch.nn.Module) -> tuple[int, ...]:
    """The in-place version counters of ``module``'s parameters and buffers (an optimizer step, ``load_state_dict``
    or ``param.data.copy_`` raises them)."""
    return tuple(t._version for t in (*module.parameters(), *module.buffers()))


def _gln_stats(x: torch.Tensor, eps: float) -> tuple[float, float]:
    """Mean and 1/std of all elements of ``x`` (one pass; float32 accumulation)."""
    _, mean, rstd = torch.native_group_norm(x.reshape(1, 1, -1), None, None, 1, 1, x.numel(), 1, eps)
    return float(mean), float(rstd)


def _norm_tc(norm: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a ``(batch, channels, time)`` norm to a ``(time, channels)`` tensor."""
    return norm(x.t()[None].float()).to(x.dtype)[0].t()


class _Block:
    """One TCN block's weights, folded and packed. ``fusion`` is the :class:`SpeakerFusion` feeding it, if any."""

    def __init__(self, block, fusion, channels: int, dtype: torch.dtype, last: bool, int8: bool = False):
        f32 = lambda t: t.detach().float()  # noqa: E731
        w_in = f32(block.in_conv.weight)[:, :, 0]
        self.w_x, self.w_cond = w_in[:, :channels], w_in[:, channels:]
        self.b_in = f32(block.in_conv.bias)
        self.fusion, self.int8 = fusion, int8
        fixed = fusion is None or fusion.kind in ("concat", "add")  # else the weight changes with the speaker
        self.packed_in = (_QLinear(self.w_x) if int8 else _pack(self.w_x.to(dtype))) if fixed else None
        self.a1, self.a2 = float(block.prelu1.weight.detach()), float(block.prelu2.weight.detach())
        self.norm1, self.norm2 = block.norm1, block.norm2
        self.gln = isinstance(block.norm1, GlobalLayerNorm)
        self.dw = f32(block.depthwise.weight)[:, 0]  # (hidden, kernel)
        self.b_dw = f32(block.depthwise.bias)
        self.dilation, (self.left, self.right) = block.dilation, block.pads
        skip = f32(block.skip_conv.weight)[:, :, 0]
        res = f32(block.res_conv.weight)[:, :, 0] if not last else skip.new_zeros(channels, skip.shape[1])
        w_out = torch.cat([res, skip])  # residual and skip 1x1 as one GEMM
        self.width = w_out.shape[0]
        b_res = f32(block.res_conv.bias) if not last else skip.new_zeros(channels)
        self.b_out = torch.cat([b_res, f32(block.skip_conv.bias)])
        if self.gln:
            g1, g2 = f32(block.norm1.weight), f32(block.norm2.weight)
            self.eps = block.norm1.eps
            self.b1, self.g1, self.dw_sum = f32(block.norm1.bias), g1, self.dw.sum(1)
            w_g = w_out * f32(block.norm2.weight)
            self.w_g, self.out_rowsum = w_g, w_g.sum(1)
            # packed once; per call only scaled by 1/std in oneDNN's layout (a pass over the weight, no reorder)
            self.packed_g = _pack(w_g) if dtype == torch.float32 and not int8 else None
            self.b_out = self.b_out + w_out @ f32(block.norm2.bias)
        elif not int8:
            self.out_t = w_out.t().to(dtype)
        self.q_out = _QLinear(w_g if self.gln else w_out) if int8 else None
        self.dtype = dtype

    def first_conv(self, x: torch.Tensor, offset: torch.Tensor, cond: torch.Tensor | None, frames: int
                   ) -> torch.Tensor:
        """PReLU(in_conv(fusion(x + offset, cond))); int8 activations scaled by the range of the first ``frames``
        rows. Shape: ``(rows, channels)`` -> ``(rows, hidden)``."""
        w, bias, packed = self.w_x, self.b_in, self.packed_in
        if self.fusion is not None:
            kind = self.fusion.kind
            if kind == "concat":
                bias = bias + self.w_cond @ cond
            else:
                proj = self.fusion.proj(cond).float()
                if kind == "add":
                    bias = bias + w @ proj
                else:
                    scale, shift = (proj, None) if kind == "multiply" else proj.chunk(2)
                    if shift is not None:
                        bias = bias + w @ shift
                    w = w * scale
                    packed = None
        bias = bias + w @ offset
        if self.int8:
            qlinear = packed if packed is not None else _QLinear(w)
            return qlinear(x, bias, frames, "leaky_relu", [self.a1])
        packed = _pack(w.to(self.dtype)) if packed is None else packed
        return _linear(x.contiguous(), packed, bias.to(self.dtype), "leaky_relu", [self.a1])

    def depthwise(self, p: torch.Tensor, frames: int) -> torch.Tensor:
        """PReLU(depthwise(norm1(p))) over the first ``frames`` rows of ``p``, whose other rows are ignored.

        Shape: ``(rows, hidden)`` -> same (``rows`` a multiple of the dilation); rows past ``frames`` are junk.
        """
        rows = p.shape[0]
        if not self.gln:
            z = p.new_zeros(rows, p.shape[1])
            z[:frames] = _norm_tc(self.norm1, p[:frames])
            return self._conv(z, self.dw, self.b_dw)
        mean, rstd = _gln_stats(p[:frames], self.eps)
        scale = self.g1 * rstd
        shift = self.b1 - mean * scale
        p[frames:].zero_()
        out = self._conv(p, self.dw * scale[:, None], self.b_dw + shift * self.dw_sum)
        head = min(self.left, frames)
        for lo, hi in ((0, head), (max(frames - self.right, head), frames)):
            if hi > lo:  # zero padding of the normalized input: recompute these frames unfolded
                out[lo:hi] = self._exact(p[:frames], lo, hi, scale, shift)
        return out

    def _conv(self, p: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Depthwise convolution + bias + PReLU, zero padded by ``(left, right)``, channels-last (oneDNN).

        A dilation-d convolution over ``rows`` (a multiple of d) is run as an undilated one over ``rows / d`` frames
        of ``d * hidden`` channels (oneDNN's dilated depthwise kernels are slow). Shape: ``(rows, hidden)`` -> same.
        """
        rows, hidden = p.shape
        d, (left, right) = self.dilation, (self.left, self.right)
        if left % d or right % d:  # even kernels: the dilated kernel, padded max(left, right) on both sides
            d = 1
        groups = d * hidden
        pad = max(left, right) // d
        x = p.view(1, 1, rows // d, groups).permute(0, 3, 1, 2)  # (1, d * hidden, 1, rows / d), channels-last
        weight = weight.to(self.dtype).expand(d, hidden, -1).reshape(groups, 1, 1, -1)
        bias = bias.to(self.dtype).expand(d, hidden).reshape(groups)
        y = _mkldnn._convolution_pointwise(x, weight, bias, [0, pad], [1, 1],
                                           [1, self.dilation // d], groups, "leaky_relu", [self.a2], "")
        start = (pad - left // d) * d
        return y.permute(0, 2, 3, 1).reshape(-1, hidden)[start:start + rows]

    def _exact(self, p: torch.Tensor, lo: int, hi: int, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """Output frames ``lo:hi`` of :meth:`depthwise`, normalizing before zero padding. Shape: ``(frames, hidden)``
        -> ``(hi - lo, hidden)``."""
        frames, d = p.shape[0], self.dilation
        start, stop = lo - self.left, hi + self.right
        # few ops, each fused (addcmul): every small op costs a thread barrier, which on a loaded CPU made the
        # edges ~8 % of a call when they took ~13 ops each
        z = p.new_zeros(stop - start, p.shape[1], dtype=torch.float32)
        torch.addcmul(shift, p[max(start, 0):min(stop, frames)], scale, out=z[max(-start, 0):min(stop, frames) - start])
        y = torch.addcmul(self.b_dw, z[:hi - lo], self.dw[:, 0])
        for k in range(1, self.dw.shape[1]):
            y.addcmul_(z[k * d:k * d + hi - lo], self.dw[:, k])
        return F.leaky_relu_(y, self.a2).to(p.dtype)

    def accumulate(self, state: torch.Tensor, p: torch.Tensor, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``state`` + [res_conv; skip_conv](norm2(p)) without its constant part, and that constant part (to add
        later); norm2's statistics come from the first ``frames`` rows.

        Shape: state ``(rows, channels + skip_channels)``, p ``(rows, hidden)`` -> same as state,
        ``(channels + skip_channels)``.
        """
        if self.gln:
            mean, rstd = _gln_stats(p[:frames], self.eps)
            const = self.b_out - (mean * rstd) * self.out_rowsum
            if self.int8:  # rstd scales the activations
                return self.q_out(p, None, frames, into=state, gain=rstd), const
            # rstd scales the (small) weight: oneDNN beat MKL's addmm_(alpha=rstd) by ~9% in fp32; bf16 repacks
            packed = self.packed_g * rstd if self.packed_g is not None else _pack((self.w_g * rstd).to(self.dtype))
            state = _mkldnn._linear_pointwise.binary(p, state, packed, None, "add")
            return state, const
        if self.int8:
            self.q_out(_norm_tc(self.norm2, p[:frames]), None, frames, into=state[:frames])
        else:
            state[:frames].addmm_(_norm_tc(self.norm2, p[:frames]), self.out_t)
        return state, self.b_out


class FastTCNMasker:
    """The function of a :class:`~sepaudio.nn.TCNMasker` in eval mode, fused for CPU inference (see module doc).

    Args:
        masker: a TCNMasker (its current weights are folded in; the module is not changed).
        precision: ``fp32`` (equal to the masker to float32 rounding), ``bf16`` or ``int8`` (the blocks' 1x1
            convolutions in 8-bit integers, see :class:`_QLinear`; refused where :func:`cpu_has_int8` is false).

    Shape:
        rep ``(batch, in_channels, frames)``, cond ``(batch, cond_dim)`` or ``None``
        -> masks ``(batch, n_src, in_channels, frames)`` (float32).
    """

    def __init__(self, masker, precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose one of {sorted(PRECISIONS)}")
        self.dtype = dtype = PRECISIONS[precision]
        self._args, self._versions = (masker, precision), _versions(masker)
        tcn, config = masker.tcn, masker.tcn.config
        self.n_src, self.channels, self.max_dilation = masker.n_src, config.channels, 2 ** (config.blocks - 1)
        self.conditioned = bool(len(tcn.fusions))
        n = len(tcn.blocks)
        self.blocks = [_Block(block, tcn.fusions[tcn.fusion_of[i]] if tcn.fusion_of[i] >= 0 else None,
                              config.channels, dtype, last=i == n - 1, int8=precision == "int8")
                       for i, block in enumerate(tcn.blocks)]
        self.input_norm = masker.input_norm
        w = masker.bottleneck.weight.detach().float()[:, :, 0]
        self.bottleneck_b = masker.bottleneck.bias.detach().float()
        if isinstance(masker.input_norm, GlobalLayerNorm):
            w_g = w * masker.input_norm.weight.detach().float()
            self.in_eps = masker.input_norm.eps
            self.bottleneck_t, self.bottleneck_rowsum = w_g.t().to(dtype), w_g.sum(1)
            self.bottleneck_b = self.bottleneck_b + w @ masker.input_norm.bias.detach().float()
        else:
            self.bottleneck_t = w.t().to(dtype)
        self.out_prelu = float(masker.output_prelu.weight.detach())
        self.out_w = masker.output_conv.weight.detach()[:, :, 0].to(dtype)
        self.out_b = masker.output_conv.bias.detach().to(dtype)
        self.mask_attr = _MASK_ATTRS.get(type(masker.mask_act).__name__)  # None: softmax over sources

    def __reduce__(self):
        """Copies and pickles rebuild from the masker (oneDNN's packed weights have no storage to copy)."""
        return FastTCNMasker, self._args

    @torch.inference_mode()
    def __call__(self, rep: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.conditioned and cond is None:
            raise ValueError("this network is conditioned on a speaker vector: pass cond of shape (batch, cond_dim)")
        if _versions(self._args[0]) != self._versions:  # weights changed in place since the build: fold them again
            self.__init__(*self._args)
        masks = [self._one(r, None if cond is None else cond[i].float()) for i, r in enumerate(rep)]
        return masks[0][None] if len(masks) == 1 else torch.stack(masks)

    def _one(self, rep: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Shape: ``(in_channels, frames)``, ``(cond_dim)`` -> ``(n_src, in_channels, frames)``."""
        channels, frames = rep.shape
        c = self.channels
        rep_t = rep.t().to(self.dtype)
        # rows: a multiple of every dilation (see _Block._conv); rows past ``frames`` hold junk, never read back
        padded = -(-frames // self.max_dilation) * self.max_dilation
        state = rep_t.new_zeros(padded, self.blocks[-1].width)
        if hasattr(self, "bottleneck_rowsum"):
            mean, rstd = _gln_stats(rep, self.in_eps)
            state[:frames, :c].addmm_(rep_t, self.bottleneck_t, alpha=rstd)
            offset = self.bottleneck_b - (mean * rstd) * self.bottleneck_rowsum
        else:
            state[:frames, :c].addmm_(_norm_tc(self.input_norm, rep_t), self.bottleneck_t)
            offset = self.bottleneck_b
        offset = torch.cat([offset, offset.new_zeros(state.shape[1] - c)])
        for block in self.blocks:
            p = block.depthwise(block.first_conv(state[:, :c], offset[:c], cond, frames), frames)
            state, const = block.accumulate(state, p, frames)
            offset = offset + const
        skip = F.leaky_relu(state[:frames, c:] + offset[c:].to(self.dtype), self.out_prelu)
        # the mask 1x1 as W @ skip.T: the masks come out in the decoder's (n_src, channels, frames) layout, which
        # saves the transposing copy that a (frames, n_src * channels) result costs later (about 4 % of a call)
        masks = torch.addmm(self.out_b[:, None], self.out_w, skip.t()).float().view(self.n_src, channels, frames)
        return masks.softmax(0) if self.mask_attr is None else getattr(torch, self.mask_attr + "_")(masks)
