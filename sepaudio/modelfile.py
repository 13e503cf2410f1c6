"""A model file's description without torch: ``sepaudio info`` answers in a fraction of a second.

:meth:`sepaudio.models.SepaudioModel.serialize` stores a ``summary`` (parameter count and sample rate) beside the
name and arguments. A model file is a zip holding a pickle; :func:`read_summary` unpickles it with every torch
object (tensors, storages) replaced by a placeholder, so neither torch nor the weights are loaded.
"""
from __future__ import annotations

import os
import pickle
import zipfile

from .fileio import special_kind

#: version of the model record :meth:`~sepaudio.models.SepaudioModel.serialize` writes; 2: ConvTasNet / MiTAS /
#: TseNet take ``filter_length`` and a ``tcn`` dict (see ``SepaudioModel.upgrade_args``)
FORMAT_VERSION = 2

__all__ = ["FORMAT_VERSION", "read_summary"]

_SAFE = {("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "slice")}


class _Placeholder:
    """Stands for any torch object in the pickle: it takes any arguments and state, and holds nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs) -> "_Placeholder":
        return _Placeholder()

    def __setstate__(self, state) -> None:
        pass


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module == "torch" or module.startswith("torch."):
            return _Placeholder
        if (module, name) in _SAFE:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not read without torch")

    def persistent_load(self, pid) -> None:
        return None


def read_summary(path: str | os.PathLike) -> dict | None:
    """``{"model", "parameters", "sample_rate", "arguments"}`` of a model file (or training checkpoint) of the
    current format that stores a summary; ``None`` for anything else (older or foreign files, other objects in the
    pickle, unreadable files, anything but a regular file), which :func:`sepaudio.load_model` then reads and checks
    in full."""
    if special_kind(path) is not None:
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
            with archive.open(name) as stream:
                record = _Unpickler(stream).load()
    except Exception:  # not a zip, no pickle, a class this reader does not know: the full reader decides
        return None
    if isinstance(record, dict) and isinstance(record.get("sepaudio_model"), dict):  # a training checkpoint
        record = record["sepaudio_model"]
    if not isinstance(record, dict) or record.get("sepaudio_format") != FORMAT_VERSION:
        return None
    summary, name, args = record.get("summary"), record.get("model"), record.get("model_args")
    if not (isinstance(summary, dict) and isinstance(name, str) and isinstance(args, dict)
            and isinstance(summary.get("parameters"), int) and isinstance(summary.get("sample_rate"), int)):
        return None
    return {"model": name, "parameters": summary["parameters"], "sample_rate": summary["sample_rate"],
            "arguments": args}
