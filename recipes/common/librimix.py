"""The corpus choices of a LibriMix copy, shared by stage 0 of sep_libri2mix and tse_libri2mix.

LibriMix (github.com/JorisCos/LibriMix) lies as ``<Libri2Mix>/wav{8k,16k}/{min,max}/metadata/
mixture_<set>_<mixture>.csv`` (sets train-360, train-100, dev, test; mixtures mix_clean, mix_both, mix_single) with
the audio in ``<set>/{mix_clean,mix_both,mix_single,s1,s2,noise}/`` beside ``metadata/``. The CSVs name the paths of
the machine that generated them; :func:`read_split` finds the files in this copy.
"""
from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from sepaudio.data.librimix import read_librimix_csv
from sepaudio.errors import DatasetError
from sepaudio.fileio import write_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The corpus folder and its choices (run.sh passes its options of the same names), and ``--out``."""
    parser.add_argument("corpus", type=Path, help="the Libri2Mix (or Libri3Mix) folder, holding wav8k/ and wav16k/")
    parser.add_argument("--train-set", default="train-360", choices=["train-360", "train-100"],
                        help="LibriSpeech subset of the training mixtures (train-360)")
    parser.add_argument("--sample-rate", default="8k", choices=["8k", "16k"], help="wav8k/ or wav16k/ (8k)")
    parser.add_argument("--mode", default="min", choices=["min", "max"],
                        help="mixtures as long as the shorter source, or the longer (min)")
    parser.add_argument("--mixture", default="mix_clean", choices=["mix_clean", "mix_both", "mix_single"],
                        help="utterances only, utterances + noise, or one utterance + noise (mix_clean)")
    parser.add_argument("--out", type=Path, default=Path("data"), help="folder for the lists (data)")


def metadata(args: argparse.Namespace) -> dict[str, Path]:
    """The metadata CSV of each split (``train``, ``valid``, ``test``) of the chosen corpus.

    Raises:
        SystemExit: the chosen ``wav<rate>/<mode>/metadata`` folder is not there.
    """
    folder = args.corpus.resolve() / f"wav{args.sample_rate}" / args.mode / "metadata"
    if not folder.is_dir():
        raise SystemExit(f"error: {folder} not found; give the LibriMix folder that holds "
                         f"wav{args.sample_rate}/{args.mode}/metadata (see github.com/JorisCos/LibriMix).")
    sets = {"train": args.train_set, "valid": "dev", "test": "test"}
    return {name: folder / f"mixture_{split}_{args.mixture}.csv" for name, split in sets.items()}


def read_split(csv_path: Path) -> list[dict]:
    """Rows of one metadata CSV, every file found in this copy (see ``read_librimix_csv``).

    Raises:
        SystemExit: a missing CSV or file, named with its line.
    """
    try:
        return read_librimix_csv(csv_path, csv_path.parent.parent)
    except DatasetError as err:
        raise SystemExit(f"error: {err}") from err


def write_csv(path: Path, rows: list[dict]) -> None:
    """Write rows in the metadata CSV's columns with the absolute paths of this copy."""
    n_src = len(rows[0]["sources"])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["mixture_ID", "mixture_path"] + [f"source_{k + 1}_path" for k in range(n_src)] + ["length"])
    for row in rows:
        writer.writerow([row["id"], row["mixture"].resolve(), *(p.resolve() for p in row["sources"]), row["length"]])
    write_text(path, buffer.getvalue())
