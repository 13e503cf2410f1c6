"""Stage 0 of sep_mini and tse_mini: write the mini speech corpus (synthetic speakers, no download).

Speakers ``spk00 .. spk<n-1>``; with ``--lists``, also the speaker lists ``train_speakers.txt`` (the first
``n - heldout`` speakers) and ``heldout_speakers.txt`` (the last ``heldout``) that the configs' ``speakers`` name, and
the wav lists of the i-vector stages, ``ivector_train.txt`` and ``ivector_heldout.txt`` (``path speaker`` lines).
"""
import argparse
from pathlib import Path

from sepaudio.data import make_mini_speech_corpus
from sepaudio.fileio import write_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default="data/mini", help="corpus folder (data/mini)")
    parser.add_argument("--speakers", type=int, default=16, help="speakers in the corpus (16)")
    parser.add_argument("--utterances", type=int, default=20, help="utterances per speaker (20)")
    parser.add_argument("--seconds", type=float, default=2.0, help="mean utterance length (2.0)")
    parser.add_argument("--lists", help="folder for the i-vector wav lists (none)")
    parser.add_argument("--heldout", type=int, default=4, help="speakers held out of training, last in order (4)")
    args = parser.parse_args()
    if args.lists and not 2 <= args.heldout <= args.speakers - 2:
        parser.error(f"--heldout {args.heldout}: hold out at least 2 of the {args.speakers} speakers and train on at "
                     f"least 2 (two-speaker mixtures on both sides)")
    files = make_mini_speech_corpus(args.root, n_speakers=args.speakers, utterances=args.utterances,
                                    seconds=args.seconds)
    print(f"{args.root}: {len(files)} speakers, {sum(map(len, files.values()))} utterances")
    if args.lists:
        names = sorted(files)
        splits = {"train": names[:len(names) - args.heldout], "heldout": names[len(names) - args.heldout:]}
        for split, speakers in splits.items():
            lines = [f"{path.resolve()} {speaker}" for speaker in speakers for path in files[speaker]]
            write_text(Path(args.lists) / f"ivector_{split}.txt", "\n".join(lines) + "\n")
            write_text(Path(args.lists) / f"{split}_speakers.txt", "\n".join(speakers) + "\n")
            print(f"{split}: {len(speakers)} speakers ({speakers[0]} .. {speakers[-1]}), {len(lines)} utterances")


if __name__ == "__main__":
    main()
