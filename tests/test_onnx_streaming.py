"""The onnxruntime streaming engine (:class:`OnnxStreamingStep`): the fused step as one ONNX graph per stream, equal
to the reference step and to the offline model; its refusals; ``--stream --engine onnxruntime``."""
import pytest
import torch

pytest.importorskip("onnxruntime")

from sepaudio import audio, cli  # noqa: E402
from sepaudio.cli.options import ENGINE_CHOICES  # noqa: E402
from sepaudio.errors import ConfigError  # noqa: E402
from sepaudio.models import create_model  # noqa: E402
from sepaudio.nn import onnx_stream  # noqa: E402
from sepaudio.nn.fast_tcn import cpu_has_bf16, cpu_has_int8  # noqa: E402
from sepaudio.nn.onnx_stream import OnnxStreamingStep  # noqa: E402
from sepaudio.nn.streaming import ENGINES, StreamingStep  # noqa: E402
from test_fast_streaming import _cond, _model, _offline_and_streamed  # noqa: E402


@pytest.mark.parametrize("name", ["conv_tasnet", "conv_tasnet_zero_gain", "mitas", "tsenet_concat_stack",
                                  "tsenet_film_block", "tsenet_multiply_block", "tsenet_add_stack"])
def test_onnx_step_equals_reference_step(name):
    """Every fusion kind, softmax masks over three sources, cwLN with an even kernel, a norm1 that cannot fold; two
    streams with different speakers; chunks of 1 to 200 frames: the reference step's output and decoder tail to
    float32 rounding."""
    model = _model(name)
    ref = StreamingStep(model)
    with torch.no_grad():
        cond = _cond(model, 2)
        step = OnnxStreamingStep(ref, cond, batch=2)
        if cond is not None:
            assert len({id(session) for _, session in step.sessions}) == 2  # one graph per speaker
        s_ref, s_onnx = ref.initial_state(2), step.initial_state(2)
        for frames in (1, 5, 33, 200, 1, 5, 33, 100, 60):
            chunk = torch.randn(2, frames * ref.stride)
            expected, s_ref = ref(chunk, s_ref, cond)
            got, s_onnx = step(chunk, s_onnx)
            assert got.shape == expected.shape
            assert (got - expected).abs().max() <= 1e-5 * max(1.0, float(expected.abs().max()))
            assert (s_onnx[1] - s_ref[1]).abs().max() <= 1e-5


def test_streams_with_one_speaker_share_one_graph():
    model = _model("tsenet_film_block")
    with torch.no_grad():
        cond = _cond(model, 1).expand(3, -1)
        step = OnnxStreamingStep(StreamingStep(model), cond, batch=3)
    assert len({id(session) for _, session in step.sessions}) == 1


@pytest.mark.parametrize("name", ["tsenet_film_block", "mitas"])
def test_onnx_streamer_equals_offline(name):
    """Hops of 7 samples (shorter than a stride) and of 333, flushed at the end: the offline output to 1e-5."""
    model = _model(name)
    for hop in (7, 333):
        streamer, got, expected = _offline_and_streamed(model, "fp32", hop, engine="onnxruntime")
        assert isinstance(streamer.fast, OnnxStreamingStep)
        assert got.shape == expected.shape and (got - expected).abs().max() <= 1e-5
    # the stream after flush starts afresh: the same hops give the same output again
    x = 0.5 * torch.randn(1, 3000)
    first, again = (torch.cat([streamer(x[:, :1500]), streamer(x[:, 1500:]), streamer.flush()], -1)
                    for _ in range(2))
    assert torch.equal(first, again)


def test_a_stride_of_the_whole_window_streams():
    """No encoder context and no decoder tail to carry (stride = filter length)."""
    model = create_model("conv_tasnet", n_filters=16, filter_length=8, stride=8,
                         tcn=dict(channels=8, hidden=16, skip_channels=6, blocks=2, repeats=1, causal=True,
                                  norm="cLN")).eval()
    streamer, got, expected = _offline_and_streamed(model, "fp32", 77, engine="onnxruntime")
    assert got.shape == expected.shape and (got - expected).abs().max() <= 1e-5


def test_engine_refusals(monkeypatch):
    model = _model("conv_tasnet")
    runnable = [None] + (["int8"] if cpu_has_int8() else []) + (["bf16"] if cpu_has_bf16() else [])
    for precision in runnable:  # (the others are refused before, as model.fast refuses them)
        with pytest.raises(ConfigError, match="fp32 TCN models on the CPU.*--engine torch"):
            model.streamer(precision=precision, engine="onnxruntime")
    with pytest.raises(ConfigError, match="unknown streaming engine 'tvm'"):
        model.streamer(engine="tvm")
    slicenet = create_model("slicenet_tasnet", n_filters=16, filter_length=8,
                            slicenet=dict(channels=16, kernel_sizes=[3, 5], dilations=[1, 2], modules=2, groups=2,
                                          causal=True))
    with pytest.raises(ConfigError, match="SliceNetMasker"):
        slicenet.eval().streamer(engine="onnxruntime")
    monkeypatch.setattr(onnx_stream, "have_onnxruntime", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install 'sepaudio\[export\]'.*--engine torch"):
        model.streamer(engine="onnxruntime")


def test_cli_engines_are_the_streamers():
    assert ENGINE_CHOICES == ENGINES


def test_stream_from_the_command_line_with_onnxruntime(tmp_path, capsys):
    """``separate --stream --engine onnxruntime`` writes what the torch engine writes (float WAV: to 1e-5)."""
    model = _model("conv_tasnet")
    model.save(tmp_path / "m.pt")
    audio.save(tmp_path / "mix.wav", 0.3 * torch.randn(2401), 8000)
    outs = {}
    for engine in ENGINES:
        assert cli.main(["separate", "--stream", "--hop-ms", "8", "--model", str(tmp_path / "m.pt"),
                         str(tmp_path / "mix.wav"), "-o", str(tmp_path / engine), "--engine", engine]) == 0
        outs[engine] = audio.load(tmp_path / engine / "mix_s1.wav")[0]
    assert outs["torch"].shape == outs["onnxruntime"].shape == (1, 2401)
    assert (outs["torch"] - outs["onnxruntime"]).abs().max() <= 1e-5
    assert cli.main(["separate", "--stream", "--model", str(tmp_path / "m.pt"), str(tmp_path / "mix.wav"), "-o",
                     str(tmp_path / "int8"), "--engine", "onnxruntime", "--precision", "int8"]) != 0
    assert "--engine torch" in capsys.readouterr().err
