"""Fresh processes with glibc's default malloc against the same with freed memory kept (``sepaudio.runtime``).

Every sepaudio command calls :func:`sepaudio.runtime.keep_freed_memory`. This measures what it gives: each
measurement is a fresh process that builds a contender, warms it up with one call, and times ``--calls`` more
(median), with the default allocator or with the memory kept, alternating between the two, ``--rounds`` processes
of each. Contenders (identical weights, 10 s at 8 kHz unless ``--seconds``): torchaudio's ConvTasNet, sepaudio's
Conv-TasNet on its plain and fused fp32 paths, and one training step of bench_training_step's configuration
(batch 4 x 3 s). Prints median seconds, the speed-up and the peak RSS of each. Usage:

    python benchmarks/bench_allocator.py [--seconds 10] [--rounds 3] [--calls 3] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

CONTENDERS = ("torchaudio", "sepaudio plain", "sepaudio fast fp32", "sepaudio training step")


def build(name: str, seconds: float):
    """A function doing one call of contender ``name``."""
    if name == "sepaudio training step":
        from bench_training_step import contender

        return contender("sepaudio fp32", "issue10", 4, 3.0)
    import torchaudio

    from sepaudio.models import ConvTasNet

    torch.manual_seed(0)
    reference = torchaudio.models.ConvTasNet().eval()
    x = torch.randn(1, int(8000 * seconds))
    if name == "torchaudio":
        return lambda: reference(x.unsqueeze(1))
    model = ConvTasNet.from_torchaudio(reference).eval().fast("fp32" if "fast" in name else None)
    return lambda: model(x)


def one(name: str, kept: bool, seconds: float, calls: int) -> dict:
    """In this (fresh) process: median seconds of ``calls`` calls after a warm-up, and the peak RSS in MiB."""
    from sepaudio import runtime

    torch.set_flush_denormal(True)
    if kept:
        runtime.keep_freed_memory()
    call = build(name, seconds)
    with torch.inference_mode(name != "sepaudio training step"):
        call()
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="input length at 8 kHz for inference (10)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per contender and allocator (3)")
    parser.add_argument("--calls", type=int, default=3, help="timed calls per process after the warm-up (3)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--one", nargs=2, metavar=("NAME", "KEPT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1] == "kept", args.seconds, args.calls)))
        return
    print(f"torch {torch.__version__}, threads {args.threads}, {args.seconds:g} s at 8 kHz, {args.rounds} fresh "
          f"processes each, {args.calls} timed calls per process, load average {os.getloadavg()[0]:.2f}")
    results = {(name, mode): [] for name in CONTENDERS for mode in ("default", "kept")}
    for _ in range(args.rounds):
        for name in CONTENDERS:
            for mode in ("default", "kept"):
                out = subprocess.run([sys.executable, __file__, "--one", name, mode, "--seconds", str(args.seconds),
                                      "--calls", str(args.calls), "--threads", str(args.threads)],
                                     capture_output=True, text=True, check=True)
                results[name, mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'contender':<24} {'default s':>10} {'kept s':>8} {'speed-up':>9} {'peak RSS MiB default / kept':>28}")
    for name in CONTENDERS:
        default, kept = (statistics.median(r["seconds"] for r in results[name, m]) for m in ("default", "kept"))
        rss = [max(r["rss"] for r in results[name, m]) for m in ("default", "kept")]
        print(f"{name:<24} {default:10.3f} {kept:8.3f} {default / kept:8.2f}x {rss[0]:>17.0f} / {rss[1]:.0f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
