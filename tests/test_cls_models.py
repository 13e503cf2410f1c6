"""Classifier models: parameter counts pinned to the papers / reference implementations, shapes, registry, timm."""
import pytest
import torch

from sepaudio import create_model, load_model
from sepaudio.models.classifier import load_timm_weights
from sepaudio.nn import PyramidDepthwiseConv2d


def count(name, **kwargs):
    if name.startswith("swishnet"):  # small; its MFCC front-end cannot be built on the meta device
        return create_model(name, **kwargs).num_parameters
    with torch.device("meta"):  # counts of the big nets need no memory or initialisation
        return create_model(name, **kwargs).num_parameters


@pytest.mark.parametrize("name, kwargs, expected", [
    ("xception", dict(num_classes=1000, in_chans=3), 22_855_952),
    ("mobilenet_v1_100", dict(num_classes=1000, in_chans=3), 4_231_976),
    ("mobilenet_v1_025", dict(num_classes=1000, in_chans=3), 470_072),
    ("esresnet", dict(num_classes=10), 23_528_522),
    ("esresnet", dict(num_classes=50), 23_610_482),
    ("esresnet_attention", dict(num_classes=10), 30_552_138),
    ("esresnet_attention", dict(num_classes=50), 30_634_098),
    # SwishNet: figure 1 read as REFERENCES.md describes; the paper reports 5,483 / 18,267 (see swishnet.py)
    ("swishnet_slim", dict(num_classes=3), 4_899),
    ("swishnet_wide", dict(num_classes=3), 15_819),
])
def test_parameter_counts(name, kwargs, expected):
    assert count(name, **kwargs) == expected


@pytest.mark.parametrize("name, alpha, paper_millions", [
    ("pydmobilenet_add29", 1.0, 0.193), ("pydmobilenet_add56", 1.0, 0.382),
    ("pydmobilenet_add29", 0.5, 0.104), ("pydmobilenet_concat29", 0.5, 0.170),
])
def test_pydmobilenet_counts_match_paper(name, alpha, paper_millions):
    n = count(name, num_classes=10, in_chans=3, alpha=alpha)
    # the paper prints three decimals of millions (Add-56's 382,954 is printed truncated, the others rounded)
    assert abs(n / 1e6 - paper_millions) < 0.001
    pinned = {(name, alpha): n for name, alpha, n in [
        ("pydmobilenet_add29", 1.0, 192_778), ("pydmobilenet_add56", 1.0, 382_954),
        ("pydmobilenet_add29", 0.5, 104_154), ("pydmobilenet_concat29", 0.5, 170_010)]}
    assert n == pinned[(name, alpha)]


def test_pyramid_merges():
    x = torch.randn(2, 4, 9, 9)
    add, cat = PyramidDepthwiseConv2d(4, merge="add", stride=2), PyramidDepthwiseConv2d(4, merge="concat", stride=2)
    assert add(x).shape == (2, 4, 5, 5) and cat(x).shape == (2, 12, 5, 5)
    cat.load_state_dict(add.state_dict())
    assert torch.allclose(cat(x).view(2, 3, 4, 5, 5).sum(1), add(x), atol=1e-6)


@pytest.mark.parametrize("name, size", [("xception", 40), ("mobilenet_v1_025", 32), ("pydmobilenet_add29", 16)])
def test_backbones_take_any_channels_and_classes(name, size):
    model = create_model(name, num_classes=5, in_chans=1).eval()
    assert model(torch.randn(2, 1, size, size + 7)).shape == (2, 5)


def test_spectrogram_classifier_round_trip(tmp_path):
    model = create_model("spectrogram_classifier", backbone="mobilenet_v1_025", labels=["a", "b", "c"],
                         frontend="logmel", frontend_args={"n_mels": 32}).eval()
    audio = torch.randn(2, 8000)
    logits = model(audio)
    assert logits.shape == (2, 3)
    assert model(audio[0]).shape == (3,)
    loaded = load_model(model.save(tmp_path / "m.pt"))
    assert loaded.labels == ["a", "b", "c"] and loaded.sample_rate == 16000
    assert torch.allclose(loaded(audio), logits, atol=1e-6)
    # a model that started from downloaded weights is saved so that reloading it downloads nothing
    model.model_args["backbone_args"] = {"pretrained": True}
    assert model.serialize()["model_args"]["backbone_args"] == {"pretrained": False}


def test_swishnet_is_causal():
    model = create_model("swishnet_slim").eval()
    feats = torch.randn(1, 20, 50)
    changed = feats.clone()
    changed[..., 30:] = torch.randn(1, 20, 20)
    a, b = model.backbone.frame_logits(feats), model.backbone.frame_logits(changed)
    assert torch.allclose(a[..., :30], b[..., :30], atol=1e-6)
    assert not torch.allclose(a[..., 30:], b[..., 30:])


def test_esresnet_front_end_bands():
    model = create_model("esresnet", num_classes=2)
    assert model.frontend(torch.randn(1, 44100)).shape == (1, 3, 341, 79)


@pytest.mark.parametrize("ours, theirs, size", [("xception", "legacy_xception", 71),
                                                ("mobilenet_v1_100", "mobilenetv1_100", 64)])
def test_timm_weights_give_equal_outputs(ours, theirs, size):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    reference = timm.create_model(theirs, pretrained=False, num_classes=7, in_chans=2)
    for module in reference.modules():  # non-trivial BN statistics, so a mis-mapped BN would show
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.1)
    reference.eval()
    model = load_timm_weights(create_model(ours, num_classes=7, in_chans=2), reference).eval()
    x = torch.randn(2, 2, size, size)
    with torch.no_grad():
        expected, got = reference(x), model(x)
    assert expected.abs().max() > 1e-3
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_timm_loader_rejects_other_layouts():
    with pytest.raises(ValueError, match="layouts differ"):
        load_timm_weights(create_model("mobilenet_v1_025", num_classes=3),
                          create_model("mobilenet_v1_050", num_classes=3))


def test_front_ends():
    from scipy.signal import get_window

    from sepaudio.features import LogMel, MFCC, blackman_harris, split_bands

    assert torch.allclose(blackman_harris(1654, dtype=torch.float64),
                          torch.from_numpy(get_window("blackmanharris", 1654)), atol=1e-12)
    wav = torch.randn(2, 16000)
    assert MFCC(16000)(wav).shape == (2, 20, 101)  # 20 coefficients, 10 ms hop
    assert LogMel(16000, n_mels=40)(wav).shape == (2, 1, 40, 101)
    spec = torch.arange(2 * 10 * 4.0).view(2, 10, 4)
    bands = split_bands(spec, 3)
    assert bands.shape == (2, 3, 3, 4) and torch.equal(bands[:, 1], spec[:, 3:6])
