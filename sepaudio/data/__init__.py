"""Datasets (items are dicts of tensors), corpus readers, on-the-fly mixing and mini corpora.

Item keys: separation ``mixture`` (T,), ``sources`` (S, T); extraction adds ``target`` (T,), ``enrollment`` (Te,),
``speaker``; classification ``audio`` (T,), ``label``.
"""
from .extraction import ExtractionList, LibriMixExtraction, WithIVectors, read_extraction_list
from .librimix import LibriMix, read_librimix_csv
from .mini_speech import make_mini_speech_corpus
from .mixing import OnTheFlyMixtures
from .registry import create_dataset, list_datasets, register_dataset
from . import classification, esc50, musan, smn_mini, urbansound8k  # noqa: F401  (registers them)
from .speakers import list_audio, scan_speakers
from .wsj0mix import Wsj0Mix, scan_wsj0mix

__all__ = ["LibriMix", "read_librimix_csv", "make_mini_speech_corpus", "OnTheFlyMixtures", "create_dataset",
           "list_datasets", "register_dataset", "list_audio", "scan_speakers", "ExtractionList",
           "LibriMixExtraction", "WithIVectors", "read_extraction_list", "Wsj0Mix", "scan_wsj0mix"]
