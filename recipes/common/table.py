"""Markdown table of ``sepaudio evaluate`` results, one row per output folder (read from its ``summary.json``).

    table.py EVAL_DIR... [--cross-validation] [--out FILE]

A row is named by the experiment the folder belongs to (``exp/mitas/eval_test`` -> ``mitas``). Separation and
extraction results give SI-SDRi, SDRi, PESQ and STOI (with each model's size relative to the first row's);
classification results give clip accuracy, macro F1 and milliseconds per clip. With ``--cross-validation`` the rows
are the folds of one cross-validation and a last row gives their mean +- standard deviation (over the folds).
"""
import argparse
import json
import statistics
from pathlib import Path

from sepaudio.fileio import write_text

SEPARATION = [("si_sdri", "SI-SDRi (dB)", "{:.2f}"), ("sdri", "SDRi (dB)", "{:.2f}"), ("pesq", "PESQ", "{:.2f}"),
              ("stoi", "STOI", "{:.2f}")]
CLASSIFICATION = [("accuracy", "clip accuracy (%)", "{:.2f}", 100), ("macro_f1", "macro F1", "{:.3f}", 1),
                  ("ms_per_clip", "ms per clip", "{:.1f}", 1)]


def row_name(folder: Path) -> str:
    return folder.parent.name if folder.name.startswith("eval") else folder.name


def table(folders: list[Path], cross_validation: bool = False) -> str:
    summaries = {row_name(f): json.loads((f / "summary.json").read_text()) for f in folders}
    first = next(iter(summaries.values()))
    if "accuracy" in first:
        columns = [(key, name, fmt, scale) for key, name, fmt, scale in CLASSIFICATION if key in first]
        head, cells = ["run", "parameters"], lambda s: [f"{s['parameters']:,}"]
    else:
        columns = [(key, name, fmt, 1) for key, name, fmt in SEPARATION if all(key in s for s in summaries.values())]
        head = ["model", "parameters", "relative size"]
        cells = lambda s: [f"{s['parameters']:,}", f"{s['parameters'] / first['parameters']:.2f}"]  # noqa: E731
    lines = ["| " + " | ".join(head + [name for _, name, _, _ in columns]) + " |",
             "|---|" + "---:|" * (len(head) - 1 + len(columns))]
    for name, s in summaries.items():
        lines.append("| " + " | ".join([name, *cells(s), *(fmt.format(scale * s[key]) for key, _, fmt, scale in columns)])
                     + " |")
    if cross_validation:
        values = {key: [scale * s[key] for s in summaries.values()] for key, _, _, scale in columns}
        spread = [f"{fmt.format(statistics.mean(values[key]))} +- {fmt.format(statistics.pstdev(values[key]))}"
                  for key, _, fmt, _ in columns]
        lines.append("| " + " | ".join([f"mean +- std ({len(summaries)} folds)", *[""] * (len(head) - 1), *spread])
                     + " |")
    low, high = min(s["n"] for s in summaries.values()), max(s["n"] for s in summaries.values())
    count = low if low == high else f"{low} to {high}"
    return "\n".join(lines) + f"\n\n{count} test {'clips' if 'accuracy' in first else 'mixtures'} per row.\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="output folders of 'sepaudio evaluate'")
    parser.add_argument("--cross-validation", action="store_true", help="rows are folds: add their mean +- std")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args()
    text = table(args.folders, args.cross_validation)
    print(text)
    if args.out:
        write_text(args.out, text)


if __name__ == "__main__":
    main()
