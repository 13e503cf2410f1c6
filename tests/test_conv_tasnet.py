import pytest
import torch
import torchaudio

import sepaudio
from sepaudio.errors import ModelFileError
from sepaudio.models import ConvTasNet, create_model, load_model
from sepaudio.nn import TCNConfig

TINY = dict(n_filters=16, tcn=dict(channels=8, hidden=16, skip_channels=8, blocks=2, repeats=2))


def test_default_parameter_count_matches_torchaudio():
    assert ConvTasNet().num_parameters == 4_984_881
    assert sum(p.numel() for p in torchaudio.models.ConvTasNet().parameters()) == 4_984_881


def test_equal_to_torchaudio_with_its_weights():
    reference = torchaudio.models.ConvTasNet().eval()
    with torch.no_grad():  # move PReLU slopes and norm affines off their defaults so every weight matters
        for p in reference.parameters():
            p.add_(0.02 * torch.randn_like(p))
    ours = ConvTasNet.from_torchaudio(reference).eval()
    with torch.no_grad():
        for length in (4000, 4003, 97):
            x = torch.randn(2, 1, length)
            expected = reference(x)
            got = ours(x)
            assert got.shape == expected.shape == (2, 2, length)
            assert (got - expected).abs().max() <= 1e-5


def test_from_torchaudio_reads_hyper_parameters():
    reference = torchaudio.models.ConvTasNet(num_sources=3, enc_kernel_size=8, enc_num_feats=32, msk_num_feats=16,
                                             msk_num_hidden_feats=24, msk_num_layers=3, msk_num_stacks=2).eval()
    ours = ConvTasNet.from_torchaudio(reference).eval()
    args = ours.model_args
    assert args["n_src"] == 3 and args["filter_length"] == 8 and args["n_filters"] == 32
    assert args["tcn"] == dict(channels=16, hidden=24, skip_channels=16, kernel_size=3, blocks=3, repeats=2)
    x = torch.randn(1, 1, 1001)
    with torch.no_grad():
        assert (ours(x) - reference(x)).abs().max() <= 1e-5


@pytest.mark.parametrize("length", [1, 7, 8, 9, 16, 1234])
def test_output_length_equals_input_length(length):
    model = ConvTasNet(**TINY).eval()
    assert model(torch.randn(2, length)).shape == (2, 2, length)


def test_input_shapes():
    model = ConvTasNet(**TINY).eval()
    x = torch.randn(300)
    assert model(x).shape == (2, 300)
    assert torch.allclose(model(x), model(x[None])[0], atol=1e-6)
    assert torch.allclose(model(x[None, None])[0], model(x[None])[0], atol=1e-6)
    with pytest.raises(ValueError, match="one channel"):
        model(torch.randn(1, 2, 300))


@pytest.mark.parametrize("filterbank", ["free", "analytic_free", "param_sinc", "stft"])
def test_filterbanks(filterbank):
    model = ConvTasNet(filterbank=filterbank, **TINY).eval()
    assert model(torch.randn(1, 555)).shape == (1, 2, 555)


def test_save_and_load_round_trip(tmp_path):
    tcn = {**TINY["tcn"], "causal": True, "norm": "cLN"}
    model = create_model("conv_tasnet", n_src=3, n_filters=16, tcn=tcn).eval()
    path = model.save(tmp_path / "m.pt")
    again = sepaudio.load_model(path)
    assert isinstance(again, ConvTasNet) and again.model_args == model.model_args and not again.training
    assert again.masker.tcn.config == TCNConfig(**tcn)
    x = torch.randn(1, 400)
    assert torch.equal(model(x), again(x))


def test_load_errors(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "missing.pt")
    good = ConvTasNet(**TINY).save(tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:500])
    with pytest.raises(ModelFileError, match="truncated.pt: not a readable model file"):
        load_model(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ModelFileError, match="not a sepaudio model file"):
        load_model(foreign)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="not a readable model file"):
        load_model(text)


def test_load_refuses_other_kind_and_unknown_names(tmp_path):
    path = ConvTasNet(**TINY).save(tmp_path / "m.pt")

    class Other(torch.nn.Module):
        registered_name = "other"

    with pytest.raises(ModelFileError, match="holds a conv_tasnet model, but this needs other"):
        load_model(path, expected=Other)
    record = torch.load(path, weights_only=True)
    record["model"] = "no_such_model"
    torch.save(record, tmp_path / "unknown.pt")
    with pytest.raises(ModelFileError, match="unknown model 'no_such_model'"):
        load_model(tmp_path / "unknown.pt")
    record = torch.load(path, weights_only=True)
    record["model_args"]["n_filters"] = 20
    torch.save(record, tmp_path / "mismatch.pt")
    with pytest.raises(ModelFileError, match="weights do not fit"):
        load_model(tmp_path / "mismatch.pt")


def test_save_is_atomic(tmp_path, monkeypatch):
    path = ConvTasNet(**TINY).save(tmp_path / "m.pt")
    before = path.read_bytes()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        ConvTasNet(n_src=3, **TINY).save(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_tcn_argument_is_checked():
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['bottleneck'\]"):
        ConvTasNet(tcn={"bottleneck": 8})
    with pytest.raises(ValueError, match="TCNConfig.repeats"):
        ConvTasNet(tcn={"repeats": 0})
    with pytest.raises(TypeError, match="as a dict"):
        ConvTasNet(tcn=TCNConfig())
