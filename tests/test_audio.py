import numpy as np
import pytest
import soundfile as sf
import torch

from sepaudio import audio
from sepaudio.errors import AudioError


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg"])
def test_round_trip_formats(tmp_path, suffix):
    wav = 0.5 * torch.sin(torch.linspace(0, 200, 8000)).unsqueeze(0)
    path = audio.save(tmp_path / f"x{suffix}", wav, 8000)
    back, rate = audio.load(path)
    assert rate == 8000 and back.shape == (1, 8000) and back.dtype == torch.float32
    tolerance = {".wav": 1e-7, ".flac": 1e-4, ".ogg": 0.1}[suffix]
    assert (back - wav).abs().max() < tolerance


def test_channels_kept_unless_mono_asked(tmp_path):
    stereo = torch.stack([torch.ones(100) * 0.2, torch.ones(100) * 0.6])
    path = audio.save(tmp_path / "s.wav", stereo, 16000)
    assert audio.load(path)[0].shape == (2, 100)
    mono, _ = audio.load(path, mono=True)
    assert mono.shape == (1, 100) and torch.allclose(mono, torch.full((1, 100), 0.4))
    with pytest.raises(AudioError, match=r"s\.wav.*2 channel.*mono=True"):
        audio.load(path, channels=1)


def test_resample_on_load(tmp_path):
    path = audio.save(tmp_path / "r.wav", torch.randn(1, 16000) * 0.1, 16000)
    wav, rate = audio.load(path, sample_rate=8000)
    assert rate == 8000 and wav.shape == (1, 8000)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(AudioError, match="nope.wav: no such file"):
        audio.load(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="is a folder"):
        audio.load(tmp_path)


def test_not_audio(tmp_path):
    path = tmp_path / "text.wav"
    path.write_text("this is not audio")
    with pytest.raises(AudioError, match="text.wav: not a readable audio file"):
        audio.load(path)


def test_zero_samples(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 1), dtype=np.float32), 8000)
    with pytest.raises(AudioError, match="empty.wav: has zero samples"):
        audio.load(path)


def test_nan_and_inf_samples(tmp_path):
    data = np.zeros(100, dtype=np.float32)
    data[10], data[20] = np.nan, np.inf
    path = tmp_path / "bad.wav"
    sf.write(path, data, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match="bad.wav: 2 sample"):
        audio.load(path)


def test_save_refuses_non_finite_and_keeps_old_file(tmp_path):
    path = audio.save(tmp_path / "keep.wav", torch.full((1, 50), 0.25), 8000)
    with pytest.raises(AudioError, match="NaN or Inf"):
        audio.save(path, torch.tensor([[0.0, float("nan")]]), 8000)
    with pytest.raises(AudioError, match="could not write"):
        audio.save(tmp_path / "keep.xyz", torch.zeros(1, 10), 8000)
    assert torch.allclose(audio.load(path)[0], torch.full((1, 50), 0.25))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.wav"]  # no temporary files left behind


def test_save_does_not_clip_wav(tmp_path):
    path = audio.save(tmp_path / "loud.wav", torch.tensor([[2.0, -3.0, 0.5]]), 8000)
    assert torch.allclose(audio.load(path)[0], torch.tensor([[2.0, -3.0, 0.5]]))
