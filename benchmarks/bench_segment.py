"""Speed and memory of ``sepaudio segment`` on long recordings: real-time factor and peak RSS.

Builds a speech / music / noise / silence recording with the mini corpus generator (10 minutes, or the shortest
length asked for), tiles it to each length asked for (16-bit WAV), and runs ``sepaudio segment`` on each in a fresh
process (:func:`cli_peak.run_cli`), recording wall time and the process's peak resident memory. Equal peak memory
for every length shows the streaming is bounded; the real-time factor is processing time / audio duration (lower
is faster). The wall time includes the start of the process (importing torch: a few seconds).

Before the CLI rows it compares, in this process on one thread (``--threads``), interleaved ``--repeats`` times, the
per-window loop ``segment`` ran before issue 10 (the whole model on every 1-s window, every 0.1 s) with
:func:`sepaudio.segment.frame_posteriors` (front-end once per block) on the first recording: real-time factors,
their ratio and the largest difference of the probabilities; and the classifier on batches of 1-s clips in clips
per second.

    python benchmarks/bench_segment.py [--model exp/swishnet_slim/model.pt] [--minutes 10 60] [--threads 1]

Without ``--model`` an untrained SwishNet slim is used (its speed does not depend on its weights).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
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


@torch.no_grad()
def per_window(model, path: Path, window: float = 1.0, hop: float = 0.1, batch_size: int = 64) -> np.ndarray:
    """Frame probabilities as ``segment`` computed them before issue 10: the whole model on every window."""
    from sepaudio.inference import ChunkReader

    reader, rate = ChunkReader(path, model.sample_rate), model.sample_rate
    hop_n, win_n = int(round(hop * rate)), int(round(window * rate))
    n_frames, lead = max(1, -(-reader.length // hop_n)), win_n // 2 - hop_n // 2
    windows = reader.read(-lead, (n_frames - 1) * hop_n - lead + win_n).unfold(0, win_n, hop_n)
    return torch.cat([torch.softmax(model(w), -1) for w in windows.split(batch_size)]).numpy()


def compare(model_path: Path, recording: Path, seconds: float, repeats: int) -> None:
    """Before / after real-time factors of the frame probabilities, and clips per second of batch classification."""
    from sepaudio.models import load_model
    from sepaudio.segment import frame_posteriors

    model = load_model(model_path).eval()
    times = {"per-window loop (before)": [], "frame_posteriors (after)": []}
    for _ in range(repeats):
        start = time.perf_counter()
        old = per_window(model, recording)
        times["per-window loop (before)"].append(time.perf_counter() - start)
        start = time.perf_counter()
        new = frame_posteriors(model, recording).probs
        times["frame_posteriors (after)"].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in times.items()}
    print(f"{recording.name}, {torch.get_num_threads()} thread(s), best of {repeats}; largest probability "
          f"difference {np.abs(old - new).max():.1e}, same argmax on {(old.argmax(1) == new.argmax(1)).mean():.2%} "
          f"of frames\n")
    print("| frame probabilities | seconds | real-time factor | x real time | speed-up |")
    print("|---|---:|---:|---:|---:|")
    for name, wall in best.items():
        print(f"| {name} | {wall:.2f} | {wall / seconds:.4f} | {seconds / wall:.0f} | "
              f"{best['per-window loop (before)'] / wall:.2f} |")
    clips = torch.randn(256, model.sample_rate, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model(clips[:64])
        start = time.perf_counter()
        for batch in clips.split(64):
            model(batch)
        wall = time.perf_counter() - start
    print(f"\nclassification of 1-s clips in batches of 64: {len(clips) / wall:.0f} clips per second\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="a trained classifier (default: untrained SwishNet slim)")
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 60.0], help="recording lengths (10 60)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the segmenting process (1)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs of the before / after rows (2)")
    parser.add_argument("--out", type=Path, default=Path("bench_out/segment"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        torch.manual_seed(0)
        model = create_model("swishnet_slim").save(args.out / "swishnet_slim_untrained.pt")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by the segmenting process
    torch.set_num_threads(args.threads)
    print(f"model: {model}, threads: {args.threads}")
    recordings = build_recordings(args.out, args.minutes)
    compare(model, recordings[args.minutes[0]], args.minutes[0] * 60, args.repeats)
    print("| recording | audio (s) | wall (s) | real-time factor | x real time | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|")
    for minutes, recording in recordings.items():
        seconds = minutes * 60
        rss, wall = run_cli(["segment", "--model", str(model), str(recording), "-o", str(args.out / "timelines")])
        print(f"| {minutes:g} min | {seconds:.0f} | {wall:.1f} | {wall / seconds:.4f} | {seconds / wall:.0f} | "
              f"{rss:.0f} |")


if __name__ == "__main__":
    main()
