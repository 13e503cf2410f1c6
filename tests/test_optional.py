"""A feature whose optional package is missing stops with a MissingDependencyError naming the pip extra to install."""
from __future__ import annotations

import builtins
import importlib
import sys

import numpy as np
import pytest
import torch

import sepaudio
from sepaudio import cards, export, metrics
from sepaudio.optional import EXTRAS, require


@pytest.fixture
def missing(monkeypatch):
    """``missing("pesq")`` makes importing that package (and its submodules) fail as if it were not installed."""
    real_import, real_import_module = builtins.__import__, importlib.import_module
    gone: set[str] = set()

    def is_gone(name: str) -> bool:
        return name.split(".")[0] in gone

    def fake_import(name, *args, **kwargs):
        if is_gone(name):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    def fake_import_module(name, package=None):
        if is_gone(name):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import_module(name, package)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(importlib, "import_module", fake_import_module)

    def hide(*names: str) -> None:
        gone.update(names)
        for name in names:
            for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
                monkeypatch.delitem(sys.modules, key)

    return hide


@pytest.mark.parametrize("module", sorted(EXTRAS))
def test_require_names_the_extra(missing, module):
    missing(module)
    with pytest.raises(sepaudio.MissingDependencyError) as err:
        require(module, "this feature")
    message = str(err.value)
    assert f"pip install 'sepaudio[{EXTRAS[module]}]'" in message and repr(module) in message
    assert isinstance(err.value, sepaudio.SepaudioError)


def test_require_returns_the_module():
    assert require("numpy", "arrays") is np


def test_a_broken_import_inside_an_installed_package_is_not_hidden(tmp_path, monkeypatch):
    (tmp_path / "brokenpkg").mkdir()
    (tmp_path / "brokenpkg" / "__init__.py").write_text("import not_a_module_anywhere_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="not_a_module_anywhere_xyz"):
        require("brokenpkg", "a feature")


@pytest.mark.parametrize("package, metric, extra", [("pesq", "pesq", "eval"), ("pystoi", "stoi", "eval")])
def test_perceptual_metrics_name_the_eval_extra(missing, package, metric, extra):
    missing(package)
    est = np.random.default_rng(0).standard_normal((1, 8000)).astype(np.float32)
    with pytest.raises(sepaudio.MissingDependencyError, match=rf"sepaudio\[{extra}\]"):
        metrics.perceptual(est, est, 8000, (metric,))
    assert metrics.perceptual(est, est, 8000, ()) == {}  # nothing asked, nothing needed


@pytest.mark.parametrize("package", ["onnx", "onnxruntime"])
def test_onnx_export_names_the_export_extra(missing, tmp_path, package):
    from sepaudio.models import ConvTasNet

    missing(package)
    model = ConvTasNet(n_src=2, n_filters=16, tcn={"channels": 16, "hidden": 16, "skip_channels": 16, "blocks": 1,
                                                   "repeats": 1})
    with pytest.raises(sepaudio.MissingDependencyError, match=r"sepaudio\[export\]"):
        if package == "onnx":
            export.export(model, tmp_path / "m.onnx", "onnx")
        else:
            (tmp_path / "m.onnx").write_bytes(b"not a zip")
            export.run_exported(tmp_path / "m.onnx", (torch.zeros(1, 800),))
    assert not (tmp_path / "m.onnx").exists() or package == "onnxruntime"


def test_hub_ids_name_the_hub_extra(missing, tmp_path, monkeypatch):
    missing("huggingface_hub")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(sepaudio.MissingDependencyError, match=r"sepaudio\[hub\]"):
        cards._download("owner/name")
