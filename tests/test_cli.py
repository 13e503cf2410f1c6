import json
import os
import subprocess
import sys

import pytest

from sepaudio.cli import main
from sepaudio.models import ConvTasNet


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "sepaudio", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("info", "prepare", "train", "evaluate", "separate", "extract", "ivector", "classify", "segment"):
        assert command in out.stdout


def test_prepare_lists_the_corpora(capsys):
    with pytest.raises(SystemExit) as err:
        main(["prepare", "--help"])
    assert err.value.code == 0
    out = capsys.readouterr().out
    for corpus in ("smn_mini", "musan", "esc50", "urbansound8k"):
        assert corpus in out


def test_info(tmp_path, capsys):
    tcn = {"channels": 8, "hidden": 16, "skip_channels": 8, "blocks": 2, "repeats": 1}
    path = ConvTasNet(n_src=3, n_filters=16, tcn=tcn, sample_rate=16000).save(tmp_path / "m.pt")
    assert main(["info", "--model", str(path)]) == 0
    out = capsys.readouterr().out
    assert "conv_tasnet" in out and "16000 Hz" in out and "n_src: 3" in out
    assert main(["info", "--model", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"] == ConvTasNet(**info["arguments"]).num_parameters


def test_user_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["info", "--model", str(tmp_path / "none.pt")]) == 2
    assert "sepaudio info: error: " in capsys.readouterr().err
    (tmp_path / "c.yml").write_text("model: {name: conv_tasnet}\n")
    assert main(["train", str(tmp_path / "c.yml")]) == 2
    assert "'data' needs a 'name'" in capsys.readouterr().err


def test_unknown_command_is_an_argparse_error():
    with pytest.raises(SystemExit) as err:
        main(["frobnicate"])
    assert err.value.code == 2


@pytest.mark.parametrize("argv", [["info", "--model", "{model}"], ["info", "--model", "{model}", "--json"], ["--help"],
                                  ["separate", "--help"]])
def test_a_closed_pipe_ends_quietly(tmp_path, argv):
    """``sepaudio info MODEL | head`` where head has gone: exit status 141 (128 + SIGPIPE, as for any tool a closed
    pipe ends), nothing on stderr, no traceback."""
    path = ConvTasNet(n_filters=16, tcn={"channels": 8, "hidden": 16, "skip_channels": 8, "blocks": 2, "repeats": 1},
                      sample_rate=8000).save(tmp_path / "m.pt")
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line is written
    try:
        proc = subprocess.run([sys.executable, "-m", "sepaudio", *(a.format(model=path) for a in argv)],
                              stdout=write, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write)
    assert proc.stderr == ""
    assert proc.returncode == (0 if argv[-1] == "--help" else 141)  # argparse ends --help itself, with 0


def test_a_pipe_read_to_the_end_exits_0(tmp_path):
    path = ConvTasNet(n_filters=16, sample_rate=8000).save(tmp_path / "m.pt")
    shell = f"{sys.executable} -m sepaudio info --model {path} | head -1"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True)
    assert proc.returncode in (0, 141) and proc.stdout.startswith("model:") and proc.stderr == ""
