"""Evaluation: PIT-aligned scores for separation, target scores for extraction, CSV / JSON / PNG reports."""
import csv
import json

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
    assert summary["si_sdr"] > 20
    swapped = [{**i, "target": i["sources"][1]} for i in data]
    worse = evaluate(Oracle(swapped, 1), swapped, tmp_path / "b", n_examples=0, progress=False)
    assert worse["si_sdr"] < 0


@pytest.mark.slow
def test_evaluate_command_on_mini_corpus(tmp_path, capsys):
    from sepaudio.data import make_mini_speech_corpus

    make_mini_speech_corpus(tmp_path / "corpus", n_speakers=3, utterances=2, seconds=0.5)
    model = MiTAS(n_filters=16, kernel_size=8, bottleneck=8, hidden=16, skip_channels=8, blocks=2, repeats=2)
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
