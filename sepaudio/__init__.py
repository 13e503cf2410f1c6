"""sepaudio: audio source separation, target speaker extraction and classification with depthwise separable
convolutions.

Importing the package is cheap: the models (and torch) load on first use of :func:`load_model`,
:func:`create_model`, :func:`list_models` or :func:`list_pretrained`.
"""
__version__ = "0.1.0"

from .errors import (AudioError, ConfigError, DatasetError, MissingDependencyError, ModelFileError,  # noqa: E402
                     OutputError, SepaudioError)

_LAZY = {"create_model", "list_models"}
_LAZY_FROM = {"Prediction": "models.classifier", "Segment": "timeline"}  # name -> submodule

__all__ = ["__version__", "load_model", "create_model", "list_models", "list_pretrained", "SepaudioError",
           "AudioError", "ModelFileError", "DatasetError", "ConfigError", "OutputError", "MissingDependencyError",
           "Prediction", "Segment"]


def __getattr__(name: str):
    if name in ("load_model", "list_pretrained"):
        from . import pretrained

        return getattr(pretrained, name)
    if name in _LAZY:
        from . import models

        return getattr(models, name)
    if name in _LAZY_FROM:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY_FROM[name]}", __name__), name)
    raise AttributeError(f"module 'sepaudio' has no attribute {name!r}")
