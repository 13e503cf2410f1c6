"""Recipes: every run.sh answers --help, refuses unknown options, and runs all its stages at reduced size (on
generated corpora or small fake copies of the corpus layouts), called from a folder outside the repository with
--work elsewhere; stage 0 of the real-corpus recipes honours every corpus choice; the corpus preparations."""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fakes import fake_esc50, fake_librimix, fake_musan, fake_us8k, fake_wsj0_2mix_extr, fake_wsj0mix
from sepaudio.data import create_dataset
from sepaudio.errors import DatasetError
from sepaudio.extract import DEFAULT_MIN_CONFIDENCE
from sepaudio.models import create_model, load_model
from sepaudio.train import load_config

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
ALL = sorted(p.parent.name for p in RECIPES.glob("*/run.sh"))
RATE = 8000
FAST = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "data.num_workers=0",
        "data.batch_size=2", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "trainer.devices=1"]
TINY_TCN = ["model.args.n_filters=16", "model.args.tcn.channels=8", "model.args.tcn.hidden=16",
            "model.args.tcn.skip_channels=8", "model.args.tcn.blocks=2", "model.args.tcn.repeats=2"]
TINY_TSENET = TINY_TCN + ["model.args.speaker_dim=4", "data.train.segment=0.5", "data.valid.segment=0.5",
                          "data.train.enrollment_seconds=0.5", "data.valid.enrollment_seconds=0.5"]


def options(recipe: str) -> list[str]:
    """The options a run.sh declares: the variables above the line that sources the parser."""
    text = (RECIPES / recipe / "run.sh").read_text().split("parse_options.sh")[0]
    return [m.replace("_", "-") for m in re.findall(r"^([a-z][a-z0-9_]*)=", text, re.M)]


def run(recipe: str, *args: str, cwd: Path, env: dict | None = None, call: str = "path") -> subprocess.CompletedProcess:
    """Call ``recipes/<recipe>/run.sh`` from ``cwd``: as a program (``path``), ``bash <relative path>`` or ``sh``."""
    script = RECIPES / recipe / "run.sh"
    command = {"path": [str(script)], "bash": ["bash", os.path.relpath(script, cwd)], "sh": ["sh", str(script)]}[call]
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(command + list(args), cwd=cwd, env=env, capture_output=True, text=True)


def run_ok(recipe: str, *args: str, cwd: Path, python: str, call: str = "path") -> str:
    """Run a recipe with ``python`` as its $PYTHON (the ``python`` fixture) and check that it succeeds."""
    done = run(recipe, *args, cwd=cwd, call=call, env={"PYTHON": python})
    assert done.returncode == 0, f"{recipe} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done.stdout


@pytest.fixture
def python(warm_python) -> str:
    """The $PYTHON of the end-to-end runs: its commands are forks of an interpreter that has imported torch,
    Lightning and sepaudio (conftest.py's ``warm_python``), started with the environment they run with (run.sh puts
    this checkout first on PYTHONPATH)."""
    return str(warm_python(recipe_env()) / "python")


def recipe_env() -> dict[str, str]:
    """The environment of a recipe's commands: this one, one torch thread, this checkout first on PYTHONPATH."""
    path = os.pathsep.join(filter(None, [str(RECIPES.parent), os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}


@pytest.fixture
def caller(tmp_path) -> Path:
    """The folder run.sh is called from (outside the repository); --work is its sibling ``work``."""
    (tmp_path / "caller").mkdir()
    return tmp_path / "caller"


# --- the option parser --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("recipe", ALL)
def test_every_recipe_answers_help_with_its_options(recipe, tmp_path):
    done = run(recipe, "--help", cwd=tmp_path, call="sh" if recipe == "sep_mini" else "path")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith(f"{recipe}: ")  # the header comment
    for name in options(recipe) + ["work", "help"]:
        assert f"--{name} " in done.stdout or done.stdout.rstrip().endswith(f"--{name}")
    assert "--stage N" in done.stdout and "[0]" in done.stdout and "key=value" in done.stdout


@pytest.mark.parametrize("recipe", ALL)
def test_unknown_options_and_stray_words_are_errors(recipe, tmp_path):
    done = run(recipe, "--no-such-option", "1", cwd=tmp_path)
    assert done.returncode != 0 and f"{recipe}/run.sh: unknown option --no-such-option" in done.stderr
    done = run(recipe, "stray", cwd=tmp_path)
    assert done.returncode != 0 and "unexpected argument 'stray'" in done.stderr


def test_choices_and_required_corpus_are_checked(tmp_path):
    done = run("sep_libri2mix", "--train-set", "train-500", cwd=tmp_path)
    assert done.returncode != 0 and "takes one of train-360|train-100, not 'train-500'" in done.stderr
    done = run("tse_libri2mix", "--sample-rate=44k", cwd=tmp_path)
    assert done.returncode != 0 and "8k|16k" in done.stderr
    done = run("esc50_esresnet", "--work", str(tmp_path / "w"), cwd=tmp_path)
    assert done.returncode != 0 and "give --corpus: the ESC-50 folder" in done.stderr
    done = run("sep_libri2mix", "--stage", "x", cwd=tmp_path)
    assert done.returncode != 0 and "stage numbers" in done.stderr


FAKE_PYTHON = '#!/bin/sh\necho "$PWD|$*" >> "$FAKE_LOG"\n'


def fake_python(path: Path) -> Path:
    """A 'python' that only logs its folder and arguments to $FAKE_LOG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FAKE_PYTHON)
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("recipe", ALL)
def test_every_command_is_the_projects_python_in_the_work_folder(recipe, tmp_path, caller):
    """A dry run through all stages with a logging 'python': each command is `python -m sepaudio ...` or a
    script of the recipes (by absolute path), run in --work (given relative to the calling folder)."""
    log = tmp_path / "log"
    env = {"PYTHON": str(fake_python(tmp_path / "bin" / "python")), "FAKE_LOG": str(log)}
    done = run(recipe, "--work", "../work", "--corpus", "../corpus", "a.b=1", cwd=caller, env=env) \
        if "corpus" in options(recipe) else run(recipe, "--work", "../work", "a.b=1", cwd=caller, env=env)
    assert done.returncode == 0, done.stderr
    calls = [line.split("|", 1) for line in log.read_text().splitlines()]
    assert calls[0][1].startswith("-c ")  # the import check, before anything runs
    for cwd, args in calls[1:]:
        assert Path(cwd) == tmp_path / "work"
        assert args.startswith("-m sepaudio ") or re.match(rf"{re.escape(str(RECIPES))}/[\w/-]+\.py( |$)", args)
        if args.startswith(("-m sepaudio train", "-m sepaudio evaluate")):
            words = args.split(" ")
            assert words[3].endswith(".yml") and [w for w in words if "=" in w][-1] == "a.b=1"  # the user's last
    assert sum(args.startswith("-m sepaudio train") for _, args in calls) >= 1


def test_the_projects_venv_python_is_found_without_PYTHON(tmp_path):
    """With no $PYTHON, run.sh runs <repository>/.venv/bin/python (here a copy of the recipes with a fake .venv)."""
    repo = tmp_path / "repo"
    for folder in ("common", "sep_mini"):
        shutil.copytree(RECIPES / folder, repo / "recipes" / folder)
    fake_python(repo / ".venv" / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"} | {"FAKE_LOG": str(tmp_path / "log")}
    done = subprocess.run(["bash", "recipes/sep_mini/run.sh", "--stop-stage", "0", "--work", "w"], cwd=repo, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "log").read_text().splitlines()  # written by the fake .venv python only
    assert calls[-1] == f"{repo / 'w'}|{repo / 'recipes/common/mini_corpus.py'} --root data/mini --speakers 16 " \
                        f"--utterances 20"


def test_librimix_corpus_choices_reach_stage_0(tmp_path, caller):
    """--train-set, --sample-rate, --mode and --mixture reach both LibriMix preparations (dry run)."""
    log = tmp_path / "log"
    env = {"PYTHON": str(fake_python(tmp_path / "bin" / "python")), "FAKE_LOG": str(log)}
    choices = ["--train-set", "train-100", "--sample-rate", "16k", "--mode", "max", "--mixture", "mix_both"]
    for recipe in ("sep_libri2mix", "tse_libri2mix"):
        assert run(recipe, "--corpus", "L", "--stop-stage", "0", *choices, cwd=caller, env=env).returncode == 0
        assert log.read_text().splitlines()[-1].endswith(f"prepare_data.py {caller}/L {' '.join(choices)} --out data")


def test_results_table_of_separation_and_cross_validation(tmp_path, capsys, monkeypatch):
    def write(folder: str, **summary):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "summary.json").write_text(json.dumps(summary))
        return str(tmp_path / folder)

    table = RECIPES / "common" / "table.py"
    runs = [write("exp/conv_tasnet/eval_test", parameters=400, n=5, si_sdri=7.0, sdri=8.0, stoi=0.8),
            write("exp/mitas/eval_test", parameters=100, n=5, si_sdri=8.0, sdri=9.0, stoi=0.81, pesq=1.5)]
    monkeypatch.setattr(sys, "argv", [str(table), *runs, "--out", str(tmp_path / "RESULTS.md")])
    runpy.run_path(str(table), run_name="__main__")
    assert capsys.readouterr().out.splitlines()[:4] == [
        "| model | parameters | relative size | SI-SDRi (dB) | SDRi (dB) | STOI |", "|---|---:|---:|---:|---:|---:|",
        "| conv_tasnet | 400 | 1.00 | 7.00 | 8.00 | 0.80 |", "| mitas | 100 | 0.25 | 8.00 | 9.00 | 0.81 |"]
    assert (tmp_path / "RESULTS.md").read_text().endswith("5 test mixtures per row.\n")
    folds = [write(f"cv/fold{k}/eval_test", parameters=10, n=k, accuracy=a, macro_f1=a, ms_per_clip=1.0)
             for k, a in ((1, 0.5), (2, 0.7))]
    monkeypatch.setattr(sys, "argv", [str(table), *folds, "--cross-validation"])
    runpy.run_path(str(table), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "| fold1 | 10 | 50.00 | 0.500 | 1.0 |"
    assert lines[4] == "| mean +- std (2 folds) |  | 60.00 +- 10.00 | 0.600 +- 0.100 | 1.0 +- 0.0 |"
    assert lines[-2] == "1 to 2 test clips per row."


# --- every recipe end to end at reduced size ----------------------------------------------------------------------

def summary(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.slow
def test_sep_mini_end_to_end(caller, python):
    small = ["data.train.length=4", "data.valid.length=2", "data.test.length=2", "data.train.segment=0.5",
             "data.valid.segment=0.5", "data.test.segment=0.5"]
    out = run_ok("sep_mini", "--utterances", "2", "--work", "../work", *TINY_TCN, *FAST, *small, cwd=caller,
                 python=python, call="bash")
    work = caller.parent / "work"
    assert "| conv_tasnet |" in out and "| mitas |" in out
    sizes = {m: summary(work / f"exp/{m}/eval_test/summary.json")["parameters"] for m in ("conv_tasnet", "mitas")}
    assert sizes["mitas"] < sizes["conv_tasnet"]
    assert (work / "exp" / "RESULTS.md").read_text().count("|") > 10 and not (caller / "exp").exists()


@pytest.mark.slow
def test_sep_libri2mix_end_to_end_with_its_corpus_choices(tmp_path, caller, python):
    corpus = fake_librimix(tmp_path / "Libri2Mix", sets=("train-100", "dev", "test"), rate="16k", mode="max",
                           mixture="mix_both")
    run_ok("sep_libri2mix", "--corpus", "../Libri2Mix", "--train-set", "train-100", "--sample-rate", "16k",
           "--mode", "max", "--mixture", "mix_both", "--models", "mitas", "--work", str(tmp_path / "work"),
           *TINY_TCN, *FAST, "data.train.segment=0.3", "data.valid.segment=0.3", cwd=caller, python=python)
    work = tmp_path / "work"
    rows = list(csv.DictReader(open(work / "data" / "train.csv")))
    assert rows[0]["mixture_path"] == str(corpus / "wav16k/max/train-100/mix_both/100-1-0001_200-1-0001.wav")
    assert load_config(work / "exp/mitas/config.yaml")["model"]["args"]["sample_rate"] == 16000
    assert summary(work / "exp/mitas/eval_test/summary.json")["n"] == 3
    assert "| mitas |" in (work / "exp/RESULTS.md").read_text()


@pytest.mark.slow
def test_sep_wsj0_2mix_end_to_end(tmp_path, caller, python):
    fake_wsj0mix(tmp_path / "wsj0-mix" / "2speakers" / "wav8k" / "min")
    run_ok("sep_wsj0-2mix", "--corpus", "../wsj0-mix/2speakers/wav8k/min", "--models", "mitas", "--work",
           str(tmp_path / "work"), *TINY_TCN, *FAST, "data.train.segment=0.3", "data.valid.segment=0.3", cwd=caller,
           python=python)
    assert summary(tmp_path / "work/exp/mitas/eval_test/summary.json")["n"] == 2


@pytest.mark.slow
def test_tse_mini_end_to_end(tmp_path, caller, python):
    small = ["data.train.length=4", "data.valid.length=2", "data.test.length=2", "data.test.segment=0.5",
             "data.test.enrollment_seconds=0.5", "model.args.filter_length=40"]
    run_ok("tse_mini", "--speakers", "10", "--heldout", "3", "--utterances", "3", "--components", "4", "--rank", "8", "--lda-dim", "4", "--work",
           str(tmp_path / "work"), "--conf", "conf_causal.yml", *TINY_TSENET, *FAST, *small, cwd=caller, python=python)
    results = (tmp_path / "work" / "exp" / "tsenet_causal" / "RESULTS.md").read_text()
    assert "held-out speakers (test)" in results and "i-vector EER" in results and "Conditioning check" in results
    tcn = load_config(tmp_path / "work/exp/tsenet_causal/config.yaml")["model"]["args"]
    assert tcn["ivector_dim"] == 4 and tcn["tcn"]["causal"] and not (tmp_path / "work/exp/tsenet").exists()
    # stage 4 fitted the model's confidence threshold on valid: the summary and the model file hold it
    threshold = summary(tmp_path / "work/exp/tsenet_causal/eval_test/summary.json")["confidence_threshold"]
    model = load_model(tmp_path / "work/exp/tsenet_causal/model.pt")
    assert float(model.confidence_threshold) == pytest.approx(threshold)
    assert threshold != pytest.approx(DEFAULT_MIN_CONFIDENCE)
    # how the confidence's constants are chosen: AUCs of the ingredients and of the grid, on new training mixtures
    done = subprocess.run([python, str(RECIPES / "tse_mini/local/tune_confidence.py"), str(RECIPES / "tse_mini/conf.yml"),
                           "exp/tsenet_causal/model.pt", "--mixtures", "6", "--segment", "0.5"], cwd=tmp_path / "work",
                          env=recipe_env(), check=True, capture_output=True, text=True)
    assert "1 models, 6 mixtures of training voices each (0.5 s, seed 7); confused: " in done.stdout
    rows = re.findall(r"^\| (.+) \| (\S+) \((\S+) to (\S+)\) \| (\S+) \|$", done.stdout, re.M)
    assert len(rows) == 4 + 3 * 3 and any("s = sigmoid((2 - d) / 1.5)" in r[0] for r in rows)
    assert all(r[1] == "nan" or 0 <= float(r[1]) <= 1 for r in rows)
    assert all(r[4] == "nan" or 0 <= float(r[4]) <= 100 for r in rows)  # right extractions of a louder target flagged
    # the blind baseline of the README, and the separator used as an extractor by i-vector selection
    work, recipe = tmp_path / "work", RECIPES / "tse_mini"
    blind = [*TINY_TCN, *FAST, "data.train.length=4", "data.valid.length=2", "data.train.segment=0.5",
             "data.valid.segment=0.5"]
    subprocess.run([python, "-m", "sepaudio", "train", str(recipe / "conf_blind.yml"), *blind], cwd=work,
                   env=recipe_env(), check=True, capture_output=True)
    done = subprocess.run([python, str(recipe / "local/select_by_ivector.py"), str(recipe / "conf.yml"),
                           "exp/blind/model.pt", *small], cwd=work, env=recipe_env(), check=True, capture_output=True,
                          text=True)
    assert re.search(r"test: 2 mixtures; selected by i-vector: SI-SDRi -?\d+\.\d\d dB, speaker confusion", done.stdout)


#: the conditioning and pseudo-speaker variants that the real-corpus TSE recipes' conf.yml names
VARIANTS = ["model.args.fusion=film", "model.args.fuse_at=block", "data.train.speed_factors=[0.9,1.0,1.1]"]


@pytest.mark.slow
def test_tse_libri2mix_end_to_end_with_its_corpus_choices(tmp_path, caller, python):
    fake_librimix(tmp_path / "Libri2Mix", sets=("train-100", "dev", "test"), rate="16k", mode="max")
    run_ok("tse_libri2mix", "--corpus", "../Libri2Mix", "--train-set", "train-100", "--sample-rate", "16k",
           "--mode", "max", "--components", "2", "--ivector-dim", "3", "--work", str(tmp_path / "work"),
           *TINY_TSENET, *FAST, *VARIANTS, cwd=caller, python=python)
    work = tmp_path / "work"
    assert "train-100" in (work / "data" / "ivector_train.txt").read_text()
    config = load_config(work / "exp/tsenet/config.yaml")
    assert config["model"]["args"]["ivector_dim"] == 3 and config["model"]["args"]["sample_rate"] == 16000
    assert config["model"]["args"]["fuse_at"] == "block" and config["data"]["train"]["speed_factors"] == [0.9, 1.0, 1.1]
    assert summary(work / "exp/tsenet/eval_test/summary.json")["n"] == 6  # every source of 3 mixtures a target


@pytest.mark.slow
def test_tse_wsj0_2mix_extr_end_to_end(tmp_path, caller, python):
    fake_wsj0_2mix_extr(tmp_path / "wsj0_2mix_extr")
    run_ok("tse_wsj0-2mix-extr", "--corpus", "../wsj0_2mix_extr", "--components", "2", "--ivector-dim", "3",
           "--work", str(tmp_path / "work"), *TINY_TSENET, *FAST, *VARIANTS, cwd=caller, python=python)
    assert summary(tmp_path / "work/exp/tsenet/eval_test/summary.json")["n"] == 2


@pytest.mark.slow
def test_smn_mini_end_to_end(tmp_path, caller, python):
    run_ok("smn_mini", "--file-seconds", "1.5", "--timeline-seconds", "20", "--work", str(tmp_path / "work"), *FAST,
           cwd=caller, python=python)
    exp = tmp_path / "work" / "exp"
    table = (exp / "RESULTS.md").read_text()
    assert all(f"| {run} |" in table for run in ("swishnet_slim", "swishnet_distilled", "mobilenet_v1_025"))
    assert set(summary(exp / "segment" / "frame_accuracy.json")) == {"swishnet_slim", "mobilenet_v1_025"}
    assert (exp / "segment" / "swishnet_slim" / "timeline.png").is_file()


@pytest.mark.slow
def test_smn_musan_end_to_end(tmp_path, caller, python):
    fake_musan(tmp_path / "musan", files_per_class=4)
    run_ok("smn_musan", "--corpus", "../musan", "--clips", "0.5", "--work", str(tmp_path / "work"), *FAST,
           cwd=caller, python=python)
    table = (tmp_path / "work" / "exp" / "RESULTS_0.5s.md").read_text()
    assert all(f"| {run}_0.5s |" in table for run in ("swishnet_slim", "swishnet_wide", "swishnet_wide_distilled",
                                                       "mobilenet"))


@pytest.mark.slow
@pytest.mark.parametrize("recipe, make, folds", [("esc50_esresnet", fake_esc50, "1 2"),
                                                 ("us8k_esresnet", fake_us8k, "1")])
def test_cross_validation_recipes_end_to_end(tmp_path, caller, python, recipe, make, folds):
    make(tmp_path / "corpus", seconds=0.5)  # short files (ESC-50's are 5 s long, UrbanSound8K's up to 4 s)
    small = ["model.args.backbone_args.pretrained=false", "data.train.clip_seconds=0.5",
             "data.valid.clip_seconds=0.5", "data.test.clip_seconds=0.5"]
    out = run_ok(recipe, "--corpus", "../corpus", "--folds", folds, "--work", str(tmp_path / "work"), *FAST, *small,
                 cwd=caller, python=python)
    table = (tmp_path / "work" / "exp" / "RESULTS.md").read_text()
    n = len(folds.split())
    assert f"mean +- std ({n} folds)" in table and all(f"| fold{k} |" in table for k in folds.split())
    assert "clips per fold" in out  # stage 0 checked the corpus


# --- stage 0 of the separation recipes on fake layouts ------------------------------------------------------------

def build_split(config: dict, split: str):
    return create_dataset(config["data"]["name"], **config["data"][split])


def prepare(recipe: str, *args: str, cwd: Path) -> None:
    """Run stage 0's ``local/prepare_data.py`` of a recipe in this process, in ``cwd``."""
    spec = importlib.util.spec_from_file_location(recipe.replace("-", "_"), RECIPES / recipe / "local/prepare_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    here = os.getcwd()
    os.chdir(cwd)
    try:
        module.main(list(args))
    finally:
        os.chdir(here)


@pytest.mark.parametrize("n_src", [2, 3])
def test_librimix_preparation_and_config(tmp_path, monkeypatch, capsys, n_src):
    corpus = fake_librimix(tmp_path / f"Libri{n_src}Mix", n_src)
    work = tmp_path / "work"
    work.mkdir()
    prepare("sep_libri2mix", str(corpus), cwd=work)
    assert f"train: 3 mixtures of {n_src} sources (mixture_train-360_mix_clean.csv)" in capsys.readouterr().out
    rows = list(csv.DictReader(open(work / "data" / "test.csv")))
    assert len(rows) == 3 and all(Path(r["mixture_path"]).is_file() for r in rows)
    # the config's paths are relative to the work folder
    monkeypatch.chdir(work)
    config = load_config(RECIPES / "sep_libri2mix" / "conf.yml", [f"model.args.n_src={n_src}"])
    train, test = build_split(config, "train"), build_split(config, "test")
    item = train[0]
    assert item["mixture"].shape == (3 * RATE,) and item["sources"].shape == (n_src, 3 * RATE)  # zero-padded
    assert test[1]["sources"].shape == (n_src, RATE // 2 + 100)  # whole mixtures
    torch.testing.assert_close(test[0]["sources"].sum(0), test[0]["mixture"], atol=1e-5, rtol=0)
    assert config["model"]["args"]["tcn"]["blocks"] == 8 and config["model"]["args"]["tcn"]["repeats"] == 3


def test_librimix_preparation_names_missing_files_and_folders(tmp_path):
    corpus = fake_librimix(tmp_path / "Libri2Mix", 2)
    (corpus / "wav8k/min/dev/s2/200-1-0002_300-1-0002.wav").unlink()
    with pytest.raises(SystemExit, match=r"mixture_dev_mix_clean\.csv, line 3: .*200-1-0002_300-1-0002\.wav"):
        prepare("sep_libri2mix", str(corpus), cwd=tmp_path)
    with pytest.raises(SystemExit, match="wav16k/min/metadata not found"):
        prepare("sep_libri2mix", str(corpus), "--sample-rate", "16k", cwd=tmp_path)
    with pytest.raises(SystemExit, match="mixture_train-100_mix_clean.csv"):
        prepare("sep_libri2mix", str(corpus), "--train-set", "train-100", cwd=tmp_path)


def test_wsj0mix_preparation_and_config(tmp_path, monkeypatch, capsys):
    corpus = fake_wsj0mix(tmp_path / "wsj0-mix" / "2speakers" / "wav8k" / "min")
    work = tmp_path / "work"
    work.mkdir()
    prepare("sep_wsj0-2mix", str(corpus), cwd=work)
    assert "tt: 2 mixtures of 2 sources" in capsys.readouterr().out
    assert (work / "data" / "wsj0-2mix").resolve() == corpus.resolve()
    prepare("sep_wsj0-2mix", str(corpus), cwd=work)  # running stage 0 again is fine
    with pytest.raises(SystemExit, match="already points"):
        prepare("sep_wsj0-2mix", str(fake_wsj0mix(tmp_path / "other")), cwd=work)
    monkeypatch.chdir(work)
    config = load_config(RECIPES / "sep_wsj0-2mix" / "conf.yml")
    train, test = build_split(config, "train"), build_split(config, "test")
    assert len(train) == 2 and train[0]["sources"].shape == (2, 4 * RATE)
    item = test[0]
    assert item["id"] == "01tt0100_1.2_02tt0200_-1.2" and item["sources"].shape == (2, RATE // 2)
    torch.testing.assert_close(item["sources"].sum(0), item["mixture"], atol=1e-5, rtol=0)
    model = create_model(config["model"]["name"], **config["model"]["args"])
    assert model.num_parameters == 4_984_881  # the paper configuration is Conv-TasNet's (torchaudio's count)


def test_wsj0mix_reader_errors(tmp_path):
    corpus = fake_wsj0mix(tmp_path / "min", n_src=3)
    assert create_dataset("wsj0mix", root=corpus, split="cv").n_src == 3  # WSJ0-3mix
    (corpus / "tt" / "s3" / "01tt0101_1.2_02tt0201_-1.2.wav").unlink()
    with pytest.raises(DatasetError, match="01tt0101_1.2_02tt0201_-1.2.wav"):
        create_dataset("wsj0mix", root=corpus, split="tt")
    with pytest.raises(DatasetError, match="mix/ and s1/"):
        create_dataset("wsj0mix", root=tmp_path, split="tr")
    with pytest.raises(DatasetError, match="split"):
        create_dataset("wsj0mix", root=corpus, split="test")


def test_mini_corpus_refuses_a_split_without_two_speakers_a_side(tmp_path):
    script = Path(__file__).resolve().parents[1] / "recipes" / "common" / "mini_corpus.py"
    for heldout in ("3", "1"):
        done = subprocess.run([sys.executable, str(script), "--root", str(tmp_path / "mini"), "--speakers", "4",
                               "--heldout", heldout, "--lists", str(tmp_path / "lists")], capture_output=True, text=True)
        assert done.returncode == 2 and f"--heldout {heldout}: hold out at least 2 of the 4" in done.stderr
    assert not (tmp_path / "mini").exists() and not (tmp_path / "lists").exists()
