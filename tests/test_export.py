"""Export round trips: every model family to ONNX (run by onnxruntime) and TorchScript (``torch.jit.load``), each
file run at two input lengths and compared with PyTorch to 1e-4; the streaming step with its state in and out."""
import pytest
import torch

from sepaudio.cli import main
from sepaudio.export import DFTSpectrogram, compare, example_inputs, export, input_names
from sepaudio.features import STFTBands
from sepaudio.models import ConvTasNet, MiTAS, TseNet, create_model

pytest.importorskip("onnxruntime")

TCN = {"channels": 8, "hidden": 16, "skip_channels": 8, "blocks": 2, "repeats": 2}
CAUSAL = {**TCN, "causal": True, "norm": "cLN"}
SMALL_STFT = {"n_fft": 256, "hop_length": 64, "win_length": 200}

FAMILIES = {
    "conv_tasnet": lambda: ConvTasNet(n_filters=16, tcn=TCN),
    "mitas": lambda: MiTAS(n_filters=16, tcn=TCN),
    "tsenet_ivector": lambda: TseNet(n_filters=16, ivector_dim=10, speaker_dim=6, tcn=TCN),
    "tsenet_encoder": lambda: TseNet(n_filters=16, conditioning="encoder", speaker_dim=6, speaker_channels=8,
                                     speaker_blocks=2, fusion="film", fuse_at="block", tcn=TCN),
    "swishnet": lambda: create_model("swishnet_slim"),
    "esresnet_attention": lambda: create_model("esresnet_attention", num_classes=3, sample_rate=8000,
                                               frontend_args=SMALL_STFT),
    "xception": lambda: create_model("spectrogram_classifier", backbone="xception", num_classes=3,
                                     backbone_args={"middle_blocks": 1}, frontend_args={"n_mels": 32}),
    "mobilenet": lambda: create_model("spectrogram_classifier", backbone="mobilenet_v1_025", num_classes=3),
    "pydmobilenet": lambda: create_model("spectrogram_classifier", backbone="pydmobilenet_add29", num_classes=3,
                                         frontend_args={"n_mels": 32}),
}
STREAMING = {
    "conv_tasnet_step": lambda: ConvTasNet(n_filters=16, tcn=CAUSAL),
    "tsenet_step": lambda: TseNet(n_filters=16, ivector_dim=10, speaker_dim=6, tcn={**CAUSAL, "norm": "cwLN"},
                                  fusion="film", fuse_at="block"),  # tse_mini's conditioning
}


def build(name):
    """The model, its batch norms set to the statistics of one batch (fresh ones are the identity, which lets a
    deep network's activations die out)."""
    torch.manual_seed(0)
    model = (FAMILIES.get(name) or STREAMING[name])()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if norms:
        for norm in norms:
            norm.momentum = 1.0
        with torch.no_grad():
            model.train()(*example_inputs(model, int(model.sample_rate), batch=4, seed=1))
    return model.eval()


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_export_round_trip(name, fmt, tmp_path):
    model = build(name)
    path = export(model, tmp_path / f"{name}.{fmt}", fmt)
    rate = model.sample_rate
    lengths = (rate // 2 + 7, rate + rate // 5 + 3)  # neither is the tracing length (one second)
    diffs = compare(model, path, lengths)
    assert max(diffs.values()) < 1e-4, diffs
    with torch.no_grad():  # the comparison is not between constants
        out = model(*example_inputs(model, lengths[0]))
    assert (out[0] - out[1]).abs().max() > 1e-3


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("name", sorted(STREAMING))
def test_streaming_step_round_trip(name, fmt, tmp_path):
    model = build(name)
    path = export(model, tmp_path / f"{name}.{fmt}", fmt, streaming=True)
    diffs = compare(model, path, (40, 200), streaming=True)  # two steps: state in, state out
    assert max(diffs.values()) < 1e-4, diffs
    names = input_names(model, streaming=True)
    assert names[:2] == (["chunk", "embedding"] if name == "tsenet_step" else ["chunk", "context"])


def test_dft_spectrogram_equals_torchaudio():
    front = STFTBands(**SMALL_STFT)
    wav = torch.randn(2, 3001)
    spec = front.transform
    assert torch.allclose(DFTSpectrogram(spec)(wav), spec(wav), rtol=1e-4, atol=1e-4 * spec(wav).max())


def test_export_command(tmp_path, capsys):
    model = build("conv_tasnet")
    model.save(tmp_path / "model.pt")
    assert main(["export", str(tmp_path / "model.pt"), "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 0
    out = capsys.readouterr().out
    assert "m.onnx" in out and "max |difference| from PyTorch" in out
    # a non-causal model has no streaming step; a classifier neither: one line naming the file, exit status 2
    code = main(["export", str(tmp_path / "model.pt"), "--format", "onnx", "-o", str(tmp_path / "s.onnx"),
                 "--streaming"])
    assert code == 2 and "not causal" in capsys.readouterr().err
    assert not (tmp_path / "s.onnx").exists()
