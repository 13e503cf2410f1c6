"""``sepaudio classify`` (clip labels), ``sepaudio segment`` (timelines) and ``sepaudio prepare`` (corpora)."""
from __future__ import annotations

import json

from .options import COUNT, FINITE, NON_NEGATIVE, POSITIVE, add_device, add_inputs, add_model, add_old_positional, \
    add_option, add_output, bounded, input_paths

__all__ = ["add_classify", "run_classify", "add_segment", "run_segment", "add_prepare", "run_prepare"]

#: the longest window a classifier sees at once and the longest median filter, in seconds: a window sizes the
#: classifier's input (and its activations), a filter its frames; real ones are seconds long
MAX_WINDOW = 600.0
WINDOW = bounded(float, 0, MAX_WINDOW, " seconds (a window sizes the classifier's input)", inclusive=False)
SMOOTH = bounded(float, 0, MAX_WINDOW, " seconds")


def add_classify(sub) -> None:
    p = sub.add_parser("classify", help="label audio files with a trained classifier: top-k labels and probabilities")
    add_inputs(p, "FILE", "audio files (WAV, FLAC, OGG; resampled as needed)")
    add_model(p, "the classifier")
    p.add_argument("-k", "--top-k", type=COUNT, default=3, help="labels to show per file, at most the classes (3)")
    add_option(p, "--clip-seconds", old=("--window",), type=WINDOW, default=10.0,
               help="a file is cut into clips of this many seconds; its probabilities are the mean over its clips (10)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_device(p)
    p.set_defaults(func=run_classify)


def run_classify(args) -> None:
    from ..classify import classify_files, format_classifications

    results = classify_files(args.model, input_paths(args), args.top_k, args.clip_seconds, device=args.device)
    print(json.dumps(results, indent=2) if args.json else format_classifications(results).rstrip("\n"))


def add_segment(sub) -> None:
    p = sub.add_parser("segment", help="speech / music / noise / silence timeline of each file (streams long files)")
    add_inputs(p, "FILE", "audio files of any length")
    add_model(p, "the classifier")
    add_output(p, "folder for one timeline per file (<stem>.csv|rttm|txt)", old=("--out-dir",), metavar="DIR")
    p.add_argument("--format", choices=["csv", "rttm", "audacity"], default="csv",
                   help="csv (label,start,stop), rttm, or audacity labels (csv)")
    p.add_argument("--plot", action="store_true", help="also draw <stem>.png: the timeline over the waveform")
    p.add_argument("--window", type=WINDOW, default=1.0,
                   help="seconds of audio the classifier sees per decision (1.0; the training clip)")
    p.add_argument("--hop", type=POSITIVE, default=0.1, help="seconds between decisions, at most the window (0.1)")
    p.add_argument("--smooth", type=SMOOTH, default=2.0,
                   help="median filter length in seconds; 0 turns it off (2.0)")
    p.add_argument("--silence-db", type=FINITE, default=-55.0,
                   help="frames quieter than this many dBFS are silence (-55)")
    p.add_argument("--no-silence", action="store_true", help="never label silence")
    p.add_argument("--block", type=POSITIVE, default=60.0, help="seconds read at a time (bounds memory) (60)")
    add_device(p)
    p.set_defaults(func=run_segment)


def run_segment(args) -> None:
    from ..segment import segment_files

    written = segment_files(args.model, input_paths(args), args.output, args.format, args.plot, window=args.window,
                            hop=args.hop, smooth=args.smooth, block_seconds=args.block,
                            silence_db=None if args.no_silence else args.silence_db, device=args.device)
    print(f"{len(written)} timeline(s) in {args.output}")


def add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="generate, split or check a classification corpus for a recipe")
    corpora = p.add_subparsers(dest="corpus", required=True, metavar="CORPUS")
    c = corpora.add_parser("smn_mini", help="generate the mini speech / music / noise corpus (no download)")
    add_output(c, "folder for the corpus: OUTPUT/<split>/<class>/*.wav, OUTPUT/timeline.{wav,csv}", metavar="DIR")
    add_old_positional(c, "output", "ROOT", "-o ROOT")
    c.add_argument("--seconds", type=POSITIVE, default=4.0, help="length of every corpus file (4)")
    c.add_argument("--timeline-seconds", type=NON_NEGATIVE, default=300.0,
                   help="length of the segmentation test recording (300; 0: none)")
    c.add_argument("--seed", type=int, default=0, help="of the generator (0)")
    c = corpora.add_parser("musan", help="split MUSAN 65/10/25 per class and remove silence")
    c.add_argument("root", help="the unpacked musan/ folder (music/, speech/, noise/)")
    add_output(c, "folder for train.csv, valid.csv, test.csv", metavar="DIR")
    add_old_positional(c, "output", "OUT", "-o OUT")
    c.add_argument("--silence-db", type=FINITE, default=-50.0, help="frames below this RMS (dBFS) are silence (-50)")
    c.add_argument("--seed", type=int, default=0, help="of the split (0)")
    for name, title, layout in (("esc50", "ESC-50", "audio/, meta/esc50.csv"),
                                ("urbansound8k", "UrbanSound8K", "audio/foldN/, metadata/UrbanSound8K.csv")):
        c = corpora.add_parser(name, help=f"check an {title} copy and print its clips per fold")
        c.add_argument("root", help=f"the corpus folder ({layout})")
    p.set_defaults(func=run_prepare)


def run_prepare(args) -> None:
    from ..data.musan import prepare_musan
    from ..data.prepare import describe_folds, prepare_smn_mini

    if args.corpus == "smn_mini":
        print(f"mini corpus in {prepare_smn_mini(args.output, args.seconds, args.timeline_seconds, args.seed)}")
    elif args.corpus == "musan":
        for split, path in prepare_musan(args.root, args.output, args.silence_db, args.seed).items():
            print(f"{split}: {path}")
    else:
        print(describe_folds(args.corpus, args.root))
