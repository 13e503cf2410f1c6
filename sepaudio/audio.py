"""Load, validate, resample and save audio. The only module that touches soundfile.

Waveforms are float32 tensors of shape ``(channels, time)``.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from .errors import AudioError
from .fileio import atomic_path, check_readable, special_kind, write_failed

__all__ = ["load", "save", "open_writer", "check_output", "resample", "info", "validate", "AudioError"]

#: bounds on the numbers of a file's header, checked before they size any read (a damaged header can claim anything)
MAX_SAMPLE_RATE, MAX_CHANNELS = 768_000, 256
#: samples a header may claim per byte of its file: FLAC or Vorbis of digital silence packs a few hundred (measured at
#: most ~1,900: 8 channels of Vorbis at 48 kHz); a header claiming more lies about its length
MAX_SAMPLES_PER_BYTE = 65_536


def info(path: str | os.PathLike) -> sf._SoundFileInfo:
    """Header of an audio file (sample rate, channels, frames) without reading the samples."""
    path = _existing(path)
    try:
        meta = sf.info(os.fsencode(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise _unreadable(path, err) from err
    if not 1 <= meta.samplerate <= MAX_SAMPLE_RATE or not 1 <= meta.channels <= MAX_CHANNELS:
        raise AudioError(f"{path}: its header says {meta.samplerate} Hz and {meta.channels} channel(s), beyond what "
                         f"any recording has (1-{MAX_SAMPLE_RATE} Hz, 1-{MAX_CHANNELS} channels); the file is damaged: "
                         f"export it again.")
    size = path.stat().st_size
    if not 0 <= meta.frames * meta.channels <= MAX_SAMPLES_PER_BYTE * size:
        raise AudioError(f"{path}: its header claims {meta.frames:,} samples per channel, more than its {size:,} bytes "
                         f"can hold; the file is damaged: export it again.")
    _warn_short(path, meta)
    return meta


_WARNED: set[tuple[str, int]] = set()  # (path, modification time) of the cut-off files already warned about


def _warn_short(path: Path, meta) -> None:
    """Warn (once per file) when its header promises more audio than it holds (a cut-off copy or download)."""
    short = re.search(r"^data : (\d+) \(should be (\d+)\)", meta.extra_info, re.M)
    key = (str(path), path.stat().st_mtime_ns)
    if short and int(short[1]) > int(short[2]) and key not in _WARNED:
        _WARNED.add(key)
        print(f"warning: {path}: the header promises {int(short[1]):,} bytes of audio but the file holds "
              f"{int(short[2]):,} (cut off?); reading the {meta.frames:,} samples it has.", file=sys.stderr)


def load(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    mono: bool = False,
    channels: int | None = None,
    start: int = 0,
    frames: int = -1,
) -> tuple[torch.Tensor, int]:
    """Read an audio file into a float32 tensor.

    Args:
        path: WAV, FLAC or OGG file.
        sample_rate: resample to this rate; ``None`` keeps the file's rate.
        mono: average the channels into one. Without it the channels are kept as they are.
        channels: the channel count the caller can take (checked after ``mono``); ``None`` takes any.
        start: the first sample to read, in the file's rate.
        frames: how many samples to read (``-1``: to the end).

    Returns:
        ``(waveform, rate)``: waveform of shape ``(channels, time)`` and its sample rate.

    Raises:
        AudioError: missing or unreadable file, zero samples, NaN/Inf samples, or a channel count other than
            ``channels``.
    """
    path = _existing(path)
    if start == 0 and frames == -1:
        info(path)  # warns about a cut-off file (chunked readers call info once themselves)
    try:
        data, rate = sf.read(os.fsencode(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise _unreadable(path, err) from err
    except MemoryError as err:
        raise AudioError(f"{path}: too long to read into memory at once; process it in chunks (sepaudio separate, "
                         f"extract and segment read long files a block at a time).") from err
    wav = torch.from_numpy(np.ascontiguousarray(data.T))
    if mono and wav.shape[0] > 1:
        wav = wav.mean(0, keepdim=True)
    if channels is not None and wav.shape[0] != channels:
        hint = " Pass mono=True (command line: --mono) to mix it down." if channels == 1 else ""
        raise AudioError(f"{path}: has {wav.shape[0]} channel(s) but {channels} are expected.{hint}")
    validate(wav, path)
    if sample_rate is not None and sample_rate != rate:
        wav = resample(wav, rate, sample_rate)
        rate = sample_rate
    return wav, rate


def validate(wav: torch.Tensor, source: str | os.PathLike = "<tensor>") -> torch.Tensor:
    """Check a waveform has samples and that all are finite; return it unchanged.

    Shape: any, time last.
    """
    if wav.numel() == 0 or wav.shape[-1] == 0:
        raise AudioError(f"{source}: has zero samples; give a recording with audio in it.")
    if not torch.isfinite(wav).all():
        bad = (~torch.isfinite(wav)).sum().item()
        raise AudioError(f"{source}: {bad} sample(s) are NaN or Inf; re-export or clean the file.")
    return wav


def resample(wav: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Band-limited resampling (torchaudio). Shape: ``(..., time)`` -> ``(..., new_time)``."""
    if orig_rate == new_rate:
        return wav
    return AF.resample(wav, int(orig_rate), int(new_rate))


def save(path: str | os.PathLike, wav: torch.Tensor, sample_rate: int, subtype: str | None = None) -> Path:
    """Write a waveform atomically (temporary file, then rename).

    Args:
        path: destination; the format follows the extension (.wav, .flac, .ogg).
        wav: ``(time)`` or ``(channels, time)``.
        sample_rate: samples per second.
        subtype: soundfile subtype; WAV defaults to 32-bit float so nothing clips, others to soundfile's default.

    Raises:
        AudioError: a format that clips (FLAC, OGG, integer WAV) given samples beyond full scale (nothing is
            written; a .wav name keeps them).
    """
    wav = torch.as_tensor(wav)
    if wav.dim() not in (1, 2):
        raise AudioError(f"{path}: cannot save a tensor of shape {tuple(wav.shape)}; give (time) or (channels, time).")
    with open_writer(path, sample_rate, 1 if wav.dim() == 1 else wav.shape[0], subtype) as write:
        write(wav)
    return Path(path)


@contextlib.contextmanager
def open_writer(
    path: str | os.PathLike, sample_rate: int, channels: int = 1, subtype: str | None = None
) -> Iterator[Callable[[torch.Tensor], None]]:
    """Write a long file block by block; it appears at ``path`` only when the block exits without error.

    Yields:
        ``write(block)``, taking ``(time)`` or ``(channels, time)`` blocks (checked finite; empty ones skipped).

    Raises:
        AudioError: an unknown format, NaN or Inf samples, or samples beyond full scale for a format that would clip
            them: the file is not written (a float WAV keeps any finite value).
        OutputError: the system refused a write (a full disk, a file size limit): no partial file is left.
    """
    path = Path(path)
    if subtype is None and path.suffix.lower() == ".wav":
        subtype = "FLOAT"
    with atomic_path(path) as tmp:
        try:
            file = sf.SoundFile(os.fsencode(tmp), "w", samplerate=int(sample_rate), channels=channels,
                                subtype=subtype)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
            reason = getattr(err, "error_string", err)
            raise AudioError(f"{path}: could not write audio ({reason}); use a .wav, .flac or .ogg name.") from err
        clips = None if file.subtype in ("FLOAT", "DOUBLE") else f"{file.format} {file.subtype}"

        def write(block: torch.Tensor) -> None:
            if block.shape[-1] == 0:
                return
            block = check_output(block, path, clips)
            file.write((block.unsqueeze(0) if block.dim() == 1 else block).T.numpy())

        try:
            with file:
                yield write
        except sf.LibsndfileError as err:  # libsndfile says "System error": its errno says which
            raise write_failed(path, getattr(getattr(sf, "_ffi", None), "errno", None)) from err


def check_output(block: torch.Tensor, destination: str | os.PathLike, clips: str | None = None,
                 stopped: str = "nothing was written", wider: str = "a .wav name (32-bit float keeps every value)"
                 ) -> torch.Tensor:
    """``block`` as float32 on the CPU once it is fit to be written: every sample finite and, when the destination's
    format ``clips`` (its name, e.g. ``"FLAC PCM_16"``), within full scale. The same rules hold for files and
    standard output.

    Args:
        block: output samples, any shape.
        destination: named in the error (a path, or ``<stdout>``).
        clips: the destination's format when it clips beyond full scale; ``None`` for float formats.
        stopped: what became of the output, for the error (``nothing was written``, ``the stream stops here``).
        wider: the destination that keeps every value, for the error.

    Raises:
        AudioError: NaN or Inf samples, or samples beyond full scale that ``clips`` would clip.
    """
    block = block.detach().float().cpu()
    bad = int((~torch.isfinite(block)).sum())
    if bad:
        raise AudioError(f"{destination}: the output holds {bad} NaN or Inf sample(s), which sepaudio never writes; "
                         f"{stopped}. The model's weights may be damaged: check the model file.")
    peak = block.abs().max().item() if block.numel() else 0.0
    if clips and peak > 1.0:
        raise AudioError(f"{destination}: the output reaches {peak:.3f}, beyond full scale (1.0), which {clips} would "
                         f"clip; {stopped}. Give {wider} or scale the input down.")
    return block


def _unreadable(path: Path, err: Exception) -> AudioError:
    """The error for a file soundfile cannot read (its reason without soundfile's byte-string path)."""
    return AudioError(f"{path}: not a readable audio file (WAV, FLAC or OGG expected): "
                      f"{getattr(err, 'error_string', err)}")


def _existing(path: str | os.PathLike) -> Path:
    """``path`` when it is an existing regular file; a FIFO or a device would block or never end."""
    path = Path(path)
    kind = special_kind(path)
    if kind is not None:
        raise AudioError(f"{path}: is {kind}, not an audio file; give a WAV, FLAC or OGG file.")
    if not path.exists():
        raise AudioError(f"{path}: no such file; check the path.")
    check_readable(path, AudioError)
    return path
