"""Clip classification, streaming segmentation, timelines, classification scores, losses, CLI, end-to-end training."""
import json

import numpy as np
import pytest
import torch

from sepaudio import ModelFileError, audio, create_model
from sepaudio.classify import classify_file, load_classifier
from sepaudio.inference import ChunkReader
from sepaudio.metrics import classification_scores, confusion_matrix, frame_accuracy
from sepaudio.plots import plot_confusion
from sepaudio.segment import FrameResults, frame_posteriors, segment_file, smooth_labels
from sepaudio.timeline import Segment, format_timeline, frames_to_segments, read_timeline, write_timeline
from sepaudio.cli import main as cli
from sepaudio.losses import create_loss

RATE = 16000


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "swishnet.pt"
    torch.manual_seed(0)
    return create_model("swishnet_slim").save(path)


@pytest.fixture(scope="module")
def long_file(tmp_path_factory):
    """7.3 s at 8 kHz (the model resamples): noise, 2 s of digital silence, noise."""
    path = tmp_path_factory.mktemp("audio") / "long.wav"
    g = torch.Generator().manual_seed(1)
    wav = torch.cat([0.1 * torch.randn(24000, generator=g), torch.zeros(16000), 0.1 * torch.randn(18400, generator=g)])
    return audio.save(path, wav, 8000)


@pytest.mark.parametrize("rate", [RATE, 8000, 44100])
def test_chunk_reader_matches_the_whole_file_resampled(long_file, rate):
    whole = audio.load(long_file, sample_rate=rate, mono=True)[0][0]
    reader = ChunkReader(long_file, rate)
    assert reader.length == whole.shape[0]
    for start, stop in [(-100, 5000), (3333, 7777), (whole.shape[0] - 500, whole.shape[0] + 50)]:
        span = reader.read(start, stop)
        assert span.shape == (stop - start,)
        inside = slice(max(start, 0), min(stop, whole.shape[0]))
        # no block-edge error: a span is the same span of the whole file resampled at once
        torch.testing.assert_close(span[inside.start - start:inside.stop - start], whole[inside], atol=1e-6, rtol=0)
        assert not span[:max(0, -start)].any() and not span[inside.stop - start:].any()  # zeros outside the file
    assert reader.read(whole.shape[0] + 10, whole.shape[0] + 20).abs().max() == 0


def test_streaming_gives_the_same_frames_for_any_block_size(model_file, long_file):
    model = load_classifier(model_file)
    big = frame_posteriors(model, long_file, window=1.0, hop=0.1, block_seconds=60)
    small = frame_posteriors(model, long_file, window=1.0, hop=0.1, block_seconds=0.7, batch_size=8)
    assert big.probs.shape == (73, 3) and small.probs.shape == (73, 3) and big.duration == pytest.approx(7.3)
    np.testing.assert_allclose(small.probs, big.probs, atol=1e-5)
    np.testing.assert_allclose(small.energy_db, big.energy_db, atol=1e-3)


def test_segment_marks_silence_and_covers_the_file(model_file, long_file):
    segments, _ = segment_file(load_classifier(model_file), long_file, smooth=0.5)
    assert segments[0].start == 0 and segments[-1].stop == pytest.approx(7.3)
    silent = [s for s in segments if s.label == "silence"]
    assert len(silent) == 1 and silent[0].start == pytest.approx(3.0, abs=0.15)
    assert silent[0].stop == pytest.approx(5.0, abs=0.15)
    assert all(a.stop == b.start for a, b in zip(segments, segments[1:]))


def test_median_filter_removes_short_flips():
    probs = np.tile([0.9, 0.1], (30, 1))
    probs[10:12] = [0.1, 0.9]  # a 0.2 s flip
    results = FrameResults(probs, np.zeros(30), np.zeros(30), 0.1, 3.0)
    assert smooth_labels(results, ["a", "b"], smooth=0.0, silence_db=None).count("b") == 2
    assert smooth_labels(results, ["a", "b"], smooth=0.5, silence_db=None) == ["a"] * 30


def test_timeline_formats_and_frame_accuracy(tmp_path):
    segments = frames_to_segments(["speech"] * 3 + ["music"] * 2 + ["speech"], 0.5, 3.2)
    assert segments == [Segment("speech", 0, 1.5), Segment("music", 1.5, 2.5), Segment("speech", 2.5, 3.2)]
    assert format_timeline(segments, "csv").splitlines()[1] == "speech,0.000,1.500"
    assert format_timeline(segments, "rttm", "f1").splitlines()[1] == \
        "SPEAKER f1 1 1.500 1.000 <NA> <NA> music <NA> <NA>"
    assert format_timeline(segments, "audacity").splitlines()[2] == "2.500000\t3.200000\tspeech"
    assert read_timeline(write_timeline(tmp_path / "t.csv", segments, "csv")) == segments
    assert frame_accuracy(segments, segments) == 1.0
    shifted = [Segment("speech", 0, 2.0), Segment("music", 2.0, 3.2)]
    # disagreement: 1.5-2.0 (speech vs music) and 2.5-3.2 (music vs speech) = 1.2 of 3.2 s
    assert frame_accuracy(segments, shifted) == pytest.approx(2.0 / 3.2, abs=0.01)


def test_classification_scores_and_confusion_plot(tmp_path):
    confusion = confusion_matrix(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1]), 2)
    assert confusion.tolist() == [[2, 0], [1, 1]]
    scores = classification_scores(confusion, ["a", "b"])
    assert scores["accuracy"] == 0.75 and scores["n"] == 4
    assert scores["per_class"]["a"]["precision"] == pytest.approx(2 / 3) and scores["per_class"]["a"]["recall"] == 1
    assert scores["per_class"]["a"]["f1"] == pytest.approx(0.8)
    assert scores["per_class"]["b"]["f1"] == pytest.approx(2 / 3)
    assert scores["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert plot_confusion(tmp_path / "c.png", scores["confusion"], ["a", "b"]).stat().st_size > 1000


def test_cross_entropy_and_distillation(tmp_path, model_file):
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    value, logs = create_loss("cross_entropy")(logits, {"label": torch.tensor([0, 1])})
    assert logs["accuracy"] == 0.5 and value > 0
    soft = torch.tensor([[1.0, 0, 0], [0, 0.2, 0.8]])
    assert create_loss("cross_entropy")(logits, {"label": soft})[1]["accuracy"] == 1.0
    loss = create_loss("distillation", teacher=str(model_file), soft=1.0)
    assert not list(loss.parameters())  # the teacher is never trained
    audio_batch = torch.randn(2, 8000)
    with torch.no_grad():
        teacher = load_classifier(model_file)(audio_batch)
    same, logs = loss(teacher, {"audio": audio_batch, "label": torch.tensor([0, 1])})
    assert same.abs() < 1e-5 and logs["kl"].abs() < 1e-5
    other, _ = loss(-teacher, {"audio": audio_batch, "label": torch.tensor([0, 1])})
    assert other > 1e-3


def test_classify_and_segment_commands(tmp_path, model_file, long_file, capsys):
    assert cli(["classify", "--model", str(model_file), "--json", "-k", "2", str(long_file)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result) == 1 and len(result[0]["top"]) == 2
    probs = [t["probability"] for t in result[0]["top"]]
    assert probs[0] >= probs[1] and sum(probs) <= 1 + 1e-6
    expected = classify_file(load_classifier(model_file), long_file).max().item()
    assert probs[0] == pytest.approx(expected, abs=1e-6)
    assert cli(["segment", "--model", str(model_file), str(long_file), "-o", str(tmp_path / "seg"),
                "--format", "audacity", "--plot", "--block", "2"]) == 0
    labels = (tmp_path / "seg" / "long.txt").read_text().splitlines()
    assert labels and all(len(line.split("\t")) == 3 for line in labels)
    assert (tmp_path / "seg" / "long.png").stat().st_size > 1000


def test_commands_reject_non_classifiers(tmp_path, long_file, capsys):
    path = create_model("conv_tasnet").save(tmp_path / "sep.pt")
    assert cli(["classify", "--model", str(path), str(long_file)]) == 2
    assert "needs" in capsys.readouterr().err
    with pytest.raises(ModelFileError):
        load_classifier(path)


@pytest.mark.slow
def test_swishnet_learns_the_mini_corpus(tmp_path):
    """A few epochs of `sepaudio train` on a small mini corpus separate the three classes."""
    from sepaudio.data import create_dataset
    from sepaudio.evaluate import evaluate
    from sepaudio.data.smn_mini import make_smn_mini_corpus
    from sepaudio.train import train

    root = make_smn_mini_corpus(tmp_path / "smn", seconds=2.0, files={"train": 6, "valid": 2, "test": 3})
    data = {"root": str(root), "clip_seconds": 1.0}
    config = {
        "exp_dir": str(tmp_path / "exp"), "seed": 0,
        "model": {"name": "swishnet_slim", "args": {}},
        "data": {"name": "smn_mini", "train": {**data, "split": "train", "overlap": 0.75},
                 "valid": {**data, "split": "valid", "overlap": 0.0}, "batch_size": 16, "num_workers": 0},
        "loss": {"name": "cross_entropy", "args": {}},
        "optim": {"lr": 5e-3, "weight_decay": 0.0, "plateau_factor": 0.5, "plateau_patience": 3},
        "trainer": {"max_epochs": 8, "gradient_clip_val": 5.0, "early_stop_patience": 8, "accelerator": "cpu",
                    "devices": 1, "enable_progress_bar": False, "enable_model_summary": False},
    }
    model = load_classifier(train(config) / "model.pt")
    scores = evaluate(model, create_dataset("smn_mini", split="test", overlap=0.0, **data), tmp_path / "eval",
                      n_examples=0, progress=False)
    assert scores["n"] == 18 and scores["accuracy"] >= 0.8
