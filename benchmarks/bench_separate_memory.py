"""Peak memory of ``sepaudio separate`` on a 1-minute and a 10-minute recording (chunked processing).

Each run is a fresh process whose peak resident set size (VmHWM) is reported, so the figures include
Python, torch and the model. With chunking the 10-minute file should need about what the 1-minute one needs; the
last row separates the 1-minute file in one piece for comparison.

Usage: ``python benchmarks/bench_separate_memory.py [--size mini|paper|tiny] [--minutes 1 10]``
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

from sepaudio.models import MiTAS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_peak import RATE, memory_parser, run_cli, write_recording  # noqa: E402

# paper: Conv-TasNet's hyper-parameters (X=8, R=3, N=512, H=512); mini: recipes/sep_mini's model; tiny: for a
# quick check on a busy machine (memory for the model's activations is then small beside Python's and torch's)
SIZES = {"paper": {}, "mini": dict(n_filters=64, tcn=dict(channels=64, hidden=128, skip_channels=64, blocks=4)),
         "tiny": dict(n_filters=16, tcn=dict(channels=16, hidden=32, skip_channels=16, blocks=2))}


def run_separate(model: Path, mix: Path, out: Path, chunk: float) -> tuple[float, float]:
    """Peak RSS in MiB and wall time in seconds of one ``sepaudio separate`` process."""
    return run_cli(["separate", "--model", str(model), str(mix), "-o", str(out), "--chunk-seconds", str(chunk),
                    "--overlap-seconds", "1"])


def main() -> None:
    args = memory_parser(__doc__, SIZES).parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = MiTAS(**SIZES[args.size])
        model.save(tmp / "model.pt")
        print(f"model: MiTAS ({args.size}), {model.num_parameters:,} parameters, {RATE} Hz")
        rows = []
        for minutes in args.minutes:
            mix = tmp / f"mix_{minutes:g}min.wav"
            write_recording(mix, minutes)
            rss, seconds = run_separate(tmp / "model.pt", mix, tmp / "out", args.chunk_seconds)
            rows.append((f"{minutes:g} min", f"{args.chunk_seconds:g} s", rss, seconds))
        shortest = min(args.minutes)
        rss, seconds = run_separate(tmp / "model.pt", tmp / f"mix_{shortest:g}min.wav", tmp / "out",
                                    shortest * 60 + 1)
        rows.append((f"{shortest:g} min", "whole file", rss, seconds))
    print(f"{'input':>8} {'chunk':>11} {'peak RSS (MiB)':>15} {'wall (s)':>9}")
    for name, chunk, rss, seconds in rows:
        print(f"{name:>8} {chunk:>11} {rss:>15.0f} {seconds:>9.1f}")


if __name__ == "__main__":
    main()
