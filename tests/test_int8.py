"""int8 inference (``model.fast("int8")``, ``--precision int8``): close to the plain path, refused where oneDNN's
int8 kernels are missing, training untouched."""
import copy

import pytest
import soundfile
import torch

from sepaudio import cli
from sepaudio.errors import ConfigError
from sepaudio.models import ConvTasNet, MiTAS, TseNet
from sepaudio.nn import fast_tcn
from test_fast_inference import SMALL, TCN, check_refused, randomized

#: error energy of int8 against the plain output, in dB of the output's energy. Measured on these randomized models
#: at 37 to 8000 samples (AVX2, 7-bit activations): -33.5 dB at worst, -35 to -47 dB typically (-20.5 dB on a
#: 1-sample input, not checked); 8-bit activations on AVX2, whose int16 pair sums saturate, gave up to -4.2 dB.
TOLERANCE_DB = -30.0
needs_int8 = pytest.mark.skipif(not fast_tcn.cpu_has_int8(), reason="no oneDNN int8 kernels on this CPU / build")


def error_db(got: torch.Tensor, ref: torch.Tensor) -> float:
    return float(10 * torch.log10((got - ref).pow(2).sum() / ref.pow(2).sum()))


@needs_int8
@pytest.mark.parametrize("make,cond", [
    (lambda: ConvTasNet(**SMALL, tcn=TCN), ()),
    (lambda: ConvTasNet(**SMALL, tcn={**TCN, "norm": "cLN", "causal": True}), ()),
    (lambda: ConvTasNet(n_src=3, mask_act="softmax", **SMALL, tcn={**TCN, "norm": "BN", "kernel_size": 4}), ()),
    (lambda: MiTAS(**SMALL, tcn={**TCN, "share": "both"}), ()),
    (lambda: TseNet(**SMALL, tcn=TCN, ivector_dim=6, speaker_dim=5, fusion="concat"), (torch.randn(2, 6),)),
    (lambda: TseNet(**SMALL, tcn=TCN, ivector_dim=6, speaker_dim=5, fusion="film"), (torch.randn(2, 6),)),
], ids=["gLN", "cLN-causal", "BN-softmax", "mitas", "tse-concat", "tse-film"])
def test_int8_close_to_plain(make, cond):
    plain = randomized(make())
    fast = copy.deepcopy(plain).fast("int8")
    exact = copy.deepcopy(plain).fast("fp32")
    assert all(block.q_out is not None for block in fast._fast_masker.blocks)
    torch.manual_seed(2)
    with torch.inference_mode():
        for length in (37, 1001):
            x = torch.randn(2, length)
            ref, got = plain(x, *cond), fast(x, *cond)
            assert got.shape == ref.shape and got.dtype == torch.float32
            assert error_db(got, ref) < TOLERANCE_DB, f"int8 error {error_db(got, ref):.1f} dB at length {length}"
            assert error_db(exact(x, *cond), ref) < -100  # so the int8 error above is quantization's, not a fold's
            assert error_db(got, ref) > -100  # and the GEMMs did run in integers


@needs_int8
def test_int8_training_mode_unaffected():
    """Training mode takes the plain path (with gradients); eval mode returns to int8."""
    model = randomized(ConvTasNet(**SMALL, tcn=TCN))
    plain = copy.deepcopy(model)
    model.fast("int8")
    x = torch.randn(1, 300)
    model.train()
    out = model(x)
    assert out.requires_grad
    out.pow(2).mean().backward()
    assert all(p.grad is not None for p in model.masker.parameters() if p.requires_grad)
    torch.testing.assert_close(out, plain.train()(x))
    model.eval()
    with torch.inference_mode():
        got = model(x)
        assert -100 < error_db(got, plain.eval()(x)) < TOLERANCE_DB


def test_int8_refused_without_kernels(tmp_path, monkeypatch, capsys):
    """Where oneDNN's int8 kernels are missing, ``fast("int8")`` and ``--precision int8`` name fp32; a refused call
    leaves the model as it was."""
    monkeypatch.setattr(fast_tcn, "cpu_has_int8", lambda: False)
    check_refused(ConvTasNet(**SMALL, tcn=TCN).eval(), "int8", r"no oneDNN int8 kernels", tmp_path, capsys)


def test_int8_refused_on_a_gpu(monkeypatch):
    model = ConvTasNet(**SMALL, tcn=TCN).eval()
    monkeypatch.setattr(torch.Tensor, "device", property(lambda self: torch.device("cuda", 0)))
    with pytest.raises(ConfigError, match=r"CPU only; use fp32 \(--precision fp32\)"):
        model.fast("int8")


@needs_int8
def test_cli_separate_int8(tmp_path):
    torch.manual_seed(0)
    model = randomized(ConvTasNet(**SMALL, tcn=TCN))
    model.save(tmp_path / "m.pt")
    wav = 0.1 * torch.randn(4000)
    soundfile.write(tmp_path / "mix.wav", wav.numpy(), 8000)
    args = ["separate", "--model", str(tmp_path / "m.pt"), str(tmp_path / "mix.wav"), "--chunk-seconds", "1",
            "--overlap-seconds", "0.25"]
    assert cli.main([*args, "-o", str(tmp_path / "int8"), "--precision", "int8"]) == 0
    assert cli.main([*args, "-o", str(tmp_path / "plain")]) == 0
    for source in ("mix_s1.wav", "mix_s2.wav"):
        got, ref = (torch.from_numpy(soundfile.read(tmp_path / folder / source, dtype="float32")[0])
                    for folder in ("int8", "plain"))
        assert got.shape == ref.shape == wav.shape
        assert -100 < error_db(got, ref) < TOLERANCE_DB + 5  # +5 dB: 16-bit files


def test_precision_int8_on_every_inference_command():
    parser = cli.build_parser()
    for command in (["separate", "--model", "m.pt", "x.wav", "-o", "out"],
                    ["extract", "--model", "m.pt", "--mixture", "x.wav", "--enroll", "e.wav", "-o", "out"],
                    ["evaluate", "c.yml"]):
        assert parser.parse_args([*command, "--precision", "int8"]).precision == "int8"
