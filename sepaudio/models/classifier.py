"""Audio classifiers: a front-end (part of the saved model) + a backbone, raw audio in, class scores out.

:class:`AudioClassifier` does the shared work (labels, shapes, SpecAugment in training); the
``spectrogram_classifier`` puts any registered 2-D backbone (``xception``, ``mobilenet_v1_*``,
``pydmobilenet_*``, ``resnet50``) behind a front-end from :mod:`sepaudio.features`.
:func:`load_timm_weights` copies the weights of a timm model of the same layout into a backbone.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..nn import SpecAugment
from ..features import make_frontend
from .base import SepaudioModel, as_batch, create_model, register_model


def resolve_labels(num_classes: int | None, labels: Sequence[str] | None) -> list[str]:
    """Class names from ``labels`` or ``num_classes`` (names ``"0"``, ``"1"``, ...); both given must agree."""
    if labels is None:
        if num_classes is None:
            raise ValueError("give num_classes or labels (the class names)")
        return [str(i) for i in range(num_classes)]
    labels = [str(label) for label in labels]
    if num_classes is not None and num_classes != len(labels):
        raise ValueError(f"num_classes={num_classes} but {len(labels)} labels were given: {labels}")
    return labels


class Backbone(SepaudioModel):
    """Base of the image-style backbones (timm style: every one takes ``num_classes`` and ``in_chans``).

    They run on feature maps, not audio, so they have no sample rate; wrap one in ``spectrogram_classifier``
    to take audio.

    Shape: ``(batch, in_chans, height, width)`` -> logits ``(batch, num_classes)``.
    """

    input_keys = ("features",)
    sample_rate = None


class AudioClassifier(SepaudioModel):
    """Front-end -> [SpecAugment while training] -> backbone -> logits.

    Args:
        frontend: raw audio ``(batch, time)`` -> features.
        backbone: features -> logits ``(batch, num_classes)``.
        labels: class names, index order.
        sample_rate: of the audio the model takes.
        spec_augment: keyword arguments of :class:`sepaudio.nn.SpecAugment` (masks applied in training
            only), or ``None``.

    Shape:
        audio ``(time)`` | ``(batch, time)`` | ``(batch, 1, time)`` -> logits ``(batch, num_classes)``
        (``(num_classes,)`` for an unbatched input).
    """

    input_keys = ("audio",)

    def __init__(self, frontend: nn.Module, backbone: nn.Module, labels: Sequence[str], sample_rate: int,
                 spec_augment: dict | None = None):
        super().__init__()
        self.frontend, self.backbone = frontend, backbone
        self.labels = list(labels)
        self.sample_rate = sample_rate
        self.spec_augment = SpecAugment(**spec_augment) if spec_augment else None

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        wav, unbatched = as_batch(audio)
        feats = self.frontend(wav)
        if self.training and self.spec_augment is not None:
            feats = self.spec_augment(feats)
        logits = self.backbone(feats)
        return logits.squeeze(0) if unbatched else logits


@register_model("spectrogram_classifier")
class SpectrogramClassifier(AudioClassifier):
    """A registered image backbone run on a spectrogram front-end.

    Args:
        backbone: registered backbone name (``mobilenet_v1_025``, ``xception``, ``pydmobilenet_add29``, ...).
        num_classes: class count (see :func:`resolve_labels`).
        labels: class names (see :func:`resolve_labels`).
        sample_rate: of the input audio.
        frontend: ``logmel`` | ``mfcc`` | ``stft_bands`` (see :mod:`sepaudio.features`).
        frontend_args: extra keyword arguments of the front-end.
        backbone_args: extra keyword arguments of the backbone.
        spec_augment: SpecAugment arguments (training only) or ``None``.

    Shape:
        audio ``(batch, time)`` -> logits ``(batch, num_classes)``.
    """

    def __init__(self, backbone: str, num_classes: int | None = None, labels: Sequence[str] | None = None,
                 sample_rate: int = 16000, frontend: str = "logmel", frontend_args: dict | None = None,
                 backbone_args: dict | None = None, spec_augment: dict | None = None):
        labels = resolve_labels(num_classes, labels)
        front = make_frontend(frontend, sample_rate, **(frontend_args or {}))
        net = create_model(backbone, num_classes=len(labels), in_chans=front.out_channels, **(backbone_args or {}))
        super().__init__(front, net, labels, sample_rate, spec_augment)

    def serialize(self) -> dict:
        """As :meth:`SepaudioModel.serialize`; a reload never downloads pretrained weights (they are in the file)."""
        record = super().serialize()
        backbone_args = dict(record["model_args"].get("backbone_args") or {})
        if backbone_args.get("pretrained"):
            backbone_args["pretrained"] = False
            record["model_args"] = {**record["model_args"], "backbone_args": backbone_args}
        return record


def load_timm_weights(model: nn.Module, source: nn.Module | dict) -> nn.Module:
    """Copy the weights of a timm model with the same layer layout into ``model``, in definition order.

    Every parameter and buffer is matched by position and must have the same shape, so a layout that differs
    anywhere raises instead of loading silently wrong weights.

    Args:
        model: a sepaudio backbone (``xception``, ``mobilenet_v1_*``).
        source: the timm model (e.g. ``timm.create_model("legacy_xception", pretrained=True)``) or its state dict.

    Returns:
        ``model``, with the weights loaded.

    Raises:
        ValueError: the two layouts differ (count or a shape), naming the first mismatch.
    """
    theirs = source.state_dict() if isinstance(source, nn.Module) else source
    ours = model.state_dict()
    if len(theirs) != len(ours):
        raise ValueError(f"layouts differ: {len(theirs)} tensors in the source, {len(ours)} in {type(model).__name__}")
    mapped = {}
    for (name, tensor), (their_name, value) in zip(ours.items(), theirs.items()):
        if tensor.shape != value.shape:
            raise ValueError(f"layouts differ at {name} {tuple(tensor.shape)} <- {their_name} {tuple(value.shape)}")
        mapped[name] = value
    model.load_state_dict(mapped)
    return model
