"""``sepaudio <command>``: parses arguments and calls the library; no logic of its own.

Each command is a pair: ``add_<name>(subparsers)`` declares its arguments and sets ``func`` to a function that
takes the parsed namespace. Register the pair in ``COMMANDS``.
"""
from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading

from .errors import SepaudioError, Terminated


def _number(kind: type, minimum: float, inclusive: bool = True):
    """An argparse ``type``: a finite ``kind`` of at least ``minimum`` (above it when not ``inclusive``)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}")
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            bound = "" if minimum == -math.inf else f" {'>=' if inclusive else '>'} {minimum}"
            raise argparse.ArgumentTypeError(f"{text!r}: give {'an integer' if kind is int else 'a finite number'}"
                                             f"{bound}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


FINITE, POSITIVE, NON_NEGATIVE = _number(float, -math.inf), _number(float, 0, False), _number(float, 0)
COUNT, NON_NEGATIVE_INT = _number(int, 1), _number(int, 0)
PRECISION_HELP = ("fused fast inference of the TCN separator in this precision (bf16: bfloat16 GEMMs on CPUs with "
                  "AVX512 or AMX, refused on AVX2-only CPUs; autocast on a GPU); default: the plain path")


def add_info(sub) -> None:
    p = sub.add_parser("info", help="describe a saved model: architecture arguments, parameters, sample rate")
    p.add_argument("model", help="model file (.pt from 'sepaudio train', or a training checkpoint)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run_info)


def run_info(args) -> None:
    from .modelfile import read_summary

    info = read_summary(args.model)  # without torch, from the summary a model file of this version stores
    if info is None:
        from .models import load_model

        model = load_model(args.model)
        info = {"model": model.registered_name, "parameters": model.num_parameters,
                "sample_rate": model.sample_rate, "arguments": model.model_args}
    if args.json:
        print(json.dumps(info, indent=2))
        return
    print(f"model:       {info['model']}")
    print(f"parameters:  {info['parameters']:,}")
    print(f"sample rate: {info['sample_rate']} Hz")
    print("arguments:")
    for key, value in info["arguments"].items():
        print(f"  {key}: {value}")


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config (resumes from exp_dir/checkpoints/last.ckpt)")
    p.add_argument("config", help="YAML config (see recipes/*/conf.yml)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="override config entries, e.g. optim.lr=5e-4")
    p.set_defaults(func=run_train)


def run_train(args) -> None:
    from .train import load_config, train

    exp_dir = train(load_config(args.config, args.overrides))
    if exp_dir is not None:  # the first process of a distributed run
        print(f"model: {exp_dir / 'model.pt'}")


def add_separate(sub) -> None:
    p = sub.add_parser("separate", help="split recordings into their sources with a blind separation model "
                                        "(one wav per source; long files in bounded memory)")
    p.add_argument("inputs", nargs="+", metavar="MIX",
                   help="audio files, folders of them, or @list.txt (one path per line)")
    p.add_argument("--model", required=True, help="separation model (.pt from 'sepaudio train')")
    p.add_argument("-o", "--out-dir", required=True, help="folder for <name>_s1.wav, <name>_s2.wav, ...")
    add_processing_options(p)
    add_stream_options(p, "one MIX (a file, or - for raw PCM on stdin); -o - writes the sources interleaved as "
                          "channels of raw PCM to stdout")
    p.set_defaults(func=run_separate)


def add_processing_options(p) -> None:
    """Chunking, device and precision of the TCN models' file processing, shared by ``extract`` and ``separate``."""
    p.add_argument("--chunk-seconds", type=POSITIVE, default=8.0, help="chunk length; memory grows with it (8)")
    p.add_argument("--overlap-seconds", type=NON_NEGATIVE, default=1.0,
                   help="cross-faded overlap of chunks, at most half a chunk (1)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (cpu)")
    p.add_argument("--precision", choices=["fp32", "bf16"], help=PRECISION_HELP)


def add_stream_options(p, usage: str) -> None:
    """``--stream`` and its options, shared by ``extract`` and ``separate``."""
    g = p.add_argument_group("streaming (causal models)")
    g.add_argument("--stream", action="store_true",
                   help=f"process the input hop by hop with a causal model, writing as it goes: {usage}; prints the "
                        f"algorithmic latency (encoder window + hop) to stderr")
    g.add_argument("--hop-ms", type=POSITIVE, default=16.0, help="milliseconds of input per step (16)")
    g.add_argument("--rate", type=COUNT,
                   help="sample rate of raw PCM on stdin, checked against the model's (default: the model's)")
    g.add_argument("--format", dest="pcm_format", choices=["s16le", "f32le"], default="s16le",
                   help="raw PCM on stdin / stdout: 16-bit integer or 32-bit float, little-endian, mono (s16le)")


def run_separate(args) -> None:
    from .separate import separate_files

    if args.stream:
        from .errors import ConfigError
        from .streaming import stream_separate

        if len(args.inputs) != 1:
            raise ConfigError(f"--stream takes one input (a file or -), not {len(args.inputs)}.")
        outputs = stream_separate(args.model, args.inputs[0], args.out_dir, args.hop_ms, args.pcm_format, args.rate,
                                  args.device)
        if outputs != ["-"]:
            print(" ".join(outputs))
        return
    results = separate_files(args.model, args.inputs, args.out_dir, args.chunk_seconds, args.overlap_seconds,
                             args.device, precision=args.precision)
    for outputs in results.values():
        print(" ".join(map(str, outputs)))


def add_extract(sub) -> None:
    p = sub.add_parser("extract", help="extract one speaker from a recording given an enrollment recording of them "
                                       "(long files in bounded memory)")
    p.add_argument("--model", required=True, help="speaker extraction model (.pt from 'sepaudio train')")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--mixture", help="the recording to extract from")
    which.add_argument("--list", help="text file of 'mixture enrollment [output]' lines (batch form); an output "
                                      "is relative to -o and must stay inside it")
    p.add_argument("--enroll", help="a recording of the target speaker alone (with --mixture)")
    p.add_argument("-o", "--out", required=True, help="output wav (with --mixture) or folder (with --list)")
    p.add_argument("--ivector-model", help="i-vector extractor the model was trained with (i-vector models; "
                                           "default: ivector.pt in the model's folder)")
    add_processing_options(p)
    add_stream_options(p, "--mixture is a file or - (raw PCM on stdin), -o a file or - (raw PCM on stdout); the "
                          "enrollment is read once")
    p.set_defaults(func=run_extract)


def run_extract(args) -> None:
    from .errors import ConfigError
    from .extract import extract_file, extract_list, load_extractor

    if args.stream:
        from .streaming import stream_extract

        if args.list or not args.enroll:
            raise ConfigError("--stream takes --mixture (a file or -) with --enroll ENROLL.wav, not --list.")
        outputs = stream_extract(args.model, args.mixture, args.enroll, args.out, args.ivector_model, args.hop_ms,
                                 args.pcm_format, args.rate, args.device)
        outputs = [] if outputs == ["-"] else outputs
    elif args.list:
        outputs = extract_list(args.model, args.list, args.out, args.ivector_model, args.chunk_seconds,
                               args.overlap_seconds, args.device, precision=args.precision)
    else:
        if not args.enroll:
            raise ConfigError("--mixture needs --enroll ENROLL.wav: a recording of the speaker to extract.")
        model, ivectors = load_extractor(args.model, args.ivector_model, args.device, args.precision)
        outputs = [extract_file(model, args.mixture, args.enroll, args.out, ivectors, args.chunk_seconds,
                                args.overlap_seconds)]
    if outputs:
        print("\n".join(map(str, outputs)))


def add_ivector(sub) -> None:
    p = sub.add_parser("ivector", help="train an i-vector extractor, or extract i-vectors (and their EER)")
    commands = p.add_subparsers(dest="ivector_command", required=True, metavar="ACTION")
    t = commands.add_parser("train", help="train UBM, total variability matrix and (with speakers) LDA")
    t.add_argument("--wavs", required=True, help="text file of 'path [speaker]' lines")
    t.add_argument("--out", required=True, help="extractor file to write")
    t.add_argument("--sample-rate", type=COUNT, default=8000, help="rate the audio is resampled to (8000)")
    t.add_argument("--components", type=COUNT, default=512, help="Gaussians of the UBM (512)")
    t.add_argument("--rank", type=COUNT, default=400, help="i-vector dimension (400)")
    t.add_argument("--lda-dim", type=NON_NEGATIVE_INT, default=0,
                   help="LDA output dimension, needs speakers; 0: none (0)")
    t.add_argument("--ubm-iterations", type=COUNT, default=4, help="EM iterations after each UBM split (4)")
    t.add_argument("--tv-iterations", type=COUNT, default=10, help="EM iterations of the T matrix (10)")
    t.add_argument("--max-utterances", type=COUNT, help="train on at most this many utterances, drawn at random")
    t.add_argument("--device", default=None, help="cpu or cuda (cuda when available)")
    t.set_defaults(func=run_ivector)
    e = commands.add_parser("extract", help="i-vectors of a wav list into DIR/ivectors.pt (+ EER with speakers)")
    e.add_argument("--model", required=True, help="extractor file from 'sepaudio ivector train'")
    e.add_argument("--wavs", required=True, help="text file of 'path [speaker]' lines")
    e.add_argument("--out", required=True, help="output folder")
    e.add_argument("--device", default=None, help="cpu or cuda (cuda when available)")
    e.set_defaults(func=run_ivector)


def run_ivector(args) -> None:
    from .inference import resolve_device
    from .speaker.lists import default_device, extract_from_list, train_from_list

    device = str(resolve_device(args.device or default_device()))
    if args.ivector_command == "train":
        extractor = train_from_list(args.wavs, args.out, args.sample_rate, args.max_utterances,
                                    n_components=args.components, rank=args.rank, lda_dim=args.lda_dim,
                                    ubm_iterations=args.ubm_iterations, tv_iterations=args.tv_iterations,
                                    device=device)
        print(f"i-vector extractor ({extractor.dim}-dim): {args.out}")
        return
    summary = extract_from_list(args.model, args.wavs, args.out, device=device)
    eer = f", EER {100 * summary['eer']:.2f} % over {summary['speakers']} speakers" if "eer" in summary else ""
    print(f"{summary['utterances']} i-vectors ({summary['dim']}-dim) in {args.out}{eer}")


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score a trained model on a config's test data (one device): separation and "
                                        "extraction (SI-SDRi, SDRi, PESQ, STOI) or classification (accuracy, "
                                        "per-class F1, confusion matrix); CSV per item, summary.json, PNGs",
                       description="Score a trained separation, extraction or classification model on the dataset "
                                   "data.name with the arguments data.<split> of its training config, on one device "
                                   "(the first GPU when there is one and trainer.accelerator allows it). Writes "
                                   "per_utterance.csv or per_clip.csv, summary.json, examples/*.png (and "
                                   "confusion.png for a classifier) into the report folder.")
    p.add_argument("config", help="the training config (YAML); data.name with the arguments data.<split> is the "
                                  "dataset")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="override config entries, e.g. exp_dir=exp/b")
    p.add_argument("--split", default="test", help="data section to evaluate on (test)")
    p.add_argument("--model", help="model file (default: <exp_dir>/model.pt)")
    p.add_argument("-o", "--out-dir", metavar="DIR", help="report folder (default: <exp_dir>/eval_<split>)")
    p.add_argument("--examples", type=NON_NEGATIVE_INT, default=3, metavar="N",
                   help="items drawn as spectrograms (3)")
    p.add_argument("--precision", choices=["fp32", "bf16"], help=PRECISION_HELP)
    p.add_argument("--metrics", type=_metrics, default="si_sdr,sdr,pesq,stoi", metavar="LIST",
                   help="separation / extraction scores to compute, comma-separated: si_sdr (with SI-SDRi), sdr "
                        "(with SDRi), pesq, stoi (all; si_sdr alone takes seconds)")
    p.set_defaults(func=run_evaluate)


def _metrics(text: str) -> tuple[str, ...]:
    """An argparse ``type`` for ``--metrics``: a known, comma-separated choice."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in ("si_sdr", "sdr", "pesq", "stoi")]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from si_sdr,sdr,pesq,stoi")
    return names


def run_evaluate(args) -> None:
    from .evaluate import evaluate_config
    from .config import load_config

    evaluate_config(load_config(args.config, args.overrides), args.split, args.model, args.out_dir, args.examples,
                    args.metrics, precision=args.precision)


def add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="generate, split or check a classification corpus for a recipe")
    corpora = p.add_subparsers(dest="corpus", required=True, metavar="CORPUS")
    c = corpora.add_parser("smn_mini", help="generate the mini speech / music / noise corpus (no download)")
    c.add_argument("root", help="output folder: ROOT/<split>/<class>/*.wav, ROOT/timeline.{wav,csv}")
    c.add_argument("--seconds", type=POSITIVE, default=4.0, help="length of every corpus file (4)")
    c.add_argument("--timeline-seconds", type=NON_NEGATIVE, default=300.0,
                   help="length of the segmentation test recording (300; 0: none)")
    c.add_argument("--seed", type=int, default=0, help="of the generator (0)")
    c = corpora.add_parser("musan", help="split MUSAN 65/10/25 per class and remove silence")
    c.add_argument("root", help="the unpacked musan/ folder (music/, speech/, noise/)")
    c.add_argument("out", help="folder for train.csv, valid.csv, test.csv")
    c.add_argument("--silence-db", type=FINITE, default=-50.0, help="frames below this RMS (dBFS) are silence (-50)")
    c.add_argument("--seed", type=int, default=0, help="of the split (0)")
    for name, title, layout in (("esc50", "ESC-50", "audio/, meta/esc50.csv"),
                                ("urbansound8k", "UrbanSound8K", "audio/foldN/, metadata/UrbanSound8K.csv")):
        c = corpora.add_parser(name, help=f"check an {title} copy and print its clips per fold")
        c.add_argument("root", help=f"the corpus folder ({layout})")
    p.set_defaults(func=run_prepare)


def run_prepare(args) -> None:
    from .data.musan import prepare_musan
    from .data.prepare import describe_folds, prepare_smn_mini

    if args.corpus == "smn_mini":
        print(f"mini corpus in {prepare_smn_mini(args.root, args.seconds, args.timeline_seconds, args.seed)}")
    elif args.corpus == "musan":
        for split, path in prepare_musan(args.root, args.out, args.silence_db, args.seed).items():
            print(f"{split}: {path}")
    else:
        print(describe_folds(args.corpus, args.root))


def add_classify(sub) -> None:
    p = sub.add_parser("classify", help="label audio files with a trained classifier: top-k labels and probabilities")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files (WAV, FLAC, OGG; resampled as needed)")
    p.add_argument("--model", required=True, help="classifier file (model.pt from 'sepaudio train')")
    p.add_argument("-k", "--top-k", type=COUNT, default=3, help="labels to show per file, at most the classes (3)")
    p.add_argument("--window", type=POSITIVE, default=10.0,
                   help="seconds per block; a file's probabilities are the mean over its blocks (10)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_classify)


def run_classify(args) -> None:
    from .classify import classify_files, format_classifications

    results = classify_files(args.model, args.files, args.top_k, args.window)
    print(json.dumps(results, indent=2) if args.json else format_classifications(results).rstrip("\n"))


def add_segment(sub) -> None:
    p = sub.add_parser("segment", help="speech / music / noise / silence timeline of each file (streams long files)")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files of any length")
    p.add_argument("--model", required=True, help="classifier file (model.pt from 'sepaudio train')")
    p.add_argument("-o", "--out-dir", required=True, help="folder for one timeline per file (<stem>.csv|rttm|txt)")
    p.add_argument("--format", choices=["csv", "rttm", "audacity"], default="csv",
                   help="csv (label,start,stop), rttm, or audacity labels (csv)")
    p.add_argument("--plot", action="store_true", help="also draw <stem>.png: the timeline over the waveform")
    p.add_argument("--window", type=POSITIVE, default=1.0,
                   help="seconds of audio per decision (1.0; the training clip)")
    p.add_argument("--hop", type=POSITIVE, default=0.1, help="seconds between decisions, at most the window (0.1)")
    p.add_argument("--smooth", type=NON_NEGATIVE, default=2.0,
                   help="median filter length in seconds; 0 turns it off (2.0)")
    p.add_argument("--silence-db", type=FINITE, default=-55.0,
                   help="frames quieter than this many dBFS are silence (-55)")
    p.add_argument("--no-silence", action="store_true", help="never label silence")
    p.add_argument("--block", type=POSITIVE, default=60.0, help="seconds read at a time (bounds memory) (60)")
    p.set_defaults(func=run_segment)


def run_segment(args) -> None:
    from .segment import segment_files

    written = segment_files(args.model, args.files, args.out_dir, args.format, args.plot, window=args.window,
                            hop=args.hop, smooth=args.smooth, block_seconds=args.block,
                            silence_db=None if args.no_silence else args.silence_db)
    print(f"{len(written)} timeline(s) in {args.out_dir}")


def add_export(sub) -> None:
    p = sub.add_parser("export", help="write a model as ONNX or TorchScript (dynamic batch and time axes) and check "
                                      "it against PyTorch at two input lengths")
    p.add_argument("model", help="model file, model folder or Hugging Face Hub repository id (owner/name)")
    p.add_argument("--format", choices=["onnx", "torchscript"], required=True,
                   help="onnx (for onnxruntime and other ONNX runtimes) or torchscript (torch.jit.load)")
    p.add_argument("-o", "--out", required=True, help="file to write")
    p.add_argument("--streaming", action="store_true",
                   help="export the streaming step of a causal model: (chunk, [embedding,] state...) -> "
                        "(output, state...)")
    p.set_defaults(func=run_export)


def run_export(args) -> None:
    from .export import export_checked

    path, diffs = export_checked(args.model, args.out, args.format, args.streaming)
    checked = ", ".join(f"{length} samples {diff:.1e}" for length, diff in diffs.items())
    print(f"{path} ({args.format}); max |difference| from PyTorch: {checked}")


COMMANDS = [add_info, add_prepare, add_train, add_evaluate, add_separate, add_extract, add_ivector, add_classify,
            add_segment, add_export]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="sepaudio", description="Separate, extract and classify audio with depthwise separable networks.")
    parser.add_argument("--version", action="version", version=f"sepaudio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def _terminate(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit status: 0 done, 2 a user error (one line naming the file or option), 130 / 143
    interrupted by SIGINT / SIGTERM (files being written are removed, finished ones kept; where the signal came
    during an import, CPython then ends the process by the signal itself)."""
    args = build_parser().parse_args(argv)
    if args.command != "info":  # info answers without torch
        from . import runtime

        runtime.configure()  # subnormals flushed, freed tensor memory kept for reuse (see sepaudio.runtime)
    # File names that are not valid UTF-8: their bytes on stdout (where scripts read the paths), escaped in messages.
    utf8 = (getattr(sys.stdout, "encoding", "") or "").lower().replace("-", "") == "utf8"
    for stream, errors in ((sys.stdout, "surrogateescape" if utf8 else "backslashreplace"),
                           (sys.stderr, "backslashreplace")):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=errors)
    # Lightning handles SIGTERM itself during training.
    catch = args.command != "train" and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if catch else None
    try:
        args.func(args)
    except (SepaudioError, OSError) as err:  # OSError: the system refused (permissions, a full disk, ...)
        print(f"sepaudio {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        terminated = isinstance(err, Terminated)
        print(f"\nsepaudio {args.command}: {'terminated' if terminated else 'interrupted'}; files being written were "
              f"removed, finished ones are kept.", file=sys.stderr)  # on a line of its own, after any progress bar
        return 143 if terminated else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
