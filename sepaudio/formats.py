"""Model files of other toolkits, and the Hub layout :meth:`SepaudioModel.save_pretrained` writes, as sepaudio
records.

:func:`sepaudio.models.load_model` turns each into the record :meth:`SepaudioModel.serialize` returns, which
:func:`~sepaudio.models.model_from_record` rebuilds and checks like any sepaudio file:

- ``"torchaudio:CONVTASNET_BASE_LIBRI2MIX"`` (any torchaudio Conv-TasNet bundle by name): torchaudio builds its
  model (:func:`torchaudio_model`, fetching the weights once into ``torch.hub.get_dir()/torchaudio/models/``) and
  ``ConvTasNet.from_torchaudio`` converts it;
- an Asteroid model file (the dict Asteroid's ``BaseModel.serialize()`` writes: ``model_name``, ``model_args``,
  ``state_dict``, ``infos``), as a local ``.pth`` / ``.bin`` or a Hub repository holding ``pytorch_model.bin``
  (``JorisCos/ConvTasNet_Libri2Mix_sepclean_8k``): :func:`asteroid_record` makes its ``ConvTasNet`` a sepaudio
  ``ConvTasNet`` with the same outputs;
- a folder (or Hub repository) written by :func:`save_pretrained`: ``model.safetensors`` + ``config.json`` + the card
  (:func:`pretrained_record`).

Files are read without running code: ``torch.load(weights_only=True)`` (numpy scalars and torch's version string
allowed: Asteroid's files hold them) or safetensors. This module knows no model class (the models load through it).
"""
from __future__ import annotations

import json
import numbers
import os
from pathlib import Path
from typing import Any

import torch

from .cards import CONFIG_FILE, IVECTOR_WEIGHTS, MODEL_FILE, WEIGHTS_FILE, write_card
from .errors import ModelFileError, OutputError
from .fileio import atomic_path, write_text
from .modelfile import FORMAT_VERSION
from .optional import require

TORCHAUDIO = "torchaudio:"
#: Asteroid's published Conv-TasNets on the Hugging Face Hub (docs/zoo.md gives their data and scores)
ASTEROID_MODELS = (
    "JorisCos/ConvTasNet_Libri2Mix_sepclean_8k",
    "JorisCos/ConvTasNet_Libri2Mix_sepclean_16k",
    "JorisCos/ConvTasNet_Libri2Mix_sepnoisy_8k",
    "JorisCos/ConvTasNet_Libri2Mix_sepnoisy_16k",
    "JorisCos/ConvTasNet_Libri3Mix_sepclean_8k",
    "mpariente/ConvTasNet_WHAM_sepclean",
)
__all__ = ["TORCHAUDIO", "ASTEROID_MODELS", "torchaudio_bundles", "torchaudio_model", "read_torch_file",
           "is_asteroid", "asteroid_record", "save_pretrained", "read_safetensors", "pretrained_record"]


def torchaudio_bundles() -> list[str]:
    """The Conv-TasNet bundles of ``torchaudio.pipelines`` (``CONVTASNET_BASE_LIBRI2MIX``, ...)."""
    import torchaudio.pipelines as pipelines

    return sorted(name for name in dir(pipelines) if name.startswith("CONVTASNET_")
                  and isinstance(getattr(pipelines, name), pipelines.SourceSeparationBundle))


def torchaudio_model(name: str) -> tuple[torch.nn.Module, int]:
    """torchaudio's model of the bundle ``name`` (weights fetched once into torch.hub's cache) and its sample rate.

    Raises:
        ModelFileError: an unknown bundle, or weights that cannot be fetched or read (naming the cache file).
    """
    import torchaudio.pipelines as pipelines

    bundles = torchaudio_bundles()
    if name not in bundles:
        raise ModelFileError(f"{TORCHAUDIO}{name}: not a torchaudio Conv-TasNet bundle; known: "
                             f"{', '.join(TORCHAUDIO + b for b in bundles)}.")
    bundle = getattr(pipelines, name)
    cache = Path(torch.hub.get_dir()) / "torchaudio" / getattr(bundle, "_model_path", "models")
    try:
        return bundle.get_model(), bundle.sample_rate
    except Exception as err:  # no network, a damaged cache file, ...
        raise ModelFileError(f"{TORCHAUDIO}{name}: torchaudio could not fetch or read its weights ({cache}): "
                             f"{type(err).__name__}: {err}. Connect to the network once, or put the file there "
                             f"(TORCH_HOME moves the cache folder).") from err


def _safe_globals() -> list:
    """Classes beyond tensors and plain values that Asteroid's files hold, none of which runs code: numpy scalars
    of plain dtypes (under numpy 1 and 2 names) and ``torch.__version__`` (a ``str``)."""
    import numpy as np

    scalar = (np._core if hasattr(np, "_core") else np.core).multiarray.scalar
    kinds = {type(np.dtype(code)) for code in "?bhilqBHILQefdFD"}
    return [np.dtype, scalar, (scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar"),
            *kinds, torch.torch_version.TorchVersion]


def read_torch_file(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with the few safe classes Asteroid's files hold."""
    with torch.serialization.safe_globals(_safe_globals()):
        return torch.load(path, map_location="cpu", weights_only=True)


# ---------------------------------------------------------------------------------------------------- Asteroid
#: Asteroid ConvTasNet's defaults, for files that leave an argument out
_ASTEROID_DEFAULTS = {"n_blocks": 8, "n_repeats": 3, "bn_chan": 128, "hid_chan": 512, "skip_chan": 128,
                      "conv_kernel_size": 3, "norm_type": "gLN", "mask_act": "sigmoid", "in_chan": None,
                      "out_chan": None, "causal": False, "fb_name": "free", "kernel_size": 16, "n_filters": 512,
                      "stride": 8, "encoder_activation": None, "sample_rate": 8000}
#: filterbank arguments sepaudio builds at these values only
_ASTEROID_FIXED = {"min_low_hz": 50, "min_band_hz": 50, "is_pinv": False}
_FILTERBANKS = {"FreeFB": "free", "AnalyticFreeFB": "analytic_free", "ParamSincFB": "param_sinc", "STFTFB": "stft"}
#: Asteroid's norm names -> sepaudio's (Asteroid's cLN is channel-wise, its cgLN cumulative)
_NORMS = {"gLN": "gLN", "cLN": "cwLN", "cgLN": "cLN", "bN": "BN"}
_MASK_ACTS = ("sigmoid", "relu", "softmax")
_ENCODER_ACTS = {None: None, "linear": None, "relu": "relu"}
_BLOCK_KEYS = {"shared_block.0": "in_conv", "shared_block.1": "prelu1", "shared_block.2": "norm1",
               "shared_block.3": "depthwise", "shared_block.3.0": "depthwise", "shared_block.4": "prelu2",
               "shared_block.5": "norm2"}
_TOP_KEYS = {"masker.bottleneck.0": "masker.input_norm", "masker.bottleneck.1": "masker.bottleneck",
             "masker.mask_net.0": "masker.output_prelu", "masker.mask_net.1": "masker.output_conv"}
_PARAM_KEYS = {"gamma": "weight", "beta": "bias"}


def is_asteroid(record: Any) -> bool:
    """Whether ``record`` is what Asteroid's ``BaseModel.serialize()`` writes."""
    return isinstance(record, dict) and {"model_name", "model_args", "state_dict"} <= set(record)


def asteroid_record(record: dict, source: str | os.PathLike) -> dict:
    """The sepaudio record of an Asteroid ``ConvTasNet`` file's record: the same network as a sepaudio
    :class:`~sepaudio.models.ConvTasNet` (``framing="asteroid"``), giving the same outputs.

    Raises:
        ModelFileError: another Asteroid model, or a setting sepaudio's Conv-TasNet cannot express (naming it).
    """
    name, given = record["model_name"], record["model_args"]
    if name != "ConvTasNet":
        raise ModelFileError(f"{source}: holds an Asteroid {name}; sepaudio converts Asteroid's ConvTasNet only.")
    if not isinstance(given, dict) or not isinstance(record["state_dict"], dict):
        raise ModelFileError(f"{source}: an Asteroid model file whose model_args or state_dict is not a dict; the "
                             f"file is damaged.")
    if "n_src" not in given:
        raise ModelFileError(f"{source}: an Asteroid ConvTasNet file without n_src in its model_args; it is damaged.")
    args = {**_ASTEROID_DEFAULTS, **given}

    def refuse(setting: str, why: str):
        raise ModelFileError(f"{source}: Asteroid ConvTasNet with {setting}={args.get(setting)!r}: {why}; sepaudio's "
                             f"Conv-TasNet cannot give this model's outputs, so it is not converted.")

    known = set(_ASTEROID_DEFAULTS) | set(_ASTEROID_FIXED) | {"n_src"}
    for key in sorted(set(args) - known):
        refuse(key, "an argument sepaudio does not know")
    for key, value in _ASTEROID_FIXED.items():
        if key in args and args[key] != value:
            refuse(key, f"sepaudio builds it at {value!r} only")
    filterbank = _FILTERBANKS.get(args["fb_name"], args["fb_name"])
    if filterbank not in _FILTERBANKS.values():
        refuse("fb_name", f"sepaudio has the filterbanks {sorted(_FILTERBANKS)}")
    if args["norm_type"] not in _NORMS:
        refuse("norm_type", f"sepaudio has the norms {sorted(_NORMS)}")
    if args["mask_act"] not in _MASK_ACTS:
        refuse("mask_act", f"sepaudio has the mask activations {list(_MASK_ACTS)}")
    if args["encoder_activation"] not in _ENCODER_ACTS:
        refuse("encoder_activation", f"sepaudio has {list(_ENCODER_ACTS)}")
    if not args["skip_chan"]:
        refuse("skip_chan", "masks computed from the residual path (no skip connections)")
    if args["out_chan"] not in (None, args["in_chan"]):
        refuse("out_chan", f"masks of another size than the {args['in_chan']} encoder channels")
    rate = args["sample_rate"]
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or rate != int(rate) or rate <= 0:
        refuse("sample_rate", "not a whole number of samples per second")
    n_blocks, n_repeats = args["n_blocks"], args["n_repeats"]
    model_args = {
        "n_src": args["n_src"], "sample_rate": int(rate), "filterbank": filterbank, "n_filters": args["n_filters"],
        "filter_length": args["kernel_size"], "stride": args["stride"], "mask_act": args["mask_act"],
        "tcn": {"channels": args["bn_chan"], "hidden": args["hid_chan"], "skip_channels": args["skip_chan"],
                "kernel_size": args["conv_kernel_size"], "blocks": n_blocks, "repeats": n_repeats,
                "norm": _NORMS[args["norm_type"]], "causal": bool(args["causal"])},
        "encoder_activation": _ENCODER_ACTS[args["encoder_activation"]], "framing": "asteroid",
    }
    last = n_blocks * n_repeats - 1 if isinstance(n_blocks, int) and isinstance(n_repeats, int) else -1
    return {"sepaudio_format": FORMAT_VERSION, "model": "conv_tasnet", "model_args": model_args,
            "state_dict": _asteroid_weights(record["state_dict"], last),
            "versions": (record.get("infos") or {}).get("software_versions")}


def _asteroid_weights(state: dict, last_block: int) -> dict:
    """Asteroid ConvTasNet weight names -> sepaudio's. The last block's residual 1x1, whose output Asteroid
    computes and never uses, is left out; an unknown name is kept, so that loading names it."""
    out = {}
    for key, value in state.items():
        if key.startswith(("encoder.", "decoder.")):
            out[key] = value
            continue
        module, _, param = key.rpartition(".")
        if module.startswith("masker.TCN."):
            index, _, rest = module[len("masker.TCN."):].partition(".")
            if rest == "res_conv" and index == str(last_block):
                continue
            module = f"masker.tcn.blocks.{index}.{_BLOCK_KEYS.get(rest, rest)}"
        else:
            module = _TOP_KEYS.get(module, module)
        out[f"{module}.{_PARAM_KEYS.get(param, param)}"] = value
    return out


# ---------------------------------------------------------------------------------------- the save_pretrained layout
def save_pretrained(model: Any, folder: str | os.PathLike, config: dict | None = None) -> Path:
    """Write ``model`` as a Hugging Face Hub folder (see :meth:`SepaudioModel.save_pretrained`); ``model`` and its
    ``ivector_extractor`` are read by their attributes."""
    safetensors = require("safetensors.torch", "model.save_pretrained")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: is a file; save_pretrained writes a folder.")
    if (folder / MODEL_FILE).is_file():
        raise OutputError(f"{folder}: holds {MODEL_FILE} (a training run's model); save_pretrained into another "
                          f"folder, so that one folder holds one model.")
    record = model.serialize()
    extractor = getattr(model, "ivector_extractor", None) if record["model_args"].get("conditioning") == "ivector" \
        else None
    described = {"library_name": "sepaudio", "sepaudio_format": record["sepaudio_format"], "model": record["model"],
                 "sample_rate": record["summary"]["sample_rate"], "parameters": record["summary"]["parameters"],
                 "model_args": record["model_args"], "versions": record["versions"]}
    if extractor is not None:
        described["ivector_extractor"] = IVECTOR_WEIGHTS
    try:
        described = json.dumps(described, indent=2) + "\n"
    except (TypeError, ValueError) as err:
        raise OutputError(f"{folder}: the model's arguments are not plain values that config.json can hold ({err}); "
                          f"build the model from numbers, strings, lists and dicts.") from err
    folder.mkdir(parents=True, exist_ok=True)
    # model.state_dict(), not the record's CPU copies: weights the model shares are one tensor there, stored once
    weights = {k: v for k, v in model.state_dict().items() if not k.startswith("ivector_extractor.")}  # own file
    _write_safetensors(safetensors, folder / WEIGHTS_FILE, weights)
    if extractor is not None:
        setup = {"sample_rate": extractor.sample_rate, "n_components": extractor.ubm.n_components,
                 "rank": extractor.rank, "lda_dim": extractor.lda_dim, "features": extractor.features.to_dict()}
        _write_safetensors(safetensors, folder / IVECTOR_WEIGHTS, extractor.state_dict(),
                           {"sepaudio_ivector_config": json.dumps(setup)})
    else:
        (folder / IVECTOR_WEIGHTS).unlink(missing_ok=True)  # of an earlier save into this folder
    write_card(folder, model, config, ivector_file=IVECTOR_WEIGHTS if extractor is not None else None)
    write_text(folder / CONFIG_FILE, described)  # last: the layout is whole now
    return folder


def _write_safetensors(safetensors, path: Path, state: dict, metadata: dict | None = None) -> None:
    """Write a state dict atomically; a tensor that another name holds too (shared weights) is written once and
    named in the ``aliases`` metadata."""
    tensors, aliases, seen = {}, {}, {}
    for name, tensor in state.items():
        key = (tensor.data_ptr(), tensor.dtype, tuple(tensor.shape), tensor.stride())
        if tensor.numel() and key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = tensor.detach().cpu().clone(memory_format=torch.contiguous_format)
    with atomic_path(path) as tmp:
        safetensors.save_file(tensors, str(tmp), metadata={"format": "pt", "aliases": json.dumps(aliases),
                                                           **(metadata or {})})


def read_safetensors(path: Path) -> tuple[dict, dict]:
    """``(state dict, metadata)`` of a file :func:`_write_safetensors` wrote (aliases restored)."""
    safetensors = require("safetensors", f"loading {path.name}")
    try:
        with safetensors.safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {name: handle.get_tensor(name) for name in handle.keys()}
        for alias, name in json.loads(metadata.get("aliases") or "{}").items():
            state[alias] = state[name]
    except Exception as err:  # a truncated or foreign file, damaged metadata
        raise ModelFileError(f"{path}: not a readable safetensors file written by save_pretrained "
                             f"({type(err).__name__}: {err}); save the model again.") from err
    return state, metadata


def pretrained_record(path: str | os.PathLike) -> dict:
    """The sepaudio record of a ``model.safetensors`` and the ``config.json`` beside it.

    Raises:
        ModelFileError: a missing, unreadable or foreign ``config.json``, or an unreadable weights file.
    """
    path = Path(path)
    config_path = path.parent / CONFIG_FILE
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as err:
        raise ModelFileError(f"{config_path}: missing or not valid JSON ({err}); {path.name} needs the "
                             f"{CONFIG_FILE} that model.save_pretrained writes beside it.") from err
    if not isinstance(config, dict) or config.get("library_name") != "sepaudio":
        raise ModelFileError(f"{config_path}: not a sepaudio config (it needs 'library_name': 'sepaudio'); write the "
                             f"folder with model.save_pretrained.")
    state, _ = read_safetensors(path)
    return {"sepaudio_format": config.get("sepaudio_format"), "model": config.get("model"),
            "model_args": config.get("model_args"), "state_dict": state, "versions": config.get("versions")}
