"""Distributed training as users run it: ``sepaudio train CONFIG trainer.accelerator=cpu trainer.devices=2`` (DDP
over gloo; Lightning starts rank 1 by running the same console command again).

For separation, extraction (i-vector and learned encoder) and classification: both ranks finish, see different items
in every epoch, agree on the learning rate and early stopping, and end with the same weights; the run's files are
written once, whole. A two-process run killed mid-epoch resumes to exactly the weights, and the items, of an
uninterrupted one. :class:`Probe`, a Lightning callback named in the config (registered as an entry point), records what each rank saw.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

import sepaudio
from sepaudio import audio
from sepaudio.data import scan_speakers
from sepaudio.data.extraction import write_extraction_list
from sepaudio.data.smn_mini import make_smn_mini_corpus
from sepaudio.speaker import train_ivector_extractor
from sepaudio.train import load_config, train

SEPAUDIO = Path(sys.executable).parent / "sepaudio"  # the installed console script
TCN = {"channels": 8, "hidden": 16, "skip_channels": 8, "blocks": 2, "repeats": 1}
EXPECTED_FILES = [".sepaudio-run.json", "README.md", "checkpoints/best.ckpt", "checkpoints/last.ckpt", "config.yaml",
                  "logs/metrics.csv", "model.pt", "training_curves.png"]


class Probe(L.Callback):
    """Writes ``out/rank<r>.json`` (the ids of the training items of every epoch; learning rate, validation loss
    and early-stopping count at the start of each epoch and at the end) and ``out/rank<r>.pt`` (the final weights).

    Args:
        out: folder for the records.
        crash_in_epoch: rank 0 SIGKILLs its process group (itself and rank 1) at the second batch of this epoch.
    """

    def __init__(self, out: str, crash_in_epoch: int | None = None):
        self.out, self.crash_in_epoch = Path(out), crash_in_epoch
        self.items: dict[int, list[str]] = {}
        self.epochs: list[dict] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == self.crash_in_epoch and batch_idx == 1 and trainer.is_global_zero:
            os.killpg(os.getpgrp(), signal.SIGKILL)
        self.items.setdefault(trainer.current_epoch, []).extend(batch["id"])

    def _state(self, trainer) -> dict:
        val = trainer.callback_metrics.get("val_loss")
        return {"lr": trainer.optimizers[0].param_groups[0]["lr"], "val_loss": None if val is None else float(val),
                "wait": trainer.early_stopping_callback.wait_count, "stop": trainer.should_stop}

    def on_train_epoch_start(self, trainer, pl_module):
        self.epochs.append(self._state(trainer))

    def on_fit_end(self, trainer, pl_module):
        self.out.mkdir(parents=True, exist_ok=True)
        rank = trainer.global_rank
        record = {"rank": rank, "world_size": trainer.world_size, "items": self.items,
                  "epochs": [*self.epochs, self._state(trainer)]}
        (self.out / f"rank{rank}.json").write_text(json.dumps(record))
        torch.save(pl_module.state_dict(), self.out / f"rank{rank}.pt")


def plugin_path(folder: Path) -> Path:
    """A folder that, on ``PYTHONPATH``, installs :class:`Probe` as the ``probe`` callback: an entry point of the
    ``sepaudio.callbacks`` group, the way a package registers callbacks that configs can name."""
    info = folder / "sepaudio_probe-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sepaudio-probe\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[sepaudio.callbacks]\nprobe = test_ddp:Probe\n")
    return folder


def launch(config: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``sepaudio train`` with two CPU processes, in a process group of its own; rank 0 picks a free port (tests may
    run two of these at once)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PL_") and k != "MASTER_PORT"}
    plugins = plugin_path(config.parent / "plugins")
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), str(plugins),
                                                                env.get("PYTHONPATH", "")]))
    return subprocess.run([str(SEPAUDIO), "train", str(config), "trainer.accelerator=cpu", "trainer.devices=2",
                           *overrides], env=env, capture_output=True, text=True, timeout=300, start_new_session=True)


def probe_override(out: Path, crash_in_epoch: int | None = None) -> str:
    spec = {"name": "probe", "args": {"out": str(out), "crash_in_epoch": crash_in_epoch}}
    return "trainer.callbacks=" + json.dumps([spec])


# The runs are shared: under pytest-xdist the tests that read the separation run go to one worker, and the fixtures
# live for the session, so a worker never trains one twice.
SHARED_RUN = pytest.mark.xdist_group("ddp_separation")


@pytest.fixture(scope="session")
def configs(mini_speech, tmp_path_factory) -> dict[str, Path]:
    """One tiny two-epoch config per task (a few steps per rank)."""
    work = tmp_path_factory.mktemp("ddp")
    utterances = scan_speakers(mini_speech)
    extractor = train_ivector_extractor([audio.load(p)[0][0] for paths in utterances.values() for p in paths], 8000,
                                        n_components=4, rank=6, tv_iterations=2, progress=False)
    extractor.save(work / "ivector.pt")
    smn = make_smn_mini_corpus(work / "smn", seconds=1.0, files={"train": 3, "valid": 1})
    common = {"seed": 1, "optim": {"lr": 0.005, "plateau_patience": 0},
              "trainer": {"max_epochs": 2, "early_stop_patience": 1, "enable_progress_bar": False,
                          "enable_model_summary": False, "log_every_n_steps": 1}}
    mixing = {"root": str(mini_speech), "segment": 0.25}
    enrolled = {**mixing, "dataset": "mix_on_the_fly", "extractor": str(work / "ivector.pt"), "enrollment": True}
    extraction = {"list_path": str(extraction_list(utterances, work / "extraction")), "segment": 0.25}
    smn_data = {"root": str(smn), "clip_seconds": 0.5, "overlap": 0.0}
    tasks = {
        "separation": {
            "model": {"name": "conv_tasnet", "args": {"n_filters": 16, "tcn": TCN}},
            "data": {"name": "mix_on_the_fly", "batch_size": 4, "train": {**mixing, "length": 16},
                     "valid": {**mixing, "length": 8, "seed": 0}},
            "loss": {"name": "pit_si_sdr"}},
        "extraction_ivector": {
            "model": {"name": "tsenet", "args": {"n_filters": 16, "tcn": TCN, "ivector_dim": extractor.dim,
                                                 "speaker_dim": 8}},
            "data": {"name": "with_ivectors", "batch_size": 4, "num_workers": 1,
                     "train": {**enrolled, "length": 16}, "valid": {**enrolled, "length": 8, "seed": 0}},
            "loss": {"name": "si_sdr"}},
        "extraction_encoder": {
            "model": {"name": "tsenet", "args": {"n_filters": 16, "tcn": TCN, "conditioning": "encoder",
                                                 "speaker_dim": 8, "speaker_channels": 8, "speaker_blocks": 1,
                                                 "n_speakers": 4}},
            "data": {"name": "extraction_list", "batch_size": 4, "train": extraction,
                     "valid": {**extraction, "seed": 0}},
            "loss": {"name": "si_sdr_speaker"}},
        "classification": {
            "model": {"name": "spectrogram_classifier",
                      "args": {"backbone": "mobilenet_v1_025", "labels": ["speech", "music", "noise"],
                               "frontend_args": {"n_mels": 32},
                               "spec_augment": {"freq_masks": 1, "freq_width": 4, "time_masks": 1, "time_width": 4}}},
            "data": {"name": "smn_mini", "batch_size": 4,
                     "train": {**smn_data, "split": "train", "gain_db": 6.0, "mixup_alpha": 0.4},
                     "valid": {**smn_data, "split": "valid"}},
            "loss": {"name": "cross_entropy"}},
    }
    paths = {}
    for task, config in tasks.items():
        paths[task] = work / f"{task}.yml"
        paths[task].write_text(yaml.safe_dump({**common, **config, "exp_dir": str(work / task)}))
    return paths


def extraction_list(utterances: dict[str, list[Path]], out: Path) -> Path:
    """Eight mixtures of two speakers' utterances as a ``mixture target enrollment speaker`` list."""
    names, items = sorted(utterances), []
    for i in range(8):
        target, other = names[i % 4], names[(i + 1) % 4]
        a, b = audio.load(utterances[target][i % 3])[0][0], audio.load(utterances[other][i % 3])[0][0]
        length = min(a.shape[0], b.shape[0])
        mixture = audio.save(out / f"mix{i}.wav", a[:length] + b[:length], 8000)
        items.append({"mixture": mixture, "target": utterances[target][i % 3],
                      "enrollment": utterances[target][3 + i % 3], "speaker": target})
    return write_extraction_list(out / "train.txt", items)


@pytest.fixture(scope="session")
def trained(configs):
    """``trained(task)``: the experiment folder of ``task``'s two-process run (run once)."""
    runs: dict[str, Path] = {}

    def run(task: str) -> Path:
        if task not in runs:
            exp = Path(yaml.safe_load(configs[task].read_text())["exp_dir"])
            result = launch(configs[task], probe_override(exp.parent / f"{task}_probe"))
            assert result.returncode == 0, result.stderr[-3000:]
            runs[task] = exp
        return runs[task]

    return run


def ranks(probe: Path) -> list[dict]:
    return [json.loads((probe / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("task", [pytest.param("separation", marks=SHARED_RUN), "extraction_ivector",
                                  "extraction_encoder", "classification"])
def test_two_processes(trained, task):
    exp = trained(task)
    probe = exp.parent / f"{task}_probe"
    first, second = ranks(probe)
    assert (first["rank"], second["rank"], first["world_size"]) == (0, 1, 2)  # both ranks finished
    for epoch in ("0", "1"):  # every rank its own share of the epoch, and another share every epoch
        seen = [set(r["items"][epoch]) for r in (first, second)]
        assert seen[0] and seen[1] and not seen[0] & seen[1], f"epoch {epoch}: both ranks saw {seen[0] & seen[1]}"
    assert first["items"]["0"] != first["items"]["1"]
    # the learning rate (plateau scheduler), validation loss and early stopping agree; so do the weights
    assert first["epochs"] == second["epochs"]
    weights = [torch.load(probe / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])

    # files: one of each, whole (the checkpoint holds the final weights and both ranks' random states)
    files = sorted(str(p.relative_to(exp)) for p in exp.rglob("*") if p.is_file() and "tensorboard" not in p.parts)
    # an i-vector TseNet's folder carries its extractor (the model card's ivector_extractor)
    assert files == sorted(EXPECTED_FILES + ["ivector.pt"] * (task == "extraction_ivector"))
    last = torch.load(exp / "checkpoints" / "last.ckpt", weights_only=True)
    assert all(torch.equal(last["state_dict"][k], weights[0][k]) for k in weights[0])
    assert len(last["rng"]) == 2 and not torch.equal(last["rng"][0]["torch"], last["rng"][1]["torch"])
    assert yaml.safe_load((exp / "config.yaml").read_text())["trainer"]["devices"] == 2
    assert len(val_losses(exp)) == 2  # one row per epoch
    assert sepaudio.load_model(exp / "model.pt").num_parameters > 0


@pytest.mark.slow
@SHARED_RUN
def test_killed_two_process_run_resumes_exactly(configs, trained, tmp_path):
    """SIGKILL both ranks in the second epoch, run the same command again: the same items and final weights as the
    uninterrupted two-process run."""
    whole = trained("separation")
    config = yaml.safe_load(configs["separation"].read_text())
    config["exp_dir"] = str(tmp_path / "killed")
    path = tmp_path / "killed.yml"
    path.write_text(yaml.safe_dump(config))
    crashed = launch(path, probe_override(tmp_path / "crashed", crash_in_epoch=1))
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    assert torch.load(tmp_path / "killed" / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    assert not (tmp_path / "killed" / "model.pt").exists()

    resumed = launch(path, probe_override(tmp_path / "resumed"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.count("Resuming from") == 1  # rank 0 says it
    for a, b in zip(ranks(whole.parent / "separation_probe"), ranks(tmp_path / "resumed")):
        assert a["items"]["1"] == b["items"]["1"]  # each rank draws, after the resume, what it drew before
        assert a["epochs"][-1] == b["epochs"][-1]  # learning rate, validation loss, early stopping
    a, b = (torch.load(exp / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
            for exp in (whole, tmp_path / "killed"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert val_losses(whole) == val_losses(tmp_path / "killed")


def val_losses(exp: Path) -> list[str]:
    with open(exp / "logs" / "metrics.csv") as f:
        return [row["val_loss"] for row in csv.DictReader(f) if row.get("val_loss")]


@pytest.mark.slow
@SHARED_RUN
def test_a_two_process_run_resumes_on_one(configs, trained, tmp_path):
    """With another number of processes the run goes on, with fresh random draws and a warning."""
    shutil.copytree(trained("separation"), tmp_path / "exp")
    overrides = [f"exp_dir={tmp_path / 'exp'}", "trainer.max_epochs=3", "trainer.accelerator=cpu", "trainer.devices=1"]
    with pytest.warns(UserWarning, match="no random state for 1 process"):
        exp = train(load_config(configs["separation"], overrides))
    assert torch.load(exp / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 2
