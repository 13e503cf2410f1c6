"""Audio classifiers: a front-end (part of the saved model) + a backbone, raw audio in, class scores out.

:class:`AudioClassifier` does the shared work (labels, shapes, SpecAugment in training); the
``spectrogram_classifier`` puts any registered 2-D backbone (``xception``, ``mobilenet_v1_*``,
``pydmobilenet_*``, ``resnet50``) behind a front-end from :mod:`sepaudio.features`.
:func:`load_timm_weights` copies the weights of a timm model of the same layout into a backbone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..arrays import TensorReader, to_model
from ..errors import ConfigError
from ..features import make_frontend, window_features
from ..nn import SpecAugment
from ..timeline import Segment, frames_to_segments
from .base import SepaudioModel, as_batch, create_model, eval_mode, register_model

SILENCE = "silence"


@dataclass
class Prediction:
    """The class of one clip (:meth:`AudioClassifier.predict`).

    Attributes:
        label: the class decided: the most probable, or with calibrated thresholds the largest probability
            relative to its class's threshold (see :meth:`AudioClassifier.decide`).
        probabilities: label -> probability, in the order of the decision (the first ``top_k`` with ``top_k``).
    """

    label: str
    probabilities: dict[str, float]


@dataclass
class FrameResults:
    """Per-frame output of :func:`frame_posteriors` (one frame every ``hop`` seconds).

    Shape: probs ``(frames, classes)``; energy_db (RMS in dBFS) and peak (largest absolute sample) ``(frames,)``.
    """

    probs: np.ndarray
    energy_db: np.ndarray
    peak: np.ndarray
    hop: float
    duration: float  # of the recording, in seconds


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

    Attributes:
        class_thresholds: per-class decision thresholds ``(num_classes,)``, saved with the weights: the decision is
            the class of largest ``probability / threshold`` (all ones, the default: the most probable class);
            ``sepaudio evaluate --calibrate`` fits them on validation data (:meth:`decide`).
    """

    input_keys = ("audio",)

    def __init__(self, frontend: nn.Module, backbone: nn.Module, labels: Sequence[str], sample_rate: int,
                 spec_augment: dict | None = None):
        super().__init__()
        self.frontend, self.backbone = frontend, backbone
        self.labels = list(labels)
        self.sample_rate = sample_rate
        self.spec_augment = SpecAugment(**spec_augment) if spec_augment else None
        self.register_buffer("class_thresholds", torch.ones(len(self.labels)))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # model files from before calibration existed hold no thresholds: the plain argmax
        state_dict.setdefault(prefix + "class_thresholds", torch.ones(len(self.labels)))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def decide(self, probs: torch.Tensor) -> torch.Tensor:
        """Class indices of class probabilities: the largest ``probs / class_thresholds``.

        Shape: ``(..., num_classes)`` -> ``(...)``.
        """
        return (probs / self.class_thresholds.to(probs.device, probs.dtype)).argmax(-1)

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

    def predict(self, audio: Any, sample_rate: int | None = None, top_k: int | None = None, *,
                window: float = 10.0) -> Prediction | list[Prediction]:
        """The class of a clip given as users hold it: the mean of the softmax over consecutive ``window``-second
        blocks, weighted by block length (as ``sepaudio classify``), in eval mode without gradients.

        Args:
            audio: an audio file path, or a numpy array / tensor of any float dtype (or integer PCM) ``(time)``,
                ``(channels, time)`` or ``(batch, channels, time)``; mixed down to mono, resampled to the model's
                rate with a note.
            sample_rate: of an array or tensor (``None``: the model's); a path knows its own.
            top_k: keep the ``top_k`` most probable classes in ``probabilities`` (``None``: all).
            window: block length in seconds.

        Returns:
            A :class:`Prediction`, or a list of them for a batch.

        Raises:
            AudioError: see :func:`sepaudio.arrays.to_model`.
            ConfigError: ``top_k`` not in ``[1, classes]``, or a window shorter than the front-end's frame.
        """
        if top_k is not None and not 1 <= top_k <= self.num_classes:
            raise ConfigError(f"top_k={top_k}: give 1 to {self.num_classes} (the model's classes) or None for all.")
        check_window(self, window, "window")
        wav, restore = to_model(audio, self.sample_rate, sample_rate)
        with eval_mode(self), torch.inference_mode():
            probs = [clip_probabilities(self, TensorReader(item), window) for item in wav]
        predictions = []
        for p in probs:
            indices = (p / self.class_thresholds.cpu()).topk(top_k or self.num_classes).indices.tolist()
            ranked = {self.labels[i]: float(p[i]) for i in indices}
            predictions.append(Prediction(next(iter(ranked)), ranked))
        return predictions[0] if restore.unbatched else predictions

    def segment(self, audio: Any, sample_rate: int | None = None, window: float = 1.0, hop: float = 0.1,
                smooth: float = 2.0, silence_db: float | None = -55.0, block_seconds: float = 60.0,
                batch_size: int = 64) -> list[Segment] | list[list[Segment]]:
        """The timeline of a recording given as users hold it (as ``sepaudio segment``; see :func:`timeline`), in
        eval mode without gradients.

        Args:
            audio, sample_rate: as :meth:`predict` takes them.
            window, hop, smooth, silence_db, block_seconds, batch_size: see :func:`timeline`.

        Returns:
            ``[Segment(label, start, stop), ...]`` in seconds, or one such list per item of a batch.

        Raises:
            AudioError: see :func:`sepaudio.arrays.to_model`.
            ConfigError: see :func:`check_timeline_options`.
        """
        check_timeline_options(self, window, hop, smooth, block_seconds)
        wav, restore = to_model(audio, self.sample_rate, sample_rate)
        with eval_mode(self), torch.inference_mode():
            timelines = [timeline(self, TensorReader(item), window, hop, smooth, silence_db, block_seconds,
                                  batch_size)[0] for item in wav]
        return timelines[0] if restore.unbatched else timelines


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


def min_samples(model: AudioClassifier) -> int:
    """The shortest input ``model`` takes: its front-end's STFT pads half a window on each side by reflection."""
    import torchaudio.transforms as T

    return max((m.n_fft // 2 + 1 for m in model.frontend.modules() if isinstance(m, T.Spectrogram)), default=1)


def check_window(model: AudioClassifier, window: float, option: str = "--window") -> None:
    """Refuse a window that is not finite or shorter than the model's front-end frame (``option`` names it).

    Raises:
        ConfigError: such a window.
    """
    shortest = min_samples(model)
    if not math.isfinite(window) or round(window * model.sample_rate) < shortest:
        raise ConfigError(f"{option} {window}: give at least {shortest / model.sample_rate:.3f} s, the frame of the "
                          f"model's front-end.")


def clip_probabilities(model: AudioClassifier, reader, window: float = 10.0) -> torch.Tensor:
    """Class probabilities of a whole recording: the mean of the softmax over consecutive ``window``-second blocks,
    weighted by block length (a recording shorter than a window is one block; a block shorter than the front-end's
    frame is zero-padded to it). Call it without gradients, in eval mode.

    Args:
        model: the classifier.
        reader: spans of the recording at the model's rate: ``length`` and ``read(start, end)``
            (:class:`sepaudio.inference.ChunkReader` of a file, :class:`sepaudio.arrays.TensorReader` of a tensor).
        window: block length in seconds.

    Shape: returns ``(num_classes,)`` on the CPU.
    """
    device = next(model.parameters()).device
    step, shortest = int(round(window * model.sample_rate)), min_samples(model)
    probs, weights = [], []
    for start in range(0, reader.length, step):
        stop = min(start + step, reader.length)
        block = reader.read(start, max(stop, start + shortest)).to(device)
        probs.append(torch.softmax(model(block.unsqueeze(0)), -1)[0].float().cpu())
        weights.append(stop - start)
    w = torch.tensor(weights, dtype=torch.float32)
    return (torch.stack(probs) * (w / w.sum()).unsqueeze(1)).sum(0)


def frame_posteriors(model: AudioClassifier, reader, window: float = 1.0, hop: float = 0.1,
                     block_seconds: float = 60.0, batch_size: int = 64) -> FrameResults:
    """Class probabilities of a ``window``-second window centred on every ``hop``-second frame of a recording.

    The recording is read one block of ``block_seconds`` (plus a window of context) at a time through ``reader``
    (as :func:`clip_probabilities` takes it); the result does not depend on the block length. The front-end runs
    once over each block (:func:`sepaudio.features.window_features`: the same features as framing every window
    alone), the backbone on every window. Call it without gradients, in eval mode.
    """
    rate, device = model.sample_rate, next(model.parameters()).device
    hop_n, win_n = int(round(hop * rate)), int(round(window * rate))
    n_frames = max(1, math.ceil(reader.length / hop_n))
    per_block = max(1, int(block_seconds / hop))
    lead = win_n // 2 - hop_n // 2  # samples of context before a frame's start
    # The results are allocated once: small arrays kept from every block would pin the allocator's heap between
    # the blocks' large transient buffers, and memory would grow with the recording's length.
    results = FrameResults(np.empty((n_frames, model.num_classes), np.float32), np.empty(n_frames, np.float32),
                           np.empty(n_frames, np.float32), hop, reader.length / rate)
    for f0 in range(0, n_frames, per_block):
        f1 = min(n_frames, f0 + per_block)
        span = reader.read(f0 * hop_n - lead, (f1 - 1) * hop_n - lead + win_n)
        features = window_features(model.frontend, span.to(device), win_n, hop_n)  # (f1 - f0, *dims, frames)
        for b in range(0, f1 - f0, batch_size):
            e = min(b + batch_size, f1 - f0)
            results.probs[f0 + b:f0 + e] = torch.softmax(model.backbone(features[b:e]), -1).float().cpu().numpy()
        frames = span[lead:lead + (f1 - f0) * hop_n].reshape(f1 - f0, hop_n).float().cpu()
        results.energy_db[f0:f1] = (10 * torch.log10(frames.pow(2).mean(1) + 1e-12)).numpy()
        results.peak[f0:f1] = frames.abs().amax(1).numpy()
    return results


def smooth_labels(results: FrameResults, labels: Sequence[str], smooth: float = 2.0,
                  silence_db: float | None = -55.0, thresholds: Sequence[float] | None = None) -> list[str]:
    """Frame labels: the argmax of median-filtered class probabilities, each divided by its class's decision
    threshold; smoothed low-energy frames are silence.

    Args:
        results: per-frame probabilities and energies.
        labels: class names of the probability columns.
        smooth: median filter length in seconds (the paper uses 200 frames of 10 ms = 2 s); 0 turns it off.
        silence_db: frames with RMS below this many dBFS are silence; ``None`` turns silence off.
        thresholds: per-class thresholds (a classifier's ``class_thresholds``); ``None``: all equal.
    """
    from scipy.ndimage import median_filter

    size = max(1, int(round(smooth / results.hop)) | 1)
    probs = median_filter(results.probs, size=(size, 1), mode="nearest")
    if thresholds is not None:
        probs = probs / np.asarray(thresholds, dtype=np.float32)
    names = np.asarray(labels, dtype=object)[probs.argmax(1)]
    if silence_db is not None:
        quiet = median_filter((results.energy_db < silence_db).astype(np.uint8), size=size, mode="nearest")
        names[quiet.astype(bool)] = SILENCE
    return names.tolist()


def check_timeline_options(model: AudioClassifier, window: float, hop: float, smooth: float,
                           block_seconds: float) -> None:
    """Refuse timeline options :func:`timeline` cannot use (before any audio is read).

    Raises:
        ConfigError: ``hop`` not in ``(0, window]``, a window or block that is not positive and finite, a negative
            ``smooth``.
    """
    if not 0 < hop <= window < math.inf:
        raise ConfigError(f"--hop {hop} / --window {window}: the hop must be positive and at most the window.")
    check_window(model, window)
    if not (0 < block_seconds < math.inf and 0 <= smooth < math.inf and int(round(hop * model.sample_rate)) > 0):
        raise ConfigError(f"--block {block_seconds} / --smooth {smooth} / --hop {hop}: give a positive block, a "
                          f"smoothing length of 0 or more, and a hop of at least one sample.")


def timeline(model: AudioClassifier, reader, window: float = 1.0, hop: float = 0.1, smooth: float = 2.0,
             silence_db: float | None = -55.0, block_seconds: float = 60.0,
             batch_size: int = 64) -> tuple[list[Segment], FrameResults]:
    """Speech / music / noise / silence timeline of a recording: a window of ``window`` seconds centred on every
    ``hop``-second frame is classified (:func:`frame_posteriors`), the probabilities median-filtered over ``smooth``
    seconds and divided by the model's decision thresholds, frames quieter than ``silence_db`` are silence
    (:func:`smooth_labels`), and runs of equal labels become segments. Call it without gradients, in eval mode.

    Args:
        model: the classifier.
        reader: spans of the recording (see :func:`clip_probabilities`).
        window, hop, smooth, silence_db: see above.
        block_seconds, batch_size: audio read, and windows classified, at a time (memory only).

    Returns:
        The segments and the per-frame results they came from.

    Raises:
        ConfigError: see :func:`check_timeline_options`.
    """
    check_timeline_options(model, window, hop, smooth, block_seconds)
    results = frame_posteriors(model, reader, window, hop, block_seconds, batch_size)
    names = smooth_labels(results, model.labels, smooth, silence_db, model.class_thresholds.cpu().numpy())
    return frames_to_segments(names, hop, results.duration), results


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
