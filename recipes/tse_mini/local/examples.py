"""Stage 5 of tse_mini, the conditioning check: for every pair of the given (held-out) speakers, one mixture of the
two at 0 dB, extracted by ``sepaudio extract`` enrolled with each speaker in turn. Each extraction must give the
enrolled speaker back: its SI-SDR against that speaker must beat its SI-SDR against the other one.

Writes ``<out>/<A>+<B>/{mixture,source_A,source_B,enroll_A,enroll_B,extracted_A,extracted_B}.wav``,
``<out>/extract.lst`` (the batch ``sepaudio extract --list`` ran), ``<out>/confidence.csv`` (its confidence
report) and ``<out>/conditioning.json`` (every extraction's SI-SDR against both speakers, whether it returned the
enrolled one, and its confidence: below ``--min-confidence`` it is flagged as probably the wrong talker).
"""
import argparse
import csv
import itertools
import json
from pathlib import Path

import numpy as np
import torch

from sepaudio import audio, load_model
from sepaudio.cli import main as sepaudio
from sepaudio.data import scan_speakers
from sepaudio.data.speakers import read_speaker_list
from sepaudio.extract import confidence_threshold
from sepaudio.fileio import write_text
from sepaudio.metrics import si_sdr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="TseNet model file")
    parser.add_argument("--ivector-model", help="its i-vector extractor (i-vector models)")
    parser.add_argument("--root", required=True, help="the mini corpus")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--speakers", required=True, help="file naming the speakers to pair, one per line")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--min-confidence", type=float,
                        help="flag extractions below it (default: the model's calibrated threshold)")
    args = parser.parse_args()
    files = scan_speakers(args.root)
    names = read_speaker_list(args.speakers)
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    pairs, lines = [], []
    for pair in itertools.combinations(names, 2):
        folder = out / "+".join(pair)
        sources = []
        for tag, speaker in zip("AB", pair):
            mix_utt, enroll_utt = rng.choice(len(files[speaker]), 2, replace=False)
            sources.append(audio.load(files[speaker][mix_utt], 8000, mono=True)[0][0])
            audio.save(folder / f"enroll_{tag}.wav", audio.load(files[speaker][enroll_utt])[0], 8000)
        length = min(s.shape[0] for s in sources)
        sources = [s[:length] / s[:length].pow(2).mean().sqrt() * 0.05 for s in sources]  # 0 dB
        for tag, source in zip("AB", sources):
            audio.save(folder / f"source_{tag}.wav", source, 8000)
        audio.save(folder / "mixture.wav", sources[0] + sources[1], 8000)
        lines += [f"{folder.name}/mixture.wav {folder.name}/enroll_{tag}.wav {folder.name}/extracted_{tag}.wav"
                  for tag in "AB"]
        pairs.append((folder, pair, sources))
    batch = write_text(out / "extract.lst", "\n".join(lines) + "\n")
    threshold = confidence_threshold(load_model(args.model), args.min_confidence)
    command = ["extract", "--model", args.model, "--list", str(batch), "-o", str(out), "--min-confidence",
               str(threshold)]
    code = sepaudio(command + (["--ivector-model", args.ivector_model] if args.ivector_model else []))
    if code:
        raise SystemExit(code)
    with open(out / "confidence.csv", newline="") as f:
        confidence = {Path(row["output"]).resolve(): float(row["confidence"]) for row in csv.DictReader(f)}
    results = []
    for folder, pair, sources in pairs:
        for k, tag in enumerate("AB"):
            est = audio.load(folder / f"extracted_{tag}.wav")[0][0][:sources[0].shape[0]]
            vs = [round(float(si_sdr(est, s)), 2) for s in sources]
            results.append({"mixture": folder.name, "enrolled": pair[k], "other": pair[1 - k],
                            "si_sdr_vs_enrolled": vs[k], "si_sdr_vs_other": vs[1 - k], "correct": vs[k] > vs[1 - k],
                            "confidence": confidence[(folder / f"extracted_{tag}.wav").resolve()],
                            "flagged": confidence[(folder / f"extracted_{tag}.wav").resolve()] < threshold,
                            "min_confidence": threshold})
    write_text(out / "conditioning.json", json.dumps(results, indent=2) + "\n")
    wrong = [r for r in results if not r["correct"]]
    print(f"conditioning check: {len(results) - len(wrong)} of {len(results)} extractions returned the enrolled "
          f"speaker ({len(pairs)} pairs of {len(names)} speakers, each enrolled in turn)")
    flagged = [r for r in results if r["flagged"]]
    print(f"confidence below {threshold:.3g}: {len(flagged)} of {len(results)} flagged, "
          f"{sum(not r['correct'] for r in flagged)} of them wrong talkers; among the {len(results) - len(flagged)} "
          f"accepted, {sum(not r['correct'] for r in results if not r['flagged'])} wrong talkers")
    for r in wrong:
        print(f"  wrong talker: {r['mixture']} enrolled with {r['enrolled']}: SI-SDR {r['si_sdr_vs_enrolled']:.2f} dB "
              f"vs the enrolled speaker, {r['si_sdr_vs_other']:.2f} dB vs {r['other']}; confidence "
              f"{r['confidence']:.3g}" + (" (flagged)" if r["flagged"] else " (not flagged)"))


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
