"""sepaudio Conv-TasNet vs torchaudio's ConvTasNet: same weights, same inputs, one run.

Prints, per input length and sample rate: median seconds per call (after warm-up), real-time factor, the ratio
sepaudio / torchaudio, and peak memory (CPU: peak RSS growth of a fresh process doing one call; GPU:
torch.cuda.max_memory_allocated). Usage:

    python benchmarks/bench_conv_tasnet.py [--seconds 1 10 60] [--rates 8000 16000] [--repeats 3] [--device cpu]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import torch
import torchaudio

from sepaudio.models import ConvTasNet


def models(device: str):
    torch.manual_seed(0)
    reference = torchaudio.models.ConvTasNet().eval().to(device)
    return {"sepaudio": ConvTasNet.from_torchaudio(reference).eval().to(device), "torchaudio": reference}


def time_call(model, x, repeats: int) -> float:
    with torch.inference_mode():
        model(x)  # warm-up
        times = []
        for _ in range(repeats):
            if x.is_cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(x)
            if x.is_cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_memory_mb(impl: str, samples: int, device: str) -> float:
    """Peak memory of one call: in a fresh process on CPU, from the CUDA allocator on GPU."""
    if device == "cuda":
        model = models(device)[impl]
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.inference_mode():
            model(torch.randn(1, 1, samples, device=device))
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    out = subprocess.run([sys.executable, __file__, "--peak-memory-of", impl, str(samples)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def rss_growth_mb(impl: str, samples: int) -> float:
    """In this (fresh) process: the largest RSS growth in MB during one CPU call."""
    model, x = models("cpu")[impl], torch.randn(1, 1, samples)
    return peak_rss_growth_mb(lambda: model(x))


def peak_rss_growth_mb(call, inference: bool = True) -> float:
    """The largest RSS growth of this process in MB while ``call()`` runs (in inference mode unless ``inference`` is
    false: a training step), sampled every ms."""
    page = os.sysconf("SC_PAGE_SIZE")
    rss = lambda: int(open("/proc/self/statm").read().split()[1]) * page  # noqa: E731
    base, peak, done = rss(), [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    with torch.inference_mode(inference):
        call()
    done.set()
    watcher.join()
    return max(peak[0], rss()) / 2**20 - base / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--rates", type=int, nargs="+", default=[8000, 16000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--peak-memory-of", nargs=2, metavar=("IMPL", "SAMPLES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_memory_of:
        print(rss_growth_mb(args.peak_memory_of[0], int(args.peak_memory_of[1])))
        return

    nets = models(args.device)
    print(f"device: {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"parameters {nets['sepaudio'].num_parameters:,} (both)")
    header = f"{'rate':>6} {'secs':>5} | {'sepaudio s':>10} {'torchaudio s':>12} {'ratio':>6} | {'RTF sep':>7} " \
             f"{'RTF ta':>7}"
    if not args.no_memory:
        header += f" | {'peak MB sep':>11} {'peak MB ta':>10} {'ratio':>6}"
    print(header)
    rows = []
    for rate in args.rates:
        for seconds in args.seconds:
            samples = int(rate * seconds)
            x = torch.randn(1, 1, samples, device=args.device)
            repeats = args.repeats if seconds < 30 else max(1, args.repeats // 3)
            # interleave the two so machine noise hits both alike
            t_sep, t_ta = [], []
            for _ in range(2):
                t_sep.append(time_call(nets["sepaudio"], x, repeats))
                t_ta.append(time_call(nets["torchaudio"], x, repeats))
            row = {"rate": rate, "seconds": seconds, "sepaudio_s": min(t_sep), "torchaudio_s": min(t_ta)}
            row["ratio"] = row["sepaudio_s"] / row["torchaudio_s"]
            line = f"{rate:>6} {seconds:>5g} | {row['sepaudio_s']:>10.3f} {row['torchaudio_s']:>12.3f} " \
                   f"{row['ratio']:>6.2f} | {row['sepaudio_s'] / seconds:>7.3f} {row['torchaudio_s'] / seconds:>7.3f}"
            if not args.no_memory:
                row["sepaudio_mb"] = peak_memory_mb("sepaudio", samples, args.device)
                row["torchaudio_mb"] = peak_memory_mb("torchaudio", samples, args.device)
                line += f" | {row['sepaudio_mb']:>11.0f} {row['torchaudio_mb']:>10.0f} " \
                        f"{row['sepaudio_mb'] / row['torchaudio_mb']:>6.2f}"
            print(line, flush=True)
            rows.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
