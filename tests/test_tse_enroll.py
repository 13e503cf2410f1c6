"""Enrollment from anywhere: ``--enroll FILE@START-END`` (the mixture included), several ``--enroll`` averaged, ranges
in ``--list`` files, and every bad range refused through the command line with the file and the range named."""
from __future__ import annotations

import json

import pytest
import torch

from sepaudio import audio
from sepaudio.cli import main
from sepaudio.speaker.enrollment import load_enrollment, parse_enrollment

from fakes import ivector_tse

TINY_TCN = dict(channels=16, hidden=32, skip_channels=16, blocks=2, repeats=1)


@pytest.fixture(scope="module")
def work(mini_speech, tmp_path_factory):
    """An (untrained) i-vector TseNet with its extractor in its folder, a mixture of two speakers, enrollments."""
    folder = tmp_path_factory.mktemp("tse_enroll")
    _, files = ivector_tse(folder, mini_speech, TINY_TCN)
    a, b = (sorted(paths) for paths in list(files.values())[:2])
    first, second = audio.load(a[0])[0][0], audio.load(b[0])[0][0]
    n = min(len(first), len(second))
    # the target alone for the first 0.5 s, then both talking
    mixture = torch.cat([first[:4000], first[4000:n] + second[4000:n]])
    audio.save(folder / "mix.wav", mixture[None], 8000)
    audio.save(folder / "silent.wav", torch.zeros(1, 8000), 8000)
    return {"dir": folder, "model": folder / "tse.pt", "mix": folder / "mix.wav", "enroll": a[1], "other": a[2]}


def extract(work, *enroll, out="out.wav", extra=()):
    args = ["extract", "--model", str(work["model"]), "--mixture", str(work["mix"]), "-o", str(work["dir"] / out)]
    for item in enroll:
        args += ["--enroll", str(item)]
    return main([*args, *extra])


def test_a_range_of_the_mixture_is_an_enrollment(work):
    assert extract(work, f"{work['mix']}@0-0.5") == 0
    out, rate = audio.load(work["dir"] / "out.wav")
    assert rate == 8000 and out.shape[-1] == audio.load(work["mix"])[0].shape[-1]
    report = json.loads((work["dir"] / "out.confidence.json").read_text())
    assert report["enrollment"] == f"{work['mix']}@0-0.5" and 0 <= report["confidence"] < 2
    # the range is what its samples give
    wav = load_enrollment(f"{work['mix']}@0.25-0.5", 8000)
    torch.testing.assert_close(wav, audio.load(work["mix"])[0][:, 2000:4000])


def test_several_enrollments_are_averaged(work):
    from sepaudio.extract import load_extractor

    assert extract(work, work["enroll"], f"{work['other']}@0.1-0.9", out="two.wav") == 0
    model, ivectors = load_extractor(work["model"])
    first = audio.load(work["enroll"])[0]
    second = audio.load(work["other"])[0][:, 800:7200]
    expected = model.extract(audio.load(work["mix"])[0][0], [first, second])
    torch.testing.assert_close(audio.load(work["dir"] / "two.wav")[0][0], expected, atol=1e-4, rtol=0)
    single = model.extract(audio.load(work["mix"])[0][0], first)
    assert not torch.allclose(single, expected, atol=1e-4)  # the second enrollment counts


@pytest.mark.parametrize("suffix, words", [
    ("@5-9", ["outside the file", "which lasts"]),
    ("@0.6-0.2", ["reversed", "0.6-0.2"]),
    ("@0.3-0.3", ["empty", "0.3-0.3"]),
    ("@one-two", ["not START-END", "one-two"]),
    ("@0.5", ["not START-END", "'0.5'"]),
    ("@-1-2", ["not START-END"]),
])
def test_bad_ranges_are_refused_naming_file_and_range(work, suffix, words, capsys):
    assert extract(work, f"{work['mix']}{suffix}", out="bad.wav") == 2
    err = capsys.readouterr().err
    assert f"{work['mix']}{suffix}" in err and all(w in err for w in words), err
    assert not (work["dir"] / "bad.wav").exists()


def test_silent_and_missing_enrollments_are_refused(work, capsys):
    assert extract(work, f"{work['dir'] / 'silent.wav'}@0.2-0.8", out="bad.wav") == 2
    err = capsys.readouterr().err
    assert "silent.wav@0.2-0.8" in err and "silent" in err
    assert extract(work, f"{work['dir'] / 'nope.wav'}@0-1", out="bad.wav") == 2
    assert "nope.wav" in capsys.readouterr().err
    assert not (work["dir"] / "bad.wav").exists()


def test_a_file_whose_name_holds_an_at_sign_is_taken_whole(work):
    odd = work["dir"] / "take@1-2.wav"
    odd.write_bytes(work["enroll"].read_bytes())
    assert parse_enrollment(odd).start is None
    assert parse_enrollment(f"{odd}@0-0.5").end == 0.5


def test_list_lines_take_ranges_and_bad_ones_name_the_line(work, capsys):
    jobs = work["dir"] / "jobs.txt"
    jobs.write_text("mix.wav mix.wav@0-0.5 a.wav\nmix.wav ivector.pt@x b.wav\n")
    assert main(["extract", "--model", str(work["model"]), "--list", str(jobs), "-o", str(work["dir"] / "o")]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "ivector.pt@x" in err
    jobs.write_text(f"mix.wav mix.wav@0-0.5 a.wav\nmix.wav {work['enroll']}\n")
    assert main(["extract", "--model", str(work["model"]), "--list", str(jobs), "-o", str(work["dir"] / "o")]) == 0
    assert (work["dir"] / "o" / "a.wav").is_file()
    rows = (work["dir"] / "o" / "confidence.csv").read_text().splitlines()
    assert rows[0] == "mixture,enrollment,output,confidence,accepted" and len(rows) == 3
    assert "mix.wav@0-0.5" in rows[1]
