"""Datasets by name, so configs can choose them (``data: {name: ..., train: {...}, valid: {...}}``).

Items are dicts of tensors (see :mod:`sepaudio.data`).
"""
from __future__ import annotations

from ..registry import Registry

DATASETS = Registry("dataset")
register_dataset = DATASETS.register
create_dataset = DATASETS.create
list_datasets = DATASETS.names
