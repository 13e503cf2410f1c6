"""Peak memory of ``model.separate`` on a 1-minute and a 10-minute numpy array (the Python API's chunked path).

Each run is a fresh process that loads the model, makes the array, and separates it; it reports its peak resident set
size (VmHWM) and its resident size just before ``separate`` (model, Python, torch and the input array). The growth
beyond that is what ``separate`` needs: its output (n_src float32 copies of the input) plus a bounded working set
for the chunks. The last row separates the shortest array in one chunk for comparison.

Usage: ``python benchmarks/bench_array_memory.py [--size mini|paper|tiny] [--minutes 1 10] [--chunk-seconds 8]``
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sepaudio.models import MiTAS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_separate_memory import SIZES  # noqa: E402
from cli_peak import RATE, memory_parser  # noqa: E402
from machine import machine_line  # noqa: E402

CHILD = """
import sys
import numpy as np
import torch
from sepaudio import load_model

torch.set_num_threads(2)
model_path, minutes, chunk = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
model = load_model(model_path)
x = 0.1 * np.random.default_rng(0).standard_normal(int(minutes * 60 * model.sample_rate)).astype(np.float32)
status = lambda key: next(line.split()[1] for line in open("/proc/self/status") if line.startswith(key))
print("BASE_KB", status("VmRSS"))
out = model.separate(x, chunk_seconds=chunk, overlap_seconds=min(1.0, chunk / 2))
assert isinstance(out, np.ndarray) and out.shape == (model.n_src, x.shape[0])
print("PEAK_KB", status("VmHWM"))
"""


def run_separate(model: Path, minutes: float, chunk: float) -> tuple[float, float, float]:
    """Resident MiB before ``separate``, peak MiB, and wall seconds of one child process."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(model), str(minutes), str(chunk)], capture_output=True,
                          text=True, check=True)
    seconds = time.perf_counter() - start
    kb = {key: int(value) for key, value in (line.split() for line in proc.stdout.splitlines()
                                             if line.startswith(("BASE_KB", "PEAK_KB")))}
    return kb["BASE_KB"] / 1024, kb["PEAK_KB"] / 1024, seconds


def main() -> None:
    args = memory_parser(__doc__, SIZES).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = MiTAS(**SIZES[args.size])
        path = model.save(Path(tmp) / "model.pt")
        print(machine_line())
        print(f"model: MiTAS ({args.size}), {model.num_parameters:,} parameters, {RATE} Hz, float32 numpy input, "
              f"2 threads")
        runs = [(minutes, args.chunk_seconds, f"{args.chunk_seconds:g} s") for minutes in args.minutes]
        shortest = min(args.minutes)
        runs.append((shortest, shortest * 60 + 1, "whole"))
        rows = [(minutes, name, *run_separate(path, minutes, chunk)) for minutes, chunk, name in runs]
    print(f"{'input':>8} {'chunk':>7} {'in + out (MiB)':>15} {'before (MiB)':>13} {'peak (MiB)':>11} "
          f"{'growth (MiB)':>13} {'wall (s)':>9}")
    for minutes, name, base, peak, seconds in rows:
        data = minutes * 60 * RATE * 4 * (1 + model.n_src) / 2 ** 20
        print(f"{minutes:>6g} m {name:>7} {data:>15.0f} {base:>13.0f} {peak:>11.0f} {peak - base:>13.0f} "
              f"{seconds:>9.1f}")


if __name__ == "__main__":
    main()
