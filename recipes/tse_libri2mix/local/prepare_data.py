"""Stage 0 of tse_libri2mix: check a Libri2Mix copy and write the lists the later stages read.

Reads ``<libri2mix>/wav<rate>k/<mode>/metadata/mixture_<split>_<mix>.csv`` (every listed file is checked) and
writes into ``--out``:

- ``train.csv`` / ``valid.csv`` / ``test.csv``: the metadata CSVs of the three splits (training draws a new
  enrollment for each item every time);
- ``valid.lst`` / ``test.lst``: fixed extraction lists (``mixture target enrollment speaker``), every source of
  every mixture a target, enrolled by another utterance of its speaker (never the target utterance);
- ``ivector_train.txt``: ``path speaker`` lines of the training sources, for ``sepaudio ivector train``.
"""
import argparse
import shutil
from pathlib import Path

from sepaudio.data.extraction import LibriMixExtraction, librispeech_utterance, write_extraction_list
from sepaudio.data.librimix import read_librimix_csv
from sepaudio.errors import DatasetError
from sepaudio.fileio import write_text

SPLITS = {"train": "train-360", "valid": "dev", "test": "test"}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("libri2mix", help="the Libri2Mix folder (holding wav8k/, wav16k/)")
    parser.add_argument("--out", default="data", help="where the lists go (data)")
    parser.add_argument("--rate", default="8k", help="wav8k or wav16k: 8k | 16k (8k)")
    parser.add_argument("--mode", default="min", help="min | max (min)")
    parser.add_argument("--mix", default="mix_clean", help="mix_clean | mix_both | mix_single (mix_clean)")
    parser.add_argument("--train-split", default=SPLITS["train"], help="train-360 | train-100 (train-360)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fixed enrollment choice (0)")
    args = parser.parse_args(argv)
    base = (Path(args.libri2mix) / f"wav{args.rate}" / args.mode).resolve()
    if not (base / "metadata").is_dir():
        raise SystemExit(f"error: {base / 'metadata'} not found; give the Libri2Mix folder that holds "
                         f"wav{args.rate}/{args.mode}/metadata (see github.com/JorisCos/LibriMix).")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    splits = dict(SPLITS, train=args.train_split)
    try:
        for name, split in splits.items():
            csv_path = base / "metadata" / f"mixture_{split}_{args.mix}.csv"
            rows = read_librimix_csv(csv_path, base)
            shutil.copyfile(csv_path, out / f"{name}.csv")
            if name == "train":
                lines = {f"{path.resolve()} {librispeech_utterance(row['id'], k)[1]}"
                         for row in rows for k, path in enumerate(row["sources"])}
                write_text(out / "ivector_train.txt", "\n".join(sorted(lines)) + "\n")
            else:
                items = LibriMixExtraction(csv_path, base).fixed_items(args.seed)
                write_extraction_list(out / f"{name}.lst", items)
            print(f"{name}: {csv_path.name}, {len(rows)} mixtures")
    except DatasetError as err:
        raise SystemExit(f"error: {err}") from err


if __name__ == "__main__":
    main()
