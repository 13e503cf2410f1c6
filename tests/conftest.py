"""Shared fixtures: generated audio only (no downloads)."""
from __future__ import annotations

import pytest
import torch

from sepaudio.data import make_mini_speech_corpus


@pytest.fixture(scope="session")
def mini_speech(tmp_path_factory):
    """A small synthetic multi-speaker corpus: 4 speakers x 6 utterances of about 1 s at 8 kHz."""
    root = tmp_path_factory.mktemp("mini_speech")
    make_mini_speech_corpus(root, n_speakers=4, utterances=6, seconds=1.0, sample_rate=8000, seed=0)
    return root


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
