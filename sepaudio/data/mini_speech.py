"""A mini multi-speaker corpus that needs no download: synthetic voiced speech from distinct "speakers".

Every speaker has its own voice (see :func:`speaker_traits`): pitch, vocal-tract length and formant positions,
bandwidths, spectral tilt, intonation range, vibrato, breathiness, fricative colour and speaking rate. An utterance
is a random string of vowel-like syllables and fricative bursts with a falling pitch contour. Speakers differ
enough for an enrollment recording to tell them apart, and utterances of one speaker differ in content.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import types
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from scipy.signal import lfilter
from tqdm import tqdm

from .. import audio
from .generated import mark_generated, needs_generating

# F1, F2, F3 (Hz) of five vowels for a reference vocal tract (Peterson & Barney, adult male).
VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]])
BANDWIDTHS = np.array([90.0, 110.0, 170.0])
#: recorded in corpus.json: a corpus written by another version of the voices is not taken for this one
VERSION = 2


def speaker_traits(index: int, n_speakers: int, seed: int = 0) -> dict:
    """Voice parameters of speaker ``index`` of ``n_speakers``.

    Half the speakers have a "male" and half a "female" voice (alternating in a shuffled order). Within each group
    the median pitch and the vocal-tract formant scale are stratified (each spread evenly over the group's range, in
    shuffled pairings), so no two speakers of a small corpus share both; every other trait is the speaker's own
    random draw: the position of each formant, formant bandwidths, spectral tilt, pitch range, vibrato, breathiness,
    fricative colour and speaking rate.
    """
    shared = np.random.default_rng(seed)
    order = shared.permutation(n_speakers)
    groups = [list(order[0::2]), list(order[1::2])]  # male, female
    ranks = [(shared.permutation(len(g)), shared.permutation(len(g))) for g in groups]
    female = int(index in groups[1])
    position = groups[female].index(index)
    rank_f0, rank_vtl = ranks[female]
    group = groups[female]
    own = np.random.default_rng([seed, index])
    spread = lambda rank: (rank[position] + own.uniform(0.25, 0.75)) / len(group)  # noqa: E731
    f0_low, f0_high = (150.0, 290.0) if female else (80.0, 175.0)  # overlapping, as in people
    scale_low, scale_high = (1.05, 1.25) if female else (0.85, 1.05)
    return {
        "female": bool(female),
        "f0": float(f0_low * (f0_high / f0_low) ** spread(rank_f0)),
        "formant_scale": (scale_low + (scale_high - scale_low) * spread(rank_vtl)) * own.uniform(0.92, 1.08, 3),
        "bandwidth_scale": float(own.uniform(0.75, 1.35)),
        "tilt": float(own.uniform(0.7, 1.6)),
        "pitch_range": float(own.uniform(0.03, 0.12)),
        "vibrato_hz": float(own.uniform(3.5, 7.0)),
        "vibrato_depth": float(own.uniform(0.005, 0.03)),
        "breath": float(own.uniform(0.01, 0.06)),
        "fricative_hz": float(own.uniform(1800, 3400)),
        "syllable_seconds": float(own.uniform(0.14, 0.26)),
    }


def synthesize_utterance(traits: dict, seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One utterance of a speaker. Returns ``(time,)`` float32 with RMS about 0.05."""
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    # Syllable timeline: vowel index per sample, an amplitude envelope, and fricative bursts in the gaps.
    vowel_of = np.zeros(n, dtype=int)
    voiced = np.zeros(n)
    fricative = np.zeros(n)
    pos = int(rng.uniform(0.02, 0.15) * sample_rate)
    while pos < n:
        length = int(traits["syllable_seconds"] * rng.uniform(0.6, 1.4) * sample_rate)
        end = min(pos + length, n)
        vowel_of[pos:end] = rng.integers(len(VOWELS))
        voiced[pos:end] = np.sin(np.linspace(0, np.pi, end - pos)) ** 0.6 * rng.uniform(0.6, 1.0)
        gap = int(rng.uniform(0.03, 0.12) * sample_rate)
        if rng.random() < 0.4 and end < n:
            g_end = min(end + gap, n)
            fricative[end:g_end] = np.hanning(g_end - end) * rng.uniform(0.3, 0.7)
        pos = end + gap
    # Pitch: speaker mean, falling declination, a random rise per utterance, vibrato.
    f0 = traits["f0"] * (1.0 + 0.15 * (rng.random() - 0.5)) * (1.1 - 0.2 * t / max(seconds, 1e-3))
    f0 = f0 * (1.0 + traits["pitch_range"] * np.sin(np.pi * t / rng.uniform(0.6, 1.4) + rng.uniform(0, np.pi)))
    f0 = f0 * (1.0 + traits["vibrato_depth"] * np.sin(2 * np.pi * traits["vibrato_hz"] * t + rng.uniform(0, 2 * np.pi)))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    # Formants move smoothly between vowels (one-pole smoothing of the per-sample targets).
    targets = VOWELS[vowel_of] * traits["formant_scale"]
    alpha = np.exp(-1.0 / (0.02 * sample_rate))
    formants = lfilter([1 - alpha], [1, -alpha], targets.astype(float), axis=0,
                       zi=alpha * targets[:1].astype(float))[0]
    n_harm = int(sample_rate / 2 / f0.min())
    k = np.arange(1, n_harm + 1)
    freqs = f0[:, None] * k[None, :]  # (n, K)
    envelope = sum(
        1.0 / (1.0 + ((freqs - formants[:, j:j + 1]) / (BANDWIDTHS[j] * traits["bandwidth_scale"])) ** 2) * (0.8 ** j)
        for j in range(3)
    )
    amps = envelope * k[None, :] ** (-traits["tilt"]) * (freqs < sample_rate / 2)
    speech = (amps * np.sin(phase[:, None] * k[None, :])).sum(1) * voiced
    noise = rng.standard_normal(n)
    spectrum = np.fft.rfft(noise)
    bins = np.fft.rfftfreq(n, 1 / sample_rate)
    shaped = np.fft.irfft(spectrum * np.exp(-(((bins - traits["fricative_hz"]) / 600.0) ** 2)), n)
    speech = speech / (np.std(speech) + 1e-8) + 1.5 * shaped / (np.std(shaped) + 1e-8) * fricative
    speech = speech + traits["breath"] * noise * voiced
    return (0.05 * speech / (np.sqrt(np.mean(speech**2)) + 1e-8)).astype(np.float32)


def speaker_names(n_speakers: int) -> list[str]:
    """``spk00``, ``spk01``, ...: zero-padded so that names sort in speaker order (``spk000`` from 101 speakers)."""
    width = max(2, len(str(n_speakers - 1)))
    return [f"spk{i:0{width}d}" for i in range(n_speakers)]


def make_mini_speech_corpus(
    root: str | os.PathLike,
    n_speakers: int = 8,
    utterances: int = 20,
    seconds: float = 2.0,
    sample_rate: int = 8000,
    seed: int = 0,
) -> dict[str, list[Path]]:
    """Write ``root/<speaker>/<speaker>_<k>.wav`` for every speaker; skip the work if the same corpus is there.

    Returns:
        speaker name -> its utterance files.
    """
    root = Path(root)
    params = dict(generator=VERSION, n_speakers=n_speakers, utterances=utterances, seconds=seconds,
                  sample_rate=sample_rate, seed=seed)
    names = speaker_names(n_speakers)
    files = {s: [root / s / f"{s}_{k:03d}.wav" for k in range(utterances)] for s in names}
    if not needs_generating(root, params, [p for f in files.values() for p in f]):
        return files
    # Stamped first: an interrupted run leaves this corpus's stamp and whole files (each written atomically), and
    # the next call writes only the missing ones (every file is a function of its seed).
    mark_generated(root, params)
    jobs = [(i, n_speakers, seed, [k for k, p in enumerate(files[name]) if not p.is_file()], seconds, sample_rate)
            for i, name in enumerate(names)]
    with _pool(_pool_size() if len(jobs) >= 8 else 1) as pool:
        for i, made in tqdm(pool.map(_speaker_utterances, jobs), total=len(jobs), desc="mini speech corpus",
                            unit="speaker"):
            for k, wav in made:
                audio.save(files[names[i]][k], torch.from_numpy(wav), sample_rate)
    return files


def _speaker_utterances(job: tuple) -> tuple[int, list[tuple[int, np.ndarray]]]:
    """The utterances ``ks`` of speaker ``i`` (a worker's share of :func:`make_mini_speech_corpus`)."""
    i, n_speakers, seed, ks, seconds, sample_rate = job
    traits = speaker_traits(i, n_speakers, seed)
    made = []
    for k in ks:
        rng = np.random.default_rng([seed, i, k])
        made.append((k, synthesize_utterance(traits, seconds * rng.uniform(0.8, 1.2), sample_rate, rng)))
    return i, made


def _pool_size() -> int:
    """Processes for a corpus of many speakers: the cores this process may use, at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(cores, 8)


def _pool(workers: int):
    """Processes that synthesise in parallel (numpy only; the parent writes the files), or in this process."""
    if workers < 2:
        return contextlib.nullcontext(types.SimpleNamespace(map=map))
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))
