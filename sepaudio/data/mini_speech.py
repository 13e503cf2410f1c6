"""A mini multi-speaker corpus that needs no download: synthetic voiced speech from distinct "speakers".

Every speaker has its own pitch range, vocal-tract length (formant scaling), spectral tilt, vibrato and breathiness;
an utterance is a random string of vowel-like syllables and fricative bursts with a falling pitch contour. Speakers
differ enough for an enrollment recording to tell them apart, and utterances of one speaker differ in content.
"""
from __future__ import annotations

import os
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


def speaker_traits(index: int, n_speakers: int, seed: int = 0) -> dict:
    """Voice parameters of speaker ``index``: pitch and vocal-tract length spread evenly, in shuffled pairings."""
    rng = np.random.default_rng(seed)
    order_f0 = rng.permutation(n_speakers)
    order_vtl = rng.permutation(n_speakers)
    spread = lambda order: order[index] / max(n_speakers - 1, 1)  # noqa: E731
    return {
        "f0": float(85.0 * (260.0 / 85.0) ** spread(order_f0)),
        "vtl": float(0.8 + 0.45 * spread(order_vtl)),
        "tilt": float(rng.uniform(0.7, 1.6)),
        "vibrato_hz": float(rng.uniform(3.5, 7.0)),
        "breath": float(rng.uniform(0.01, 0.06)),
        "fricative_hz": float(rng.uniform(1800, 3400)),
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
        length = int(rng.uniform(0.12, 0.32) * sample_rate)
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
    f0 = f0 * (1.0 + 0.02 * np.sin(2 * np.pi * traits["vibrato_hz"] * t + rng.uniform(0, 2 * np.pi)))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    # Formants move smoothly between vowels (one-pole smoothing of the per-sample targets).
    targets = VOWELS[vowel_of] / traits["vtl"]
    alpha = np.exp(-1.0 / (0.02 * sample_rate))
    formants = lfilter([1 - alpha], [1, -alpha], targets.astype(float), axis=0,
                       zi=alpha * targets[:1].astype(float))[0]
    n_harm = int(sample_rate / 2 / f0.min())
    k = np.arange(1, n_harm + 1)
    freqs = f0[:, None] * k[None, :]  # (n, K)
    envelope = sum(
        1.0 / (1.0 + ((freqs - formants[:, j:j + 1]) / (BANDWIDTHS[j] / traits["vtl"])) ** 2) * (0.8 ** j)
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
    params = dict(n_speakers=n_speakers, utterances=utterances, seconds=seconds, sample_rate=sample_rate, seed=seed)
    names = [f"spk{i:02d}" for i in range(n_speakers)]
    files = {s: [root / s / f"{s}_{k:03d}.wav" for k in range(utterances)] for s in names}
    if not needs_generating(root, params, [p for f in files.values() for p in f]):
        return files
    for i, name in enumerate(tqdm(names, desc="mini speech corpus", unit="speaker")):
        traits = speaker_traits(i, n_speakers, seed)
        for k, path in enumerate(files[name]):
            rng = np.random.default_rng([seed, i, k])
            length = seconds * rng.uniform(0.8, 1.2)
            audio.save(path, torch.from_numpy(synthesize_utterance(traits, length, sample_rate, rng)), sample_rate)
    mark_generated(root, params)
    return files
