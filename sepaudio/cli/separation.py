"""``sepaudio separate`` (blind separation) and ``sepaudio extract`` (target speaker extraction)."""
from __future__ import annotations

from .options import FINITE, add_inputs, add_list, add_model, add_output, add_processing_options, \
    add_stream_options, deprecated, input_paths

__all__ = ["add_separate", "run_separate", "add_extract", "run_extract"]


def add_separate(sub) -> None:
    p = sub.add_parser("separate", help="split recordings into their sources with a blind separation model "
                                        "(one wav per source; long files in bounded memory)")
    add_inputs(p, "MIX", "audio files, or folders of them")
    add_model(p, "the separation model")
    add_output(p, "folder for <name>_s1.wav, <name>_s2.wav, ...", old=("--out-dir",), metavar="DIR")
    add_processing_options(p)
    add_stream_options(p, "one MIX (a file, or - for raw PCM on stdin); -o - writes the sources interleaved as "
                          "channels of raw PCM to stdout")
    p.set_defaults(func=run_separate)


def run_separate(args) -> None:
    from ..separate import separate_files

    for item in args.inputs:
        if item.startswith("@"):
            deprecated("sepaudio separate", f"@LIST ({item})", f"--list {item[1:]}")
    inputs = input_paths(args)
    if args.stream:
        from ..errors import ConfigError
        from ..streaming import stream_separate

        if len(inputs) != 1:
            raise ConfigError(f"--stream takes one input (a file or -), not {len(inputs)}.")
        outputs = stream_separate(args.model, str(inputs[0]), args.output, args.hop_ms, args.pcm_format, args.rate,
                                  args.device, args.precision, args.engine)
        if outputs != ["-"]:
            print(" ".join(outputs))
        return
    results = separate_files(args.model, inputs, args.output, args.chunk_seconds, args.overlap_seconds,
                             args.device, precision=args.precision)
    for outputs in results.values():
        print(" ".join(map(str, outputs)))


def add_extract(sub) -> None:
    p = sub.add_parser("extract", help="extract one speaker from a recording given an enrollment recording of them "
                                       "(long files in bounded memory)")
    add_model(p, "the speaker extraction model (a blind separation model with --select)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--mixture", help="the recording to extract from")
    add_list(which, "'mixture enrollment[@START-END] [output]' lines (batch form; an output is relative to -o and "
                    "must stay inside it; confidences in -o/confidence.csv)")
    p.add_argument("--enroll", action="append", metavar="FILE[@START-END]",
                   help="a recording of the target speaker alone, or the range START-END (seconds) of any recording "
                        "where they talk alone, the mixture included (with --mixture); repeat it to average the "
                        "speaker vectors of several")
    add_output(p, "output wav (with --mixture; its confidence in <output stem>.confidence.json beside it) or folder "
                  "(with --list)", old=("--out",))
    p.add_argument("--ivector-model", metavar="FILE",
                   help="i-vector extractor the model was trained with (i-vector models and --select ivector; "
                        "default: the one in the model's folder)")
    p.add_argument("--select", choices=["ivector"],  # sepaudio.speaker.select.SELECTIONS (not imported: torch)
                   help="separate, then select: --model is a blind separator, and the extraction is its output "
                        "whose i-vector is nearest (cosine) the enrollment's")
    p.add_argument("--min-confidence", type=FINITE, metavar="C",
                   help="warn of an extraction whose confidence is below C (default: the model's threshold, fitted "
                        "by sepaudio evaluate --calibrate to accept 90 %% of its validation extractions; 0.15 for a "
                        "model never calibrated). The confidence, in (0, 1): how surely the enrollment sides with the "
                        "estimate rather than with what it left out (speaker vectors), times whether it separated "
                        "anything (an extractor that cannot tell the voices apart returns nearly the mixture)")
    add_processing_options(p)
    add_stream_options(p, "--mixture is a file or - (raw PCM on stdin), -o a file or - (raw PCM on stdout); the "
                          "enrollment is read once")
    p.set_defaults(func=run_extract)


def run_extract(args) -> None:
    from ..errors import ConfigError
    import sys
    from pathlib import Path

    from ..extract import confidence_threshold, confidence_warning, extract_file, extract_list, load_extractor, \
        report_row, write_report

    if args.stream:
        from ..streaming import stream_extract

        if args.list or not args.enroll or len(args.enroll) > 1 or args.select:
            raise ConfigError("--stream takes --mixture (a file or -) with one --enroll ENROLL.wav, not --list or "
                              "--select.")
        outputs = stream_extract(args.model, args.mixture, args.enroll[0], args.output, args.ivector_model,
                                 args.hop_ms, args.pcm_format, args.rate, args.device, args.precision,
                                 args.engine)
        outputs = [] if outputs == ["-"] else outputs
    elif args.list:
        if args.enroll:
            raise ConfigError("--list names each line's enrollment; --enroll goes with --mixture.")
        outputs = extract_list(args.model, args.list, args.output, args.ivector_model, args.chunk_seconds,
                               args.overlap_seconds, args.device, precision=args.precision, select=args.select,
                               min_confidence=args.min_confidence)
    else:
        if not args.enroll:
            raise ConfigError("--mixture needs --enroll ENROLL.wav (or ENROLL.wav@START-END): a recording of the "
                              "speaker to extract.")
        model, ivectors = load_extractor(args.model, args.ivector_model, args.device, args.precision, args.select)
        threshold = confidence_threshold(model, args.min_confidence)
        scores: dict = {}
        outputs = [extract_file(model, args.mixture, args.enroll, args.output, ivectors, args.chunk_seconds,
                                args.overlap_seconds, scores=scores)]
        report = Path(args.output).with_name(Path(args.output).stem + ".confidence.json")
        write_report(report, [report_row(args.mixture, args.enroll, outputs[0], scores["confidence"], threshold)])
        if warning := confidence_warning(outputs[0], scores["confidence"], threshold):
            print(warning, file=sys.stderr)
    if outputs:
        print("\n".join(map(str, outputs)))
