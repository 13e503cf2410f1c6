import pytest
import torch
from torch import nn

from sepaudio.nn import (TCN, ChannelwiseLayerNorm, CumulativeLayerNorm, GlobalLayerNorm, SeparableConv1d,
                         SeparableConv2d, SpeakerFusion, TCNConfig, TCNMasker)
from sepaudio.nn.tcn import SHARING


def small(**fields) -> TCNConfig:
    return TCNConfig(**{"channels": 8, "hidden": 16, "skip_channels": 8, **fields})


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_separable_parameter_count_matches_xception_example():
    # REFERENCES.md: a 3x3 conv 16->32 has 4,608 weights; depthwise separable 16*9 + 16*32 = 656.
    assert count(SeparableConv2d(16, 32, 3)) == 656
    assert count(nn.Conv2d(16, 32, 3, bias=False)) == 4608


def test_groups_span_regular_to_depthwise():
    regular = SeparableConv2d(16, 32, 3, groups=1)  # full spatial conv (+1x1)
    inception = SeparableConv2d(16, 32, 3, groups=4)
    depthwise = SeparableConv2d(16, 32, 3)
    assert count(regular) == 16 * 16 * 9 + 16 * 32
    assert count(inception) == 16 * 4 * 9 + 16 * 32
    assert count(depthwise) == 16 * 9 + 16 * 32
    with pytest.raises(ValueError, match="divisible"):
        SeparableConv2d(16, 32, 3, groups=5)


def test_depth_multiplier_and_activation():
    conv = SeparableConv1d(8, 4, 5, depth_multiplier=2, activation="elu", bias=True)
    assert conv.depthwise.out_channels == 16 and isinstance(conv.activation, nn.ELU)
    assert count(conv) == 16 * 5 + 16 + 16 * 4 + 4
    assert isinstance(SeparableConv1d(8, 4, 3).activation, nn.Identity)  # Xception: no activation by default
    with pytest.raises(ValueError, match="unknown activation"):
        SeparableConv1d(8, 4, 3, activation="tanh-ish")


@pytest.mark.parametrize("padding,stride,dilation,expected", [
    ("same", 1, 1, 100), ("same", 1, 4, 100), ("causal", 1, 3, 100), ("valid", 1, 1, 96), ("same", 2, 1, 50),
])
def test_1d_shapes(padding, stride, dilation, expected):
    conv = SeparableConv1d(3, 6, 5, stride=stride, dilation=dilation, padding=padding)
    assert conv(torch.randn(2, 3, 100)).shape == (2, 6, expected)


def test_2d_shapes_and_even_kernel():
    assert SeparableConv2d(3, 8, (3, 6), padding="same")(torch.randn(1, 3, 20, 30)).shape == (1, 8, 20, 30)
    assert SeparableConv2d(3, 8, 3, stride=2)(torch.randn(1, 3, 21, 21)).shape == (1, 8, 11, 11)


def _future_leak(module, x, t):
    """Largest change of outputs before frame t when inputs from frame t on change."""
    y = module(x)
    x2 = x.clone()
    x2[..., t:] = torch.randn_like(x2[..., t:])
    return (module(x2)[..., :t] - y[..., :t]).abs().max().item()


def test_causal_convs_do_not_see_the_future():
    x = torch.randn(1, 4, 64)
    assert _future_leak(SeparableConv1d(4, 4, 6, dilation=2, padding="causal"), x, 30) == 0
    assert _future_leak(SeparableConv1d(4, 4, 6, padding="same"), x, 30) > 0
    x2 = torch.randn(1, 4, 8, 64)
    assert _future_leak(SeparableConv2d(4, 4, 3, padding="causal"), x2, 30) == 0


def test_norms():
    x = torch.randn(3, 8, 50)
    assert torch.allclose(GlobalLayerNorm(8)(x), nn.GroupNorm(1, 8, eps=1e-8)(x), atol=1e-6)
    cln = CumulativeLayerNorm(8)
    assert _future_leak(cln, x, 20) == 0
    # at the last frame, cLN has seen everything: it equals gLN there
    assert torch.allclose(cln(x)[..., -1], GlobalLayerNorm(8)(x)[..., -1], atol=1e-4)
    cw = ChannelwiseLayerNorm(8)(x)
    assert torch.allclose(cw.mean(1), torch.zeros(3, 50), atol=1e-5)
    assert _future_leak(ChannelwiseLayerNorm(8), x, 20) == 0


def test_tcn_causal_with_causal_norm_and_rejects_gln():
    tcn = TCN(small(blocks=3, repeats=2, norm="cLN", causal=True))
    assert _future_leak(tcn, torch.randn(1, 8, 80), 40) < 1e-6
    assert _future_leak(TCN(small(blocks=3, repeats=2)), torch.randn(1, 8, 80), 40) > 0
    with pytest.raises(ValueError, match="TCNConfig.causal=True needs a causal norm"):
        small(causal=True, norm="gLN")


@pytest.mark.parametrize("fusion", ["concat", "add", "multiply", "film"])
def test_tcn_conditioning(fusion):
    tcn = TCN(small(blocks=2, repeats=2), cond_dim=5, fusion=fusion).eval()
    x = torch.randn(2, 8, 40)
    a, b = tcn(x, torch.randn(2, 5)), tcn(x, torch.randn(2, 5))
    assert a.shape == (2, 8, 40) and (a - b).abs().max() > 1e-4
    # the vector enters the first block of every stack
    expected_in = 8 + 5 if fusion == "concat" else 8
    assert [blk.in_conv.in_channels for blk in tcn.blocks] == [expected_in, 8, expected_in, 8]
    with pytest.raises(ValueError, match="pass cond"):
        tcn(x)


def test_fusion_shapes():
    x, cond = torch.randn(2, 6, 10), torch.randn(2, 3)
    assert SpeakerFusion("concat", 6, 3)(x, cond).shape == (2, 9, 10)
    assert torch.equal(SpeakerFusion("concat", 6, 3)(x, cond)[:, 6:, 4], cond)
    assert SpeakerFusion("film", 6, 3)(x, cond).shape == (2, 6, 10)


def test_tcn_weight_sharing():
    plain, point, depth, both = (TCN(small(blocks=4, repeats=3, share=s)) for s in SHARING)
    assert count(point) < count(plain) and count(depth) < count(plain) and count(both) < min(count(point), count(depth))
    assert point.blocks[1].in_conv is point.blocks[5].in_conv is point.blocks[9].in_conv
    assert point.blocks[1].norm1 is not point.blocks[5].norm1  # norms stay per block
    assert depth.blocks[4].depthwise is depth.blocks[7].depthwise and depth.blocks[0].depthwise is not depth.blocks[4].depthwise
    x = torch.randn(1, 8, 30)
    assert both(x).shape == (1, 8, 30)


def test_tcn_config_defaults_are_torchaudio_conv_tasnets():
    assert TCNConfig() == TCNConfig(channels=128, hidden=512, skip_channels=128, kernel_size=3, blocks=8, repeats=3,
                                    norm="gLN", causal=False, share="none")


@pytest.mark.parametrize("field,value", [("channels", 0), ("hidden", -1), ("skip_channels", 2.0), ("kernel_size", 0),
                                         ("blocks", True), ("repeats", 0), ("norm", "LN"), ("share", "all")])
def test_tcn_config_names_the_bad_field(field, value):
    with pytest.raises(ValueError, match=f"TCNConfig.{field}"):
        TCNConfig(**{field: value})


@pytest.mark.parametrize("share", SHARING)
def test_shared_convolutions_are_built_once(share, monkeypatch):
    """No block builds a 1x1 or depthwise convolution that sharing then replaces."""
    built, init = [], nn.Conv1d.__init__

    def counting_init(self, *args, **kwargs):
        built.append(self)
        init(self, *args, **kwargs)

    monkeypatch.setattr(nn.Conv1d, "__init__", counting_init)
    tcn = TCN(small(blocks=3, repeats=3, share=share))
    assert len(built) == len({id(m) for m in tcn.modules() if isinstance(m, nn.Conv1d)})


@pytest.mark.parametrize("share", SHARING)
def test_no_residual_conv_runs_for_the_last_block(share):
    """The last block's residual would be thrown away: with pointwise sharing it holds a shared one, never run."""
    tcn = TCN(small(blocks=3, repeats=2, share=share))
    calls = []
    for conv in {block.res_conv for block in tcn.blocks} - {None}:
        conv.register_forward_hook(lambda *args: calls.append(1))
    tcn(torch.randn(1, 8, 20))
    assert len(calls) == len(tcn.blocks) - 1


def test_masker_shapes_and_activations():
    masker = TCNMasker(12, 3, small(blocks=2, repeats=1))
    masks = masker(torch.randn(2, 12, 25))
    assert masks.shape == (2, 3, 12, 25) and masks.min() >= 0 and masks.max() <= 1
    soft = TCNMasker(12, 3, small(blocks=2, repeats=1), mask_act="softmax")
    assert torch.allclose(soft(torch.randn(2, 12, 25)).sum(1), torch.ones(2, 12, 25), atol=1e-5)
