"""Stage 0 of tse_wsj0-2mix-extr: check a WSJ0-2mix-extr copy and write the extraction lists.

The corpus (made by the simulation scripts of Xu et al., github.com/xuchenglin28/speaker_extraction) lies as
``<root>/wav8k/<mode>/{tr,cv,tt}/{mix,s1,aux}/<name>.wav`` where ``<name>`` is
``<utt1>_<snr1>_<utt2>_<snr2>_<aux utt>``: ``s1`` is the target (the speaker of ``utt1``), ``aux`` another utterance
of that speaker. WSJ0 speaker IDs are the first three characters of an utterance ID.

Writes into ``--out``: ``tr.lst``, ``cv.lst``, ``tt.lst`` (``mix/… s1/… aux/… speaker`` lines, relative to the
split folder), and ``ivector_train.txt`` (``path speaker`` of the training targets and enrollments, without repeats).
"""
import argparse
from pathlib import Path

from sepaudio.data.extraction import write_extraction_list
from sepaudio.fileio import write_text

SPLITS = ("tr", "cv", "tt")


def split_items(split_dir: Path) -> list[dict]:
    """Extraction items of one split folder; every mixture needs its ``s1`` and ``aux`` file."""
    mixtures = sorted((split_dir / "mix").glob("*.wav"))
    if not mixtures:
        raise SystemExit(f"error: {split_dir / 'mix'} holds no .wav files; give the wav8k/<mode> folder of "
                         f"WSJ0-2mix-extr.")
    items = []
    for mix in mixtures:
        target, enrollment = split_dir / "s1" / mix.name, split_dir / "aux" / mix.name
        for path in (target, enrollment):
            if not path.is_file():
                raise SystemExit(f"error: {path} not found (the partner of {mix}); the corpus copy is incomplete.")
        items.append({"mixture": mix, "target": target, "enrollment": enrollment, "speaker": mix.name[:3]})
    return items


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="the WSJ0-2mix-extr folder holding wav8k/")
    parser.add_argument("--out", default="data", help="where the lists go (data)")
    parser.add_argument("--mode", default="max", help="min | max (max, as SpEx and TseNet report)")
    args = parser.parse_args(argv)
    base = (Path(args.root) / "wav8k" / args.mode).resolve()
    out = Path(args.out)
    for split in SPLITS:
        items = split_items(base / split)
        write_extraction_list(out / f"{split}.lst", items, base / split)
        if split == "tr":
            lines = {f"{item[key].resolve()} {item['speaker']}" for item in items for key in ("target", "enrollment")}
            write_text(out / "ivector_train.txt", "\n".join(sorted(lines)) + "\n")
        print(f"{split}: {len(items)} mixtures, {len({i['speaker'] for i in items})} target speakers")


if __name__ == "__main__":
    main()
