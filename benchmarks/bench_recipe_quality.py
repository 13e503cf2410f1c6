"""Quality on held-out voices: the sep_mini and tse_mini recipes trained for a fixed number of steps over several
seeds, scored on speakers never seen in training, against a stored baseline with its spread.

Run it whenever training, data or model code changes. Every recipe runs as a user runs it: its ``run.sh`` prepares
the data once (sep_mini: stage 0, the mini speech corpus; tse_mini: stages 0-1, corpus, speaker lists and i-vector
extractor), then for every seed ``sepaudio train <recipe>/conf.yml seed=S trainer.max_epochs=E
trainer.limit_train_batches=B`` and ``sepaudio evaluate ... --split test`` (held-out speakers; SI-SDRi and SDRi).
A fixed number of steps (E epochs of B batches, each followed by the recipe's validation), not a time budget, so a
loaded machine gives the same figures, only later; one torch thread per process (``OMP_NUM_THREADS``, default 1).
Each run costs a few minutes on a 2-core CPU at the default budget.

The baseline (``benchmarks/quality_baseline.json``) holds measured figures only, with the command, commit and
machine that produced them; a recipe whose mean SI-SDRi falls below the baseline's mean by more than the baseline's
spread (max - min over its seeds) is reported as a DROP and the script exits with status 1. Figures of another
budget (steps, seeds, data preparation) are not compared. ``--conf conf_slicenet.yml`` trains another config of each
recipe (its runs go to ``exp/bench_<conf>_seed<S>``); its figures are printed beside the baseline's but never
counted as a drop (another model), and ``--json FILE`` keeps them. ``--inference`` adds, for each recipe, the
inference real-time factor (median of interleaved calls on a 10 s mixture, untrained weights) and peak memory (RSS
growth of a fresh process doing one call) of the ``--conf`` model beside conf.yml's. Usage:

    python benchmarks/bench_recipe_quality.py [--recipes sep_mini tse_mini] [--seeds 0 1 2] [--epochs E] [--batches B]
        [--conf conf.yml] [--inference] [--work DIR] [--baseline benchmarks/quality_baseline.json] [--write-baseline] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from sepaudio.fileio import write_text  # noqa: E402
from sepaudio.nn.fast_tcn import cpu_has_bf16  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
from bench_conv_tasnet import peak_rss_growth_mb  # noqa: E402
from machine import cpu_model  # noqa: E402

#: per recipe: run.sh options of the data preparation (corpus and, for tse_mini, the i-vector extractor: smaller
#: than the recipe's defaults, so that preparing takes a minute), the training budget (epochs x batches; an epoch of
#: either recipe is 100 batches), and the overrides run.sh adds to every training command (tse_mini: the i-vector
#: dimension of the extractor)
BUDGETS = {
    "sep_mini": {"prepare": ["--stage", "0", "--stop-stage", "0"], "epochs": 3, "batches": 100, "overrides": []},
    "tse_mini": {"prepare": ["--stage", "0", "--stop-stage", "1", "--speakers", "40", "--heldout", "8",
                             "--utterances", "10", "--components", "16", "--rank", "40", "--lda-dim", "10"],
                 "epochs": 3, "batches": 100, "overrides": ["model.args.ivector_dim=10"]},
}
METRIC = "si_sdri"
DEFAULT_CONF = "conf.yml"


def machine() -> str:
    """CPU model, usable cores, torch version and CPU capability."""
    model = cpu_model()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{model}, {cores} cores, torch {torch.__version__}, cpu capability "
            f"{torch.backends.cpu.get_cpu_capability()}, bf16 instructions {'yes' if cpu_has_bf16() else 'no'}")


def commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("+uncommitted changes" if dirty else "")
    except OSError:
        return "unknown"


def run(command: list[str], cwd: Path, log: Path) -> None:
    """Run ``command`` in ``cwd`` with one torch thread unless the environment says otherwise; its output goes to
    ``log``; a failure stops the benchmark with the log's end."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "PYTHON": sys.executable,
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with open(log, "a") as out:
        out.write(f"$ {shlex.join(command)}\n")
        out.flush()
        done = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        tail = "".join(log.read_text().splitlines(keepends=True)[-30:])
        sys.exit(f"bench_recipe_quality: {shlex.join(command)} failed (exit {done.returncode}); end of {log}:\n{tail}")


def measure(recipe: str, seeds: list[int], epochs: int, batches: int, work: Path,
            conf_name: str = DEFAULT_CONF, extra: tuple[str, ...] = ()) -> dict:
    """Prepare ``recipe``'s data in ``work/recipe`` (once) and train and score one model of its ``conf_name`` per
    seed.

    Returns:
        ``{"steps", "epochs", "prepare", "conf", "model", "parameters", "seeds": {seed: {si_sdri, sdri, items,
        train_s}}, "mean", "spread"}``.
    """
    budget, folder = BUDGETS[recipe], work / recipe
    folder.mkdir(parents=True, exist_ok=True)
    log, conf = folder / "bench.log", REPO / "recipes" / recipe / conf_name
    if not conf.is_file():
        raise SystemExit(f"bench_recipe_quality: {conf} does not exist; give --conf a file of recipes/{recipe}/")
    runs = "bench" if conf_name == DEFAULT_CONF else f"bench_{conf.stem}"
    run(["bash", str(REPO / "recipes" / recipe / "run.sh"), "--work", str(folder), *budget["prepare"]], folder, log)
    result = {"steps": epochs * batches, "epochs": epochs, "prepare": budget["prepare"], "conf": conf_name,
              "seeds": {}}
    for seed in seeds:
        overrides = [f"exp_dir=exp/{runs}_seed{seed}", f"seed={seed}", f"trainer.max_epochs={epochs}",
                     f"trainer.limit_train_batches={batches}", "trainer.enable_progress_bar=false",
                     *budget["overrides"], *extra]
        exp = folder / f"exp/{runs}_seed{seed}"
        if (exp / "model.pt").exists():  # an interrupted run (last.ckpt only) resumes
            raise SystemExit(f"bench_recipe_quality: {exp} holds a finished run, perhaps of other code; give another "
                             f"--work or remove it.")
        start = time.perf_counter()
        run([sys.executable, "-m", "sepaudio", "train", str(conf), *overrides], folder, log)
        seconds = time.perf_counter() - start
        run([sys.executable, "-m", "sepaudio", "evaluate", str(conf), *overrides, "--split", "test",
             "--metrics", "si_sdr,sdr", "--examples", "0"], folder, log)
        summary = json.loads((exp / "eval_test" / "summary.json").read_text())
        result.update(model=summary["model"], parameters=summary["parameters"])
        result["seeds"][str(seed)] = {"si_sdri": round(summary["si_sdri"], 3), "sdri": round(summary["sdri"], 3),
                                      "items": summary["n"], "train_s": round(seconds, 1)}
        print(f"  {recipe} seed {seed}: SI-SDRi {summary['si_sdri']:.2f} dB, SDRi {summary['sdri']:.2f} dB on "
              f"{summary['n']} held-out mixtures ({seconds:.0f} s training)", flush=True)
    figures = [s[METRIC] for s in result["seeds"].values()]
    result.update(mean=round(statistics.mean(figures), 3), spread=round(max(figures) - min(figures), 3))
    return result


def build(recipe: str, conf_name: str):
    """The untrained model of ``recipes/recipe/conf_name`` (seed 0, eval mode) and its inputs for 10 s of audio."""
    from sepaudio.models import create_model

    spec = yaml.safe_load((REPO / "recipes" / recipe / conf_name).read_text())["model"]
    args = {**spec["args"], **({"ivector_dim": 10} if spec["name"] == "tsenet" else {})}
    torch.manual_seed(0)
    model = create_model(spec["name"], **args).eval()
    rate, gen = model.sample_rate, torch.Generator().manual_seed(0)
    inputs = [0.1 * torch.randn(1, 10 * rate, generator=gen)]
    if len(model.input_keys) > 1:  # TseNet: a 2 s enrollment or an i-vector
        ivector = model.input_keys[1] == "ivector"
        inputs.append(torch.randn(1, 10, generator=gen) if ivector else 0.1 * torch.randn(1, 2 * rate, generator=gen))
    return model, inputs


def inference(recipe: str, conf_name: str, rounds: int = 5) -> dict:
    """Real-time factor and peak memory of conf.yml's model and ``conf_name``'s, on the same 10 s input.

    Returns: ``{conf: {"model", "parameters", "rtf", "peak_mb"}}``.
    """
    models = {name: build(recipe, name) for name in dict.fromkeys([DEFAULT_CONF, conf_name])}
    times = {name: [] for name in models}
    with torch.inference_mode():
        for model, inputs in models.values():
            model(*inputs)  # warm-up
        for _ in range(rounds):
            for name, (model, inputs) in models.items():
                start = time.perf_counter()
                model(*inputs)
                times[name].append(time.perf_counter() - start)
    out = {}
    for name, (model, _) in models.items():
        child = subprocess.run([sys.executable, __file__, "--recipes", recipe, "--conf", name, "--inference"],
                               env={**os.environ, "BENCH_PEAK_OF": "1"}, capture_output=True, text=True)
        peak = float(child.stdout.strip().splitlines()[-1]) if child.returncode == 0 else math.nan
        out[name] = {"model": model.registered_name, "parameters": model.num_parameters,
                     "rtf": round(statistics.median(times[name]) / 10, 4), "peak_mb": round(peak, 1)}
        print(f"  {recipe} {name}: {out[name]['model']} ({out[name]['parameters']:,} parameters): RTF "
              f"{out[name]['rtf']:.3f}, peak memory {out[name]['peak_mb']:.0f} MB", flush=True)
    return out


def compare(recipe: str, now: dict, baseline: dict | None) -> bool:
    """Print ``now`` beside the baseline; return whether the mean dropped by more than the baseline's spread."""
    line = f"{recipe:9s} {now['conf']} {now['model']} ({now['parameters']:,} parameters), {now['steps']} steps, seeds " \
           f"{','.join(now['seeds'])}: {METRIC} mean {now['mean']:.2f} dB (spread {now['spread']:.2f})"
    base = (baseline or {}).get("recipes", {}).get(recipe)
    if base is None:
        print(f"{line}; no baseline")
        return False
    if now["conf"] != base.get("conf", DEFAULT_CONF):
        print(f"{line}; baseline ({base.get('conf', DEFAULT_CONF)}, {base['model']}, {base['parameters']:,} "
              f"parameters) {base['mean']:.2f} dB (spread {base['spread']:.2f}): another model, not compared")
        return False
    budget = ("steps", "epochs", "prepare")
    if [base[k] for k in budget] + [sorted(base["seeds"])] != [now[k] for k in budget] + [sorted(now["seeds"])]:
        print(f"{line}; the baseline was measured at another budget (steps {base['steps']}, seeds "
              f"{','.join(base['seeds'])}): not compared")
        return False
    drop = base["mean"] - now["mean"]
    dropped = drop > base["spread"]
    print(f"{line}; baseline {base['mean']:.2f} dB (spread {base['spread']:.2f}, {base['commit']}): "
          f"{'DROP' if dropped else 'ok'} ({-drop:+.2f} dB)")
    return dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", choices=sorted(BUDGETS), default=sorted(BUDGETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="training epochs of every run (default: the recipe's budget)")
    parser.add_argument("--batches", type=int, help="batches per epoch (default: the recipe's budget)")
    parser.add_argument("--conf", default=DEFAULT_CONF,
                        help="the config file of each recipe to train (e.g. conf_slicenet.yml; default conf.yml)")
    parser.add_argument("--inference", action="store_true",
                        help="measure inference RTF and peak memory against conf.yml's model instead of training")
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override of every training and evaluation, e.g. model.args.n_speakers=32 "
                             "(conf_slicenet.yml of tse_mini on the benchmark's smaller corpus)")
    parser.add_argument("--json", type=Path, help="also write the figures measured to this JSON file")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "sepaudio_bench_quality",
                        help="folder for the data and runs (reused: the data is prepared once)")
    parser.add_argument("--baseline", type=Path, default=REPO / "benchmarks" / "quality_baseline.json")
    parser.add_argument("--write-baseline", action="store_true",
                        help="store these figures as the baseline (with the command, commit and machine)")
    args = parser.parse_args()
    if min(args.epochs or 1, args.batches or 1) < 1:
        parser.error("--epochs and --batches must be at least 1")
    if os.environ.get("BENCH_PEAK_OF"):  # the child process of one peak-memory measurement
        model, inputs = build(args.recipes[0], args.conf)
        print(peak_rss_growth_mb(lambda: model(*inputs)))
        return
    if args.inference:
        print(f"{machine()}; threads per process {torch.get_num_threads()}; commit {commit()}")
        results = {recipe: inference(recipe, args.conf) for recipe in args.recipes}
        if args.json:
            write_text(args.json, json.dumps({"command": shlex.join(["python", *sys.argv]), "commit": commit(),
                                              "machine": machine(), "inference": results}, indent=2) + "\n")
        return
    print(f"{machine()}; threads per process {os.environ.get('OMP_NUM_THREADS', '1')}; commit {commit()}")
    baseline = json.loads(args.baseline.read_text()) if args.baseline.is_file() else None
    results = {recipe: measure(recipe, args.seeds, args.epochs or BUDGETS[recipe]["epochs"],
                               args.batches or BUDGETS[recipe]["batches"], args.work, args.conf, tuple(args.extra))
               for recipe in args.recipes}
    dropped = [recipe for recipe, now in results.items() if compare(recipe, now, baseline)]
    if args.json:
        write_text(args.json, json.dumps({"command": shlex.join(["python", *sys.argv]), "commit": commit(),
                                          "machine": machine(), "recipes": results}, indent=2) + "\n")
    if args.write_baseline:
        measured = {"command": shlex.join(["python", *sys.argv]), "commit": commit(), "machine": machine(),
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        record = {"metric": f"{METRIC} (dB) on the recipe's test split: held-out speakers",
                  "recipes": {**(baseline or {}).get("recipes", {}),
                              **{recipe: {**now, **measured} for recipe, now in results.items()}}}
        write_text(args.baseline, json.dumps(record, indent=2) + "\n")
        print(f"baseline written: {args.baseline}")
    if dropped:
        sys.exit(f"quality dropped beyond the baseline's spread: {', '.join(dropped)}")


if __name__ == "__main__":
    main()
