"""Arrays in, arrays out (issue 20): ``separate`` / ``extract`` / ``predict`` / ``segment`` take a path, a numpy array
or a tensor at any rate and give back the same type at the same rate; losses take tensors; the fused path runs
outside ``torch.no_grad``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import sepaudio
from sepaudio import AudioError, ConfigError, ModelFileError, audio, create_model
from sepaudio.classify import classify_file
from sepaudio.extract import enrollment_embedding
from sepaudio.losses import PITNegSISDR, create_loss
from sepaudio.models import ConvTasNet, MiTAS, TseNet
from sepaudio.models.classifier import Prediction
from sepaudio.segment import segment_file
from sepaudio.speaker import train_ivector_extractor
from sepaudio.timeline import Segment

TCN = dict(channels=16, hidden=32, skip_channels=16, blocks=2, repeats=1)
SMALL = dict(n_filters=32, filter_length=16, tcn=TCN)
TSE = dict(n_filters=32, filter_length=16, speaker_dim=8, speaker_channels=16, speaker_blocks=1, tcn=TCN)
CD = 44100


def stereo(seconds: float, rate: int = CD, seed: int = 0) -> np.ndarray:
    """Two channels of noise, float64, ``(2, time)`` (what soundfile gives, transposed)."""
    return 0.1 * np.random.default_rng(seed).standard_normal((2, int(seconds * rate)))


def by_hand(model, x: np.ndarray, rate: int, embedding: torch.Tensor | None = None) -> torch.Tensor:
    """The model (with a TseNet's speaker vector) on the mono mix-down resampled to its rate, the output resampled
    back (no chunking)."""
    wav = audio.resample(torch.from_numpy(x).float().mean(0), rate, model.sample_rate).unsqueeze(0)
    with torch.no_grad():
        out = (model.eval()(wav) if embedding is None else model.eval().extract_embedded(wav, embedding))[0]
    return audio.resample(out, model.sample_rate, rate)[..., :x.shape[-1]]


@pytest.fixture(scope="module")
def ivectors():
    """A tiny i-vector extractor trained on noise of varied colour (fast; good enough to give distinct vectors)."""
    gen = torch.Generator().manual_seed(0)
    wavs = [torch.nn.functional.conv1d(torch.randn(1, 1, 8000, generator=gen), torch.rand(1, 1, k, generator=gen),
                                       padding="same")[0, 0] for k in range(1, 24, 2)]
    return train_ivector_extractor(wavs, 8000, n_components=4, rank=6, tv_iterations=2, progress=False)


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(0)
    return create_model("swishnet_slim").eval()


@pytest.mark.parametrize("cls", [ConvTasNet, MiTAS])
def test_separate_numpy_float64_stereo_at_44k(cls, capsys):
    model = cls(**SMALL)  # training mode: separate runs in eval mode and gives the mode back
    x = stereo(1.0)
    out = model.separate(x, CD)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (2, CD)
    assert "44100 Hz; resampling to the model's 8000 Hz" in capsys.readouterr().err
    assert model.training
    np.testing.assert_allclose(out, by_hand(model, x, CD).numpy(), atol=1e-5)


def test_separate_tensor_path_batch_and_integer_pcm(tmp_path):
    model = ConvTasNet(**SMALL).eval()
    x = torch.from_numpy(stereo(0.5, 8000)).half()
    out = model.separate(x)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float16 and out.shape == (2, 4000)
    # a batch gives every item's own result
    batch = torch.from_numpy(np.stack([stereo(0.5, 16000, seed) for seed in range(3)]))  # (3, 2, 8000)
    many = model.separate(batch, 16000)
    assert many.shape == (3, 2, 8000) and many.dtype == torch.float64
    torch.testing.assert_close(many[1], model.separate(batch[1], 16000), atol=1e-6, rtol=0)
    # a path: its own rate, a float32 tensor back
    mono = torch.from_numpy(stereo(0.5, 16000)[0]).float()
    audio.save(tmp_path / "mix.wav", mono, 16000)
    from_path = model.separate(tmp_path / "mix.wav")
    assert isinstance(from_path, torch.Tensor) and from_path.dtype == torch.float32 and from_path.shape == (2, 8000)
    torch.testing.assert_close(from_path, model.separate(mono, 16000))
    with pytest.raises(AudioError, match="leave sample_rate out"):
        model.separate(tmp_path / "mix.wav", 8000)
    # integer PCM is scaled to [-1, 1) and comes back as float32
    pcm = (np.asarray(x[0].float()) * 32768).round().astype(np.int16)
    got = model.separate(pcm)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, model.separate(pcm.astype(np.float32) / 32768), atol=1e-6)


@pytest.mark.parametrize("bad, words", [
    (np.zeros((2, 0)), "zero samples"),
    (np.array([0.1, np.nan, 0.2] * 100), "NaN"),
    (np.zeros((1, 1, 2, 800)), "(batch, channels, time)"),
    (np.zeros(()), "(batch, channels, time)"),
    (np.zeros((8000, 2)), "audio.T"),
    (np.zeros(800, dtype=bool), "float samples"),
    (np.zeros(800, dtype=np.complex64), "float samples"),
    ([0.1] * 800, "numpy array or a torch tensor"),
])
def test_bad_inputs_name_the_fix(bad, words):
    with pytest.raises(AudioError, match=words.replace("(", r"\(").replace(")", r"\)")):
        ConvTasNet(**SMALL).separate(bad)


@pytest.mark.parametrize("rate", [0, -8000, 8000.5, "8k"])
def test_a_bad_sample_rate_is_refused(rate):
    with pytest.raises(AudioError, match="sample_rate"):
        ConvTasNet(**SMALL).separate(np.zeros(800), rate)


def test_the_defects_of_plain_calls_are_gone():
    """numpy arrays and float64 used to fail inside torch; the plain call still takes tensors only."""
    model = ConvTasNet(**SMALL).eval()
    x = np.random.default_rng(0).standard_normal(800)
    out = model.separate(x)  # was: AttributeError 'numpy.ndarray' object has no attribute 'dim'
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(out).float(), model(torch.from_numpy(x).float()), atol=1e-6,
                                   rtol=0)  # float64 was: expected scalar type Double but found Float
    with pytest.raises(ModelFileError, match="model.extract"):
        TseNet(conditioning="encoder", **TSE).separate(x)


def test_long_input_goes_through_chunks(monkeypatch):
    """separate hands process_tensor each item and a chunk length; the model never sees more than a chunk."""
    import sepaudio.inference as inference

    calls, seen = [], []
    real = inference.process_tensor

    def spy(wav, fn, sample_rate, chunk_seconds, overlap_seconds, align_sources=False):
        calls.append((wav.shape, chunk_seconds, align_sources))
        return real(wav, lambda c: seen.append(c.shape[-1]) or fn(c), sample_rate, chunk_seconds, overlap_seconds,
                    align_sources)

    monkeypatch.setattr(inference, "process_tensor", spy)
    model = ConvTasNet(**SMALL)
    out = model.separate(np.zeros((2, 20 * 8000), np.float32), chunk_seconds=4.0, overlap_seconds=0.5)
    assert out.shape == (2, 20 * 8000)
    assert calls == [(torch.Size([20 * 8000]), 4.0, True)]
    assert len(seen) >= 5 and max(seen) == 4 * 8000
    seen.clear()
    TseNet(conditioning="encoder", **TSE).extract(np.zeros(10 * 8000) + 0.1, np.full(8000, 0.1), chunk_seconds=2.0)
    assert len(seen) >= 5 and max(seen) == 2 * 8000


def test_extract_with_a_learned_encoder(capsys):
    model = TseNet(conditioning="encoder", **TSE).eval()
    mix, enroll = stereo(1.0), stereo(1.5, seed=1)
    out = model.extract(mix, enroll, CD, CD)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (CD,)
    enroll_8k = audio.resample(torch.from_numpy(enroll).float().mean(0), CD, 8000)
    with torch.no_grad():
        expected = by_hand(model, mix, CD, model.embed(enroll_8k))[0]
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-5)
    # a list of enrollments: their speaker vectors averaged
    pair = [enroll, stereo(1.2, seed=2)]
    averaged = (model.speaker_vector(pair[0], CD) + model.speaker_vector(pair[1], CD)) / 2
    torch.testing.assert_close(model.speaker_vector(pair, CD), averaged)
    assert model.extract(torch.from_numpy(mix).float(), pair, CD, CD).shape == (CD,)
    # one enrollment per item of a batched mixture
    batch = np.stack([mix, stereo(1.0, seed=3)])
    both = model.extract(batch, np.stack([enroll, stereo(1.5, seed=4)]), CD, CD)
    assert both.shape == (2, CD)
    np.testing.assert_allclose(both[0], out, atol=1e-6)
    with pytest.raises(AudioError, match="3 enrollments for a batch of 2"):
        model.extract(batch, np.stack([enroll] * 3), CD, CD)
    with pytest.raises(AudioError, match="too short"):
        model.extract(mix, np.full(10, 0.1), CD, 8000)
    with pytest.raises(AudioError, match="silent"):
        model.extract(mix, np.zeros(8000), CD, 8000)


def test_extract_with_an_ivector_model(ivectors, tmp_path):
    model = TseNet(ivector_dim=ivectors.dim, **TSE).eval()
    mix, enroll = stereo(1.0), stereo(1.5, seed=1)
    with pytest.raises(ModelFileError, match="ivector_extractor="):
        model.extract(mix, enroll, CD, CD)
    with pytest.raises(AudioError, match="i-vectors, not a tensor of shape"):
        model(torch.randn(8000), torch.randn(8000))  # was: mat1 and mat2 shapes cannot be multiplied
    out = model.extract(mix, enroll, CD, CD, ivector_extractor=ivectors)
    assert isinstance(out, np.ndarray) and out.shape == (CD,)
    enroll_8k = audio.resample(torch.from_numpy(enroll).float().mean(0), CD, 8000)
    with torch.no_grad():
        expected = by_hand(model, mix, CD, model.embed(ivectors.extract([enroll_8k])))[0]
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-5)
    # set on the model (as load_model does from a model folder): not a submodule, so not saved with the weights
    model.ivector_extractor = ivectors
    assert not any(k.startswith("ivector_extractor") for k in model.state_dict())
    np.testing.assert_array_equal(model.extract(mix, enroll, CD, CD), out)
    other = train_ivector_extractor([torch.randn(8000) for _ in range(4)], 8000, n_components=2, rank=3,
                                    tv_iterations=1, progress=False)
    with pytest.raises(ModelFileError, match="3-dim"):
        model.extract(mix, enroll, CD, CD, ivector_extractor=other)
    # the command line's enrollment_embedding takes arrays too, and gives what a file gives
    audio.save(tmp_path / "enroll.wav", enroll_8k, 8000)
    torch.testing.assert_close(enrollment_embedding(model, enroll_8k.numpy(), ivectors),
                               enrollment_embedding(model, tmp_path / "enroll.wav", ivectors))


def test_predict(classifier, tmp_path):
    x = stereo(1.0)
    prediction = classifier.predict(x, CD)
    assert isinstance(prediction, Prediction) and prediction.label in classifier.labels
    assert list(prediction.probabilities) == sorted(prediction.probabilities, key=prediction.probabilities.get,
                                                    reverse=True)
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction.label == next(iter(prediction.probabilities))
    top = classifier.predict(x, CD, top_k=2)
    assert list(top.probabilities.items()) == list(prediction.probabilities.items())[:2]
    # the same figures as the command line's classify on a file of the same audio
    audio.save(tmp_path / "clip.wav", torch.from_numpy(x).float().mean(0), CD)
    expected = classify_file(classifier, tmp_path / "clip.wav")
    assert [prediction.probabilities[label] for label in classifier.labels] == pytest.approx(expected.tolist(),
                                                                                             abs=1e-5)
    batch = classifier.predict(torch.from_numpy(np.stack([x, stereo(1.0, seed=5)])), CD)
    assert isinstance(batch, list) and len(batch) == 2 and batch[0].probabilities == pytest.approx(
        prediction.probabilities, abs=1e-5)
    with pytest.raises(ConfigError, match="top_k"):
        classifier.predict(x, CD, top_k=0)


def test_segment_matches_the_file_timeline(classifier, tmp_path):
    wav = torch.cat([0.1 * torch.randn(24000), torch.zeros(16000), 0.1 * torch.randn(8000)])
    audio.save(tmp_path / "long.wav", wav, 8000)
    segments = classifier.segment(wav.numpy(), 8000, smooth=0.5)
    assert segments and all(isinstance(s, Segment) for s in segments)
    assert segments == segment_file(classifier, tmp_path / "long.wav", smooth=0.5)[0]
    assert any(s.label == "silence" for s in segments) and segments[-1].stop == pytest.approx(6.0)
    assert classifier.segment(wav.expand(2, 1, -1), 8000, smooth=0.5) == [segments, segments]


def test_losses_take_tensors():
    est, src = torch.randn(2, 3, 800, requires_grad=True), torch.randn(2, 3, 800)
    value = PITNegSISDR()(est, src)  # was: IndexError (it wanted the batch dict)
    assert value.dim() == 0
    torch.testing.assert_close(value, PITNegSISDR()(est, {"sources": src})[0])
    value.backward()
    assert est.grad.abs().sum() > 0
    torch.testing.assert_close(PITNegSISDR()(est[0], src[0]), PITNegSISDR()(est[:1], src[:1]))
    torch.testing.assert_close(create_loss("si_sdr")(est[:, 0], src[:, 0]),
                               create_loss("si_sdr")(est[:, 0], {"target": src[:, 0]})[0])
    logits, labels = torch.randn(4, 3), torch.tensor([0, 2, 1, 0])
    torch.testing.assert_close(create_loss("cross_entropy")(logits, labels),
                               torch.nn.functional.cross_entropy(logits, labels))
    with pytest.raises(AudioError, match="same shape"):
        PITNegSISDR()(est, src[:, :2])
    with pytest.raises(AudioError, match="tensor of targets"):
        PITNegSISDR()(est, src.numpy())


def test_fast_path_outside_no_grad():
    model = ConvTasNet(**SMALL).eval()
    x = torch.randn(2, 1000)
    with torch.no_grad():
        plain = model(x)
    model.fast("fp32")
    assert model._fused()
    out = model(x)  # was: Inference tensors cannot be saved for backward
    assert not out.requires_grad
    torch.testing.assert_close(out, plain, atol=1e-4, rtol=1e-4)
    with pytest.raises(ConfigError, match=r"model.fast\(None\)"):
        model(x.clone().requires_grad_())
    tse = TseNet(conditioning="encoder", **TSE).eval()
    enroll = torch.randn(1, 4000)
    with torch.no_grad():
        expected = tse(x[:1], enroll)
    torch.testing.assert_close(tse.fast("fp32")(x[:1], enroll), expected, atol=1e-4, rtol=1e-4)


def test_package_exports_and_type_marker():
    from pathlib import Path

    assert sepaudio.Prediction is Prediction and sepaudio.Segment is Segment
    assert (Path(sepaudio.__file__).parent / "py.typed").is_file()
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '[tool.setuptools.package-data]\nsepaudio = ["py.typed"]' in pyproject
