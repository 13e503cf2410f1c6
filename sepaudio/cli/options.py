"""The vocabulary every ``sepaudio`` command shares: number types, the options that mean the same thing in every
command (``--model``, ``-o/--output``, ``--device``, ``--list``), and old spellings kept for one release.

The rules (tests/test_cli_dialect.py checks them on every command):

- ``--model`` names the model a command runs or describes; ``-o/--output`` every file or folder it writes;
  ``--device`` where a model runs; ``--list FILE`` reads many inputs from a text file (one item a line, relative
  paths from the list's folder, ``#`` comments).
- An option name has one meaning in every command.
- An old spelling keeps working for one release: it is hidden from ``--help`` and prints a one-line notice.
"""
from __future__ import annotations

import argparse
import math
import sys

MODEL_ACCEPTS = ("a model file, a model folder, a Hugging Face Hub id (owner/name) or a pretrained name such as "
                 "torchaudio:CONVTASNET_BASE_LIBRI2MIX")
PRECISION_HELP = ("fused fast inference of the TCN separator in this precision (bf16: bfloat16 GEMMs on CPUs with "
                  "AVX512 or AMX, refused on AVX2-only CPUs; autocast on a GPU; int8: the TCN's 1x1 convolutions in "
                  "8-bit integers, CPU only); default: the plain path")
PRECISION_CHOICES = ("fp32", "bf16", "int8")
#: sepaudio.nn.streaming.ENGINES, without importing torch to parse the command line
ENGINE_CHOICES = ("torch", "onnxruntime")
#: the release that drops the old spellings
REMOVED_IN = "the next release"


def _number(kind: type, minimum: float, inclusive: bool = True, maximum: float = math.inf, why: str = ""):
    """An argparse ``type``: a finite ``kind`` of at least ``minimum`` (above it when not ``inclusive``) and at most
    ``maximum`` (``why`` says what the bound protects)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}")
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive) or value > maximum:
            bound = "" if minimum == -math.inf else f" {'>=' if inclusive else '>'} {minimum}"
            bound += "" if maximum == math.inf else f" and at most {maximum:g}{why}"
            raise argparse.ArgumentTypeError(f"{text!r}: give {'an integer' if kind is int else 'a finite number'}"
                                             f"{bound}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


FINITE, POSITIVE, NON_NEGATIVE = _number(float, -math.inf), _number(float, 0, False), _number(float, 0)
COUNT, NON_NEGATIVE_INT = _number(int, 1), _number(int, 0)


def bounded(kind: type, minimum: float, maximum: float, why: str = "", inclusive: bool = True):
    """An argparse ``type``: a finite ``kind`` from ``minimum`` (exclusive unless ``inclusive``) to ``maximum``, for
    numbers that size an allocation (``why``: what the bound protects, for the message)."""
    return _number(kind, minimum, inclusive, maximum, why)


def deprecated(prog: str, old: str, new: str) -> None:
    """The one-line notice an old spelling prints on stderr (stdout stays the command's output)."""
    print(f"{prog}: warning: {old} is deprecated and goes in {REMOVED_IN}; use {new}", file=sys.stderr)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose options may be required together with their old spellings: ``needed`` holds
    ``(dests, name)`` pairs, refused after parsing when every dest is empty (as argparse refuses a missing
    required argument: usage, one message, exit status 2); the usage shows the actions of :meth:`require` as
    required."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.needed: list[tuple[tuple[str, ...], str]] = []
        self._required: list[argparse.Action] = []

    def require(self, action: argparse.Action) -> None:
        """Refuse a command line that gives neither ``action`` nor an old spelling of it."""
        self.needed.append(((action.dest,), "/".join(action.option_strings) or action.metavar or action.dest))
        self._required.append(action)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        missing = [name for dests, name in self.needed if all(getattr(namespace, d, None) in (None, []) for d in dests)]
        if missing:
            self.error(f"the following arguments are required: {', '.join(missing)}")
        return namespace, extras

    def format_usage(self) -> str:
        return self._showing_required(super().format_usage)

    def format_help(self) -> str:
        return self._showing_required(super().format_help)

    def _showing_required(self, format_text) -> str:
        for action in self._required:
            action.required = True
        try:
            return format_text()
        finally:
            for action in self._required:
                action.required = False


class Deprecated(argparse.Action):
    """An old spelling of an option (or an old positional): stores into the new option's dest after a notice.
    Hidden from ``--help``; a positional's value is stored only when given."""

    def __init__(self, option_strings, dest, new: str, old: str | None = None, target: str | None = None, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.new, self.old, self.target = new, old, target or dest

    def __call__(self, parser, namespace, values, option_string=None):
        deprecated(parser.prog, option_string or self.old, self.new)
        setattr(namespace, self.target, self.const if self.nargs == 0 else values)


def add_option(p, *flags: str, old: tuple[str, ...] = (), required: bool = False, **kwargs) -> argparse.Action:
    """``p.add_argument(*flags, **kwargs)`` with ``old`` spellings kept for one release; ``required`` counts
    either spelling (``p`` must then be a :class:`Parser`)."""
    action = p.add_argument(*flags, **kwargs)
    for spelling in old:
        p.add_argument(spelling, dest=action.dest, action=Deprecated, new="/".join(flags), nargs=action.nargs,
                       const=action.const, type=action.type, choices=action.choices, default=argparse.SUPPRESS,
                       help=argparse.SUPPRESS)
    if required:
        p.require(action)
    return action


def add_old_positional(p, dest: str, metavar: str, new: str) -> None:
    """An optional positional ``metavar`` kept for one release, stored into ``dest`` (hidden from ``--help``)."""
    p.add_argument(f"old_{dest}", metavar=metavar, nargs="?", action=Deprecated, target=dest, new=new,
                   old=f"the positional {metavar}", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_model(p, what: str, default: str | None = None, positional: bool = False) -> None:
    """``--model``: ``what`` model, given as any form :func:`sepaudio.load_model` takes; ``positional``: the old
    positional form too (one release)."""
    add_option(p, "--model", required=default is None, metavar="MODEL",
               help=f"{what}: {MODEL_ACCEPTS}" + (f" (default: {default})" if default else ""))
    if positional:
        add_old_positional(p, "model", "MODEL", "--model MODEL")


def add_output(p, what: str, old: tuple[str, ...] = (), required: bool = True, metavar: str = "PATH") -> None:
    """``-o/--output``: where the command writes (``old`` spellings kept one release)."""
    add_option(p, "-o", "--output", old=old, required=required, metavar=metavar, help=what)


def add_device(p, default: str | None = "cpu", default_help: str = "cpu") -> None:
    """``--device``: where the model runs."""
    p.add_argument("--device", default=default, help=f"where the model runs: cpu, cuda or cuda:N ({default_help})")


def add_inputs(p, metavar: str, what: str) -> None:
    """Positional inputs and ``--list FILE`` of audio paths; together they must name at least one input."""
    p.add_argument("inputs", nargs="*", metavar=metavar, help=f"{what} (or --list)")
    add_list(p, "one audio path per line")
    p.needed.append((("inputs", "list"), f"{metavar} or --list"))


def add_list(p, lines: str, old: tuple[str, ...] = (), required: bool = False) -> argparse.Action:
    """``--list FILE``: a text file of ``lines`` (relative paths start at the list's folder; ``#`` comments)."""
    return add_option(p, "--list", old=old, required=required, metavar="FILE",
                      help=f"text file of {lines} (relative paths start at the list's folder; # comments)")


def input_paths(args) -> list:
    """The positional inputs, then the paths of ``--list`` (checked: each line one existing file)."""
    if not args.list:
        return list(args.inputs)
    from ..fileio import read_list

    return [*args.inputs, *(paths[0] for _, paths, _ in read_list(args.list, 1, usage="path"))]


def add_processing_options(p) -> None:
    """Chunking, device and precision of the TCN models' file processing, shared by ``extract`` and ``separate``."""
    p.add_argument("--chunk-seconds", type=POSITIVE, default=8.0, help="chunk length; memory grows with it (8)")
    p.add_argument("--overlap-seconds", type=NON_NEGATIVE, default=1.0,
                   help="cross-faded overlap of chunks, at most half a chunk (1)")
    add_device(p)
    p.add_argument("--precision", choices=PRECISION_CHOICES, help=PRECISION_HELP)


def add_stream_options(p, usage: str) -> None:
    """``--stream`` and its options, shared by ``extract`` and ``separate``."""
    g = p.add_argument_group("streaming (causal models)")
    g.add_argument("--stream", action="store_true",
                   help=f"process the input hop by hop with a causal model, writing as it goes: {usage}; prints the "
                        f"algorithmic latency (encoder window + hop) to stderr; --precision applies to the streaming "
                        f"step (default fp32: the fused step on CPU, equal to the offline model)")
    g.add_argument("--hop-ms", type=POSITIVE, default=16.0, help="milliseconds of input per step (16)")
    g.add_argument("--engine", choices=ENGINE_CHOICES, default="torch",
                   help="what runs the fused fp32 step on the CPU: torch, or onnxruntime (one ONNX graph, built in "
                        "1-4 s at the start, then about 2x faster per step on small models; needs sepaudio[export])")
    g.add_argument("--rate", type=COUNT,
                   help="sample rate of raw PCM on stdin, checked against the model's (default: the model's)")
    add_option(g, "--pcm-format", old=("--format",), choices=["s16le", "f32le"], default="s16le",
               help="raw PCM on stdin / stdout: 16-bit integer or 32-bit float, little-endian, mono (s16le)")
