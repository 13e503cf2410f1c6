"""Stage 0 of tse_mini: write the mini speech corpus and the wav lists of the i-vector stages.

Speakers ``spk00 .. spk<n-h-1>`` train the i-vector extractor and TseNet; the last ``h`` are held out for the
i-vector EER and the evaluation mixtures.
"""
import argparse
from pathlib import Path

from sepaudio.data import make_mini_speech_corpus
from sepaudio.fileio import write_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default="data/mini", help="corpus folder (data/mini)")
    parser.add_argument("--lists", default="data/lists", help="folder of the wav lists (data/lists)")
    parser.add_argument("--speakers", type=int, default=16, help="speakers in the corpus (16)")
    parser.add_argument("--heldout", type=int, default=4, help="speakers held out of training (4)")
    parser.add_argument("--utterances", type=int, default=20, help="utterances per speaker (20)")
    parser.add_argument("--seconds", type=float, default=2.0, help="mean utterance length (2.0)")
    args = parser.parse_args()
    files = make_mini_speech_corpus(args.root, n_speakers=args.speakers, utterances=args.utterances,
                                    seconds=args.seconds)
    names = sorted(files)
    splits = {"train": names[:len(names) - args.heldout], "heldout": names[len(names) - args.heldout:]}
    for split, speakers in splits.items():
        lines = [f"{path.resolve()} {speaker}" for speaker in speakers for path in files[speaker]]
        write_text(Path(args.lists) / f"ivector_{split}.txt", "\n".join(lines) + "\n")
        print(f"{split}: {len(speakers)} speakers ({', '.join(speakers)}), {len(lines)} utterances")


if __name__ == "__main__":
    main()
