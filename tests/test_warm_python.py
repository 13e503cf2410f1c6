"""The warm interpreter the recipe and docs tests run their commands with (tests/warm_python.py) behaves as a fresh
one: arguments, folder, environment, standard streams, exit status and death by a signal reach the caller."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_commands_run_forked_as_a_fresh_interpreter_would_run_them(warm_python, tmp_path):
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}  # as test_recipes.py's recipe_env()
    python = str(warm_python(env) / "python")

    def run(*args: str, **changes: str) -> subprocess.CompletedProcess:
        return subprocess.run([python, *args], cwd=tmp_path, env={**env, **changes}, input="typed\n",
                              capture_output=True, text=True)

    code = "import os, sys; print(sys.argv[1:], os.getcwd(), os.environ['WORD'], input(), 'lightning' in sys.modules)"
    done = run("-c", code, "a", "b c", WORD="w")
    assert (done.returncode, done.stdout) == (0, f"['a', 'b c'] {tmp_path} w typed True\n")  # forked: warm
    assert run("-c", code, "a", WORD="w", OMP_NUM_THREADS="2").stdout.endswith("typed False\n")  # fresh
    assert run("-c", "import sys; sys.exit(3)").returncode == 3
    assert run("-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)").returncode == -signal.SIGTERM
    failed = run("-c", "raise ValueError('no')")
    assert failed.returncode == 1 and failed.stderr.rstrip().endswith("ValueError: no")
    (tmp_path / "script.py").write_text("import sys\nprint(__name__, sys.argv, sys.path[0])\n")
    assert run("script.py", "x").stdout == f"__main__ ['script.py', 'x'] {tmp_path}\n"
    version = subprocess.run([str(Path(python).parent / "sepaudio"), "--version"], env=env, capture_output=True,
                             text=True)
    assert version.returncode == 0 and version.stdout.startswith("sepaudio ")
    assert run("-m", "sepaudio", "no-such-command").returncode == 2
