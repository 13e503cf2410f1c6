"""``sepaudio.load_model`` and ``sepaudio.list_pretrained``: any model in one line, pretrained ones included.

:func:`sepaudio.models.load_model` rebuilds a model from every source (sepaudio's files, folders and Hub ids,
``save_pretrained`` folders, torchaudio's Conv-TasNet bundles, Asteroid's ConvTasNet files and Hub ids; see
:mod:`sepaudio.formats`). :func:`load_model` here adds what lies above the models: an i-vector TseNet whose folder
holds its i-vector extractor gets it as ``model.ivector_extractor``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .cards import IVECTOR_FILE, IVECTOR_WEIGHTS, resolve_model_path
from .errors import ModelFileError
from .formats import ASTEROID_MODELS, TORCHAUDIO, read_safetensors, torchaudio_bundles
from .models import SepaudioModel, TseNet
from .models import load_model as _load_model
from .speaker import IVectorExtractor, load_ivector_extractor

__all__ = ["load_model", "list_pretrained", "attach_ivector_extractor"]


def list_pretrained() -> list[str]:
    """Names of the pretrained models :func:`load_model` takes (torchaudio bundles, then Asteroid's Hub ids);
    docs/zoo.md gives the training data and published score of each."""
    return [TORCHAUDIO + name for name in torchaudio_bundles()] + list(ASTEROID_MODELS)


def load_model(source: str | os.PathLike, expected: type | tuple[type, ...] | None = None) -> SepaudioModel:
    """Rebuild any model, ready for inference (eval mode, on the CPU).

    Args:
        source: a model file (``sepaudio train``'s ``model.pt`` or checkpoint, an Asteroid ``.pth`` / ``.bin``); a
            model folder (``model.pt`` + card, ``save_pretrained``'s ``model.safetensors`` + ``config.json``, or an
            Asteroid ``pytorch_model.bin``); a Hugging Face Hub id ``owner/name`` holding one (downloaded once;
            ``HF_HUB_OFFLINE=1`` reads the cache only); or a pretrained name of :func:`list_pretrained`, such as
            ``"torchaudio:CONVTASNET_BASE_LIBRI2MIX"`` or ``"JorisCos/ConvTasNet_Libri2Mix_sepclean_8k"``.
        expected: class(es) the caller can use; another kind raises :class:`ModelFileError`.

    Returns:
        The model; an i-vector TseNet whose folder holds its extractor (``ivector.safetensors`` or ``ivector.pt``)
        has it as ``model.ivector_extractor`` (see :func:`attach_ivector_extractor`).

    Raises:
        ModelFileError: see :func:`sepaudio.models.load_model`; also an extractor that does not fit the model.
    """
    if str(source).startswith(TORCHAUDIO):
        return _load_model(source, expected)
    path = resolve_model_path(source)  # once: a Hub id is not looked up twice
    model = _load_model(path, expected)
    attach_ivector_extractor(model, path.parent)
    return model


def attach_ivector_extractor(model: Any, folder: Path) -> None:
    """Set ``model.ivector_extractor`` of an i-vector TseNet whose folder holds its extractor
    (``ivector.safetensors`` of ``save_pretrained``, or ``ivector.pt``). It is a plain attribute, not a submodule:
    the model's weights and ``.to(device)`` leave it alone.

    Raises:
        ModelFileError: an unreadable extractor, or one whose dimension or rate does not fit the model.
    """
    if not isinstance(model, TseNet) or model.conditioning != "ivector":
        return
    path = folder / IVECTOR_WEIGHTS
    if path.is_file():
        state, metadata = read_safetensors(path)
        try:
            extractor = IVectorExtractor(**json.loads(metadata["sepaudio_ivector_config"]))
            extractor.load_state_dict(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise ModelFileError(f"{path}: an i-vector extractor with wrong or missing fields ({err}); save the "
                                 f"model again.") from err
        extractor.eval()
    elif (folder / IVECTOR_FILE).is_file():
        path = folder / IVECTOR_FILE
        extractor = load_ivector_extractor(path)
    else:
        return
    wanted = model.model_args.get("ivector_dim")
    if extractor.dim != wanted or extractor.sample_rate != model.sample_rate:
        raise ModelFileError(f"{path}: gives {extractor.dim}-dim i-vectors at {extractor.sample_rate} Hz, but the "
                             f"model beside it takes {wanted}-dim i-vectors at {model.sample_rate} Hz; put the "
                             f"extractor the model was trained with there.")
    object.__setattr__(model, "ivector_extractor", extractor)  # not a submodule: the model's weights stay its own
