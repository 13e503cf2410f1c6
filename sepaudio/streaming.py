"""Streaming extraction and separation (``sepaudio extract --stream``, ``sepaudio separate --stream``).

A causal model (``tcn: {causal: true, norm: cLN}``) runs on its input hop by hop through
:class:`sepaudio.nn.streaming.Streamer`, which keeps the convolutions' past, so the output equals the offline
output. Input is an audio file (read hop by hop, resampled to the model's rate when needed) or raw PCM on standard
input (``-``); output is a WAV per source (written as it goes into a temporary file renamed at the end) or raw PCM
on standard output (``-``, sources interleaved as channels, flushed after every hop). The speaker vector of an
extraction model is computed once from the enrollment.

Algorithmic latency = encoder window ``L`` + hop: the most any sample waits before its output can leave.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np
import torch

from . import audio
from .errors import AudioError, ConfigError, ModelFileError
from .extract import enrollment_embedding, load_extractor
from .fileio import check_out_dir, check_outputs
from .inference import ChunkReader
from .nn.streaming import Streamer
from .separate import load_separator

__all__ = ["PCM_FORMATS", "STDIO", "stream_extract", "stream_separate", "run_stream", "pcm_blocks", "file_blocks",
           "latency_note"]

#: raw PCM sample formats: name -> (numpy dtype, full scale)
PCM_FORMATS = {"s16le": ("<i2", 32768.0), "f32le": ("<f4", 1.0)}
#: the name that stands for standard input / output
STDIO = "-"


def latency_note(streamer: Streamer, hop: int) -> str:
    """The line printed before streaming: algorithmic latency = encoder window + hop, in ms and samples."""
    ms = lambda n: 1000.0 * n / streamer.sample_rate  # noqa: E731
    return (f"streaming: algorithmic latency {ms(streamer.latency(hop)):.1f} ms = encoder window "
            f"{streamer.window} samples ({ms(streamer.window):.1f} ms) + hop {hop} samples ({ms(hop):.1f} ms) "
            f"at {streamer.sample_rate} Hz")


def pcm_blocks(stream: BinaryIO, fmt: str, hop: int) -> Iterator[torch.Tensor]:
    """Mono raw PCM from a binary stream, ``hop`` samples at a time (the last block may be shorter).

    Shape: yields ``(hop,)`` float32 blocks in [-1, 1).

    Raises:
        AudioError: a stream that ends inside a sample, or non-finite float samples.
    """
    dtype, scale = PCM_FORMATS[fmt]
    width = np.dtype(dtype).itemsize
    while True:
        data = _read(stream, hop * width)
        if not data:
            return
        if len(data) % width:
            raise AudioError(f"<stdin>: the {fmt} stream ends inside a sample ({len(data) % width} stray byte(s)); "
                             f"check --format.")
        yield audio.validate(torch.from_numpy(np.frombuffer(data, dtype=dtype).astype(np.float32) / scale),
                             "<stdin>")


def _read(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes: fewer only at the end of the stream."""
    parts, got = [], 0
    while got < size:
        part = stream.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def file_blocks(path: str | os.PathLike, sample_rate: int, hop: int) -> Iterator[torch.Tensor]:
    """An audio file's mono mix-down at ``sample_rate`` (resampled with a note when needed), ``hop`` at a time.

    Shape: yields ``(hop,)`` blocks (the last may be shorter).
    """
    reader = ChunkReader(path, sample_rate)  # checks the file now, not at the first block
    if reader.file_rate != sample_rate:
        print(f"note: {path} is at {reader.file_rate} Hz; resampling to the model's {sample_rate} Hz",
              file=sys.stderr)
    return (reader.read(start, min(start + hop, reader.length)) for start in range(0, reader.length, hop))


@contextlib.contextmanager
def _stdout_writer(fmt: str) -> Iterator[Callable[[torch.Tensor], None]]:
    """``write(block)`` of ``(channels, time)`` blocks as interleaved raw PCM on standard output, flushed each time."""
    dtype, scale = PCM_FORMATS[fmt]
    out = sys.stdout.buffer

    def write(block: torch.Tensor) -> None:
        if block.shape[-1] == 0:
            return
        block = audio.check_output(block, "<stdout>", fmt if scale != 1.0 else None, "the stream stops here",
                                   "--pcm-format f32le (32-bit float keeps every value)")
        data = block.T.numpy()
        if scale != 1.0:  # within full scale: only +1.0 itself lies one step beyond the largest integer
            data = np.clip(np.round(data * scale), -scale, scale - 1)
        out.write(data.astype(dtype).tobytes())
        out.flush()

    yield write


def run_stream(streamer: Streamer, blocks: Iterator[torch.Tensor], write: Callable[[torch.Tensor], None]) -> int:
    """Feed ``blocks`` through ``streamer`` and ``write`` every output as soon as it is final, then the rest.

    Shape: blocks ``(hop,)``; ``write`` gets ``(n_src, time)`` on the CPU.

    Returns:
        The samples streamed.
    """
    seen = 0
    for block in blocks:
        seen += block.shape[-1]
        write(streamer(block).float().cpu())
    write(streamer.flush().float().cpu())
    return seen


def _hop_samples(hop_ms: float, sample_rate: int) -> int:
    hop = round(hop_ms * sample_rate / 1000) if math.isfinite(hop_ms) else 0
    if hop < 1:
        raise ConfigError(f"--hop-ms {hop_ms}: give a positive hop of at least one sample ({1000 / sample_rate:.3f} ms "
                          f"at {sample_rate} Hz).")
    return hop


def _streamer(model, model_path, cond=None, precision: str | None = None, engine: str = "torch") -> Streamer:
    try:
        return model.streamer(cond, precision=precision or "fp32", engine=engine)
    except ValueError as err:
        raise ModelFileError(f"{model_path}: {err}") from None


def _blocks(source: str, sample_rate: int, hop: int, fmt: str, rate: int | None) -> Iterator[torch.Tensor]:
    if source != STDIO:
        return file_blocks(source, sample_rate, hop)
    if rate is not None and rate != sample_rate:
        raise AudioError(f"<stdin>: raw PCM at --rate {rate} Hz, but the model runs at {sample_rate} Hz; resample "
                         f"the stream first (e.g. sox -t raw ... -r {sample_rate} -) or give a file.")
    return pcm_blocks(sys.stdin.buffer, fmt, hop)


def _stream_to(streamer: Streamer, blocks: Iterator[torch.Tensor], outputs: list[str | os.PathLike],
               fmt: str) -> None:
    """Stream into one file per source, or interleaved raw PCM on standard output (``outputs == ["-"]``)."""
    with contextlib.ExitStack() as stack:
        if list(map(str, outputs)) == [STDIO]:
            write = stack.enter_context(_stdout_writer(fmt))
        else:
            writers = [stack.enter_context(audio.open_writer(path, streamer.sample_rate)) for path in outputs]

            def write(block: torch.Tensor) -> None:
                for each, signal in zip(writers, block):
                    each(signal)

        run_stream(streamer, blocks, write)


def stream_extract(model_path: str | os.PathLike, mixture: str, enrollment: str | os.PathLike, out: str,
                   ivector_model: str | os.PathLike | None = None, hop_ms: float = 16.0, fmt: str = "s16le",
                   rate: int | None = None, device: str = "cpu", precision: str | None = None,
                   engine: str = "torch") -> list[str]:
    """Extract the enrolled speaker from a stream with a causal extraction model, writing as it goes.

    Args:
        model_path: a causal TseNet (``tcn: {causal: true}``).
        mixture: an audio file, or ``-`` for raw mono PCM on standard input.
        enrollment: a recording of the target speaker alone (read once).
        out: the output audio file, or ``-`` for raw PCM on standard output.
        ivector_model: the i-vector extractor of an i-vector conditioned model.
        hop_ms: milliseconds of input per step (any value; latency grows with it, compute per sample shrinks).
        fmt: raw PCM format of standard input / output: ``s16le`` | ``f32le``.
        rate: the sample rate of raw PCM input (must be the model's); ``None`` takes the model's.
        device: ``cpu`` or ``cuda``.
        precision: ``fp32`` (``None``: the default) | ``bf16`` | ``int8``: of the streaming step
            (:class:`~sepaudio.nn.streaming.Streamer`; on the CPU a TCN model runs the fused step), refused as by
            ``model.fast(precision)``.
        engine: ``torch`` | ``onnxruntime``: what runs the fused step (:class:`~sepaudio.nn.streaming.Streamer`).

    Returns:
        ``[out]``.

    Raises:
        ModelFileError: not an extraction model, or not a causal one.
        AudioError, OutputError, ConfigError: bad input, an output that is an input, a bad hop, device or precision.
    """
    if out != STDIO:
        check_outputs([out], [p for p in (mixture, enrollment) if p != STDIO])
    model, ivectors = load_extractor(model_path, ivector_model, device)
    streamer = _streamer(model, model_path, enrollment_embedding(model, enrollment, ivectors), precision,
                         engine)
    _run(streamer, mixture, [out], hop_ms, fmt, rate)
    return [out]


def stream_separate(model_path: str | os.PathLike, mixture: str, out: str, hop_ms: float = 16.0,
                    fmt: str = "s16le", rate: int | None = None, device: str = "cpu",
                    precision: str | None = None, engine: str = "torch") -> list[str]:
    """Separate a stream with a causal blind separation model, writing as it goes.

    Args:
        model_path: a causal Conv-TasNet or MiTAS.
        mixture: an audio file, or ``-`` for raw mono PCM on standard input.
        out: a folder for ``<name>_s1.wav``, ``<name>_s2.wav``, ... (``stdin_s1.wav``, ... for ``-``), or ``-`` for
            raw PCM on standard output with the sources interleaved as channels.
        hop_ms, fmt, rate, device, precision, engine: as in :func:`stream_extract`.

    Returns:
        The outputs (``["-"]`` for standard output).
    """
    model = load_separator(model_path, device)
    streamer = _streamer(model, model_path, precision=precision, engine=engine)
    if out == STDIO:
        outputs = [STDIO]
    else:
        stem = "stdin" if mixture == STDIO else Path(mixture).stem
        outputs = [str(Path(check_out_dir(out)) / f"{stem}_s{k + 1}.wav") for k in range(model.n_src)]
        check_outputs(outputs, [mixture] if mixture != STDIO else [], out)
    _run(streamer, mixture, outputs, hop_ms, fmt, rate)
    return outputs


def _run(streamer: Streamer, mixture: str, outputs: list[str], hop_ms: float, fmt: str, rate: int | None) -> None:
    if fmt not in PCM_FORMATS:
        raise ConfigError(f"--format {fmt}: choose one of {', '.join(PCM_FORMATS)}.")
    hop = _hop_samples(hop_ms, streamer.sample_rate)
    blocks = _blocks(mixture, streamer.sample_rate, hop, fmt, rate)
    print(latency_note(streamer, hop), file=sys.stderr)
    _stream_to(streamer, blocks, outputs, fmt)
