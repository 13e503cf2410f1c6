"""Callbacks a config can name (``trainer.callbacks: [{name: NAME, args: {...}}]``), and the ones every run uses.

Configs choose callbacks by name from :data:`CALLBACKS`: Lightning's own, and those an installed package registers
under the ``sepaudio.callbacks`` entry-point group (``NAME = package.module:Class``). A config never names a Python
object to import. From Python, ``sepaudio.train.train(config, callbacks=[...])`` takes callback objects.
"""
from __future__ import annotations

import contextlib
import os
from importlib.metadata import entry_points
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO

from ..errors import ConfigError
from ..fileio import atomic_path
from ..registry import Registry

__all__ = ["CALLBACKS", "ENTRY_POINT_GROUP", "callback_factory", "AtomicCheckpointIO"]

CALLBACKS = Registry("callback")
ENTRY_POINT_GROUP = "sepaudio.callbacks"
for _name, _cls in [("stochastic_weight_averaging", L.pytorch.callbacks.StochasticWeightAveraging),
                    ("gradient_accumulation", L.pytorch.callbacks.GradientAccumulationScheduler),
                    ("device_stats_monitor", L.pytorch.callbacks.DeviceStatsMonitor),
                    ("model_summary", L.pytorch.callbacks.ModelSummary),
                    ("timer", L.pytorch.callbacks.Timer)]:
    CALLBACKS.register(_name)(_cls)


def callback_factory(name: str):
    """The callback class registered as ``name`` here or by an installed package's entry point.

    Raises:
        ConfigError: no such name (listing the known ones).
    """
    if name in CALLBACKS:
        return CALLBACKS.get(name)
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        plugins = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
        raise ConfigError(f"trainer.callbacks: unknown callback {name!r}; known: "
                          f"{', '.join(CALLBACKS.names() + plugins)}")
    return found[0].load()


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file in their own folder and renamed into place: a full disk or a kill
    leaves the previous checkpoint, never a truncated one (Lightning's writer goes through a temporary folder that
    may be on another file system, and then copies)."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)
            with open(tmp, "rb") as handle, contextlib.suppress(OSError):
                os.fsync(handle.fileno())
