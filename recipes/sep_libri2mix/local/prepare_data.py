"""Stage 0 of sep_libri2mix: check a LibriMix copy and write ``<out>/{train,valid,test}.csv``.

The metadata CSVs of the chosen sample rate, mode, mixture kind and training set are read (every listed file is
checked) and written again with absolute paths, so the training config does not depend on where the corpus lives.
Works for Libri2Mix and Libri3Mix (the source columns of the CSV decide).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "common"))
from librimix import add_arguments, metadata, read_split, write_csv  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    for name, csv_path in metadata(args).items():
        rows = read_split(csv_path)
        write_csv(args.out / f"{name}.csv", rows)
        print(f"{name}: {len(rows)} mixtures of {len(rows[0]['sources'])} sources ({csv_path.name})")


if __name__ == "__main__":
    main()
