"""Extraction data: WSJ0-2mix-extr lists, Libri2Mix with enrollments, i-vector items, recipe preparations on fake
copies of the corpora's layouts."""
from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest
import torch

from sepaudio import audio
from sepaudio.data import ExtractionList, LibriMixExtraction, create_dataset, read_extraction_list
from sepaudio.data.extraction import librispeech_utterance
from sepaudio.errors import DatasetError

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def load_script(path: Path):
    spec = importlib.util.spec_from_file_location(path.parent.parent.name.replace("-", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tone(seconds: float, freq: float, rate: int = 8000) -> torch.Tensor:
    t = torch.arange(int(seconds * rate)) / rate
    return 0.1 * torch.sin(2 * torch.pi * freq * t)


def recipe_datasets(recipe: str, work: Path, overrides: list[str]) -> dict:
    """The datasets a recipe's conf.yml names for train / valid / test (without the i-vector wrapper), built from
    ``work`` as run.sh does."""
    import os

    from sepaudio.train import load_config

    config = load_config(RECIPES / recipe / "conf.yml", overrides)
    assert config["data"]["name"] == "with_ivectors"
    cwd = os.getcwd()
    os.chdir(work)
    try:
        return {split: create_dataset(args["dataset"], **{k: v for k, v in args.items()
                                                            if k not in ("dataset", "extractor")})
                for split, args in ((s, config["data"][s]) for s in ("train", "valid", "test"))}
    finally:
        os.chdir(cwd)


def test_extraction_list_items_and_aligned_crops(tmp_path):
    target, other = tone(1.0, 200), tone(1.0, 330)
    audio.save(tmp_path / "mix" / "a.wav", target + other, 8000)
    audio.save(tmp_path / "s1" / "a.wav", target, 8000)
    audio.save(tmp_path / "aux" / "a.wav", tone(0.7, 210), 8000)
    lst = tmp_path / "tt.lst"
    lst.write_text("# mixture target enrollment speaker\nmix/a.wav s1/a.wav aux/a.wav 01a\n\n")
    items = read_extraction_list(lst)
    assert items == [{"id": "a", "mixture": tmp_path / "mix/a.wav", "target": tmp_path / "s1/a.wav",
                      "enrollment": tmp_path / "aux/a.wav", "speaker": "01a"}]
    item = ExtractionList(lst, segment=0.5, enrollment_seconds=1.0, seed=0)[0]
    assert item["mixture"].shape == item["target"].shape == (4000,) and item["enrollment"].shape == (8000,)
    # mixture and target are cut at the same place: what is left is the other speaker's tone, continuous
    residual = item["mixture"] - item["target"]
    assert torch.allclose(residual.abs().max(), torch.tensor(0.1), atol=1e-3)
    assert item["speaker"] == 0 and item["id"] == "a"
    whole = ExtractionList(lst)[0]
    assert whole["mixture"].shape == (8000,) and whole["enrollment"].shape == (5600,)


def test_extraction_list_speed_perturbs_mixture_target_and_enrollment_alike(tmp_path):
    """With speed_factors every item is played at one of them: target, interferer and enrollment move together, and
    the speaker label is the pseudo-speaker's."""
    audio.save(tmp_path / "mix" / "a.wav", tone(1.0, 200) + tone(1.0, 330), 8000)
    audio.save(tmp_path / "s1" / "a.wav", tone(1.0, 200), 8000)
    audio.save(tmp_path / "aux" / "a.wav", tone(1.0, 250), 8000)
    lst = tmp_path / "tt.lst"
    lst.write_text("mix/a.wav s1/a.wav aux/a.wav 01a\n" * 12)
    data = ExtractionList(lst, seed=0, speed_factors=[0.8, 1.0, 1.25])
    assert data.speaker_names == ["01a@sp0.8", "01a", "01a@sp1.25"]
    peak = lambda wav: float(torch.fft.rfft(wav).abs().argmax()) * 8000 / wav.shape[-1]  # noqa: E731
    factors = set()
    for i in range(12):
        item = data[i]
        factor = float(data.speaker_names[int(item["speaker"])].partition("@sp")[2] or 1)
        factors.add(factor)
        assert item["mixture"].shape == item["target"].shape == (round(8000 / factor),)
        assert abs(peak(item["target"]) - 200 * factor) < 2 and abs(peak(item["enrollment"]) - 250 * factor) < 2
        assert abs(peak(item["mixture"] - item["target"]) - 330 * factor) < 2
    assert factors == {0.8, 1.0, 1.25}
    assert torch.equal(data[3]["mixture"], data[3]["mixture"])  # fixed per item with a seed
    with pytest.raises(DatasetError, match="tt.lst: speed_factors"):
        ExtractionList(lst, speed_factors=[3.0])


def test_extraction_list_errors_name_file_and_line(tmp_path):
    audio.save(tmp_path / "m.wav", tone(0.2, 100), 8000)
    lst = tmp_path / "bad.lst"
    lst.write_text("m.wav m.wav m.wav\nm.wav gone.wav m.wav\n")
    with pytest.raises(DatasetError, match=r"line 2: .*gone\.wav not found"):
        read_extraction_list(lst)
    lst.write_text("m.wav m.wav\n")
    with pytest.raises(DatasetError, match="line 1: expected"):
        read_extraction_list(lst)
    with pytest.raises(DatasetError, match="no such list"):
        read_extraction_list(tmp_path / "none.lst")


def make_fake_wsj0_extr(root: Path, missing_aux: bool = False) -> Path:
    """wav8k/max/{tr,cv,tt}/{mix,s1,aux}/<utt1>_<snr1>_<utt2>_<snr2>_<aux>.wav with tiny audio."""
    names = {"tr": ["01ta010b_0.4_20oc010f_-0.4_01tc020x", "20oa010c_1.2_01tb0101_-1.2_20oc0203"],
             "cv": ["40na010x_0.1_02ca010q_-0.1_40nc020r"], "tt": ["050a050a_2.0_442c020w_-2.0_050c0101"]}
    for split, files in names.items():
        for k, name in enumerate(files):
            for folder in ("mix", "s1", "aux"):
                if missing_aux and split == "cv" and folder == "aux":
                    continue
                audio.save(root / "wav8k" / "max" / split / folder / f"{name}.wav", tone(0.3, 150 + 40 * k), 8000)
    return root


def test_wsj0_2mix_extr_preparation_on_a_fake_layout(tmp_path, capsys):
    corpus = make_fake_wsj0_extr(tmp_path / "wsj0_2mix_extr")
    prepare = load_script(RECIPES / "tse_wsj0-2mix-extr" / "local" / "prepare_data.py")
    prepare.main([str(corpus), "--out", str(tmp_path / "data")])
    lines = (tmp_path / "data" / "tr.lst").read_text().splitlines()
    assert lines[0] == ("mix/01ta010b_0.4_20oc010f_-0.4_01tc020x.wav s1/01ta010b_0.4_20oc010f_-0.4_01tc020x.wav "
                        "aux/01ta010b_0.4_20oc010f_-0.4_01tc020x.wav 01t")
    data = ExtractionList(tmp_path / "data" / "tr.lst", root=corpus / "wav8k" / "max" / "tr")
    assert len(data) == 2 and data.speaker_names == ["01t", "20o"] and data[1]["speaker"] == 1
    ivector_lines = (tmp_path / "data" / "ivector_train.txt").read_text().splitlines()
    assert len(ivector_lines) == 4 and {line.split()[1] for line in ivector_lines} == {"01t", "20o"}
    assert all(Path(line.split()[0]).is_file() for line in ivector_lines)
    assert "tt: 1 mixtures" in capsys.readouterr().out
    base = corpus / "wav8k" / "max"
    datasets = recipe_datasets("tse_wsj0-2mix-extr", tmp_path, [f"data.train.root={base / 'tr'}",
                                                               f"data.valid.root={base / 'cv'}",
                                                               f"data.test.root={base / 'tt'}"])
    assert [len(datasets[s]) for s in ("train", "valid", "test")] == [2, 1, 1]
    assert datasets["train"][0]["mixture"].shape == (32000,)  # 4 s segments (zero-padded)
    broken = make_fake_wsj0_extr(tmp_path / "broken", missing_aux=True)
    with pytest.raises(SystemExit, match=r"aux/40na010x.*not found"):
        prepare.main([str(broken), "--out", str(tmp_path / "data2")])


def make_fake_libri2mix(root: Path, drop: str | None = None) -> Path:
    """wav8k/min/{train-360,dev,test}/{mix_clean,s1,s2} and metadata CSVs holding another machine's paths."""
    mixtures = ["100-1-0001_200-1-0001", "200-1-0002_300-1-0001", "100-1-0002_300-1-0002",
                "100-1-0001_300-1-0003", "400-2-0001_200-1-0001"]
    base = root / "wav8k" / "min"
    for split in ("train-360", "dev", "test"):
        rows = []
        for k, mixture_id in enumerate(mixtures):
            paths = {}
            for folder in ("mix_clean", "s1", "s2"):
                path = base / split / folder / f"{mixture_id}.wav"
                if drop != f"{split}/{folder}/{mixture_id}":
                    audio.save(path, tone(0.25, 100 + 30 * k), 8000)
                paths[folder] = f"/data/elsewhere/Libri2Mix/wav8k/min/{split}/{folder}/{mixture_id}.wav"
            rows.append([mixture_id, paths["mix_clean"], paths["s1"], paths["s2"], 2000])
        (base / "metadata").mkdir(parents=True, exist_ok=True)
        with open(base / "metadata" / f"mixture_{split}_mix_clean.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["mixture_ID", "mixture_path", "source_1_path", "source_2_path", "length"])
            writer.writerows(rows)
    return root


def test_librimix_extraction_enrolls_another_utterance_of_the_target_speaker(tmp_path):
    corpus = make_fake_libri2mix(tmp_path / "Libri2Mix")
    base = corpus / "wav8k" / "min"
    data = LibriMixExtraction(base / "metadata" / "mixture_test_mix_clean.csv", segment=0.2, seed=0)
    # speaker 400 has one utterance only: its target is left out; every other source is a target
    assert len(data) == 9 and data.speaker_names == ["100", "200", "300"]
    for index in range(len(data)):
        for seed in range(3):
            item = data.fixed_items(seed)[index]
            mixture_id, source = item["id"].rsplit("_s", 1)
            utterance, speaker = librispeech_utterance(mixture_id, int(source) - 1)
            enroll_mixture = item["enrollment"].stem
            enroll_source = int(item["enrollment"].parent.name[1:]) - 1
            enroll_utterance, enroll_speaker = librispeech_utterance(enroll_mixture, enroll_source)
            assert enroll_speaker == speaker and enroll_utterance != utterance
    # 100-1-0001 is the target of two mixtures: it never enrolls itself, even from the other mixture's file
    item = data[data.items.index(next(i for i in data.items if i["id"] == "100-1-0001_300-1-0003_s1"))]
    assert set(item) == {"mixture", "target", "enrollment", "speaker", "id"}
    assert item["mixture"].shape == (1600,) and data.speaker_names[int(item["speaker"])] == "100"


def test_libri2mix_preparation_on_a_fake_layout(tmp_path):
    corpus = make_fake_libri2mix(tmp_path / "Libri2Mix")
    prepare = load_script(RECIPES / "tse_libri2mix" / "local" / "prepare_data.py")
    prepare.main([str(corpus), "--out", str(tmp_path / "data")])
    out = tmp_path / "data"
    assert {p.name for p in out.iterdir()} == {"train.csv", "valid.csv", "test.csv", "valid.lst", "test.lst",
                                              "ivector_train.txt"}
    test_items = read_extraction_list(out / "test.lst")
    assert len(test_items) == 9
    for item in test_items:
        assert item["enrollment"] != item["target"] and item["enrollment"].is_file()
    speakers = {line.split()[1] for line in (out / "ivector_train.txt").read_text().splitlines()}
    assert speakers == {"100", "200", "300", "400"}
    datasets = recipe_datasets("tse_libri2mix", tmp_path, [f"data.train.root={corpus / 'wav8k' / 'min'}"])
    assert [len(datasets[s]) for s in ("train", "valid", "test")] == [9, 9, 9]
    assert datasets["test"][0]["mixture"].shape == (2000,)  # whole mixtures
    broken = make_fake_libri2mix(tmp_path / "broken", drop="dev/s2/200-1-0002_300-1-0001")
    with pytest.raises(SystemExit, match=r"mixture_dev_mix_clean\.csv, line 3: .*200-1-0002_300-1-0001\.wav"):
        prepare.main([str(broken), "--out", str(tmp_path / "data2")])
    with pytest.raises(SystemExit, match="metadata not found"):
        prepare.main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "data3")])


def test_with_ivectors_adds_the_enrollment_ivector(mini_speech, tmp_path):
    from sepaudio.speaker import train_ivector_extractor
    from sepaudio.data import scan_speakers

    files = scan_speakers(mini_speech)
    wavs = [audio.load(p)[0][0] for ps in files.values() for p in ps]
    extractor = train_ivector_extractor(wavs, 8000, n_components=4, rank=6, tv_iterations=2, progress=False)
    extractor.save(tmp_path / "iv.pt")
    data = create_dataset("with_ivectors", extractor=str(tmp_path / "iv.pt"), dataset="mix_on_the_fly",
                          root=str(mini_speech), enrollment=True, segment=0.5, length=4, seed=0)
    item = data[1]
    assert item["ivector"].shape == (6,) and item["mixture"].shape == (4000,)
    torch.testing.assert_close(item["ivector"], extractor.extract([item["enrollment"]])[0])
    assert len(data) == 4 and data.speaker_names == sorted(files)
    batch = torch.utils.data.default_collate([data[0], data[1]])
    assert batch["ivector"].shape == (2, 6)
    with pytest.raises(DatasetError, match="16000 Hz"):
        create_dataset("with_ivectors", extractor=str(tmp_path / "iv.pt"), dataset="mix_on_the_fly",
                       root=str(mini_speech), enrollment=True, sample_rate=16000)
