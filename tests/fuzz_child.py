"""Runs in a child process with capped memory (see tests/test_fuzz.py): drives ``sepaudio.cli.main`` over the
argument lists in ``sys.argv[1]`` (JSON) and writes one ``{"status", "stderr"}`` per case to ``sys.argv[2]``.

A case that raises anything but ``SystemExit`` (a traceback a user would see) is recorded with status ``"crash"``.
"""
import contextlib
import io
import json
import sys
import traceback

from sepaudio.cli import main


def run(argv: list[str]) -> dict:
    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            status = main(argv)
    except SystemExit as exit:  # argparse
        status = exit.code
    except BaseException:  # noqa: BLE001 - exactly what the harness looks for
        return {"status": "crash", "stderr": err.getvalue() + traceback.format_exc()}
    return {"status": status, "stderr": err.getvalue()}


if __name__ == "__main__":
    cases = json.loads(open(sys.argv[1]).read())
    with open(sys.argv[2], "w") as results:
        for argv in cases:
            results.write(json.dumps(run(argv)) + "\n")
            results.flush()
