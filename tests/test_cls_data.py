"""Classification data: mini corpus, clip sampling, augmentation, MUSAN / ESC-50 / UrbanSound8K on fake layouts."""
from pathlib import Path

import numpy as np
import pytest
import torch

from fakes import fake_esc50, fake_musan, fake_us8k, tone
from sepaudio import DatasetError, audio
from sepaudio.data import create_dataset
from sepaudio.data.augment import mixup, random_gain
from sepaudio.nn import SpecAugment
from sepaudio.data.classification import (ClipDataset, Region, clip_starts, read_manifest, scan_class_folders,
                                          write_manifest)
from sepaudio.data.musan import prepare_musan, remove_silence
from sepaudio.data.smn_mini import LABELS, make_smn_mini_corpus, make_smn_timeline

RATE = 16000
RECIPES = Path(__file__).parent.parent / "recipes"


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


def test_remove_silence_keeps_the_loud_stretches(tmp_path):
    """librosa.effects.split against an absolute -50 dBFS threshold, block by block, gaps bridged across blocks."""
    wav = torch.cat([torch.zeros(RATE), tone(2.0), torch.zeros(RATE), tone(1.0), torch.zeros(RATE // 10)])
    wav[int(1.5 * RATE):int(1.7 * RATE)] = 0  # a 0.2 s gap: bridged
    audio.save(tmp_path / "x.wav", wav, RATE)
    for block in (60.0, 0.7):
        regions = remove_silence(tmp_path / "x.wav", "speech", block_seconds=block)
        assert [r.label for r in regions] == ["speech", "speech"]
        np.testing.assert_allclose([(r.start, r.stop) for r in regions], [(1.0, 3.0), (4.0, 5.0)], atol=0.015)
    quiet = torch.cat([torch.zeros(RATE), tone(2.0, level=10 ** (-60 / 20) * 2 ** 0.5)])  # RMS -60 dBFS
    audio.save(tmp_path / "quiet.wav", quiet, RATE)
    assert remove_silence(tmp_path / "quiet.wav", "music") == []
    assert len(remove_silence(tmp_path / "quiet.wav", "music", silence_db=-70.0)) == 1


def test_musan_preparation_on_fake_layout(tmp_path):
    fake_musan(tmp_path / "musan")
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


def test_esc50_folds_on_fake_layout(tmp_path):
    fake_esc50(tmp_path)
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


def test_urbansound8k_folds_on_fake_layout(tmp_path):
    fake_us8k(tmp_path)
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


def test_prepare_command(tmp_path, capsys):
    from sepaudio.cli import main

    def prepare(argv):
        return main(["prepare", *argv])

    fake_esc50(tmp_path / "esc50")
    assert prepare(["esc50", str(tmp_path / "esc50")]) == 0
    assert "10 clips, 3 classes; clips per fold: {1: 2, 2: 2, 3: 2, 4: 2, 5: 2}" in capsys.readouterr().out
    assert prepare(["urbansound8k", str(tmp_path / "nowhere")]) == 2
    fake_musan(tmp_path / "musan", files_per_class=4)
    assert prepare(["musan", str(tmp_path / "musan"), str(tmp_path / "lists")]) == 0
    assert len(read_manifest(tmp_path / "lists" / "train.csv")) == 3 * 2
    # stage 0 of the recipes runs this command: tests/test_recipes.py



@pytest.mark.parametrize("recipe, make, overrides", [
    ("esc50_esresnet", fake_esc50, ["data.train.root={root}", "data.valid.root={root}"]),
    ("us8k_esresnet", fake_us8k, ["data.train.root={root}", "data.valid.root={root}"]),
    ("smn_musan", None, ["data.train.manifests={root}", "data.valid.manifests={root}"]),
])
def test_recipe_configs_build_and_train_one_step(tmp_path, recipe, make, overrides):
    """Each recipe's conf.yml builds its model, loss and data (on a fake layout) and takes one training step."""
    from sepaudio.train import build, load_config

    root = tmp_path / "corpus"
    if make is None:
        fake_musan(tmp_path / "musan", files_per_class=4)
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
