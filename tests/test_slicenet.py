"""SliceNet blocks and models: shapes, parameter arithmetic, streaming, export, training, refused arguments."""
from pathlib import Path

import pytest
import torch
import yaml

from sepaudio.errors import ConfigError
from sepaudio.export import compare, export
from sepaudio.models import create_model, load_model
from sepaudio.nn.slicenet import ConvModule, ConvStep, SliceNetAttention, SliceNetConfig, attend

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TINY = {"channels": 16, "kernel_sizes": [3, 5], "dilations": [1, 2], "modules": 2, "groups": 2}


def tiny_sep(**slicenet):
    return create_model("slicenet_tasnet", n_filters=16, filter_length=8, slicenet={**TINY, **slicenet}).eval()


def tiny_tse(conditioning="encoder", **slicenet):
    return create_model("tsenet", n_filters=16, filter_length=8, masker="slicenet", conditioning=conditioning,
                        ivector_dim=6, speaker_dim=8, fusion="film", slicenet={**TINY, **slicenet}).eval()


def conf_model(recipe):
    model = yaml.safe_load((RECIPES / recipe / "conf_slicenet.yml").read_text())["model"]
    return create_model(model["name"], **model["args"]), model["args"]


def step_params(c, k, g):
    """ConvStep: depthwise c*k + c, pointwise c*c/g + c, LayerNorm 2c."""
    return c * k + c + c * c // g + c + 2 * c


def module_params(c, kernels, g):
    """Steps alternate between g groups and a full pointwise convolution."""
    return sum(step_params(c, k, g if i % 2 == 0 else 1) for i, k in enumerate(kernels))


def test_shapes():
    model = tiny_sep()
    assert model(torch.randn(3, 1000)).shape == (3, 2, 1000)
    assert model(torch.randn(777)).shape == (2, 777)
    tse = tiny_tse()
    assert tse.embed(torch.randn(2, 900)).shape[:2] == (2, 8)  # encoded enrollment frames
    assert tse(torch.randn(2, 1000), torch.randn(2, 900)).shape == (2, 1, 1000)
    assert tiny_tse("ivector")(torch.randn(2, 1000), torch.randn(2, 6)).shape == (2, 1, 1000)
    step = ConvStep(8, 5, dilation=3, groups=4, causal=True)
    assert step(torch.randn(2, 8, 30)).shape == (2, 8, 30) and step.past == 12
    assert ConvModule(8, [3, 3, 5, 5], [1, 2, 1, 2])(torch.randn(1, 8, 20)).shape == (1, 8, 20)
    assert SliceNetAttention(8, 4)(torch.randn(2, 8, 20), torch.randn(2, 4, 11)).shape == (2, 8, 20)


def test_attend_is_the_papers_formula():
    source, target = torch.randn(2, 6, 9), torch.randn(2, 6, 5)
    weights = torch.softmax(target.transpose(1, 2) @ source / 6 ** 0.5, dim=-1)  # (batch, frames, source_frames)
    assert torch.allclose(attend(source, target), (weights @ source.transpose(1, 2)).transpose(1, 2), atol=1e-6)


def test_super_separable_groups_the_pointwise_convolution():
    grouped, full = ConvStep(16, 3, groups=4), ConvStep(16, 3)
    assert grouped.conv.pointwise.groups == 4
    assert sum(p.numel() for p in full.parameters()) - sum(p.numel() for p in grouped.parameters()) == 16 * 16 * 3 // 4


def test_sep_mini_parameters_from_the_config():
    model, args = conf_model("sep_mini")
    n, length, c, cfg = args["n_filters"], args["filter_length"], args["slicenet"]["channels"], args["slicenet"]
    expected = (2 * n * length                                     # free encoder and decoder filters
                + 2 * n + n * c + c                                # input cwLN, bottleneck
                + cfg["modules"] * module_params(c, cfg["kernel_sizes"], cfg["groups"])
                + 1 + c * n * args["n_src"] + n * args["n_src"])   # PReLU, output 1x1
    assert model.num_parameters == expected
    conv_tasnet = yaml.safe_load((RECIPES / "sep_mini" / "conf.yml").read_text())["model"]
    tcn = create_model(conv_tasnet["name"], **conv_tasnet["args"]).num_parameters
    assert abs(model.num_parameters - tcn) / tcn < 0.02  # the comparison is at equal size


def test_tse_mini_parameters_from_the_config():
    model, args = conf_model("tse_mini")
    n, length, d, cfg = args["n_filters"], args["filter_length"], args["speaker_dim"], args["slicenet"]
    c, m = cfg["channels"], cfg["modules"]
    source = 2 * n + n * d + d + module_params(d, cfg["kernel_sizes"], cfg["groups"])  # enrollment encoder
    attention = step_params(c, 5, 1) * 2 + d * c + c + 2 * c                  # two steps, source 1x1, LayerNorm
    film = d * 2 * c + 2 * c
    expected = (2 * n * length + 2 * n + n * c + c + m * (film + module_params(c, cfg["kernel_sizes"], cfg["groups"])
                                                          + attention)
                + 1 + c * n + n + source + d * args["n_speakers"] + args["n_speakers"])
    assert model.num_parameters == expected


@pytest.mark.parametrize("hop", [1, 37, 160])
def test_causal_equals_streamed(hop):
    torch.manual_seed(0)
    model, wav = tiny_sep(causal=True), torch.randn(1, 1203)
    with torch.no_grad():
        offline = model(wav)
    streamer = model.streamer()
    online = torch.cat([streamer(chunk) for chunk in wav.split(hop, -1)] + [streamer.flush()], -1)
    assert online.shape == offline.shape and (online - offline).abs().max() < 1e-5


def test_extraction_with_enrollment_attention_streams():
    torch.manual_seed(0)
    model, wav, enrollment = tiny_tse(causal=True), torch.randn(1, 1500), torch.randn(1, 700)
    with torch.no_grad():
        offline, embedding = model(wav, enrollment), model.embed(enrollment)
    streamer = model.streamer(embedding)
    online = torch.cat([streamer(chunk) for chunk in wav.split(111, -1)] + [streamer.flush()], -1)
    assert (online - offline).abs().max() < 1e-5


def test_shared_modules_keep_the_depth_with_one_modules_weights(tmp_path):
    torch.manual_seed(0)
    plain, shared = tiny_sep(causal=True), tiny_sep(causal=True, share=True)
    one_module = module_params(TINY["channels"], TINY["kernel_sizes"], TINY["groups"])
    assert plain.num_parameters - shared.num_parameters == (TINY["modules"] - 1) * one_module
    masker = shared.masker
    assert masker.conv_modules[0] is masker.conv_modules[1] and len(masker.conv_modules) == TINY["modules"]
    tse = tiny_tse(share=True).masker  # attention modules are shared too
    assert tse.attentions[0] is tse.attentions[1]
    wav = torch.randn(1, 900)
    with torch.no_grad():
        offline = shared(wav)
    streamer = shared.streamer()
    online = torch.cat([streamer(chunk) for chunk in wav.split(100, -1)] + [streamer.flush()], -1)
    assert (online - offline).abs().max() < 1e-5
    shared.save(tmp_path / "shared.pt")
    loaded = load_model(tmp_path / "shared.pt").eval()
    assert loaded.masker.conv_modules[0] is loaded.masker.conv_modules[1]
    with torch.no_grad():
        assert torch.equal(loaded(wav), offline)


def test_confidence_of_an_attending_extractor_uses_one_vector_per_recording():
    from sepaudio.speaker.confidence import SpeakerVectors, item_confidence

    torch.manual_seed(0)
    tse, wav = tiny_tse(), torch.randn(2, 900)
    vectors = SpeakerVectors.for_model(tse)
    assert vectors(wav).shape == (2, 8)
    item = {"mixture": wav[0], "enrollment": torch.randn(700)}
    assert 0.0 <= item_confidence(vectors, tse(wav[:1], item["enrollment"][None])[0, 0], item) <= 1.0


def test_non_causal_does_not_stream():
    with pytest.raises(ValueError, match="not causal"):
        tiny_sep().streamer()


def test_save_load_fast_and_info(tmp_path, capsys):
    from sepaudio.cli import main

    model, wav = tiny_tse(), torch.randn(2, 900)
    enrollment = torch.randn(2, 600)
    path = model.save(tmp_path / "model.pt")
    loaded = load_model(path).eval()
    with torch.no_grad():
        assert torch.equal(loaded(wav, enrollment), model(wav, enrollment))
        plain = loaded(wav, enrollment)
        assert torch.allclose(loaded.fast("fp32")(wav, enrollment), plain, atol=1e-6)  # plain masker path
    sep = tiny_sep()
    sep.save(tmp_path / "sep.pt")
    assert main(["info", "--model", str(tmp_path / "sep.pt")]) == 0
    out = capsys.readouterr().out
    assert "slicenet_tasnet" in out and f"{sep.num_parameters:,}".replace(",", "") in out.replace(",", "")


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("kind", ["sep", "tse"])
def test_export_round_trip(fmt, kind, tmp_path):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    model = tiny_sep(causal=True) if kind == "sep" else tiny_tse(causal=True)
    path = export(model, tmp_path / f"m.{fmt}", fmt)
    assert max(compare(model, path, (800, 1207)).values()) < 1e-4
    path = export(model, tmp_path / f"step.{fmt}", fmt, streaming=True)
    assert max(compare(model, path, (40, 200), streaming=True).values()) < 1e-4


def test_tiny_training_lowers_the_loss():
    from sepaudio.losses import PITNegSISDR

    torch.manual_seed(0)
    model, loss_fn = tiny_sep().train(), PITNegSISDR()
    sources = torch.randn(4, 2, 800)
    mixture = sources.sum(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = loss_fn(model(mixture), sources)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0] - 1.0


@pytest.mark.parametrize("fields, name", [
    ({"groups": 3}, "groups"),
    ({"modules": 0}, "modules"),
    ({"channels": 0}, "channels"),
    ({"kernel_sizes": [3, 4]}, "kernel_sizes[1]"),
    ({"attention_kernel": 4}, "attention_kernel"),
    ({"kernel_sizes": [3, 3, 3]}, "kernel_sizes"),
    ({"depth": 2}, "depth"),
    ({"share": "yes"}, "share"),
])
def test_bad_arguments_are_refused(fields, name):
    with pytest.raises(ConfigError, match=name.replace("[", r"\[")):
        tiny_sep(**fields)


def test_even_kernels_are_fine_when_causal_and_unknown_masker_refused():
    assert SliceNetConfig(kernel_sizes=(2, 4), dilations=(1, 1), causal=True).kernel_sizes == (2, 4)
    with pytest.raises(ConfigError, match="masker"):
        create_model("tsenet", masker="transformer")
