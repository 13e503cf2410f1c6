"""Stage 0 of sep_wsj0-2mix: check a WSJ0-2mix corpus and link it as ``data/wsj0-2mix``.

The corpus is the ``wav8k/min``-level folder of the generated corpus (``<wsj0-mix>/2speakers/wav8k/min``) with
``{tr,cv,tt}/{mix,s1,s2}/*.wav``; every mixture's source files are checked. WSJ0-3mix works the same way.
"""
import argparse
import os
from pathlib import Path

from sepaudio.data.wsj0mix import SPLITS, scan_wsj0mix
from sepaudio.errors import DatasetError


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("corpus", help="<wsj0-mix>/2speakers/wav8k/min")
    parser.add_argument("--link", default="data/wsj0-2mix", help="link to create (data/wsj0-2mix)")
    args = parser.parse_args(argv)
    corpus, link = Path(args.corpus).resolve(), Path(args.link)
    for split in SPLITS:
        try:
            rows = scan_wsj0mix(corpus, split)
        except DatasetError as err:
            raise SystemExit(f"prepare_data: {err}") from err
        print(f"{split}: {len(rows)} mixtures of {len(rows[0]['sources'])} sources")
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if link.resolve() != corpus:
            raise SystemExit(f"prepare_data: {link} already points to {link.resolve()}; remove it first.")
        return
    os.symlink(corpus, link, target_is_directory=True)
    print(f"{link} -> {corpus}")


if __name__ == "__main__":
    main()
