"""Pretrained models of other toolkits, loaded in one line and proven equal to the originals on random inputs
(torchaudio's bundle, Asteroid's ConvTasNet files and Hub repositories, from pre-filled caches, no network), and
the Hub layout ``save_pretrained`` writes."""
import json
import re
from pathlib import Path

import pytest
import torch
import torchaudio

import sepaudio
from sepaudio import ModelFileError, OutputError, load_model
from sepaudio.cards import CONFIG_FILE, IVECTOR_WEIGHTS, WEIGHTS_FILE, parse_card, write_card
from sepaudio.cli import main
from sepaudio.models import MiTAS, TseNet, create_model, list_models
from sepaudio.speaker import IVectorExtractor

REVISION = "0123456789abcdef0123456789abcdef01234567"
TINY_ASTEROID = dict(n_src=2, n_blocks=2, n_repeats=2, bn_chan=8, hid_chan=16, skip_chan=8, n_filters=16,
                     kernel_size=8, stride=4)
TINY_TCN = {"channels": 8, "hidden": 16, "skip_channels": 8, "blocks": 2, "repeats": 2}


def perturbed(model):
    """``model`` in eval mode with random weights away from the initial ones (and BatchNorm statistics), so that
    a mis-mapped weight shows."""
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.1)
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def same_outputs(reference, ours, x):
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert got.shape == expected.shape and expected.abs().max() > 1e-2
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def hub_snapshot(cache, repo_id):
    """The snapshot folder of ``repo_id`` in a Hugging Face cache, as a download leaves it."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(REVISION)
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    return snapshot


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    import huggingface_hub.constants as hub

    cache = tmp_path / "hf"
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    return cache


# ------------------------------------------------------------------------------------------------------- Asteroid
@pytest.mark.parametrize("settings", [
    {},
    {"encoder_activation": "relu", "mask_act": "relu"},  # the published models' settings
    {"norm_type": "cLN", "causal": True},  # Asteroid's cLN is channel-wise
    {"norm_type": "cgLN", "causal": True, "mask_act": "softmax"},  # its cgLN cumulative
    {"norm_type": "bN"},
    {"fb_name": "stft", "n_filters": 32, "kernel_size": 32, "stride": 16},
    {"fb_name": "param_sinc", "n_filters": 16, "kernel_size": 17},
])
def test_asteroid_convtasnet_file_gives_asteroids_outputs(tmp_path, settings):
    asteroid = pytest.importorskip("asteroid.models", reason="asteroid is not installed (pip install asteroid==0.7.0 "
                                                             "--no-deps): nothing to compare against")
    reference = perturbed(asteroid.ConvTasNet(**{**TINY_ASTEROID, **settings}))
    torch.save(reference.serialize(), tmp_path / "model.pth")
    ours = load_model(tmp_path / "model.pth")
    assert ours.model_args["framing"] == "asteroid" and ours.sample_rate == 8000
    # 1003 samples: the last (1003 - 8) % 4 = 3 lie after the last whole window, which Asteroid outputs as zeros
    same_outputs(reference, ours, torch.randn(2, 1003))
    same_outputs(reference, ours, torch.randn(1003))


def test_asteroid_file_round_trips_through_sepaudio_files(tmp_path):
    asteroid = pytest.importorskip("asteroid.models", reason="asteroid is not installed")
    reference = perturbed(asteroid.ConvTasNet(**TINY_ASTEROID, encoder_activation="relu", sample_rate=16000))
    torch.save(reference.serialize(), tmp_path / "model.pth")
    ours = load_model(tmp_path / "model.pth")
    ours.save(tmp_path / "model.pt")
    ours.save_pretrained(tmp_path / "hub")
    x = torch.randn(1, 1, 777)
    for again in (load_model(tmp_path / "model.pt"), load_model(tmp_path / "hub")):
        assert again.sample_rate == 16000
        same_outputs(reference, again, x)


def test_asteroid_hub_id_from_a_prefilled_cache(offline_hub, tmp_path):
    asteroid = pytest.importorskip("asteroid.models", reason="asteroid is not installed")
    repo_id = "JorisCos/ConvTasNet_Libri2Mix_sepclean_8k"
    snapshot = hub_snapshot(offline_hub, repo_id)
    reference = perturbed(asteroid.ConvTasNet(**TINY_ASTEROID, encoder_activation="relu", mask_act="relu"))
    record = reference.serialize()
    # as the recipes publish them: scores as numpy floats, the training config
    record["infos"]["final_metrics"] = {"si_sdr_imp": __import__("numpy").float64(14.76)}
    record["infos"]["training_config"] = {"data": {"sample_rate": 8000, "task": "sep_clean"}}
    torch.save(record, snapshot / "pytorch_model.bin")
    (snapshot / "README.md").write_text("---\ntags:\n- asteroid\n---\n# an Asteroid card\n")
    assert repo_id in sepaudio.list_pretrained()
    same_outputs(reference, load_model(repo_id), torch.randn(2, 801))
    with pytest.raises(ModelFileError, match="JorisCos/not-cached.*HF_HUB_OFFLINE"):
        load_model("JorisCos/not-cached")


def test_asteroid_files_sepaudio_cannot_express_are_refused(tmp_path):
    from sepaudio.formats import asteroid_record

    base = {"model_name": "ConvTasNet", "model_args": {"n_src": 2}, "state_dict": {}}
    cases = {"skip_chan": ({"skip_chan": 0}, "residual path"), "mask_act": ({"mask_act": "tanh"}, "mask activ"),
             "encoder_activation": ({"encoder_activation": "prelu"}, "prelu"), "norm_type": ({"norm_type": "fgLN"},
                                                                                              "norms"),
             "fb_name": ({"fb_name": "MelGramFB"}, "filterbanks"), "min_low_hz": ({"min_low_hz": 30}, "50"),
             "out_chan": ({"in_chan": 16, "out_chan": 8}, "another size"), "who_knows": ({"who_knows": 1}, "know")}
    for setting, (args, why) in cases.items():
        record = {**base, "model_args": {"n_src": 2, **args}}
        with pytest.raises(ModelFileError, match=f"{setting}=.*{why}"):
            asteroid_record(record, "f.pth")
    with pytest.raises(ModelFileError, match="an Asteroid DPRNNTasNet; sepaudio converts Asteroid's ConvTasNet only"):
        asteroid_record({**base, "model_name": "DPRNNTasNet"}, "f.pth")
    # a file whose weights do not fit its arguments: named by the loader, not a torch traceback
    torch.save({**base, "model_args": TINY_ASTEROID, "state_dict": {"masker.bottleneck.1.weight": torch.zeros(3)}},
               tmp_path / "bad.pth")
    with pytest.raises(ModelFileError, match="weights do not fit a conv_tasnet"):
        load_model(tmp_path / "bad.pth")


# ----------------------------------------------------------------------------------------------------- torchaudio
def test_torchaudio_bundle_from_a_prefilled_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    name = "torchaudio:CONVTASNET_BASE_LIBRI2MIX"
    assert name in sepaudio.list_pretrained()
    # torchaudio keeps the bundle's file under torch.hub.get_dir()/torchaudio/<its key>
    cache = tmp_path / "torch" / "hub" / "torchaudio" / "models" / "conv_tasnet_base_libri2mix.pt"
    with pytest.raises(ModelFileError, match=f"{name}: torchaudio could not fetch.*{cache}"):
        load_model(name)  # no network here, nothing cached yet
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(perturbed(torchaudio.models.conv_tasnet_base(num_sources=2)).state_dict(), cache)
    reference = torchaudio.pipelines.CONVTASNET_BASE_LIBRI2MIX.get_model()
    ours = load_model(name)
    assert ours.sample_rate == 8000 and ours.num_parameters == 4_984_881
    x = torch.randn(1, 2003)
    with torch.no_grad():
        expected = reference(x.unsqueeze(1))
        got = ours(x)
    assert expected.abs().max() > 1e-2
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_unknown_torchaudio_bundle():
    with pytest.raises(ModelFileError, match="torchaudio:HDEMUCS_HIGH_MUSDB: not a torchaudio Conv-TasNet bundle; "
                                             "known: torchaudio:CONVTASNET_BASE_LIBRI2MIX"):
        load_model("torchaudio:HDEMUCS_HIGH_MUSDB")
    with pytest.raises(ModelFileError, match="NOPE"):
        load_model("torchaudio:NOPE")


# -------------------------------------------------------------------------------------------------- save_pretrained
def test_save_pretrained_layout_loads_back(tmp_path):
    model = perturbed(MiTAS(n_filters=16, tcn=TINY_TCN))  # shared weights: stored once
    folder = model.save_pretrained(tmp_path / "hub", config={"data": {"name": "mix_on_the_fly"}})
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", CONFIG_FILE, WEIGHTS_FILE]
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config["model"] == "mitas" and config["sample_rate"] == 8000 and config["model_args"]["tcn"] == TINY_TCN
    front, body = parse_card(folder / "README.md")
    assert front["sepaudio"]["parameters"] == model.num_parameters and "mix_on_the_fly" in body
    from safetensors import safe_open

    with safe_open(str(folder / WEIGHTS_FILE), "pt") as handle:
        stored = set(handle.keys())
    assert len(stored) < len(model.state_dict())
    again = load_model(folder)
    assert isinstance(again, MiTAS) and again.model_args == model.model_args
    assert again.num_parameters == model.num_parameters
    same_outputs(model, again, torch.randn(2, 500))
    # the sharing survives the round trip
    blocks = again.masker.tcn.blocks
    assert blocks[0].in_conv is blocks[TINY_TCN["blocks"]].in_conv


def test_save_pretrained_classifier_and_offline_hub(tmp_path, offline_hub, capsys):
    model = perturbed(create_model("spectrogram_classifier", backbone="mobilenet_v1_025", labels=["speech", "music"],
                                   sample_rate=8000))
    snapshot = hub_snapshot(offline_hub, "someone/tiny-classifier")
    model.save_pretrained(snapshot)
    again = load_model("someone/tiny-classifier")
    assert again.labels == ["speech", "music"]
    same_outputs(model, again, torch.randn(2, 4000))
    capsys.readouterr()
    assert main(["info", "someone/tiny-classifier", "--json"]) == 0  # read_summary knows no safetensors: load_model
    assert json.loads(capsys.readouterr().out)["model"] == "spectrogram_classifier"


def tiny_ivector_tsenet():
    return TseNet(n_filters=16, ivector_dim=10, speaker_dim=6, tcn={**TINY_TCN, "repeats": 1})


def test_ivector_tsenet_keeps_its_extractor(tmp_path):
    extractor = IVectorExtractor(sample_rate=8000, n_components=2, rank=10)
    with torch.no_grad():
        extractor.T.normal_()
        extractor.ubm.means.normal_()
    model = perturbed(tiny_ivector_tsenet())
    model.ivector_extractor = extractor  # what load_model sets; the user may set it the same way
    folder = model.save_pretrained(tmp_path / "hub")
    assert (folder / IVECTOR_WEIGHTS).is_file()
    assert parse_card(folder / "README.md")[0]["sepaudio"]["ivector_extractor"] == IVECTOR_WEIGHTS
    again = load_model(folder)
    assert "ivector_extractor.T" not in again.state_dict()  # a plain attribute, not part of the model's weights
    for name, value in extractor.state_dict().items():
        torch.testing.assert_close(again.ivector_extractor.state_dict()[name], value, rtol=0, atol=0)
    wav = torch.randn(8000) * 0.1
    torch.testing.assert_close(again.ivector_extractor.extract([wav]), extractor.extract([wav]))

    # without an extractor the folder's old one goes, and none is set
    del model.ivector_extractor
    model.save_pretrained(folder)
    assert not (folder / IVECTOR_WEIGHTS).exists() and getattr(load_model(folder), "ivector_extractor", None) is None

    # a training folder's ivector.pt is picked up too, and one that does not fit the model is refused
    run = tmp_path / "run"
    run.mkdir()
    model.save(run / "model.pt")
    extractor.save(tmp_path / "trained_ivector.pt")
    write_card(run, model, {"data": {"train": {"extractor": str(tmp_path / "trained_ivector.pt")}}})
    assert load_model(run).ivector_extractor.dim == 10
    IVectorExtractor(sample_rate=8000, n_components=2, rank=7).save(run / "ivector.pt")
    with pytest.raises(ModelFileError, match="ivector.pt: gives 7-dim i-vectors at 8000 Hz, but the model beside it "
                                             "takes 10-dim"):
        load_model(run)


def test_bad_folders_are_named(tmp_path):
    model = tiny_ivector_tsenet()
    folder = model.save_pretrained(tmp_path / "hub")
    (folder / CONFIG_FILE).rename(tmp_path / "config.json")
    with pytest.raises(ModelFileError, match="holds model.safetensors but not config.json"):
        load_model(folder)
    (tmp_path / "config.json").write_text('{"library_name": "transformers"}')
    (tmp_path / "config.json").rename(folder / CONFIG_FILE)
    with pytest.raises(ModelFileError, match="not a sepaudio config"):
        load_model(folder)
    (folder / WEIGHTS_FILE).write_bytes(b"not safetensors")
    (folder / CONFIG_FILE).write_text('{"library_name": "sepaudio"}')
    with pytest.raises(ModelFileError, match="model.safetensors: not a readable safetensors file"):
        load_model(folder)
    (folder / WEIGHTS_FILE).unlink()
    with pytest.raises(ModelFileError, match="holds config.json but not model.safetensors"):
        load_model(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelFileError, match="model.pt is missing.*model.safetensors and config.json.*pytorch_model"):
        load_model(empty)
    # save_pretrained does not write into a training run's folder, nor over a file
    run = tmp_path / "run"
    run.mkdir()
    model.save(run / "model.pt")
    with pytest.raises(OutputError, match="holds model.pt"):
        model.save_pretrained(run)
    with pytest.raises(OutputError, match="is a file"):
        model.save_pretrained(run / "model.pt")


def test_zoo_page_lists_every_pretrained_name():
    zoo = (Path(__file__).resolve().parents[1] / "docs" / "zoo.md").read_text(encoding="utf-8")
    names = re.findall(r"^\| `([^`]+)` \|", zoo, re.M)
    assert sorted(n for n in names if "/" in n or ":" in n) == sorted(sepaudio.list_pretrained())
    backbones = [n for n in names if "/" not in n and ":" not in n]
    assert backbones and set(backbones) <= set(list_models())


def test_asteroid_settings_of_conv_tasnet():
    from sepaudio.models import ConvTasNet

    small = dict(n_filters=16, filter_length=8, tcn={**TINY_TCN, "causal": True, "norm": "cLN"})
    plain, relu = ConvTasNet(**small), ConvTasNet(**small, encoder_activation="relu", framing="asteroid")
    relu.load_state_dict(plain.state_dict())  # the same weights and names
    x = torch.randn(1, 1003)
    with torch.no_grad():
        out = relu(x)
    assert out.shape == (1, 2, 1003) and torch.all(out[..., -3:] == 0)  # after the last whole window: zeros
    assert plain.streamer() is not None
    with pytest.raises(ValueError, match="streaming takes Conv-TasNets of framing='centered'"):
        relu.streamer()
    with pytest.raises(ValueError, match="unknown framing 'middle'"):
        ConvTasNet(**small, framing="middle")
    with pytest.raises(ValueError, match="unknown encoder_activation 'tanh'"):
        ConvTasNet(**small, encoder_activation="tanh")
