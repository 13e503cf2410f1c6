"""Streaming TseNet: compute time per hop and real-time factor on one CPU thread, reference and fused steps.

For each model and hop, streams ``--seconds`` of audio (after ``--warmup`` seconds) through ``model.streamer()``
with the reference step (``precision=None``: one small torch call per layer) and the fused step in each of
``--precisions`` (:class:`~sepaudio.nn.fast_stream.FastStreamingStep`), all fed the same hops in turn, so that
load on a shared machine falls on all of them alike. Prints the median and 95th-percentile compute time per hop
(CPU time of the thread) and the real-time factor (CPU time / audio time; below 1 keeps up with the stream); then
each streams the same audio again by itself ("RTF alone"), as a deployment runs one model: interleaved, the
contenders evict each other's weights from the CPU caches (20 % slower for the onnxruntime engine on tse_mini).

With ``--onnx`` (default where onnx and onnxruntime are installed) two more rows: the fused step run by onnxruntime
(``model.streamer(engine="onnxruntime")``, :class:`~sepaudio.nn.onnx_stream.OnnxStreamingStep`), and the reference
step exported to ONNX (``sepaudio export --stream``) under onnxruntime on one thread, fed the same whole strides per
hop (the unfused graph: what exporting alone gives).

Two floors for the fused step, on the same weights and hops:

- ``1x1 GEMM floor``: the bare ``torch.mm`` calls of one step's 1x1 convolutions (the shapes the fused step runs:
  bottleneck, each block's first 1x1 and its residual + skip 1x1 as one, the mask 1x1), per hop;
- ``offline``: the whole input in one call (plain, and ``model.fast("fp32")``), the RTF with no per-hop overhead.

The header gives the machine and the time of one trivial torch op (``x + 1`` on 64 floats): on a shared machine
the per-op overhead, which dominates small models, varies with load. Weights are random: time does not depend on
them. Usage:

    python benchmarks/bench_streaming.py [--models tse_mini tsenet_paper] [--hops-ms 8 16] [--seconds 5]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import machine_line  # noqa: E402
from sepaudio.models import TseNet  # noqa: E402
from sepaudio.nn.fast_tcn import cpu_has_bf16, cpu_has_int8  # noqa: E402

CAUSAL_CONF = Path(__file__).resolve().parents[1] / "recipes" / "tse_mini" / "conf_causal.yml"


def build(name: str) -> TseNet:
    """``tse_mini``: recipes/tse_mini/conf_causal.yml's model; ``tsenet_paper``: the paper's TseNet made causal."""
    if name == "tse_mini":
        args = yaml.safe_load(CAUSAL_CONF.read_text())["model"]["args"]
    else:
        args = {"tcn": {"causal": True, "norm": "cLN"}}
    return TseNet(**args).eval()


def median_us(fn, calls: int = 200) -> float:
    """Median CPU time of ``fn()`` in microseconds."""
    for _ in range(10):
        fn()
    times = []
    for _ in range(calls):
        start = time.thread_time()
        fn()
        times.append(time.thread_time() - start)
    return 1e6 * sorted(times)[len(times) // 2]


def gemm_floor_ms(fast, hop: int, hops: int) -> float:
    """Per hop: the bare ``torch.mm`` time of every 1x1 convolution the fused step runs, for the frame counts of
    ``hops`` hops of ``hop`` samples (a step takes the whole strides that have arrived)."""
    linears = [fast.bottleneck, *(lin for blk in fast.blocks for lin in (blk.first[0], blk.out)), fast.output]
    shapes = [tuple(lin.wt.shape) for lin in linears]  # (in, out)
    counts = {}
    for k in range(hops):
        frames = ((k + 1) * hop) // fast.stride - (k * hop) // fast.stride
        counts[frames] = counts.get(frames, 0) + 1
    total = 0.0
    for frames, n in counts.items():
        if frames == 0:
            continue
        calls = [(torch.randn(frames, i), torch.randn(i, o)) for i, o in shapes]
        total += n * median_us(lambda: [torch.mm(x, w) for x, w in calls], 50)
    return total / hops / 1000


class OnnxStep:
    """The exported reference step under onnxruntime (one thread), called per hop on the whole strides that have
    arrived (as :class:`~sepaudio.nn.streaming.Streamer` does; the audio itself does not matter for time)."""

    def __init__(self, model: TseNet, cond: torch.Tensor, folder: str):
        import onnxruntime

        from sepaudio.export import export
        from sepaudio.nn.streaming import StreamingStep

        path = export(model, Path(folder) / "step.onnx", "onnx", streaming=True)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.names = [arg.name for arg in self.session.get_inputs()]
        self.step = StreamingStep(model)
        self.stride, self.cond = self.step.stride, cond.numpy()
        self.reset()

    def reset(self) -> None:
        self.state, self.pending = [s.numpy() for s in self.step.initial_state(1)], 0

    def __call__(self, chunk: torch.Tensor) -> None:
        frames, self.pending = divmod(self.pending + chunk.shape[-1], self.stride)
        if frames:
            wav = torch.randn(1, frames * self.stride).numpy()
            out = self.session.run(None, dict(zip(self.names, [wav, self.cond, *self.state])))
            self.state = out[1:]


def bench(model: TseNet, hop: int, seconds: float, warmup: float, precisions: list[str], onnx: bool) -> dict:
    rate = model.sample_rate
    ivector = torch.randn(1, model.model_args["ivector_dim"])
    with torch.inference_mode():
        cond = model.embed(ivector)
        streamers = {"reference": model.streamer(cond, precision=None),
                     **{f"fused {p}": model.streamer(cond, precision=p) for p in precisions}}
        folder = tempfile.TemporaryDirectory()
        if onnx:
            streamers["fused fp32, onnxruntime engine"] = model.streamer(cond, precision="fp32", engine="onnxruntime")
            streamers["reference exported, onnxruntime"] = OnnxStep(model, cond, folder.name)
        for chunk in torch.randn(int(warmup * rate)).split(hop):
            for streamer in streamers.values():
                streamer(chunk)
        cpu = {name: [] for name in streamers}
        chunks = torch.randn(int(seconds * rate) // hop * hop).split(hop)
        for chunk in chunks:
            for name, streamer in streamers.items():
                start = time.thread_time()
                streamer(chunk)
                cpu[name].append(time.thread_time() - start)
        alone = {}  # each streamer by itself, as a deployment runs one: its weights stay in the caches
        for name, streamer in streamers.items():
            streamer.reset()
            for chunk in chunks[:len(chunks) // 10]:
                streamer(chunk)
            start = time.thread_time()
            for chunk in chunks:
                streamer(chunk)
            alone[name] = (time.thread_time() - start) / (len(chunks) * hop / rate)
        x = torch.randn(1, int(seconds * rate))
        offline = {}
        for name in ("plain", "fast fp32"):
            model.fast("fp32" if name != "plain" else None)
            start = time.thread_time()
            model.extract_embedded(x, cond)
            offline[name] = (time.thread_time() - start) / seconds
        model.fast(None)
    folder.cleanup()
    ms = lambda times, q: 1000 * sorted(times)[int(q * (len(times) - 1))]  # noqa: E731
    rows = {name: {"cpu_ms": ms(t, 0.5), "cpu_p95_ms": ms(t, 0.95), "rtf": sum(t) / (len(t) * hop / rate),
                   "rtf_alone": alone[name]} for name, t in cpu.items()}
    floor = gemm_floor_ms(streamers["fused fp32"].fast, hop, 200) if "fused fp32" in streamers else float("nan")
    rows["1x1 GEMM floor (fp32)"] = {"cpu_ms": floor, "cpu_p95_ms": float("nan"), "rtf": floor / (1000 * hop / rate),
                                     "rtf_alone": float("nan")}
    latency = 1000 * streamers["reference"].latency(hop) / rate
    return {"rows": rows, "latency_ms": latency, "offline": offline}


def _cell(value: float, digits: int = 2) -> str:
    """A table cell, empty where there is no value (the floor row has no spread)."""
    return "" if value != value else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", choices=["tse_mini", "tsenet_paper"],
                        default=["tse_mini", "tsenet_paper"])
    parser.add_argument("--hops-ms", nargs="+", type=float, default=[8.0, 16.0])
    parser.add_argument("--seconds", type=float, default=5.0, help="audio streamed per measurement (5)")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds streamed before timing (0.5)")
    supported = ["fp32", *(["int8"] if cpu_has_int8() else []), *(["bf16"] if cpu_has_bf16() else [])]
    parser.add_argument("--precisions", nargs="+", choices=["fp32", "bf16", "int8"], default=supported,
                        help=f"of the fused step (default: those this CPU runs, {' '.join(supported)})")
    have_onnx = all(importlib.util.find_spec(name) for name in ("onnx", "onnxruntime"))
    parser.add_argument("--onnx", action=argparse.BooleanOptionalAction, default=have_onnx,
                        help="also time the exported step under onnxruntime (default: where installed)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    x = torch.randn(64)
    print(machine_line())
    op_us = median_us(lambda: x + 1, 2000)
    print(f"1 thread, {args.seconds:g} s streamed per row; one trivial op (x + 1) takes {op_us:.1f} "
          f"us of CPU time; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| model | parameters | hop (ms) | latency (ms) | step | CPU per hop, median (ms) | p95 (ms) | RTF | "
          "RTF alone | offline RTF (plain / fast fp32) |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for name in args.models:
        model = build(name)
        for hop_ms in args.hops_ms:
            r = bench(model, round(hop_ms * model.sample_rate / 1000), args.seconds, args.warmup, args.precisions,
                      args.onnx)
            offline = f"{r['offline']['plain']:.3f} / {r['offline']['fast fp32']:.3f}"
            for step, row in r["rows"].items():
                print(f"| {name} | {model.num_parameters:,} | {hop_ms:g} | {r['latency_ms']:.1f} | {step} | "
                      f"{row['cpu_ms']:.2f} | {_cell(row['cpu_p95_ms'])} | {row['rtf']:.3f} | "
                      f"{_cell(row['rtf_alone'], 3)} | {offline} |", flush=True)


if __name__ == "__main__":
    main()
