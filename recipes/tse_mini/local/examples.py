"""Stage 5 of tse_mini: example mixtures of two speakers, extracted with ``sepaudio extract`` enrolled by each
speaker in turn: the same mixture must give each enrolled speaker back (the conditioning check).

Writes ``<out>/<k>/{mixture,source_A,source_B,enroll_A,enroll_B,extracted_A,extracted_B}.wav`` and
``<out>/conditioning.json`` (SI-SDR of every extraction against both speakers).
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch

from sepaudio import audio
from sepaudio.cli import main as sepaudio
from sepaudio.data import scan_speakers
from sepaudio.fileio import write_text
from sepaudio.metrics import si_sdr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="TseNet model file")
    parser.add_argument("--ivector-model", required=True, help="its i-vector extractor")
    parser.add_argument("--root", required=True, help="the mini corpus")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--speakers", nargs="+", help="speakers to draw from (default all)")
    parser.add_argument("--n", type=int, default=3, help="example mixtures (3)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    files = scan_speakers(args.root)
    names = args.speakers or sorted(files)
    rng = np.random.default_rng(args.seed)
    results = []
    for k in range(args.n):
        folder = Path(args.out) / f"example{k + 1}"
        pair = rng.choice(names, 2, replace=False)
        sources, enrolls = [], []
        for speaker in pair:
            mix_utt, enroll_utt = rng.choice(len(files[speaker]), 2, replace=False)
            sources.append(audio.load(files[speaker][mix_utt], 8000, mono=True)[0][0])
            enrolls.append(files[speaker][enroll_utt])
        length = min(s.shape[0] for s in sources)
        sources = [s[:length] / s[:length].pow(2).mean().sqrt() * 0.05 for s in sources]  # 0 dB
        audio.save(folder / "mixture.wav", sources[0] + sources[1], 8000)
        row = {"example": folder.name, "speakers": [str(s) for s in pair]}
        for tag, source, enroll in zip("AB", sources, enrolls):
            audio.save(folder / f"source_{tag}.wav", source, 8000)
            audio.save(folder / f"enroll_{tag}.wav", audio.load(enroll)[0], 8000)
        for tag in "AB":
            out = folder / f"extracted_{tag}.wav"
            code = sepaudio(["extract", "--model", args.model, "--ivector-model", args.ivector_model, "--mixture",
                             str(folder / "mixture.wav"), "--enroll", str(folder / f"enroll_{tag}.wav"), "-o",
                             str(out)])
            if code:
                raise SystemExit(code)
            est = audio.load(out)[0][0][:length]
            row[f"enroll_{tag}"] = {f"si_sdr_vs_{t}": round(float(si_sdr(est, s)), 2) for t, s in zip("AB", sources)}
        row["mixture_si_sdr_vs_A"] = round(float(si_sdr(sources[0] + sources[1], sources[0])), 2)
        results.append(row)
    write_text(Path(args.out) / "conditioning.json", json.dumps(results, indent=2) + "\n")
    print("example   speakers      enrolled  SI-SDR vs A  SI-SDR vs B")
    for row in results:
        for tag in "AB":
            scores = row[f"enroll_{tag}"]
            print(f"{row['example']:<9} {'+'.join(row['speakers']):<13} {tag:<9} {scores['si_sdr_vs_A']:>11.2f}"
                  f"  {scores['si_sdr_vs_B']:>11.2f}")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
