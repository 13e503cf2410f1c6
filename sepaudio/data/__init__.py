"""Datasets (items are dicts of tensors), corpus readers, on-the-fly mixing and mini corpora.

Item keys: separation ``mixture`` (T,), ``sources`` (S, T); extraction adds ``target`` (T,), ``enrollment`` (Te,),
``speaker``; classification ``audio`` (T,), ``label``.
"""
from .librimix import LibriMix, read_librimix_csv
from .mini_speech import make_mini_speech_corpus
from .mixing import OnTheFlyMixtures
from .registry import create_dataset, list_datasets, register_dataset
from .speakers import list_audio, scan_speakers

__all__ = ["LibriMix", "read_librimix_csv", "make_mini_speech_corpus", "OnTheFlyMixtures", "create_dataset",
           "list_datasets", "register_dataset", "list_audio", "scan_speakers"]
