import csv
import gc
import os
import signal
import subprocess
import sys
import time
import weakref

import pytest
import torch
import yaml

import sepaudio
from sepaudio.data import OnTheFlyMixtures
from sepaudio.data.registry import DATASETS
from sepaudio.errors import ConfigError, DatasetError
from sepaudio.train import CSVLog, build, keep_log, load_config, train

TINY_MODEL = {"name": "conv_tasnet", "args": {"n_filters": 16, "tcn": {"channels": 8, "hidden": 16, "skip_channels": 8,
                                                                       "blocks": 2, "repeats": 1}}}


def write_config(path, root, exp_dir, optim=None, **trainer):
    config = {
        "exp_dir": str(exp_dir),
        "seed": 1,
        "model": TINY_MODEL,
        "data": {"name": "mix_on_the_fly", "batch_size": 4,
                 "train": {"root": str(root), "segment": 0.25, "length": 32},
                 "valid": {"root": str(root), "segment": 0.25, "length": 8, "seed": 0}},
        "loss": {"name": "pit_si_sdr"},
        "optim": {"lr": 0.005, **(optim or {})},
        "trainer": {"max_epochs": 3, "enable_progress_bar": False, "log_every_n_steps": 1, **trainer},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_overrides_and_defaults(tmp_path, mini_speech):
    path = write_config(tmp_path / "c.yml", mini_speech, tmp_path / "exp")
    config = load_config(path, ["optim.lr=2e-4", "trainer.max_epochs=7", "data.train.snr_range=[0, 1]"])
    assert config["optim"]["lr"] == 2e-4 and config["trainer"]["max_epochs"] == 7
    assert config["data"]["train"]["snr_range"] == [0, 1]
    with pytest.raises(ConfigError, match="unknown key 'new'"):  # a key nothing reads is an error
        load_config(path, ["new.key=x"])
    assert config["optim"]["plateau_patience"] == 3  # default filled in
    assert config["trainer"]["gradient_clip_val"] == 5.0


def test_config_errors(tmp_path, mini_speech):
    with pytest.raises(ConfigError, match="no such config"):
        load_config(tmp_path / "none.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("model: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("data: {name: x}\nloss: {name: si_sdr}\n")
    with pytest.raises(ConfigError, match="'model' needs a 'name'"):
        load_config(bad)
    path = write_config(tmp_path / "c.yml", mini_speech, tmp_path / "exp")
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(path, ["optim.lr"])
    with pytest.raises(ConfigError, match="model: .*unknown model 'nope'"):
        train(load_config(path, ["model.name=nope"]))
    with pytest.raises(ConfigError, match="model: .*unexpected keyword"):
        train(load_config(path, ["model.args.wings=2"]))
    with pytest.raises(ConfigError, match="unknown key 'trainer.warp_speed'"):
        train(load_config(path, ["trainer.warp_speed=9"]))
    with pytest.raises(DatasetError, match="missing: no such folder"):
        train(load_config(path, [f"data.train.root={tmp_path / 'missing'}"]))
    with pytest.raises(ConfigError, match=r"trainer.callbacks\[0\]: class_path 'nowhere.Nothing' would import"):
        load_config(path, ["trainer.callbacks=[{class_path: nowhere.Nothing}]"])
    with pytest.raises(ConfigError, match="unknown callback 'nothing'; known: .*timer"):
        train(load_config(path, ["trainer.callbacks=[{name: nothing}]"]))


def test_only_the_configs_mistakes_are_config_errors(tmp_path, mini_speech, monkeypatch):
    """A wrong argument name is a ConfigError, also one a dataset passes on through ``**kwargs``; a KeyError or
    TypeError raised inside a constructor (a bug) propagates as it is."""
    def passes_on(root, **kwargs):
        return OnTheFlyMixtures(root, **kwargs)

    def key_bug(root, **kwargs):
        return {}["oops"]

    def type_bug(root, **kwargs):
        return OnTheFlyMixtures(root, lenght=3)

    for name, factory in (("passes_on", passes_on), ("key_bug", key_bug), ("type_bug", type_bug)):
        monkeypatch.setitem(DATASETS._entries, name, factory)
    path = write_config(tmp_path / "c.yml", mini_speech, tmp_path / "exp")
    with pytest.raises(ConfigError, match="data.train: .*'segmnt'"):
        build(load_config(path, ["data.name=passes_on", "data.train.segmnt=1"]))
    with pytest.raises(ConfigError, match="data.train: .*'segmnt'"):
        build(load_config(path, ["data.name=mix_on_the_fly", "data.train.segmnt=1"]))
    assert build(load_config(path, ["data.name=passes_on"]))[2].dataset.length == 32
    with pytest.raises(KeyError, match="oops"):
        build(load_config(path, ["data.name=key_bug"]))
    with pytest.raises(TypeError, match="lenght"):
        build(load_config(path, ["data.name=type_bug"]))


def test_mixing_dataset_is_freed(mini_speech):
    """Its cache of loaded files goes with it (an ``lru_cache`` on the method kept every dataset alive)."""
    data = OnTheFlyMixtures(mini_speech, segment=0.25, length=4)
    assert data[0]["mixture"].shape == (2000,)
    ref = weakref.ref(data)
    del data
    gc.collect()
    assert ref() is None


@pytest.mark.slow
def test_train_end_to_end(tmp_path, mini_speech):
    exp = train(load_config(write_config(tmp_path / "c.yml", mini_speech, tmp_path / "exp")))
    for name in ("config.yaml", "model.pt", "training_curves.png", "logs/metrics.csv", "checkpoints/last.ckpt",
                 "checkpoints/best.ckpt"):
        assert (exp / name).exists(), name
    model = sepaudio.load_model(exp / "model.pt")
    assert model.model_args["tcn"]["blocks"] == 2
    assert yaml.safe_load((exp / "config.yaml").read_text())["optim"]["lr"] == 0.005
    val = [loss for _, loss in val_losses(exp)]
    assert len(val) == 3 and min(val[1:]) < val[0]  # it learns
    # the checkpoint also loads as a model, equal to the best one
    again = sepaudio.load_model(exp / "checkpoints" / "best.ckpt")
    x = torch.randn(1, 800)
    assert torch.equal(again(x), model(x))


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["plateau", "cosine"])
def test_killed_run_resumes_exactly(tmp_path, mini_speech, capsys, monkeypatch, schedule):
    """SIGKILL a training process after its first checkpoint, resume, and end where an uninterrupted run ends (with
    each learning-rate schedule: the cosine one is stepped every batch)."""
    threads = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # train() takes its threads from it: the killed process's arithmetic
    torch.set_num_threads(1)
    try:
        _killed_then_resumed(tmp_path, mini_speech, capsys, {"schedule": schedule})
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_resumed_run_keeps_the_plateau_step(tmp_path, mini_speech):
    """The learning rate halves after a validation without improvement, also when the run resumes right after it
    (Lightning would step a plateau scheduler after the checkpoint, and not for the epoch a run resumes from)."""
    def run(name, *overrides):
        conf = write_config(tmp_path / f"{name}.yml", mini_speech, tmp_path / name, max_epochs=3)
        exp = train(load_config(conf, ["optim.lr=1e-7", "optim.plateau_patience=0", *overrides]))  # no progress
        return torch.load(exp / "checkpoints" / "last.ckpt", weights_only=True)["optimizer_states"][0]

    whole = run("whole")["param_groups"][0]["lr"]
    run("resumed", "trainer.max_epochs=1")
    assert run("resumed")["param_groups"][0]["lr"] == whole == pytest.approx(2.5e-8)  # halved after epochs 1, 2


@pytest.mark.slow
def test_cosine_schedule_anneals_to_zero_and_resumes(tmp_path, mini_speech):
    """``optim.schedule=cosine``: the rate falls every step from ``lr`` to 0 at the last step of ``max_epochs``, with
    no plateau step (a killed run resumes on the same curve: ``test_killed_run_resumes_exactly``)."""
    def run(name, *overrides):
        conf = write_config(tmp_path / f"{name}.yml", mini_speech, tmp_path / name, max_epochs=3)
        exp = train(load_config(conf, ["optim.schedule=cosine", "optim.plateau_patience=0", *overrides]))
        return exp, torch.load(exp / "checkpoints" / "last.ckpt", weights_only=True)

    exp, whole = run("whole")
    rates = [float(row["lr-Adam"]) for row in csv.DictReader(open(exp / "logs" / "metrics.csv")) if row["lr-Adam"]]
    steps = 3 * 32 // 4
    assert rates[0] == pytest.approx(0.005) and len(rates) == steps
    assert all(later < earlier for earlier, later in zip(rates, rates[1:]))
    assert rates[steps // 2] == pytest.approx(0.0025, rel=0.05)  # half way: half the rate
    assert whole["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ConfigError, match="optim.schedule=cosine .* set trainer.max_epochs"):
        train(load_config(write_config(tmp_path / "c.yml", mini_speech, tmp_path / "c"),
                          ["optim.schedule=cosine", "trainer.max_epochs=-1"]))
    with pytest.raises(ConfigError, match="optim.schedule='linear' cannot work; give one of plateau, cosine"):
        train(load_config(write_config(tmp_path / "c.yml", mini_speech, tmp_path / "c"), ["optim.schedule=linear"]))


def _killed_then_resumed(tmp_path, mini_speech, capsys, optim):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    train(load_config(write_config(tmp_path / "whole.yml", mini_speech, tmp_path / "whole", optim, max_epochs=4)))

    conf = write_config(tmp_path / "killed.yml", mini_speech, tmp_path / "killed", optim, max_epochs=4)
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen([sys.executable, "-m", "sepaudio", "train", str(conf)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "model.pt").exists()
    epoch = torch.load(last, weights_only=True)["epoch"]
    assert epoch < 3  # killed before the last epoch

    capsys.readouterr()
    train(load_config(conf))
    assert "Resuming from" in capsys.readouterr().out
    a = sepaudio.load_model(tmp_path / "whole" / "model.pt").state_dict()
    b = sepaudio.load_model(tmp_path / "killed" / "model.pt").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert val_losses(tmp_path / "whole") == val_losses(tmp_path / "killed")  # the log kept the first epochs


def test_losses_of_a_bf16_mixed_step_are_in_float32(mini_speech):
    """Under ``trainer.precision=bf16-mixed`` the network's output is bfloat16; the loss gets it as float32 (SI-SDR
    of bfloat16 signals is rounded too coarsely to train on)."""
    from sepaudio.train import TrainingSystem

    seen = []

    class Spy(torch.nn.Module):
        def forward(self, output, batch):
            seen.append(output.dtype)
            return output.float().pow(2).mean(), {}

    model = sepaudio.models.create_model(TINY_MODEL["name"], **TINY_MODEL["args"])
    system = TrainingSystem(model, Spy(), {}, seed=0)
    system.log = lambda *args, **kwargs: None
    batch = OnTheFlyMixtures(mini_speech, segment=0.25, length=2)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(batch["mixture"][None]).dtype == torch.bfloat16
        system._step({k: v[None] for k, v in batch.items() if torch.is_tensor(v)}, "train")
    assert seen == [torch.float32]


def test_bf16_mixed_on_a_cpu_without_bf16_warns(tmp_path, mini_speech, monkeypatch):
    """bf16-mixed still trains on a CPU without bfloat16 instructions, but says that it is emulated and slow there."""
    monkeypatch.setattr(sepaudio.train.run, "cpu_has_bf16", lambda: False)
    path = write_config(tmp_path / "c.yml", mini_speech, tmp_path / "exp", max_epochs=1, precision="bf16-mixed")
    with pytest.warns(UserWarning, match="without bfloat16 instructions.*trainer.precision=32-true"):
        assert train(load_config(path)) == tmp_path / "exp"
    assert (tmp_path / "exp" / "model.pt").is_file()


def test_keep_log_trims_to_the_checkpoint(tmp_path):
    """A resumed run keeps the log rows before its checkpoint, also when a kill cut the last line short; a fresh
    run in a folder with an old log starts a new one; new columns are added to the kept rows."""
    log = tmp_path / "logs" / "metrics.csv"
    log.parent.mkdir()
    log.write_text("epoch,step,val_loss\n0,3,1.5\n1,7,1.25\n2,11,1.")  # the last line was being written
    checkpoint = tmp_path / "last.ckpt"
    torch.save({"global_step": 8}, checkpoint)
    logger = CSVLog(tmp_path, name="logs", version="")
    keep_log(logger, checkpoint)
    assert log.read_text() == "epoch,step,val_loss\n0,3,1.5\n1,7,1.25\n"
    logger.log_metrics({"epoch": 2, "val_loss": 1.0, "lr-Adam": 0.5}, step=11)
    logger.save()
    assert list(csv.DictReader(open(log))) == [
        {"epoch": "0", "lr-Adam": "", "step": "3", "val_loss": "1.5"},
        {"epoch": "1", "lr-Adam": "", "step": "7", "val_loss": "1.25"},
        {"epoch": "2", "lr-Adam": "0.5", "step": "11", "val_loss": "1.0"}]
    keep_log(CSVLog(tmp_path, name="logs", version=""), None)
    assert not log.exists()
    log.write_bytes(b"\xff\xfe not a log")  # a damaged log is moved aside, not deleted, and training goes on
    keep_log(CSVLog(tmp_path, name="logs", version=""), checkpoint)
    assert not log.exists() and log.with_name("metrics.csv.unreadable").read_bytes() == b"\xff\xfe not a log"


def val_losses(exp):
    with open(exp / "logs" / "metrics.csv") as f:
        return [(r["epoch"], round(float(r["val_loss"]), 4)) for r in csv.DictReader(f) if r.get("val_loss")]
