"""Export a model to ONNX or TorchScript with a dynamic batch and time axis (``sepaudio export``).

Every family exports: separators (Conv-TasNet, MiTAS: ``mixture -> estimates``), TseNet (``mixture, ivector`` or
``mixture, enrollment -> estimate``), classifiers with their front-end inside the graph (``audio -> logits``), and
the streaming step of a causal model (``chunk, [embedding,] state... -> output, state...``, see
:class:`~sepaudio.nn.streaming.StreamingStep`). Both formats are traced from one wrapper, whose only differences
from the PyTorch model are exact rewrites of what tracing would freeze: the end padding is computed from the
input's length inside the graph, and torchaudio's FFT spectrogram (complex numbers, which ONNX lacks) becomes a
convolution with the windowed DFT basis. :func:`compare` runs an exported file (onnxruntime or ``torch.jit.load``)
against the PyTorch model. ``precision="int8"`` quantizes an ONNX graph's TCN 1x1 convolutions (:mod:`.onnx_int8`).
"""
from __future__ import annotations

import copy
import io
import math
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from .errors import ConfigError, ModelFileError
from .fileio import atomic_path, check_outputs
from .inference import resolve_device
from .optional import require
from .models import EncoderMaskerDecoder, SepaudioModel, TseNet, load_model
from .models.classifier import AudioClassifier
from .models.esresnet import Attention2d
from .onnx_int8 import check_int8_export, quantize_onnx

FORMATS = ("onnx", "torchscript")
PRECISIONS = ("fp32", "int8")
OPSET = 17
LEVEL = 0.1  #: standard deviation of the example audio (white noise at about the level of speech)
__all__ = ["FORMATS", "PRECISIONS", "DFTSpectrogram", "export", "export_checked", "compare", "run_exported",
           "example_inputs", "input_names"]


class DFTSpectrogram(nn.Module):
    """torchaudio's ``Spectrogram`` (centred, one-sided, power 1 or 2) as a strided convolution with the windowed DFT
    basis: no complex numbers, so it exports to ONNX. Equal to the FFT to float32 rounding.

    Args:
        spec: the ``torchaudio.transforms.Spectrogram`` to reproduce.

    Shape: ``(batch, time)`` -> ``(batch, n_fft // 2 + 1, time // hop + 1)``.
    """

    def __init__(self, spec: torchaudio.transforms.Spectrogram):
        super().__init__()
        if spec.power not in (1.0, 2.0) or not spec.onesided or spec.pad or spec.normalized:
            raise ValueError("DFTSpectrogram reproduces power 1 or 2, one-sided, unpadded, unnormalised spectrograms")
        n_fft, win = spec.n_fft, spec.win_length
        window = torch.zeros(n_fft, dtype=torch.float64)
        start = (n_fft - win) // 2  # torch.stft centres a shorter window in the frame
        window[start:start + win] = spec.window.double()
        phase = 2 * math.pi * torch.outer(torch.arange(n_fft // 2 + 1), torch.arange(n_fft)).double() / n_fft
        basis = torch.cat([torch.cos(phase), -torch.sin(phase)]) * window
        self.register_buffer("basis", basis.float().unsqueeze(1), persistent=False)
        self.hop, self.power, self.center, self.pad_mode = spec.hop_length, spec.power, spec.center, spec.pad_mode

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = wav.unsqueeze(1)
        if self.center:
            half = self.basis.shape[-1] // 2
            x = F.pad(x, (half, half), mode=self.pad_mode)
        real, imag = F.conv1d(x, self.basis, stride=self.hop).chunk(2, dim=1)
        power = real.pow(2) + imag.pow(2)
        return power if self.power == 2.0 else power.sqrt()


def _traceable_pad(model: EncoderMaskerDecoder, wav: torch.Tensor) -> torch.Tensor:
    """:meth:`EncoderMaskerDecoder.pad` with the amount computed in the graph from the input's length (tracing
    would freeze a Python number). Encoders pad ``L // 2`` on both sides, so the frames always reach the end.

    Shape: ``(batch, time)`` -> ``(batch, time + extra)``.
    """
    if getattr(model, "framing", "centered") == "asteroid":  # no padding: frames stop at the last whole window
        return wav
    fb = model.encoder.filterbank
    stride = int(fb.stride)
    length = torch._shape_as_tensor(wav)[-1]
    span = length + 2 * int(model.encoder.padding) - int(fb.kernel_size)
    extra = torch.remainder(-span, stride)
    return F.pad(wav, (0, stride))[:, : length + extra]


class _Separator(nn.Module):
    """Encoder / masker / decoder with the graph-computed padding, optionally conditioned (TseNet).

    Shape: mixture ``(batch, time)`` [, speaker] -> ``(batch, n_src, time)``.
    """

    def __init__(self, model: EncoderMaskerDecoder):
        super().__init__()
        self.model = model

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        return self.model.encoder(_traceable_pad(self.model, wav).unsqueeze(1))

    def forward(self, mixture: torch.Tensor, speaker: torch.Tensor | None = None) -> torch.Tensor:
        model = self.model
        rep = self.encode(mixture)
        if speaker is None:
            masks = model.masker(rep)
        else:  # an i-vector, or an enrollment recording
            masks = model.masker(rep, model.speaker_net(speaker if model.conditioning == "ivector" else
                                                        self.encode(speaker)))
        length = torch._shape_as_tensor(mixture)[-1]
        out = model.decoder(masks * rep.unsqueeze(1))  # zeros after the last whole window (asteroid framing)
        return F.pad(out, (0, int(model.encoder.filterbank.stride)))[..., :length]


class _Step(nn.Module):
    """The streaming step with flat inputs and outputs: ``chunk, [embedding,] *state -> output, *state``."""

    def __init__(self, model: EncoderMaskerDecoder):
        super().__init__()
        from .nn.streaming import StreamingStep

        self.step = _graph_friendly(StreamingStep(model))
        self.conditioned = len(self.step.fusions) > 0

    def forward(self, chunk: torch.Tensor, *rest: torch.Tensor):
        cond, state = (rest[0], list(rest[1:])) if self.conditioned else (None, list(rest))
        out, new_state = self.step(chunk, state, cond)
        return (out, *new_state)


def _adaptive_max_pool(x: torch.Tensor, size: int, dim: int, span: int = 3) -> torch.Tensor:
    """``adaptive_max_pool`` along one axis, as gathers over windows computed in the graph (ONNX exports adaptive
    pooling only to a constant size). Exact for windows of at most ``span`` positions, which holds when the output
    has at least half the input's size (a stride-2 stage).

    Shape: ``x`` with ``n`` positions along ``dim`` -> ``size`` positions there.
    """
    n = x.shape[dim]
    i = torch.arange(size)
    start = torch.div(i * n, size, rounding_mode="floor")
    end = torch.div((i + 1) * n + size - 1, size, rounding_mode="floor")
    pooled = x.index_select(dim, start)
    for k in range(1, span):
        pooled = torch.maximum(pooled, x.index_select(dim, torch.minimum(start + k, end - 1)))
    return pooled


class _GraphAttention2d(nn.Module):
    """ESResNet's attention block with its max-pool as graph-computed gathers (the block after the global average
    pool, ``whole``: a max over the whole map).

    Shape: as :class:`~sepaudio.models.esresnet.Attention2d`.
    """

    def __init__(self, block: Attention2d, whole: bool):
        super().__init__()
        self.block, self.whole = block, whole

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.whole:
            x = x.amax((-2, -1), keepdim=True)
        else:
            x = _adaptive_max_pool(_adaptive_max_pool(x, size[0], -2), size[1], -1)
        block = self.block
        return torch.sigmoid(block.bn(block.pointwise(block.depthwise(x))))


class _FrameNormStep(nn.Module):
    """A streaming step's frame-local norm (cwLN) with its channel count a constant (ONNX's LayerNormalization
    needs one; the step reads it from the input's shape).

    Shape: x ``(batch, channels, frames)``, stats, count -> ``(batch, channels, frames)``, stats unchanged.
    """

    def __init__(self, norm: nn.Module):
        super().__init__()
        self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.eps

    def forward(self, x: torch.Tensor, stats: torch.Tensor, count: torch.Tensor):
        y = F.layer_norm(x.transpose(1, -1), (int(self.weight.numel()),), self.weight, self.bias, self.eps)
        return y.transpose(1, -1), stats


def _graph_friendly(module: nn.Module) -> nn.Module:
    """Replace (in place) every torchaudio ``Spectrogram`` by an equal :class:`DFTSpectrogram`, every ESResNet
    attention block by a :class:`_GraphAttention2d` and every frame-local norm of a streaming step by a
    :class:`_FrameNormStep`."""
    for name, child in list(module.named_children()):
        if isinstance(child, torchaudio.transforms.Spectrogram):
            setattr(module, name, DFTSpectrogram(child))
        elif isinstance(child, Attention2d):
            setattr(module, name, _GraphAttention2d(child, whole=name == str(len(module) - 1)))
        elif getattr(child, "cumulative", None) is False:
            setattr(module, name, _FrameNormStep(child))
        else:
            _graph_friendly(child)
    return module


def _wrap(model: SepaudioModel, streaming: bool) -> nn.Module:
    model = copy.deepcopy(model).eval()
    if streaming or isinstance(model, EncoderMaskerDecoder):
        return (_Step if streaming else _Separator)(model).eval()
    if isinstance(model, AudioClassifier):
        return _graph_friendly(model)
    raise ModelFileError(f"{model.registered_name}: export takes separation, extraction and classification models")


def input_names(model: SepaudioModel, streaming: bool = False) -> list[str]:
    """Names of the graph's inputs, in order (a streaming step: ``chunk``, [``embedding``], then its state)."""
    if streaming:
        return ["chunk", *(["embedding"] if _conditioned(model) else []), *_Step(model).step.state_names()]
    if isinstance(model, TseNet):
        return ["mixture", "ivector" if model.conditioning == "ivector" else "enrollment"]
    return ["audio" if isinstance(model, AudioClassifier) else "mixture"]


def _conditioned(model: SepaudioModel) -> bool:
    return len(getattr(model.masker, "tcn", model.masker).fusions) > 0


def _output_names(model: SepaudioModel, streaming: bool) -> list[str]:
    return ["output", *(f"new_{name}" for name in _Step(model).step.state_names())] if streaming else \
        ["logits" if isinstance(model, AudioClassifier) else "estimate"]


def _dynamic_axes(model: SepaudioModel, streaming: bool) -> dict:
    names = input_names(model, streaming) + _output_names(model, streaming)
    axes = {name: {0: "batch"} for name in names if not name.endswith("frames")}
    for name, axis in (("mixture", 1), ("audio", 1), ("chunk", 1), ("estimate", 2), ("output", 2)):
        if name in axes:
            axes[name][axis] = "time"
    if "enrollment" in axes:
        axes["enrollment"][1] = "enrollment_time"
    if "embedding" in axes and getattr(model.masker, "attentions", None):  # SliceNet: the enrollment's frames
        axes["embedding"][2] = "enrollment_frames"
    return axes


def example_inputs(model: SepaudioModel, length: int, streaming: bool = False, batch: int = 2, seed: int = 0,
                   state: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, ...]:
    """Random inputs of the graph, with ``length`` samples of audio (a streaming chunk: ``length`` rounded down to
    whole encoder strides, after ``state``, by default the initial one).

    Shape: each ``(batch, ...)``, in the order of :func:`input_names`.
    """
    gen = torch.Generator().manual_seed(seed)
    if streaming:
        step = _Step(model).step
        chunk = LEVEL * torch.randn(batch, length - length % step.stride, generator=gen)
        more = [7] if getattr(model.masker, "attentions", None) else []  # SliceNet TseNet: enrollment frames
        cond = [torch.randn(batch, model.model_args.get("speaker_dim", 0), *more, generator=gen)] * _conditioned(model)
        return (chunk, *cond, *(step.initial_state(batch) if state is None else state))
    audio = LEVEL * torch.randn(batch, length, generator=gen)
    if isinstance(model, TseNet):
        if model.conditioning == "ivector":
            return audio, torch.randn(batch, model.speaker_net[0].in_features, generator=gen)
        return audio, LEVEL * torch.randn(batch, length + length // 3, generator=gen)
    return (audio,)


def export(model: SepaudioModel, path: str | os.PathLike, fmt: str = "onnx", streaming: bool = False,
           precision: str = "fp32") -> Path:
    """Write ``model`` as an ONNX or TorchScript file with dynamic batch and time axes.

    Args:
        model: any sepaudio separation, extraction or classification model.
        path: the file to write (atomically).
        fmt: ``onnx`` or ``torchscript``.
        streaming: export the streaming step of a causal encoder / TCN masker / decoder model instead:
            inputs ``chunk (batch, k * stride)``, [``embedding (batch, speaker_dim)`` = ``model.embed(speaker)``
            for TseNet, ``(batch, speaker_dim, enrollment_frames)`` for a SliceNet one], then the state of
            :meth:`StreamingStep.initial_state`; outputs ``output (batch, n_src, k * stride)`` and the new state.
        precision: ``fp32``, or ``int8`` (ONNX of a TCN model for onnxruntime, see :mod:`sepaudio.onnx_int8`).

    Returns:
        ``path``.

    Raises:
        ValueError: unknown format or precision, or ``streaming`` with a model that cannot stream.
        ConfigError: ``int8`` with TorchScript, a streaming step or a model without TCN blocks.
    """
    if fmt not in FORMATS or precision not in PRECISIONS:
        raise ValueError(f"unknown format {fmt!r} or precision {precision!r}; choose from {FORMATS}, {PRECISIONS}")
    if precision == "int8":  # an fp32 graph, then quantized
        check_int8_export(model, fmt, streaming)
        with atomic_path(path) as tmp, tempfile.TemporaryDirectory() as folder:
            quantize_onnx(export(model, Path(folder) / "fp32.onnx", fmt), tmp)
        return Path(path)
    if fmt == "onnx":
        require("onnx", "ONNX export")
    wrapper, device = _wrap(model, streaming), next(model.parameters()).device
    inputs = tuple(x.to(device) for x in example_inputs(model, int(model.sample_rate), streaming))  # one second
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python values: the two-length tests cover them
        if fmt == "onnx":
            torch.onnx.export(wrapper, inputs, str(tmp), input_names=input_names(model, streaming),
                              output_names=_output_names(model, streaming),
                              dynamic_axes=_dynamic_axes(model, streaming), opset_version=OPSET, dynamo=False)
        else:  # serialized in memory: torch's own file writer aborts the process when the disk is full
            buffer = io.BytesIO()
            torch.jit.save(torch.jit.trace(wrapper, inputs, check_trace=False), buffer)
            tmp.write_bytes(buffer.getbuffer())
    return Path(path)


def run_exported(path: str | os.PathLike, inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    """Run an exported file: TorchScript (a zip archive) through ``torch.jit.load`` on the device it was traced on,
    ONNX through onnxruntime (CPU).

    Args:
        path: the file :func:`export` wrote.
        inputs: in the order of :func:`input_names`.

    Returns:
        The outputs as a list of tensors on the CPU.
    """
    if not zipfile.is_zipfile(path := Path(path)):
        ort = require("onnxruntime", "ONNX export")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {arg.name: x.numpy() for arg, x in zip(session.get_inputs(), inputs)}
        return [torch.from_numpy(y) for y in session.run(None, feeds)]
    with torch.no_grad():
        module = torch.jit.load(str(path))
        device = next(module.parameters(), torch.empty(0)).device
        out = module(*(x.to(device) for x in inputs))
    return [y.cpu() for y in (out if isinstance(out, (tuple, list)) else [out])]


def export_checked(source: str | os.PathLike, path: str | os.PathLike, fmt: str, streaming: bool = False,
                   device: str = "cpu", precision: str = "fp32") -> tuple[Path, dict[int, float]]:
    """Load a model (file, folder or Hub id), export it in ``precision`` and :func:`compare` the file with it (fp32
    PyTorch) at two lengths (one and 1.5 seconds; a streaming step: chunks of 10 and 25 ms). The model is traced and
    compared on ``device`` (``cpu``, ``cuda``, ``cuda:N``).

    Returns:
        ``(path, {length: max |difference|})``.

    Raises:
        ModelFileError: the model cannot be loaded, is of a kind that does not export, or cannot stream.
        ConfigError: an unusable ``device``; ``int8`` where :func:`export` refuses it.
    """
    local = Path(source)
    if local.exists():  # a local model file or folder: the export never replaces any of it
        check_outputs([path], inputs=[p for p in local.iterdir() if p.is_file()] if local.is_dir() else [local])
    model = load_model(source).to(resolve_device(device))
    try:
        export(model, path, fmt, streaming, precision)
    except ValueError as err:  # check_streamable's reason, or an unknown format
        if isinstance(err, ConfigError):
            raise
        raise ModelFileError(f"{source}: {err}") from err
    rate = int(model.sample_rate)
    lengths = (rate // 100, rate // 40) if streaming else (rate, rate * 3 // 2 + 7)
    if streaming:
        stride = _Step(model).step.stride
        lengths = tuple(max(n - n % stride, stride) for n in lengths)
    return Path(path), compare(model, path, lengths, streaming)


def compare(model: SepaudioModel, path: str | os.PathLike, lengths: tuple[int, ...], streaming: bool = False
            ) -> dict[int, float]:
    """Largest absolute difference between the exported file and the PyTorch model at each input length (a
    streaming step: one step of ``lengths[0]`` samples from the initial state, then a step of each length from the
    state it left).

    Returns:
        ``{length: max |exported - pytorch|}`` over every output, the state included.
    """
    model, device = model.eval(), next(model.parameters()).device
    reference = _Step(model).eval() if streaming else model
    state = None
    if streaming:
        with torch.no_grad():
            state = [s.cpu() for s in reference(*(x.to(device) for x in example_inputs(model, lengths[0], True)))[1:]]
    diffs = {}
    for length in lengths:
        inputs = example_inputs(model, length, streaming, seed=length, state=state)
        with torch.no_grad():
            expected = reference(*(x.to(device) for x in inputs))
        expected = [y.cpu() for y in (expected if isinstance(expected, tuple) else [expected])]
        got = run_exported(path, inputs)
        if len(got) != len(expected):
            raise ValueError(f"{path}: gives {len(got)} outputs where the model gives {len(expected)}")
        diffs[length] = max(_max_diff(a, b) for a, b in zip(got, expected))
    return diffs


def _max_diff(got: torch.Tensor, expected: torch.Tensor) -> float:
    if got.shape != expected.shape or not got.is_floating_point():
        return 0.0 if got.shape == expected.shape and torch.equal(got, expected) else math.inf
    return float((got - expected).abs().max()) if got.numel() else 0.0
