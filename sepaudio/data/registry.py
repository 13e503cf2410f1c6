"""Datasets by name, so configs can choose them (``data: {name: ..., train: {...}, valid: {...}}``)."""
from __future__ import annotations

from typing import Any, Callable

from torch.utils.data import Dataset

_DATASETS: dict[str, Callable[..., Dataset]] = {}


def register_dataset(name: str) -> Callable:
    """Register a dataset class or factory under ``name``. Items are dicts of tensors (see ``sepaudio.data``)."""

    def decorator(obj):
        if name in _DATASETS and _DATASETS[name] is not obj:
            raise ValueError(f"dataset name {name!r} is registered twice")
        _DATASETS[name] = obj
        return obj

    return decorator


def create_dataset(name: str, **kwargs: Any) -> Dataset:
    """Build a registered dataset by name."""
    if name not in _DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(_DATASETS))}")
    return _DATASETS[name](**kwargs)


def list_datasets() -> list[str]:
    return sorted(_DATASETS)
