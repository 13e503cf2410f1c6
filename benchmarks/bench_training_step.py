"""One training step of the TCN family against the same step on torchaudio's ConvTasNet, in one run.

A step is forward, permutation-invariant negative SI-SDR, backward and an Adam step, on a batch of ``--batch``
two-speaker mixtures of ``--seconds`` at 8 kHz, for the configuration of issue 10 (N=256, L=16, B=128, H=256,
Sc=128, X=8, R=2; ``--config default`` for torchaudio's defaults). Contenders, on identical initial weights, timed
interleaved (each round runs one step of every contender; medians):

- ``torchaudio fp32``: ``torchaudio.models.ConvTasNet``; ``torchaudio bf16-mixed``: the same under bf16 autocast;
- ``sepaudio fp32``: :class:`~sepaudio.models.ConvTasNet` as ``sepaudio train`` runs it by default;
- ``sepaudio bf16-mixed``: under bf16 autocast, as ``trainer.precision=bf16-mixed`` runs it (the bf16 contenders
  only on CPUs with bfloat16 instructions);
- with ``--compiled``, also each of them under ``torch.compile`` (compiling takes a minute or more per contender on a
  CPU; not timed).

Peak memory is the RSS growth of a fresh process during one step after its warm-up step. Usage:

    python benchmarks/bench_training_step.py [--seconds 3] [--batch 4] [--rounds 3] [--threads 2] [--no-memory]
                                             [--compiled]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch

from bench_conv_tasnet import peak_rss_growth_mb
from sepaudio import runtime
from sepaudio.losses import create_loss
from sepaudio.models import ConvTasNet
from sepaudio.nn.fast_tcn import cpu_has_bf16

CONTENDERS = ("torchaudio fp32", "torchaudio bf16-mixed", "sepaudio fp32", "sepaudio bf16-mixed")
COMPILED = tuple(f"{name.split()[0]} compiled {name.split()[1]}" for name in CONTENDERS)
CONFIGS = {"issue10": dict(enc_num_feats=256, msk_num_feats=128, msk_num_hidden_feats=256, msk_num_layers=8,
                           msk_num_stacks=2), "default": {}}


def contender(name: str, config: str, batch: int, seconds: float):
    """A function running one training step of ``name``; every contender starts from the same weights and data."""
    import torchaudio

    torch.manual_seed(0)
    reference = torchaudio.models.ConvTasNet(**CONFIGS[config])
    model = reference if name.startswith("torchaudio") else ConvTasNet.from_torchaudio(reference)
    forward = (lambda x: model(x.unsqueeze(1))) if model is reference else model
    if "compiled" in name:
        model.compile()
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = create_loss("pit_si_sdr")
    generator = torch.Generator().manual_seed(1)
    sources = 0.05 * torch.randn(batch, 2, int(8000 * seconds), generator=generator)
    data = {"mixture": sources.sum(1), "sources": sources}
    bf16 = "bf16" in name

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            estimate = forward(data["mixture"])
        value, _ = loss(estimate.float(), data)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        return value.item()

    return step


def step_memory_mb(name: str, config: str, batch: int, seconds: float) -> float:
    """In this (fresh) process: the largest RSS growth in MB during a step after the warm-up step."""
    step = contender(name, config, batch, seconds)
    step()
    return peak_rss_growth_mb(step, inference=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="mixture length at 8 kHz (3)")
    parser.add_argument("--batch", type=int, default=4, help="mixtures per step (4)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="issue10")
    parser.add_argument("--compiled", action="store_true", help="add the torch.compile'd contenders")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runtime.configure()  # as every sepaudio command does
    if args.memory_of:
        print(step_memory_mb(args.memory_of, args.config, args.batch, args.seconds))
        return
    print(f"torch {torch.__version__}, threads {args.threads}, cpu capability "
          f"{torch.backends.cpu.get_cpu_capability()}, config {args.config}, batch {args.batch} x {args.seconds:g} s "
          f"at 8 kHz, {args.rounds} interleaved rounds, load average {os.getloadavg()[0]:.2f}"
          + ("" if cpu_has_bf16() else "; no bfloat16 instructions (emulated, about 4x slower): no bf16 rows"))
    names = [name for name in CONTENDERS + (COMPILED if args.compiled else ()) if cpu_has_bf16() or "bf16" not in name]
    steps, losses, times = {}, {}, {name: [] for name in names}
    for name in names:
        start = time.perf_counter()
        steps[name] = contender(name, args.config, args.batch, args.seconds)
        losses[name] = steps[name]()  # warm-up (and the compilation)
        print(f"  {name}: first step {time.perf_counter() - start:.1f} s (building, compiling), loss "
              f"{losses[name]:.3f}", flush=True)
    for _ in range(args.rounds):
        for name in names:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times[names[0]])
    print(f"{'contender':<30} {'s / step':>9} {'vs ' + names[0]:>22} {'peak MB':>8}")
    for name in names:
        median = statistics.median(times[name])
        memory = "" if args.no_memory else subprocess.run(
            [sys.executable, __file__, "--memory-of", name, "--config", args.config, "--batch", str(args.batch),
             "--seconds", str(args.seconds), "--threads", str(args.threads)],
            capture_output=True, text=True, check=True).stdout.split()[-1]
        memory = memory if not memory else f"{float(memory):.0f}"
        print(f"{name:<30} {median:9.3f} {base / median:21.2f}x {memory:>8}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
