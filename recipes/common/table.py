"""Markdown table of ``sepaudio evaluate`` results, one row per output folder (read from its ``summary.json``).

    table.py EVAL_DIR... [--cross-validation] [--out FILE]

A row is named by the experiment the folder belongs to (``exp/mitas/eval_test`` -> ``mitas``). Separation and
extraction results give SI-SDRi, SDRi, PESQ and STOI (extraction also the speaker confusion rate) and each
model's size relative to the first row's;
classification results give clip accuracy, macro F1 and milliseconds per clip. With ``--cross-validation`` the rows
are the folds of one cross-validation and a last row gives their mean +- standard deviation over the folds.
"""
import argparse
import json
import statistics
from pathlib import Path

from sepaudio.fileio import write_text

# (summary key, column, format, scale)
SEPARATION = [("si_sdri", "SI-SDRi (dB)", "{:.2f}", 1), ("sdri", "SDRi (dB)", "{:.2f}", 1),
              ("pesq", "PESQ", "{:.2f}", 1), ("stoi", "STOI", "{:.2f}", 1),
              ("confusion", "speaker confusion (%)", "{:.1f}", 100)]
CLASSIFICATION = [("accuracy", "clip accuracy (%)", "{:.2f}", 100), ("macro_f1", "macro F1", "{:.3f}", 1),
                  ("ms_per_clip", "ms per clip", "{:.1f}", 1)]


def row_name(folder: Path) -> str:
    return folder.parent.name if folder.name.startswith("eval") else folder.name


def table(folders: list[Path], cross_validation: bool = False) -> str:
    """The Markdown table (and a line saying how many test items each row scored)."""
    summaries = {row_name(f): json.loads((f / "summary.json").read_text()) for f in folders}
    first = next(iter(summaries.values()))
    classification = "accuracy" in first
    scores = [c for c in (CLASSIFICATION if classification else SEPARATION)
              if all(c[0] in s for s in summaries.values())]
    head = ["run" if classification else "model", "parameters"] + ([] if classification else ["relative size"])
    lines = ["| " + " | ".join(head + [name for _, name, _, _ in scores]) + " |",
             "|---|" + "---:|" * (len(head) - 1 + len(scores))]
    for name, s in summaries.items():
        cells = [name, f"{s['parameters']:,}"]
        if not classification:
            cells.append(f"{s['parameters'] / first['parameters']:.2f}")
        cells += [fmt.format(scale * s[key]) for key, _, fmt, scale in scores]
        lines.append("| " + " | ".join(cells) + " |")
    if cross_validation:
        cells = [f"mean +- std ({len(summaries)} folds)"] + [""] * (len(head) - 1)
        for key, _, fmt, scale in scores:
            values = [scale * s[key] for s in summaries.values()]
            cells.append(f"{fmt.format(statistics.mean(values))} +- {fmt.format(statistics.pstdev(values))}")
        lines.append("| " + " | ".join(cells) + " |")
    low, high = min(s["n"] for s in summaries.values()), max(s["n"] for s in summaries.values())
    count = low if low == high else f"{low} to {high}"
    return "\n".join(lines) + f"\n\n{count} test {'clips' if classification else 'mixtures'} per row.\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="output folders of 'sepaudio evaluate'")
    parser.add_argument("--cross-validation", action="store_true", help="the rows are folds: add their mean +- std")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args()
    text = table(args.folders, args.cross_validation)
    print(text)
    if args.out:
        write_text(args.out, text)


if __name__ == "__main__":
    main()
