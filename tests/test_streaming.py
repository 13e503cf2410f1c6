"""Streaming: a causal model fed hop by hop gives its offline output; ``extract`` / ``separate --stream``."""
import io
import sys
from pathlib import Path

import pytest
import torch

from sepaudio import audio
from sepaudio.cli import main
from sepaudio.models import ConvTasNet, MiTAS, TseNet, create_model
from sepaudio.nn.streaming import StreamingStep
from sepaudio.train import load_config

RATE = 8000
TCN = dict(channels=8, hidden=16, skip_channels=8, blocks=3, repeats=2, causal=True, norm="cLN")
#: 1 ms, 16 ms, 1 s at 8 kHz, and hops that divide neither the length nor the stride
HOPS = (8, 128, 8000, 333, 3)


def _perturbed(model):
    """Move the PReLU slopes and norm affines off their defaults so that every weight matters."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def _streamed(streamer, x, hops):
    """Feed ``x`` in hops cycling through ``hops``; check no output waits longer than the latency bound."""
    outs, start, k = [], 0, 0
    while start < x.shape[-1]:
        hop = hops[k % len(hops)]
        outs.append(streamer(x[..., start:start + hop]))
        start, k = start + hop, k + 1
        sent = sum(o.shape[-1] for o in outs)
        assert min(start, x.shape[-1]) - streamer.window <= sent <= min(start, x.shape[-1])
    return torch.cat(outs + [streamer.flush()], dim=-1)


def _tsenet(conditioning):
    if conditioning in ("ivector", "block"):  # block: fused at every block
        return TseNet(n_filters=16, filter_length=20, tcn=TCN, ivector_dim=10, speaker_dim=4,
                      fuse_at="block" if conditioning == "block" else "stack")
    return TseNet(n_filters=16, filter_length=20, tcn={**TCN, "norm": "cwLN"}, conditioning="encoder",
                  speaker_channels=8, speaker_blocks=1, speaker_dim=4, fusion="film")


@pytest.mark.parametrize("name", ["conv_tasnet", "mitas", "tsenet_ivector", "tsenet_encoder", "tsenet_block"])
def test_stream_equals_offline(name):
    x = 0.5 * torch.randn(2, 8003)  # 1 s + 3 samples: no hop divides it
    if name.startswith("tsenet"):
        model = _perturbed(_tsenet(name.split("_")[1]))
        speaker = torch.randn(2, 10) if model.conditioning == "ivector" else torch.randn(2, 4000)
        with torch.no_grad():
            cond = model.embed(speaker)
            expected = model.extract_embedded(x, cond)
    else:
        cls, norm = (ConvTasNet, "cLN") if name == "conv_tasnet" else (MiTAS, "cwLN")
        model, cond = _perturbed(cls(n_filters=16, filter_length=16, tcn={**TCN, "norm": norm})), None
        with torch.no_grad():
            expected = model(x)
    streamer = model.streamer(cond, batch=2)
    for hop in HOPS:
        length = 8003 if hop >= 333 else 1203  # short hops on a shorter stream, to keep the test quick
        with torch.no_grad():
            offline = expected if length == 8003 else (model.extract_embedded(x[:, :length], cond) if cond is not None
                                                       else model(x[:, :length]))
        got = _streamed(streamer, x[:, :length], [hop])
        assert got.shape == offline.shape
        assert (got - offline).abs().max() <= 1e-5, hop
    got = _streamed(streamer, x, [5, 1000, 1, 77])  # hops that change from call to call
    assert (got - expected).abs().max() <= 1e-5


@pytest.mark.parametrize("filter_length, stride", [(15, 4), (16, 12), (12, 4)])
def test_stream_equals_offline_for_other_strides(filter_length, stride):
    """Windows longer or shorter than twice the stride (the context then differs from the start padding)."""
    model = _perturbed(ConvTasNet(n_filters=16, filter_length=filter_length, stride=stride, tcn=TCN))
    for length in (5, 203, 1001):
        x = torch.randn(1, length)
        with torch.no_grad():
            expected = model(x)
        got = _streamed(model.streamer(), x[0], [7, 1, 40])
        assert got.shape == expected[0].shape
        assert (got - expected[0]).abs().max() <= 1e-5, length


def test_step_is_a_pure_function_of_chunk_and_state():
    model = _perturbed(_tsenet("ivector"))
    step = StreamingStep(model)
    state, cond, chunk = step.initial_state(1), torch.randn(1, 4), torch.randn(1, 4 * step.stride)
    kept = [s.clone() for s in state]
    with torch.no_grad():
        first, new_state = step(chunk, state, cond)
        again, _ = step(chunk, state, cond)
    assert all(torch.equal(a, b) for a, b in zip(state, kept))  # the state passed in is not changed
    assert torch.equal(first, again) and first.shape == (1, 1, chunk.shape[-1])
    assert all(isinstance(s, torch.Tensor) for s in new_state) and len(new_state) == len(state)


def test_non_causal_model_cannot_stream():
    model = ConvTasNet(n_filters=16, tcn={**TCN, "causal": False, "norm": "gLN"})
    with pytest.raises(ValueError, match="not causal"):
        model.streamer()
    with pytest.raises(ValueError, match="speaker vector"):
        _tsenet("ivector").streamer()


def test_causal_recipe_is_the_recipe_made_causal():
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "tse_mini"
    causal, base = load_config(recipe / "conf_causal.yml"), load_config(recipe / "conf.yml")
    args = causal["model"]["args"]
    assert args["tcn"].pop("causal") is True and args["tcn"].pop("norm") == "cLN"
    assert causal["model"] == base["model"] and causal["data"] == base["data"] and causal["exp_dir"] != base["exp_dir"]
    model = create_model("tsenet", **load_config(recipe / "conf_causal.yml")["model"]["args"]).eval()
    assert model.streamer(model.embed(torch.randn(1, args["ivector_dim"]))).window == 40


@pytest.fixture
def separator(tmp_path):
    model = _perturbed(ConvTasNet(n_filters=16, filter_length=16, tcn=TCN))
    model.save(tmp_path / "sep.pt")
    mixture = 0.3 * torch.randn(1, 4003)
    audio.save(tmp_path / "mix.wav", mixture, RATE)
    with torch.no_grad():
        expected = model(audio.load(tmp_path / "mix.wav")[0])[0]
    return tmp_path, expected


def test_separate_stream_file_to_folder(separator, capsys):
    tmp_path, expected = separator
    assert main(["separate", "--stream", "--hop-ms", "16", "--model", str(tmp_path / "sep.pt"),
                 str(tmp_path / "mix.wav"), "-o", str(tmp_path / "out")]) == 0
    assert "algorithmic latency 18.0 ms = encoder window 16 samples (2.0 ms) + hop 128" in capsys.readouterr().err
    for k in range(2):
        got = audio.load(tmp_path / "out" / f"mix_s{k + 1}.wav")[0][0]
        assert (got - expected[k]).abs().max() <= 1e-5


def test_separate_stream_stdin_to_stdout(separator, monkeypatch, capsysbinary):
    tmp_path, expected = separator
    pcm = audio.load(tmp_path / "mix.wav")[0][0].numpy().astype("<f4").tobytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(pcm)))
    assert main(["separate", "--stream", "--model", str(tmp_path / "sep.pt"), "-", "-o", "-", "--format", "f32le",
                 "--hop-ms", "4"]) == 0
    captured = capsysbinary.readouterr()
    got = torch.frombuffer(bytearray(captured.out), dtype=torch.float32).view(-1, 2).T
    assert got.shape == expected.shape and (got - expected).abs().max() <= 1e-5
    assert b"algorithmic latency" in captured.err


def test_extract_stream(tmp_path, capsys):
    model = _perturbed(_tsenet("encoder"))
    model.save(tmp_path / "tse.pt")
    audio.save(tmp_path / "mix.wav", 0.3 * torch.randn(3001), RATE)
    audio.save(tmp_path / "enroll.wav", 0.3 * torch.randn(8000), RATE)
    assert main(["extract", "--stream", "--model", str(tmp_path / "tse.pt"), "--mixture", str(tmp_path / "mix.wav"),
                 "--enroll", str(tmp_path / "enroll.wav"), "-o", str(tmp_path / "out.wav"), "--hop-ms", "10"]) == 0
    with torch.no_grad():
        cond = model.embed(audio.load(tmp_path / "enroll.wav")[0])
        expected = model.extract_embedded(audio.load(tmp_path / "mix.wav")[0], cond)[0, 0]
    got = audio.load(tmp_path / "out.wav")[0][0]
    assert (got - expected).abs().max() <= 1e-5
    assert "algorithmic latency 12.5 ms" in capsys.readouterr().err


def test_stream_refuses_a_non_causal_model(tmp_path, capsys):
    ConvTasNet(n_filters=16, tcn={**TCN, "causal": False, "norm": "gLN"}).save(tmp_path / "sep.pt")
    audio.save(tmp_path / "mix.wav", 0.1 * torch.randn(800), RATE)
    assert main(["separate", "--stream", "--model", str(tmp_path / "sep.pt"), str(tmp_path / "mix.wav"),
                 "-o", str(tmp_path / "out")]) == 2
    assert "is not causal" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
