"""Per-class decision thresholds: fitted for macro F1 (evaluate --calibrate), saved in the model file, used by
every decision (predict, classify, segment's smoothing, evaluate)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sepaudio import audio
from sepaudio.classify import fit_thresholds
from sepaudio.classify import classify_files, top_k
from sepaudio.cli import build_parser
from sepaudio.data.smn_mini import LABELS
from sepaudio.errors import ConfigError
from sepaudio.evaluate import evaluate_config
from sepaudio.models import create_model, load_model
from sepaudio.models.classifier import FrameResults, smooth_labels

from fakes import tone


def swishnet():
    return create_model("swishnet_slim", labels=list(LABELS), sample_rate=8000).eval()


def test_fit_thresholds_recovers_the_rare_class():
    # class 2 (rare) is under-called: its clips have p = 0.35 against 0.65 for class 0
    rare = torch.tensor([[0.65, 0.0, 0.35]]).repeat(5, 1)
    common = torch.tensor([[0.9, 0.05, 0.05], [0.1, 0.85, 0.05]]).repeat(20, 1)
    probs, labels = torch.cat([common, rare]), torch.tensor([0, 1] * 20 + [2] * 5)
    assert (probs.argmax(1) == labels).float().mean() < 0.9
    thresholds = fit_thresholds(probs, labels)
    assert thresholds.shape == (3,) and thresholds[0] == 1.0
    assert torch.equal((probs / thresholds).argmax(1), labels)
    # already right: the thresholds stay 1 (of equal scores, the one nearest 1 wins)
    assert torch.equal(fit_thresholds(common, torch.tensor([0, 1] * 20)), torch.ones(3))


def test_thresholds_saved_loaded_and_used(tmp_path):
    model = swishnet()
    assert torch.equal(model.class_thresholds, torch.ones(3))
    old = {k: v for k, v in model.state_dict().items() if k != "class_thresholds"}  # a file from before
    model.load_state_dict(old)
    clip = tone(1.0, rate=8000)
    probs = model.predict(clip, sample_rate=8000).probabilities
    rare = min(probs, key=probs.get)
    model.class_thresholds[LABELS.index(rare)] = 1e-6
    model.save(tmp_path / "model.pt")
    loaded = load_model(tmp_path / "model.pt")
    assert torch.equal(loaded.class_thresholds, model.class_thresholds)
    prediction = loaded.predict(clip, sample_rate=8000)
    assert prediction.label == rare and next(iter(prediction.probabilities)) == rare
    assert prediction.probabilities[rare] == pytest.approx(probs[rare], rel=1e-4)  # probabilities unchanged
    audio.save(tmp_path / "clip.wav", clip, 8000)
    assert classify_files(tmp_path / "model.pt", [tmp_path / "clip.wav"], k=1)[0]["top"][0]["label"] == rare
    assert top_k(torch.tensor([0.7, 0.2, 0.1]), LABELS, 2, torch.tensor([1.0, 1.0, 0.01]))[0] == ("noise", pytest.approx(0.1))
    segments = loaded.segment(torch.cat([clip, clip]), sample_rate=8000, silence_db=None)
    assert {s.label for s in segments} == {rare}


def test_smoothing_respects_thresholds():
    probs = np.tile(np.array([[0.6, 0.3, 0.1]], np.float32), (30, 1))
    results = FrameResults(probs, np.zeros(30, np.float32), np.ones(30, np.float32), 0.1, 3.0)
    assert set(smooth_labels(results, LABELS, 1.0, None)) == {"speech"}
    assert set(smooth_labels(results, LABELS, 1.0, None, thresholds=[1.0, 0.4, 1.0])) == {"music"}


@pytest.fixture
def run(tmp_path):
    """A config and an (untrained) classifier's model.pt in its exp_dir, on a tone corpus."""
    for split in ("valid", "test"):
        for k, label in enumerate(LABELS):
            for i in range(2):
                audio.save(tmp_path / "data" / split / label / f"{i}.wav",
                           tone(1.0, freq=300.0 * (k + 1) + 50 * i, rate=8000), 8000)
    data = {"root": str(tmp_path / "data"), "sample_rate": 8000, "clip_seconds": 0.5, "overlap": 0.0}
    config = {"exp_dir": str(tmp_path / "exp"), "trainer": {"accelerator": "cpu"},
              "data": {"name": "smn_mini", "valid": {**data, "split": "valid"}, "test": {**data, "split": "test"},
                       "batch_size": 8}}
    swishnet().save(tmp_path / "exp" / "model.pt")
    return config


def test_evaluate_calibrate_writes_the_thresholds(run, tmp_path):
    before = evaluate_config(run, "valid", out_dir=tmp_path / "before", n_examples=0)
    summary = evaluate_config(run, "valid", out_dir=tmp_path / "after", n_examples=0, calibrate_on="valid")
    assert summary["macro_f1"] >= before["macro_f1"]
    assert set(summary["thresholds"]) == set(LABELS)
    assert json.loads((tmp_path / "after" / "summary.json").read_text())["thresholds"] == summary["thresholds"]
    saved = load_model(tmp_path / "exp" / "model.pt").class_thresholds
    assert saved.tolist() == pytest.approx(list(summary["thresholds"].values()))
    assert build_parser().parse_args(["evaluate", "c.yml", "--calibrate"]).calibrate == "valid"
    assert build_parser().parse_args(["evaluate", "c.yml", "--calibrate", "dev"]).calibrate == "dev"


def test_calibrate_refuses_what_it_cannot_do(run, tmp_path):
    with pytest.raises(ConfigError, match="no data.dev section"):
        evaluate_config(run, "test", out_dir=tmp_path / "a", calibrate_on="dev")
    sep = create_model("conv_tasnet", n_filters=16, tcn={"channels": 8, "hidden": 16, "skip_channels": 8,
                                                          "blocks": 2, "repeats": 1})
    sep.save(tmp_path / "sep.pt")
    with pytest.raises(ConfigError, match="--calibrate fits the decision thresholds of a classifier"):
        evaluate_config(run, "test", model_path=tmp_path / "sep.pt", out_dir=tmp_path / "b", calibrate_on="valid")
