"""A mini speech / music / noise corpus that needs no download, for tests, demos and the ``smn_mini`` recipe.

- speech: synthetic voiced utterances of many "speakers" (:mod:`sepaudio.data.mini_speech`), gliding pitch,
  formants, fricatives and pauses, over a faint room noise;
- music: melodies and held chords on random harmonic instruments (plucked or sustained envelopes) at a steady
  tempo, often with kick and hi-hat;
- noise: one or two of coloured noise with slow swells, mains hum, machine hum with periodic modulation, rain-like
  crackle and wind gusts.

Every file gets a random level (+-10 dB). :func:`make_smn_timeline` strings segments of the three classes and
silence into one long recording with its reference timeline, for segmentation.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from scipy.signal import butter, sosfilt
from tqdm import tqdm

from .. import audio
from ..errors import DatasetError
from .generated import mark_generated, needs_generating
from .classification import ClipDataset, Region, scan_class_folders
from .mini_speech import speaker_traits, synthesize_utterance
from .registry import register_dataset

LABELS = ("speech", "music", "noise")
SPLITS = {"train": 30, "valid": 8, "test": 12}
N_SPEAKERS = 40


def _bandpass(x: np.ndarray, low: float, high: float, rate: int) -> np.ndarray:
    sos = butter(2, [low, min(high, rate / 2 * 0.95)], btype="band", fs=rate, output="sos")
    return sosfilt(sos, x)


def _coloured(n: int, beta: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power spectrum ~ 1 / f^beta (0 white, 1 pink, 2 brown), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.shape[0]) + 1.0
    x = np.fft.irfft(spec / f ** (beta / 2), n)
    return x / (x.std() + 1e-8)


def _smooth_envelope(n: int, rate: int, hz: float, depth: float, rng: np.random.Generator) -> np.ndarray:
    """Slow random level changes around 1 (band-limited to about ``hz``)."""
    points = max(2, int(n / rate * hz) + 2)
    env = np.interp(np.arange(n), np.linspace(0, n, points), rng.uniform(-1, 1, points))
    return 1 + depth * env


def synth_speech(seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Utterances of random speakers separated by short pauses, over faint room noise."""
    n = int(seconds * rate)
    out = np.zeros(n)
    pos = int(rng.uniform(0, 0.2) * rate)
    while pos < n - rate // 4:
        traits = speaker_traits(int(rng.integers(N_SPEAKERS)), N_SPEAKERS, seed=7)
        length = min(rng.uniform(1.0, 3.0), (n - pos) / rate)
        utt = synthesize_utterance(traits, length, rate, rng)
        out[pos:pos + utt.shape[0]] += utt
        pos += utt.shape[0] + int(rng.uniform(0.1, 0.5) * rate)
    return out + 0.05 * 10 ** (-rng.uniform(15, 35) / 20) * _coloured(n, 1.0, rng)


def _note(freq: float, samples: int, rate: int, timbre: np.ndarray, plucked: bool,
          rng: np.random.Generator) -> np.ndarray:
    t = np.arange(samples) / rate
    k = np.arange(1, timbre.shape[0] + 1)
    k = k[freq * k < rate / 2 * 0.9]
    vibrato = 1 + 0.003 * np.sin(2 * np.pi * 5.5 * t) * (not plucked)
    tone = (timbre[k - 1, None] * np.sin(2 * np.pi * freq * k[:, None] * np.cumsum(vibrato) / rate)).sum(0)
    attack = np.minimum(1, t / rng.uniform(0.005, 0.01 if plucked else 0.06))
    decay = np.exp(-t / rng.uniform(0.15, 0.5)) if plucked else np.minimum(1, (t[-1] - t) / 0.05 + 0.02)
    return tone * attack * decay


def synth_music(seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A melody over held chords on random harmonic instruments, often with drums."""
    n = int(seconds * rate)
    out = np.zeros(n + 4 * rate)  # room for the last bar
    beat = 60 / rng.uniform(70, 160)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])
    root = rng.integers(45, 60)
    voices = []
    for _ in range(2):
        timbre = rng.uniform(0.2, 1.0, 16) * np.arange(1, 17) ** -rng.uniform(0.6, 2.0)
        voices.append((timbre, bool(rng.random() < 0.5)))
    # melody
    pos = 0.0
    while pos < seconds:
        dur = beat * rng.choice([0.5, 1, 1, 2])
        midi = root + 12 + scale[rng.integers(len(scale))]
        note = _note(440 * 2 ** ((midi - 69) / 12), int(dur * rate), rate, *voices[0], rng)
        out[int(pos * rate):int(pos * rate) + note.shape[0]] += note
        pos += dur
    # chords, one per bar of four beats
    pos = 0.0
    while pos < seconds:
        degree = rng.choice([0, 3, 4, 5])
        for step in (0, 2, 4):
            midi = root + scale[(degree + step) % 7]
            note = _note(440 * 2 ** ((midi - 69) / 12), int(4 * beat * rate), rate, *voices[1], rng)
            out[int(pos * rate):int(pos * rate) + note.shape[0]] += 0.4 * note
        pos += 4 * beat
    if rng.random() < 0.6:  # kick on the beat, hi-hat between
        t = np.arange(int(0.25 * rate)) / rate
        kick = np.sin(2 * np.pi * (50 * t + 60 * (1 - np.exp(-t / 0.03)) * 0.03)) * np.exp(-t / 0.08)
        hat = _bandpass(rng.standard_normal(int(0.05 * rate)), 6000, 7900, rate) * np.exp(-np.arange(
            int(0.05 * rate)) / (0.01 * rate))
        for b in np.arange(0, seconds, beat):
            i = int(b * rate)
            out[i:i + kick.shape[0]] += 1.5 * kick
            j = int((b + beat / 2) * rate)
            out[j:j + hat.shape[0]] += 2.0 * hat
    return out[:n]


def synth_noise(seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """One or two everyday noises: coloured, mains hum, machine, crackle, wind."""
    n = int(seconds * rate)
    t = np.arange(n) / rate

    def coloured():
        return _coloured(n, rng.uniform(0, 2), rng) * _smooth_envelope(n, rate, 0.5, 0.5, rng)

    def hum():
        f0 = rng.choice([50.0, 60.0])
        tone = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 8))
        return tone + 0.3 * _coloured(n, 1, rng)

    def machine():
        carrier = _bandpass(rng.standard_normal(n), rng.uniform(100, 400), rng.uniform(800, 4000), rate)
        carrier /= carrier.std() + 1e-8
        return carrier * (1 + 0.8 * np.sin(2 * np.pi * rng.uniform(5, 30) * t))

    def crackle():
        clicks = (rng.random(n) < rng.uniform(50, 800) / rate) * rng.standard_normal(n) * 10
        return _bandpass(clicks, 500, 7000, rate) + 0.2 * _coloured(n, 0, rng)

    def wind():
        x = _bandpass(rng.standard_normal(n), 40, rng.uniform(300, 1200), rate)
        return x / (x.std() + 1e-8) * _smooth_envelope(n, rate, 1.0, 0.9, rng)

    kinds = [coloured, hum, machine, crackle, wind]
    picks = rng.choice(len(kinds), size=int(rng.integers(1, 3)), replace=False)
    return sum(kinds[i]() * rng.uniform(0.5, 1.0) for i in picks)


SYNTHS = {"speech": synth_speech, "music": synth_music, "noise": synth_noise}


def synthesize(label: str, seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """One recording of class ``label`` at a random level (RMS 0.03-0.3). Returns ``(time,)`` float32."""
    x = SYNTHS[label](seconds, rate, rng)
    rms = 0.1 * 10 ** (rng.uniform(-10, 10) / 20)
    return (x * rms / (np.sqrt(np.mean(x**2)) + 1e-8)).clip(-1, 1).astype(np.float32)


def make_smn_mini_corpus(root: str | os.PathLike, seconds: float = 4.0, sample_rate: int = 16000,
                         files: dict[str, int] | None = None, seed: int = 0) -> Path:
    """Write ``root/<split>/<class>/<class>_<k>.wav`` (splits train / valid / test); skip if already there.

    Args:
        root: output folder.
        seconds: length of every file.
        sample_rate: of the files.
        files: files per class in each split (default 30 / 8 / 12).
        seed: every file is a function of (seed, split, class, index).

    Returns:
        ``root``.
    """
    root = Path(root)
    files = dict(files or SPLITS)
    params = dict(seconds=seconds, sample_rate=sample_rate, files=files, seed=seed)
    jobs = [(s, c, k) for s, count in files.items() for c in LABELS for k in range(count)]
    paths = [root / s / c / f"{c}_{k:03d}.wav" for s, c, k in jobs]
    if not needs_generating(root, params, paths):
        return root
    for split, label, k in tqdm(jobs, desc="mini speech/music/noise corpus", unit="file"):
        rng = np.random.default_rng([seed, list(files).index(split), LABELS.index(label), k])
        wav = synthesize(label, seconds, sample_rate, rng)
        audio.save(root / split / label / f"{label}_{k:03d}.wav", torch.from_numpy(wav), sample_rate)
    mark_generated(root, params)
    return root


def make_smn_timeline(path: str | os.PathLike, seconds: float, sample_rate: int = 16000, seed: int = 0,
                      segment_range: tuple[float, float] = (2.0, 8.0)) -> list[Region]:
    """One long recording of speech / music / noise / silence segments, and its reference timeline.

    Silence is a very faint noise floor (-70 dB). Consecutive segments have different labels.

    Args:
        path: the WAV to write.
        seconds: total length.
        sample_rate: of the file.
        seed: random seed.
        segment_range: (shortest, longest) segment in seconds.

    Returns:
        The reference regions (label, start, stop in seconds), in order.
    """
    rng = np.random.default_rng(seed)
    pieces, regions, pos, last = [], [], 0.0, None
    while pos < seconds - 1e-6:
        label = rng.choice([c for c in (*LABELS, "silence") if c != last])
        length = min(rng.uniform(*segment_range), seconds - pos)
        samples = int(round((pos + length) * sample_rate)) - int(round(pos * sample_rate))
        if label == "silence":
            wav = (3e-4 * rng.standard_normal(samples)).astype(np.float32)
        else:
            wav = synthesize(str(label), samples / sample_rate, sample_rate, rng)[:samples]
        pieces.append(wav)
        regions.append(Region(str(path), str(label), round(pos, 3), round(pos + length, 3)))
        pos, last = pos + length, label
    audio.save(path, torch.from_numpy(np.concatenate(pieces)), sample_rate)
    return regions


@register_dataset("smn_mini")
def smn_mini(root: str, split: str = "train", **kwargs) -> ClipDataset:
    """Clips of the mini corpus at ``root/<split>`` (made by ``sepaudio prepare smn_mini ROOT``); labels speech,
    music, noise.

    Keyword arguments go to :class:`ClipDataset` (``clip_seconds``, ``overlap``, ``gain_db``, ``balance``, ...);
    ``class_share: {noise: 0.02}`` makes an imbalanced split of it (noise at 2 % of the clips).

    Raises:
        DatasetError: ``root`` has no such split (nothing is generated here: the folder may hold anyone's files).
    """
    if not (Path(root) / split).is_dir():
        have = sorted(p.name for p in Path(root).iterdir() if p.is_dir()) if Path(root).is_dir() else []
        raise DatasetError(f"{root}: no '{split}' split (found: {', '.join(have) or 'nothing'}); generate the corpus "
                           f"with 'sepaudio prepare smn_mini {root}' or choose a split it has.")
    return ClipDataset(scan_class_folders(Path(root) / split), LABELS, **kwargs)
