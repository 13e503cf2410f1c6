"""Training throughput: the recipe's Lightning loop (``sepaudio train``'s :class:`TrainingSystem`) against a plain
PyTorch loop on the same data, with ``data.num_workers: auto`` against the old recipe default (4 workers, torch's
default threads).

Each row builds the model, loss and loaders from ``recipes/sep_mini/conf.yml`` with :func:`sepaudio.train.build`
(generated mini corpus, 1-s mixtures, batches of 4, sep_mini's Conv-TasNet) and times ``--steps`` optimisation
steps after ``--warmup`` steps, in a fresh process per row, rows interleaved ``--repeats`` times (best shown):

- ``plain``: ``for batch in loader: zero_grad; loss(model(mixture), batch).backward(); clip; Adam step``;
- ``lightning``: ``lightning.Trainer.fit`` of the same :class:`~sepaudio.train.TrainingSystem` ``sepaudio train``
  runs (no validation, logging or checkpoints), timed from the first step after the warm-up to the last.

    python benchmarks/bench_training_loop.py [--steps 30] [--warmup 3] [--repeats 2]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]  # runs from any folder: paths are relative to this file
CONFIG = REPO / "recipes" / "sep_mini" / "conf.yml"
CHILD = """
import json, sys
sys.path[:0] = [{here!r}, {repo!r}]
import bench_training_loop as b
print("RESULT", json.dumps(b.measure({loop!r}, {workers!r}, {steps}, {warmup}, {root!r})))
"""


def measure(loop: str, workers, steps: int, warmup: int, root: str) -> list:
    """Steps per second, data workers and torch threads of one loop with ``data.num_workers = workers``."""
    import lightning as L
    import torch

    from sepaudio.data import make_mini_speech_corpus
    from sepaudio.train import TrainingSystem, build, load_config

    make_mini_speech_corpus(Path(root) / "mini", n_speakers=16, utterances=6)
    config = load_config(str(CONFIG), [f"data.train.root={root}/mini", f"data.valid.root={root}/mini",
                                       f"data.num_workers={workers}", f"data.train.length={4 * (steps + warmup)}"])
    torch.manual_seed(0)
    model, loss, train_loader, _ = build(config)
    n_workers, threads = train_loader.num_workers, torch.get_num_threads()
    marks = []
    if loop == "plain":
        optim = torch.optim.Adam(model.parameters(), lr=config["optim"]["lr"])
        model.train()
        for batch in train_loader:
            marks.append(time.perf_counter())
            optim.zero_grad()
            value, _ = loss(model(*[batch[k] for k in model.input_keys]), batch)
            value.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config["trainer"]["gradient_clip_val"])
            optim.step()
        marks.append(time.perf_counter())
    else:
        class Clock(L.Callback):
            def on_train_batch_start(self, *args):
                marks.append(time.perf_counter())

            def on_train_end(self, *args):
                marks.append(time.perf_counter())

        trainer = L.Trainer(max_epochs=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1,
                            gradient_clip_val=config["trainer"]["gradient_clip_val"], callbacks=[Clock()],
                            default_root_dir=root)
        trainer.fit(TrainingSystem(model, loss, config["optim"], config["seed"]), train_loader)
    timed = marks[warmup:]
    return [(len(timed) - 1) / (timed[-1] - timed[0]), n_workers, threads]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps (30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps (3)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs of each row (2)")
    args = parser.parse_args()
    rows = [(loop, workers) for workers in ("auto", 4) for loop in ("plain", "lightning")]
    results = {row: [] for row in rows}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for loop, workers in rows:
                code = CHILD.format(here=str(Path(__file__).resolve().parent), repo=str(REPO), loop=loop,
                                    workers=workers, steps=args.steps, warmup=args.warmup, root=tmp)
                proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
                if proc.returncode:
                    sys.exit(proc.stderr[-3000:])
                results[(loop, workers)].append(json.loads(proc.stdout.split("RESULT", 1)[1]))
    best = {row: max(r, key=lambda x: x[0]) for row, r in results.items()}
    print(f"sep_mini Conv-TasNet, batches of 4 one-second mixtures; {args.steps} steps after {args.warmup}; "
          f"best of {args.repeats}\n")
    print("| loop | data.num_workers | workers | torch threads | steps / s | vs plain, same setting |")
    print("|---|---|---:|---:|---:|---:|")
    for (loop, workers), (rate, n_workers, threads) in best.items():
        print(f"| {loop} | {workers} | {n_workers} | {threads} | {rate:.2f} | "
              f"{rate / best[('plain', workers)][0]:.2f} |")


if __name__ == "__main__":
    main()
