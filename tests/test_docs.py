"""Docs that cannot rot: every Python and shell block of README.md and docs/*.md runs as written.

Each document runs in a temporary folder of its own, its blocks in document order (later blocks use the files earlier
ones wrote): Python blocks in an interpreter of their own, shell blocks with ``bash -e``, with this checkout's
``sepaudio`` and ``python`` on PATH (each command a fork of an interpreter that has imported torch, Lightning and
sepaudio: conftest.py's ``warm_python``). The folder holds the audio files the blocks name (``mixture.wav``,
``enrollment.wav``, ``speech.wav``, generated) and a link to the checkout's ``recipes/``, so commands written for a
clone's top folder work. The caches are pre-filled and the network is off: torch's hub cache holds a Conv-TasNet
with random weights under the file name of torchaudio's ``CONVTASNET_BASE_LIBRI2MIX`` bundle, and
``HF_HUB_OFFLINE=1``.

A block preceded by ``<!-- skip: REASON -->`` (it needs a corpus, a GPU, the network or a long training) is not run;
the test reports every skipped block with its reason (listed at the end of the run).
"""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUN = {"python": "python", "py": "python", "bash": "bash", "sh": "bash", "shell": "bash"}
NOT_CODE = {"text", "yaml", "yml", "toml", "json", "csv", "cff"}  # shown, not run
SKIP = re.compile(r"^<!--\s*skip:\s*(?P<reason>.*?)\s*-->$")
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")
BLOCK_TIMEOUT = 600  # seconds; the longest block (a short training) takes about one minute


@dataclass
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    skip: str | None  # the reason, for a block marked to be skipped

    @property
    def where(self) -> str:
        return f"{shown(self.path)}:{self.line}"


def shown(path: Path) -> str:
    """The path relative to the checkout, where it is inside it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def parse(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, with the skip marker on the line before each (blank lines
    between them allowed)."""
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    index, marker = 0, None
    while index < len(lines):
        line = lines[index].strip()
        fence = FENCE.match(line)
        if fence:
            end = next((k for k in range(index + 1, len(lines)) if lines[k].strip() == "```"), None)
            if end is None:
                raise AssertionError(f"{shown(path)}:{index + 1}: a code block that is never closed")
            blocks.append(Block(path, index + 1, fence["lang"].lower(), "\n".join(lines[index + 1:end]) + "\n",
                                marker))
            index, marker = end + 1, None
            continue
        skip = SKIP.match(line)
        if skip:
            if not skip["reason"]:
                raise AssertionError(f"{shown(path)}:{index + 1}: a skip marker needs a reason")
            marker = skip["reason"]
        elif line and marker is not None:
            raise AssertionError(f"{shown(path)}:{index + 1}: a skip marker must come right before a "
                                 f"code block")
        index += 1
    return blocks


def make_audio(folder: Path) -> None:
    """The recordings the documents name: a two-talker mixture at 16 kHz (so the examples show resampling to the
    8 kHz models), an enrollment of one of the two talkers and a speech clip."""
    from sepaudio.data import make_mini_speech_corpus

    rate = 16000
    corpus = make_mini_speech_corpus(folder / "_corpus", n_speakers=2, utterances=2, seconds=3.0,
                                     sample_rate=rate, seed=0)
    first, second = (sorted(corpus[name]) for name in sorted(corpus))
    a, b = (sf.read(str(path), dtype="float32")[0] for path in (first[0], second[0]))
    length = min(len(a), len(b))
    mixture = a[:length] + 0.7 * b[:length]
    sf.write(folder / "mixture.wav", 0.9 * mixture / np.abs(mixture).max(), rate, subtype="FLOAT")
    shutil.copyfile(first[1], folder / "enrollment.wav")
    shutil.copyfile(first[0], folder / "speech.wav")
    shutil.rmtree(folder / "_corpus")


def fill_torch_hub(torch_home: Path) -> None:
    """torchaudio's CONVTASNET_BASE_LIBRI2MIX weights as its bundle finds them after a download (random weights:
    the examples need the file, not the trained values). The same file is also where
    ``torch.hub.load_state_dict_from_url`` caches a download of that URL."""
    import torch
    import torchaudio

    bundle = torchaudio.pipelines.CONVTASNET_BASE_LIBRI2MIX
    key = bundle._model_path  # "models/conv_tasnet_base_libri2mix.pt", below download.pytorch.org/torchaudio/
    torch.manual_seed(0)
    state = torchaudio.models.conv_tasnet_base(num_sources=2).state_dict()
    for path in (torch_home / "hub" / "torchaudio" / key, torch_home / "hub" / "checkpoints" / Path(key).name):
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)


@pytest.fixture(scope="session")
def environment(tmp_path_factory, warm_python):
    """The environment variables and the audio folder every document runs with (made once: under pytest-xdist the
    documents that train run first, the others later). Its ``python`` and ``sepaudio`` are forks of a warm
    interpreter (conftest.py's ``warm_python``): each command runs as a process of its own, less the imports."""
    root = tmp_path_factory.mktemp("docs")
    audio = root / "audio"
    audio.mkdir()
    make_audio(audio)
    fill_torch_hub(root / "torch")
    bin_dir = str(Path(sys.executable).parent)  # this environment's python and sepaudio
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "PYTHON", "TORCH_HOME"))}
    env.update(PATH=bin_dir + os.pathsep + env.get("PATH", ""), PYTHONPATH=str(REPO),
               TORCH_HOME=str(root / "torch"), HF_HOME=str(root / "hf"), HF_HUB_OFFLINE="1",
               OMP_NUM_THREADS="1", MPLBACKEND="Agg", COLUMNS="100", PYTHONDONTWRITEBYTECODE="1")
    warm = warm_python(env)
    env.update(PATH=str(warm) + os.pathsep + env["PATH"], PYTHON=str(warm / "python"))
    return env, audio


def run_block(block: Block, folder: Path, env: dict, number: int) -> str | None:
    """Run one block in ``folder``; None when it succeeds, else what went wrong."""
    script = folder / f".block{number}.{'py' if RUN[block.lang] == 'python' else 'sh'}"
    script.write_text(block.code, encoding="utf-8")
    command = [env["PYTHON"], script.name] if RUN[block.lang] == "python" else ["bash", "-e", script.name]
    try:
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"{block.where}: the {block.lang} block ran past {BLOCK_TIMEOUT} s"
    finally:
        script.unlink(missing_ok=True)
    if done.returncode == 0:
        return None
    return (f"{block.where}: the {block.lang} block failed as written (exit status {done.returncode})\n"
            f"--- block\n{block.code}--- stdout (end)\n{done.stdout[-2000:]}\n--- stderr (end)\n{done.stderr[-3000:]}")


def trains(document: Path) -> bool:
    """Whether a block of the document that runs trains a model (such documents are marked slow)."""
    return any(b.lang in RUN and not b.skip and re.search(r"\bsepaudio train\b", b.code) for b in parse(document))


@pytest.mark.parametrize("document", [pytest.param(d, marks=[pytest.mark.slow] if trains(d) else [])
                                      for d in DOCUMENTS], ids=shown)
def test_code_blocks_run_as_written(document, environment, tmp_path, record_property):
    env, audio = environment
    blocks = parse(document)
    for path in audio.iterdir():
        shutil.copyfile(path, tmp_path / path.name)
    (tmp_path / "recipes").symlink_to(REPO / "recipes", target_is_directory=True)
    skipped = [b for b in blocks if b.lang in RUN and b.skip]
    if skipped:  # printed after the run by conftest.py (also from pytest-xdist's workers)
        record_property("note", "".join(f"\n  skipped {b.where} ({b.lang}): {b.skip}" for b in skipped))
    failures = []  # every block runs, so that one failure does not hide the next (the first is the cause of
    for number, block in enumerate(blocks):  # any that depend on its files)
        if block.lang in RUN and not block.skip:
            failure = run_block(block, tmp_path, env, number)
            if failure:
                failures.append(failure)
    if failures:
        pytest.fail(f"{len(failures)} block(s) of {shown(document)} failed:\n\n" + "\n\n".join(failures),
                    pytrace=False)


@pytest.mark.parametrize("document", DOCUMENTS, ids=shown)
def test_every_block_is_run_or_marked(document):
    """A block in a language the test does not run must be text or data, never code that silently goes untested;
    a skip marker stands only before code that would otherwise run."""
    for block in parse(document):
        assert block.lang in RUN or block.lang in NOT_CODE, (
            f"{block.where}: a ```{block.lang} block; name its language (python, bash, text, yaml, ...)")
        assert not block.skip or block.lang in RUN, f"{block.where}: a skip marker before a block that never runs"
        if RUN.get(block.lang) == "bash" and not block.skip:  # the test must not change the environment it runs in
            assert not re.search(r"^\s*(pip3? install|git clone|make\b)", block.code, re.MULTILINE), (
                f"{block.where}: a block that installs packages or runs make; mark it <!-- skip: REASON -->")


def test_parse_reads_markers_and_order(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# t\n\n```python\nprint(1)\n```\n\n<!-- skip: needs a GPU -->\n\n```bash\nnvidia-smi\n```\n"
                    "```text\nplain\n```\n")
    assert [(b.lang, b.skip, b.line) for b in parse(page)] == [("python", None, 3), ("bash", "needs a GPU", 9),
                                                                ("text", None, 12)]
    page.write_text("<!-- skip: a reason -->\nsome prose\n```bash\ntrue\n```\n")
    with pytest.raises(AssertionError, match="right before a code block"):
        parse(page)
    page.write_text("```python\nprint(1)\n")
    with pytest.raises(AssertionError, match="never closed"):
        parse(page)


def test_benchmarks_run_from_any_folder():
    """The commands the docs give (``python benchmarks/bench_X.py``) work from any folder: no benchmark names a file
    of the checkout by a path relative to the working folder; they build paths from their own ``__file__``."""
    relative = ("recipes/", "benchmarks/", "tests/", "sepaudio/", "docs/")
    for script in sorted((REPO / "benchmarks").glob("*.py")):
        tree = ast.parse(script.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
                      and ast.get_docstring(node, clean=False) is not None}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                assert not node.value.startswith(relative), (
                    f"{script.name}:{node.lineno}: {node.value!r} is relative to the working folder; build it from "
                    f"Path(__file__)")


def test_cli_reference_has_every_command():
    """docs/cli.md's hook writes the --help of every command and action from the parser `sepaudio` runs."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cli_help", REPO / "docs" / "hooks" / "cli_help.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    from sepaudio.cli import build_parser

    page = hook.on_page_markdown(f"# Command line\n\n{hook.MARKER}\n", None, None, None)
    assert hook.MARKER not in page and page.count("```text") == len(list(hook._commands(build_parser())))
    for words, parser in hook._commands(build_parser()):
        assert f"## `{' '.join(('sepaudio',) + words)}`" in page and parser.format_usage().split()[1] in page
    assert "## `sepaudio separate`" in page and "## `sepaudio ivector train`" in page
    assert hook.on_page_markdown("no marker", None, None, None) == "no marker"


def test_grouped_parameters_are_written_out_per_name():
    """The API reference's griffe extension turns ``a, b: text`` entries of a parameter section into one per name."""
    import importlib.util

    pytest.importorskip("griffe")
    path = REPO / "docs" / "hooks" / "griffe_grouped_args.py"
    spec = importlib.util.spec_from_file_location("griffe_grouped_args", path)
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    text = ("Separate.\n\nArgs:\n    audio: a path, an array.\n    chunk_seconds, overlap_seconds (float): chunk and\n"
            "        overlap, in seconds.\n    device: where.\n\nReturns:\n    a, b: not a parameter section.")
    entry = "chunk and\n        overlap, in seconds.\n"
    assert hook.split_grouped_parameters(text) == (
        f"Separate.\n\nArgs:\n    audio: a path, an array.\n    chunk_seconds (float): {entry}"
        f"    overlap_seconds (float): {entry}    device: where.\n\nReturns:\n    a, b: not a parameter section.")


@pytest.mark.slow
def test_tse_mini_runs_every_config_the_docs_present(tmp_path, warm_python):
    """``recipes/tse_mini/run.sh --conf conf_encoder.yml`` (the learned speaker encoder, which takes no i-vector) runs
    every stage, at a tiny size, to its results table."""
    tiny = ["model.args.n_filters=16", "model.args.tcn.channels=8", "model.args.tcn.hidden=16",
            "model.args.tcn.skip_channels=8", "model.args.tcn.blocks=2", "model.args.tcn.repeats=1",
            "model.args.speaker_dim=4", "model.args.speaker_channels=8", "model.args.speaker_blocks=1",
            "model.args.n_speakers=7", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1", "trainer.enable_progress_bar=false", "data.num_workers=0",
            "data.batch_size=2"]
    for split, length in (("train", 4), ("valid", 2), ("test", 2)):
        tiny += [f"data.{split}.length={length}", f"data.{split}.segment=0.5", f"data.{split}.enrollment_seconds=0.5"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env["PYTHON"] = str(warm_python(env) / "python")  # its commands: forks of a warm interpreter (conftest.py)
    done = subprocess.run(["bash", str(REPO / "recipes/tse_mini/run.sh"), "--conf", "conf_encoder.yml", "--speakers",
                           "10", "--heldout", "3", "--utterances", "3", "--components", "4", "--rank", "8",
                           "--lda-dim", "4", "--work", str(tmp_path), *tiny], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    results = (tmp_path / "exp" / "tsenet_encoder" / "RESULTS.md").read_text()
    assert "held-out speakers (test)" in results and "Conditioning check" in results
    config = (tmp_path / "exp" / "tsenet_encoder" / "config.yaml").read_text()
    assert "conditioning: encoder" in config and "ivector_dim: 4" not in config
