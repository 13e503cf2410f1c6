"""Enrollments from anywhere: a whole file, or a time range of any file (``FILE@START-END``, seconds), the mixture
included when the target talks alone somewhere in it."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

import torch

from .. import audio
from ..errors import AudioError
from ..models.tsenet import MIN_SECONDS, SILENT_RMS

__all__ = ["EnrollmentSpec", "parse_enrollment", "load_enrollment"]

_RANGE = re.compile(r"^(?P<start>[^-@]*)-(?P<end>[^-@]*)$")


class EnrollmentSpec(NamedTuple):
    """A recording of the target: ``path``, and the range ``start``-``end`` in seconds (``None``: the whole file)."""
    path: Path
    start: float | None = None
    end: float | None = None

    def __str__(self) -> str:
        return str(self.path) if self.start is None else f"{self.path}@{self.start:g}-{self.end:g}"


def parse_enrollment(spec: str | os.PathLike, root: str | os.PathLike | None = None) -> EnrollmentSpec:
    """Read ``FILE`` or ``FILE@START-END`` (seconds, ``START < END``); a file whose own name holds an ``@`` is
    taken whole when it exists.

    Args:
        spec: the enrollment as the user wrote it.
        root: where a relative ``FILE`` starts (``None``: the working folder).

    Raises:
        AudioError: an unparsable or reversed / empty range, or a missing file (naming both).
    """
    text = os.fspath(spec)

    def where(name: str) -> Path:
        path = Path(name)
        return path if root is None or path.is_absolute() else Path(root) / path

    name, at, span = text.rpartition("@")
    if not at or where(text).is_file():
        return EnrollmentSpec(_existing(where(text), text))
    match = _RANGE.match(span.strip())
    try:
        start, end = (float(match["start"]), float(match["end"])) if match else (None, None)
    except ValueError:
        start = end = None
    if start is None or not (0 <= start < float("inf") and 0 <= end < float("inf")):
        raise AudioError(f"{text}: the range {span!r} is not START-END in seconds (e.g. {name}@1.5-4); "
                         f"give two non-negative numbers.")
    if end <= start:
        raise AudioError(f"{text}: the range {span} is {'empty' if end == start else 'reversed'}; give START-END "
                         f"with START before END (seconds).")
    return EnrollmentSpec(_existing(where(name), text), start, end)


def _existing(path: Path, spec: str) -> Path:
    if not path.is_file():
        raise AudioError(f"{spec}: {path} not found; give an existing recording (FILE or FILE@START-END).")
    return path


def load_enrollment(spec: str | os.PathLike | EnrollmentSpec, sample_rate: int,
                    root: str | os.PathLike | None = None) -> torch.Tensor:
    """Read an enrollment (mixed down to mono, resampled to ``sample_rate``).

    Args:
        spec: ``FILE``, ``FILE@START-END`` or an :class:`EnrollmentSpec`.
        sample_rate: the rate the model takes.
        root: where a relative ``FILE`` starts.

    Returns:
        ``(1, time)`` at ``sample_rate``.

    Raises:
        AudioError: see :func:`parse_enrollment`; a range that starts at or beyond the end of the file or ends
            more than 10 ms after it, a range or file that is silent or shorter than 25 ms, or an unreadable file.
    """
    spec = spec if isinstance(spec, EnrollmentSpec) else parse_enrollment(spec, root)
    if spec.start is None:
        wav, rate = audio.load(spec.path, mono=True)
    else:
        meta = audio.info(spec.path)
        length = meta.frames / meta.samplerate
        if spec.start >= length or spec.end > length + 0.01:
            raise AudioError(f"{spec}: the range lies outside the file, which lasts {length:.2f} s; give a range "
                             f"within 0-{length:.2f}.")
        first = round(spec.start * meta.samplerate)
        last = min(meta.frames, round(spec.end * meta.samplerate))
        wav, rate = audio.load(spec.path, mono=True, start=first, frames=max(1, last - first))
    if wav.shape[-1] < MIN_SECONDS * rate:
        raise AudioError(f"{spec}: the enrollment lasts {1000 * wav.shape[-1] / rate:.1f} ms, too short for a speaker "
                         f"vector (at least {MIN_SECONDS * 1000:.0f} ms; a few seconds of the target alone work best).")
    if float(wav.pow(2).mean().sqrt()) < SILENT_RMS:
        raise AudioError(f"{spec}: the enrollment is silent (below -80 dBFS); give a range where the target "
                         f"speaker talks alone.")
    return audio.resample(wav, rate, sample_rate)
