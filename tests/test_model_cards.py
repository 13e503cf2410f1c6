"""Model cards and model folders: written by ``sepaudio train``, updated by ``sepaudio evaluate``, loaded from a
folder or a Hugging Face Hub repository id (offline, from a pre-filled cache); bad folders and cards are clear
errors."""
import os
import shutil
import subprocess
import sys

import pytest
import torch

from sepaudio import ModelFileError, load_model
from sepaudio.cards import CARD_FILE, parse_card, write_card
from sepaudio.cli import main
from sepaudio.models import ConvTasNet
from test_train import write_config

REVISION = "0123456789abcdef0123456789abcdef01234567"


def tiny_folder(folder):
    """A model folder: a tiny Conv-TasNet and its card."""
    model = ConvTasNet(n_filters=16, tcn={"channels": 8, "hidden": 16, "skip_channels": 8, "blocks": 2, "repeats": 1})
    model.save(folder / "model.pt")
    write_card(folder, model, {"data": {"name": "mix_on_the_fly", "train": {}}})
    return model


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.slow
def test_train_writes_a_card_that_evaluate_updates(tmp_path, mini_speech, capsys):
    exp = tmp_path / "exp"
    config = write_config(tmp_path / "c.yml", mini_speech, exp, max_epochs=1)
    assert main(["train", str(config)]) == 0
    front, body = parse_card(exp / CARD_FILE)
    model = load_model(exp / "model.pt")
    assert front["library_name"] == "sepaudio" and front["pipeline_tag"] == "audio-to-audio"
    assert {"sepaudio", "speech-separation", "conv_tasnet"} <= set(front["tags"])
    meta = front["sepaudio"]
    assert meta["parameters"] == model.num_parameters and meta["sample_rate"] == 8000 and meta["task"] == "separation"
    for section in ("## Task", "## Data", "## Configuration", "## Evaluation", "## Usage"):
        assert section in body
    assert "mix_on_the_fly" in body and "sepaudio separate --model" in body and "Not evaluated yet" in body

    assert main(["evaluate", str(config), "--split", "valid", "--examples", "0"]) == 0
    front, body = parse_card(exp / CARD_FILE)
    figures = front["sepaudio"]["evaluation"]["valid"]
    assert figures["data"] == "mix_on_the_fly" and figures["n"] == 8 and "si_sdri" in figures
    assert "| valid | mix_on_the_fly |" in body and "Not evaluated yet" not in body and "## Usage" in body

    assert same_weights(load_model(exp), model)  # the folder loads like its model.pt
    capsys.readouterr()
    assert main(["info", str(exp)]) == 0 and "conv_tasnet" in capsys.readouterr().out


def test_load_from_a_prefilled_hub_cache_offline(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    repo = cache / "models--someone--tiny-tasnet"
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    model = tiny_folder(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)

    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    assert same_weights(load_model("someone/tiny-tasnet"), model)
    with pytest.raises(ModelFileError, match="someone/not-cached.*HF_HUB_OFFLINE"):
        load_model("someone/not-cached")

    # every command's --model, through the environment variables, in a fresh process
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "sepaudio", "info", "someone/tiny-tasnet", "--json"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert '"model": "conv_tasnet"' in done.stdout


def test_missing_or_malformed_folder_or_card(tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    tiny_folder(folder)
    card = (folder / CARD_FILE).read_text()
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "nowhere" / "model.pt")

    cases = {
        "no model card": lambda: (folder / CARD_FILE).unlink(),
        "not valid YAML": lambda: (folder / CARD_FILE).write_text("---\nlibrary_name: [sepaudio\n---\n# x\n"),
        "not a sepaudio model card": lambda: (folder / CARD_FILE).write_text("# a card without front matter\n"),
    }
    for message, damage in cases.items():
        damage()
        with pytest.raises(ModelFileError, match=message) as caught:
            load_model(folder)
        assert str(folder / CARD_FILE) in str(caught.value)
        (folder / CARD_FILE).write_text(card)
    (folder / CARD_FILE).write_text(card.replace("library_name: sepaudio", "library_name: transformers"))
    assert main(["info", str(folder)]) == 2
    assert f"{folder / CARD_FILE}: not a sepaudio model card" in capsys.readouterr().err

    (folder / CARD_FILE).write_text(card)
    shutil.move(folder / "model.pt", tmp_path / "elsewhere.pt")
    with pytest.raises(ModelFileError, match=f"{folder}: a model folder holds model.pt and README.md; model.pt is "):
        load_model(folder)


def test_ivector_extractor_travels_with_the_folder(tmp_path):
    from sepaudio.extract import load_extractor
    from sepaudio.models import TseNet
    from sepaudio.speaker import IVectorExtractor

    extractor = IVectorExtractor(sample_rate=8000, n_components=2, rank=10).save(tmp_path / "trained_ivector.pt")
    folder = tmp_path / "tse"
    model = TseNet(n_filters=16, ivector_dim=10, speaker_dim=6, tcn={"channels": 8, "hidden": 16, "blocks": 1,
                                                                     "repeats": 1})
    model.save(folder / "model.pt")
    write_card(folder, model, {"data": {"name": "with_ivectors", "train": {"extractor": str(extractor)}}})
    assert (folder / "ivector.pt").read_bytes() == extractor.read_bytes()
    front, body = parse_card(folder / CARD_FILE)
    assert front["sepaudio"]["ivector_extractor"] == "ivector.pt" and "--ivector-model" in body
    loaded, ivectors = load_extractor(folder)  # no --ivector-model: the folder's own
    assert same_weights(loaded, model) and ivectors.dim == 10
