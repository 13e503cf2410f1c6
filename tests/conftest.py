"""Shared fixtures: generated audio only (no downloads), and what several test files would otherwise each build.

Under pytest-xdist (``make test`` runs ``pytest -n auto``) every worker gets its share of the cores as torch threads
(``OMP_NUM_THREADS``, which ``sepaudio train`` and the tests' child processes also read), unless the environment
already sets it: two workers with two threads each on two cores would fight over them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from sepaudio.data import make_mini_speech_corpus
from warm_python import import_time, start


def pytest_configure(config):
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not workers.isdigit():  # not an xdist worker
        return
    if not os.environ.get("OMP_NUM_THREADS", "").isdigit():
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        os.environ["OMP_NUM_THREADS"] = str(max(1, cores // int(workers)))
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist the long tests are handed out first, so that the workers end together instead of one
    finishing a long test alone: those of an ``xdist_group`` (the longest units of work), then those marked slow
    (every worker sorts alike: the collections must agree; ``make test`` keeps this order: --no-loadscope-reorder)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: (item.get_closest_marker("xdist_group") is None,
                                     item.get_closest_marker("slow") is None))


def pytest_terminal_summary(terminalreporter):
    """Texts tests recorded with ``record_property("note", text)`` (xdist passes them on; workers' prints are lost)."""
    notes = [text for reports in terminalreporter.stats.values() for report in reports
             if getattr(report, "when", None) == "call" for key, text in report.user_properties if key == "note"]
    if notes:
        terminalreporter.write_sep("-", "notes")
        terminalreporter.write_line("".join(sorted(notes)).strip("\n"))


@pytest.fixture(scope="session")
def mini_speech(tmp_path_factory):
    """A small synthetic multi-speaker corpus: 4 speakers x 6 utterances of about 1 s at 8 kHz."""
    root = tmp_path_factory.mktemp("mini_speech")
    make_mini_speech_corpus(root, n_speakers=4, utterances=6, seconds=1.0, sample_rate=8000, seed=0)
    return root


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def warm_python(tmp_path_factory):
    """``warm_python(env)``: a folder with ``python`` and ``sepaudio`` commands that run as forks of an interpreter
    that has imported torch, Lightning and sepaudio (tests/warm_python.py), for tests that run many commands through
    shell scripts; one server per environment (its variables read at import time), started on first use."""
    servers: dict[str, tuple[Path, object]] = {}

    def folder(env: dict[str, str]) -> Path:
        key = json.dumps(import_time(env))
        if key not in servers:
            path = tmp_path_factory.mktemp("warm_python")
            servers[key] = path, start(path, env)
        return servers[key][0]

    yield folder
    for _, server in servers.values():
        server.terminate()
        server.wait()

