"""Shared by the memory benchmarks: run one ``sepaudio`` command in a fresh process and read its peak RSS."""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch

from sepaudio import audio

RATE = 8000

# The child reports its own peak (VmHWM of the new process image). ``ru_maxrss`` would not do: Linux keeps it across
# fork + exec, so a child would report at least the RSS its parent had when it forked.
CHILD = """
import sys
from sepaudio.cli import main
code = main(sys.argv[1:])
print("PEAK_KB", next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")))
sys.exit(code)
"""


def run_cli(args: list[str]) -> tuple[float, float]:
    """Peak RSS in MiB and wall time in seconds of one ``sepaudio ARGS...`` process."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    kb = int(next(line.split()[1] for line in proc.stdout.splitlines() if line.startswith("PEAK_KB")))
    return kb / 1024, seconds


def write_recording(path: Path, minutes: float) -> None:
    """Noise with a slow envelope, ``minutes`` long at :data:`RATE`."""
    gen = torch.Generator().manual_seed(0)
    n = int(minutes * 60 * RATE)
    wav = 0.1 * torch.randn(n, generator=gen) * (1 + torch.sin(torch.arange(n) / RATE))
    audio.save(path, wav, RATE)


def memory_parser(doc: str, sizes: dict) -> argparse.ArgumentParser:
    """The options every memory benchmark takes: model size, input minutes, chunk length."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--size", choices=sorted(sizes), default="mini", help="model size (mini)")
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--chunk-seconds", type=float, default=8.0)
    return parser
