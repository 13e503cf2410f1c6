"""Configs are data and run folders are sepaudio's: a config never imports or calls code, YAML is read within
bounds, ``exp_dir`` never replaces a user's files, one training writes into a run folder at a time, signals end a
training with 130 / 143 after a resumable checkpoint, and a failed checkpoint write keeps the previous one."""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from sepaudio.config import MAX_DEPTH, load_config, parse_yaml
from sepaudio.errors import ConfigError
from sepaudio.rundir import LOCK, MARKER, claim_run_dir, run_lock
from sepaudio.train.callbacks import AtomicCheckpointIO, callback_factory
from sepaudio.train.run import _callbacks

SEPAUDIO = Path(sys.executable).parent / "sepaudio"
TINY = {"name": "conv_tasnet", "args": {"n_filters": 16, "tcn": {"channels": 8, "hidden": 16, "skip_channels": 8,
                                                                 "blocks": 2, "repeats": 1}}}


def config_file(path: Path, root: Path, exp_dir: Path | str, epochs: int = 1, length: int = 8) -> Path:
    path.write_text(yaml.safe_dump({
        "exp_dir": str(exp_dir), "seed": 0, "model": TINY,
        "data": {"name": "mix_on_the_fly", "batch_size": 2, "num_workers": 0,
                 "train": {"root": str(root), "segment": 0.25, "length": length},
                 "valid": {"root": str(root), "segment": 0.25, "length": 2, "seed": 0}},
        "loss": {"name": "pit_si_sdr"},
        "trainer": {"max_epochs": epochs, "accelerator": "cpu", "enable_progress_bar": False,
                    "enable_model_summary": False}}))
    return path


def run_cli(*args: str, cwd: Path | None = None, memory_mib: int | None = None, timeout: float = 120):
    def cap():
        if memory_mib:
            resource.setrlimit(resource.RLIMIT_AS, (memory_mib << 20, memory_mib << 20))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(SEPAUDIO), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env, preexec_fn=cap)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- configs are data ---------------------------------------------------------------------------------------------

def test_a_config_cannot_import_or_call_code(tmp_path, mini_speech):
    conf = config_file(tmp_path / "c.yml", mini_speech, tmp_path / "exp")
    marker = tmp_path / "PWNED"
    spec = json.dumps([{"class_path": "os.system", "init_args": {"command": f"touch {marker}"}}])
    result = run_cli("train", str(conf), f"trainer.callbacks={spec}")
    assert result.returncode == 2, result.stderr
    assert "class_path 'os.system' would import Python code" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists() and not (tmp_path / "exp").exists()


@pytest.mark.parametrize("override, words", [
    ("trainer.strategy={class_path: os.system}", ["trainer.strategy", "plain value"]),
    ("trainer.logger=true", ["trainer.logger", "set by sepaudio"]),
    ("trainer.plugins=[x]", ["trainer.plugins", "set by sepaudio"]),
    ("trainer.callbacks={name: timer}", ["trainer.callbacks", "list"]),
    ("trainer.callbacks=[{name: timer, init_args: {}}]", ["trainer.callbacks[0]", "name: NAME"]),
    ("trainer.callbacks=[timer]", ["trainer.callbacks[0]"]),
])
def test_trainer_section_takes_plain_values_and_named_callbacks(tmp_path, mini_speech, override, words):
    conf = config_file(tmp_path / "c.yml", mini_speech, tmp_path / "exp")
    with pytest.raises(ConfigError) as err:
        load_config(conf, [override])
    assert all(w in str(err.value) for w in words), str(err.value)


def test_callbacks_are_built_by_registered_name(tmp_path):
    timer, = _callbacks([{"name": "timer", "args": {"duration": "00:00:01:00"}}])
    assert type(timer).__name__ == "Timer"
    with pytest.raises(ConfigError, match="unknown callback 'nope'; known: .*stochastic_weight_averaging"):
        _callbacks([{"name": "nope"}])
    with pytest.raises(ConfigError, match="trainer.callbacks: timer"):
        _callbacks([{"name": "timer", "args": {"durationn": 1}}])


def test_an_installed_package_registers_callbacks_by_entry_point(tmp_path, monkeypatch):
    info = tmp_path / "demo_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[sepaudio.callbacks]\nprinter = demo_plugin_mod:Printer\n")
    (tmp_path / "demo_plugin_mod.py").write_text("import lightning\nclass Printer(lightning.Callback):\n"
                                                 "    def __init__(self, every=1):\n        self.every = every\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    printer, = _callbacks([{"name": "printer", "args": {"every": 3}}])
    assert printer.every == 3 and callback_factory("printer").__module__ == "demo_plugin_mod"


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))


@pytest.mark.parametrize("name, content, words", [
    ("laughs.yml", LAUGHS.encode(), ["laughs.yml", "expands to more than"]),
    ("deep.yml", ("a: " + "[" * 5000 + "]" * 5000).encode(), ["deep.yml", f"more than {MAX_DEPTH} levels"]),
    ("latin1.yml", "model: {name: caf\xe9}\n".encode("latin-1"), ["latin1.yml", "not UTF-8"]),
    ("huge.yml", b"# " + b"x" * (2 << 20), ["huge.yml", "larger than"]),
    ("tag.yml", b"model: !!python/object/apply:os.system ['true']\n", ["tag.yml", "not valid YAML"]),
])
def test_hostile_yaml_is_a_config_error_in_bounded_memory(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    result = run_cli("train", str(path), memory_mib=6000)  # torch maps about 4 GiB of address space
    assert result.returncode == 2, result.stderr[-2000:]
    assert all(w in result.stderr for w in words) and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert path.read_bytes() == content


def test_hostile_yaml_in_an_override_is_refused(tmp_path, mini_speech):
    conf = config_file(tmp_path / "c.yml", mini_speech, tmp_path / "exp")
    with pytest.raises(ConfigError, match="override 'optim.x=.*nested more than"):
        load_config(conf, ["optim.x=" + "[" * 200 + "]" * 200])
    assert parse_yaml("lr: 1e-3") == {"lr": 1e-3}


def test_a_fifo_config_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "conf.yml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(fifo)


# ---- run folders belong to sepaudio -------------------------------------------------------------------------------

def test_exp_dir_with_the_users_files_is_refused(tmp_path, mini_speech):
    home = tmp_path / "project"
    home.mkdir()
    for name, text in (("README.md", "my notes"), ("config.yaml", "mine: 1"), ("model.pt", "my model")):
        (home / name).write_text(text)
    conf = config_file(home / "train.yml", mini_speech, ".")
    before = snapshot(home)
    result = run_cli("train", str(conf), cwd=home)
    assert result.returncode == 2 and "holds files that no sepaudio run wrote" in result.stderr, result.stderr
    assert "README.md" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(home) == before


@pytest.mark.parametrize("where", ["/", "~", "file"])
def test_root_home_and_files_are_not_run_folders(tmp_path, where):
    folder = {"/": Path("/"), "~": Path.home(), "file": tmp_path / "a.txt"}[where]
    if where == "file":
        folder.write_text("keep")
    elif not any(folder.iterdir()):
        pytest.skip(f"{folder} is empty here")
    with pytest.raises(ConfigError, match="exp_dir="):
        claim_run_dir(folder, {})
    assert not (folder / MARKER).exists() or where == "file"


def test_new_empty_and_own_folders_are_run_folders(tmp_path):
    new = claim_run_dir(tmp_path / "a" / "b", {"seed": 3})
    assert json.loads((new / MARKER).read_text())["config"] == {"seed": 3}
    (new / "model.pt").write_text("written by the run")
    assert claim_run_dir(new, {"seed": 3}) == new  # a sepaudio run folder is reused (resume)
    (tmp_path / "empty").mkdir()
    assert claim_run_dir(tmp_path / "empty", {}) == tmp_path / "empty"


def test_one_training_per_run_folder(tmp_path):
    folder = claim_run_dir(tmp_path / "run", {})
    other = subprocess.Popen(["sleep", "30"])
    try:
        (folder / LOCK).write_text(json.dumps({"host": os.uname().nodename, "pid": other.pid}))
        with pytest.raises(ConfigError, match=f"another training \\(pid {other.pid}"):
            with run_lock(folder):
                pass
    finally:
        other.kill()
        other.wait()
    with run_lock(folder) as lock:  # its process is gone: a stale lock is taken over
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(ConfigError, match="another training"):  # and it excludes a second writer
            with run_lock(folder):
                pass
    assert not (folder / LOCK).exists()


# ---- training under signals and faults ----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_training_with_its_status_and_a_resumable_checkpoint(tmp_path, mini_speech, signum, status):
    exp = tmp_path / "exp"
    conf = config_file(tmp_path / "c.yml", mini_speech, exp, epochs=200, length=16)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([str(SEPAUDIO), "train", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env,  # a background CI job starts with SIGINT ignored; a terminal does not
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    last = exp / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.2)
    assert last.exists(), child.communicate()[1][-2000:]
    time.sleep(0.5)
    child.send_signal(signum)
    _, err = child.communicate(timeout=120)
    assert child.returncode == status, err[-2000:]
    assert "run the same command again to resume" in err and "Traceback" not in err, err[-2000:]
    assert not (exp / LOCK).exists()
    epoch = torch.load(last, weights_only=True)["epoch"]
    resumed = run_cli("train", str(conf), "trainer.max_epochs=" + str(epoch + 2))
    assert resumed.returncode == 0 and "Resuming from" in resumed.stdout, resumed.stderr[-2000:]
    assert (exp / "model.pt").is_file()


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    from sepaudio.errors import OutputError

    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"epoch": 1}, path)
    before = path.read_bytes()

    def full_disk(obj, target):
        Path(target).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OutputError, match=r"last.ckpt: could not be written \(No space left on device"):
        io.save_checkpoint({"epoch": 2}, path)
    assert path.read_bytes() == before and sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]


def test_a_resume_refuses_settings_it_cannot_apply(tmp_path, mini_speech):
    from sepaudio.train import train

    conf = config_file(tmp_path / "c.yml", mini_speech, tmp_path / "exp")
    train(load_config(conf))
    saved = (tmp_path / "exp" / "config.yaml").read_text()
    with pytest.raises(ConfigError, match=r"cannot apply optim: .*'lr': 0.001.* -> .*'lr': 0.5"):
        train(load_config(conf, ["optim.lr=0.5", "trainer.max_epochs=2"]))
    assert (tmp_path / "exp" / "config.yaml").read_text() == saved
    assert train(load_config(conf, ["trainer.max_epochs=2"])) == tmp_path / "exp"  # a longer run is fine


@pytest.mark.parametrize("n_filters, words", [(10**7, "describe 600,000,965 weights but the file holds"),
                                               (-4, "negative dimension")])
def test_model_file_arguments_cannot_size_a_huge_allocation(tmp_path, n_filters, words):
    from sepaudio.errors import ModelFileError
    from sepaudio.models import create_model, load_model

    record = create_model("conv_tasnet", **TINY["args"]).serialize()
    torch.save({**record, "model_args": {**record["model_args"], "n_filters": n_filters}}, tmp_path / "m.pt")
    with pytest.raises(ModelFileError, match=words):
        load_model(tmp_path / "m.pt")


def test_outputs_never_replace_special_or_read_only_files(tmp_path):
    from sepaudio.errors import OutputError
    from sepaudio.fileio import write_text

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="is a FIFO"):
        write_text(fifo, "x")
    with pytest.raises(OutputError, match="is a character device"):
        write_text("/dev/null", "x")
    assert Path("/dev/null").is_char_device() and fifo.is_fifo()
    locked = tmp_path / "locked.txt"
    locked.write_text("keep")
    locked.chmod(0o444)
    if os.access(locked, os.W_OK):
        pytest.skip("root may write any file here")
    with pytest.raises(OutputError, match="not writable"):
        write_text(locked, "x")
    assert locked.read_text() == "keep"


def test_special_files_are_not_models_and_negative_sizes_are_config_errors(tmp_path, mini_speech):
    from sepaudio.errors import ModelFileError
    from sepaudio.models import load_model
    from sepaudio.train import train

    fifo = tmp_path / "model.pt"
    os.mkfifo(fifo)
    with pytest.raises(ModelFileError, match="is a FIFO"):
        load_model(fifo)
    with pytest.raises(ModelFileError, match="is a character device"):
        load_model("/dev/zero")
    conf = config_file(tmp_path / "c.yml", mini_speech, tmp_path / "exp")
    with pytest.raises(ConfigError, match="model: .*negative dimension"):
        train(load_config(conf, ["model.args.n_filters=-4"]))
    assert not (tmp_path / "exp").exists()


def test_export_never_replaces_the_model_it_reads(tmp_path):
    from sepaudio.errors import OutputError
    from sepaudio.export import export_checked
    from sepaudio.models import create_model

    model = create_model("conv_tasnet", **TINY["args"])
    path = model.save(tmp_path / "m.pt")
    folder = model.save_pretrained(tmp_path / "folder")
    before = snapshot(tmp_path)
    with pytest.raises(OutputError, match="is an input"):
        export_checked(path, path, "torchscript")
    with pytest.raises(OutputError, match="is an input"):
        export_checked(folder, folder / "model.safetensors", "torchscript")
    assert snapshot(tmp_path) == before


def test_header_numbers_beyond_any_recording_are_refused_before_reading(tmp_path):
    import numpy as np
    import soundfile as sf

    from sepaudio import audio
    from sepaudio.errors import AudioError

    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(800, dtype="float32"), 8000)
    data = bytearray(path.read_bytes())
    data[24:28] = (48_000_000).to_bytes(4, "little")  # the fmt chunk's sample rate
    path.write_bytes(bytes(data))
    with pytest.raises(AudioError, match="48000000 Hz .* beyond what any recording has"):
        audio.load(path)


def test_a_data_workers_error_is_one_clean_line(tmp_path, mini_speech):
    """A bad file read in a DataLoader worker: torch re-raises its error in the main process with the worker's
    traceback as its text; the user sees the error's own line only."""
    corpus = tmp_path / "corpus"
    shutil.copytree(mini_speech, corpus)
    for wav in corpus.rglob("*.wav"):
        wav.write_text("not audio\n")
    conf = config_file(tmp_path / "c.yml", corpus, tmp_path / "exp")
    result = run_cli("train", str(conf), "data.num_workers=2")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "Caught" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("sepaudio train: error: ") and "not a readable audio file" in \
        errors[0] and str(corpus) in errors[0], result.stderr[-2000:]
