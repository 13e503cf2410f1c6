"""Training losses, chosen by name in configs.

A loss is called as ``loss(output, batch) -> (value, logs)``: ``output`` is what the model returned, ``batch``
the dict the dataset gave (``mixture``, ``sources``, ``target``, ``label``, ...), ``logs`` named scalars to log.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from .metrics import pit, si_sdr

_LOSSES: dict[str, Callable[..., nn.Module]] = {}


def register_loss(name: str) -> Callable:
    """Register a loss class under ``name``."""

    def decorator(cls):
        _LOSSES[name] = cls
        return cls

    return decorator


def create_loss(name: str, **kwargs: Any) -> nn.Module:
    if name not in _LOSSES:
        raise KeyError(f"unknown loss {name!r}; known losses: {', '.join(sorted(_LOSSES))}")
    return _LOSSES[name](**kwargs)


@register_loss("si_sdr")
class NegSISDR(nn.Module):
    """Negative SI-SDR of one estimate against ``batch[target]``.

    Shape: output ``(batch, time)`` or ``(batch, 1, time)``; target ``(batch, time)``.
    """

    def __init__(self, target: str = "target"):
        super().__init__()
        self.target = target

    def forward(self, output: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict]:
        ref = batch[self.target]
        value = si_sdr(output.reshape(ref.shape), ref).mean()
        return -value, {"si_sdr": value.detach()}


@register_loss("pit_si_sdr")
class PITNegSISDR(nn.Module):
    """Permutation-invariant negative SI-SDR against ``batch[target]``.

    Shape: output and target ``(batch, n_src, time)``.
    """

    def __init__(self, target: str = "sources"):
        super().__init__()
        self.target = target

    def forward(self, output: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict]:
        best, _ = pit(si_sdr, output, batch[self.target])
        value = best.mean()
        return -value, {"si_sdr": value.detach()}
