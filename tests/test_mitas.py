"""MiTAS: TCN weight sharing (parameter counts, shared tensors, per-block norms), save / load, forward."""
import pytest
import torch

from sepaudio.models import ConvTasNet, MiTAS, create_model, load_model
from sepaudio.nn import TCN, TCNConfig

TCN_SMALL = dict(channels=8, hidden=16, skip_channels=8, blocks=3, repeats=2)
SMALL = dict(n_filters=16, filter_length=8, tcn=TCN_SMALL)


def expected_tcn_parameters(channels, hidden, skip, kernel, blocks, repeats, share, in_first=None):
    """Parameter count of a TCN derived block by block from its definition (weights + biases)."""
    in_first = in_first or channels
    in_convs = [(in_first if x == 0 else channels) * hidden + hidden for x in range(blocks)]
    residual, skip_conv = hidden * channels + channels, hidden * skip + skip
    depthwise = hidden * kernel + hidden
    private = 2 + 2 * 2 * hidden  # two PReLUs (one weight each), two gLNs (gain and bias)
    pointwise_stack = sum(in_convs) + blocks * (residual + skip_conv)
    share_pw = share in ("pointwise", "both")
    share_dw = share in ("depthwise", "both")
    total = (1 if share_pw else repeats) * pointwise_stack
    if not share_pw or repeats == 1:
        total -= residual  # the last block of the network has no residual 1x1
    total += (repeats if share_dw else repeats * blocks) * depthwise
    return total + repeats * blocks * private


@pytest.mark.parametrize("share", ["none", "pointwise", "depthwise", "both"])
@pytest.mark.parametrize("repeats", [1, 3])
def test_tcn_parameter_count(share, repeats):
    tcn = TCN(TCNConfig(channels=8, hidden=12, skip_channels=6, kernel_size=3, blocks=4, repeats=repeats, share=share))
    count = sum(p.numel() for p in tcn.parameters())
    assert count == expected_tcn_parameters(8, 12, 6, 3, 4, repeats, share)


def test_conditioned_tcn_shares_too():
    """TseNet's conditioned stack compresses with one argument: the fused first blocks share their 1x1 too."""
    sizes = dict(channels=8, hidden=12, skip_channels=6, blocks=3, repeats=2)
    plain = TCN(TCNConfig(**sizes), cond_dim=5)
    shared = TCN(TCNConfig(**sizes, share="both"), cond_dim=5)
    fusion = sum(p.numel() for p in plain.fusions.parameters())
    in_first = plain.fusions[0].out_channels
    assert sum(p.numel() for p in plain.parameters()) - fusion == expected_tcn_parameters(
        8, 12, 6, 3, 3, 2, "none", in_first)
    assert sum(p.numel() for p in shared.parameters()) - fusion == expected_tcn_parameters(
        8, 12, 6, 3, 3, 2, "both", in_first)
    assert shared.blocks[3].in_conv is shared.blocks[0].in_conv
    out = shared(torch.randn(2, 8, 20), torch.randn(2, 5))
    assert out.shape == (2, 6, 20)


def test_mitas_against_conv_tasnet_at_paper_size():
    """At Conv-TasNet's hyper-parameters (X=8, R=3) the separator shrinks by about R."""
    conv_tasnet, mitas = ConvTasNet(), MiTAS()
    assert conv_tasnet.num_parameters == 4_984_881  # torchaudio's count
    tcn = lambda m: sum(p.numel() for p in m.masker.tcn.parameters())  # noqa: E731
    assert tcn(conv_tasnet) == expected_tcn_parameters(128, 512, 128, 3, 8, 3, "none")
    assert tcn(mitas) == expected_tcn_parameters(128, 512, 128, 3, 8, 3, "both")
    assert 2.8 < tcn(conv_tasnet) / tcn(mitas) < 3.0
    # encoder, decoder, bottleneck and output convs are not shared: the difference is all in the TCN
    assert conv_tasnet.num_parameters - mitas.num_parameters == tcn(conv_tasnet) - tcn(mitas)
    assert mitas.num_parameters < 0.4 * conv_tasnet.num_parameters


def test_shared_modules_are_the_same_tensors_and_norms_are_not():
    model = MiTAS(**{**SMALL, "tcn": {**TCN_SMALL, "repeats": 3}})
    blocks, x_count = model.masker.tcn.blocks, TCN_SMALL["blocks"]
    for r in range(1, 3):
        for x in range(x_count):
            block, first = blocks[r * x_count + x], blocks[x]
            for name in ("in_conv", "res_conv", "skip_conv"):
                assert getattr(block, name).weight is getattr(first, name).weight
    for r in range(3):
        stack = blocks[r * x_count:(r + 1) * x_count]
        assert all(b.depthwise.weight is stack[0].depthwise.weight for b in stack)
        assert [b.dilation for b in stack] == [1, 2, 4]
    assert blocks[0].depthwise.weight is not blocks[x_count].depthwise.weight  # one depthwise kernel per stack
    private = [p for b in blocks for m in (b.norm1, b.norm2, b.prelu1, b.prelu2) for p in m.parameters()]
    assert len({id(p) for p in private}) == len(private) == len(blocks) * 6


def test_shared_weights_get_gradients_from_every_stack():
    model = MiTAS(**SMALL)
    blocks = model.masker.tcn.blocks
    out = model(torch.randn(1, 800))
    # gradient through the second stack only: the shared 1x1 of the first stack still receives it
    skip = blocks[TCN_SMALL["blocks"]].skip_conv
    assert skip is blocks[0].skip_conv
    (out ** 2).mean().backward()
    assert skip.weight.grad is not None and skip.weight.grad.abs().sum() > 0


def test_mitas_is_conv_tasnet_with_sharing(tmp_path):
    mitas = MiTAS(**SMALL)
    same = ConvTasNet(**{**SMALL, "tcn": {**TCN_SMALL, "share": "both"}})
    same.load_state_dict(mitas.state_dict())
    wav = torch.randn(2, 1000)
    torch.testing.assert_close(mitas(wav), same(wav))
    assert create_model("mitas", **SMALL).num_parameters == mitas.num_parameters

    path = mitas.save(tmp_path / "mitas.pt")
    loaded = load_model(path)
    assert type(loaded) is MiTAS and loaded.masker.tcn.config.share == "both"
    torch.testing.assert_close(loaded(wav), mitas.eval()(wav))
    tcn = loaded.masker.tcn
    assert tcn.blocks[TCN_SMALL["blocks"]].in_conv.weight is tcn.blocks[0].in_conv.weight  # sharing survives loading


def test_mitas_shares_both_unless_its_tcn_names_a_sharing():
    assert MiTAS(**SMALL).masker.tcn.config.share == "both"
    assert MiTAS(**{**SMALL, "tcn": {**TCN_SMALL, "share": "pointwise"}}).masker.tcn.config.share == "pointwise"
    assert MiTAS().masker.tcn.config == TCNConfig(share="both")
    assert ConvTasNet().masker.tcn.config == TCNConfig()


def test_mitas_separates_n_sources():
    model = MiTAS(**SMALL, n_src=4)
    assert model(torch.randn(3, 1234)).shape == (3, 4, 1234)


def test_info_reports_parameters(tmp_path, capsys):
    from sepaudio.cli import main

    MiTAS(**SMALL).save(tmp_path / "m.pt")
    assert main(["info", str(tmp_path / "m.pt")]) == 0
    out = capsys.readouterr().out
    assert "mitas" in out and f"{MiTAS(**SMALL).num_parameters:,}" in out


def test_tsenet_compresses_with_one_argument():
    from sepaudio.models import TseNet

    small = dict(n_filters=32, ivector_dim=10, speaker_dim=8)
    tcn = dict(channels=16, hidden=32, skip_channels=16, blocks=3, repeats=3)
    plain, shared = TseNet(**small, tcn=tcn), TseNet(**small, tcn={**tcn, "share": "both"})
    assert shared.num_parameters < plain.num_parameters * 0.6
    mixture, ivector = torch.randn(2, 800), torch.randn(2, 10)
    assert shared(mixture, ivector).shape == plain(mixture, ivector).shape
