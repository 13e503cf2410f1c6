"""Three ways to build a target speaker extractor on the same training budget, over several seeds, scored on the
held-out voices of tse_mini's test set:

- **scratch**: conf.yml's TseNet trained conditioned for E epochs;
- **warm start**: conf_blind.yml's separator trained blind (PIT) for E/2 epochs, then conf_warmstart.yml's TseNet
  initialised from it (``model.init_from``) and trained conditioned for E/2 more;
- **separate, then select**: the blind separator trained for E epochs, its output nearest the enrollment by i-vector
  (``sepaudio evaluate --select ivector``).

Every network has the same size (N=128, L=40, B=64, H=128, X=8, R=1) and every epoch is 100 batches of 8, so equal
epochs are equal training time; the CPU seconds each training process (its data workers included) used are
measured (``wait4``) and printed beside. The blind run of the warm start is the first half of the select run (a run resumed
for more epochs continues exactly). Run from the work folder after ``run.sh --stage 0 --stop-stage 1``:

    python <recipe>/local/compare_starts.py [--seeds 0 1 2] [--epochs 8] [--jobs 2] [--out compare_starts.md]

Each seed's runs go to exp/starts/seed<S>/; finished steps are skipped when the script is run again.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sepaudio.fileio import write_text

RECIPE = Path(__file__).resolve().parents[1]
METHODS = {"scratch": "TseNet from scratch", "warm": "TseNet warm-started from the blind separator",
           "select": "separate, then select by i-vector"}
COLUMNS = (("si_sdri", "SI-SDRi (dB)", 1), ("confusion", "speaker confusion (%)", 100),
           ("confidence_auc", "confidence AUC", 1), ("kept90_confusion", "confusion at 90 % kept (%)", 100))


def sepaudio(*args: str, log: Path) -> float:
    """Run ``python -m sepaudio ARGS`` (output to ``log``); return the CPU seconds it and its children used."""
    with open(log, "a") as out:
        child = subprocess.Popen([sys.executable, "-m", "sepaudio", *args], stdout=out, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(child.pid, 0)  # this child's usage, its data workers included
    if code := os.waitstatus_to_exitcode(status):
        raise SystemExit(f"sepaudio {' '.join(args)} failed (exit {code}); see {log}")
    return usage.ru_utime + usage.ru_stime


def run_seed(seed: int, epochs: int, overrides: list[str]) -> dict:
    """Train and score the three methods for one seed; return {method: summary with 'cpu_s'}."""
    root = Path("exp/starts") / f"seed{seed}"
    root.mkdir(parents=True, exist_ok=True)
    log, results = root / "log.txt", {}
    tse = [f"seed={seed}", *overrides]
    cpu = json.loads((root / "cpu.json").read_text()) if (root / "cpu.json").exists() else {}

    def train(name: str, conf: str, max_epochs: int, *extra: str) -> None:
        key = f"{name}@{max_epochs}"
        if key not in cpu:
            cpu[key] = sepaudio("train", str(RECIPE / conf), f"exp_dir={root / name}", f"seed={seed}", *extra,
                                f"trainer.max_epochs={max_epochs}", "trainer.enable_progress_bar=false", log=log)
            write_text(root / "cpu.json", json.dumps(cpu))

    half = epochs // 2
    train("blind", "conf_blind.yml", half)
    blind_half = root / "blind_half.pt"  # the separator after half the epochs, which the warm start starts from
    if not blind_half.exists():
        shutil.copy2(root / "blind" / "model.pt", blind_half)
    train("blind", "conf_blind.yml", epochs)
    train("scratch", "conf.yml", epochs, *overrides)
    train("warm", "conf_warmstart.yml", epochs - half, f"model.init_from={blind_half}", *overrides)
    # the blind run was resumed at half time: its CPU is that of both parts
    train_cpu = {"scratch": cpu[f"scratch@{epochs}"], "warm": cpu[f"blind@{half}"] + cpu[f"warm@{epochs - half}"],
                 "select": cpu[f"blind@{half}"] + cpu[f"blind@{epochs}"]}
    conf = str(RECIPE / "conf.yml")
    for method in METHODS:
        report = root / f"eval_{method}"
        if not (report / "summary.json").exists():
            model = root / ("blind" if method == "select" else method) / "model.pt"
            select = ["--select", "ivector"] if method == "select" else []
            sepaudio("evaluate", conf, *tse, "--split", "test", "--model", str(model), "--metrics", "si_sdr",
                     "-o", str(report), *select, log=log)
            subprocess.run([sys.executable, str(RECIPE / "local" / "confusion_by_pitch.py"), conf, str(report),
                            *tse, "--out", str(report / "confusion_by_pitch.md")], check=True,
                           stdout=subprocess.DEVNULL)
        summary = json.loads((report / "summary.json").read_text())
        results[method] = {**summary, "cpu_s": train_cpu[method],
                           "pitch": (report / "confusion_by_pitch.md").read_text()}
    return results


def table(runs: dict[int, dict], epochs: int) -> str:
    seeds = sorted(runs)
    lines = [f"{len(seeds)} seeds ({', '.join(map(str, seeds))}), {epochs} epochs of 100 batches each; "
             f"mean (min to max over seeds); held-out voices, 200 test mixtures", "",
             "| method | " + " | ".join(title for _, title, _ in COLUMNS) + " | training CPU (s) |",
             "|---|" + "---:|" * (len(COLUMNS) + 1)]
    for method, title in METHODS.items():
        cells = []
        for key, _, scale in COLUMNS:
            values = [scale * runs[s][method][key] for s in seeds]
            cells.append(f"{statistics.mean(values):.2f} ({min(values):.2f} to {max(values):.2f})")
        cpu = [runs[s][method]["cpu_s"] for s in seeds]
        cells.append(f"{statistics.mean(cpu):.0f}")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    for method, title in METHODS.items():
        lines += ["", f"{title}, by pitch distance (seed {seeds[0]}):", "", runs[seeds[0]][method]["pitch"].strip()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=8, help="training epochs of every method (8)")
    parser.add_argument("--jobs", type=int, default=1, help="seeds trained at once")
    parser.add_argument("--out", default="exp/starts/compare_starts.md")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the TseNet configs (conf.yml, "
                        "conf_warmstart.yml), e.g. model.args.ivector_dim=10")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = dict(zip(args.seeds, pool.map(lambda s: run_seed(s, args.epochs, args.overrides),
                                             args.seeds)))
    text = table(runs, args.epochs)
    write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
