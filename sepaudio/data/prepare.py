"""Corpus preparation behind ``sepaudio prepare <corpus>``: generate, split or check a classification corpus.

- ``smn_mini``: :func:`prepare_smn_mini` generates the mini speech / music / noise corpus and a test timeline.
- ``musan``: :func:`sepaudio.data.musan.prepare_musan` splits MUSAN and removes its silence.
- ``esc50`` / ``urbansound8k``: :func:`describe_folds` checks a copy's layout and counts its clips per fold.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from .classification import write_manifest
from .esc50 import esc50_fold_sizes, esc50_labels
from .smn_mini import make_smn_mini_corpus, make_smn_timeline
from .urbansound8k import us8k_fold_sizes, us8k_labels

__all__ = ["prepare_smn_mini", "describe_folds"]

#: the longest corpus file and test recording the generator writes, in seconds (each is built whole in memory)
MAX_SECONDS, MAX_TIMELINE_SECONDS = 600.0, 3600.0

FOLD_CORPORA = {"esc50": ("ESC-50", esc50_fold_sizes, esc50_labels),
                "urbansound8k": ("UrbanSound8K", us8k_fold_sizes, us8k_labels)}


def prepare_smn_mini(root: str | os.PathLike, seconds: float = 4.0, timeline_seconds: float = 300.0,
                     seed: int = 0) -> Path:
    """Generate the mini corpus ``ROOT/<split>/<class>/*.wav`` and, unless ``timeline_seconds`` is 0, a test
    recording ``ROOT/timeline.wav`` with its reference timeline ``ROOT/timeline.csv`` (kept when present).

    Returns:
        ``root``.

    Raises:
        ConfigError: ``seconds`` not in ``(0, MAX_SECONDS]`` or ``timeline_seconds`` not in
            ``[0, MAX_TIMELINE_SECONDS]`` (command line: ``--seconds``, ``--timeline-seconds``).
    """
    if not (0 < seconds <= MAX_SECONDS and 0 <= timeline_seconds <= MAX_TIMELINE_SECONDS):  # NaN fails too
        raise ConfigError(f"--seconds {seconds} / --timeline-seconds {timeline_seconds}: give a file length above 0 "
                          f"and at most {MAX_SECONDS:g} seconds, and a test recording of 0 (none) to "
                          f"{MAX_TIMELINE_SECONDS:g} seconds (each file is built whole in memory).")
    root = make_smn_mini_corpus(root, seconds=seconds, seed=seed)
    if timeline_seconds > 0 and not (root / "timeline.csv").exists():
        regions = make_smn_timeline(root / "timeline.wav", timeline_seconds, seed=seed + 1000)
        write_manifest(root / "timeline.csv", regions)
    return root


def describe_folds(corpus: str, root: str | os.PathLike) -> str:
    """Check a fold-based corpus (``esc50`` or ``urbansound8k``) and say its clips, classes and clips per fold.

    Raises:
        DatasetError: missing metadata or a listed file missing.
    """
    if corpus not in FOLD_CORPORA:
        raise ConfigError(f"unknown corpus {corpus!r}; choose one of {', '.join(FOLD_CORPORA)}.")
    name, fold_sizes, labels = FOLD_CORPORA[corpus]
    sizes = fold_sizes(root)
    return f"{name}: {sum(sizes.values())} clips, {len(labels(root))} classes; clips per fold: {sizes}"
