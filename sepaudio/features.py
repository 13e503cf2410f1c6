"""Classifier front-ends: MFCC, log-mel and log-power STFT bands (torchaudio transforms underneath).

Functional helpers (``frame_lengths``, ``blackman_harris``, ``log_power_db``, ``split_bands``) sit beside the
``nn.Module`` transforms that wrap them. Each module takes raw audio ``(batch, time)`` and is part of a saved
classifier, so a checkpoint takes audio, not features. ``out_channels`` says how many channels the output has
(2-D front-ends give ``(batch, channels, freq, frames)``, MFCC gives ``(batch, n_mfcc, frames)``). Every front-end
works frame by frame on centred, reflect-padded frames of ``n_fft`` samples every ``hop_length``, so
:func:`window_features` can give the features of many overlapping windows from one pass over the audio.
"""
from __future__ import annotations

import math

import torch
import torchaudio.transforms as T
from torch import nn

LOG_EPS = 1e-6


def frame_lengths(sample_rate: int, win_ms: float, hop_ms: float) -> tuple[int, int, int]:
    """Window and hop in samples, and the FFT size (next power of two above the window).

    Returns:
        ``(win_length, hop_length, n_fft)``.
    """
    win = int(round(sample_rate * win_ms / 1000))
    hop = int(round(sample_rate * hop_ms / 1000))
    return win, hop, 2 ** math.ceil(math.log2(win))


def blackman_harris(length: int, periodic: bool = True, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Four-term Blackman-Harris window (ESResNet's STFT window), like ``scipy.signal.get_window``.

    Shape: ``(length,)``.
    """
    n = torch.arange(length, dtype=torch.float64)
    period = length if periodic else length - 1
    phase = 2 * math.pi * n / period
    window = 0.35875 - 0.48829 * torch.cos(phase) + 0.14128 * torch.cos(2 * phase) - 0.01168 * torch.cos(3 * phase)
    return window.to(dtype)


def log_power_db(power: torch.Tensor, floor_db: float = -100.0) -> torch.Tensor:
    """Power to decibels with an absolute floor (no per-batch reference, so results do not depend on the batch).

    Shape: any -> same.
    """
    return 10 * torch.log10(power.clamp_min(10 ** (floor_db / 10)))


def split_bands(spec: torch.Tensor, bands: int) -> torch.Tensor:
    """Cut the frequency axis into ``bands`` equal bands stacked as channels; leftover top bins are dropped.

    Shape: ``(batch, freq, frames)`` -> ``(batch, bands, freq // bands, frames)``.
    """
    per_band = spec.shape[-2] // bands
    spec = spec[..., : bands * per_band, :]
    return spec.reshape(spec.shape[0], bands, per_band, spec.shape[-1])


class MFCC(nn.Module):
    """MFCCs as SwishNet uses them: 20 coefficients from 32 mel bands, 25 ms window, 10 ms hop.

    Shape: ``(batch, time)`` -> ``(batch, n_mfcc, frames)`` with ``frames = time // hop + 1``.
    """

    def __init__(self, sample_rate: int = 16000, n_mfcc: int = 20, n_mels: int = 32, win_ms: float = 25.0,
                 hop_ms: float = 10.0):
        super().__init__()
        win, hop, n_fft = frame_lengths(sample_rate, win_ms, hop_ms)
        self.hop_length, self.n_fft = hop, n_fft
        self.out_channels = n_mfcc
        self.transform = T.MFCC(sample_rate, n_mfcc=n_mfcc, log_mels=True,
                                melkwargs={"n_fft": n_fft, "win_length": win, "hop_length": hop, "n_mels": n_mels})

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.transform(wav)


class LogMel(nn.Module):
    """Log mel spectrogram as a one-channel image for 2-D backbones.

    Shape: ``(batch, time)`` -> ``(batch, 1, n_mels, frames)``.
    """

    def __init__(self, sample_rate: int = 16000, n_mels: int = 64, win_ms: float = 25.0, hop_ms: float = 10.0):
        super().__init__()
        win, hop, n_fft = frame_lengths(sample_rate, win_ms, hop_ms)
        self.hop_length, self.n_fft = hop, n_fft
        self.out_channels = 1
        self.transform = T.MelSpectrogram(sample_rate, n_fft=n_fft, win_length=win, hop_length=hop, n_mels=n_mels)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return torch.log(self.transform(wav) + LOG_EPS).unsqueeze(1)


class STFTBands(nn.Module):
    """ESResNet's front-end: log-power STFT (Blackman-Harris window) cut into frequency bands as channels.

    With the defaults (44.1 kHz, n_fft 2048) the first 1,023 of 1,025 bins give three bands of 341 bins.

    Shape: ``(batch, time)`` -> ``(batch, bands, (n_fft // 2 + 1) // bands, frames)``.
    """

    def __init__(self, n_fft: int = 2048, hop_length: int = 561, win_length: int = 1654, bands: int = 3,
                 floor_db: float = -100.0):
        super().__init__()
        self.hop_length, self.n_fft = hop_length, n_fft
        self.out_channels = bands
        self.floor_db = floor_db
        self.transform = T.Spectrogram(n_fft=n_fft, win_length=win_length, hop_length=hop_length, power=2.0,
                                       window_fn=blackman_harris)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return split_bands(log_power_db(self.transform(wav), self.floor_db), self.out_channels)


def window_features(frontend: nn.Module, span: torch.Tensor, window: int, hop: int) -> torch.Tensor:
    """``frontend(span.unfold(0, window, hop))`` -- the features of every ``window``-sample window starting each
    ``hop`` samples -- from one pass over ``span`` where ``hop`` is a multiple of the front-end's hop.

    A window's frames away from its ends are the span's frames; only the few frames whose centred ``n_fft``
    samples reach past a window's ends (there the front-end reflects the window's own samples) are computed per
    window, from its first and last samples. This saves ``window / hop`` times the work of framing every window.

    Shape: span ``(time,)`` -> ``(windows, *feature_dims, frames)`` with ``windows = (time - window) // hop + 1``.
    """
    step, half = hop // frontend.hop_length, frontend.n_fft // 2
    left = -(-half // frontend.hop_length)  # frames 0 .. left - 1 reach before the window's start
    right = (window - half) // frontend.hop_length + 1  # frames right .. frames - 1 reach past its end
    if hop % frontend.hop_length or not 0 < left < right - left:  # no frames to share: frame every window
        return frontend(span.unfold(0, window, hop))
    windows = (span.shape[-1] - window) // hop + 1
    index = step * torch.arange(windows).unsqueeze(1) + torch.arange(left, right)  # (windows, right - left)
    middle = frontend(span.unsqueeze(0))[0][..., index].movedim(-2, 0)
    head = frontend(span.unfold(0, (left - 1) * frontend.hop_length + half, hop)[:windows])[..., :left]
    tail_start = (right - left) * frontend.hop_length  # its first ``left`` frames are only context
    tail = frontend(span[tail_start:].unfold(0, window - tail_start, hop)[:windows])[..., left:]
    return torch.cat([head, middle, tail], -1)


FRONTENDS = {"mfcc": MFCC, "logmel": LogMel, "stft_bands": STFTBands}


def make_frontend(name: str, sample_rate: int, **kwargs) -> nn.Module:
    """Build a front-end by name (``mfcc`` | ``logmel`` | ``stft_bands``); ``sample_rate`` is passed where used."""
    if name not in FRONTENDS:
        raise ValueError(f"unknown front-end {name!r}; choose one of {sorted(FRONTENDS)}")
    if name != "stft_bands":
        kwargs["sample_rate"] = sample_rate
    return FRONTENDS[name](**kwargs)
