"""A warm interpreter for the tests that run many commands through a shell (the recipes' ``run.sh``, the docs' blocks).

Every ``python -m sepaudio train ...`` would otherwise start a fresh interpreter and import torch, Lightning (which
imports torchmetrics and torchvision) and sepaudio again: about 10 s of CPU before the first line of work. Here a
server imports them once, and each command is a fork of it: its own process, with the command's arguments, working
folder, environment, standard streams and exit status (a signal's included), so the shell scripts run as they do
with a fresh interpreter, less the start-up (the modules the server imported are there already).

:func:`start` writes two commands into a folder, ``python`` and ``sepaudio``, for a ``PATH`` / ``$PYTHON``. They
hand the server ``python -m MODULE ...``, ``python -c CODE ...``, ``python SCRIPT ...`` and ``sepaudio ...``, and
run anything else (interpreter options such as ``-u``, no arguments) with the real interpreter, as they do when an
environment variable read at import time (``PYTHON*``, ``OMP_*``, ``MPLBACKEND``, ``HF_*``, ...) differs from the
server's, or when the server is gone (``WARM_PYTHON_FALLBACKS=FILE`` lists those commands in FILE;
``WARM_PYTHON_CPU_LOG=FILE`` the CPU seconds, folder and words of every forked one).
"""
from __future__ import annotations

import atexit
import importlib
import io
import json
import os
import re
import runpy
import select
import signal
import socket
import subprocess
import sys
import traceback
import types
from pathlib import Path

#: what the server imports before it forks (what ``sepaudio train`` / ``evaluate`` / ``separate`` import)
PRELOAD = ("torch", "lightning", "sepaudio.cli", "sepaudio.train", "sepaudio.evaluate", "sepaudio.data",
           "sepaudio.models", "sepaudio.separate", "sepaudio.extract", "sepaudio.classify")
#: environment variables read at import time: a command whose values differ runs in a fresh interpreter
IMPORT_TIME = re.compile(r"^(PYTHON[A-Z]|OMP_|MKL_|KMP_|OPENBLAS|MPL|HF_|HUGGINGFACE|TRANSFORMERS|TORCH|CUDA|PL_"
                         r"|LD_|XDG_|HOME$|LANG|LC_)")

SHIM = '''#!{real} -S
import json, os, re, signal, socket, sys
REAL, KIND, SOCKET, SCRIPT, LOG = {real!r}, {kind!r}, {socket!r}, {script!r}, {log!r}
IMPORT_TIME, ENV = re.compile({pattern!r}), json.loads({env!r})
args = sys.argv[1:]
if KIND == "sepaudio":
    command = ["sepaudio", *args]
elif args and args[0] in ("-m", "-c") and len(args) > 1 or args and not args[0].startswith("-"):
    command = ["python", *args]
else:
    command = None
fallback = [REAL, *args] if KIND == "python" else [REAL, SCRIPT, *args]
def same(k, v):  # PYTHONPATH as sys.path takes it: each folder once
    return ":".join(dict.fromkeys(filter(None, v.split(":")))) if k == "PYTHONPATH" else v
if command is None or {{k: same(k, v) for k, v in os.environ.items() if IMPORT_TIME.match(k)}} != ENV:
    if LOG:
        with open(LOG, "a") as log:
            log.write(json.dumps(sys.argv) + "\\n")
    os.execv(REAL, fallback)
try:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.connect(SOCKET)
    socket.send_fds(server, [json.dumps({{"argv": command, "cwd": os.getcwd(), "env": dict(os.environ)}}).encode()],
                    [0, 1, 2])
    pid = int(server.recv(64))
except (OSError, ValueError):
    os.execv(REAL, fallback)
for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(number, lambda n, frame: os.kill(pid, n))
code = int(server.recv(64) or 1)
if code < 0:  # ended by a signal: so does this process
    try:
        signal.signal(-code, signal.SIG_DFL)
    except (OSError, ValueError):  # SIGKILL, SIGSTOP
        pass
    os.kill(os.getpid(), -code)
    code = 128 - code
sys.exit(code)
'''


def import_time(env: dict[str, str]) -> dict[str, str]:
    """The variables of ``env`` that are read at import time (PYTHONPATH as ``sys.path`` takes it: each folder once):
    commands whose values are the server's run forked."""
    return {k: (":".join(dict.fromkeys(filter(None, v.split(":")))) if k == "PYTHONPATH" else v)
            for k, v in sorted(env.items()) if IMPORT_TIME.match(k)}


def start(folder: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start a server with ``env`` (returns when it has imported :data:`PRELOAD`) and write ``folder/python`` and
    ``folder/sepaudio``, the commands that use it. Stop it with ``.terminate()``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "server.sock"
    server = subprocess.Popen([sys.executable, __file__, str(path)], env=env, stdout=subprocess.PIPE, text=True)
    if server.stdout.readline().strip() != "ready":
        server.kill()
        raise RuntimeError("the warm python server did not start")
    check = import_time(env)
    script = str(Path(sys.executable).parent / "sepaudio")
    for kind in ("python", "sepaudio"):
        shim = folder / kind
        shim.write_text(SHIM.format(real=sys.executable, kind=kind, socket=str(path), script=script,
                                    pattern=IMPORT_TIME.pattern, env=json.dumps(check),
                                    log=os.environ.get("WARM_PYTHON_FALLBACKS", "")))
        shim.chmod(0o755)
    return server


def serve(path: str) -> None:
    """Import :data:`PRELOAD`, then fork a child for every command sent to the socket ``path`` and send back its
    process id and, when it ends, its exit status (-N for signal N). Ends when its parent does."""
    for module in PRELOAD:
        importlib.import_module(module)
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    if os.path.exists(path):
        os.unlink(path)
    listener.bind(path)
    listener.listen(64)
    print("ready", flush=True)
    children: dict[int, tuple[socket.socket, list[str]]] = {}  # pid: the caller, folder and command
    cpu_log = os.environ.get("WARM_PYTHON_CPU_LOG")  # where to write each command's CPU seconds (measurements)
    while os.getppid() == parent:
        ready, _, _ = select.select([listener], [], [], 0.05 if children else 1.0)
        if ready:
            connection, _ = listener.accept()
            message, fds, _, _ = socket.recv_fds(connection, 1 << 22, 3)
            pid = os.fork()
            if pid == 0:
                listener.close()
                for other, _ in children.values():
                    other.close()
                connection.close()
                run(json.loads(message), fds)  # never returns
            for fd in fds:
                os.close(fd)
            connection.send(str(pid).encode())
            command = json.loads(message)
            children[pid] = connection, [command["cwd"], *command["argv"]]
        while children:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
            if not pid:
                break
            connection, words = children.pop(pid)
            if cpu_log:
                with open(cpu_log, "a") as log:
                    log.write(f"{usage.ru_utime + usage.ru_stime:.2f}\t{' '.join(words)[:300]}\n")
            try:
                connection.send(str(os.waitstatus_to_exitcode(status)).encode())
            except OSError:  # the command's caller is gone
                pass
            connection.close()


def run(command: dict, fds: list[int]) -> None:
    """In the forked child: take the command's streams, folder and environment, run it as the interpreter would and
    exit with its status (after the ``atexit`` functions)."""
    for number, fd in enumerate(fds):
        os.dup2(fd, number)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    old = sys.stdout, sys.stderr  # bound to the server's files: new ones, as the interpreter makes them at start
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.open(0, "rb", closefd=False), encoding=sys.stdin.encoding)
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.open(1, "wb", closefd=False), encoding=old[0].encoding,
                                                   line_buffering=os.isatty(1))
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.open(2, "wb", closefd=False), encoding=old[1].encoding,
                                                   errors="backslashreplace", line_buffering=True)
    os.chdir(command["cwd"])
    os.environ.clear()
    os.environ.update(command["env"])
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the server ignores it
    kind, *args = command["argv"]
    main = types.ModuleType("__main__")
    sys.modules["__main__"] = main
    code = 0
    try:
        if kind == "sepaudio":  # the console script
            main.__file__ = sys.argv[0] = str(Path(sys.executable).parent / "sepaudio")
            sys.path[0] = str(Path(sys.executable).parent)
            sys.argv[1:] = args
            from sepaudio.cli import main as cli
            code = cli()
        elif args[0] == "-m":
            sys.argv = [args[1], *args[2:]]
            sys.path[0] = os.getcwd()
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        elif args[0] == "-c":
            sys.argv = ["-c", *args[2:]]
            sys.path[0] = ""
            exec(compile(args[1], "<string>", "exec"), main.__dict__)
        else:
            sys.argv = list(args)
            sys.path[0] = os.path.dirname(os.path.abspath(args[0]))
            runpy.run_path(args[0], run_name="__main__")
    except SystemExit as end:
        if end.code is None or isinstance(end.code, int):
            code = end.code or 0
        else:
            print(end.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:  # as the interpreter: the traceback, then death by SIGINT
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:  # noqa: BLE001 - as the interpreter: the traceback, status 1
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr, *old):
            stream.flush()
    finally:
        if code == -signal.SIGINT:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        os._exit(code if isinstance(code, int) else 1)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(sys.argv[1])
