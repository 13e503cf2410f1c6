"""A seeded fuzzing harness: valid configs, model files and WAV and FLAC headers, mutated at random, drive the real
command line in a child process whose address space is capped. Every case must end with status 0 or 2, print no
traceback, stay within the memory cap and leave its inputs unchanged. The seed is fixed (a failure reproduces); raise
``SEPAUDIO_FUZZ_CASES`` to run more cases."""
from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import resource
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from sepaudio.models import create_model

CASES = int(os.environ.get("SEPAUDIO_FUZZ_CASES", "24"))
MEMORY_MIB = 6000  # address space: torch alone maps about 4 GiB
TCN = {"channels": 8, "hidden": 16, "skip_channels": 8, "blocks": 2, "repeats": 1}
HOSTILE = [-1, 0, -(2**63), 2**63, 1e308, float("nan"), float("-inf"), "", "x" * 5000, [], {}, None, True,
           {"class_path": "os.system", "init_args": {"command": "touch PWNED"}}, [[[[[[[[1]]]]]]]], "..", "/",
           "\udcff", 3.5, "auto", [1, 2, 3]]


def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, path + (key,))
    yield path


def _set(node, path, value):
    for key in path[:-1]:
        node = node[key]
    if path:
        node[path[-1]] = value


def mutate_config(base: dict, rng: random.Random) -> str:
    config = copy.deepcopy(base)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _leaves(config) if p and p[0] != "exp_dir"]
        path = rng.choice(paths)
        action = rng.random()
        if action < 0.6:
            _set(config, path, copy.deepcopy(rng.choice(HOSTILE)))
        elif action < 0.8:
            parent = config
            for key in path[:-1]:
                parent = parent[key]
            parent.pop(path[-1], None)
        else:
            _set(config, path + ("unknown_key",), 1) if isinstance(_get(config, path), dict) else None
    text = yaml.safe_dump(config, allow_unicode=False)
    if rng.random() < 0.3:  # byte-level damage on top
        data = bytearray(text.encode())
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return data.decode("latin-1")
    return text


def _get(node, path):
    for key in path:
        node = node[key]
    return node


def mutate_bytes(data: bytes, rng: random.Random, header: int | None = None) -> bytes:
    data = bytearray(data)
    span = header or len(data)
    for _ in range(rng.randint(1, 6)):
        kind = rng.random()
        at = rng.randrange(min(span, len(data)))
        if kind < 0.6:
            data[at] = rng.randrange(256)
        elif kind < 0.8:  # a 32-bit field set to an extreme
            data[at:at + 4] = struct.pack("<I", rng.choice([0, 1, 2**31 - 1, 2**32 - 1, 0x7FFF, 48000 * 1000]))
        else:
            del data[rng.randrange(len(data)):]
    return bytes(data)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, mini_speech) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fuzz")
    model = create_model("conv_tasnet", n_filters=16, tcn=TCN)
    model.save(root / "model.pt")
    sf.write(root / "mix.wav", (0.1 * np.random.default_rng(0).standard_normal(4000)).astype("float32"), 8000)
    sf.write(root / "mix.flac", (0.1 * np.random.default_rng(1).standard_normal(4000)).astype("float32"), 8000)
    config = {"exp_dir": str(root / "exp"), "seed": 0, "model": {"name": "conv_tasnet", "args": {"n_filters": 16,
                                                                                               "tcn": TCN}},
              "data": {"name": "mix_on_the_fly", "batch_size": 2, "num_workers": 0,
                       "train": {"root": str(mini_speech), "segment": 0.25, "length": 2},
                       "valid": {"root": str(mini_speech), "segment": 0.25, "length": 2, "seed": 0}},
              "loss": {"name": "pit_si_sdr"},
              "trainer": {"max_epochs": 1, "accelerator": "cpu", "enable_progress_bar": False,
                          "enable_model_summary": False}}
    return {"root": root, "model": root / "model.pt", "mix": root / "mix.wav", "flac": root / "mix.flac",
            "config": config}


def _digest(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


def test_mutated_inputs_end_cleanly(inputs, tmp_path):
    rng = random.Random(1234)
    root, cases, files = inputs["root"], [], []
    model_bytes, wav_bytes = inputs["model"].read_bytes(), inputs["mix"].read_bytes()
    flac_bytes = inputs["flac"].read_bytes()
    for index in range(CASES):
        kind = index % 4
        case = tmp_path / f"case{index}"
        case.mkdir()
        out = str(case / "out")
        if kind == 0:
            conf = case / "conf.yml"
            config = {**inputs["config"], "exp_dir": str(case / "exp")}
            conf.write_bytes(mutate_config(config, rng).encode("utf-8", "surrogateescape"))
            files.append(conf)
            cases.append(["train", str(conf)])
        elif kind == 1:
            model = case / "model.pt"
            model.write_bytes(mutate_bytes(model_bytes, rng))
            files.append(model)
            cases.append(rng.choice([["info", str(model)],
                                     ["separate", "--model", str(model), str(inputs["mix"]), "-o", out]]))
        else:  # a WAV header, or FLAC's STREAMINFO (sample rate, channels, a 36-bit sample count)
            wav = case / ("mix.wav" if kind == 2 else "mix.flac")
            wav.write_bytes(mutate_bytes(wav_bytes, rng, header=44) if kind == 2 else
                            mutate_bytes(flac_bytes, rng, header=42))
            files.append(wav)
            cases.append(["separate", "--model", str(inputs["model"]), str(wav), "-o", out])
    before = _digest(files + [inputs["model"], inputs["mix"]])
    (tmp_path / "cases.json").write_text(json.dumps(cases))

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_MIB << 20, MEMORY_MIB << 20))

    child = subprocess.run([sys.executable, str(Path(__file__).with_name("fuzz_child.py")),
                            str(tmp_path / "cases.json"), str(tmp_path / "results.jsonl")],
                           capture_output=True, text=True, preexec_fn=cap, timeout=600, cwd=tmp_path,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    results = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(results) == len(cases), f"the child died at case {len(results)}: {cases[len(results)]}\n" \
                                       f"{child.stderr[-3000:]}"
    bad = [(argv, r) for argv, r in zip(cases, results)
           if r["status"] not in (0, 2) or "Traceback" in r["stderr"]]
    assert not bad, "\n\n".join(f"{argv}: status {r['status']}\n{r['stderr'][-1500:]}" for argv, r in bad[:3])
    assert _digest(files + [inputs["model"], inputs["mix"]]) == before
    assert not (tmp_path / "PWNED").exists()
    refused = sum(r["status"] == 2 for r in results)
    print(f"{len(results)} mutated inputs: {refused} refused with a message, {len(results) - refused} worked")
