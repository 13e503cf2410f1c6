"""Separate, then select: a blind two-output separator (conf_blind.yml) used as an extractor by returning the output
whose i-vector is nearer (cosine) the enrollment's. Scores it on an extraction config's split, beside the best of
the two outputs (the bound of any selection), and prints SI-SDRi and the speaker confusion rate.

    python recipes/tse_mini/local/select_by_ivector.py recipes/tse_mini/conf.yml exp/blind/model.pt [--split test]
    (run from the recipe's work folder, after stages 0-2; key=value overrides of the config as for sepaudio evaluate)
"""
import argparse

import numpy as np
import torch
from tqdm import tqdm

from sepaudio.data import create_dataset
from sepaudio.metrics import si_sdr
from sepaudio.models import ConvTasNet, load_model
from sepaudio.train import load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="the TseNet config whose split is scored (conf.yml)")
    parser.add_argument("model", help="the blind separator (exp/blind/model.pt)")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    config = load_config(args.config, args.overrides)["data"]
    data = create_dataset(config["name"], **config[args.split])  # with_ivectors: items carry the enrollment's
    separator = load_model(args.model, expected=ConvTasNet).eval()
    rows = []
    with torch.inference_mode():
        for index in tqdm(range(len(data)), desc="separating", unit="utt"):
            item = data[index]
            mixture, target = item["mixture"], item["target"]
            outputs = separator(mixture[None])[0]  # (2, time)
            embeddings = data.extractor.extract(list(outputs))
            cosine = embeddings @ item["ivector"] / (embeddings.norm(dim=1) * item["ivector"].norm())
            chosen = outputs[int(cosine.argmax())]
            base = si_sdr(mixture, target)
            rows.append((float(si_sdr(chosen, target) - base),
                         float(si_sdr(chosen, mixture - target) > si_sdr(chosen, target)),
                         float(si_sdr(outputs, target).max() - base)))
    gain, confused, best = np.array(rows).mean(0)
    print(f"{args.split}: {len(rows)} mixtures; selected by i-vector: SI-SDRi {gain:.2f} dB, speaker confusion "
          f"{100 * confused:.1f} %; best of the two outputs: SI-SDRi {best:.2f} dB")


if __name__ == "__main__":
    main()
