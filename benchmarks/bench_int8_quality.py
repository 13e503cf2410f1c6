"""What int8 inference costs in quality: trained recipe models scored on held-out voices in fp32 and in int8.

For every seed, the recipe's model is trained as ``benchmarks/bench_recipe_quality.py`` trains it (same data
preparation, budget and overrides; a finished run in ``--work`` is reused, so the models of that benchmark serve
here too), then scored twice on the test split with ``sepaudio evaluate --metrics si_sdr``: on the plain fp32 path,
and with ``--precision int8`` (``model.fast("int8")``: the TCN blocks' 1x1 convolutions in 8-bit integers). Prints
per seed SI-SDRi in fp32 and int8, their difference, and the largest drop of one mixture; exits with status 1 when
a seed's mean loss exceeds ``--max-loss`` (0.3 dB, issue 22). With ``--onnx``, the same for the exported graphs
(``sepaudio export --format onnx`` with and without ``--precision int8``, run by onnxruntime). One torch thread per
process unless ``OMP_NUM_THREADS`` says otherwise. Usage:

    python benchmarks/bench_int8_quality.py [--recipes sep_mini] [--seeds 0 1 2] [--epochs E] [--batches B]
        [--work DIR] [--max-loss 0.3] [--onnx]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench_recipe_quality import BUDGETS, REPO, commit, machine, run

sys.path.insert(0, str(REPO))
from sepaudio.nn.fast_tcn import cpu_has_int8  # noqa: E402

PRECISIONS = {"fp32": [], "int8": ["--precision", "int8"]}


def train(recipe: str, seed: int, epochs: int, batches: int, work: Path) -> tuple[Path, list[str]]:
    """Prepare ``recipe``'s data in ``work/recipe`` (once) and train one model for ``seed`` unless a finished run is
    there. Returns the recipe folder and the overrides that name the run."""
    budget, folder = BUDGETS[recipe], work / recipe
    folder.mkdir(parents=True, exist_ok=True)
    log, conf = folder / "bench.log", REPO / "recipes" / recipe / "conf.yml"
    overrides = [f"exp_dir=exp/bench_seed{seed}", f"seed={seed}", f"trainer.max_epochs={epochs}",
                 f"trainer.limit_train_batches={batches}", "trainer.enable_progress_bar=false", *budget["overrides"]]
    if not (folder / f"exp/bench_seed{seed}/model.pt").exists():
        if not (folder / "data").is_dir():
            run(["bash", str(REPO / "recipes" / recipe / "run.sh"), "--work", str(folder), *budget["prepare"]],
                folder, log)
        run([sys.executable, "-m", "sepaudio", "train", str(conf), *overrides], folder, log)
    return folder, overrides


def score(recipe: str, folder: Path, overrides: list[str], precision: str) -> dict[str, float]:
    """SI-SDRi per test mixture (id -> dB) of the trained run, evaluated in ``precision``."""
    out = folder / f"{overrides[0].split('=', 1)[1]}/eval_test_{precision}"
    run([sys.executable, "-m", "sepaudio", "evaluate", str(REPO / "recipes" / recipe / "conf.yml"), *overrides,
         "--split", "test", "--metrics", "si_sdr", "--examples", "0", "-o", str(out), *PRECISIONS[precision]],
        folder, folder / "bench.log")
    with open(out / "per_utterance.csv", newline="") as rows:
        return {row["id"]: float(row["si_sdri"]) for row in csv.DictReader(rows)}


def score_onnx(recipe: str, folder: Path, overrides: list[str]) -> dict[str, dict[str, float]]:
    """SI-SDRi per test mixture (precision -> id -> dB) of the trained run exported to ONNX in fp32 and with
    ``--precision int8`` (:mod:`sepaudio.onnx_int8`), run by onnxruntime on one thread."""
    import onnxruntime
    import torch
    import yaml

    from sepaudio.data import create_dataset
    from sepaudio.export import export
    from sepaudio.metrics import pit, si_sdr
    from sepaudio.models import load_model

    run_dir = folder / overrides[0].split("=", 1)[1]
    model = load_model(run_dir / "model.pt").eval()
    data = yaml.safe_load((REPO / "recipes" / recipe / "conf.yml").read_text())["data"]
    dataset = create_dataset(data["name"], **{**data["test"], "root": str(folder / data["test"]["root"])})
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    out = {}
    for precision in PRECISIONS:
        path = export(model, run_dir / f"model.{precision}.onnx", precision=precision)
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        out[precision] = {}
        for index in range(len(dataset)):
            item = dataset[index]
            mix, ref = item["mixture"][None].float(), item["sources"][None].float()
            est = torch.from_numpy(session.run(None, {"mixture": mix.numpy()})[0])
            gain = float(pit(si_sdr, est, ref)[0] - si_sdr(mix.expand_as(ref), ref).mean())
            out[precision][str(item.get("id", index))] = gain
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", choices=sorted(BUDGETS), default=["sep_mini"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="training epochs of every run (default: the recipe's budget)")
    parser.add_argument("--batches", type=int, help="batches per epoch (default: the recipe's budget)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "sepaudio_bench_quality",
                        help="folder for the data and runs (shared with bench_recipe_quality.py)")
    parser.add_argument("--max-loss", type=float, default=0.3, help="largest mean SI-SDRi loss of int8 (0.3 dB)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--onnx", action="store_true", help="score the ONNX exports (fp32 and --precision int8, "
                                                            "onnxruntime) instead of sepaudio evaluate")
    args = parser.parse_args()
    if not cpu_has_int8() and not args.onnx:
        sys.exit("bench_int8_quality: this CPU / torch build has no oneDNN int8 kernels; nothing to measure")
    print(f"{machine()}; threads per process {os.environ.get('OMP_NUM_THREADS', '1')}; commit {commit()}")
    results, failed = {}, []
    for recipe in args.recipes:
        epochs, batches = args.epochs or BUDGETS[recipe]["epochs"], args.batches or BUDGETS[recipe]["batches"]
        results[recipe] = {"steps": epochs * batches, "seeds": {}}
        for seed in args.seeds:
            folder, overrides = train(recipe, seed, epochs, batches, args.work)
            if args.onnx:
                fp32, int8 = score_onnx(recipe, folder, overrides).values()
            else:
                fp32, int8 = (score(recipe, folder, overrides, p) for p in PRECISIONS)
            drops = [fp32[k] - int8[k] for k in fp32]
            now = {"fp32": statistics.mean(fp32.values()), "int8": statistics.mean(int8.values()),
                   "loss": statistics.mean(drops), "worst_item_loss": max(drops), "items": len(drops)}
            results[recipe]["seeds"][seed] = {k: round(v, 3) for k, v in now.items()}
            bad = now["loss"] > args.max_loss
            failed += [f"{recipe} seed {seed}"] * bad
            print(f"{recipe} seed {seed} ({epochs * batches} steps): SI-SDRi fp32 {now['fp32']:.2f} dB, int8 "
                  f"{now['int8']:.2f} dB, loss {now['loss']:+.3f} dB (worst mixture {now['worst_item_loss']:+.2f} "
                  f"dB, {len(drops)} held-out mixtures){' > ' + str(args.max_loss) if bad else ''}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "commit": commit(), "recipes": results}, indent=2))
    if failed:
        sys.exit(f"int8 lost more than {args.max_loss} dB: {', '.join(failed)}")


if __name__ == "__main__":
    main()
