"""Issue 10: faster evaluation, segmentation and start-up give the figures of the slower paths they replaced."""
import os
import platform
import subprocess
import sys

import numpy as np
import pytest
import torch

from sepaudio.cli import main
from sepaudio.evaluate import evaluate
from sepaudio.features import MFCC, LogMel, STFTBands, window_features
from sepaudio.metrics import sdr, si_sdr
from sepaudio.models import create_model

RATE = 8000


def mixtures(n: int = 3, seconds: float = 1.0) -> list[dict]:
    """Two decaying tones in noise per item, the second louder by 0-2 dB."""
    gen = torch.Generator().manual_seed(1)
    t = torch.arange(int(seconds * RATE)) / RATE
    items = []
    for i in range(n):
        sources = torch.stack([torch.sin(2 * torch.pi * (220 + 130 * k + 40 * i) * t) * torch.exp(-t * (1 + k))
                               for k in range(2)])
        sources = 0.3 * sources + 0.05 * torch.randn(2, t.numel(), generator=gen)
        sources[1] *= 10 ** (i / 20)
        items.append({"mixture": sources.sum(0), "sources": sources, "id": f"m{i}"})
    return items


class Noisy(torch.nn.Module):
    """Gives each item's sources back with noise, a different amount per source."""

    registered_name, input_keys, sample_rate, num_parameters = "noisy", ("mixture",), RATE, 1

    def __init__(self, data):
        super().__init__()
        self.data, self.weight = data, torch.nn.Parameter(torch.zeros(1))

    def forward(self, mixture):
        item = next(i for i in self.data if torch.equal(i["mixture"], mixture[0]))
        gen = torch.Generator().manual_seed(int(item["id"][1:]))
        return (item["sources"] + torch.tensor([[0.05], [0.2]]) * torch.randn(item["sources"].shape, generator=gen))[None]


def old_scores(est: torch.Tensor, ref: torch.Tensor, mixture: torch.Tensor) -> dict:
    """The torchmetrics figures evaluate.py reported before issue 10, one signal at a time."""
    from torchmetrics.functional.audio import (perceptual_evaluation_speech_quality, signal_distortion_ratio,
                                               short_time_objective_intelligibility)

    def tm_sdr(x, y):  # 1-D calls: torch 2.11's batched LU solve fails once torch.set_num_threads was called
        return torch.stack([signal_distortion_ratio(a.double(), b.double()) for a, b in zip(x, y)]).float()

    mix = mixture.expand_as(ref)
    est_si, est_sdr = si_sdr(est, ref), tm_sdr(est, ref)
    return {"si_sdr": est_si.mean(), "si_sdri": (est_si - si_sdr(mix, ref)).mean(), "sdr": est_sdr.mean(),
            "sdri": (est_sdr - tm_sdr(mix, ref)).mean(),
            "pesq": perceptual_evaluation_speech_quality(est, ref, RATE, "nb").mean(),
            "stoi": short_time_objective_intelligibility(est, ref, RATE).mean()}


def test_si_sdr_and_sdr_match_torchmetrics():
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio, signal_distortion_ratio

    gen = torch.Generator().manual_seed(0)
    ref = torch.randn(3, 4000, generator=gen)
    est = ref + torch.tensor([[0.1], [1.0], [3.0]]) * torch.randn(3, 4000, generator=gen)
    assert torch.allclose(si_sdr(est, ref), scale_invariant_signal_distortion_ratio(est, ref, zero_mean=True))
    expected = torch.stack([signal_distortion_ratio(e.double(), r.double()) for e, r in zip(est, ref)]).float()
    assert torch.allclose(sdr(est, ref), expected, atol=1e-4)
    both = sdr(torch.stack([est, ref.sum(0).expand_as(ref)]), ref)  # several estimates per reference
    assert both.shape == (2, 3) and torch.allclose(both[0], expected, atol=1e-4)


def test_evaluate_gives_the_old_figures(tmp_path):
    data = mixtures()
    model = Noisy(data)
    evaluate(model, data, tmp_path, n_examples=0, progress=False, workers=2)  # PESQ / STOI in 2 processes
    rows = list(__import__("csv").DictReader(open(tmp_path / "per_utterance.csv")))
    assert [r["id"] for r in rows] == ["m0", "m1", "m2"]
    for row, item in zip(rows, data):
        est = model(item["mixture"][None])[0]
        for key, value in old_scores(est, item["sources"], item["mixture"]).items():
            assert float(row[key]) == pytest.approx(float(value), abs=0.01), key


def test_metrics_option(tmp_path, capsys):
    data = mixtures(2)
    summary = evaluate(Noisy(data), data, tmp_path, n_examples=0, progress=False, metrics=("si_sdr",))
    assert set(summary["counts"]) == {"si_sdr", "si_sdri"}
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "conf.yml", "--metrics", "si_sdr,pesq_wb"])
    assert exit_info.value.code == 2 and "choose from si_sdr,sdr,pesq,stoi" in capsys.readouterr().err


@pytest.mark.parametrize("frontend, window, hop", [(MFCC(16000), 16000, 1600), (LogMel(8000), 8000, 400),
                                                   (STFTBands(), 44100, 5610), (MFCC(16000), 8000, 240)])
def test_window_features_equal_framing_every_window(frontend, window, hop):
    span = torch.randn(window + 12 * hop + 7, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(window_features(frontend, span, window, hop), frontend(span.unfold(0, window, hop)),
                              atol=1e-5)


def test_segment_labels_unchanged(tmp_path):
    """The block-wise features give the per-window loop's probabilities and labels on a generated recording."""
    from sepaudio import audio
    from sepaudio.inference import ChunkReader
    from sepaudio.segment import FrameResults, frame_posteriors, smooth_labels

    path, rate = tmp_path / "rec.wav", 16000
    t = torch.arange(25 * rate) / rate  # tones, noise and quiet parts
    wav = 0.3 * torch.sin(2 * torch.pi * 300 * t * (1 + (t % 5) / 5)) * (t % 10 < 5)
    wav = wav + 0.1 * torch.randn(t.shape, generator=torch.Generator().manual_seed(3)) * (t % 7 < 3)
    audio.save(path, wav, rate)
    torch.manual_seed(0)
    model = create_model("swishnet_slim").eval()
    new = frame_posteriors(model, path, block_seconds=15.0)
    reader, hop_n, win_n = ChunkReader(path, model.sample_rate), 1600, 16000
    span = reader.read(-(win_n // 2 - hop_n // 2), (len(new.probs) - 1) * hop_n - (win_n // 2 - hop_n // 2) + win_n)
    with torch.no_grad():  # the loop segment.py ran before: the whole model on every window
        old = torch.cat([torch.softmax(model(w), -1) for w in span.unfold(0, win_n, hop_n).split(64)]).numpy()
    assert np.abs(new.probs - old).max() < 1e-5
    old_results = FrameResults(old, new.energy_db, new.peak, new.hop, new.duration)
    assert smooth_labels(new, model.labels) == smooth_labels(old_results, model.labels)


def test_num_workers_auto(monkeypatch):
    from sepaudio.train import DEFAULTS, cpu_share, load_config

    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice wins
    assert cpu_share("auto", processes=10 ** 6) == (2, 3)
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert DEFAULTS["data"]["num_workers"] == "auto"
    workers, threads = cpu_share("auto")
    assert workers == min(4, threads - 1) and threads >= 1
    assert cpu_share("auto", processes=10 ** 6) == (0, 1) and cpu_share(3, 1)[0] == 3
    for recipe in ("sep_libri2mix", "smn_musan"):
        assert load_config(f"recipes/{recipe}/conf.yml", [])["data"]["num_workers"] == "auto"


def test_info_reads_the_summary_without_torch(tmp_path):
    path = create_model("swishnet_slim").save(tmp_path / "m.pt")
    code = (f"import sys; from sepaudio.cli import main; main(['info', '--json', {str(path)!r}]); "
            f"assert 'torch' not in sys.modules")
    fast = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    import json

    assert json.loads(fast) == {"model": "swishnet", "parameters": 4899, "sample_rate": 16000,
                                "arguments": json.loads(fast)["arguments"]}
    assert json.loads(fast)["arguments"]["width"] == 1



PAGE_FAULTS_OF_CYCLES = """
import ctypes, resource, sys
from sepaudio import runtime
if sys.argv[1] == "kept":
    assert runtime.keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
faults = []
for _ in range(8):  # allocate, touch and free 64 MiB, as a forward pass does with its big activations
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(64 << 20)
    ctypes.memset(block, 1, 64 << 20)
    libc.free(block)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sum(faults[1:]))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc")
def test_freed_memory_is_kept_for_reuse(tmp_path, monkeypatch):
    """With :func:`sepaudio.runtime.keep_freed_memory` a block that is freed and allocated again is not faulted in
    from the kernel again; by default glibc unmaps it and every cycle faults its 16,384 pages in anew. Every command
    but ``info`` applies it."""
    from sepaudio import runtime

    def faults(mode):
        out = subprocess.run([sys.executable, "-c", PAGE_FAULTS_OF_CYCLES, mode], capture_output=True, text=True,
                             check=True)
        return int(out.stdout.split()[-1])

    pages = (64 << 20) // os.sysconf("SC_PAGE_SIZE")
    assert faults("default") >= 7 * pages * 0.9
    assert faults("kept") < pages / 4
    calls = []
    monkeypatch.setattr(runtime, "configure", lambda: calls.append(True))
    assert main(["train", str(tmp_path / "missing.yml")]) == 2
    assert calls == [True]
