"""Loading models: :func:`load_model` rebuilds any saved model (sepaudio files and checkpoints, model folders,
Hub ids, torchaudio bundles, Asteroid files) through :func:`model_from_record`, which checks the record first."""
from __future__ import annotations

import os
import zipfile
from typing import Any, Callable

import torch

from .. import formats
from ..audio import MAX_SAMPLE_RATE
from ..cards import resolve_model_path
from ..errors import ModelFileError
from ..fileio import check_readable
from ..modelfile import FORMAT_VERSION
from .base import MODELS, SepaudioModel, list_models

__all__ = ["load_model", "model_from_record", "unreadable_reason"]


def load_model(path: str | os.PathLike, expected: type | tuple[type, ...] | None = None) -> SepaudioModel:
    """Rebuild a model saved by :meth:`SepaudioModel.save` / :meth:`SepaudioModel.save_pretrained`, a
    ``sepaudio train`` checkpoint, or a pretrained model of another toolkit (see :mod:`sepaudio.formats`).
    :func:`sepaudio.load_model` calls this and also gives an i-vector TseNet the extractor of its folder.

    Args:
        path: the model file; a model folder (``model.pt`` + ``README.md`` card, or ``save_pretrained``'s
            ``model.safetensors`` + ``config.json``); a Hugging Face Hub repository id ``owner/name`` holding one
            (see :func:`sepaudio.cards.resolve_model_path`); ``"torchaudio:CONVTASNET_BASE_LIBRI2MIX"`` (a
            torchaudio Conv-TasNet bundle); or an Asteroid Conv-TasNet file, folder or Hub id (``pytorch_model.bin``,
            e.g. ``"JorisCos/ConvTasNet_Libri2Mix_sepclean_8k"``).
        expected: class(es) the caller can use; another kind raises :class:`ModelFileError`.

    Raises:
        ModelFileError: missing, corrupt or foreign file, a folder or repository without a model and a valid card,
            unknown model name or torchaudio bundle, weights that cannot be fetched, an Asteroid setting sepaudio
            cannot express, or not of the ``expected`` kind.
    """
    if str(path).startswith(formats.TORCHAUDIO):
        reference, rate = formats.torchaudio_model(str(path)[len(formats.TORCHAUDIO):])
        record = MODELS.get("conv_tasnet").from_torchaudio(reference, sample_rate=rate).serialize()
        return model_from_record(record, path, expected)
    path = resolve_model_path(path)
    check_readable(path, ModelFileError)
    if path.suffix == ".safetensors":
        record = formats.pretrained_record(path)
    else:
        _check_archive(path)
        try:
            record = formats.read_torch_file(path)
        except Exception as err:  # torch raises many types for truncated / foreign files
            raise ModelFileError(f"{path}: not a readable model file: {unreadable_reason(err)}") from err
    if isinstance(record, dict) and isinstance(record.get("sepaudio_model"), dict) and \
            isinstance(record.get("state_dict"), dict):
        # A training checkpoint: the model's record without weights, and the training module's state dict.
        weights = {k[len("model."):]: v for k, v in record["state_dict"].items() if k.startswith("model.")}
        record = {**record["sepaudio_model"], "state_dict": weights}
    elif formats.is_asteroid(record):
        record = formats.asteroid_record(record, path)
    return model_from_record(record, path, expected)


def _check_archive(path: str | os.PathLike) -> None:
    """Refuse a zip archive that is not a torch file (a torch file is a zip with a ``<name>/data.pkl`` in it)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return  # not a whole zip: torch's reader says why
    if not any(n.count("/") == 1 and n.endswith("/data.pkl") for n in names):
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise ModelFileError(f"{path}: is not a sepaudio model file (a zip archive of {len(names)} file(s): "
                             f"{shown or 'empty'}; no torch data.pkl in it); give a file written by 'sepaudio train' "
                             f"or model.save().")


def unreadable_reason(err: Exception) -> str:
    """Why ``torch.load(..., weights_only=True)`` failed, in one line."""
    if "Weights only load failed" in str(err):
        return ("it is damaged, or holds Python objects beyond tensors and plain values (which could run code when "
                "loaded, so sepaudio refuses them); give a file written by sepaudio.")
    lines = str(err).strip().splitlines()
    return f"{lines[0] if lines else type(err).__name__} (truncated, or not written by torch?)"


def model_from_record(record: Any, source: str | os.PathLike, expected=None) -> SepaudioModel:
    """Rebuild a model from the record :meth:`SepaudioModel.serialize` returns."""
    if not isinstance(record, dict) or "sepaudio_format" not in record:
        keys = ", ".join(sorted(map(str, record))[:8]) if isinstance(record, dict) else type(record).__name__
        raise ModelFileError(f"{source}: not a sepaudio model file (found: {keys}); give a file written by "
                             f"'sepaudio train' or model.save().")
    fields = {"sepaudio_format": int, "model": str, "model_args": dict, "state_dict": dict}
    wrong = [k for k, kind in fields.items() if not isinstance(record.get(k), kind) or isinstance(record.get(k), bool)]
    if wrong:
        raise ModelFileError(f"{source}: a sepaudio model record with missing or wrong field(s) {', '.join(wrong)}; "
                             f"the file is damaged or was not written by sepaudio: save the model again.")
    if record["sepaudio_format"] > FORMAT_VERSION:
        raise ModelFileError(f"{source}: written by a newer sepaudio ({record.get('versions')}); upgrade sepaudio.")
    name = record["model"]
    if name not in MODELS:
        raise ModelFileError(f"{source}: holds an unknown model {name!r}; known: {', '.join(list_models())}.")
    factory, args = MODELS.get(name), record["model_args"]
    try:
        if record["sepaudio_format"] < FORMAT_VERSION and hasattr(factory, "upgrade_args"):
            args = factory.upgrade_args(dict(args), record["sepaudio_format"])
        _check_size(factory, args, record["state_dict"], source, name)
        model = factory(**args)
    except ModelFileError:
        raise
    except (TypeError, ValueError, KeyError, RuntimeError) as err:
        raise ModelFileError(f"{source}: the stored arguments of its {name} model do not build one ({err}); the file "
                             f"is damaged or was written by another version: save the model again.") from err
    if expected is not None and not isinstance(model, expected):
        wanted = expected if isinstance(expected, tuple) else (expected,)
        fits = [n for n in list_models() if isinstance(MODELS.get(n), type) and issubclass(MODELS.get(n), wanted)]
        fits = fits or [getattr(kind, "registered_name", kind.__name__) for kind in wanted]
        raise ModelFileError(f"{source}: holds a {name} model, but this needs "
                             f"{fits[0] if len(fits) == 1 else 'one of: ' + ', '.join(fits)}.")
    rate = getattr(model, "sample_rate", None)
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 1 <= rate <= MAX_SAMPLE_RATE:
        raise ModelFileError(f"{source}: its {name} model says it runs at sample_rate {rate!r}, which no model does "
                             f"(1-{MAX_SAMPLE_RATE} Hz); the file is damaged: save the model again.")
    try:
        model.load_state_dict(record["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as err:
        raise ModelFileError(f"{source}: weights do not fit a {name} with the stored arguments: "
                             f"{' '.join(str(err).split())[:400]}") from err
    return model.eval()


def _check_size(factory: Callable, args: dict, weights: dict, source, name: str) -> None:
    """Refuse stored arguments that describe a model far larger than the weights stored with them (a damaged or
    hostile file whose arguments would size a huge allocation), counting parameters on the meta device first."""
    stored = sum(v.numel() for v in weights.values() if isinstance(v, torch.Tensor))
    try:
        with torch.device("meta"):
            wanted = sum(t.numel() for t in factory(**args).state_dict().values())
    except Exception:  # noqa: BLE001 - a constructor that cannot run on meta: built for real below, as before
        return
    if wanted > 2 * stored + 1_000_000:
        raise ModelFileError(f"{source}: its {name} arguments describe {wanted:,} weights but the file holds {stored:,}; "
                             f"the file is damaged or was not written by sepaudio: save the model again.")
