"""What training draws: the random crops and mixtures of ``sepaudio train`` (``train()`` itself: its loaders from
``build``, Lightning's worker seeding from ``seed_everything(seed, workers=True)``, ``seed_process`` per rank, the
fork-server workers) are new in every epoch, differ between data workers and between items, and a resumed run draws
what the uninterrupted one drew; every module is in training mode in every training step (after the sanity
validation, the validations and the checkpoints) and in eval mode in validation. :class:`Recorder`, a callback given to
``train``, writes down every training item and the mode.

LibriMix: each file's first source is a ramp ``t / length``, so an item's first sample tells its crop offset.
Mixtures on the fly: an item's id is the seed its speakers, utterances, crops and gains were drawn from.
"""
from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch

from sepaudio import audio
from sepaudio.train import load_config, train

RATE, FILES, SECONDS, SEGMENT = 8000, 8, 1.0, 0.1
LENGTH = int(RATE * SECONDS)
TINY = {"n_filters": 16, "tcn": {"channels": 8, "hidden": 16, "skip_channels": 8, "blocks": 2, "repeats": 1}}


class Recorder(L.Callback):
    """Appends one JSON line per training item to ``path``: epoch, batch, id, (LibriMix) crop offset, and whether
    every module of the model was in training mode; and one line per validation batch with its mode."""

    def __init__(self, path: str):
        self.path = Path(path)

    def _write(self, *records: dict) -> None:
        with open(self.path, "a") as f:
            f.writelines(json.dumps(record) + "\n" for record in records)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        offsets = (batch["sources"][:, 0, 0] * LENGTH).round().long().tolist() if "speakers" not in batch else \
            [None] * len(batch["id"])
        training = all(module.training for module in pl_module.modules())
        self._write(*({"epoch": trainer.current_epoch, "batch": batch_idx, "id": item, "offset": offset,
                       "training": training} for item, offset in zip(batch["id"], offsets)))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._write({"validation": True, "sanity": trainer.sanity_checking,
                     "training": any(module.training for module in pl_module.modules())})


def librimix_csv(root: Path) -> Path:
    """A LibriMix metadata CSV of ``FILES`` mixtures of ``SECONDS`` each, all the same length (so that workers or
    epochs drawing from the same random state would pick the same offsets)."""
    rows = ["mixture_ID,mixture_path,source_1_path,source_2_path,length"]
    for k in range(FILES):
        ramp, level = torch.arange(LENGTH) / LENGTH, torch.full((LENGTH,), 0.01 * (k + 1))
        paths = [root / "train" / folder / f"m{k}.wav" for folder in ("mix_clean", "s1", "s2")]
        for path, wav in zip(paths, (ramp + level, ramp, level)):
            path.parent.mkdir(parents=True, exist_ok=True)
            audio.save(path, wav, RATE)
        rows.append(",".join([f"m{k}", *map(str, paths), str(LENGTH)]))
    csv = root / "metadata" / "mixture_train_mix_clean.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text("\n".join(rows) + "\n")
    return csv


@pytest.fixture(scope="module")
def datasets(mini_speech, tmp_path_factory) -> dict[str, dict]:
    csv = librimix_csv(tmp_path_factory.mktemp("librimix"))
    librimix = {"csv_path": str(csv), "sample_rate": RATE, "segment": SEGMENT}
    mixing = {"root": str(mini_speech), "sample_rate": RATE, "segment": SEGMENT, "length": FILES}
    return {"librimix": {"train": librimix, "valid": {**librimix, "seed": 0}},
            "mix_on_the_fly": {"train": mixing, "valid": {**mixing, "seed": 0}}}


def run(tmp_path: Path, name: str, dataset: str, data: dict, workers: int, epochs: int) -> list[dict]:
    """Train in ``tmp_path/name`` (resuming what is there) for ``epochs`` and return the records of this call."""
    record = tmp_path / f"{name}-{epochs}.jsonl"
    config = {"exp_dir": str(tmp_path / name), "seed": 3, "model": {"name": "conv_tasnet", "args": TINY},
              "data": {"name": dataset, "batch_size": 2, "num_workers": workers, **data},
              "loss": {"name": "pit_si_sdr"},
              "trainer": {"max_epochs": epochs, "accelerator": "cpu", "enable_progress_bar": False,
                          "enable_model_summary": False, "limit_val_batches": 1}}
    path = tmp_path / f"{name}.yml"
    path.write_text(json.dumps(config))
    train(load_config(path), callbacks=[Recorder(str(record))])
    records = [json.loads(line) for line in record.read_text().splitlines()]
    # every module trains in every training step (after the sanity validation, the validations and the
    # checkpoints of the epochs before) and none during validation
    assert any("validation" in r for r in records) and all(r["training"] for r in records if "epoch" in r)
    assert not any(r["training"] for r in records if "validation" in r)
    return [r for r in records if "epoch" in r]


def draws(records: list[dict], epoch: int) -> list[tuple]:
    return [(r["id"], r["offset"]) for r in records if r.get("epoch") == epoch]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("dataset", ["librimix", "mix_on_the_fly"])
def test_every_epoch_worker_and_item_draws_anew_and_a_resumed_run_draws_the_same(
        tmp_path, monkeypatch, datasets, dataset, workers):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    whole = run(tmp_path, "whole", dataset, datasets[dataset], workers, epochs=2)
    first, second = draws(whole, 0), draws(whole, 1)
    assert len(first) == len(second) == FILES  # every item of the epoch (batch 2, no partial batch)
    if dataset == "librimix":
        offsets = [offset for _, offset in first + second]
        assert all(0 <= o <= LENGTH - SEGMENT * RATE for o in offsets)
        assert sorted(i for i, _ in first) == sorted(i for i, _ in second) == [f"m{k}" for k in range(FILES)]
        assert len(set(offsets)) == len(offsets), f"crop offsets repeat across items or epochs: {first} {second}"
    else:  # the seed every mixture was drawn from: none repeats, in an epoch or across the two
        assert len({i for i, _ in first + second}) == 2 * FILES, f"mixtures repeat: {first} {second}"
    if workers:  # batch b comes from worker b % workers: their items differ position by position
        by_worker = [[r["offset"] if dataset == "librimix" else r["id"] for r in whole if r["batch"] % 2 == w]
                     for w in (0, 1)]
        assert by_worker[0] != by_worker[1] and not set(by_worker[0]) & set(by_worker[1])

    run(tmp_path, "resumed", dataset, datasets[dataset], workers, epochs=1)
    resumed = run(tmp_path, "resumed", dataset, datasets[dataset], workers, epochs=2)
    assert {r["epoch"] for r in resumed} == {1}
    assert draws(resumed, 1) == second  # the same items, crops and mixtures in the same order
