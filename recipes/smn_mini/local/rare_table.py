"""Markdown table of classification results over seeds: mean +- standard deviation of clip accuracy, macro F1 and
every class's F1, one row per setting, and the per-seed macro F1.

    rare_table.py NAME=EVAL_DIR[,EVAL_DIR...] ... [--mix LABEL=CLIPS,...] [--out FILE]

Each EVAL_DIR is a ``sepaudio evaluate`` report folder (its ``summary.json``), one per seed. With ``--mix`` (the
class sizes of the training split) a column gives the accuracy the run would have on test clips in that mix,
``sum(share * recall)`` over the classes: the accuracy of an imbalanced test set, in which the rare class barely
counts.
"""
import argparse
import json
import statistics
from pathlib import Path

from sepaudio.fileio import write_text


def mean_sd(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{scale * statistics.mean(values):.{digits}f} ± {scale * sd:.{digits}f}"


def table(groups: list[tuple[str, list[Path]]], mix: dict[str, float] | None = None) -> str:
    rows, labels = [], None
    total = sum(mix.values()) if mix else 1.0
    for name, folders in groups:
        runs = [json.loads((folder / "summary.json").read_text()) for folder in folders]
        labels = labels or runs[0]["labels"]
        mixed = [sum(n / total * r["per_class"][c]["recall"] for c, n in mix.items()) for r in runs] if mix else []
        cells = [name, str(len(runs)), mean_sd([r["accuracy"] for r in runs], 100, 2),
                 *([mean_sd(mixed, 100, 2)] if mix else []),
                 mean_sd([r["macro_f1"] for r in runs]),
                 *(mean_sd([r["per_class"][c]["f1"] for r in runs]) for c in labels),
                 " / ".join(f"{r['macro_f1']:.3f}" for r in runs)]
        rows.append("| " + " | ".join(cells) + " |")
    head = ["setting", "seeds", "clip accuracy (%)", *(["accuracy in the training mix (%)"] if mix else []),
            "macro F1", *(f"F1 {c}" for c in labels), "macro F1 per seed"]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *rows]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("groups", nargs="+", metavar="NAME=DIR[,DIR...]")
    parser.add_argument("--mix", help="class sizes of the training split, e.g. speech=210,music=210,noise=9")
    parser.add_argument("--out", type=Path, help="write the table here too")
    args = parser.parse_args()
    groups = [(name, [Path(d) for d in dirs.split(",")])
              for name, _, dirs in (group.partition("=") for group in args.groups)]
    mix = {k: float(v) for k, _, v in (item.partition("=") for item in args.mix.split(","))} if args.mix else None
    text = table(groups, mix)
    print(text, end="")
    if args.out:
        write_text(args.out, text)


if __name__ == "__main__":
    main()
