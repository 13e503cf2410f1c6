"""The mini speech corpus is written by several processes when there are enough speakers: the same audio as one
process writes, file for file."""
from __future__ import annotations

import numpy as np

from sepaudio import audio
from sepaudio.data import mini_speech


def test_parallel_corpus_equals_the_serial_one(tmp_path, monkeypatch):
    files = mini_speech.make_mini_speech_corpus(tmp_path / "pool", n_speakers=8, utterances=2, seconds=0.3)
    calls = []
    serial = mini_speech._pool
    monkeypatch.setattr(mini_speech, "_pool", lambda workers: calls.append(workers) or serial(1))
    alone = mini_speech.make_mini_speech_corpus(tmp_path / "alone", n_speakers=8, utterances=2, seconds=0.3)
    assert calls == [mini_speech._pool_size()] and len(files) == 8
    for name in files:
        for ours, reference in zip(files[name], alone[name]):
            a, b = audio.load(ours)[0], audio.load(reference)[0]
            assert a.shape == b.shape and np.array_equal(a.numpy(), b.numpy())
