"""Confidence of an extraction (estimate, residual and enrollment speaker vectors), its ROC AUC and accept rate in
``evaluate``, and separate-then-select (``--select ivector``) in ``extract`` and ``evaluate``, bad inputs included."""
from __future__ import annotations

import json

import pytest
import torch
import yaml

from sepaudio import audio, load_model
from sepaudio.cli import main
from sepaudio.data import create_dataset
from sepaudio.extract import DEFAULT_MIN_CONFIDENCE
from sepaudio.models import ConvTasNet
from sepaudio.speaker.confidence import (SEPARATED_DB, ConfidenceMeter, SpeakerVectors, confidence, cosine,
                                         item_confidence, kept_confusion, roc_auc, waveform_confidence)
from sepaudio.speaker.select import SelectExtractor

from fakes import ivector_tse

TCN = dict(channels=16, hidden=32, skip_channels=16, blocks=2, repeats=1)


@pytest.fixture(scope="module")
def work(mini_speech, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tse_confidence")
    extractor, files = ivector_tse(folder, mini_speech, TCN, size=8, iterations=3)
    (folder / "blind").mkdir()  # away from ivector.pt: --select then needs --ivector-model
    ConvTasNet(n_src=2, n_filters=32, filter_length=32, stride=16, tcn=TCN).eval().save(folder / "blind" / "blind.pt")
    a, b = (sorted(paths) for paths in list(files.values())[:2])
    first, second = audio.load(a[0])[0][0], audio.load(b[0])[0][0]
    n = min(len(first), len(second))
    audio.save(folder / "mix.wav", (first[:n] + second[:n])[None], 8000)
    return {"dir": folder, "extractor": extractor, "a": a, "b": b, "first": first[:n], "second": second[:n],
            "root": mini_speech}


def test_roc_auc_and_kept_confusion():
    assert roc_auc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert roc_auc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    assert roc_auc([0.5, 0.5], [True, False]) == 0.5
    assert roc_auc([0.3, 0.7, 0.5, 0.1], [True, True, False, False]) == 0.75
    assert roc_auc([1.0, 2.0], [True, True]) != roc_auc([1.0, 2.0], [True, True])  # NaN: one kind only
    scores = [float(v) for v in range(10)]  # the lowest two confused: keeping 9 of 10 keeps one of them
    threshold, rate = kept_confusion(scores, [True, True] + [False] * 8, keep=0.9)
    assert threshold == 1.0 and rate == pytest.approx(1 / 9)
    assert kept_confusion(scores, [True, True] + [False] * 8, keep=0.8) == (2.0, 0.0)


def test_the_confidence_says_which_talker_was_returned(work):
    vectors = SpeakerVectors(work["extractor"])
    enrolled = vectors.mean([audio.load(p)[0] for p in work["a"][1:4]])  # other utterances of the first talker
    first, second = work["first"], work["second"]
    mixture = first + second
    right = waveform_confidence(vectors, mixture, first, enrolled)
    wrong = waveform_confidence(vectors, mixture, second, enrolled)
    unseparated = waveform_confidence(vectors, mixture, 0.7 * mixture, enrolled)  # the mixture back, scaled
    assert 0 < unseparated < DEFAULT_MIN_CONFIDENCE < right < 1 and wrong < right / 2, (right, wrong, unseparated)
    # a clean extraction of a much louder talker: nearly the mixture, but what it left out is another voice
    loud = first + 0.1 * second
    assert waveform_confidence(vectors, loud, first, enrolled) > 10 * waveform_confidence(vectors, loud, loud, enrolled)
    # the factors: the enrollment's side; the separation, kept up by a residual that is another voice
    est, res = vectors(torch.stack([first, second]))
    assert float(confidence(est, res, est, 0.0)) > 0.5 > float(confidence(est, res, res, 0.0))
    side, apart = float(confidence(est, res, est, -1e3)), 1 - float(cosine(est, res).clamp(0, 1))
    got = confidence(est, res, est, torch.tensor([-10.0, SEPARATED_DB, 30.0]))
    torch.testing.assert_close(got, side * torch.tensor([1.0, 0.5 + 0.5 * apart, apart]), atol=1e-3, rtol=0)
    # a chunked recording's confidence is the length-weighted mean of its chunks'
    meter = ConfidenceMeter(vectors, enrolled, 8000)
    half = len(mixture) // 2
    meter.add(mixture[None, :half], first[None, :half])
    meter.add(mixture[None, half:], second[None, half:])
    meter.add(mixture[None, :10], first[None, :10])  # shorter than one analysis frame: not counted
    parts = [waveform_confidence(vectors, mixture[:half], first[:half], enrolled),
             waveform_confidence(vectors, mixture[half:], second[half:], enrolled)]
    assert meter.value == pytest.approx((parts[0] * half + parts[1] * (len(mixture) - half)) / len(mixture))


def test_select_returns_the_output_nearest_the_enrollment(work):
    class Oracle(torch.nn.Module):  # a "separator" that returns the two talkers, the other one first
        sample_rate, registered_name, num_parameters = 8000, "oracle", 0

        def forward(self, mixture):
            return torch.stack([work["second"], work["first"]])[None]

    model = SelectExtractor(Oracle(), work["extractor"])
    for talker, paths in (("first", work["a"]), ("second", work["b"])):
        vector = model.speaker_vector([audio.load(p)[0] for p in paths[1:4]], 8000)
        chosen = model.extract_embedded(work["first"] + work["second"], vector)
        torch.testing.assert_close(chosen[0, 0], work[talker])


def test_extract_with_select_writes_one_of_the_blind_outputs_and_its_confidence(work, capsys):
    d = work["dir"]
    args = ["extract", "--model", str(d / "blind" / "blind.pt"), "--select", "ivector", "--mixture",
            str(d / "mix.wav"), "--enroll", str(work["a"][1]), "-o", str(d / "sel.wav")]
    assert main([*args, "--ivector-model", str(d / "ivector.pt"), "--min-confidence", "2.5"]) == 0
    assert "is below --min-confidence 2.5" in capsys.readouterr().err  # the warning line
    report = json.loads((d / "sel.confidence.json").read_text())
    assert report["accepted"] is False and 0 < report["confidence"] < 1
    blind = load_model(d / "blind" / "blind.pt").eval()
    outputs = blind.separate(d / "mix.wav")
    got = audio.load(d / "sel.wav")[0][0]
    assert min(float((got - o).abs().max()) for o in outputs) < 1e-3
    # bad inputs: no i-vector extractor, a TseNet where a blind separator is needed
    assert main(args) == 2 and "--ivector-model" in capsys.readouterr().err
    for bad in ("nan", "inf"):  # a threshold that cannot compare: a usage error before anything runs
        with pytest.raises(SystemExit) as exited:
            main([*args, "--ivector-model", str(d / "ivector.pt"), "--min-confidence", bad, "-o", str(d / "b.wav")])
        assert exited.value.code == 2 and f"'{bad}': give a finite number" in capsys.readouterr().err
        assert not (d / "b.wav").exists()
    assert main(["extract", "--model", str(d / "tse.pt"), "--select", "ivector", "--ivector-model",
                 str(d / "ivector.pt"), "--mixture", str(d / "mix.wav"), "--enroll", str(work["a"][1]), "-o",
                 str(d / "x.wav")]) == 2
    assert "blind separation" in capsys.readouterr().err


def test_evaluate_reports_confidence_auc_for_tsenet_and_select(work, capsys):
    d = work["dir"]
    test = dict(extractor=str(d / "ivector.pt"), dataset="mix_on_the_fly", root=str(work["root"]),
                enrollment=True, segment=0.5, enrollment_seconds=0.5, length=12, snr_range=[0, 0], seed=2)
    config = {"exp_dir": str(d / "exp"), "model": {"name": "tsenet"}, "loss": {"name": "si_sdr"},
              "data": {"name": "with_ivectors", "test": test}}
    (d / "conf.yml").write_text(yaml.safe_dump(config))
    for model, extra in (("tse.pt", []), ("blind/blind.pt", ["--select", "ivector"])):
        out = d / f"eval_{model.replace('/', '_')}"
        assert main(["evaluate", str(d / "conf.yml"), "--model", str(d / model), "--metrics", "si_sdr",
                     "--examples", "0", "-o", str(out), *extra]) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert summary["task"] == "extraction" and summary["counts"]["confidence"] == 12
        rows = (out / "per_utterance.csv").read_text().splitlines()
        assert rows[0].endswith("confusion,confidence") and len(rows) == 13
        auc = summary["confidence_auc"]
        assert 0 <= auc <= 1 if 0 < summary["confusion"] < 1 else auc is None
        assert "accept 90 %" in capsys.readouterr().out
    assert main(["evaluate", str(d / "conf.yml"), "--model", str(d / "tse.pt"), "--select", "ivector",
                 "-o", str(d / "bad")]) == 2
    assert "blind separation" in capsys.readouterr().err


def test_calibrate_sets_the_extractors_threshold_and_extract_uses_it(work, capsys):
    """``evaluate --calibrate`` on an extractor writes the confidence that accepts 90 % of its extractions of
    data.valid into the model file; ``extract`` then warns below it unless ``--min-confidence`` says otherwise; a
    model file from before has the default; a separate-then-select extractor cannot be calibrated."""
    d = work["dir"]
    split = dict(extractor=str(d / "ivector.pt"), dataset="mix_on_the_fly", root=str(work["root"]),
                 enrollment=True, segment=0.5, enrollment_seconds=0.5, length=10, snr_range=[0, 0])
    config = {"exp_dir": str(d / "exp_cal"), "model": {"name": "tsenet"}, "loss": {"name": "si_sdr"},
              "data": {"name": "with_ivectors", "valid": {**split, "seed": 5}, "test": {**split, "seed": 6}}}
    (d / "conf_cal.yml").write_text(yaml.safe_dump(config))
    model_path = d / "tse_cal.pt"
    original = load_model(d / "tse.pt")
    assert float(original.confidence_threshold) == pytest.approx(DEFAULT_MIN_CONFIDENCE)
    original.save(model_path)
    assert main(["evaluate", str(d / "conf_cal.yml"), "--model", str(model_path), "--calibrate", "--metrics",
                 "si_sdr", "--examples", "0", "-o", str(d / "eval_cal")]) == 0
    assert "confidence threshold fitted on data.valid" in capsys.readouterr().out
    calibrated = load_model(model_path)
    threshold = float(calibrated.confidence_threshold)
    summary = json.loads((d / "eval_cal" / "summary.json").read_text())
    assert summary["confidence_threshold"] == pytest.approx(threshold)
    # the threshold is the 9th highest of the 10 validation confidences: recompute them
    vectors = SpeakerVectors(work["extractor"])
    scores = []
    valid = create_dataset("with_ivectors", **config["data"]["valid"])
    for item in (valid[i] for i in range(len(valid))):
        with torch.no_grad():
            est = original(item["mixture"][None], item["ivector"][None])[0, 0]
        scores.append(item_confidence(vectors, est, item))
    assert threshold == pytest.approx(sorted(scores, reverse=True)[8], rel=1e-4)
    assert sum(s >= threshold for s in scores) == 9
    # extract warns below the model's threshold by default; --min-confidence overrides it
    args = ["extract", "--model", str(model_path), "--ivector-model", str(d / "ivector.pt"), "--mixture",
            str(d / "mix.wav"), "--enroll", str(work["a"][1]), "-o", str(d / "cal.wav")]
    assert main(args) == 0
    report = json.loads((d / "cal.confidence.json").read_text())
    assert report["accepted"] is (report["confidence"] >= threshold)
    assert main([*args, "--min-confidence", "2.5"]) == 0
    assert json.loads((d / "cal.confidence.json").read_text())["accepted"] is False
    assert main(["evaluate", str(d / "conf_cal.yml"), "--model", str(d / "blind" / "blind.pt"), "--select",
                 "ivector", "--calibrate", "-o", str(d / "bad_cal")]) == 2
    assert "separate-then-select" in capsys.readouterr().err
