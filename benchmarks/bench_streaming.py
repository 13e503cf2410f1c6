"""Streaming TseNet: compute time per hop and real-time factor on one CPU thread.

For each model and hop, streams ``--seconds`` of audio through ``model.streamer()`` (after ``--warmup`` seconds)
and prints the median and 95th-percentile compute time per hop (CPU time of the thread, which other processes on
a shared machine do not inflate, and wall time), the real-time factor (CPU time / audio time; below 1 keeps up with
the stream) and the algorithmic latency (encoder window + hop). The offline RTF (the whole input in one call, CPU
time) is given for comparison. Weights are random: time does not depend on them. Usage:

    python benchmarks/bench_streaming.py [--models tse_mini tsenet_paper] [--hops-ms 8 16 32] [--seconds 10]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml

from sepaudio.models import TseNet

CAUSAL_CONF = Path(__file__).resolve().parents[1] / "recipes" / "tse_mini" / "conf_causal.yml"


def build(name: str) -> TseNet:
    """``tse_mini``: recipes/tse_mini/conf_causal.yml's model; ``tsenet_paper``: the paper's TseNet made causal."""
    if name == "tse_mini":
        args = yaml.safe_load(CAUSAL_CONF.read_text())["model"]["args"]
    else:
        args = {"tcn": {"causal": True, "norm": "cLN"}}
    return TseNet(**args).eval()


def bench(model: TseNet, hop: int, seconds: float, warmup: float) -> dict:
    rate = model.sample_rate
    ivector = torch.randn(1, model.model_args["ivector_dim"])
    with torch.inference_mode():
        streamer = model.streamer(model.embed(ivector))
        for chunk in torch.randn(int(warmup * rate)).split(hop):
            streamer(chunk)
        cpu, wall = [], []
        for chunk in torch.randn(int(seconds * rate) // hop * hop).split(hop):
            start, start_wall = time.thread_time(), time.perf_counter()
            streamer(chunk)
            cpu.append(time.thread_time() - start)
            wall.append(time.perf_counter() - start_wall)
        x = torch.randn(1, int(seconds * rate))
        start = time.thread_time()
        model.extract_embedded(x, model.embed(ivector))
        offline = time.thread_time() - start
    ms = lambda times, q: 1000 * sorted(times)[int(q * (len(times) - 1))]  # noqa: E731
    return {"cpu_ms": ms(cpu, 0.5), "cpu_p95_ms": ms(cpu, 0.95), "wall_ms": ms(wall, 0.5),
            "rtf": sum(cpu) / (len(cpu) * hop / rate), "latency_ms": 1000 * streamer.latency(hop) / rate,
            "offline_rtf": offline / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", choices=["tse_mini", "tsenet_paper"],
                        default=["tse_mini", "tsenet_paper"])
    parser.add_argument("--hops-ms", nargs="+", type=float, default=[8.0, 16.0, 32.0])
    parser.add_argument("--seconds", type=float, default=10.0, help="audio streamed per measurement (10)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds streamed before timing (1)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, {args.seconds:g} s streamed per row")
    print("| model | parameters | hop (ms) | latency (ms) | CPU per hop, median (ms) | p95 (ms) | wall per hop, "
          "median (ms) | RTF | offline RTF |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.models:
        model = build(name)
        for hop_ms in args.hops_ms:
            r = bench(model, round(hop_ms * model.sample_rate / 1000), args.seconds, args.warmup)
            print(f"| {name} | {model.num_parameters:,} | {hop_ms:g} | {r['latency_ms']:.1f} | {r['cpu_ms']:.2f} | "
                  f"{r['cpu_p95_ms']:.2f} | {r['wall_ms']:.2f} | {r['rtf']:.3f} | {r['offline_rtf']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
