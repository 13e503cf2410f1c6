"""i-vector extractor: features, UBM EM, total variability, LDA, EER, save / load, command line."""
from __future__ import annotations

import json
import math

import pytest
import torch

from sepaudio import audio
from sepaudio.cli import main
from sepaudio.data import make_mini_speech_corpus
from sepaudio.errors import DatasetError, ModelFileError
from sepaudio.speaker import (FeatureConfig, cosine_trials, equal_error_rate, load_ivector_extractor,
                              speaker_features, train_ivector_extractor, train_ubm)
from sepaudio.speaker.features import energy_vad, mfcc


# one worker under pytest-xdist: the corpus and the extractor are made once
pytestmark = pytest.mark.xdist_group("ivector")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """10 synthetic speakers x 10 utterances of about 1.5 s: 7 train the extractor, 3 are held out."""
    root = tmp_path_factory.mktemp("ivector_corpus")
    files = make_mini_speech_corpus(root, n_speakers=10, utterances=10, seconds=1.5, seed=3)
    names = sorted(files)
    load = lambda speakers: ([audio.load(p)[0][0] for s in speakers for p in files[s]],  # noqa: E731
                             [s for s in speakers for _ in files[s]])
    return files, load(names[:7]), load(names[7:])


@pytest.fixture(scope="module")
def extractor(corpus):
    _, (wavs, speakers), _ = corpus
    return train_ivector_extractor(wavs, 8000, speakers, n_components=32, rank=40, lda_dim=5, tv_iterations=5,
                                   progress=False)


def test_mfcc_matches_kaldi_layout_and_vad_drops_silence():
    t = torch.arange(16000) / 8000
    tone = 0.3 * torch.sin(2 * math.pi * 440 * t)
    wav = torch.cat([torch.zeros(8000), tone])  # 1 s of silence, 2 s of tone
    config = FeatureConfig()
    ceps = mfcc(wav, 8000, config)
    assert ceps.shape == (298, 20)  # Kaldi snip-edges framing: 1 + (24000 - 200) // 80
    voiced = energy_vad(ceps[:, 0], config)
    assert not voiced[:90].any() and voiced[110:].all()
    feats = speaker_features(wav, 8000, config)
    assert feats.shape[1] == 60 and 190 <= feats.shape[0] <= 210
    torch.testing.assert_close(feats.mean(0), torch.zeros(60), atol=1e-4, rtol=0)


def test_ubm_em_finds_the_clusters_and_raises_the_likelihood():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-4.0, 1.0, 0.0], [3.0, -1.0, 2.0]])
    frames = torch.cat([c + 0.5 * torch.randn(3000, 3, generator=gen) for c in centres])
    gmm = train_ubm(frames, 2, iterations=5, final_iterations=5, progress=False)
    found = gmm.means[torch.cdist(centres, gmm.means).argmin(1)]
    torch.testing.assert_close(found, centres, atol=0.05, rtol=0)
    torch.testing.assert_close(gmm.weights, torch.full((2,), 0.5), atol=0.01, rtol=0)
    torch.testing.assert_close(gmm.variances, torch.full((2, 3), 0.25), atol=0.03, rtol=0)
    # EM never lowers the likelihood
    frames = torch.randn(4000, 3, generator=gen) ** 3
    gmm = train_ubm(frames, 8, iterations=1, final_iterations=0, progress=False)
    floor = 1e-3 * frames.var(0, unbiased=False)
    history = [gmm.log_likelihood(frames)]
    for _ in range(5):
        gmm.em_step(frames, floor)
        history.append(gmm.log_likelihood(frames))
    assert all(b >= a - 1e-4 for a, b in zip(history, history[1:])) and history[-1] > history[0]


def test_equal_error_rate():
    same = torch.tensor([True, True, False, False])
    assert equal_error_rate(torch.tensor([0.9, 0.8, 0.1, 0.2]), same) == 0.0
    assert equal_error_rate(torch.tensor([0.1, 0.2, 0.9, 0.8]), same) == 1.0
    # one target below one non-target: half of each kind is misclassified at the crossing threshold
    assert equal_error_rate(torch.tensor([0.9, 0.3, 0.5, 0.1]), same) == pytest.approx(0.5)
    vectors = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    scores, same = cosine_trials(vectors, ["a", "a", "b", "b"])
    assert same.tolist() == [True, False, False, False, False, True]
    assert equal_error_rate(scores, same) == 0.0


@pytest.mark.slow
def test_heldout_speakers_are_told_apart(extractor, corpus):
    _, _, (wavs, speakers) = corpus
    vectors = extractor.extract(wavs)
    assert vectors.shape == (len(wavs), 5)
    torch.testing.assert_close(vectors.norm(dim=1), torch.full((len(wavs),), 5**0.5))
    assert equal_error_rate(*cosine_trials(vectors, speakers)) < 0.10


def test_save_load_gives_the_same_vectors(extractor, corpus, tmp_path):
    _, _, (wavs, _) = corpus
    path = extractor.save(tmp_path / "ivector.pt")
    loaded = load_ivector_extractor(path)
    torch.testing.assert_close(loaded.extract(wavs[:4]), extractor.extract(wavs[:4]))
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="junk.pt"):
        load_ivector_extractor(tmp_path / "junk.pt")
    with pytest.raises(ModelFileError, match="ivector train"):
        load_ivector_extractor(tmp_path / "missing.pt")


def test_lda_needs_more_speakers_than_dimensions(corpus):
    _, (wavs, speakers), _ = corpus
    with pytest.raises(ValueError, match="lower lda_dim"):
        train_ivector_extractor(wavs[:20], 8000, speakers[:20], n_components=4, rank=8, lda_dim=4, progress=False)


def test_command_line_train_and_extract(corpus, tmp_path, capsys):
    files, _, _ = corpus
    names = sorted(files)
    train, heldout = tmp_path / "train.txt", tmp_path / "heldout.txt"
    train.write_text("".join(f"{p} {s}\n" for s in names[:7] for p in files[s][:6]))
    heldout.write_text("# held-out speakers\n" + "".join(f"{p} {s}\n" for s in names[7:] for p in files[s]))
    model = tmp_path / "ivector.pt"
    assert main(["ivector", "train", "--wavs", str(train), "--out", str(model), "--components", "8", "--rank",
                 "10", "--tv-iterations", "2", "--ubm-iterations", "2"]) == 0
    assert main(["ivector", "extract", "--model", str(model), "--wavs", str(heldout), "--out",
                 str(tmp_path / "iv")]) == 0
    stored = torch.load(tmp_path / "iv" / "ivectors.pt")
    assert stored["ivectors"].shape == (30, 10) and stored["speakers"][0] == names[7]
    summary = json.loads((tmp_path / "iv" / "summary.json").read_text())
    assert summary["speakers"] == 3 and 0.0 <= summary["eer"] <= 1.0
    assert "EER" in capsys.readouterr().out
    heldout.write_text(f"{files[names[7]][0]} {names[7]}\nmissing.wav {names[7]}\n")
    assert main(["ivector", "extract", "--model", str(model), "--wavs", str(heldout), "--out",
                 str(tmp_path / "iv2")]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "missing.wav" in err
    with pytest.raises(DatasetError, match="LDA needs a speaker"):
        from sepaudio.speaker.lists import train_from_list

        (tmp_path / "nospk.txt").write_text(f"{files[names[0]][0]}\n")
        train_from_list(tmp_path / "nospk.txt", tmp_path / "x.pt", lda_dim=2)
