import csv

import numpy as np

import pytest
import torch

from sepaudio import audio
from sepaudio.data import LibriMix, OnTheFlyMixtures, create_dataset, read_librimix_csv, scan_speakers
from sepaudio.data.mini_speech import make_mini_speech_corpus
from sepaudio.errors import DatasetError
from sepaudio.metrics import si_sdr


def test_mini_corpus_layout_and_idempotence(mini_speech):
    speakers = scan_speakers(mini_speech)
    assert sorted(speakers) == ["spk00", "spk01", "spk02", "spk03"]
    assert all(len(files) == 6 for files in speakers.values())
    stamp = (mini_speech / "spk00" / "spk00_000.wav").stat().st_mtime_ns
    make_mini_speech_corpus(mini_speech, n_speakers=4, utterances=6, seconds=1.0)
    assert (mini_speech / "spk00" / "spk00_000.wav").stat().st_mtime_ns == stamp  # not rewritten


def test_interrupted_mini_corpus_is_completed(tmp_path):
    """A generation killed part-way leaves the stamp and whole files; the next call writes only what is missing,
    the same files an uninterrupted run writes."""
    make_mini_speech_corpus(tmp_path / "full", n_speakers=3, utterances=2, seconds=0.3)
    make_mini_speech_corpus(tmp_path / "cut", n_speakers=3, utterances=2, seconds=0.3)
    for lost in ("spk01/spk01_001.wav", "spk02/spk02_000.wav", "spk02/spk02_001.wav"):
        (tmp_path / "cut" / lost).unlink()
    kept = (tmp_path / "cut" / "spk00" / "spk00_000.wav").stat().st_mtime_ns
    make_mini_speech_corpus(tmp_path / "cut", n_speakers=3, utterances=2, seconds=0.3)
    assert (tmp_path / "cut" / "spk00" / "spk00_000.wav").stat().st_mtime_ns == kept
    for path in sorted((tmp_path / "full").rglob("*.wav")):
        assert torch.equal(audio.load(path)[0], audio.load(tmp_path / "cut" / path.relative_to(tmp_path / "full"))[0])


def _pitch(wav, rate):
    """Median autocorrelation pitch (Hz) of the loud 64 ms frames of a waveform."""
    frames = wav.unfold(0, 512, 256)
    frames = frames[frames.pow(2).mean(1) > 0.5 * frames.pow(2).mean()]
    spectrum = torch.fft.rfft(frames - frames.mean(1, keepdim=True), n=1024)
    acf = torch.fft.irfft(spectrum.abs() ** 2, n=1024)[:, : rate // 60]
    lags = acf[:, rate // 400:].argmax(1) + rate // 400
    return rate / lags.float().median().item()


def test_mini_speakers_differ_in_pitch(mini_speech):
    pitches = [_pitch(audio.load(mini_speech / s / f"{s}_000.wav")[0][0], 8000) for s in sorted(scan_speakers(mini_speech))]
    assert max(pitches) - min(pitches) > 60  # speakers span a wide pitch range
    assert all(70 < p < 320 for p in pitches)


def test_mixtures(mini_speech):
    data = OnTheFlyMixtures(mini_speech, n_src=3, segment=0.5, length=5, seed=3, snr_range=(0, 0))
    item = data[2]
    assert item["mixture"].shape == (4000,) and item["sources"].shape == (3, 4000)
    assert torch.allclose(item["sources"].sum(0), item["mixture"], atol=1e-6)
    assert len(set(item["speakers"].tolist())) == 3  # distinct speakers
    power = item["sources"].pow(2).mean(-1)
    assert torch.allclose(power, power[0].expand(3), rtol=1e-3)  # 0 dB ratios
    assert torch.equal(data[2]["mixture"], item["mixture"])  # seeded: fixed mixtures
    random = OnTheFlyMixtures(mini_speech, n_src=2, segment=0.5, length=5)
    assert not torch.equal(random[0]["mixture"], random[0]["mixture"])


def test_iterating_a_mixing_dataset_stops_at_its_length(mini_speech):
    ds = OnTheFlyMixtures(mini_speech, length=3, seed=1)
    items = list(ds)  # Python's iteration protocol: __getitem__ until IndexError
    assert len(items) == 3 and [item["id"] for item in items] == ["0", "1", "2"]
    assert torch.equal(ds[-1]["mixture"], ds[2]["mixture"]) and ds[-1]["id"] == "2"
    with pytest.raises(IndexError, match="item 3 of a dataset of 3"):
        ds[3]


def test_enrollment_is_another_utterance_of_the_target(mini_speech):
    data = OnTheFlyMixtures(mini_speech, segment=1.5, length=20, seed=0, enrollment=True, enrollment_seconds=1.5)
    files = scan_speakers(mini_speech)
    for i in range(20):
        item = data[i]
        assert torch.equal(item["target"], item["sources"][0]) and item["speaker"] == item["speakers"][0]
        # the enrollment matches none of the crops of the target utterance: it is another recording
        assert si_sdr(item["enrollment"], item["target"]) < 0
        assert item["enrollment"].shape == (12000,)
    assert len(files) == 4


def test_noise_is_added_to_mixture_only(mini_speech, tmp_path):
    audio.save(tmp_path / "noise" / "n.wav", 0.1 * torch.randn(1, 8000), 8000)
    data = OnTheFlyMixtures(mini_speech, segment=0.5, length=2, seed=0, noise_root=tmp_path / "noise",
                            noise_snr_range=(0, 0))
    item = data[0]
    residual = item["mixture"] - item["sources"].sum(0)
    assert torch.allclose(residual.pow(2).mean(), item["sources"].sum(0).pow(2).mean(), rtol=0.05)


def test_mixing_errors(mini_speech, tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        OnTheFlyMixtures(tmp_path / "absent")
    with pytest.raises(DatasetError, match="5-source mixture needs 5"):
        OnTheFlyMixtures(mini_speech, n_src=5)
    with pytest.raises(DatasetError, match=r"\['ghost'\] not found"):
        OnTheFlyMixtures(mini_speech, speakers=["spk00", "ghost"])
    (tmp_path / "empty" / "spk").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no speaker sub-folder"):
        scan_speakers(tmp_path / "empty")
    assert isinstance(create_dataset("mix_on_the_fly", root=mini_speech, length=1), OnTheFlyMixtures)


def _fake_librimix(tmp_path, n_src=2, absolute_prefix="/data/somewhere/Libri2Mix/wav8k/min"):
    """A fake copy of the LibriMix layout whose CSV holds another machine's absolute paths."""
    root = tmp_path / "Libri2Mix" / "wav8k" / "min"
    rows = []
    for k in range(3):
        mid = f"19-198-000{k}_26-495-000{k}"
        sources = [0.1 * torch.randn(1, 4000 + 100 * k) for _ in range(n_src)]
        audio.save(root / "dev" / "mix_clean" / f"{mid}.wav", sum(sources), 8000)
        for s, src in enumerate(sources, 1):
            audio.save(root / "dev" / f"s{s}" / f"{mid}.wav", src, 8000)
        rows.append([mid, f"{absolute_prefix}/dev/mix_clean/{mid}.wav"]
                    + [f"{absolute_prefix}/dev/s{s}/{mid}.wav" for s in range(1, n_src + 1)] + [4000 + 100 * k])
    csv_path = root / "metadata" / "mixture_dev_mix_clean.csv"
    csv_path.parent.mkdir(parents=True)
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["mixture_ID", "mixture_path"] + [f"source_{s}_path" for s in range(1, n_src + 1)] + ["length"])
        writer.writerows(rows)
    return csv_path


@pytest.mark.parametrize("n_src", [2, 3])
def test_librimix_reader_relocates_paths(tmp_path, n_src):
    csv_path = _fake_librimix(tmp_path, n_src)
    rows = read_librimix_csv(csv_path)
    assert len(rows) == 3 and all(p.exists() for r in rows for p in [r["mixture"], *r["sources"]])
    full = LibriMix(csv_path)
    assert full.n_src == n_src and full[1]["sources"].shape == (n_src, 4100)
    cropped = LibriMix(csv_path, segment=0.25, seed=0)
    item = cropped[2]
    assert item["mixture"].shape == (2000,) and torch.allclose(item["sources"].sum(0), item["mixture"], atol=1e-5)


def test_librimix_missing_file_names_the_line(tmp_path):
    csv_path = _fake_librimix(tmp_path)
    missing = next((csv_path.parent.parent / "dev" / "s2").iterdir())
    lines = csv_path.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if missing.stem in text)
    missing.unlink()
    with pytest.raises(DatasetError, match=rf"mixture_dev_mix_clean.csv, line {line}: .*{missing.name} not found"):
        read_librimix_csv(csv_path)
    with pytest.raises(DatasetError, match="no such metadata CSV"):
        read_librimix_csv(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="not a LibriMix metadata CSV"):
        read_librimix_csv(bad)


def test_mini_speakers_have_voices_of_their_own():
    from sepaudio.data.mini_speech import speaker_names, speaker_traits

    traits = [speaker_traits(i, 40) for i in range(40)]
    for key in set(traits[0]) - {"female"}:  # every trait is the speaker's own, none shared by all
        assert len({tuple(np.atleast_1d(t[key]).round(6)) for t in traits}) == 40, key
    female = [t for t in traits if t["female"]]
    male = [t for t in traits if not t["female"]]
    assert len(female) == len(male) == 20
    assert all(150 <= t["f0"] <= 290 for t in female) and all(80 <= t["f0"] <= 175 for t in male)
    assert np.mean([t["formant_scale"] for t in female]) > 1.1 > 1.0 > np.mean([t["formant_scale"] for t in male])
    names = speaker_names(120)
    assert names[0] == "spk000" and names[-1] == "spk119" and sorted(names) == names
    assert speaker_names(32)[-1] == "spk31"


def test_speakers_from_a_list_file(mini_speech, tmp_path):
    (tmp_path / "spk.txt").write_text("spk01\n# held out\nspk03  # the last\n")
    data = OnTheFlyMixtures(mini_speech, speakers=tmp_path / "spk.txt", length=2)
    assert data.speaker_names == ["spk01", "spk03"]
    with pytest.raises(DatasetError, match="absent.txt: no such list"):
        OnTheFlyMixtures(mini_speech, speakers=str(tmp_path / "absent.txt"))


def _peak_hz(wav: torch.Tensor, rate: int = 8000) -> float:
    return float(torch.fft.rfft(wav).abs().argmax()) * rate / wav.shape[-1]


def test_speed_perturbed_pseudo_speakers(mini_speech, tmp_path):
    """Every speaker at every speed is a speaker of its own, and its mixtures and enrollments are perturbed alike:
    on a corpus of tones (speaker A at 200 Hz, B at 320 Hz) the target and the enrollment of an item both sit at the
    speaker's frequency times the pseudo-speaker's factor."""
    tone = lambda hz, seconds: 0.1 * torch.sin(2 * torch.pi * hz * torch.arange(int(seconds * 8000)) / 8000)  # noqa
    for speaker, hz in (("A", 200.0), ("B", 320.0)):
        for k, seconds in enumerate((3.0, 3.5)):
            audio.save(tmp_path / speaker / f"{k}.wav", tone(hz, seconds), 8000)
    factors = [0.8, 1.0, 1.25]
    data = OnTheFlyMixtures(tmp_path, segment=1.0, length=24, seed=0, enrollment=True, speed_factors=factors)
    assert data.speaker_names == ["A@sp0.8", "A", "A@sp1.25", "B@sp0.8", "B", "B@sp1.25"]
    seen = set()
    for i in range(24):
        item = data[i]
        speaker, _, factor = data.speaker_names[int(item["speaker"])].partition("@sp")
        expected = {"A": 200.0, "B": 320.0}[speaker] * float(factor or 1)
        seen.add(float(factor or 1))
        for wav in (item["target"], item["enrollment"]):
            assert abs(_peak_hz(wav) - expected) <= 2.0, (i, data.speaker_names[int(item["speaker"])])
    assert seen == set(factors)
    slow = data._load(tmp_path / "A" / "0.wav", 0.8)
    assert abs(slow.shape[0] - 3.0 * 8000 / 0.8) <= 1
    for bad in ([0.0, 1.0], [1.0, 1.0], ["fast"], []):
        with pytest.raises(DatasetError, match="speed_factors must be distinct numbers between 0.5 and 2"):
            OnTheFlyMixtures(tmp_path, speed_factors=bad)


def test_similar_voices_draws_hard_pairs(tmp_path):
    """similar_voices: that share of the mixtures pairs the first speaker with one of its nearest voices (closest
    long-term spectrum); tones stand for voices here, two close ones in each of three registers."""
    import pickle

    from sepaudio.data.mixing import SIMILAR_VOICES

    tone = lambda hz: 0.1 * torch.sin(2 * torch.pi * hz * torch.arange(8000) / 8000)  # noqa: E731
    voices = {"a": 200, "b": 215, "c": 500, "d": 530, "e": 1200, "f": 1260, "g": 2500, "h": 2600, "i": 3300,
              "j": 3400}
    for name, hz in voices.items():
        for k in range(2):
            audio.save(tmp_path / name / f"{k}.wav", tone(hz * (1 + 0.01 * k)), 8000)
    data = OnTheFlyMixtures(tmp_path, segment=0.5, length=40, seed=0, similar_voices=1.0)
    names = data.speaker_names
    assert [names[n] for n in data.neighbours[names.index("a")]][0] == "b" and len(data.neighbours[0]) == SIMILAR_VOICES
    for i in range(40):
        first, other = data[i]["speakers"].tolist()
        assert other in data.neighbours[first]
    mixed = OnTheFlyMixtures(tmp_path, segment=0.5, length=200, seed=0, similar_voices=0.5)
    hard = sum(int(it["speakers"][1]) in mixed.neighbours[int(it["speakers"][0])] for it in map(mixed.__getitem__, range(200)))
    assert 100 <= hard <= 150  # half drawn hard, plus the random draws that land on a neighbour (4 of 9)
    plain = OnTheFlyMixtures(tmp_path, segment=0.5, length=5, seed=0)
    assert plain.neighbours == [] and torch.equal(plain[3]["mixture"], OnTheFlyMixtures(tmp_path, segment=0.5, length=5, seed=0)[3]["mixture"])
    assert pickle.loads(pickle.dumps(data))._cache == {} and data._cache  # workers get no cached tensors
    for bad in (2, float("nan"), "nan", True):
        with pytest.raises(DatasetError, match="similar_voices must be a share between 0 and 1"):
            OnTheFlyMixtures(tmp_path, similar_voices=bad)
