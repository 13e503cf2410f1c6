"""Stage 0 of tse_libri2mix: check a LibriMix copy and write the lists the later stages read.

Reads the metadata CSVs of the chosen sample rate, mode, mixture kind and training set (every listed file is
checked) and writes into ``--out``:

- ``train.csv`` / ``valid.csv`` / ``test.csv``: the metadata of the three splits with this copy's absolute paths
  (training draws a new enrollment for each item every time);
- ``valid.lst`` / ``test.lst``: fixed extraction lists (``mixture target enrollment speaker``), every source of
  every mixture a target, enrolled by another utterance of its speaker (never the target utterance);
- ``ivector_train.txt``: ``path speaker`` lines of the training sources, for ``sepaudio ivector train``.
"""
import argparse
import sys
from pathlib import Path

from sepaudio.data.extraction import LibriMixExtraction, librispeech_utterance, write_extraction_list
from sepaudio.fileio import write_text

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "common"))
from librimix import add_arguments, metadata, read_split, write_csv  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the fixed enrollment choice (0)")
    args = parser.parse_args(argv)
    for name, csv_path in metadata(args).items():
        rows = read_split(csv_path)
        write_csv(args.out / f"{name}.csv", rows)
        if name == "train":
            lines = {f"{path.resolve()} {librispeech_utterance(row['id'], k)[1]}"
                     for row in rows for k, path in enumerate(row["sources"])}
            write_text(args.out / "ivector_train.txt", "\n".join(sorted(lines)) + "\n")
        else:
            items = LibriMixExtraction(args.out / f"{name}.csv").fixed_items(args.seed)
            write_extraction_list(args.out / f"{name}.lst", items)
        print(f"{name}: {csv_path.name}, {len(rows)} mixtures")


if __name__ == "__main__":
    main()
