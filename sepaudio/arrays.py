"""Audio as users hold it (a path, a numpy array, a tensor) to the float32 ``(batch, time)`` a model takes, and back.

:func:`to_model` reads, mixes down, checks and resamples an input; the :class:`Restore` it returns gives a model's
output back in the input's type (numpy -> numpy, tensor -> tensor on its device, path -> tensor), dtype, sample rate
and length. :class:`TensorReader` reads spans of a waveform like :class:`sepaudio.inference.ChunkReader` reads a file.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import audio
from .errors import AudioError

__all__ = ["to_model", "Restore", "TensorReader", "check_rate"]

#: a last axis this short beside a longer one is channels after time, as ``soundfile.read`` returns them
_MAX_CHANNELS_LAST = 16


@dataclass
class Restore:
    """How to give a model's output back like its input came (see :func:`to_model`)."""

    kind: str  # "numpy" | "tensor" | "path"
    dtype: Any  # numpy or torch dtype of the output (the input's float dtype; float32 for integer PCM)
    device: torch.device
    rate: int  # the input's sample rate
    model_rate: int
    length: int  # samples per channel of the input, at its rate
    unbatched: bool

    def __call__(self, out: torch.Tensor) -> Any:
        """``out`` at the model's rate, ``(batch, ..., model_time)`` -> the input's type, rate and length, without
        the batch axis for an unbatched input."""
        out = audio.resample(out.float(), self.model_rate, self.rate) if self.rate != self.model_rate else out
        out = out[..., :self.length]
        if out.shape[-1] < self.length:
            out = torch.nn.functional.pad(out, (0, self.length - out.shape[-1]))
        out = out[0] if self.unbatched else out
        if self.kind == "numpy":
            return out.detach().cpu().numpy().astype(self.dtype, copy=False)
        return out.detach().to(self.device, self.dtype)


def check_rate(sample_rate: Any, name: str = "sample_rate") -> int:
    """A sample rate as a positive ``int`` (``44100.0`` passes, ``44100.5`` does not).

    Raises:
        AudioError: not a positive whole number.
    """
    try:
        rate = int(sample_rate)
        ok = rate == sample_rate and rate > 0
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise AudioError(f"{name}={sample_rate!r}: give the sample rate in Hz as a positive whole number.")
    return rate


def to_model(audio_in: Any, model_rate: int, sample_rate: int | None = None,
             name: str = "audio") -> tuple[torch.Tensor, Restore]:
    """A path, numpy array or tensor as a float32 ``(batch, time)`` waveform at ``model_rate``, on the input's device
    (CPU for a path or an array), and the :class:`Restore` that gives an output back like the input.

    Channels are averaged into one. Integer arrays are PCM and are scaled to ``[-1, 1)`` (uint8 centred on 128).
    A waveform at another rate is resampled with a note on stderr.

    Args:
        audio_in: an audio file path, or an array / tensor ``(time)``, ``(channels, time)`` or
            ``(batch, channels, time)``.
        model_rate: the rate the model takes.
        sample_rate: the input's rate; ``None``: ``model_rate`` for an array, the file's own for a path.
        name: how messages call the input (``"mixture"``, ``"enrollment"``, ...).

    Returns:
        ``(waveform, restore)``: waveform ``(batch, time)``, batch 1 for an unbatched input.

    Raises:
        AudioError: an unknown input type, an unreadable file, a rate for a path that differs from the file's,
            a complex, boolean or object dtype, no or more than three dimensions, channels last, zero samples, or
            NaN / Inf samples.
    """
    rate = None if sample_rate is None else check_rate(sample_rate)
    if isinstance(audio_in, (str, os.PathLike)):
        wav, file_rate = audio.load(audio_in, mono=True)
        if rate is not None and rate != file_rate:
            raise AudioError(f"{audio_in}: the file is at {file_rate} Hz but sample_rate={rate} was given; leave "
                             f"sample_rate out for a path (a file knows its rate).")
        source, rate = str(audio_in), file_rate
        restore = Restore("path", torch.float32, torch.device("cpu"), rate, model_rate, wav.shape[-1], True)
    else:
        wav, dtype, device = _as_tensor(audio_in, name)
        rate = model_rate if rate is None else rate
        kind = "numpy" if isinstance(audio_in, np.ndarray) else "tensor"
        source = f"{name} ({'numpy array' if kind == 'numpy' else 'tensor'} of shape {tuple(audio_in.shape)})"
        if wav.dim() not in (1, 2, 3):
            raise AudioError(f"{source}: give (time), (channels, time) or (batch, channels, time).")
        audio.validate(wav, source)
        if wav.dim() > 1 and wav.shape[-1] <= _MAX_CHANNELS_LAST < wav.shape[-2]:
            raise AudioError(f"{source}: looks like (time, channels), the layout soundfile.read returns; put the "
                             f"channels first (numpy: audio.T; torch: audio.mT).")
        unbatched = wav.dim() < 3
        wav = wav.reshape(1, 1, -1) if wav.dim() == 1 else (wav[None] if wav.dim() == 2 else wav)
        wav = wav.mean(1) if wav.shape[1] > 1 else wav[:, 0]
        restore = Restore(kind, dtype, device, rate, model_rate, wav.shape[-1], unbatched)
    if rate != model_rate:
        print(f"note: {source} is at {rate} Hz; resampling to the model's {model_rate} Hz", file=sys.stderr)
        wav = audio.resample(wav, rate, model_rate)
    return wav, restore


def _as_tensor(data: Any, name: str) -> tuple[torch.Tensor, Any, torch.device]:
    """A float32 tensor of an array or tensor, the dtype to give outputs back in, and the input's device."""
    if isinstance(data, np.ndarray):
        kind, dtype = data.dtype.kind, data.dtype
        if kind in "iu":
            info = np.iinfo(data.dtype)
            centre, scale = (info.max + 1) / 2 if kind == "u" else 0, (info.max + 1) / (2 if kind == "u" else 1)
            return torch.from_numpy(((data.astype(np.float64) - centre) / scale).astype(np.float32)), np.float32, \
                torch.device("cpu")
        if kind != "f":
            raise AudioError(f"{name}: a numpy array of dtype {data.dtype}; give float samples in [-1, 1] (or "
                             f"integer PCM).")
        data = np.asarray(data, dtype=np.float32, order="C")  # no copy of a float32 array
        return torch.from_numpy(data if data.flags.writeable else data.copy()), dtype, torch.device("cpu")
    if isinstance(data, torch.Tensor):
        data = data.detach()
        if data.is_floating_point():
            return data.float(), data.dtype, data.device
        if data.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8):
            info = torch.iinfo(data.dtype)
            centre = (info.max + 1) / 2 if data.dtype == torch.uint8 else 0
            scale = (info.max + 1) / (2 if data.dtype == torch.uint8 else 1)
            return ((data.double() - centre) / scale).float(), torch.float32, data.device
        raise AudioError(f"{name}: a tensor of dtype {data.dtype}; give float samples in [-1, 1] (or integer PCM).")
    raise AudioError(f"{name}: got a {type(data).__name__}; give an audio file path, a numpy array or a torch tensor "
                     f"(time), (channels, time) or (batch, channels, time).")


class TensorReader:
    """Spans of a waveform, zeros outside it: the interface of :class:`sepaudio.inference.ChunkReader`.

    Args:
        wav: ``(time)``, at the rate spans are counted in.
    """

    def __init__(self, wav: torch.Tensor):
        self.wav, self.length = wav, wav.shape[-1]

    def read(self, start: int, end: int) -> torch.Tensor:
        """Samples ``[start, end)``; zeros where the span leaves the waveform. Shape: ``(end - start,)``."""
        lo, hi = max(start, 0), min(end, self.length)
        if hi <= lo:
            return self.wav.new_zeros(max(end - start, 0))
        return torch.nn.functional.pad(self.wav[lo:hi], (lo - start, end - hi))
