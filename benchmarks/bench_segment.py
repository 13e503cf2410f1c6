"""Speed and memory of ``sepaudio segment`` on long recordings: real-time factor and peak RSS.

Builds a speech / music / noise / silence recording with the mini corpus generator (10 minutes, or the shortest
length asked for), tiles it to each length asked for (16-bit WAV), and runs ``sepaudio segment`` on each in a fresh
process (:func:`cli_peak.run_cli`), recording wall time and the process's peak resident memory. Equal peak memory
for every length shows the streaming is bounded; the real-time factor is processing time / audio duration (lower
is faster). The wall time includes the start of the process (importing torch: a few seconds).

    python benchmarks/bench_segment.py [--model exp/swishnet_slim/model.pt] [--minutes 10 60] [--threads 1]

Without ``--model`` an untrained SwishNet slim is used (its speed does not depend on its weights).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from sepaudio import audio, create_model
from sepaudio.data.smn_mini import make_smn_timeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_peak import run_cli  # noqa: E402

BASE_MINUTES = 10


def build_recordings(out: Path, minutes: list[float]) -> dict[float, Path]:
    """One recording per length, tiled from a generated base recording."""
    base_minutes = min(BASE_MINUTES, *minutes)
    base = out / f"base_{base_minutes:g}min.wav"
    if not base.exists():
        make_smn_timeline(base, base_minutes * 60, seed=5)
    wav, rate = audio.load(base)
    recordings = {}
    for length in minutes:
        path = out / f"{length:g}min.wav"
        if not path.exists():
            samples = int(length * 60 * rate)
            audio.save(path, wav.repeat(1, -(-samples // wav.shape[1]))[:, :samples], rate, subtype="PCM_16")
        recordings[length] = path
    return recordings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="a trained classifier (default: untrained SwishNet slim)")
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 60.0], help="recording lengths (10 60)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the segmenting process (1)")
    parser.add_argument("--out", type=Path, default=Path("bench_out/segment"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        torch.manual_seed(0)
        model = create_model("swishnet_slim").save(args.out / "swishnet_slim_untrained.pt")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by the segmenting process
    print(f"model: {model}, threads: {args.threads}")
    print("| recording | audio (s) | wall (s) | real-time factor | x real time | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|")
    for minutes, recording in build_recordings(args.out, args.minutes).items():
        seconds = minutes * 60
        rss, wall = run_cli(["segment", "--model", str(model), str(recording), "-o", str(args.out / "timelines")])
        print(f"| {minutes:g} min | {seconds:.0f} | {wall:.1f} | {wall / seconds:.4f} | {seconds / wall:.0f} | "
              f"{rss:.0f} |")


if __name__ == "__main__":
    main()
