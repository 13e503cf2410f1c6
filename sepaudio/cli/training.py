"""``sepaudio train``, ``sepaudio evaluate`` and ``sepaudio ivector`` (the i-vector extractor's training and use)."""
from __future__ import annotations

import argparse

from .options import (COUNT, NON_NEGATIVE_INT, PRECISION_CHOICES, PRECISION_HELP, add_device, add_list, add_model,
                      add_option, add_output)

from .options import bounded

__all__ = ["add_train", "run_train", "add_evaluate", "run_evaluate", "add_ivector", "run_ivector"]

#: far above Kaldi's recipes (2048 Gaussians, 400-600 dimensions); the memory a pair needs is checked as well
COMPONENTS = bounded(int, 1, 65536, " (UBM Gaussians)")
RANK = bounded(int, 1, 4096, " (i-vector dimensions)")


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config (resumes from exp_dir/checkpoints/last.ckpt)",
                       description="Train the model a YAML config names. The devices are the config's "
                                   "(trainer.accelerator, trainer.devices: override them like any entry, e.g. "
                                   "trainer.accelerator=cpu); the model is written to <exp_dir>/model.pt.")
    p.add_argument("config", help="YAML config (see recipes/*/conf.yml)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="override config entries, e.g. optim.lr=5e-4")
    p.set_defaults(func=run_train)


def run_train(args) -> None:
    from ..train import load_config, train

    exp_dir = train(load_config(args.config, args.overrides))
    if exp_dir is not None:  # the first process of a distributed run
        print(f"model: {exp_dir / 'model.pt'}")


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score a trained model on a config's test data (one device): separation and "
                                        "extraction (SI-SDRi, SDRi, PESQ, STOI) or classification (accuracy, "
                                        "per-class F1, confusion matrix); CSV per item, summary.json, PNGs",
                       description="Score a trained separation, extraction or classification model on the dataset "
                                   "data.name with the arguments data.<split> of its training config, on one device "
                                   "(--device; by default the first GPU when there is one and trainer.accelerator "
                                   "allows it). Writes per_utterance.csv or per_clip.csv, summary.json, "
                                   "examples/*.png (and confusion.png for a classifier) into the report folder.")
    p.add_argument("config", help="the training config (YAML); data.name with the arguments data.<split> is the "
                                  "dataset")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="override config entries, e.g. exp_dir=exp/b")
    p.add_argument("--split", default="test", help="data section to evaluate on (test)")
    add_model(p, "the model to score", default="<exp_dir>/model.pt")
    add_output(p, "report folder (default: <exp_dir>/eval_<split>)", old=("--out-dir",), required=False,
               metavar="DIR")
    p.add_argument("--examples", type=NON_NEGATIVE_INT, default=3, metavar="N",
                   help="items drawn as spectrograms (3)")
    add_device(p, None, "the first GPU when there is one and trainer.accelerator allows it, else cpu")
    p.add_argument("--precision", choices=PRECISION_CHOICES, help=PRECISION_HELP)
    p.add_argument("--metrics", type=_metrics, default="si_sdr,sdr,pesq,stoi", metavar="LIST",
                   help="separation / extraction scores to compute, comma-separated: si_sdr (with SI-SDRi), sdr "
                        "(with SDRi), pesq, stoi (all; si_sdr alone takes seconds)")
    p.add_argument("--reference", metavar="TIMELINE",
                   help="score a segmentation instead: the first argument is a timeline (CSV / RTTM / Audacity "
                        "labels, e.g. sepaudio segment's output) and this its reference; frame accuracy and "
                        "per-class F1 (--out: also write them as JSON)")
    p.add_argument("--collar", type=float, default=0.0, metavar="SECONDS",
                   help="with --reference: leave frames this close to a reference boundary unscored (0)")
    p.add_argument("--calibrate", nargs="?", const="valid", metavar="SPLIT",
                   help="first fit the model's thresholds on data.SPLIT (valid) and write them into the model file: a "
                        "classifier's per-class decision thresholds for the best macro F1 (used by classify / segment "
                        "/ predict); an extractor's confidence threshold that accepts 90 %% of its extractions (below "
                        "it sepaudio extract warns)")
    p.add_argument("--select", choices=["ivector"],
                   help="separate, then select: --model is a blind separator scored as an extractor on an extraction "
                        "config (with_ivectors data), returning the output whose i-vector is nearest the enrollment's")
    p.set_defaults(func=run_evaluate)


def _metrics(text: str) -> tuple[str, ...]:
    """An argparse ``type`` for ``--metrics``: a known, comma-separated choice."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in ("si_sdr", "sdr", "pesq", "stoi")]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from si_sdr,sdr,pesq,stoi")
    return names


def run_evaluate(args) -> None:
    from ..config import load_config
    from ..evaluate import evaluate_config

    if args.reference is not None:
        return _score_timeline(args)

    evaluate_config(load_config(args.config, args.overrides), args.split, args.model, args.output, args.examples,
                    args.metrics, precision=args.precision, device=args.device, calibrate_on=args.calibrate,
                    select=args.select)


def add_ivector(sub) -> None:
    p = sub.add_parser("ivector", help="train an i-vector extractor, or extract i-vectors (and their EER)")
    commands = p.add_subparsers(dest="ivector_command", required=True, metavar="ACTION")
    t = commands.add_parser("train", help="train UBM, total variability matrix and (with speakers) LDA")
    add_list(t, "'path [speaker]' lines", old=("--wavs",), required=True)
    add_output(t, "extractor file to write", old=("--out",), metavar="FILE")
    t.add_argument("--sample-rate", type=COUNT, default=8000, help="rate the audio is resampled to (8000)")
    t.add_argument("--components", type=COMPONENTS, default=512, help="Gaussians of the UBM (512)")
    t.add_argument("--rank", type=RANK, default=400, help="i-vector dimension (400)")
    t.add_argument("--lda-dim", type=NON_NEGATIVE_INT, default=0,
                   help="LDA output dimension, needs speakers; 0: none (0)")
    t.add_argument("--ubm-iterations", type=COUNT, default=4, help="EM iterations after each UBM split (4)")
    t.add_argument("--tv-iterations", type=COUNT, default=10, help="EM iterations of the T matrix (10)")
    t.add_argument("--max-utterances", type=COUNT, help="train on at most this many utterances, drawn at random")
    add_device(t, None, "cuda when available")
    t.set_defaults(func=run_ivector)
    e = commands.add_parser("extract", help="i-vectors of a wav list into DIR/ivectors.pt (+ EER with speakers)")
    add_option(e, "--model", required=True, metavar="FILE",
               help="the i-vector extractor: a file from 'sepaudio ivector train'")
    add_list(e, "'path [speaker]' lines", old=("--wavs",), required=True)
    add_output(e, "output folder", old=("--out",), metavar="DIR")
    add_device(e, None, "cuda when available")
    e.set_defaults(func=run_ivector)


def run_ivector(args) -> None:
    from ..inference import resolve_device
    from ..speaker.lists import default_device, extract_from_list, train_from_list

    device = str(resolve_device(args.device or default_device()))
    if args.ivector_command == "train":
        _check_memory(args.components, args.rank, device)
        extractor = train_from_list(args.list, args.output, args.sample_rate, args.max_utterances,
                                    n_components=args.components, rank=args.rank, lda_dim=args.lda_dim,
                                    ubm_iterations=args.ubm_iterations, tv_iterations=args.tv_iterations,
                                    device=device)
        print(f"i-vector extractor ({extractor.dim}-dim): {args.output}")
        return
    summary = extract_from_list(args.model, args.list, args.output, device=device)
    eer = f", EER {100 * summary['eer']:.2f} % over {summary['speakers']} speakers" if "eer" in summary else ""
    print(f"{summary['utterances']} i-vectors ({summary['dim']}-dim) in {args.output}{eer}")


def _check_memory(components: int, rank: int, device: str) -> None:
    """Refuse ``--components`` / ``--rank`` whose total variability training would not fit in ``device``'s free
    memory, before any audio is read. The float32 buffers that grow with them: T and its accumulator (C D R each),
    the second-order accumulator and T'T (C R^2 each), a batch of 256 posterior covariances (three copies of
    256 R^2)."""
    import torch

    from ..errors import ConfigError
    from ..speaker.features import FeatureConfig

    need = 4 * (2 * components * FeatureConfig().dim * rank + 2 * components * rank ** 2 + 3 * 256 * rank ** 2)
    if device.startswith("cuda"):
        free = torch.cuda.mem_get_info(torch.device(device))[0]
    else:
        try:
            with open("/proc/meminfo") as f:
                free = next(int(line.split()[1]) << 10 for line in f if line.startswith("MemAvailable:"))
        except (OSError, StopIteration, ValueError):
            return  # no way to tell here: the bounds of the options still hold
    if need > free:
        raise ConfigError(f"--components {components} / --rank {rank}: training needs about {need / 2**30:.1f} GiB "
                          f"for the total variability matrix and its statistics, more than the {free / 2**30:.1f} GiB "
                          f"free on {device}; lower --components or --rank (Kaldi's recipes use 2048 / 400).")


def _score_timeline(args) -> None:
    """``sepaudio evaluate TIMELINE --reference REF [--collar S] [-o FILE.json]``."""
    import json

    from ..errors import ConfigError
    from ..fileio import write_text
    from ..segment import format_timeline_scores, read_any_timeline, score_timeline

    if args.overrides:
        raise ConfigError(f"--reference scores one timeline ({args.config}); remove {' '.join(args.overrides)}.")
    scores = score_timeline(read_any_timeline(args.reference), read_any_timeline(args.config), collar=args.collar)
    print(format_timeline_scores(scores))
    if args.output:
        write_text(args.output, json.dumps(scores, indent=2) + "\n")
