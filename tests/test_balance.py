"""Classification on imbalanced data: balance: none|sampler|weights, class_share, trainer.monitor, F1 logging."""
from __future__ import annotations

import collections
import csv

import pytest
import torch
import yaml

from sepaudio import audio
from sepaudio.config import check_arguments, load_config
from sepaudio.data.classification import ClipDataset
from sepaudio.data.registry import DATASETS
from sepaudio.data.smn_mini import LABELS
from sepaudio.errors import ConfigError
from sepaudio.losses import CrossEntropy
from sepaudio.plots import plot_training_curves
from sepaudio.train import train
from sepaudio.train.system import f1_scores

from fakes import tone

FILES = {"speech": 6, "music": 3, "noise": 1}  # clips of 0.5 s: 12, 6, 2


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """``root/{train,valid}/<class>/*.wav``: one second of a tone per file, a pitch per class; imbalanced."""
    root = tmp_path_factory.mktemp("imbalanced")
    for split in ("train", "valid"):
        for k, label in enumerate(LABELS):
            for i in range(FILES[label] if split == "train" else 2):
                wav = tone(1.0, level=0.05 * (i + 1), freq=220.0 * (k + 1) + 10 * i, rate=8000)
                audio.save(root / split / label / f"{label}_{i}.wav", wav, 8000)
    return root


def smn(corpus, **kwargs):
    return DATASETS.create("smn_mini", root=str(corpus), split="train", sample_rate=8000, clip_seconds=0.5,
                           overlap=0.0, **kwargs)


def test_class_weights_are_inverse_frequency(corpus):
    data = smn(corpus, balance="weights")
    assert data.class_counts() == {"speech": 12, "music": 6, "noise": 2}
    weights = data.class_weights()
    assert torch.allclose(weights, torch.tensor([20 / 36, 20 / 18, 20 / 6]))
    noise = next(i for i, clip in enumerate(data.clips) if clip[-1] == 2)
    assert data[noise]["weight"] == pytest.approx(20 / 6)
    assert "weight" not in smn(corpus)[0]  # balance: none adds nothing


def test_weights_follow_mixup(corpus):
    data = smn(corpus, balance="weights", mixup_alpha=0.4, seed=3)
    item = data[0]
    assert item["weight"] == pytest.approx(float((data.class_weights() * item["label"]).sum()))


def test_balanced_sampler_draws_every_class_equally(corpus):
    data = smn(corpus, balance="sampler")
    sampler = data.balanced_sampler(torch.Generator().manual_seed(0))
    counts = collections.Counter(data.clips[i][-1] for _ in range(150) for i in sampler)
    assert len(list(sampler)) == len(data)
    assert all(abs(counts[c] / (150 * len(data)) - 1 / 3) < 0.02 for c in range(3)), counts


def test_weighted_cross_entropy_is_torchs(corpus):
    logits, label = torch.randn(7, 3), torch.tensor([0, 1, 2, 2, 0, 1, 0])
    weights = torch.tensor([0.5, 1.0, 4.0])
    value, logs = CrossEntropy()(logits, {"label": label, "weight": weights[label]})
    assert value == pytest.approx(float(torch.nn.functional.cross_entropy(logits, label, weight=weights)), rel=1e-5)
    assert "accuracy" in logs
    plain = CrossEntropy()(logits, label)
    assert plain == pytest.approx(float(torch.nn.functional.cross_entropy(logits, label)), rel=1e-6)


def test_class_share_keeps_a_spread_share(corpus):
    data = smn(corpus, class_share={"speech": 0.2})
    counts = data.class_counts()
    assert counts["speech"] == 2 and counts["music"] == 6 and counts["noise"] == 2  # 2 of 10 clips
    files = {clip[0] for clip in data.clips if clip[-1] == 0}
    assert len(files) == 2  # the first and the last speech clips: different files
    for bad, match in [({"speech": 1.5}, "between 0 and 1"), ({"speech": 0}, "between 0 and 1"),
                       ({"birds": 0.1}, "no class 'birds'"), ({"speech": 0.6, "music": 0.5}, "add up"),
                       ({"speech": True}, "between 0 and 1")]:
        with pytest.raises(ValueError, match=match):
            smn(corpus, class_share=bad)


def test_bad_balance_is_refused_naming_the_key(corpus, tmp_path):
    with pytest.raises(ValueError, match="balance='maybe'"):
        smn(corpus, balance="maybe")
    with pytest.raises(ConfigError, match="balance='maybe' is not one of none, sampler, weights"):
        check_arguments(ClipDataset, {"balance": "maybe"}, "data.train")
    path = tmp_path / "c.yml"
    path.write_text(yaml.safe_dump({"model": {"name": "swishnet_slim"}, "loss": {"name": "cross_entropy"},
                                    "data": {"name": "smn_mini", "train": {"root": str(corpus)}}}))
    for override, key in [("data.train.balance=maybe", "data.train.balance"), ("data.train.balance=1",
                                                                                 "data.train.balance"),
                          ("trainer.monitor=val_accuracy", "trainer.monitor"), ("trainer.monitor=[1]",
                                                                               "trainer.monitor")]:
        with pytest.raises(ConfigError, match=key):
            load_config(path, [override])
    assert load_config(path, ["data.train.balance=sampler", "trainer.monitor=val_macro_f1"])


def test_f1_scores_from_stat_scores():
    stats = torch.tensor([[4, 1, 0, 0, 4], [0, 0, 0, 2, 2], [1, 1, 0, 0, 1]])  # tp, fp, tn, fn, support
    f1, macro = f1_scores(stats)
    assert torch.allclose(f1, torch.tensor([8 / 9, 0.0, 2 / 3]))
    assert macro == pytest.approx((8 / 9 + 2 / 3) / 3)


def classifier_config(corpus, exp_dir, **trainer):
    data = {"root": str(corpus), "sample_rate": 8000, "clip_seconds": 0.5, "overlap": 0.0}
    return {"exp_dir": str(exp_dir), "seed": 0,
            "model": {"name": "swishnet_slim", "args": {"sample_rate": 8000, "labels": list(LABELS)}},
            "data": {"name": "smn_mini", "train": {**data, "split": "train", "balance": "sampler"},
                     "valid": {**data, "split": "valid"}, "batch_size": 4, "num_workers": 0},
            "loss": {"name": "cross_entropy"},
            "trainer": {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False,
                        "enable_model_summary": False, "monitor": "val_macro_f1", **trainer}}


def test_balanced_run_selects_by_macro_f1(corpus, tmp_path):
    """A sampler-balanced run that max_steps ends in its second epoch logs (and draws) the F1 of every class, and
    keeps the checkpoint of the best macro F1."""
    exp = train(classifier_config(corpus, tmp_path / "exp", max_epochs=3, max_steps=7))  # 5 batches an epoch
    with open(exp / "logs" / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val_macro_f1")]
    assert len(rows) == 1 and {f"val_f1_{c}" for c in LABELS} <= set(rows[0])
    assert 0 <= float(rows[0]["val_macro_f1"]) <= 1
    best = torch.load(exp / "checkpoints" / "best.ckpt", weights_only=True)
    callback = next(v for k, v in best["callbacks"].items() if k.startswith("ModelCheckpoint{'monitor': "
                                                                             "'val_macro_f1'"))
    assert callback["best_model_score"] == pytest.approx(float(rows[0]["val_macro_f1"]))
    assert (exp / "model.pt").is_file() and (exp / "training_curves.png").stat().st_size > 1000


def test_monitor_not_logged_is_refused(mini_speech, tmp_path):
    model = {"name": "conv_tasnet", "args": {"n_filters": 16, "tcn": {"channels": 8, "hidden": 16, "skip_channels": 8,
                                                                      "blocks": 2, "repeats": 1}}}
    data = {"root": str(mini_speech), "segment": 0.25, "length": 8}
    config = {"exp_dir": str(tmp_path / "exp"), "model": model, "loss": {"name": "pit_si_sdr"},
              "data": {"name": "mix_on_the_fly", "train": data, "valid": data, "num_workers": 0},
              "trainer": {"monitor": "val_macro_f1", "accelerator": "cpu"}}
    with pytest.raises(ConfigError, match=r"trainer.monitor: a conv_tasnet run does not log val_macro_f1"):
        train(config)
    assert not (tmp_path / "exp").exists()


def test_training_curves_draw_f1(tmp_path):
    log = tmp_path / "metrics.csv"
    log.write_text("epoch,step,train_loss_epoch,val_loss,val_macro_f1,val_f1_a,val_f1_b\n"
                   ",0,,,,,\n0,4,0.9,,,,\n0,4,,0.8,0.5,0.7,0.3\n1,9,0.5,,,,\n1,9,,0.6,0.7,0.8,0.6\n")
    assert plot_training_curves(log, tmp_path / "curves.png").stat().st_size > 1000
