"""Model base classes: constructor-argument capture, registry, one-file save / load, encoder-masker-decoder.

A saved model is one ``torch.save`` file holding ``{"sepaudio_format", "model", "model_args", "state_dict",
"versions"}``; :func:`load_model` rebuilds it from the registry. Lightning checkpoints written by
``sepaudio train`` carry the same record under ``"sepaudio_model"`` and load the same way.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from .. import __version__, formats
from ..errors import ConfigError, ModelFileError
from ..fileio import atomic_path
from ..modelfile import FORMAT_VERSION
from ..registry import Registry

MODELS = Registry("model")


def register_model(name: str) -> Callable:
    """Register a model class (or a factory function of a named variant, timm style) under ``name``."""

    def decorator(obj):
        MODELS.register(name)(obj)
        if isinstance(obj, type):
            obj.registered_name = name
        return obj

    return decorator


def list_models() -> list[str]:
    """Names accepted by :func:`create_model` and configs."""
    return MODELS.names()


def create_model(name: str, **kwargs: Any) -> "SepaudioModel":
    """Build a registered model or variant by name with keyword arguments."""
    return MODELS.create(name, **kwargs)


class SepaudioModel(nn.Module):
    """Base of every model: records its constructor arguments so that one file rebuilds it.

    Subclasses take only plain values (numbers, strings, lists, dicts) as constructor arguments, set
    ``self.sample_rate``, and name in ``input_keys`` the batch entries ``forward`` takes.
    """

    registered_name: str = ""
    sample_rate: int
    #: batch keys (see ``sepaudio.data``) whose tensors are the forward arguments, in order
    input_keys: tuple[str, ...] = ("mixture",)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        original = cls.__dict__.get("__init__")
        if original is None:
            return
        signature = inspect.signature(original)

        @functools.wraps(original)
        def __init__(self, *args, **kw):
            outermost = not self.__dict__.get("_capturing_args", False)
            if outermost:
                object.__setattr__(self, "_capturing_args", True)
            try:
                original(self, *args, **kw)
            finally:
                if outermost:
                    object.__setattr__(self, "_capturing_args", False)
            if outermost:
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                model_args = {k: v for k, v in bound.arguments.items() if k != "self"}
                for name, param in signature.parameters.items():
                    if param.kind is param.VAR_KEYWORD:
                        model_args.update(model_args.pop(name))
                self.model_args = model_args

        cls.__init__ = __init__

    @property
    def num_parameters(self) -> int:
        """Trainable parameters (shared weights counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @classmethod
    def upgrade_args(cls, args: dict, version: int) -> dict:
        """Map constructor arguments saved in file format ``version`` (older than ``FORMAT_VERSION``) to the current
        ones. Models whose arguments changed override this; by default they are returned as they are."""
        return args

    def serialize(self) -> dict:
        """The record :meth:`save` writes: name, constructor arguments, weights, versions."""
        if not self.registered_name:
            raise TypeError(f"{type(self).__name__} is not registered; decorate it with @register_model(name)")
        return {
            "sepaudio_format": FORMAT_VERSION,
            "model": self.registered_name,
            "model_args": dict(self.model_args),
            "summary": {"parameters": self.num_parameters, "sample_rate": self.sample_rate},  # read without torch
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
            "versions": {"sepaudio": __version__, "torch": str(torch.__version__)},
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model to one file atomically (a killed run never leaves a half-written file)."""
        with atomic_path(path) as tmp:
            torch.save(self.serialize(), tmp)
        return Path(path)

    def save_pretrained(self, folder: str | os.PathLike, config: dict | None = None) -> Path:
        """Write the model as a Hugging Face Hub folder that :func:`load_model` reads back (without a network):
        the model card ``README.md``, ``model.safetensors`` (the weights; shared weights stored once),
        ``config.json`` (model name, arguments, format version, sample rate) and, for an i-vector TseNet with
        ``ivector_extractor`` set, ``ivector.safetensors``. Each file is written atomically, ``config.json`` last.

        Args:
            folder: created if missing; not a folder holding a training run's ``model.pt``.
            config: the training config, shown in the card.

        Returns:
            ``folder``.

        Raises:
            OutputError: ``folder`` is a file or holds ``model.pt``.
            MissingDependencyError: the ``safetensors`` package is missing.
        """
        return formats.save_pretrained(self, folder, config)


def as_batch(wav: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``(time)`` | ``(batch, time)`` | ``(batch, 1, time)`` -> ``(batch, time)`` and whether input had no batch."""
    if wav.dim() == 1:
        return wav.unsqueeze(0), True
    if wav.dim() == 3:
        if wav.shape[1] != 1:
            raise ValueError(f"expected one channel, got shape {tuple(wav.shape)}; mix down to mono first")
        wav = wav.squeeze(1)
    if wav.dim() != 2:
        raise ValueError(f"expected (time), (batch, time) or (batch, 1, time), got shape {tuple(wav.shape)}")
    return wav, False


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run a block with ``model`` in eval mode and give it back in the mode it had."""
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


class EncoderMaskerDecoder(SepaudioModel):
    """Encoder -> masker (masks) -> masked representation -> decoder, with the same output length as input.

    Args:
        encoder: of an asteroid-filterbanks pair (see :func:`sepaudio.filterbanks.make_filterbank`).
        decoder: the other half of the pair.
        masker: ``(batch, N, frames)`` [, cond] -> masks ``(batch, n_src, N, frames)``.
        sample_rate: of the waveforms the model takes.

    Shape:
        wav ``(time)`` | ``(batch, time)`` | ``(batch, 1, time)`` -> ``(batch, n_src, time)``
        (``(n_src, time)`` for an unbatched input).
    """

    def __init__(self, encoder: nn.Module, masker: nn.Module, decoder: nn.Module, sample_rate: int):
        super().__init__()
        self.encoder, self.masker, self.decoder = encoder, masker, decoder
        self.sample_rate = sample_rate
        self.n_src = masker.n_src

    def forward(self, wav: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if torch.is_grad_enabled() and self._fused():
            if wav.requires_grad:
                raise ConfigError("the fused fast path (model.fast(...)) gives no gradients, and the input requires "
                                  "them; call model.fast(None) to differentiate through the model.")
            with torch.no_grad():  # the fused masker's inference tensors cannot enter an autograd graph
                return EncoderMaskerDecoder.forward(self, wav, cond)
        wav, unbatched = as_batch(wav)
        length = wav.shape[-1]
        rep = self.encoder(self.pad(wav).unsqueeze(1))
        masks = self._masks(rep, cond)
        est = self.decoder(masks * rep.unsqueeze(1))[..., :length]
        return est.squeeze(0) if unbatched else est

    def fast(self, precision: str | None = "fp32") -> "EncoderMaskerDecoder":
        """Run eval-mode inference in ``precision`` through a fused masker built from the current weights.

        On CPU a TCN masker becomes a :class:`~sepaudio.nn.fast_tcn.FastTCNMasker` (``fp32``: equal to the plain path
        to float32 rounding; ``bf16``: bfloat16 GEMMs, on CPUs that have bfloat16 instructions; ``int8``: the TCN
        blocks' 1x1 convolutions in 8-bit integers with per-channel weight scales, CPU only); on a GPU ``bf16``
        runs the plain masker under autocast.
        Training mode always takes the plain path, and the fast one gives no gradients: outside ``torch.no_grad``
        its output does not require grad, and an input that requires grad is refused. Call again after changing
        the weights or the device; ``None`` returns to the plain path. The saved model is unchanged.

        Returns:
            the model itself.

        Raises:
            ConfigError: ``bf16`` on a CPU without bfloat16 instructions (:func:`~sepaudio.nn.fast_tcn.cpu_has_bf16`);
                ``int8`` on a GPU, or where the CPU or torch build lacks oneDNN's int8 kernels
                (:func:`~sepaudio.nn.fast_tcn.cpu_has_int8`).
        """
        from ..nn.fast_tcn import FastTCNMasker

        fusable = self.check_precision(precision)
        on_cpu = next(self.parameters()).device.type == "cpu"
        self._precision = precision
        self._fast_masker = FastTCNMasker(self.masker, precision) if precision and on_cpu and fusable else None
        return self

    def check_precision(self, precision: str | None) -> bool:
        """Refuse a precision this model cannot run where it is (the checks of :meth:`fast` and of
        :meth:`streamer`); return whether its masker has a fused CPU path (a TCN masker).

        Raises:
            ValueError: an unknown precision.
            ConfigError: as :meth:`fast`.
        """
        from ..nn.fast_tcn import PRECISIONS, cpu_has_bf16, cpu_has_int8

        if precision is not None and precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose one of {sorted(PRECISIONS)}")
        on_cpu = next(self.parameters()).device.type == "cpu"
        if precision == "bf16" and on_cpu and not cpu_has_bf16():
            raise ConfigError(f"precision bf16: this CPU ({torch.backends.cpu.get_cpu_capability()}) has no bfloat16 "
                              f"instructions (AVX512-BW/VL/DQ or AVX-NE-CONVERT), so the fused bf16 path cannot run on "
                              f"it; use fp32 (--precision fp32), or bf16 on a GPU (--device cuda).")
        if precision == "int8" and not (on_cpu and cpu_has_int8()):
            where = ("this torch build or CPU (" + torch.backends.cpu.get_cpu_capability() + ") has no oneDNN int8 "
                     "kernels (torch.ops.onednn.qlinear_pointwise, AVX2 or newer)") if on_cpu else "it runs on CPU only"
            raise ConfigError(f"precision int8: {where}; use fp32 (--precision fp32)"
                              f"{'' if on_cpu else ', bf16 on a GPU, or --device cpu'}.")
        fusable = hasattr(self.masker, "tcn")  # other maskers (SliceNet) run plain, in fp32 or under bf16 autocast
        if precision == "int8" and not fusable:
            raise ConfigError(f"precision int8: the {type(self.masker).__name__} masker has no int8 path (only TCN "
                              f"maskers do); use fp32 (--precision fp32).")
        return fusable

    def _fused(self) -> bool:
        """Whether :meth:`forward` runs the fused masker of :meth:`fast` (eval mode, CPU, a precision chosen)."""
        return not self.training and bool(self.__dict__.get("_precision")) and \
            self.__dict__.get("_fast_masker") is not None

    def separate(self, audio: Any, sample_rate: int | None = None, *, chunk_seconds: float = 8.0,
                 overlap_seconds: float = 1.0) -> Any:
        """Separate the sources of a recording given as users hold it, in the same form.

        The input is mixed down to mono and, at another rate than ``self.sample_rate``, resampled (with a note) and
        the outputs resampled back. It goes through the model in overlapping chunks
        (:func:`sepaudio.inference.process_tensor`, each output following one source across chunk borders), in eval
        mode under ``torch.inference_mode``, so memory beyond the input and output grows with the chunk only.

        Args:
            audio: an audio file path, or a numpy array / tensor of any float dtype (or integer PCM)
                ``(time)``, ``(channels, time)`` or ``(batch, channels, time)``.
            sample_rate: of an array or tensor (``None``: the model's); a path knows its own.
            chunk_seconds, overlap_seconds: chunk length and cross-faded overlap (at most half a chunk).

        Returns:
            ``(n_src, time)`` (``(batch, n_src, time)`` for a batch) at the input's rate and length: a numpy array of
            the input's float dtype for an array, a tensor of the input's dtype on its device for a tensor, a float32
            CPU tensor for a path.

        Raises:
            AudioError: see :func:`sepaudio.arrays.to_model`.
            ConfigError: a chunk or overlap out of range.
            ModelFileError: a model that needs more than the mixture (TseNet: use ``extract``).
        """
        from ..arrays import to_model

        if tuple(self.input_keys) != ("mixture",):
            raise ModelFileError(f"a {self.registered_name} model needs {', '.join(self.input_keys)}, not the mixture "
                                 f"alone; use model.extract(mixture, enrollment).")
        wav, restore = to_model(audio, self.sample_rate, sample_rate, "mixture")
        return restore(self._chunked(wav, lambda chunk, _: self(chunk), chunk_seconds, overlap_seconds,
                                    align_sources=self.n_src > 1))

    def _chunked(self, wav: torch.Tensor, fn: Callable[[torch.Tensor, int], torch.Tensor], chunk_seconds: float,
                overlap_seconds: float, align_sources: bool = False) -> torch.Tensor:
        """``fn(chunk, item)`` over every item of a batch, chunk by chunk (:func:`sepaudio.inference.process_tensor`),
        in eval mode under ``torch.inference_mode``; chunks are moved to the model's device.

        Shape: wav ``(batch, time)``, fn ``(1, chunk_time), item index -> (1, n_out, chunk_time)``
        -> ``(batch, n_out, time)`` on the CPU.
        """
        from ..inference import process_tensor

        device = next(self.parameters()).device
        with eval_mode(self), torch.inference_mode():
            outs = [process_tensor(item, lambda chunk: fn(chunk.to(device), i), self.sample_rate, chunk_seconds,
                                   overlap_seconds, align_sources) for i, item in enumerate(wav)]
        return outs[0].unsqueeze(0) if len(outs) == 1 else torch.stack(outs)  # one item: no copy

    def _masks(self, rep: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """The masker's masks, through the path :meth:`fast` chose. Shape: as the masker."""
        args = (rep,) if cond is None else (rep, cond)
        precision = None if self.training else self.__dict__.get("_precision")
        if precision and self._fast_masker is not None:
            return self._fast_masker(*args)
        if precision == "bf16":
            with torch.autocast(rep.device.type, dtype=torch.bfloat16):
                return self.masker(*args).float()
        return self.masker(*args)

    def pad(self, wav: torch.Tensor) -> torch.Tensor:
        """Zero-pad the end so the frames tile the signal and the decoder gives back every sample.

        Shape: ``(batch, time)`` -> ``(batch, time + extra)``.
        """
        fb = self.encoder.filterbank
        kernel, stride, padding = fb.kernel_size, fb.stride, self.encoder.padding
        span = wav.shape[-1] + 2 * padding - kernel
        extra = max(-span, 0) + (-max(span, 0)) % stride
        return nn.functional.pad(wav, (0, extra)) if extra else wav

    def streamer(self, cond: torch.Tensor | None = None, batch: int = 1, precision: str | None = "fp32",
                 engine: str = "torch"):
        """A :class:`~sepaudio.nn.streaming.Streamer` running this causal model on a stream in hops of any size.

        Args:
            cond: the speaker vector of a conditioned model (TseNet: ``self.embed(speaker)``), ``(batch, cond_dim)``.
            batch: streams processed side by side.
            precision: ``fp32`` | ``bf16`` | ``int8`` as in :meth:`fast` (on the CPU a TCN model runs the fused
                streaming step, :class:`~sepaudio.nn.fast_stream.FastStreamingStep`), or ``None`` for the
                reference step.
            engine: ``torch`` | ``onnxruntime``: what runs the fused step (see
                :class:`~sepaudio.nn.streaming.Streamer`).

        Raises:
            ValueError: the model is not causal (``tcn.causal`` with a cLN / cwLN norm).
            ConfigError: a precision refused as in :meth:`fast`.
        """
        from ..nn.streaming import Streamer

        return Streamer(self, cond, batch, precision, engine)
