"""Stage 0 of sep_libri2mix: check a LibriMix corpus and write ``data/{train,valid,test}.csv``.

The metadata CSVs of ``<corpus>/<wav>/metadata/`` are read (every listed file is checked) and written again with
absolute paths, so the training config does not depend on where the corpus lives. Works for Libri2Mix and
Libri3Mix (the source columns of the CSV decide).
"""
import argparse
import csv
import io
from pathlib import Path

from sepaudio.data import read_librimix_csv
from sepaudio.errors import DatasetError
from sepaudio.fileio import write_text


def write_rows(path: Path, rows: list[dict]) -> None:
    """LibriMix metadata columns with absolute paths."""
    n_src = len(rows[0]["sources"])
    columns = ["mixture_ID", "mixture_path"] + [f"source_{k + 1}_path" for k in range(n_src)] + ["length"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row["id"], row["mixture"].resolve()] + [p.resolve() for p in row["sources"]]
                        + [row["length"]])
    write_text(path, buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", required=True, help="the Libri2Mix (or Libri3Mix) folder")
    parser.add_argument("--wav", default="wav8k/min", help="rate / mode sub-folder (wav8k/min)")
    parser.add_argument("--mix", default="mix_clean", help="mixture kind: mix_clean, mix_both, mix_single")
    parser.add_argument("--train-set", default="train-360", help="train-360 or train-100 (train-360)")
    parser.add_argument("--out", default="data", help="folder for train.csv, valid.csv, test.csv (data)")
    args = parser.parse_args()
    metadata = Path(args.corpus) / args.wav / "metadata"
    if not metadata.is_dir():
        raise SystemExit(f"prepare_data: {metadata} not found; give --corpus the Libri2Mix folder "
                         f"(holding {args.wav}/metadata/).")
    for name, split in (("train", args.train_set), ("valid", "dev"), ("test", "test")):
        try:
            rows = read_librimix_csv(metadata / f"mixture_{split}_{args.mix}.csv", root=metadata.parent)
        except DatasetError as err:
            raise SystemExit(f"prepare_data: {err}") from err
        write_rows(Path(args.out) / f"{name}.csv", rows)
        print(f"{name}: {len(rows)} mixtures of {len(rows[0]['sources'])} sources ({split})")


if __name__ == "__main__":
    main()
