"""Kaldi-style speaker features: MFCC (torchaudio.compliance.kaldi) + deltas, energy VAD, cepstral mean norm."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional as AF

from ..errors import AudioError

#: Kaldi reads 16-bit integers; its energy thresholds assume that scale.
INT16_SCALE = 32768.0


@dataclass
class FeatureConfig:
    """What :func:`speaker_features` computes (Kaldi's sre recipes use 20-23 ceps, 10 ms hop, VAD 5.5 / 0.5).

    Attributes:
        num_ceps: cepstra per frame, c0 replaced by the log energy (Kaldi ``--use-energy``).
        num_mel_bins: mel filters.
        frame_length, frame_shift: in milliseconds.
        deltas: delta orders appended (2: deltas and delta-deltas).
        vad_threshold, vad_mean_scale: a frame is voiced when its log energy exceeds
            ``vad_threshold + vad_mean_scale * mean log energy`` (Kaldi ``compute-vad``) ...
        vad_context, vad_proportion: ... in at least ``vad_proportion`` of the ``2 * vad_context + 1`` frames around it.
        cmn: subtract the mean of the voiced frames from every coefficient.
    """

    num_ceps: int = 20
    num_mel_bins: int = 23
    frame_length: float = 25.0
    frame_shift: float = 10.0
    deltas: int = 2
    vad_threshold: float = 5.5
    vad_mean_scale: float = 0.5
    vad_context: int = 2
    vad_proportion: float = 0.12
    cmn: bool = True

    @property
    def dim(self) -> int:
        return self.num_ceps * (self.deltas + 1)

    def to_dict(self) -> dict:
        return asdict(self)


def mfcc(wav: torch.Tensor, sample_rate: int, config: FeatureConfig) -> torch.Tensor:
    """Kaldi-compatible MFCC with the log energy as c0.

    Shape: ``(time)`` -> ``(frames, num_ceps)``.
    """
    return kaldi.mfcc(
        wav.reshape(1, -1) * INT16_SCALE, sample_frequency=float(sample_rate), num_ceps=config.num_ceps,
        num_mel_bins=config.num_mel_bins, frame_length=config.frame_length, frame_shift=config.frame_shift,
        use_energy=True, dither=0.0, high_freq=0.0, low_freq=20.0,
    )


def add_deltas(feats: torch.Tensor, order: int) -> torch.Tensor:
    """Append ``order`` orders of deltas (window 5, as Kaldi ``add-deltas``).

    Shape: ``(frames, dim)`` -> ``(frames, dim * (order + 1))``.
    """
    out = [feats]
    for _ in range(order):
        out.append(AF.compute_deltas(out[-1].T.unsqueeze(0), win_length=5).squeeze(0).T)
    return torch.cat(out, dim=1)


def energy_vad(log_energy: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """Kaldi ``compute-vad``: which frames are voiced.

    Shape: ``(frames,)`` -> bool ``(frames,)``.
    """
    threshold = config.vad_threshold + config.vad_mean_scale * log_energy.mean()
    above = (log_energy > threshold).float().view(1, 1, -1)
    width = 2 * config.vad_context + 1
    # Kaldi counts only the frames inside the utterance: average over the frames that exist.
    count = F.avg_pool1d(F.pad(above, (config.vad_context,) * 2), width, stride=1, count_include_pad=True)
    present = F.avg_pool1d(F.pad(torch.ones_like(above), (config.vad_context,) * 2), width, stride=1)
    return (count / present).view(-1) >= config.vad_proportion


def speaker_features(wav: torch.Tensor, sample_rate: int, config: FeatureConfig | None = None) -> torch.Tensor:
    """MFCC + deltas of the voiced frames, mean-normalised: the input of the UBM and the i-vector extractor.

    Utterances with no voiced frame keep all their frames (a silent enrollment still gives a vector).

    Args:
        wav: one utterance, mono.
        sample_rate: its rate.
        config: feature settings; defaults to :class:`FeatureConfig`.

    Returns:
        ``(voiced_frames, config.dim)`` float32.

    Raises:
        AudioError: ``wav`` shorter than one analysis frame.

    Shape:
        wav ``(time)`` or ``(1, time)``.
    """
    config = config or FeatureConfig()
    frame = int(sample_rate * config.frame_length / 1000)
    if wav.shape[-1] < frame:
        raise AudioError(f"a recording of {wav.shape[-1]} samples is shorter than one {config.frame_length:g} ms "
                         f"analysis frame ({frame} samples at {sample_rate} Hz); give a longer one.")
    ceps = mfcc(wav, sample_rate, config)
    feats = add_deltas(ceps, config.deltas)
    voiced = energy_vad(ceps[:, 0], config)
    if voiced.any():
        feats = feats[voiced]
    if config.cmn:
        feats = feats - feats.mean(0, keepdim=True)
    return feats
