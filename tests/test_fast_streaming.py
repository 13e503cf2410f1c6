"""The fused streaming step (:class:`FastStreamingStep`): equal to the reference step, honours precision."""
import pytest
import torch

from sepaudio import cli
from sepaudio.errors import ConfigError
from sepaudio.models import ConvTasNet, MiTAS, TseNet, create_model
from sepaudio.nn.fast_stream import FastStreamingStep
from sepaudio.nn.fast_tcn import cpu_has_bf16, cpu_has_int8
from sepaudio.nn.streaming import StreamingStep

TCN = dict(channels=8, hidden=16, skip_channels=6, blocks=3, repeats=2, causal=True, norm="cLN")


def _perturbed(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def _model(name):
    if name.startswith("tsenet"):
        _, fusion, fuse_at = name.split("_")
        return _perturbed(TseNet(n_filters=16, filter_length=20, tcn=TCN, ivector_dim=10, speaker_dim=4,
                                 fusion=fusion, fuse_at=fuse_at))
    if name == "mitas":  # shared weights, cwLN, an even kernel
        return _perturbed(MiTAS(n_filters=16, filter_length=16, tcn={**TCN, "norm": "cwLN", "kernel_size": 4}))
    model = _perturbed(ConvTasNet(n_filters=16, filter_length=12, stride=4, n_src=3, mask_act="softmax", tcn=TCN))
    return _zero_gain(model) if name == "conv_tasnet_zero_gain" else model


def _zero_gain(model):
    """A norm1 scale with a zero channel: its affine cannot go into the depthwise kernel (the explicit path)."""
    with torch.no_grad():
        model.masker.tcn.blocks[1].norm1.weight[3] = 0.0
    return model


def _cond(model, batch):
    return model.embed(torch.randn(batch, 10)) if isinstance(model, TseNet) else None


@pytest.mark.parametrize("name", ["conv_tasnet", "conv_tasnet_zero_gain", "mitas", "tsenet_concat_stack",
                                  "tsenet_film_block", "tsenet_multiply_block", "tsenet_add_stack"])
def test_fast_step_equals_reference_step(name):
    """Chunks of 1 to 200 frames (past the room of the depthwise buffers, ROOM = 128, more than once), two streams
    with different speakers: the reference step's output and the decoder tail it carries, to float32 rounding; the
    same chunk on the same state gives the same output."""
    model = _model(name)
    ref = StreamingStep(model)
    with torch.no_grad():
        cond = _cond(model, 2)
        fast = FastStreamingStep(ref, cond)
        s_ref, s_fast = ref.initial_state(2), fast.initial_state(2)
        for frames in (1, 5, 33, 200, 1, 5, 33, 100, 60):
            chunk = torch.randn(2, frames * ref.stride)
            expected, s_ref = ref(chunk, s_ref, cond)
            got, new_fast = fast(chunk, s_fast)
            again, _ = fast(chunk, s_fast)
            s_fast = new_fast
            assert got.shape == expected.shape
            assert (got - expected).abs().max() <= 1e-5 * max(1.0, float(expected.abs().max()))
            assert torch.equal(got, again)
            assert (s_fast[1] - s_ref[1]).abs().max() <= 1e-5


def test_bf16_step_is_near_the_reference():
    """The bf16 step's arithmetic (torch runs bfloat16 matrix products on any CPU, slowly where oneDNN cannot:
    ``model.streamer`` refuses it there, this test builds the step directly)."""
    model = _model("tsenet_film_block")
    ref = StreamingStep(model)
    with torch.no_grad():
        cond = _cond(model, 1)
        fast = FastStreamingStep(ref, cond, "bf16")
        s_ref, s_fast = ref.initial_state(1), fast.initial_state(1)
        got, expected = [], []
        for frames in (3, 40, 7, 60):
            chunk = 0.5 * torch.randn(1, frames * ref.stride)
            out, s_ref = ref(chunk, s_ref, cond)
            expected.append(out)
            out, s_fast = fast(chunk, s_fast)
            got.append(out)
    assert got[0].dtype == torch.float32 and s_fast[4][0][0].dtype == torch.bfloat16
    assert _snr(torch.cat(got, -1), torch.cat(expected, -1)) > 20


def _offline_and_streamed(model, precision, hop=100, length=2403, engine="torch"):
    """The stream of one seeded input and speaker through ``model.streamer(precision=precision, engine=engine)``,
    and the offline output."""
    torch.manual_seed(0)
    x = 0.5 * torch.randn(1, length)
    with torch.no_grad():
        cond = _cond(model, 1)
        expected = model.extract_embedded(x, cond) if cond is not None else model(x)
    streamer = model.streamer(cond, precision=precision, engine=engine)
    got = torch.cat([streamer(c) for c in x.split(hop, -1)] + [streamer.flush()], -1)
    return streamer, got, expected


def test_streamer_runs_the_fused_step_by_default_and_the_reference_on_request():
    model = _model("tsenet_film_block")
    fast, got, expected = _offline_and_streamed(model, "fp32")
    assert fast.fast is not None and (got - expected).abs().max() <= 1e-5
    ref, got, _ = _offline_and_streamed(model, None)
    assert ref.fast is None and (got - expected).abs().max() <= 1e-5
    assert model.streamer(model.embed(torch.randn(1, 10))).fast is not None  # the default


def _snr(got, expected):
    return float(10 * torch.log10(expected.pow(2).sum() / (got - expected).pow(2).sum()))


@pytest.mark.parametrize("precision, supported, reason", [("int8", cpu_has_int8, "int8"),
                                                           ("bf16", cpu_has_bf16, "bfloat16")])
def test_stream_precision(precision, supported, reason, tmp_path, capsys):
    """Where the CPU runs it: the fused step in that precision, near the offline fp32 output; elsewhere refused as
    ``model.fast`` refuses it, from the API and from ``--stream --precision``."""
    model = _model("conv_tasnet")
    if supported():
        streamer, got, expected = _offline_and_streamed(model, precision)
        assert streamer.fast is not None and streamer.fast.dtype == (torch.bfloat16 if precision == "bf16"
                                                                     else torch.float32)
        assert _snr(got, expected) > 20  # dB
        return
    with pytest.raises(ConfigError, match=reason + r".*--precision fp32"):
        model.fast(precision)
    with pytest.raises(ConfigError, match=reason + r".*--precision fp32"):
        model.streamer(precision=precision)
    import soundfile

    model.save(tmp_path / "m.pt")
    soundfile.write(tmp_path / "mix.wav", torch.randn(800).numpy() * 0.1, 8000)
    assert cli.main(["separate", "--stream", "--model", str(tmp_path / "m.pt"), str(tmp_path / "mix.wav"), "-o",
                     str(tmp_path / "out"), "--precision", precision]) != 0
    assert "--precision fp32" in capsys.readouterr().err


def test_int8_stream_from_the_command_line(tmp_path):
    """``extract --stream --precision int8`` writes an output near the fp32 stream's."""
    if not cpu_has_int8():
        pytest.skip("this CPU or torch build has no oneDNN int8 kernels (the refusal is tested above)")
    import soundfile

    model = _model("conv_tasnet")
    model.save(tmp_path / "m.pt")
    soundfile.write(tmp_path / "mix.wav", 0.3 * torch.randn(2400).numpy(), 8000)
    outs = {}
    for precision in ("fp32", "int8"):
        assert cli.main(["separate", "--stream", "--hop-ms", "8", "--model", str(tmp_path / "m.pt"),
                         str(tmp_path / "mix.wav"), "-o", str(tmp_path / precision), "--precision", precision]) == 0
        outs[precision] = torch.from_numpy(soundfile.read(tmp_path / precision / "mix_s1.wav")[0])
    assert _snr(outs["int8"], outs["fp32"]) > 15


def test_slicenet_streams_through_the_reference_step():
    model = create_model("slicenet_tasnet", n_filters=16, filter_length=8,
                         slicenet=dict(channels=16, kernel_sizes=[3, 5], dilations=[1, 2], modules=2, groups=2,
                                       causal=True))
    streamer = model.eval().streamer(precision="fp32")
    assert streamer.fast is None
    with pytest.raises(ConfigError, match="no int8 path"):
        model.streamer(precision="int8")
