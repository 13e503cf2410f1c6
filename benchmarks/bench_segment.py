"""Speed and memory of ``sepaudio segment`` on long recordings: real-time factor and peak RSS.

Builds a 10-minute speech / music / noise / silence recording from the mini corpus generator, tiles it to one hour
(16-bit WAV), and runs ``sepaudio segment`` on both in a fresh process each, recording wall time and the child's
peak resident memory. Equal peak memory for 10 and 60 minutes shows the streaming is bounded; the real-time
factor is processing time / audio duration (lower is faster).

    python benchmarks/bench_segment.py [--model exp/swishnet_slim/model.pt] [--threads 1] [--out bench_out]

Without ``--model`` an untrained SwishNet slim is used (its speed does not depend on its weights).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from sepaudio import audio, create_model
from sepaudio.data.smn_mini import make_smn_timeline

BASE_MINUTES = 10


def build_recordings(out: Path, hours: float) -> dict[str, Path]:
    base = out / "ten_minutes.wav"
    if not base.exists():
        make_smn_timeline(base, BASE_MINUTES * 60, seed=5)
    long = out / "one_hour.wav"
    if not long.exists():
        wav, rate = audio.load(base)
        audio.save(long, wav.repeat(1, int(round(hours * 60 / BASE_MINUTES))), rate, subtype="PCM_16")
        del wav
    return {f"{BASE_MINUTES} min": base, f"{hours:g} h": long}


def run_segment(model: Path, recording: Path, out: Path, threads: int) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one ``sepaudio segment`` process."""
    command = [sys.executable, "-m", "sepaudio", "segment", "--model", str(model), str(recording),
               "-o", str(out / "timelines")]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    code = ("import resource, subprocess, sys, json; r = subprocess.run(sys.argv[1:]); "
            "print(json.dumps(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(r.returncode)")
    began = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code, *command], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if result.returncode:
        raise RuntimeError(result.stderr)
    return wall, int(result.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="a trained classifier (default: untrained SwishNet slim)")
    parser.add_argument("--hours", type=float, default=1.0, help="length of the long recording (1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the segmenting process (1)")
    parser.add_argument("--out", type=Path, default=Path("bench_out/segment"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        torch.manual_seed(0)
        model = create_model("swishnet_slim").save(args.out / "swishnet_slim_untrained.pt")
    print(f"model: {model}, threads: {args.threads}")
    print("| recording | audio (s) | wall (s) | real-time factor | x real time | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|")
    for name, recording in build_recordings(args.out, args.hours).items():
        header = audio.info(recording)
        seconds = header.frames / header.samplerate
        wall, rss = run_segment(model, recording, args.out, args.threads)
        print(f"| {name} | {seconds:.0f} | {wall:.1f} | {wall / seconds:.4f} | {seconds / wall:.0f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
