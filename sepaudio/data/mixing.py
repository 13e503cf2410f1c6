"""On-the-fly mixing of single-speaker utterances: the one mixing implementation for separation and extraction."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import audio
from ..errors import DatasetError
from .augment import speed_perturb
from .registry import register_dataset
from .seeding import item_seed
from .speakers import check_speed_factors, list_audio, pseudo_speaker, read_speaker_list, scan_speakers

CACHED_FILES = 512
#: how many nearest voices a speaker's hard pairs (``similar_voices``) are drawn from
SIMILAR_VOICES = 4


@register_dataset("mix_on_the_fly")
class OnTheFlyMixtures(Dataset):
    """Random mixtures of ``n_src`` distinct speakers drawn from ``root/<speaker>/*.wav``.

    The first source is the reference level; every other source is scaled to a random target-to-interferer ratio
    in ``snr_range`` dB. Optional noise from ``noise_root`` is added at a random SNR (relative to the speech sum)
    in ``noise_snr_range``; the sources stay clean.

    Args:
        root: folder of speaker sub-folders.
        n_src: speakers per mixture.
        segment: seconds per item (utterances are cropped or zero-padded at a random offset).
        sample_rate: files of other rates are resampled.
        snr_range: (low, high) dB of the first source over each other source.
        noise_root: optional folder of noise recordings.
        noise_snr_range: (low, high) dB of speech over noise.
        length: items per epoch.
        seed: fixed mixtures (item ``i`` is always the same) when set, e.g. for validation; random otherwise, drawn
            anew for every rank, worker and epoch (see :func:`~sepaudio.data.seeding.item_seed`).
        speakers: restrict to these speaker names (e.g. held-out speakers for testing), or a file listing them one
            per line.
        speed_factors: pseudo-speakers: every speaker at every one of these speeds is a speaker of its own
            (see :mod:`sepaudio.data.speakers`); default ``(1.0,)``, the speakers as recorded.
        similar_voices: share of items whose other speakers are drawn from the first speaker's
            ``SIMILAR_VOICES`` nearest voices (closest long-term average spectrum: hard pairs), the rest at random.
        enrollment: also return an enrollment utterance of the first speaker (never the target utterance).
        enrollment_seconds: enrollment length (cropped / padded); default ``segment``.

    Items:
        ``mixture`` (T,), ``sources`` (n_src, T), ``speakers`` (n_src,) indices into ``self.speaker_names``,
        ``id`` (str): the index of a fixed mixture, or the seed a random one was drawn from; with ``enrollment``:
        ``target`` (T,) = sources[0], ``enrollment`` (Te,), ``speaker`` () long.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        n_src: int = 2,
        segment: float = 2.0,
        sample_rate: int = 8000,
        snr_range: Sequence[float] = (-5.0, 5.0),
        noise_root: str | os.PathLike | None = None,
        noise_snr_range: Sequence[float] = (10.0, 20.0),
        length: int = 1000,
        seed: int | None = None,
        speakers: Sequence[str] | None = None,
        enrollment: bool = False,
        enrollment_seconds: float | None = None,
        speed_factors: Sequence[float] = (1.0,),
        similar_voices: float = 0.0,
    ):
        utterances = scan_speakers(root, min_utterances=2 if enrollment else 1)
        if isinstance(speakers, (str, os.PathLike)):
            speakers = read_speaker_list(speakers)
        if speakers is not None:
            missing = sorted(set(speakers) - set(utterances))
            if missing:
                raise DatasetError(f"{root}: speaker folder(s) {missing} not found (or too few utterances).")
            utterances = {s: utterances[s] for s in speakers}
        if len(utterances) < n_src:
            raise DatasetError(f"{root}: {len(utterances)} speaker(s) found, a {n_src}-source mixture needs {n_src}.")
        self.speed_factors = check_speed_factors(speed_factors, str(root))
        # speaker index -> (name, utterances, speed factor), name-major: spk00, spk00@sp1.1, spk01, ...
        speakers = [(name, utterances[name], f) for name in sorted(utterances) for f in self.speed_factors]
        self.speaker_names = [pseudo_speaker(name, f) for name, _, f in speakers]
        self.utterances = [files for _, files, _ in speakers]
        self.factors = [f for _, _, f in speakers]
        self.noises = list_audio(noise_root) if noise_root is not None else []
        if noise_root is not None and not self.noises:
            raise DatasetError(f"{noise_root}: no .wav/.flac/.ogg noise files found.")
        self.n_src, self.sample_rate, self.length, self.seed = n_src, sample_rate, length, seed
        self.samples = int(segment * sample_rate)
        self.enroll_samples = int((enrollment_seconds or segment) * sample_rate)
        self.snr_range, self.noise_snr_range, self.enrollment = tuple(snr_range), tuple(noise_snr_range), enrollment
        self._cache: dict[tuple[Path, float], torch.Tensor] = {}
        if isinstance(similar_voices, bool) or not isinstance(similar_voices, (int, float)) \
                or not 0 <= similar_voices <= 1:
            raise DatasetError(f"{root}: similar_voices must be a share between 0 and 1, got {similar_voices}.")
        self.similar_voices = similar_voices
        self.neighbours = self._voice_neighbours() if similar_voices else []

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict:
        # Data workers get the dataset without its cache: pickled tensors travel as file descriptors, and a fork
        # server takes a few hundred at most.
        return {**self.__dict__, "_cache": {}}

    def _load(self, path: Path, factor: float = 1.0) -> torch.Tensor:
        """The file as a mono waveform at ``sample_rate`` played ``factor`` times as fast (up to ``CACHED_FILES``
        kept, the oldest dropped first)."""
        key = (path, factor)
        if key not in self._cache:
            if len(self._cache) >= CACHED_FILES:
                del self._cache[next(iter(self._cache))]
            self._cache[key] = speed_perturb(audio.load(path, sample_rate=self.sample_rate, mono=True)[0][0], factor)
        return self._cache[key]

    def _voice_neighbours(self) -> list[list[int]]:
        """For every speaker, the ``SIMILAR_VOICES`` others whose long-term average log spectrum (of up to three
        utterances, level removed) is closest."""
        window = torch.hann_window(256)
        spectra = []
        for files, factor in zip(self.utterances, self.factors):
            power = [torch.stft(self._load(path, factor), 256, 128, window=window, return_complex=True).abs().pow(2)
                     .mean(-1) for path in files[:3]]
            log = torch.log(torch.stack(power).mean(0) + 1e-10)
            spectra.append(log - log.mean())
        spectra = torch.stack(spectra)
        distance = torch.cdist(spectra, spectra).fill_diagonal_(float("inf"))
        k = min(SIMILAR_VOICES, len(spectra) - 1)
        return distance.argsort(1)[:, :k].tolist()

    def _crop(self, wav: torch.Tensor, samples: int, rng: np.random.Generator) -> torch.Tensor:
        if wav.shape[0] >= samples:
            start = rng.integers(wav.shape[0] - samples + 1)
            return wav[start:start + samples]
        out = torch.zeros(samples)
        start = rng.integers(samples - wav.shape[0] + 1)
        out[start:start + wav.shape[0]] = wav
        return out

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):  # (``for item in dataset`` stops here)
            raise IndexError(f"item {index} of a dataset of {len(self)}")
        index %= len(self)
        seed = item_seed(self.seed, index)
        rng = np.random.default_rng(seed)
        if self.similar_voices and rng.random() < self.similar_voices and len(self.neighbours[0]) >= self.n_src - 1:
            first = int(rng.integers(len(self.utterances)))
            spk = np.array([first, *rng.choice(self.neighbours[first], self.n_src - 1, replace=False)])
        else:
            spk = rng.choice(len(self.utterances), self.n_src, replace=False)
        picks = [int(rng.integers(len(self.utterances[s]))) for s in spk]
        sources = torch.stack([self._crop(self._load(self.utterances[s][u], self.factors[s]), self.samples, rng)
                               for s, u in zip(spk, picks)])
        power = sources.pow(2).mean(-1).clamp_min(1e-10)
        ratios_db = np.concatenate([[0.0], rng.uniform(*self.snr_range, self.n_src - 1)])
        sources = sources * torch.sqrt(power[0] / power / torch.from_numpy(10 ** (ratios_db / 10)).float())[:, None]
        mixture = sources.sum(0)
        if self.noises:
            noise = self._crop(self._load(self.noises[rng.integers(len(self.noises))]), self.samples, rng)
            snr = rng.uniform(*self.noise_snr_range)
            mixture = mixture + noise * torch.sqrt(mixture.pow(2).mean() / noise.pow(2).mean().clamp_min(1e-10)
                                                   / 10 ** (snr / 10))
        peak = mixture.abs().max().clamp_min(1e-8)
        scale = 0.9 / peak if peak > 0.9 else 1.0
        item = {"mixture": mixture * scale, "sources": sources * scale,
                "speakers": torch.as_tensor(spk, dtype=torch.long),
                "id": str(index if self.seed is not None else seed)}
        if self.enrollment:
            others = [u for u in range(len(self.utterances[spk[0]])) if u != picks[0]]
            enroll = self._load(self.utterances[spk[0]][others[rng.integers(len(others))]], self.factors[spk[0]])
            item.update(target=item["sources"][0], speaker=item["speakers"][0],
                        enrollment=self._crop(enroll, self.enroll_samples, rng))
        return item
