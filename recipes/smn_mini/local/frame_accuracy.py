"""Stage 4 of smn_mini: frame accuracy of segmentation timelines against the reference timeline.

    frame_accuracy.py REFERENCE.csv TIMELINE.csv... [-o SCORES.json]

Timelines are ``label,start,stop`` CSVs (``sepaudio segment``'s output); each is named in the output by the folder
it lies in (``exp/segment/<model>/timeline.csv`` -> ``<model>``).
"""
import argparse
import json
from pathlib import Path

from sepaudio.errors import SepaudioError
from sepaudio.fileio import write_text
from sepaudio.metrics import frame_accuracy
from sepaudio.timeline import read_timeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", help="the reference timeline (CSV)")
    parser.add_argument("timelines", nargs="+", type=Path, help="timelines to score (CSV)")
    parser.add_argument("-o", "--out", help="also write the scores as JSON here")
    args = parser.parse_args()
    try:
        reference = read_timeline(args.reference)
        scores = {path.parent.name: frame_accuracy(reference, read_timeline(path)) for path in args.timelines}
    except SepaudioError as err:
        raise SystemExit(f"error: {err}") from err
    for name, accuracy in scores.items():
        print(f"{name}: frame accuracy {100 * accuracy:.2f} %")
    if args.out:
        write_text(args.out, json.dumps(scores, indent=2) + "\n")


if __name__ == "__main__":
    main()
