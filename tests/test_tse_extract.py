"""``sepaudio extract``: conditioning on the enrollment picks the speaker, long input in chunks matches whole-file
processing, resampling notice, batch list, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sepaudio import audio
from sepaudio.cli import main
from sepaudio.data import create_dataset, scan_speakers
from sepaudio.data.mini_speech import speaker_traits, synthesize_utterance
from sepaudio.extract import enrollment_embedding, load_extractor
from sepaudio.inference import process_tensor
from sepaudio.metrics import si_sdr
from sepaudio.models import TseNet
from sepaudio.speaker import train_ivector_extractor

TINY = dict(n_filters=64, filter_length=64, stride=32, speaker_dim=16,
            tcn=dict(channels=32, hidden=64, skip_channels=32, blocks=3, repeats=2))


def new_utterance(speaker: str, n_speakers: int, seconds: float, seed: int) -> torch.Tensor:
    """An utterance of a mini-corpus speaker that is not in the corpus (fresh content). Shape: ``(time,)``."""
    traits = speaker_traits(int(speaker[3:]), n_speakers, seed=0)
    return torch.from_numpy(synthesize_utterance(traits, seconds, 8000, np.random.default_rng([99, seed])))


# one worker under pytest-xdist: the extractor and the trained model are made once
pytestmark = pytest.mark.xdist_group("tse_extract")


@pytest.fixture(scope="module")
def ivector_file(mini_speech, tmp_path_factory):
    files = scan_speakers(mini_speech)
    wavs = [audio.load(p)[0][0] for paths in files.values() for p in paths]
    extractor = train_ivector_extractor(wavs, 8000, n_components=8, rank=8, tv_iterations=3, progress=False)
    return extractor.save(tmp_path_factory.mktemp("tse_extract") / "ivector.pt")


@pytest.fixture(scope="module")
def trained(mini_speech, ivector_file, tmp_path_factory):
    """A tiny TseNet trained for 200 steps on fixed mixtures of the 4 mini speakers (about 10 s on a CPU)."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest, and immune to a loaded machine
    fixed = create_dataset("with_ivectors", extractor=str(ivector_file), dataset="mix_on_the_fly",
                           root=str(mini_speech), enrollment=True, segment=0.5, enrollment_seconds=1.0, length=96,
                           snr_range=(0, 0), seed=1)
    items = torch.utils.data.default_collate([fixed[i] for i in range(len(fixed))])
    model = TseNet(ivector_dim=8, fusion="film", fuse_at="block", **TINY)  # as tse_mini's conf.yml
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(200):
        pick = torch.randint(0, len(fixed), (8,))
        loss = -si_sdr(model(items["mixture"][pick], items["ivector"][pick])[:, 0], items["target"][pick]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.set_num_threads(threads)
    return model.eval().save(tmp_path_factory.mktemp("tse_model") / "tsenet.pt")


@pytest.mark.slow
def test_the_enrollment_picks_the_speaker(trained, ivector_file, mini_speech):
    """The same mixture gives speaker A with A's enrollment and speaker B with B's (unseen utterances)."""
    model, ivectors = load_extractor(trained, ivector_file)
    names = sorted(scan_speakers(mini_speech))
    margins = []
    with torch.no_grad():
        for k, (a, b) in enumerate([(0, 1), (2, 3), (0, 3), (1, 2), (3, 0), (2, 1)]):
            src_a, src_b = (new_utterance(names[i], 4, 1.0, seed) for i, seed in ((a, 2 * k), (b, 2 * k + 1)))
            length = min(len(src_a), len(src_b))
            src_a, src_b = src_a[:length], src_b[:length]
            mixture = src_a + src_b
            for own, other, spk, seed in ((src_a, src_b, a, 100 + k), (src_b, src_a, b, 200 + k)):
                enroll = new_utterance(names[spk], 4, 1.5, seed)
                est = model(mixture, ivectors.extract([enroll]))[0]
                margins.append(float(si_sdr(est, own) - si_sdr(est, other)))
    assert np.mean(margins) > 6.0 and np.mean(np.array(margins) > 0) >= 0.75, margins


@pytest.mark.slow
def test_long_input_in_chunks_matches_whole_file(trained, ivector_file, mini_speech):
    model, ivectors = load_extractor(trained, ivector_file)
    names = sorted(scan_speakers(mini_speech))
    # 24 s of two talkers
    talk = lambda spk, seed: torch.cat([new_utterance(names[spk], 4, 2.0, seed * 50 + i) for i in range(12)])  # noqa
    a, b = talk(0, 1), talk(1, 2)
    mixture = a[:min(len(a), len(b))] + b[:min(len(a), len(b))]
    embedding = model.embed(ivectors.extract([new_utterance(names[0], 4, 2.0, 7)]))
    with torch.no_grad():
        whole = model.extract_embedded(mixture, embedding)[0]
        chunked = process_tensor(mixture, lambda c: model.extract_embedded(c, embedding), 8000, 4.0, 1.0)[0]
    assert chunked.shape == whole.shape
    assert si_sdr(chunked, whole) > 25.0


def test_command_line_extract_resamples_and_batches(ivector_file, mini_speech, tmp_path, capsys):
    model = TseNet(ivector_dim=8, **TINY).eval()
    model_path = model.save(tmp_path / "tse.pt")
    files = scan_speakers(mini_speech)
    first, second = (paths for _, paths in sorted(files.items())[:2])
    mix = audio.load(first[0])[0][0][:6000] + audio.load(second[0])[0][0][:6000]
    audio.save(tmp_path / "mix16k.wav", audio.resample(mix, 8000, 16000), 16000)
    out = tmp_path / "out.wav"
    assert main(["extract", "--model", str(model_path), "--ivector-model", str(ivector_file), "--mixture",
                 str(tmp_path / "mix16k.wav"), "--enroll", str(first[1]), "-o", str(out),
                 "--chunk-seconds", "0.4", "--overlap-seconds", "0.1"]) == 0
    assert "resampling" in capsys.readouterr().err
    wav, rate = audio.load(out)
    assert rate == 8000 and wav.shape == (1, 6000)
    # the same as running the model on the resampled mixture with the enrollment's i-vector, chunk by chunk
    loaded, ivectors = load_extractor(model_path, ivector_file)
    embedding = enrollment_embedding(loaded, first[1], ivectors)
    resampled = audio.load(tmp_path / "mix16k.wav", 8000)[0][0]
    expected = process_tensor(resampled, lambda c: loaded.extract_embedded(c, embedding), 8000, 0.4, 0.1)[0]
    torch.testing.assert_close(wav[0, 500:-500], expected[500:-500], atol=2e-3, rtol=0)
    listing = tmp_path / "jobs.txt"
    listing.write_text(f"{tmp_path / 'mix16k.wav'} {first[1]}\n{tmp_path / 'mix16k.wav'} {second[1]} other.wav\n")
    assert main(["extract", "--model", str(model_path), "--ivector-model", str(ivector_file), "--list",
                 str(listing), "-o", str(tmp_path / "batch")]) == 0
    assert (tmp_path / "batch" / f"mix16k_{first[1].stem}.wav").is_file()
    assert (tmp_path / "batch" / "other.wav").is_file()


def test_command_line_extract_errors(ivector_file, mini_speech, tmp_path, capsys):
    model_path = TseNet(ivector_dim=8, **TINY).save(tmp_path / "tse.pt")
    wav = next(iter(scan_speakers(mini_speech).values()))[0]
    assert main(["extract", "--model", str(model_path), "--mixture", str(wav), "--enroll", str(wav), "-o",
                 str(tmp_path / "o.wav")]) == 2
    assert "--ivector-model" in capsys.readouterr().err
    assert main(["extract", "--model", str(model_path), "--mixture", str(wav), "-o", str(tmp_path / "o.wav")]) == 2
    assert "--enroll" in capsys.readouterr().err
    wrong = TseNet(ivector_dim=5, **TINY).save(tmp_path / "wrong.pt")
    assert main(["extract", "--model", str(wrong), "--ivector-model", str(ivector_file), "--mixture", str(wav),
                 "--enroll", str(wav), "-o", str(tmp_path / "o.wav")]) == 2
    assert "8-dim" in capsys.readouterr().err
    listing = tmp_path / "jobs.txt"
    listing.write_text(f"{wav} missing.wav\n")
    assert main(["extract", "--model", str(model_path), "--ivector-model", str(ivector_file), "--list",
                 str(listing), "-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "line 1" in err and "missing.wav" in err
    assert not (tmp_path / "o.wav").exists()
