"""Optional dependencies: each feature beyond inference imports its package through :func:`require`, so a missing
one is a :class:`~sepaudio.errors.MissingDependencyError` naming the extra to install, not a bare ImportError."""
from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

#: the pip extra that brings each optional module
EXTRAS = {
    "lightning": "train", "torchmetrics": "train",
    "pesq": "eval", "pystoi": "eval",
    "onnx": "export", "onnxruntime": "export",
    "huggingface_hub": "hub", "safetensors": "hub",
    "timm": "timm",
}


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature`` (a few words: "ONNX export").

    Raises:
        MissingDependencyError: ``module`` is not installed; the message names the extra that brings it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module.split(".")[0]
        if err.name is not None and err.name.split(".")[0] != top:
            raise  # the package is there but one of its own imports failed: show that
        extra = EXTRAS.get(top)
        how = f"pip install 'sepaudio[{extra}]'" if extra else f"pip install {top}"
        raise MissingDependencyError(f"{feature} needs the {top!r} package, which is not installed: {how}") from err
