"""Stage 0 of sep_mini: write the mini speech corpus (16 synthetic speakers; conf.yml trains on spk00-spk11 and
tests on the held-out spk12-spk15)."""
import argparse

from sepaudio.data import make_mini_speech_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default="data/mini", help="corpus folder (data/mini)")
    parser.add_argument("--speakers", type=int, default=16, help="speakers in the corpus (16)")
    parser.add_argument("--utterances", type=int, default=20, help="utterances per speaker (20)")
    parser.add_argument("--seconds", type=float, default=2.0, help="mean utterance length (2.0)")
    args = parser.parse_args()
    files = make_mini_speech_corpus(args.root, n_speakers=args.speakers, utterances=args.utterances,
                                    seconds=args.seconds)
    print(f"{args.root}: {len(files)} speakers, {sum(map(len, files.values()))} utterances")


if __name__ == "__main__":
    main()
