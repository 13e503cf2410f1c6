"""Speed of separation scoring in ``sepaudio evaluate``: the torchmetrics path it replaced against the current one.

Builds a test set of two-source mixtures (``--items`` of ``--seconds`` s at 8 kHz, sources of the mini speech
corpus generator), runs a sep_mini-sized Conv-TasNet (untrained: its speed does not depend on its weights) on each,
and scores every estimate three ways, interleaved and repeated (``--repeats``; the best of each is shown):

- ``old``: as evaluate.py did before issue 10: torchmetrics' SI-SDR, ``signal_distortion_ratio`` (a Toeplitz
  solve for the estimate and another for the mixture), PESQ and STOI one after another in this process;
- ``new``: :func:`sepaudio.evaluate.evaluate` (one system solve per reference for estimate and mixture, PESQ / STOI
  in a pool of processes beside the model);
- ``new, --metrics si_sdr``: the same with SI-SDR(i) only.

With ``--oracle`` the "model" returns each mixture's sources plus noise (no network): the rows then time the
scoring alone.

Every row runs the model too (same for all). It checks that old and new give the same figures (largest difference
per metric) and prints the time of each row, its ratio to ``old`` and the peak RSS of a fresh process running it
(VmHWM of the main process; the pool's forked processes share its pages and hold one utterance each).

    python benchmarks/bench_evaluate.py [--items 10] [--seconds 4] [--repeats 2] [--threads 2]
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RATE = 8000
SEP_MINI = {"n_src": 2, "sample_rate": RATE, "n_filters": 64, "filter_length": 16,
            "tcn": {"channels": 64, "hidden": 128, "skip_channels": 64, "kernel_size": 3, "blocks": 4, "repeats": 3}}


class Oracle(torch.nn.Module):
    """Each mixture's sources plus noise at about 10 dB SNR, looked up: scoring alone, without a network."""

    registered_name, input_keys, sample_rate, num_parameters = "oracle", ("mixture",), RATE, 0

    def __init__(self, data: list[dict]):
        super().__init__()
        self.data, self.weight = data, torch.nn.Parameter(torch.zeros(1))

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        item = next(i for i in self.data if torch.equal(i["mixture"], mixture[0]))
        noise = torch.randn(item["sources"].shape, generator=torch.Generator().manual_seed(int(item["id"][3:])))
        return (item["sources"] + 0.3 * item["sources"].std(-1, keepdim=True) * noise).unsqueeze(0)


def build(items: int, seconds: float, root: Path, oracle: bool = False) -> tuple[torch.nn.Module, list[dict]]:
    """The model (or :class:`Oracle`) and ``items`` mixtures ``{"mixture": (T,), "sources": (2, T), "id"}`` of two speakers each."""
    from sepaudio import audio
    from sepaudio.data import make_mini_speech_corpus
    from sepaudio.models import create_model

    files = list(make_mini_speech_corpus(root / "corpus", n_speakers=4, utterances=items, seconds=seconds).values())
    length, data = int(seconds * RATE), []
    for i in range(items):
        waves = [audio.load(files[(i + k) % len(files)][i], RATE)[0][0, :length] for k in (0, 1)]
        sources = torch.stack([torch.nn.functional.pad(w, (0, length - w.shape[-1])) for w in waves])
        sources[1] *= 10 ** ((i % 5 - 2) / 20)  # -2 ... 2 dB
        data.append({"mixture": sources.sum(0), "sources": sources, "id": f"mix{i}"})
    torch.manual_seed(0)
    return (Oracle(data) if oracle else create_model("conv_tasnet", **SEP_MINI)).eval(), data


def old_evaluate(model, data) -> list[dict]:
    """evaluate.py's separation loop before issue 10 (no plots): torchmetrics scores, one after another."""
    from torchmetrics.functional.audio import (perceptual_evaluation_speech_quality, signal_distortion_ratio,
                                               short_time_objective_intelligibility)

    from sepaudio.metrics import pit, si_sdr

    def sdr(est, ref):
        return signal_distortion_ratio(est.double(), ref.double()).to(est.dtype)

    rows = []
    with torch.inference_mode():
        for item in data:
            est = model(item["mixture"].unsqueeze(0))[0]
            ref, mix = item["sources"], item["mixture"].expand_as(item["sources"])
            est = est[pit(si_sdr, est.unsqueeze(0), ref.unsqueeze(0))[1][0]]
            est_si, est_sdr = si_sdr(est, ref), sdr(est, ref)
            row = {"si_sdr": est_si.mean(), "si_sdri": (est_si - si_sdr(mix, ref)).mean(), "sdr": est_sdr.mean(),
                   "sdri": (est_sdr - sdr(mix, ref)).mean(),
                   "pesq": perceptual_evaluation_speech_quality(est, ref, RATE, "nb").mean(),
                   "stoi": short_time_objective_intelligibility(est, ref, RATE).mean()}
            rows.append({k: float(v) for k, v in row.items()})
    return rows


def run(variant: str, model, data, out: Path) -> tuple[float, list[dict]]:
    """Seconds and per-item rows of one variant."""
    from sepaudio.evaluate import evaluate  # imported before the clock starts, as torchmetrics is

    start = time.perf_counter()
    if variant == "old":
        rows = old_evaluate(model, data)
    else:
        metrics = ("si_sdr",) if variant.endswith("si_sdr") else ("si_sdr", "sdr", "pesq", "stoi")
        evaluate(model, data, out, n_examples=0, progress=False, metrics=metrics)
        rows = [{k: float(v) for k, v in r.items() if k != "id"} for r in csv.DictReader(open(out / "per_utterance.csv"))]
    return time.perf_counter() - start, rows


CHILD = """
import json, sys
sys.path.insert(0, {here!r})
import torch
if torch.get_num_threads() != {threads}:  # a change breaks torch 2.11's batched LU solve (torchmetrics' SDR)
    torch.set_num_threads({threads})
import torchmetrics  # imported by 'sepaudio evaluate' (lightning) before scoring: not timed in any row
from pathlib import Path
import bench_evaluate as b
model, data = b.build({items}, {seconds}, Path({root!r}), {oracle})
seconds, rows = b.run({variant!r}, model, data, Path({root!r}) / {variant!r}.replace(' ', '_'))
peak = int(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))
print('RESULT', json.dumps([seconds, rows, peak]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10, help="mixtures in the test set (10)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each mixture (4)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs of each variant (2)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each run (2)")
    parser.add_argument("--oracle", action="store_true", help="score noisy copies of the sources: no network")
    args = parser.parse_args()
    variants = ["old", "new", "new, --metrics si_sdr"]
    with tempfile.TemporaryDirectory() as tmp:
        build(args.items, args.seconds, Path(tmp))  # the corpus, once
        results = {v: [] for v in variants}
        for _ in range(args.repeats):
            for variant in variants:  # a fresh process each: peak memory of this row alone
                code = CHILD.format(here=str(Path(__file__).resolve().parent), threads=args.threads, items=args.items,
                                    seconds=args.seconds, root=tmp, variant=variant, oracle=args.oracle)
                proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
                if proc.returncode:
                    sys.exit(proc.stderr)
                results[variant].append(json.loads(proc.stdout.split("RESULT", 1)[1]))
    best = {v: min(r, key=lambda x: x[0]) for v, r in results.items()}
    old_rows, new_rows = best["old"][1], best["new"][1]
    print(f"{args.items} mixtures of {args.seconds:g} s, 2 sources, 8 kHz; "
          f"{'oracle estimates (no network)' if args.oracle else 'sep_mini Conv-TasNet'}; torch threads {args.threads}; "
          f"best of {args.repeats}\n")
    print("| metric | old mean | new mean | largest difference per item |")
    print("|---|---:|---:|---:|")
    for key in old_rows[0]:
        diff = max(abs(o[key] - n[key]) for o, n in zip(old_rows, new_rows))
        mean = [sum(r[key] for r in rows) / len(rows) for rows in (old_rows, new_rows)]
        print(f"| {key} | {mean[0]:.4f} | {mean[1]:.4f} | {diff:.2e} |")
    print("\n| scoring | seconds (model included) | s / mixture | speed-up vs old | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    for variant in variants:
        seconds, _, peak = best[variant]
        print(f"| {variant} | {seconds:.2f} | {seconds / args.items:.3f} | {best['old'][0] / seconds:.2f} | "
              f"{peak / 1024:.0f} |")


if __name__ == "__main__":
    main()
