"""Classification data: mini corpus, clip sampling, augmentation, MUSAN / ESC-50 / UrbanSound8K on fake layouts."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sepaudio import DatasetError, audio
from sepaudio.data import create_dataset
from sepaudio.data.augment import SpecAugment, mixup, random_gain
from sepaudio.data.classification import (ClipDataset, Region, clip_starts, nonsilent_regions, read_manifest,
                                          scan_class_folders, write_manifest)
from sepaudio.data.musan import prepare_musan
from sepaudio.data.smn_mini import LABELS, make_smn_mini_corpus, make_smn_timeline

RATE = 16000
RECIPES = Path(__file__).parent.parent / "recipes"


def tone(seconds, level=0.1, rate=RATE, freq=440.0):
    t = torch.arange(int(seconds * rate)) / rate
    return level * torch.sin(2 * torch.pi * freq * t)


@pytest.fixture(scope="module")
def smn_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("smn")
    return make_smn_mini_corpus(root, seconds=1.5, files={"train": 2, "test": 1})


def test_mini_corpus_layout_and_levels(smn_root):
    regions = scan_class_folders(smn_root / "train")
    assert sorted({r.label for r in regions}) == sorted(LABELS) and len(regions) == 6
    for r in regions:
        wav, rate = audio.load(r.path)
        rms = wav.pow(2).mean().sqrt().item()
        assert rate == RATE and wav.shape[-1] == int(1.5 * RATE) and 0.02 < rms < 0.4
    # generating again with the same arguments reuses the files
    stamp = (smn_root / "corpus.json").stat().st_mtime
    make_smn_mini_corpus(smn_root, seconds=1.5, files={"train": 2, "test": 1})
    assert (smn_root / "corpus.json").stat().st_mtime == stamp


def test_smn_dataset_clips_with_overlap(smn_root):
    ds = create_dataset("smn_mini", root=str(smn_root), split="train", clip_seconds=1.0, overlap=0.5)
    # 1.5 s files, 1 s clips, hop 0.5 s: starts 0 and 0.5 -> 2 clips per file, 6 files
    assert len(ds) == 12 and ds.labels == list(LABELS)
    item = ds[0]
    assert item["audio"].shape == (RATE,) and item["label"].dtype == torch.long
    assert ds.class_counts() == {"speech": 4, "music": 4, "noise": 4}
    folder = create_dataset("audio_folder", root=str(smn_root / "train"), clip_seconds=1.5)
    assert folder.labels == ["music", "noise", "speech"] and len(folder) == 6  # sorted folder names, whole files


def test_clip_starts():
    assert clip_starts(100, 40, 0.5) == [0, 20, 40, 60]
    assert clip_starts(30, 40, 0.5) == [0]
    assert clip_starts(110, 40, 0.0) == [0, 40, 70]  # a 30-sample tail gets a clip ending at the end
    assert clip_starts(100, 40, 0.0) == [0, 40]  # a tail of half a hop or less is dropped


def test_clip_dataset_pads_resamples_and_equalises(tmp_path):
    audio.save(tmp_path / "a" / "short.wav", tone(0.3, rate=8000), 8000)
    ds = ClipDataset([Region(str(tmp_path / "a" / "short.wav"), "a")], ["a", "b"], sample_rate=RATE,
                     clip_seconds=1.0, rms_db=-20.0)
    wav = ds[0]["audio"]
    assert wav.shape == (RATE,)
    assert wav[int(0.35 * RATE):].abs().max() == 0  # zero padding after the 0.3 s of audio
    assert wav.pow(2).mean().sqrt().item() == pytest.approx(0.1, rel=1e-3)
    with pytest.raises(DatasetError, match="not among the classes"):
        ClipDataset([Region(str(tmp_path / "a" / "short.wav"), "c")], ["a", "b"])


def test_augmentations():
    rng = np.random.default_rng(0)
    x = torch.ones(100)
    gains = [random_gain(x, 6.0, rng)[0].item() for _ in range(50)]
    assert 10 ** (-6 / 20) - 1e-6 <= min(gains) < 1 < max(gains) <= 10 ** (6 / 20) + 1e-6
    mixed = mixup({"audio": x, "label": torch.tensor(0)}, {"audio": -x, "label": torch.tensor(2)}, 0.75, 3)
    assert torch.allclose(mixed["audio"], 0.5 * x) and torch.allclose(mixed["label"], torch.tensor([0.75, 0, 0.25]))
    spec = SpecAugment(freq_masks=1, freq_width=4, time_masks=1, time_width=5).train()
    feats = torch.ones(8, 1, 20, 50)
    masked = spec(feats)
    assert masked.shape == feats.shape and (masked == 0).any() and (masked == 1).any()
    assert torch.equal(spec.eval()(feats), feats)


def test_mixup_dataset_gives_soft_labels(smn_root):
    ds = create_dataset("smn_mini", root=str(smn_root), split="train", mixup_alpha=0.4, gain_db=3.0)
    label = ds[3]["label"]
    assert label.shape == (3,) and label.sum().item() == pytest.approx(1.0)


def test_nonsilent_regions_remove_silence(tmp_path):
    wav = torch.cat([torch.zeros(RATE), tone(2.0), torch.zeros(RATE), tone(1.0), torch.zeros(RATE // 10)])
    audio.save(tmp_path / "x.wav", wav, RATE)
    regions = nonsilent_regions(tmp_path / "x.wav", "speech", block_seconds=0.7)
    assert [(r.start, r.stop) for r in regions] == [(1.0, 3.0), (4.0, 5.0)]


def make_musan(root, files_per_class=20):
    for k, label in enumerate(LABELS):
        for i in range(files_per_class):
            wav = torch.cat([tone(0.6, freq=200.0 * (k + 1)), torch.zeros(RATE // 2)])
            audio.save(root / label / "src" / f"{label}-{i:04d}.wav", wav, RATE)


def test_musan_preparation_on_fake_layout(tmp_path):
    make_musan(tmp_path / "musan")
    manifests = prepare_musan(tmp_path / "musan", tmp_path / "lists")
    splits = {s: read_manifest(p) for s, p in manifests.items()}
    for label in LABELS:  # 65 / 10 / 25 % of 20 files
        assert [len({r.path for r in splits[s] if r.label == label}) for s in ("train", "valid", "test")] == [13, 2, 5]
    files = [{r.path for r in rows} for rows in splits.values()]
    assert not (files[0] & files[1]) and not (files[0] & files[2]) and not (files[1] & files[2])
    assert all(r.start == 0.0 and r.stop == pytest.approx(0.6, abs=0.03) for r in splits["train"])  # silence cut
    ds = create_dataset("musan", manifests=str(tmp_path / "lists"), split="valid", clip_seconds=0.5, overlap=0.0)
    assert len(ds) == 6 and ds[0]["audio"].shape == (RATE // 2,)
    with pytest.raises(DatasetError, match="music"):
        prepare_musan(tmp_path / "empty", tmp_path / "lists2")


def make_esc50(root):
    rows = []
    for i in range(10):
        category, target = [("dog", 0), ("rain", 1), ("clock_tick", 2)][i % 3]
        name = f"{i % 5 + 1}-{1000 + i}-A-{target}.wav"
        audio.save(root / "audio" / name, tone(5.0, rate=44100)[: 44100 * 5 - i * 100], 44100)
        rows.append([name, i % 5 + 1, target, category, str(category != "rain"), 1000 + i, "A"])
    (root / "meta").mkdir(parents=True)
    with open(root / "meta" / "esc50.csv", "w", newline="") as f:
        csv.writer(f).writerows([["filename", "fold", "target", "category", "esc10", "src_file", "take"], *rows])


def test_esc50_folds_on_fake_layout(tmp_path):
    make_esc50(tmp_path)
    train = create_dataset("esc50", root=str(tmp_path), folds=[1, 2, 3, 4])
    valid = create_dataset("esc50", root=str(tmp_path), folds=[5])
    assert len(train) == 8 and len(valid) == 2
    assert train.labels == ["dog", "rain", "clock_tick"]
    assert {c[0] for c in train.clips}.isdisjoint({c[0] for c in valid.clips})
    assert train[0]["audio"].shape == (5 * 44100,)  # whole clips, padded to the longest
    assert create_dataset("esc50", root=str(tmp_path), esc10=True).labels == ["dog", "clock_tick"]
    (tmp_path / "audio" / "1-1000-A-0.wav").unlink()
    with pytest.raises(DatasetError, match="missing"):
        create_dataset("esc50", root=str(tmp_path), folds=[1])


def make_us8k(root):
    rows = []
    for i in range(12):
        fold, cid = i % 10 + 1, i % 2
        name = f"{100 + i}-{cid}-0-0.wav"
        audio.save(root / "audio" / f"fold{fold}" / name, tone(1.0 + i % 3, rate=22050), 22050)
        rows.append([name, 100 + i, 0.0, 1.0, 1, fold, cid, ["air_conditioner", "car_horn"][cid]])
    (root / "metadata").mkdir()
    with open(root / "metadata" / "UrbanSound8K.csv", "w", newline="") as f:
        csv.writer(f).writerows([["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"],
                                 *rows])


def test_urbansound8k_folds_on_fake_layout(tmp_path):
    make_us8k(tmp_path)
    ds = create_dataset("urbansound8k", root=str(tmp_path), folds=[1, 2], sample_rate=8000)
    assert len(ds) == 4 and ds.labels == ["air_conditioner", "car_horn"]
    assert ds[0]["audio"].shape == (4 * 8000,)
    assert sorted(int(ds[i]["label"]) for i in range(4)) == [0, 0, 1, 1]


def test_manifest_round_trip_and_timeline(tmp_path):
    regions = make_smn_timeline(tmp_path / "t.wav", 12.0, segment_range=(2.0, 4.0))
    assert regions[0].start == 0 and regions[-1].stop == pytest.approx(12.0)
    assert all(a.label != b.label for a, b in zip(regions, regions[1:]))
    assert audio.info(tmp_path / "t.wav").frames == 12 * RATE
    assert read_manifest(write_manifest(tmp_path / "m.csv", regions)) == regions


def test_preparation_entry_points_and_recipe_stage(tmp_path, capsys):
    from sepaudio.classify import main as classify_main

    def prepare(argv):
        return classify_main(["prepare", *argv])

    make_esc50(tmp_path / "esc50")
    assert prepare(["esc50", str(tmp_path / "esc50")]) == 0
    assert "10 clips, 3 classes; clips per fold: {1: 2, 2: 2, 3: 2, 4: 2, 5: 2}" in capsys.readouterr().out
    assert prepare(["urbansound8k", str(tmp_path / "nowhere")]) == 2
    make_musan(tmp_path / "musan", files_per_class=4)
    assert prepare(["musan", str(tmp_path / "musan"), str(tmp_path / "lists")]) == 0
    assert len(read_manifest(tmp_path / "lists" / "train.csv")) == 3 * 2
    # the recipes' preparation stage runs the same entry point (us8k_esresnet runs esc50_esresnet's script)
    make_us8k(tmp_path / "us8k")
    recipe = RECIPES / "us8k_esresnet" / "run.sh"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(recipe), "--stop-stage", "0", "--root", str(tmp_path / "us8k")],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "UrbanSound8K: 12 clips, 2 classes" in result.stdout



@pytest.mark.parametrize("recipe, make, overrides", [
    ("esc50_esresnet", make_esc50, ["data.train.root={root}", "data.valid.root={root}"]),
    ("us8k_esresnet", make_us8k, ["data.train.root={root}", "data.valid.root={root}"]),
    ("smn_musan", None, ["data.train.manifests={root}", "data.valid.manifests={root}"]),
])
def test_recipe_configs_build_and_train_one_step(tmp_path, recipe, make, overrides):
    """Each recipe's conf.yml builds its model, loss and data (on a fake layout) and takes one training step."""
    from sepaudio.train import build, load_config

    root = tmp_path / "corpus"
    if make is None:
        make_musan(tmp_path / "musan", files_per_class=4)
        prepare_musan(tmp_path / "musan", root)
    else:
        root.mkdir()
        make(root)
    small = ["model.args.backbone_args.pretrained=false", "data.batch_size=2", "data.num_workers=0",
             "data.train.clip_seconds=0.5", "data.valid.clip_seconds=0.5", "data.train.folds=[1, 2, 3]",
             "data.valid.folds=[4]"] if make else ["data.batch_size=2", "data.num_workers=0"]
    config = load_config(RECIPES / recipe / "conf.yml", [o.format(root=root) for o in overrides] + small)
    model, loss, train_loader, _ = build(config)
    batch = next(iter(train_loader))
    assert int(batch["label"].max()) < model.num_classes
    value, logs = loss(model(*[batch[k] for k in model.input_keys]), batch)
    value.backward()
    assert torch.isfinite(value) and "accuracy" in logs
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
