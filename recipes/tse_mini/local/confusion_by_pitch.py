"""Where tse_mini's extraction picks the wrong talker: the held-out test mixtures grouped by how close the two
voices are (same or other "sex", distance of their median pitch), with the speaker confusion rate and SI-SDRi of
each group. Reads the evaluation's per_utterance.csv and redraws the test set from the config (it is seeded).

    python recipes/tse_mini/local/confusion_by_pitch.py recipes/tse_mini/conf.yml exp/tsenet/eval_test
    (run from the recipe's work folder; key=value overrides as for sepaudio evaluate; stage 6 of run.sh runs it)
"""
import argparse
import csv
import json
from pathlib import Path

import numpy as np

from sepaudio.data import create_dataset
from sepaudio.data.generated import STAMP
from sepaudio.data.mini_speech import speaker_traits
from sepaudio.fileio import write_text
from sepaudio.train import load_config

#: bounds of |log(f0_a / f0_b)|: 0.1 is a pitch difference of about 10 %
BINS = (0.0, 0.05, 0.1, 0.2, 0.4, np.inf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="the TseNet training config")
    parser.add_argument("report", help="the evaluation folder holding per_utterance.csv")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args()
    config = load_config(args.config, args.overrides)
    spec = {k: v for k, v in config["data"][args.split].items() if k not in ("dataset", "extractor")}
    name = config["data"][args.split].get("dataset", config["data"]["name"])  # inside with_ivectors, or the data's own
    data = create_dataset(name, **spec)
    n_speakers = json.loads((Path(spec["root"]) / STAMP).read_text())["n_speakers"]  # the voices depend on it
    rows = []
    for row in csv.DictReader(open(Path(args.report) / "per_utterance.csv")):
        item = data[int(row["id"])]
        a, b = (speaker_traits(int(data.speaker_names[k][3:]), n_speakers) for k in item["speakers"])
        rows.append((abs(np.log(a["f0"] / b["f0"])), a["female"] == b["female"], float(row["confusion"]),
                     float(row["si_sdri"])))
    rows = np.array(rows, dtype=float)
    lines = ["| voices of the mixture | mixtures | speaker confusion (%) | SI-SDRi (dB) |", "|---|---:|---:|---:|"]
    groups = [(f"pitch {100 * (np.exp(lo) - 1):.0f}-{100 * (np.exp(hi) - 1):.0f} % apart" if np.isfinite(hi)
               else f"pitch over {100 * (np.exp(lo) - 1):.0f} % apart", (rows[:, 0] >= lo) & (rows[:, 0] < hi))
              for lo, hi in zip(BINS[:-1], BINS[1:])]
    groups += [("same sex", rows[:, 1] == 1), ("other sex", rows[:, 1] == 0), ("all", rows[:, 0] >= 0)]
    for name, mask in groups:
        if mask.any():
            share, gain = 100 * rows[mask, 2].mean(), rows[mask, 3].mean()
            lines.append(f"| {name} | {int(mask.sum())} | {share:.0f} | {gain:.2f} |")
    print("\n".join(lines))
    if args.out:
        write_text(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
