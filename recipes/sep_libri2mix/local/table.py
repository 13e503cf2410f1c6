"""Stage 3 of the separation recipes: a Markdown table of parameters and scores from ``<exp>/eval_test``."""
import argparse
import json
from pathlib import Path

from sepaudio.fileio import write_text

COLUMNS = [("si_sdri", "SI-SDRi (dB)"), ("sdri", "SDRi (dB)"), ("pesq", "PESQ"), ("stoi", "STOI")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("exp_dirs", nargs="+", help="experiment folders holding eval_test/summary.json")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args()
    summaries = [json.loads((Path(d) / "eval_test" / "summary.json").read_text()) for d in args.exp_dirs]
    base = summaries[0]["parameters"]
    columns = [(k, name) for k, name in COLUMNS if all(k in s for s in summaries)]
    lines = ["| model | parameters | relative size | " + " | ".join(n for _, n in columns) + " |",
             "|---|---:|---:|" + "---:|" * len(columns)]
    for s in summaries:
        cells = [f"{s[k]:.2f}" for k, _ in columns]
        lines.append(f"| {s['model']} | {s['parameters']:,} | {s['parameters'] / base:.2f} | " + " | ".join(cells)
                     + " |")
    table = "\n".join(lines) + f"\n\n{summaries[0]['n']} test mixtures.\n"
    print(table)
    if args.out:
        write_text(args.out, table)


if __name__ == "__main__":
    main()
