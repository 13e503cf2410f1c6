"""Segmentation scored against a reference timeline: frame accuracy, per-class F1, collar, file formats."""
from __future__ import annotations

import json

import pytest

from sepaudio.cli import main
from sepaudio.errors import ConfigError
from sepaudio.timeline import Segment, write_timeline
from sepaudio.segment import read_any_timeline, score_timeline

REFERENCE = [Segment("speech", 0.0, 4.0), Segment("music", 4.0, 10.0)]
HYPOTHESIS = [Segment("speech", 0.0, 5.0), Segment("music", 5.0, 9.0), Segment("noise", 9.0, 10.0)]


def test_frame_scores():
    scores = score_timeline(REFERENCE, HYPOTHESIS, step=0.1)
    assert scores["n"] == 100 and scores["accuracy"] == pytest.approx(0.8)
    speech = scores["per_class"]["speech"]
    assert speech["precision"] == pytest.approx(0.8) and speech["recall"] == pytest.approx(1.0)
    assert scores["per_class"]["noise"]["support"] == 0 and scores["labels"] == ["music", "noise", "speech"]
    assert score_timeline(REFERENCE, REFERENCE)["macro_f1"] == pytest.approx(1.0)
    # a gap in the hypothesis is silence
    gap = score_timeline(REFERENCE, [Segment("speech", 0.0, 2.0)], step=0.1)
    assert gap["per_class"]["silence"]["support"] == 0 and gap["accuracy"] == pytest.approx(0.2)


def test_collar_forgives_boundaries():
    late = [Segment("speech", 0.0, 4.2), Segment("music", 4.2, 10.0)]
    assert score_timeline(REFERENCE, late, step=0.01)["accuracy"] < 1
    scores = score_timeline(REFERENCE, late, step=0.01, collar=0.25)
    assert scores["accuracy"] == 1.0 and scores["seconds"] == pytest.approx(10 - 0.25 - 0.5 - 0.25, abs=0.02)  # edges 0, 4, 10
    for step, collar in [(0.0, 0.0), (0.1, -1.0), (float("nan"), 0.0)]:
        with pytest.raises(ConfigError, match="collar"):
            score_timeline(REFERENCE, late, step=step, collar=collar)
    with pytest.raises(ConfigError, match="no segments"):
        score_timeline([], late)


@pytest.mark.parametrize("fmt", ["csv", "rttm", "audacity"])
def test_formats_read_back(tmp_path, fmt):
    path = write_timeline(tmp_path / f"t.{ {'csv': 'csv', 'rttm': 'rttm', 'audacity': 'txt'}[fmt]}", HYPOTHESIS, fmt)
    assert [(s.label, s.start, s.stop) for s in read_any_timeline(path)] == \
        [(s.label, pytest.approx(s.start), pytest.approx(s.stop)) for s in HYPOTHESIS]


def test_bad_line_is_named(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("0.0\t1.0\tspeech\nnot a segment\n")
    with pytest.raises(ConfigError, match="line 2"):
        read_any_timeline(path)


def test_cli(tmp_path, capsys):
    ref = write_timeline(tmp_path / "ref.rttm", REFERENCE, "rttm")
    hyp = write_timeline(tmp_path / "hyp.csv", HYPOTHESIS, "csv")
    assert main(["evaluate", str(hyp), "--reference", str(ref), "--collar", "0.5", "-o", str(tmp_path / "s.json")]) \
        in (0, None)
    assert "F1 speech" in capsys.readouterr().out
    assert json.loads((tmp_path / "s.json").read_text())["collar"] == 0.5
