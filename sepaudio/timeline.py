"""Labelled timelines: segments, runs of frame labels into segments, and the CSV / RTTM / Audacity formats.

- ``csv``: header ``label,start,stop`` then one line per segment (seconds); the only format read back. A label with
  a comma, quote or line break is quoted as CSV quotes it.
- ``rttm``: NIST RTTM, one ``SPEAKER`` line per segment with the label as speaker name. RTTM fields cannot hold
  white space, so each white-space character of the file id or a label becomes ``_``.
- ``audacity``: tab-separated start, stop, label (File > Import > Labels); a tab or line break in a label becomes a
  space.
"""
from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .errors import ConfigError
from .fileio import write_text

__all__ = ["Segment", "FORMATS", "SUFFIXES", "frames_to_segments", "format_timeline", "write_timeline",
           "read_timeline"]

SUFFIXES = {"csv": ".csv", "rttm": ".rttm", "audacity": ".txt"}
FORMATS = tuple(SUFFIXES)


@dataclass
class Segment:
    """One labelled stretch of a timeline, in seconds."""

    label: str
    start: float
    stop: float


def frames_to_segments(labels: Sequence[str], hop: float, duration: float) -> list[Segment]:
    """Runs of equal frame labels (one every ``hop`` seconds) -> segments; the last one ends at ``duration``."""
    segments: list[Segment] = []
    for i, label in enumerate(labels):
        if segments and segments[-1].label == label:
            continue
        if segments:
            segments[-1].stop = round(i * hop, 3)
        segments.append(Segment(label, round(i * hop, 3), 0.0))
    if segments:
        segments[-1].stop = round(duration, 3)
    return segments


def format_timeline(segments: Iterable[Segment], fmt: str, file_id: str = "file") -> str:
    """Text of a timeline in ``fmt`` (``csv``, ``rttm`` or ``audacity``; see the module docstring).

    Raises:
        ConfigError: an unknown format.
    """
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(("label", "start", "stop"))
        writer.writerows((s.label, f"{s.start:.3f}", f"{s.stop:.3f}") for s in segments)
        return text.getvalue()
    if fmt == "rttm":
        lines = [f"SPEAKER {_field(file_id)} 1 {s.start:.3f} {s.stop - s.start:.3f} <NA> <NA> {_field(s.label)} <NA> "
                 f"<NA>" for s in segments]
    elif fmt == "audacity":
        lines = [f"{s.start:.6f}\t{s.stop:.6f}\t{_LINE_BREAKS.sub(' ', s.label)}" for s in segments]
    else:
        raise ConfigError(f"unknown timeline format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    return "\n".join(lines) + "\n"


_LINE_BREAKS = re.compile(r"[\t\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")  # what splits a line or a tab-separated field


def _field(text: str) -> str:
    """``text`` as one white-space-separated field: every white-space character becomes ``_`` (empty: ``<NA>``)."""
    return re.sub(r"\s", "_", text) or "<NA>"


def write_timeline(path: str | os.PathLike, segments: Iterable[Segment], fmt: str, file_id: str = "file") -> Path:
    """Write a timeline atomically in ``fmt`` (see :func:`format_timeline`)."""
    return write_text(path, format_timeline(segments, fmt, file_id))


def read_timeline(path: str | os.PathLike) -> list[Segment]:
    """Read a ``label,start,stop`` CSV timeline (also the reference the mini corpus writes beside its recording).

    Raises:
        ConfigError: no such file, or it lacks the ``label``, ``start`` and ``stop`` columns.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such timeline file.")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not {"label", "start", "stop"} <= set(reader.fieldnames or ()):
            raise ConfigError(f"{path}: a timeline needs the columns label,start,stop; found {reader.fieldnames}.")
        return [Segment(r["label"], float(r["start"]), float(r["stop"])) for r in reader]
