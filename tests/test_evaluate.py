"""Evaluation: PIT-aligned scores for separation, target scores for extraction, CSV / JSON / PNG reports."""
import csv
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from sepaudio.cli import main
from sepaudio.evaluate import evaluate
from sepaudio.metrics import si_sdr
from sepaudio.models import MiTAS

RATE = 8000


def items(n: int = 2, n_src: int = 2):
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(RATE) / RATE
    out = []
    for i in range(n):
        sources = torch.stack([0.3 * torch.sin(2 * torch.pi * (200 + 150 * k + 20 * i) * t) for k in range(n_src)])
        sources = sources + 0.02 * torch.randn(n_src, RATE, generator=gen)
        out.append({"mixture": sources.sum(0), "sources": sources, "target": sources[0], "id": f"utt{i}"})
    return out


class Oracle(nn.Module):
    """Returns the item's sources (slightly noisy) in reversed order, found by matching the mixture."""

    registered_name = "oracle"
    input_keys = ("mixture",)
    sample_rate = RATE
    num_parameters = 1

    def __init__(self, data, n_out):
        super().__init__()
        self.data, self.n_out = data, n_out
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, mixture):
        item = next(i for i in self.data if torch.equal(i["mixture"], mixture[0]))
        est = item["sources"].flip(0)[-self.n_out:] if self.n_out == 1 else item["sources"].flip(0)
        return (est + 0.01 * torch.sin(torch.arange(RATE) * 0.37)).unsqueeze(0)


def test_separation_scores_are_permutation_invariant(tmp_path):
    data = items(3)
    summary = evaluate(Oracle(data, 2), data, tmp_path, n_examples=2, progress=False)
    assert summary["n"] == 3
    # reversed outputs are lined up again: the estimates are near-perfect
    assert summary["si_sdr"] > 20
    mix_si_sdr = torch.stack([si_sdr(i["mixture"].expand(2, -1), i["sources"]).mean() for i in data]).mean()
    assert summary["si_sdri"] == pytest.approx(summary["si_sdr"] - float(mix_si_sdr), abs=1e-3)
    assert 0.9 < summary["stoi"] <= 1.0
    assert summary["pesq"] >= 1.0 and summary["pesq"] <= 4.6

    rows = list(csv.DictReader(open(tmp_path / "per_utterance.csv")))
    assert [r["id"] for r in rows] == ["utt0", "utt1", "utt2"]
    assert set(rows[0]) == {"id", "si_sdr", "si_sdri", "sdr", "sdri", "pesq", "stoi"}
    assert json.loads((tmp_path / "summary.json").read_text())["si_sdri"] == pytest.approx(summary["si_sdri"])
    assert sorted(p.name for p in (tmp_path / "examples").iterdir()) == ["utt0.png", "utt1.png"]


def test_reference_shape_mismatch_is_reported(tmp_path):
    data = items(1)
    with pytest.raises(ValueError, match="reference"):
        evaluate(Oracle(data, 2), data, tmp_path, n_examples=0, permutation_invariant=False, progress=False)


def test_extraction_scores_against_target(tmp_path):
    data = items()
    # one output, equal to source 0 (the target): scored against "target" with no permutation
    summary = evaluate(Oracle(data, 1), data, tmp_path, n_examples=1, progress=False)
    assert summary["si_sdr"] > 20 and summary["confusion"] == 0.0
    swapped = [{**i, "target": i["sources"][1]} for i in data]
    worse = evaluate(Oracle(swapped, 1), swapped, tmp_path / "b", n_examples=0, progress=False)
    assert worse["si_sdr"] < 0
    # the estimate is the other talker: every item counts as a speaker confusion, in the CSV and the summary
    assert worse["confusion"] == 1.0 and worse["counts"]["confusion"] == len(data)
    with open(tmp_path / "b" / "per_utterance.csv") as f:
        assert [float(r["confusion"]) for r in csv.DictReader(f)] == [1.0] * len(data)
    half = [{**i, "target": i["sources"][k % 2]} for k, i in enumerate(data)]
    assert evaluate(Oracle(half, 1), half, tmp_path / "c", n_examples=0, progress=False)["confusion"] == 0.5


@pytest.mark.slow
def test_evaluate_command_on_mini_corpus(tmp_path, capsys):
    from sepaudio.data import make_mini_speech_corpus

    make_mini_speech_corpus(tmp_path / "corpus", n_speakers=3, utterances=2, seconds=0.5)
    model = MiTAS(n_filters=16, filter_length=8,
                  tcn={"channels": 8, "hidden": 16, "skip_channels": 8, "blocks": 2, "repeats": 2})
    model.save(tmp_path / "exp" / "model.pt")
    (tmp_path / "conf.yml").write_text(
        f"exp_dir: {tmp_path / 'exp'}\nmodel: {{name: mitas}}\nloss: {{name: pit_si_sdr}}\n"
        f"data:\n  name: mix_on_the_fly\n  test: {{root: {tmp_path / 'corpus'}, segment: 0.5, length: 2, seed: 1}}\n")
    assert main(["evaluate", str(tmp_path / "conf.yml"), "--examples", "1"]) == 0
    assert "si_sdri" in capsys.readouterr().out
    summary = json.loads((tmp_path / "exp" / "eval_test" / "summary.json").read_text())
    assert summary["n"] == 2 and summary["model"] == "mitas"
    assert main(["evaluate", str(tmp_path / "conf.yml"), "--split", "nope"]) == 2
    assert "data.nope" in capsys.readouterr().err


@pytest.mark.parametrize("silent", [0, 2])
def test_a_metric_some_utterances_lack_is_averaged_over_the_others(tmp_path, silent):
    """PESQ finds no utterance in a nearly silent reference: that row lacks it, the others still count."""
    data = items(3)
    quiet = torch.zeros_like(data[silent]["sources"])
    quiet[:, -100:] = 0.3 * torch.randn(2, 100, generator=torch.Generator().manual_seed(0))  # a click at the end
    data[silent] = {**data[silent], "sources": quiet, "mixture": quiet.sum(0), "target": quiet[0]}
    summary = evaluate(Oracle(data, 2), data, tmp_path, n_examples=0, progress=False)
    rows = list(csv.DictReader(open(tmp_path / "per_utterance.csv")))
    assert list(rows[0]) == ["id", "si_sdr", "si_sdri", "sdr", "sdri", "pesq", "stoi"]
    assert rows[silent]["pesq"] == "" and all(rows[i]["pesq"] for i in range(3) if i != silent)
    assert summary["counts"]["pesq"] == 2 and summary["counts"]["si_sdr"] == 3 and summary["n"] == 3
    others = [float(rows[i]["pesq"]) for i in range(3) if i != silent]
    assert summary["pesq"] == pytest.approx(sum(others) / 2, abs=1e-3)
    assert json.loads((tmp_path / "summary.json").read_text())["counts"]["pesq"] == 2


def test_evaluate_command_on_a_classifier(tmp_path, capsys):
    from sepaudio import create_model
    from sepaudio.data.smn_mini import LABELS, make_smn_mini_corpus

    root = make_smn_mini_corpus(tmp_path / "smn", seconds=1.0, files={"test": 2})
    model = create_model("swishnet_slim").save(tmp_path / "exp" / "model.pt")
    (tmp_path / "conf.yml").write_text(
        f"exp_dir: {tmp_path / 'exp'}\nmodel: {{name: swishnet_slim}}\nloss: {{name: cross_entropy}}\n"
        f"data:\n  name: smn_mini\n  batch_size: 4\n"
        f"  test: {{root: {root}, split: test, clip_seconds: 1.0, overlap: 0.0}}\n")
    assert main(["evaluate", str(tmp_path / "conf.yml"), "--examples", "2", "--model", str(model)]) == 0
    out = capsys.readouterr().out
    assert "one device" in out and "accuracy" in out
    report = tmp_path / "exp" / "eval_test"
    summary = json.loads((report / "summary.json").read_text())
    assert summary["task"] == "classification" and summary["n"] == 6 and summary["labels"] == list(LABELS)
    assert sum(map(sum, summary["confusion"])) == 6 and len(summary["confusion"]) == 3
    assert set(summary["per_class"]) == set(LABELS)
    assert all({"precision", "recall", "f1"} <= set(s) for s in summary["per_class"].values())
    assert 0 <= summary["accuracy"] <= 1 and 0 <= summary["macro_f1"] <= 1 and summary["ms_per_clip"] > 0
    assert summary["parameters"] > 0
    rows = list(csv.DictReader(open(report / "per_clip.csv")))
    assert len(rows) == 6 and list(rows[0]) == ["id", "label", "predicted", "probability"]
    accuracy = sum(r["label"] == r["predicted"] for r in rows) / 6
    assert summary["accuracy"] == pytest.approx(accuracy)
    assert (report / "confusion.png").stat().st_size > 1000
    # ids are "<path>@<start>": the examples are named by the file, inside the report
    assert sorted(p.name for p in (report / "examples").iterdir()) == [f"{Path(r['id']).name}.png" for r in rows[:2]]
