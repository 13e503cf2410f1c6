import json
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
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "conv_tasnet" in out and "16000 Hz" in out and "n_src: 3" in out
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"] == ConvTasNet(**info["arguments"]).num_parameters


def test_user_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["info", str(tmp_path / "none.pt")]) == 2
    assert "sepaudio info: error: " in capsys.readouterr().err
    (tmp_path / "c.yml").write_text("model: {name: conv_tasnet}\n")
    assert main(["train", str(tmp_path / "c.yml")]) == 2
    assert "'data' needs a 'name'" in capsys.readouterr().err


def test_unknown_command_is_an_argparse_error():
    with pytest.raises(SystemExit) as err:
        main(["frobnicate"])
    assert err.value.code == 2
