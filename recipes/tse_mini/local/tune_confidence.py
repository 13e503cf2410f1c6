"""How the constants of the extraction confidence (``sepaudio.speaker.confidence``) were chosen: on new mixtures of
the *training* voices, never the held-out test voices.

Each model extracts the enrolled talker from ``--mixtures`` mixtures drawn like ``data.valid`` (training voices, a
seed of their own, ``--segment`` seconds), once at data.valid's levels and once with the target ``--loud`` dB above
the other talker. Per mixture it records the enrollment's side ``cos(e, n) - cos(r, n)``, ``cos(e, r)``, the SI-SDR of
the estimate against the mixture ``d`` (``confidence_inputs``) and whether the extraction is confused (nearer the
other talker than the target). It prints, mean over the models, the ROC AUC (right talkers above wrong ones) at
data.valid's levels, and the share of right extractions of the louder target that fall below the 10th percentile of
the first set (a warning there is a false alarm), for each ingredient alone and for the confidence over a grid of
centres and scales of its separation factor. Run from the work folder, e.g. with the three 16-epoch TseNets of
``compare_starts.py``:

    python <recipe>/local/tune_confidence.py <recipe>/conf.yml exp/starts/seed{0,1,2}/scratch/model.pt
"""
from __future__ import annotations

import argparse
import statistics

import torch
from tqdm import tqdm

from sepaudio.config import load_config
from sepaudio.data import create_dataset
from sepaudio.metrics import si_sdr
from sepaudio.models.loading import load_model
from sepaudio.speaker.confidence import (SEPARATED_DB, SEPARATED_SCALE_DB, SHARPNESS, SpeakerVectors, confidence,
                                         confidence_inputs, cosine, roc_auc)

CENTRES_DB, SCALES_DB = (0.0, 2.0, 4.0), (1.0, 1.5, 2.0)


@torch.no_grad()
def features(model, dataset) -> dict[str, torch.Tensor]:
    """Per mixture: the speaker vectors ``e``, ``r``, ``n``, ``db`` (SI-SDR of the estimate against the mixture) and
    ``right`` (the extraction is nearer the target than the other talker)."""
    vectors, rows = SpeakerVectors(dataset.extractor), {"e": [], "r": [], "db": [], "n": [], "right": []}
    for i in tqdm(range(len(dataset)), desc="mixtures", leave=False):
        item = dataset[i]
        mixture, target = item["mixture"][None], item["target"][None]
        estimate = model(mixture, item["ivector"][None])[:, 0]
        for key, value in zip(rows, (*confidence_inputs(vectors, mixture, estimate), item["ivector"].float(),
                                     si_sdr(estimate, target)[0] >= si_sdr(estimate, mixture - target)[0])):
            rows[key].append(value)
    return {key: torch.stack(values) for key, values in rows.items()}


def auc(score: torch.Tensor, right: torch.Tensor) -> float:
    return roc_auc(score.tolist(), right.tolist())


def side(f: dict) -> torch.Tensor:
    return cosine(f["e"], f["n"]) - cosine(f["r"], f["n"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="the recipe's conf.yml (its data.valid is drawn from the training voices)")
    parser.add_argument("models", nargs="+", help="trained TseNet model files")
    parser.add_argument("--mixtures", type=int, default=400, help="mixtures per model (400)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the mixtures (7; data.valid's is 1)")
    parser.add_argument("--segment", type=float, default=2.0, help="seconds per mixture (2.0, as the test set)")
    parser.add_argument("--loud", type=float, default=10.0, help="dB the target is louder in the second set (10)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_config(args.config)["data"]
    models, sets = [load_model(path).eval() for path in args.models], {}
    for name, levels in (("valid", data["valid"].get("snr_range", [-5, 5])), ("loud", [args.loud - 2, args.loud + 2])):
        dataset = create_dataset(data["name"], **{**data["valid"], "length": args.mixtures, "seed": args.seed,
                                                  "segment": args.segment, "snr_range": levels})
        sets[name] = [features(model, dataset) for model in models]
    confused = [100 * (1 - f["right"].float().mean().item()) for f in sets["valid"]]
    print(f"{len(args.models)} models, {args.mixtures} mixtures of training voices each ({args.segment} s, seed "
          f"{args.seed}); confused: {', '.join(f'{c:.1f} %' for c in confused)}\n")
    print(f"| score | ROC AUC, mean (min to max over models) | right extractions, target {args.loud:g} +- 2 dB louder, "
          f"below the 10th percentile (%) |\n|---|---:|---:|")

    def row(name: str, score) -> None:
        values = [auc(score(f), f["right"]) for f in sets["valid"]]
        alarms = [100 * float((score(loud) < score(f).quantile(0.1))[loud["right"]].float().mean())
                  for f, loud in zip(sets["valid"], sets["loud"])]
        print(f"| {name} | {statistics.mean(values):.3f} ({min(values):.3f} to {max(values):.3f}) | "
              f"{statistics.mean(alarms):.0f} |")

    row("side = cos(e, n) - cos(r, n)", side)
    row("1 - cos(e, r)", lambda f: 1 - cosine(f["e"], f["r"]))
    row("-d (SI-SDR of the estimate against the mixture)", lambda f: -f["db"])
    row(f"sigmoid({SHARPNESS:g} side) * s (no (1 - s) term), s = sigmoid(({SEPARATED_DB:g} - d) / "
        f"{SEPARATED_SCALE_DB:g})",
        lambda f: torch.sigmoid(SHARPNESS * side(f)) * torch.sigmoid((SEPARATED_DB - f["db"]) / SEPARATED_SCALE_DB))
    for c in CENTRES_DB:
        for s in SCALES_DB:
            row(f"sigmoid({SHARPNESS:g} side) * (s + (1 - s) (1 - cos(e, r))), s = sigmoid(({c:g} - d) / {s:g})",
                lambda f, c=c, s=s: confidence(f["e"], f["r"], f["n"], f["db"], c, s))


if __name__ == "__main__":
    main()
