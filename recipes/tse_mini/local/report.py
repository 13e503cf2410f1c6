"""Stage 6 of tse_mini: one table of the i-vector EER, TseNet's scores, the conditioning check and the run times."""
import argparse
import json
from pathlib import Path

from sepaudio.fileio import write_text

COLUMNS = [("si_sdri", "SI-SDRi (dB)"), ("sdri", "SDRi (dB)"), ("si_sdr", "SI-SDR (dB)"), ("pesq", "PESQ"),
           ("stoi", "STOI"), ("confusion", "speaker confusion (%)"), ("confidence", "mean confidence"),
           ("confidence_auc", "confidence AUC"), ("kept90_confusion", "confusion at 90 % kept (%)")]
PERCENT = ("confusion", "kept90_confusion")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exp", default="exp", help="the recipe's exp folder")
    parser.add_argument("--model-dir", default="exp/tsenet", help="the TseNet run (its exp_dir)")
    parser.add_argument("--out", help="also write the report to this file")
    args = parser.parse_args()
    exp, model_dir = Path(args.exp), Path(args.model_dir)
    splits = {"test": "held-out speakers (test)", "valid": "training speakers, new mixtures (valid)"}
    summaries = {split: json.loads(path.read_text()) for split in splits
                 if (path := model_dir / f"eval_{split}" / "summary.json").exists()}
    first = next(iter(summaries.values()))
    columns = [(k, name) for k, name in COLUMNS if k in first]
    lines = ["## TseNet on the mini corpus", "",
             f"{first['model']}, {first['parameters']:,} parameters.", "",
             "| mixtures | n | " + " | ".join(n for _, n in columns) + " |", "|---|---:|" + "---:|" * len(columns)]
    lines += [f"| {splits[split]} | {s['n']} | " + " | ".join(_cell(k, s.get(k)) for k, _ in columns) + " |"
              for split, s in summaries.items()]
    lines += ["", "Confidence of an extraction: sigmoid(8 (cos(estimate, enrollment) - cos(residual, enrollment))) of "
              "i-vectors, the residual being what the extraction left out, times s + (1 - s) (1 - cos(estimate, "
              "residual)) with s = sigmoid((2 - d) / 1.5), d the SI-SDR (dB) of the estimate against the mixture "
              "(high when the estimate is nearly the whole mixture: nothing separated); the AUC is how "
              "well it tells right talkers from wrong ones, and the last column the "
              "confusion rate among the 90 % of extractions with the highest confidence (the accept rate of a "
              "threshold at the 10th percentile).", ""]
    by_pitch = model_dir / "eval_test" / "confusion_by_pitch.md"
    if by_pitch.exists():
        lines += ["Held-out test mixtures by how close their two voices are:", "", by_pitch.read_text()]
    ivectors = json.loads((exp / "ivectors_heldout" / "summary.json").read_text())
    lines += [f"i-vector EER (cosine, {ivectors['utterances']} utterances of {ivectors['speakers']} held-out "
              f"speakers, {ivectors['dim']}-dim): {100 * ivectors['eer']:.2f} %", ""]
    examples = model_dir / "examples" / "conditioning.json"
    if examples.exists():
        rows = json.loads(examples.read_text())
        speakers = sorted({r["enrolled"] for r in rows})
        cell = {(r["enrolled"], r["other"]): r for r in rows}
        right = sum(r["correct"] for r in rows)
        lines += [f"Conditioning check: every pair of the {len(speakers)} held-out speakers mixed at 0 dB and "
                  f"extracted with each one's enrollment in turn; {right} of {len(rows)} extractions returned the "
                  f"enrolled speaker. SI-SDR (dB) of the extraction against the enrolled speaker (row) when mixed with "
                  f"the other (column); a cross marks a wrong talker (closer to the other speaker), a question mark "
                  f"an extraction flagged by its confidence (below {rows[0]['min_confidence']:g}; {sum(r.get('flagged', 0) for r in rows)} "
                  f"flagged, {sum(r.get('flagged', 0) and not r['correct'] for r in rows)} of them wrong):", "",
                  "| enrolled \\ other | " + " | ".join(speakers) + " |", "|---|" + "---:|" * len(speakers)]
        for a in speakers:
            lines.append(f"| {a} | " + " | ".join(
                "" if a == b else f"{cell[a, b]['si_sdr_vs_enrolled']:.1f}" + ("" if cell[a, b]["correct"] else " ✗")
                + (" ?" if cell[a, b].get("flagged") else "")
                for b in speakers) + " |")
        lines.append("")
    timings = exp / "timings.txt"
    if timings.exists():
        stages = [line.split() for line in timings.read_text().splitlines() if line.strip()]
        total = sum(int(t) for _, t in stages)
        lines += ["Run time (s): " + ", ".join(f"{name} {t}" for name, t in stages) + f"; total {total}", ""]
    report = "\n".join(lines)
    print(report)
    if args.out:
        write_text(args.out, report)


def _cell(key: str, value) -> str:
    """A table cell: percent for rates, two decimals else, n/a for a missing or undefined figure."""
    if value is None:
        return "n/a"
    return f"{100 * value:.1f}" if key in PERCENT else f"{value:.2f}"


if __name__ == "__main__":
    main()
