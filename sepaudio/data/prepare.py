"""Preparation commands of the classification recipes: ``python -m sepaudio.classify prepare <corpus> ...``.

- ``smn_mini ROOT``: generate the mini speech / music / noise corpus and a test timeline (``ROOT/timeline.wav``
  with its reference ``ROOT/timeline.csv``).
- ``musan ROOT OUT``: split MUSAN 65 / 10 / 25 per class, remove silence, write ``OUT/{train,valid,test}.csv``.
- ``esc50 ROOT`` / ``urbansound8k ROOT``: check a copy's layout (every listed file present), print clips per fold.
"""
from __future__ import annotations

from pathlib import Path

from .classification import write_manifest
from .esc50 import esc50_fold_sizes, esc50_labels
from .musan import prepare_musan
from .smn_mini import make_smn_mini_corpus, make_smn_timeline
from .urbansound8k import us8k_fold_sizes, us8k_labels


def _smn_mini(args) -> None:
    root = make_smn_mini_corpus(args.root, seconds=args.seconds, seed=args.seed)
    if args.timeline_seconds > 0 and not (root / "timeline.csv").exists():
        regions = make_smn_timeline(root / "timeline.wav", args.timeline_seconds, seed=args.seed + 1000)
        write_manifest(root / "timeline.csv", regions)
    print(f"mini corpus in {root}")


def _musan(args) -> None:
    for split, path in prepare_musan(args.root, args.out, args.silence_db, args.seed).items():
        print(f"{split}: {path}")


def _esc50(args) -> None:
    sizes = esc50_fold_sizes(args.root)
    print(f"ESC-50: {sum(sizes.values())} clips, {len(esc50_labels(args.root))} classes; clips per fold: {sizes}")


def _urbansound8k(args) -> None:
    sizes = us8k_fold_sizes(args.root)
    print(f"UrbanSound8K: {sum(sizes.values())} clips, {len(us8k_labels(args.root))} classes; clips per fold: "
          f"{sizes}")


def add_prepare_commands(sub) -> None:
    """Declare one sub-command per corpus on an ``argparse`` sub-parsers object (each sets ``func``)."""
    p = sub.add_parser("smn_mini", help="generate the mini speech / music / noise corpus (no download)")
    p.add_argument("root", type=Path, help="output folder: ROOT/<split>/<class>/*.wav, ROOT/timeline.{wav,csv}")
    p.add_argument("--seconds", type=float, default=4.0, help="length of every corpus file (4)")
    p.add_argument("--timeline-seconds", type=float, default=300.0,
                   help="length of the segmentation test recording (300; 0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_smn_mini)
    p = sub.add_parser("musan", help="split MUSAN 65/10/25 per class and remove silence")
    p.add_argument("root", help="the unpacked musan/ folder (music/, speech/, noise/)")
    p.add_argument("out", help="folder for train.csv, valid.csv, test.csv")
    p.add_argument("--silence-db", type=float, default=-50.0, help="frames below this RMS (dBFS) are silence")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_musan)
    for name, func, layout in (("esc50", _esc50, "audio/, meta/esc50.csv"),
                               ("urbansound8k", _urbansound8k, "audio/foldN/, metadata/UrbanSound8K.csv")):
        p = sub.add_parser(name, help=f"check a {name} copy and print clips per fold")
        p.add_argument("root", help=f"the corpus folder ({layout})")
        p.set_defaults(func=func)
