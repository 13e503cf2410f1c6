"""How the constants of the extraction confidence (``sepaudio.speaker.confidence``) were chosen: on new mixtures of
the *training* voices, never the held-out test voices.

Each model extracts the enrolled talker from ``--mixtures`` mixtures drawn like ``data.valid`` (training voices, a
seed of their own, ``--segment`` seconds). Per mixture it records the enrollment's side ``cos(e, n) - cos(r, n)``,
the voices' distance ``1 - cos(e, r)``, the SI-SDR of the estimate against the mixture ``d``, and whether the
extraction is confused (nearer the other talker than the target). It prints the ROC AUC (right talker above wrong
ones, mean over the models) of each ingredient alone and of ``sigmoid(SHARPNESS * side) * sigmoid((c - d) / s)`` over
a grid of centres ``c`` and scales ``s``. Run from the work folder, e.g. with the three 16-epoch TseNets of
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
from sepaudio.speaker.confidence import SHARPNESS, SpeakerVectors, cosine, roc_auc

CENTRES_DB, SCALES_DB = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0), (0.5, 1.0, 1.5, 2.0)


@torch.no_grad()
def features(model, dataset) -> dict[str, torch.Tensor]:
    """Per mixture: ``side``, ``apart``, ``db`` (SI-SDR of the estimate against the mixture) and ``right``."""
    vectors, rows = SpeakerVectors(dataset.extractor), []
    for i in tqdm(range(len(dataset)), desc="mixtures", leave=False):
        item = dataset[i]
        mixture, target = item["mixture"][None], item["target"][None]
        estimate = model(mixture, item["ivector"][None])[:, 0]
        e, r = vectors(torch.cat([estimate, mixture - estimate]))
        n = item["ivector"]
        right = si_sdr(estimate, target) >= si_sdr(estimate, mixture - target)
        rows.append([float(cosine(e, n) - cosine(r, n)), float(1 - cosine(e, r)), float(si_sdr(estimate, mixture)),
                     float(right)])
    side, apart, db, right = torch.tensor(rows).T
    return {"side": side, "apart": apart, "db": db, "right": right.bool()}


def auc(score: torch.Tensor, right: torch.Tensor) -> float:
    return roc_auc(score.tolist(), right.tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="the recipe's conf.yml (its data.valid is drawn from the training voices)")
    parser.add_argument("models", nargs="+", help="trained TseNet model files")
    parser.add_argument("--mixtures", type=int, default=400, help="mixtures per model (400)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the mixtures (7; data.valid's is 1)")
    parser.add_argument("--segment", type=float, default=2.0, help="seconds per mixture (2.0, as the test set)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_config(args.config)["data"]
    dataset = create_dataset(data["name"], **{**data["valid"], "length": args.mixtures, "seed": args.seed,
                                              "segment": args.segment})
    runs = [features(load_model(path).eval(), dataset) for path in args.models]
    confused = [100 * (1 - f["right"].float().mean().item()) for f in runs]
    print(f"{len(runs)} models, {args.mixtures} mixtures of training voices each ({args.segment} s, seed "
          f"{args.seed}); confused: {', '.join(f'{c:.1f} %' for c in confused)}\n")
    print("| score | ROC AUC, mean (min to max over models) |\n|---|---:|")

    def row(name: str, score) -> None:
        values = [auc(score(f), f["right"]) for f in runs]
        print(f"| {name} | {statistics.mean(values):.3f} ({min(values):.3f} to {max(values):.3f}) |")

    row("side = cos(e, n) - cos(r, n)", lambda f: f["side"])
    row("1 - cos(e, r)", lambda f: f["apart"])
    row("-d (SI-SDR of the estimate against the mixture)", lambda f: -f["db"])
    for c in CENTRES_DB:
        for s in SCALES_DB:
            row(f"sigmoid({SHARPNESS:g} side) * sigmoid(({c:g} - d) / {s:g})",
                lambda f, c=c, s=s: torch.sigmoid(SHARPNESS * f["side"]) * torch.sigmoid((c - f["db"]) / s))


if __name__ == "__main__":
    main()
