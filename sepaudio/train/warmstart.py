"""Extraction that starts from separation: a TseNet's encoder, TCN and decoder taken from a trained blind separator
(Conv-TasNet or MiTAS of the same size), named by ``model.init_from`` in the config.

What the separator lacks, the speaker branch (``speaker_net``) and the fusion layers, keeps its fresh initialisation.
The separator's mask layer gives one mask per source; the extractor takes the first source's (the conditioning
then decides whose voice it is). With ``fusion: concat`` a fused block's input layer has the speaker vector's
inputs beside the separator's: those start at zero, so the warm-started extractor first computes what the
separator's first output did.
"""
from __future__ import annotations

import os

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["init_from_separator", "NEW_PREFIXES", "MASK_PREFIX"]

#: the extractor's parts a blind separator does not have (and its confidence threshold, fitted after training)
NEW_PREFIXES = ("speaker_net.", "classifier.", "masker.tcn.fusions.", "confidence_threshold")
#: the mask output layer: ``n_src`` stacked masks in the separator, one in the extractor
MASK_PREFIX = "masker.output_conv."


def init_from_separator(model: nn.Module, path: str | os.PathLike) -> list[str]:
    """Copy a trained blind separator's weights into ``model`` (a TseNet) in place.

    Args:
        model: the extractor to initialise.
        path: a blind separator file (``sepaudio train`` of conf_blind.yml writes one).

    Returns:
        The names of the tensors copied.

    Raises:
        ModelFileError: an unreadable file, or a model that is not a blind separator.
        ConfigError: tensors of different shapes, or tensors only one of the two has, beyond the speaker branch
            and the fusion layers (naming them, with both shapes).
    """
    from ..separate import load_separator

    source = load_separator(path)
    theirs, ours = source.state_dict(), model.state_dict()
    new = {k: v.clone() for k, v in ours.items()}
    problems = []
    for name, tensor in theirs.items():
        if name not in ours:
            problems.append(f"{name} {tuple(tensor.shape)} (the extractor has none)")
            continue
        if name.startswith(MASK_PREFIX) and tensor.shape[0] % ours[name].shape[0] == 0 \
                and tensor.shape[1:] == ours[name].shape[1:]:
            tensor = tensor[:ours[name].shape[0]]  # the first source's mask
        if name.startswith("masker.tcn.") and tensor.dim() == ours[name].dim() >= 2 \
                and tensor.shape[0] == ours[name].shape[0] and tensor.shape[2:] == ours[name].shape[2:] \
                and tensor.shape[1] < ours[name].shape[1]:  # concatenation fusion: the speaker inputs start at 0
            tensor = torch.cat([tensor, tensor.new_zeros(tensor.shape[0], ours[name].shape[1] - tensor.shape[1],
                                                         *tensor.shape[2:])], 1)
        if tensor.shape != ours[name].shape:
            problems.append(f"{name} {tuple(tensor.shape)} vs {tuple(ours[name].shape)}")
            continue
        new[name] = tensor
    missing = [k for k in ours if k not in theirs and not k.startswith(NEW_PREFIXES)]
    problems += [f"{k} {tuple(ours[k].shape)} (the separator has none)" for k in missing]
    if problems:
        shown = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more" if len(problems) > 6 else "")
        raise ConfigError(f"model.init_from: {path} ({source.registered_name}) does not fit this "
                          f"{getattr(model, 'registered_name', type(model).__name__)}: {shown}. Give a separator "
                          f"of the same n_filters, filter_length and tcn (as in conf_blind.yml).")
    with torch.no_grad():
        model.load_state_dict(new)
    return list(theirs)
