"""Separation recipes: corpus preparation on fake LibriMix / WSJ0-2mix layouts, configs that build, sep_mini run.sh."""
import csv
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sepaudio import audio
from sepaudio.data import create_dataset, make_mini_speech_corpus
from sepaudio.errors import DatasetError
from sepaudio.models import create_model
from sepaudio.train import load_config

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
RATE = 8000


def fake_librimix(root: Path, n_src: int, sets=("train-360", "dev", "test"), n_mix=2) -> Path:
    """``<root>/wav8k/min/{metadata,<set>/{mix_clean,s1,..}}`` with absolute paths of another machine."""
    base = root / "wav8k" / "min"
    for split in sets:
        rows = []
        for i in range(n_mix):
            name = f"{split}_{i}"
            length = RATE // 2 + 100 * i
            sources = [0.1 * torch.randn(length) for _ in range(n_src)]
            for k, src in enumerate(sources):
                audio.save(base / split / f"s{k + 1}" / f"{name}.wav", src, RATE)
            audio.save(base / split / "mix_clean" / f"{name}.wav", sum(sources), RATE)
            elsewhere = f"/storage/LibriMix/wav8k/min/{split}"  # the CSVs name the generating machine's paths
            rows.append([name, f"{elsewhere}/mix_clean/{name}.wav"]
                        + [f"{elsewhere}/s{k + 1}/{name}.wav" for k in range(n_src)] + [length])
        (base / "metadata").mkdir(parents=True, exist_ok=True)
        with open(base / "metadata" / f"mixture_{split}_mix_clean.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["mixture_ID", "mixture_path"] + [f"source_{k + 1}_path" for k in range(n_src)]
                            + ["length"])
            writer.writerows(rows)
    return root


def fake_wsj0mix(root: Path, n_src: int = 2, n_mix: int = 2) -> Path:
    """``<root>/{tr,cv,tt}/{mix,s1,s2}/<utt1>_<snr>_<utt2>_<snr>.wav``."""
    for split in ("tr", "cv", "tt"):
        for i in range(n_mix):
            name = f"01{split}010{i}_1.2_02{split}020{i}_-1.2"
            sources = [0.1 * torch.randn(RATE // 2 + 50 * i) for _ in range(n_src)]
            for k, src in enumerate(sources):
                audio.save(root / split / f"s{k + 1}" / f"{name}.wav", src, RATE)
            audio.save(root / split / "mix" / f"{name}.wav", sum(sources), RATE)
    return root


def run_script(script: Path, *args: str, cwd: Path, monkeypatch, capsys) -> str:
    """Run a recipe script in this process (imports are slow to repeat); return its output or its error."""
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", [str(script), *args])
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exit:
        return f"error: {exit}"
    return capsys.readouterr().out


def build_split(config: dict, split: str):
    return create_dataset(config["data"]["name"], **config["data"][split])


@pytest.mark.parametrize("n_src", [2, 3])
def test_librimix_preparation_and_config(tmp_path, monkeypatch, capsys, n_src):
    corpus = fake_librimix(tmp_path / f"Libri{n_src}Mix", n_src)
    work = tmp_path / "work"
    work.mkdir()
    out = run_script(RECIPES / "sep_libri2mix" / "local" / "prepare_data.py", "--corpus", str(corpus), cwd=work,
                     monkeypatch=monkeypatch, capsys=capsys)
    assert f"train: 2 mixtures of {n_src} sources (train-360)" in out
    rows = list(csv.DictReader(open(work / "data" / "test.csv")))
    assert len(rows) == 2 and all(Path(r["mixture_path"]).is_file() for r in rows)
    # the config's paths are relative to the work folder (the current folder now)
    config = load_config(RECIPES / "sep_libri2mix" / "conf.yml", [f"model.args.n_src={n_src}"])
    train, test = build_split(config, "train"), build_split(config, "test")
    item = train[0]
    assert item["mixture"].shape == (3 * RATE,) and item["sources"].shape == (n_src, 3 * RATE)  # zero-padded
    assert test[1]["sources"].shape == (n_src, RATE // 2 + 100)  # whole mixtures
    torch.testing.assert_close(test[0]["sources"].sum(0), test[0]["mixture"], atol=1e-5, rtol=0)
    assert config["model"]["args"]["blocks"] == 8 and config["model"]["args"]["repeats"] == 3


def test_librimix_preparation_names_missing_file(tmp_path, monkeypatch, capsys):
    corpus = fake_librimix(tmp_path / "Libri2Mix", 2)
    (corpus / "wav8k" / "min" / "dev" / "s2" / "dev_1.wav").unlink()
    script = RECIPES / "sep_libri2mix" / "local" / "prepare_data.py"
    out = run_script(script, "--corpus", str(corpus), cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert out.startswith("error:") and "dev_1.wav" in out and "line 3" in out
    out = run_script(script, "--corpus", str(tmp_path / "no"), cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert out.startswith("error:") and "metadata" in out


def test_wsj0mix_preparation_and_config(tmp_path, monkeypatch, capsys):
    corpus = fake_wsj0mix(tmp_path / "wsj0-mix" / "2speakers" / "wav8k" / "min")
    work = tmp_path / "work"
    work.mkdir()
    script = RECIPES / "sep_wsj0-2mix" / "local" / "prepare_data.py"
    out = run_script(script, "--corpus", str(corpus), cwd=work, monkeypatch=monkeypatch, capsys=capsys)
    assert "tt: 2 mixtures of 2 sources" in out
    assert (work / "data" / "wsj0-2mix").resolve() == corpus.resolve()
    out = run_script(script, "--corpus", str(corpus), cwd=work, monkeypatch=monkeypatch, capsys=capsys)
    assert not out.startswith("error:")  # running stage 0 again is fine
    other = fake_wsj0mix(tmp_path / "other")
    out = run_script(script, "--corpus", str(other), cwd=work, monkeypatch=monkeypatch, capsys=capsys)
    assert out.startswith("error:") and "already points" in out
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


@pytest.mark.slow
def test_wsj0_run_sh_stage_0_uses_its_own_recipe(tmp_path):
    """sep_wsj0-2mix/run.sh runs sep_libri2mix's stages with its own preparation script."""
    corpus = fake_wsj0mix(tmp_path / "min")
    env = {**os.environ, "PYTHON": sys.executable}
    run_sh = RECIPES / "sep_wsj0-2mix" / "run.sh"
    done = subprocess.run(["bash", str(run_sh), "--corpus", str(corpus), "--stop-stage", "0", "--work",
                           str(tmp_path / "work")], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "work" / "data" / "wsj0-2mix").resolve() == corpus.resolve()
    missing = subprocess.run(["bash", str(run_sh), "--stop-stage", "0"], capture_output=True, text=True, env=env)
    assert missing.returncode != 0 and "--corpus" in missing.stderr


@pytest.mark.slow
def test_sep_mini_run_sh_end_to_end(tmp_path):
    """Stages 1-4 of sep_mini on a small corpus with a tiny model: trains both, evaluates, prints the table."""
    make_mini_speech_corpus(tmp_path / "data" / "mini", n_speakers=16, utterances=2, seconds=0.6)
    tiny = ["model.args.n_filters=16", "model.args.bottleneck=8", "model.args.hidden=16",
            "model.args.skip_channels=8", "model.args.blocks=2", "trainer.max_epochs=1",
            "trainer.limit_train_batches=2", "data.train.length=8", "data.valid.length=4", "data.test.length=2",
            "data.test.segment=0.5", "data.train.segment=0.5", "data.valid.segment=0.5",
            "trainer.enable_progress_bar=false"]
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(RECIPES / "sep_mini" / "run.sh"), "--stage", "1", "--work", str(tmp_path),
                           *tiny], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| conv_tasnet |" in done.stdout and "| mitas |" in done.stdout
    sizes = {m: json.loads((tmp_path / "exp" / m / "eval_test" / "summary.json").read_text())["parameters"]
             for m in ("conv_tasnet", "mitas")}
    assert sizes["mitas"] < sizes["conv_tasnet"]
    assert (tmp_path / "exp" / "RESULTS.md").read_text().count("|") > 10
