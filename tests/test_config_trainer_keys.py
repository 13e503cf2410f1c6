"""Checking a config's trainer keys reads Lightning's Trainer arguments without importing Lightning."""
from __future__ import annotations

import inspect
import subprocess
import sys

from sepaudio.config import TRAINER_RESERVED, _trainer_keys


def test_trainer_keys_are_the_trainers_arguments():
    import lightning

    assert _trainer_keys() == set(inspect.signature(lightning.Trainer).parameters) - TRAINER_RESERVED
    assert {"max_epochs", "precision", "accelerator"} <= _trainer_keys()


def test_checking_a_config_does_not_import_lightning(tmp_path):
    code = ("import sys; from sepaudio.config import _trainer_keys; keys = _trainer_keys(); "
            "print('max_epochs' in keys, 'lightning' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False"]
