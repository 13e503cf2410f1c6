"""Start-up time of the command line: ``sepaudio --help`` and ``sepaudio info --model MODEL`` in fresh processes.

``info`` is timed both ways, interleaved: as it runs now (the model file's stored summary, read without torch) and
the full path it ran before issue 10 (importing torch and every model, rebuilding the model with its weights), which
it still takes for files without a summary. Each row: the best and median wall time of ``--repeats`` runs, and the
process's peak RSS (VmHWM).

    python benchmarks/bench_startup.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import sys
{setup}
from sepaudio.cli import main
try:
    main(sys.argv[1:])
except SystemExit:  # --help
    pass
print("PEAK_KB", next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")))
"""
FULL = "import sepaudio.modelfile; sepaudio.modelfile.read_summary = lambda path: None  # the full reader"


def run(args: list[str], setup: str = "") -> tuple[float, float]:
    """Wall seconds and peak RSS in MiB of one ``sepaudio ARGS`` process."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD.format(setup=setup), *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak = next((line.split()[1] for line in proc.stdout.splitlines() if line.startswith("PEAK_KB")), "0")
    return seconds, int(peak) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command, interleaved (5)")
    args = parser.parse_args()
    from sepaudio.models import ConvTasNet

    with tempfile.TemporaryDirectory() as tmp:
        model = ConvTasNet(n_src=2, sample_rate=8000).save(Path(tmp) / "conv_tasnet.pt")  # 4,984,881 parameters
        info = ["info", "--model", str(model)]
        rows = {"sepaudio --help": (["--help"], ""), "sepaudio info --model MODEL": (info, ""),
                "sepaudio info --model MODEL, full reader (before)": (info, FULL)}
        results = {name: [] for name in rows}
        for _ in range(args.repeats):
            for name, (argv, setup) in rows.items():
                results[name].append(run(argv, setup))
    before = min(s for s, _ in results["sepaudio info --model MODEL, full reader (before)"])
    print(f"best / median of {args.repeats} interleaved runs; model: default Conv-TasNet (20 MB)\n")
    print("| command | best s | median s | peak RSS MiB | info: speed-up vs before |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in results.items():
        best = min(s for s, _ in runs)
        ratio = f"{before / best:.1f}" if "info" in name else ""
        print(f"| `{name}` | {best:.2f} | {statistics.median(s for s, _ in runs):.2f} | "
              f"{max(m for _, m in runs):.0f} | {ratio} |")


if __name__ == "__main__":
    main()
