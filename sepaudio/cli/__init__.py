"""``sepaudio <command>``: parses arguments and calls the library; no logic of its own.

Each command is a pair in the module of its family: ``add_<name>(subparsers)`` declares its arguments (with the
shared options of :mod:`.options`) and sets ``func`` to a function that takes the parsed namespace. Register the
pair in ``COMMANDS``. ``--help`` of every command works without importing torch: the ``run_*`` functions import the
library when they run.
"""
from __future__ import annotations

import os
import signal
import sys
import threading

from ..errors import SepaudioError, Terminated
from .classification import add_classify, add_prepare, add_segment
from .models import add_export, add_info
from .options import Parser
from .separation import add_extract, add_separate
from .training import add_evaluate, add_ivector, add_train

__all__ = ["main", "build_parser", "COMMANDS", "EXIT_OK", "EXIT_USAGE", "EXIT_BROKEN_PIPE", "EXIT_INTERRUPTED",
           "EXIT_TERMINATED"]

COMMANDS = [add_info, add_prepare, add_train, add_evaluate, add_separate, add_extract, add_ivector, add_classify,
            add_segment, add_export]
#: exit statuses: done; a user error (argparse's usage errors too); the reader of stdout went away (128 + SIGPIPE,
#: what the shell reports for any tool a closed pipe ends); SIGINT; SIGTERM (128 + the signal)
EXIT_OK, EXIT_USAGE, EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 2, 141, 130, 143


def build_parser() -> Parser:
    from .. import __version__

    parser = Parser(prog="sepaudio",
                    description="Separate, extract and classify audio with depthwise separable networks.")
    parser.add_argument("--version", action="version", version=f"sepaudio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def _terminate(signum, frame):
    raise Terminated()


def _stdout_gone() -> int:
    """stdout's reader went away (``sepaudio info MODEL | head``): end quietly like any tool a closed pipe ends.
    What Python still holds for stdout goes to /dev/null, so its flush at exit raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout replaced by an object without a file descriptor
        pass
    return EXIT_BROKEN_PIPE


def _message(err: BaseException) -> str:
    """The error's own message. A DataLoader worker's error reaches the main process re-raised with the worker's
    traceback as its text (torch's ``ExceptionWrapper``); only its last line, the original message, is kept."""
    kind = type(err)
    name = kind.__qualname__ if kind.__module__ in ("builtins", "__main__") else \
        f"{kind.__module__}.{kind.__qualname__}"
    text = str(err)
    _, found, original = text.rpartition(f"\n{name}: ")
    return original.strip() if found and "\nOriginal Traceback" in text else text


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit status: 0 done, 2 a user error (one line naming the file or option), 141 stdout closed
    by its reader, 130 / 143 interrupted by SIGINT / SIGTERM (files being written are removed, finished ones kept;
    where the signal came during an import, CPython then ends the process by the signal itself)."""
    args = build_parser().parse_args(argv)
    if args.command != "info":  # info answers without torch
        from .. import runtime

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
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's flush at exit
    except BrokenPipeError:
        return _stdout_gone()
    except (SepaudioError, OSError) as err:  # OSError: the system refused (permissions, a full disk, ...)
        print(f"sepaudio {args.command}: error: {_message(err)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as err:
        terminated = isinstance(err, Terminated)
        print(f"\nsepaudio {args.command}: {'terminated' if terminated else 'interrupted'}; files being written were "
              f"removed, finished ones are kept.", file=sys.stderr)  # on a line of its own, after any progress bar
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return EXIT_OK
