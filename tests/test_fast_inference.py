"""The fused fast inference path (``EncoderMaskerDecoder.fast``) against the plain one."""
import copy

import pytest
import torch

from sepaudio.errors import ConfigError
from sepaudio.models import ConvTasNet, MiTAS, TseNet
from sepaudio.nn import fast_tcn
from sepaudio.separate import load_separator

SMALL = dict(n_filters=24, filter_length=8)
TCN = dict(channels=12, hidden=20, skip_channels=10, blocks=3, repeats=2)
LENGTHS = (1, 37, 400, 1001)
#: oneDNN runs bfloat16 only with AVX512-BW/VL/DQ or AVX-NE-CONVERT: on an AVX2 CPU the bf16 checks cannot run
needs_bf16 = pytest.mark.skipif(not fast_tcn.cpu_has_bf16(), reason="this CPU has no bfloat16 instructions")


def randomized(model):
    """Eval-mode model whose norms, PReLUs and BN statistics are far from their initial values (so that every
    fold is exercised)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name or "prelu" in name:
                param.add_(torch.randn_like(param) * 0.5)
        for name, buf in model.named_buffers():
            if "running_mean" in name:
                buf.normal_()
            elif "running_var" in name:
                buf.uniform_(0.5, 2)
    return model.eval()


def check(model, *cond, lengths=LENGTHS, batch=2, bf16=False):
    """Fast fp32 equal to the plain path to 1e-4; with ``bf16`` (where the CPU has it) fast bf16 within -25 dB."""
    plain = randomized(model)
    fast = copy.deepcopy(plain).fast("fp32")
    half = copy.deepcopy(plain).fast("bf16") if bf16 and fast_tcn.cpu_has_bf16() else None
    torch.manual_seed(2)
    with torch.inference_mode():
        for length in lengths:
            x = torch.randn(batch, length)
            ref = plain(x, *cond)
            assert fast._fast_masker is not None
            torch.testing.assert_close(fast(x, *cond), ref, atol=1e-4, rtol=1e-4, msg=f"length {length}")
            if half is not None:
                err = (half(x, *cond) - ref).pow(2).sum() / ref.pow(2).sum()
                assert err < 10 ** -2.5, f"bf16 error {10 * err.log10():.1f} dB at length {length}"


@pytest.mark.parametrize("share", ["none", "pointwise", "depthwise", "both"])
def test_sharing_modes(share):
    check(MiTAS(**SMALL, tcn={**TCN, "share": share}), bf16=share == "none")


@pytest.mark.parametrize("norm,causal", [("gLN", False), ("cLN", True), ("cwLN", True), ("cwLN", False),
                                         ("BN", False)])
def test_norms_and_causal(norm, causal):
    check(ConvTasNet(**SMALL, tcn={**TCN, "norm": norm, "causal": causal}))


@pytest.mark.parametrize("mask_act", ["relu", "softmax"])
def test_mask_activations_and_kernel(mask_act):
    check(ConvTasNet(n_src=3, mask_act=mask_act, **SMALL, tcn={**TCN, "kernel_size": 4}), lengths=(5, 333))


@needs_bf16
def test_torchaudio_default_size_bf16():
    torchaudio = pytest.importorskip("torchaudio")
    torch.manual_seed(0)
    check(ConvTasNet.from_torchaudio(torchaudio.models.ConvTasNet()), lengths=(1601,), batch=1, bf16=True)


@pytest.mark.parametrize("fusion", ["concat", "add", "multiply", "film"])
def test_tsenet_ivector(fusion):
    model = TseNet(**SMALL, tcn=TCN, ivector_dim=6, speaker_dim=5, fusion=fusion)
    check(model, torch.randn(2, 6), lengths=(37, 801), bf16=fusion == "concat")


@pytest.mark.parametrize("fusion", ["concat", "film"])
def test_tsenet_fusion_at_every_block(fusion):
    model = TseNet(**SMALL, tcn=TCN, ivector_dim=6, speaker_dim=5, fusion=fusion, fuse_at="block")
    check(model, torch.randn(2, 6), lengths=(37, 801))


def test_tsenet_encoder_conditioning():
    model = TseNet(**SMALL, tcn=TCN, conditioning="encoder", speaker_dim=5, speaker_channels=8, speaker_blocks=1)
    check(model, torch.randn(2, 500), lengths=(37, 801))


def test_plain_path_kept_for_training_and_saving(tmp_path):
    model = randomized(ConvTasNet(**SMALL, tcn=TCN))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.fast("fp32")
    assert model.state_dict().keys() == state.keys()
    model.train()
    x = torch.randn(1, 300)
    out = model(x)
    assert out.requires_grad  # training mode: the plain path, with gradients
    with pytest.raises(ValueError, match="precision"):
        model.fast("fp16")
    twin = copy.deepcopy(model.eval().fast("fp32"))
    with torch.inference_mode():
        torch.testing.assert_close(twin(x), model(x))
    model.save(tmp_path / "m.pt")
    loaded = load_separator(tmp_path / "m.pt", precision="fp32")
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), model.fast(None)(x), atol=1e-4, rtol=1e-4)
    assert load_separator(tmp_path / "m.pt")._fast_masker is None


@needs_bf16
def test_load_extractor_precision(tmp_path):
    from sepaudio.extract import load_extractor

    model = TseNet(**SMALL, tcn=TCN, conditioning="encoder", speaker_dim=5, speaker_channels=8, speaker_blocks=1)
    model.save(tmp_path / "tse.pt")
    loaded, _ = load_extractor(tmp_path / "tse.pt", precision="bf16")
    assert loaded._fast_masker is not None and loaded._fast_masker.dtype == torch.bfloat16


def test_bf16_refused_on_a_cpu_without_it(tmp_path, monkeypatch, capsys):
    """Where oneDNN has no bfloat16 kernels, ``fast("bf16")`` and ``--precision bf16`` say so and name fp32, instead
    of failing inside torch; fp32 still runs, and a refused call leaves the model as it was."""
    from sepaudio import cli

    monkeypatch.setattr(fast_tcn, "cpu_has_bf16", lambda: False)
    check_refused(randomized(ConvTasNet(**SMALL, tcn=TCN)), "bf16", r"no bfloat16 instructions", tmp_path, capsys)


def check_refused(model, precision: str, reason: str, tmp_path, capsys) -> None:
    """``fast(precision)`` and ``separate --precision`` are refused naming ``reason`` and fp32; the model keeps its
    fp32 fused path and nothing is written."""
    import soundfile

    from sepaudio import cli

    model = model.fast("fp32")
    with pytest.raises(ConfigError, match=reason + r".*--precision fp32"):
        model.fast(precision)
    assert model._fast_masker is not None and model._fast_masker.dtype == torch.float32
    model.save(tmp_path / "m.pt")
    soundfile.write(tmp_path / "mix.wav", torch.randn(800).numpy() * 0.1, 8000)
    assert cli.main(["separate", "--model", str(tmp_path / "m.pt"), str(tmp_path / "mix.wav"), "-o",
                     str(tmp_path / "out"), "--precision", precision]) != 0
    assert "--precision fp32" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
