"""Chunked processing of long recordings in bounded memory.

A recording is cut into chunks of ``chunk_seconds`` that overlap by ``overlap_seconds``; each chunk goes through
``fn`` (a model); the outputs are cross-faded over the overlaps. With ``align_sources`` the outputs of each chunk are
put in the order that best matches the previous chunk on their overlap, so a speaker stays in one output across
chunk borders (blind separation gives its outputs in an arbitrary order per chunk).

:func:`process_file` streams: it reads one chunk at a time and writes each output block by block into temporary
files renamed at the end, so memory depends on the chunk length, not on the recording's. :func:`process_tensor`
runs the same chunking and joining on a tensor. :class:`ChunkReader` reads any span of a file at a model's rate
(segmentation and clip classification read through it too).
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import torch
from tqdm.auto import tqdm

from . import audio
from .errors import AudioError, ConfigError
from .fileio import check_outputs
from .metrics import pit

__all__ = ["ChunkReader", "process_file", "process_tensor", "chunk_bounds", "join_chunks", "align_to",
           "check_chunking", "resolve_device"]

ChunkFn = Callable[[torch.Tensor], torch.Tensor]


def chunk_bounds(length: int, chunk: int, overlap: int) -> list[tuple[int, int]]:
    """Sample ranges ``[start, end)`` of the chunks that cover ``length`` samples.

    Chunks are ``chunk`` samples long and overlap by ``overlap``; the last one is moved back so that it is full
    length where it can be (its overlap with the one before then grows), never into the previous overlap.

    Raises:
        ConfigError: ``chunk`` not positive, or ``overlap`` negative or more than half of ``chunk``.
    """
    if chunk <= 0 or overlap < 0 or 2 * overlap > chunk:
        raise ConfigError(f"need chunk > 0 and 0 <= overlap <= chunk / 2 (got chunk={chunk}, overlap={overlap} "
                         f"samples); choose a longer chunk or a shorter overlap.")
    if length <= chunk:
        return [(0, length)]
    hop = chunk - overlap
    bounds = []
    start = 0
    while start + chunk < length:
        bounds.append((start, start + chunk))
        start += hop
    previous_overlap = overlap if len(bounds) > 1 else 0
    last = max(min(start, length - chunk), bounds[-1][0] + previous_overlap)
    bounds.append((last, length))
    return bounds


def align_to(reference: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """Order of ``outputs`` that best matches ``reference`` (largest summed correlation, Hungarian assignment).

    Maximising the summed correlation is minimising the summed squared distance between matched signals.

    Shape: reference ``(n_out, time)``, outputs ``(n_out, time)`` -> permutation ``(n_out,)`` such that
    ``outputs[perm]`` lines up with ``reference``.
    """
    correlation = lambda est, ref: (est.double() * ref.double()).sum(-1)  # noqa: E731
    return pit(correlation, outputs.unsqueeze(0), reference.unsqueeze(0))[1][0].cpu()


def _fade_in(length: int) -> torch.Tensor:
    """Raised-sine ramp from 0 to 1 over ``length`` samples; with ``1 - ramp`` it sums to one."""
    t = (torch.arange(length, dtype=torch.float32) + 0.5) / length
    return torch.sin(0.5 * math.pi * t) ** 2


def join_chunks(
    outputs: Iterable[torch.Tensor], bounds: Sequence[tuple[int, int]], align_sources: bool = False
) -> Iterator[torch.Tensor]:
    """Join the outputs of overlapping chunks into consecutive blocks of the whole output.

    Args:
        outputs: one ``(n_out, end - start)`` tensor per chunk of ``bounds``, in order (may be a generator).
        bounds: from :func:`chunk_bounds`.
        align_sources: reorder each chunk's outputs to match the previous chunk on their overlap.

    Yields:
        ``(n_out, block)`` tensors that concatenate to ``(n_out, bounds[-1][1])``. At most one chunk is held.
    """
    pending = None
    for k, ((start, end), out) in enumerate(zip(bounds, outputs)):
        if out.shape[-1] != end - start:
            raise ValueError(f"the model returned {out.shape[-1]} samples for a chunk of {end - start}; "
                             f"it must keep the length of its input")
        overlap = 0
        if pending is not None:
            if pending.shape[0] != out.shape[0]:
                raise ValueError(f"the model returned {out.shape[0]} outputs after {pending.shape[0]}")
            overlap = pending.shape[-1]
            if align_sources:
                out = out[align_to(pending, out[:, :overlap])]
            fade = _fade_in(overlap).to(out)
            yield pending * (1 - fade) + out[:, :overlap] * fade
        cut = bounds[k + 1][0] - start if k + 1 < len(bounds) else end - start
        yield out[:, overlap:cut]
        pending = out[:, cut:] if k + 1 < len(bounds) else None


def _run(fn: ChunkFn, chunk: torch.Tensor) -> torch.Tensor:
    """``fn`` on one chunk. Shape: ``(time,)`` -> ``(n_out, time)``."""
    out = fn(chunk.unsqueeze(0))
    if out.dim() == 2:  # a single-output model may drop the output axis
        out = out.unsqueeze(1)
    if out.dim() != 3 or out.shape[0] != 1:
        raise ValueError(f"fn must map (1, time) to (1, n_out, time); it returned shape {tuple(out.shape)}")
    return out[0].detach().float().cpu()


def _samples(seconds: float, sample_rate: int) -> int:
    return int(round(seconds * sample_rate))


def check_chunking(chunk_seconds: float, overlap_seconds: float, sample_rate: int) -> None:
    """Check a chunk length and overlap before any work (command line: ``--chunk-seconds``, ``--overlap-seconds``).

    Raises:
        ConfigError: a value that is not finite, a chunk shorter than one sample, a negative overlap, or an overlap
            of more than half a chunk.
    """
    if not math.isfinite(chunk_seconds) or _samples(chunk_seconds, sample_rate) < 1:
        raise ConfigError(f"--chunk-seconds {chunk_seconds}: give a positive number of seconds (at least one sample "
                          f"at {sample_rate} Hz).")
    if not math.isfinite(overlap_seconds) or overlap_seconds < 0 or 2 * overlap_seconds > chunk_seconds:
        raise ConfigError(f"--overlap-seconds {overlap_seconds}: give 0 up to half the chunk "
                          f"(--chunk-seconds {chunk_seconds}).")


def resolve_device(name: str) -> torch.device:
    """The torch device a command runs on (command line: ``--device``).

    Raises:
        ConfigError: not a device name, or a CUDA device this machine does not have.
    """
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"--device {name}: not a device; give cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} usable CUDA GPU(s); use "
                          f"--device cpu (or another GPU).")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {name}: give cpu, cuda or cuda:N.")
    return device


def process_tensor(
    wav: torch.Tensor,
    fn: ChunkFn,
    sample_rate: int,
    chunk_seconds: float,
    overlap_seconds: float,
    align_sources: bool = False,
) -> torch.Tensor:
    """Run ``fn`` over a waveform chunk by chunk and join the outputs (the chunking of :func:`process_file`).

    Args:
        wav: the waveform at ``sample_rate``.
        fn: ``(1, time)`` -> ``(1, n_out, time)``, e.g. a separation model.
        sample_rate: of ``wav``; converts the chunk and overlap durations to samples.
        chunk_seconds: chunk length.
        overlap_seconds: overlap of consecutive chunks (at most half a chunk).
        align_sources: keep each output on the same source across chunks (blind separation).

    Returns:
        ``(n_out, time)``.
    """
    if wav.dim() != 1:
        raise ValueError(f"expected a (time,) waveform, got shape {tuple(wav.shape)}")
    check_chunking(chunk_seconds, overlap_seconds, sample_rate)
    bounds = chunk_bounds(wav.shape[-1], _samples(chunk_seconds, sample_rate), _samples(overlap_seconds, sample_rate))
    joined, at = None, 0
    with torch.inference_mode():
        outputs = (_run(fn, wav[start:end]) for start, end in bounds)
        for block in join_chunks(outputs, bounds, align_sources):  # written into one output: never held twice
            if joined is None:
                joined = block.new_empty((block.shape[0], bounds[-1][1]))
            joined[:, at:at + block.shape[-1]] = block
            at += block.shape[-1]
    return joined


class ChunkReader:
    """Reads spans of a file's mono mix-down at a model's sample rate, resampling each read.

    Each read starts on a sample where the file's and the model's sample grids meet and carries a margin on both
    sides, so any span equals the same span of the whole file resampled at once (to float rounding). Samples
    outside the file read as zeros.

    Args:
        path: the recording.
        sample_rate: the rate spans are counted and returned in.

    Raises:
        AudioError: missing, unreadable or empty file.
    """

    MARGIN = 64  # model-rate samples read beyond each side, for the resampling filter

    def __init__(self, path: str | os.PathLike, sample_rate: int):
        meta = audio.info(path)
        if meta.frames == 0:
            raise AudioError(f"{path}: has zero samples; give a recording with audio in it.")
        self.path, self.file_rate, self.rate, self.frames = Path(path), meta.samplerate, sample_rate, meta.frames
        self.length = math.ceil(self.frames * sample_rate / self.file_rate)  # samples at the model's rate
        g = math.gcd(self.file_rate, sample_rate)
        self.step_in, self.step_out = self.file_rate // g, sample_rate // g

    def read(self, start: int, end: int) -> torch.Tensor:
        """Samples ``[start, end)`` at the model's rate; zeros where the span leaves the file.

        Shape: ``(end - start,)``.
        """
        lo, hi = max(start, 0), min(end, self.length)
        if hi <= lo:
            return torch.zeros(max(end - start, 0))
        return torch.nn.functional.pad(self._read_inside(lo, hi), (lo - start, end - hi))

    def _read_inside(self, start: int, end: int) -> torch.Tensor:
        if self.file_rate == self.rate:
            return audio.load(self.path, mono=True, start=start, frames=end - start)[0][0]
        first = max(start - self.MARGIN, 0) // self.step_out
        stop = min(end + self.MARGIN, self.length)
        in_start = first * self.step_in
        in_stop = min(math.ceil(stop * self.file_rate / self.rate), self.frames)
        wav = audio.load(self.path, mono=True, start=in_start, frames=in_stop - in_start)[0][0]
        wav = audio.resample(wav, self.file_rate, self.rate)
        offset = start - first * self.step_out
        return wav[offset:offset + end - start]


def process_file(
    in_path: str | os.PathLike,
    out_paths: Sequence[str | os.PathLike],
    fn: ChunkFn,
    sample_rate: int,
    chunk_seconds: float,
    overlap_seconds: float,
    align_sources: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Run ``fn`` over an audio file chunk by chunk and write one file per output, in bounded memory.

    The input is mixed down to mono and, when its rate is not ``sample_rate``, resampled chunk by chunk (a note
    says so). Outputs are written at ``sample_rate`` into temporary files that replace ``out_paths`` only when the
    whole recording is done.

    Args:
        in_path: the recording.
        out_paths: one destination per output of ``fn`` (their format follows the extension).
        fn: ``(1, time)`` -> ``(1, n_out, time)`` at ``sample_rate``.
        sample_rate: the model's rate.
        chunk_seconds: chunk length.
        overlap_seconds: overlap of consecutive chunks (at most half a chunk).
        align_sources: keep each output on the same source across chunks (blind separation).
        progress: show a progress bar over chunks.

    Returns:
        ``out_paths`` as paths.

    Raises:
        AudioError: unreadable input or an output name with an unknown format.
        ConfigError: see :func:`check_chunking`.
        OutputError: an output is the input, or two outputs are one file (nothing is written).
        ValueError: ``fn`` returns another number of outputs than ``len(out_paths)``.
    """
    in_path, out_paths = Path(in_path), [Path(p) for p in out_paths]
    check_chunking(chunk_seconds, overlap_seconds, sample_rate)
    check_outputs(out_paths, [in_path])
    reader = ChunkReader(in_path, sample_rate)
    if reader.file_rate != sample_rate:
        print(f"note: {in_path} is at {reader.file_rate} Hz; resampling to the model's {sample_rate} Hz "
              f"(outputs are written at {sample_rate} Hz)", file=sys.stderr)
    bounds = chunk_bounds(reader.length, _samples(chunk_seconds, sample_rate), _samples(overlap_seconds, sample_rate))

    def outputs() -> Iterator[torch.Tensor]:
        for start, end in tqdm(bounds, desc=in_path.name, unit="chunk", disable=not progress, leave=False):
            out = _run(fn, reader.read(start, end))
            if out.shape[0] != len(out_paths):
                raise ValueError(f"the model gives {out.shape[0]} outputs but {len(out_paths)} output paths "
                                 f"were given for {in_path}")
            yield out

    if align_sources and len(out_paths) > 1:
        # Aligning the chunks' sources loads scipy. Load it before any output exists: after an interrupt that
        # lands inside an import, CPython ends the process by the signal instead of the command's exit status.
        import scipy.optimize  # noqa: F401
    with contextlib.ExitStack() as stack, torch.inference_mode():
        writers = [stack.enter_context(audio.open_writer(path, sample_rate)) for path in out_paths]
        for block in join_chunks(outputs(), bounds, align_sources):
            for write, signal in zip(writers, block):
                write(signal)
    return out_paths
