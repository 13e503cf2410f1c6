"""Inference speed of the TCN family: torchaudio's ConvTasNet vs sepaudio's plain and fused paths, one run.

Contenders, on identical weights and inputs, timed interleaved (each round calls every contender once; medians):
torchaudio fp32, sepaudio plain, sepaudio fast fp32, sepaudio fast bf16 (``model.fast(precision)``; only on CPUs with
bfloat16 instructions), for Conv-TasNet's default configuration; then TseNet's paper configuration (i-vector
conditioning) plain / fast.
Prints seconds, speed-up over torchaudio (over plain for TseNet), real-time factor, peak memory (CPU: RSS growth of
a fresh process doing one call) and the fast paths' deviation from the plain output. Usage:

    python benchmarks/bench_tcn_inference.py [--seconds 10] [--rounds 5] [--threads 2] [--no-memory]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch

from bench_conv_tasnet import peak_rss_growth_mb
from sepaudio import runtime
from sepaudio.models import ConvTasNet, TseNet
from sepaudio.nn.fast_tcn import cpu_has_bf16

# the fast bf16 contenders run where the CPU has bfloat16 instructions (sepaudio refuses them elsewhere)
BF16 = cpu_has_bf16()
CONV_TASNET = ("torchaudio", "plain", "fast fp32") + (("fast bf16",) if BF16 else ())
TSENET = ("tsenet plain", "tsenet fast fp32") + (("tsenet fast bf16",) if BF16 else ())


def contenders(names) -> dict:
    """name -> (callable on a ``(1, time)`` waveform, sample rate). Weights are seeded: equal in every process."""
    out = {}
    if set(names) & set(CONV_TASNET):
        import torchaudio

        torch.manual_seed(0)
        reference = torchaudio.models.ConvTasNet().eval()
        for name in set(names) & set(CONV_TASNET):
            if name == "torchaudio":
                out[name] = (lambda x, m=reference: m(x.unsqueeze(1)), 8000)
            else:
                model = ConvTasNet.from_torchaudio(reference).eval().fast(name.split()[-1] if "fast" in name else None)
                out[name] = (model, 8000)
    if set(names) & set(TSENET):
        torch.manual_seed(0)
        base = TseNet().eval()
        ivector = torch.randn(1, 400)
        for name in set(names) & set(TSENET):
            model = TseNet()
            model.load_state_dict(base.state_dict())
            model.eval().fast(name.split()[-1] if "fast" in name else None)
            out[name] = (lambda x, m=model: m(x, ivector), 8000)
    return out


def rss_growth_mb(name: str, seconds: float) -> float:
    """In this (fresh) process: the largest RSS growth in MB during one call."""
    fn, rate = contenders([name])[name]
    x = torch.randn(1, int(rate * seconds))
    return peak_rss_growth_mb(lambda: fn(x))


def peak_memory_mb(name: str, seconds: float, threads: int) -> float:
    out = subprocess.run([sys.executable, __file__, "--threads", str(threads), "--peak-memory-of", name, str(seconds)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def run(names, seconds: float, rounds: int) -> tuple[dict, dict]:
    """Interleaved timings (median seconds per name) and each output's error vs the first name's, in dB."""
    fns = contenders(names)
    x = torch.randn(1, int(8000 * seconds))
    times, outs = {n: [] for n in names}, {}
    with torch.inference_mode():
        for name in names:
            outs[name] = fns[name][0](x)  # warm-up, and the output
        for _ in range(rounds):
            for name in names:
                start = time.perf_counter()
                fns[name][0](x)
                times[name].append(time.perf_counter() - start)
    ref = outs[names[0]]
    err = {n: 10 * torch.log10((outs[n] - ref).pow(2).sum() / ref.pow(2).sum()).item() for n in names[1:]}
    return {n: statistics.median(t) for n, t in times.items()}, err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="input length at 8 kHz (10)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    parser.add_argument("--no-tsenet", action="store_true", help="skip the TseNet rows")
    parser.add_argument("--peak-memory-of", nargs=2, metavar=("NAME", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runtime.configure()  # as every sepaudio command does
    if args.peak_memory_of:
        print(rss_growth_mb(args.peak_memory_of[0], float(args.peak_memory_of[1])))
        return
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, threads {args.threads}, cpu capability "
          f"{torch.backends.cpu.get_cpu_capability()}, {args.seconds:g} s at 8 kHz, {args.rounds} interleaved rounds, "
          f"load average {load:.2f}" + ("" if BF16 else "; no bfloat16 instructions: no bf16 rows"))
    print(f"{'contender':<18} {'seconds':>8} {'speed-up':>9} {'RTF':>7} {'peak MB':>8} {'err dB':>8}")
    groups = [(CONV_TASNET, "vs torchaudio")] + ([] if args.no_tsenet else [(TSENET, "vs tsenet plain")])
    for names, label in groups:
        times, err = run(names, args.seconds, args.rounds)
        for name in names:
            mem = "" if args.no_memory else f"{peak_memory_mb(name, args.seconds, args.threads):8.0f}"
            speedup, rtf = times[names[0]] / times[name], times[name] / args.seconds
            print(f"{name:<18} {times[name]:8.3f} {speedup:8.2f}x {rtf:7.3f} {mem:>8} {err.get(name, float('nan')):8.1f}",
                  flush=True)
        print(f"  (speed-up {label}; err: output vs {names[0]}, 10 log10 |diff|^2/|ref|^2)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
