"""One command-line dialect: every subcommand's parser is walked and held to the rules of :mod:`sepaudio.cli.options`.

A new subcommand fails here until it is entered in ``COMMANDS`` (what it takes, runs and writes) and follows the
rules; an option name used by two commands must be entered in ``MEANINGS`` with its one meaning. The old spellings
still parse, to the same values, with a one-line notice.
"""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from sepaudio.cli import build_parser, main
from sepaudio.cli.options import MODEL_ACCEPTS, Deprecated

# every command: (takes a model, runs a model, writes files). ``train`` takes all three from its config
# (model.*, trainer.accelerator / trainer.devices, exp_dir), overridden as key=value like any entry.
COMMANDS = {
    "info": (True, False, False),
    "prepare smn_mini": (False, False, True),
    "prepare musan": (False, False, True),
    "prepare esc50": (False, False, False),
    "prepare urbansound8k": (False, False, False),
    "train": (False, False, False),
    "evaluate": (True, True, True),
    "separate": (True, True, True),
    "extract": (True, True, True),
    "ivector train": (False, True, True),
    "ivector extract": (True, True, True),
    "classify": (True, True, False),
    "segment": (True, True, True),
    "export": (True, True, True),
}
# ``--model`` that is not a sepaudio model (load_model's forms do not apply), with the reason
OTHER_MODELS = {"ivector extract": "the i-vector extractor: a file from 'sepaudio ivector train'"}
# every option name used by more than one command, with its one meaning
MEANINGS = {
    "-h": "help", "--help": "help",
    "--model": "the model the command runs or describes",
    "-o": "where the command writes", "--output": "where the command writes",
    "--device": "where the model runs",
    "--list": "a text file naming the inputs, one item a line",
    "--json": "print JSON instead of text",
    "--precision": "the fused fast path of TCN separators in this precision",
    "--chunk-seconds": "chunk length of file processing", "--overlap-seconds": "cross-faded overlap of chunks",
    "--stream": "step by step with a causal model (run it, or export its step)",
    "--hop-ms": "milliseconds of input per streaming step", "--rate": "sample rate of raw PCM on stdin",
    "--engine": "what runs the fused streaming step: torch or onnxruntime",
    "--pcm-format": "sample format of raw PCM on stdin / stdout",
    "--format": "file format of what the command writes",
    "--silence-db": "frames quieter than this many dBFS are silence",
    "--seed": "seed of the random generator",
    "--select": "separate, then select: the blind separator's output whose speaker vector is nearest the enrollment",
}
# old spelling -> the same command line in the new spelling (what the docs and recipes now say)
OLD_SPELLINGS = [
    (["info", "m.pt"], ["info", "--model", "m.pt"]),
    (["export", "m.pt", "--format", "onnx", "--out", "m.onnx"], ["export", "--model", "m.pt", "--format", "onnx",
                                                                  "-o", "m.onnx"]),
    (["export", "--model", "m.pt", "--format", "onnx", "-o", "m.onnx", "--streaming"],
     ["export", "--model", "m.pt", "--format", "onnx", "-o", "m.onnx", "--stream"]),
    (["separate", "--model", "m.pt", "a.wav", "--out-dir", "out"],
     ["separate", "--model", "m.pt", "a.wav", "-o", "out"]),
    (["separate", "--model", "m.pt", "-", "-o", "-", "--stream", "--format", "f32le"],
     ["separate", "--model", "m.pt", "-", "-o", "-", "--stream", "--pcm-format", "f32le"]),
    (["extract", "--model", "m.pt", "--list", "l.txt", "--out", "out"],
     ["extract", "--model", "m.pt", "--list", "l.txt", "-o", "out"]),
    (["extract", "--model", "m.pt", "--mixture", "-", "--enroll", "e.wav", "-o", "-", "--stream", "--format", "f32le"],
     ["extract", "--model", "m.pt", "--mixture", "-", "--enroll", "e.wav", "-o", "-", "--stream", "--pcm-format",
      "f32le"]),
    (["ivector", "train", "--wavs", "w.txt", "--out", "iv.pt"], ["ivector", "train", "--list", "w.txt", "-o", "iv.pt"]),
    (["ivector", "extract", "--model", "iv.pt", "--wavs", "w.txt", "--out", "d"],
     ["ivector", "extract", "--model", "iv.pt", "--list", "w.txt", "-o", "d"]),
    (["evaluate", "c.yml", "--out-dir", "r"], ["evaluate", "c.yml", "-o", "r"]),
    (["classify", "--model", "m.pt", "a.wav", "--window", "5"], ["classify", "--model", "m.pt", "a.wav",
                                                                  "--clip-seconds", "5"]),
    (["segment", "--model", "m.pt", "a.wav", "--out-dir", "t"], ["segment", "--model", "m.pt", "a.wav", "-o", "t"]),
    (["prepare", "smn_mini", "data"], ["prepare", "smn_mini", "-o", "data"]),
    (["prepare", "musan", "musan", "lists"], ["prepare", "musan", "musan", "-o", "lists"]),
]


def _leaves(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    """``(command words, parser)`` of every command that runs (a parser without further subcommands)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(words), parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from _leaves(sub, (*words, name))


LEAVES = dict(_leaves(build_parser()))


def _visible(parser):
    return [a for a in parser._actions if a.help is not argparse.SUPPRESS]


def _option(parser, flag: str):
    return next((a for a in _visible(parser) if flag in a.option_strings), None)


def test_every_command_is_classified():
    assert set(LEAVES) == set(COMMANDS), "enter a new command in COMMANDS (and follow the rules below)"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_model_output_device(command):
    takes, runs, writes = COMMANDS[command]
    parser = LEAVES[command]
    model = _option(parser, "--model")
    assert (model is not None) == takes, f"{command}: --model is how every command takes a model"
    assert not any("model" in (a.dest + str(a.metavar)).lower() for a in _visible(parser) if not a.option_strings), \
        f"{command}: a model is an option (--model), not a positional"
    if model is not None:
        assert model.metavar in ("MODEL", "FILE")
        accepted = OTHER_MODELS.get(command, MODEL_ACCEPTS)
        assert accepted in model.help, f"{command}: --model help must say what it accepts: {accepted}"
        assert ".pt from" not in model.help
    output = _option(parser, "--output")
    assert (output is not None) == writes, f"{command}: -o/--output is how every command names what it writes"
    if output is not None:
        assert output.option_strings == ["-o", "--output"] and output.dest == "output"
    for action in _visible(parser):
        names = [*action.option_strings, action.dest, str(action.metavar)]
        if action is not output and action.dest != "help":
            assert not any(n.lower().lstrip("-").startswith("out") for n in names), \
                f"{command}: {names} looks like an output; use -o/--output"
    device = _option(parser, "--device")
    assert (device is not None) == runs, f"{command}: --device on every command that runs a model"
    if device is not None:
        assert device.type is None and "cpu, cuda or cuda:N" in device.help


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_one_list_convention(command):
    parser = LEAVES[command]
    assert parser.fromfile_prefix_chars is None
    for action in _visible(parser):
        if "text file" in (action.help or "") or "list" in action.dest:
            assert action.option_strings == ["--list"] and action.metavar == "FILE", \
                f"{command}: a list of inputs is --list FILE"
            assert "relative paths start at the list's folder" in action.help


def test_one_meaning_per_name():
    uses: dict[str, list[tuple[str, argparse.Action]]] = {}
    for command, parser in LEAVES.items():
        for action in _visible(parser):
            for flag in action.option_strings:
                uses.setdefault(flag, []).append((command, action))
    shared = {flag for flag, where in uses.items() if len(where) > 1}
    assert shared <= set(MEANINGS), f"give each option of several commands its meaning: {shared - set(MEANINGS)}"
    for flag in shared:
        actions = [action for _, action in uses[flag]]
        assert len({(a.dest, type(a), getattr(a.type, "__name__", None), a.nargs) for a in actions}) == 1, \
            f"{flag} is declared differently in {[c for c, _ in uses[flag]]}"
    # the pair the dialect split: classify's clip length and segment's analysis window
    assert _option(LEAVES["classify"], "--window") is None and _option(LEAVES["classify"], "--clip-seconds")
    assert _option(LEAVES["segment"], "--window").dest == "window"


def test_hidden_actions_are_old_spellings():
    for command, parser in LEAVES.items():
        for action in parser._actions:
            if action.help is argparse.SUPPRESS:
                assert isinstance(action, Deprecated), f"{command}: {action.option_strings or action.dest} is hidden"
                new = action.new.split()[0].split("/")
                assert any(_option(parser, flag) for flag in new), f"{command}: {action.new} does not exist"


def _parsed(argv: list[str]) -> dict:
    args = vars(build_parser().parse_args(argv))
    return {k: v for k, v in args.items() if k != "func"}


@pytest.mark.parametrize("old, new", OLD_SPELLINGS, ids=[" ".join(old[:3]) for old, _ in OLD_SPELLINGS])
def test_old_spellings_parse_the_same_with_a_notice(old, new, capsys):
    assert _parsed(old) == _parsed(new)
    lines = capsys.readouterr().err.splitlines()  # one line per old spelling, and nothing else
    assert lines and all(line.startswith("sepaudio ") and ": warning: " in line and "is deprecated and goes in the "
                         "next release; use " in line for line in lines), lines
    _parsed(new)
    assert capsys.readouterr().err == ""


def test_every_old_spelling_has_a_row(monkeypatch):
    import sepaudio.cli.options as options

    fired = set()
    monkeypatch.setattr(options, "deprecated", lambda prog, old, new: fired.add((prog, old)))
    for old, _ in OLD_SPELLINGS:
        build_parser().parse_args(old)
    kept = {(parser.prog, a.option_strings[0] if a.option_strings else a.old)
            for parser in LEAVES.values() for a in parser._actions if isinstance(a, Deprecated)}
    assert kept == fired, f"old spellings without a row in OLD_SPELLINGS: {kept - fired}"


def test_old_and_new_together_take_the_last(capsys):
    args = build_parser().parse_args(["separate", "--model", "m.pt", "a.wav", "--out-dir", "old", "-o", "new"])
    assert args.output == "new"


def test_list_file_joins_the_inputs(tmp_path, monkeypatch, capsys):
    import sepaudio.separate

    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.wav").write_bytes(b"")
    (tmp_path / "list.txt").write_text("# inputs\na.wav\nsub/b.wav\n")
    seen = []
    monkeypatch.setattr(sepaudio.separate, "separate_files", lambda model, inputs, *a, **k: seen.append(inputs) or {})
    assert main(["separate", "--model", "m.pt", "x.wav", "--list", str(tmp_path / "list.txt"), "-o", "out"]) == 0
    assert seen[-1] == ["x.wav", tmp_path / "a.wav", tmp_path / "sub" / "b.wav"]
    assert capsys.readouterr().err == ""
    assert main(["separate", "--model", "m.pt", "@" + str(tmp_path / "list.txt"), "-o", "out"]) == 0  # the old form
    assert seen[-1] == ["@" + str(tmp_path / "list.txt")]
    err = capsys.readouterr().err
    assert "@LIST" in err and f"--list {tmp_path / 'list.txt'}" in err and "deprecated" in err
    with pytest.raises(SystemExit) as exited:
        main(["separate", "--model", "m.pt", "-o", "out"])
    assert exited.value.code == 2 and "MIX or --list" in capsys.readouterr().err


def test_device_reaches_the_library(tmp_path, monkeypatch):
    """``--device`` of the commands that gained it reaches the library (tests/test_safety.py: cuda:99 refused by
    name)."""
    import sepaudio.classify
    import sepaudio.config
    import sepaudio.evaluate
    import sepaudio.export
    import sepaudio.segment

    calls = {}
    monkeypatch.setattr(sepaudio.config, "load_config", lambda path, overrides: {})
    monkeypatch.setattr(sepaudio.evaluate, "evaluate_config", lambda *a, **k: calls.setdefault("evaluate", k))
    monkeypatch.setattr(sepaudio.classify, "classify_files", lambda *a, **k: calls.setdefault("classify", k) and [])
    monkeypatch.setattr(sepaudio.segment, "segment_files", lambda *a, **k: calls.setdefault("segment", k) and [])
    monkeypatch.setattr(sepaudio.export, "export_checked",
                        lambda *a, **k: calls.setdefault("export", k) and ("m.onnx", {}))
    assert main(["classify", "--model", "m.pt", "a.wav", "--device", "cuda:1", "--json"]) == 0
    assert main(["segment", "--model", "m.pt", "a.wav", "-o", str(tmp_path), "--device", "cuda:1"]) == 0
    assert main(["export", "--model", "m.pt", "--format", "onnx", "-o", "m.onnx", "--device", "cuda:1"]) == 0
    assert main(["evaluate", "c.yml", "--device", "cuda:1"]) == 0
    assert {name: k["device"] for name, k in calls.items()} == dict.fromkeys(("classify", "segment", "export",
                                                                              "evaluate"), "cuda:1")


CHILD = """
import contextlib, io, sys
from sepaudio.cli import build_parser, main
sys.path.insert(0, {tests!r})
from test_cli_dialect import LEAVES
for words in ["", *LEAVES]:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            main([*words.split(), "--help"])
        except SystemExit as exited:
            assert exited.code == 0, words
    assert "usage: sepaudio" in out.getvalue(), words
print("torch imported:", "torch" in sys.modules)
"""


def test_help_needs_no_torch():
    """``sepaudio --help`` and every ``sepaudio CMD --help`` answer without importing torch (start-up time)."""
    from pathlib import Path

    proc = subprocess.run([sys.executable, "-c", CHILD.format(tests=str(Path(__file__).parent))],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "torch imported: False" in proc.stdout
