"""TseNet (Xu, Rao, Chng, Li, ASRU 2019): time-domain target speaker extraction conditioned on a speaker vector."""
from __future__ import annotations

import os
import sys
from typing import Any, Sequence

import torch
from torch import nn

from ..arrays import to_model
from ..cards import IVECTOR_FILE
from ..errors import AudioError, ConfigError, ModelFileError
from ..filterbanks import make_filterbank
from ..nn import SpeakerEncoder, TCNMasker
from ..nn.slicenet import SliceNetMasker, SliceNetSourceEncoder
from .base import EncoderMaskerDecoder, as_batch, eval_mode, register_model
from .conv_tasnet import tcn_config, upgrade_tcn_args
from .slicenet import slicenet_config

CONDITIONINGS = ("ivector", "encoder")
MASKERS = ("tcn", "slicenet")
#: enrollments shorter than this are refused (one 25 ms analysis frame); shorter than ``RELIABLE_SECONDS`` warned of
MIN_SECONDS, RELIABLE_SECONDS = 0.025, 1.0
#: an enrollment whose RMS is below this (-80 dBFS) is silent
SILENT_RMS = 1e-4
#: the extraction confidence threshold of a model not calibrated (``sepaudio evaluate --calibrate`` fits its own):
#: about the 10th percentile of a trained tse_mini extractor's confidence on mixtures of its training voices (below
#: it the extractor returned nearly the mixture, or the enrollment sides with what was left out)
DEFAULT_CONFIDENCE_THRESHOLD = 0.15


@register_model("tsenet")
class TseNet(EncoderMaskerDecoder):
    """Encoder -> TCN masker conditioned on the target speaker -> decoder. Defaults are the paper's (8 kHz).

    The speaker vector comes either from an i-vector (``conditioning="ivector"``, the paper: Linear(ivector_dim ->
    speaker_dim) + ReLU) or from the enrollment waveform through a speaker encoder trained jointly, sharing the
    waveform encoder (``conditioning="encoder"``, SpEx+ style). It is fused at the first block of every TCN stack, as
    in the paper, or at every block (``fuse_at``), by ``fusion``: ``concat`` as in the paper, ``add``, ``multiply``
    or ``film``.

    With ``n_speakers > 0`` (encoder conditioning) a linear speaker classifier sits on the embedding; in training
    mode :meth:`forward` then returns ``(estimate, speaker_logits)`` for the ``si_sdr_speaker`` loss, and the
    estimate alone in eval mode.

    Args:
        sample_rate: of the input.
        filterbank: encoder / decoder kind.
        n_filters: N, the encoder's filters.
        filter_length: L, the encoder's window in samples.
        stride: the encoder's hop (default L/2).
        mask_act: as in :class:`~sepaudio.models.conv_tasnet.ConvTasNet`.
        tcn: fields of :class:`~sepaudio.nn.TCNConfig` over ``tcn_defaults`` (the paper's B=256, H=512, Sc=256,
            P=3, X=8, R=4); its ``share`` compresses the TCN MiTAS style.
        conditioning: ``ivector`` or ``encoder``.
        ivector_dim: size of the i-vectors taken (``ivector`` conditioning).
        speaker_dim: size of the speaker vector fused into the TCN.
        fusion: ``concat`` | ``add`` | ``multiply`` | ``film``.
        fuse_at: ``stack`` (the first block of every stack) | ``block`` (every block).
        speaker_channels: width of the speaker encoder (``encoder``).
        speaker_blocks: residual blocks of the speaker encoder (``encoder``).
        n_speakers: training speakers for the auxiliary classifier (``encoder``); 0 for none.
        masker: ``tcn`` (the paper) | ``slicenet`` (:class:`~sepaudio.nn.slicenet.SliceNetMasker`, the speaker
            vector fused before every module; with ``encoder`` conditioning the enrollment is encoded into frames
            by a :class:`~sepaudio.nn.slicenet.SliceNetSourceEncoder`, the masker attends from the mixture's frames
            to them after every module, and their mean is the fused speaker vector; ``fuse_at`` and the speaker
            encoder's sizes are then unused).
        slicenet: fields of :class:`~sepaudio.nn.slicenet.SliceNetConfig` (``masker: slicenet``).

    Attributes:
        confidence_threshold: the extraction confidence below which ``sepaudio extract`` warns that the output may
            be another talker (a scalar, saved with the weights): the default
            :data:`DEFAULT_CONFIDENCE_THRESHOLD` until ``sepaudio evaluate --calibrate`` sets the
            one that accepts 90 % of this model's extractions on validation mixtures.

    Shape:
        mixture ``(batch, time)``, speaker ``(batch, ivector_dim)`` (i-vector) or ``(batch, enroll_time)``
        (enrollment) -> ``(batch, 1, time)``; unbatched ``(time)`` with ``(ivector_dim)`` / ``(enroll_time)``
        -> ``(1, time)``.
    """

    #: the paper's TCN, which a ``tcn`` argument is laid over
    tcn_defaults = {"channels": 256, "hidden": 512, "skip_channels": 256, "kernel_size": 3, "blocks": 8, "repeats": 4}
    upgrade_args = classmethod(upgrade_tcn_args)

    def __init__(
        self,
        sample_rate: int = 8000,
        filterbank: str = "free",
        n_filters: int = 256,
        filter_length: int = 20,
        stride: int | None = None,
        mask_act: str = "sigmoid",
        tcn: dict | None = None,
        conditioning: str = "ivector",
        ivector_dim: int = 400,
        speaker_dim: int = 100,
        fusion: str = "concat",
        fuse_at: str = "stack",
        speaker_channels: int = 256,
        speaker_blocks: int = 3,
        n_speakers: int = 0,
        masker: str = "tcn",
        slicenet: dict | None = None,
    ):
        if masker not in MASKERS:
            raise ConfigError(f"masker: unknown masker {masker!r}; choose one of {MASKERS}")
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"unknown conditioning {conditioning!r}; choose one of {CONDITIONINGS}")
        if n_speakers and conditioning != "encoder":
            raise ValueError("the speaker classifier (n_speakers > 0) trains the learned encoder: "
                             "use conditioning='encoder' or n_speakers=0")
        encoder, decoder = make_filterbank(filterbank, n_filters=n_filters, filter_length=filter_length, stride=stride,
                                           sample_rate=sample_rate)
        n_feats, attend = encoder.filterbank.n_feats_out, masker == "slicenet" and conditioning == "encoder"
        if masker == "slicenet":
            config = slicenet_config(slicenet)
            masker = SliceNetMasker(n_feats, 1, config, mask_act=mask_act, cond_dim=speaker_dim, fusion=fusion,
                                    source_channels=speaker_dim if attend else 0)
        else:
            masker = TCNMasker(n_feats, 1, tcn_config(tcn, self.tcn_defaults), mask_act=mask_act,
                               cond_dim=speaker_dim, fusion=fusion, fuse_at=fuse_at)
        super().__init__(encoder, masker, decoder, sample_rate)
        self.conditioning = conditioning
        self.input_keys = ("mixture", "ivector" if conditioning == "ivector" else "enrollment")
        if conditioning == "ivector":
            self.speaker_net = nn.Sequential(nn.Linear(ivector_dim, speaker_dim), nn.ReLU())
        elif attend:
            self.speaker_net = SliceNetSourceEncoder(n_feats, speaker_dim, config)
        else:
            self.speaker_net = SpeakerEncoder(encoder.filterbank.n_feats_out, speaker_dim, channels=speaker_channels,
                                              blocks=speaker_blocks)
        self.classifier = nn.Linear(speaker_dim, n_speakers) if n_speakers else None
        self.register_buffer("confidence_threshold", torch.tensor(DEFAULT_CONFIDENCE_THRESHOLD))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # model files from before calibration existed hold no threshold: the default
        state_dict.setdefault(prefix + "confidence_threshold", torch.tensor(DEFAULT_CONFIDENCE_THRESHOLD))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    #: the i-vector extractor :meth:`extract` uses for an i-vector model (not a submodule: not saved or moved)
    ivector_extractor = None

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "ivector_extractor":  # an nn.Module would otherwise become a submodule, saved with the weights
            self.__dict__[name] = value
        else:
            super().__setattr__(name, value)

    def embed(self, speaker: torch.Tensor) -> torch.Tensor:
        """The speaker vector fused into the TCN (a SliceNet masker with ``encoder`` conditioning: the encoded
        enrollment frames it attends to).

        Shape: i-vector ``(batch, ivector_dim)`` | ``(ivector_dim)``, or enrollment ``(batch, enroll_time)`` |
        ``(enroll_time)`` -> ``(batch, speaker_dim)`` (SliceNet attention: ``(batch, speaker_dim, enroll_frames)``).

        Raises:
            AudioError: an i-vector model given anything but ``ivector_dim``-long vectors (a waveform, say).
        """
        if self.conditioning == "ivector":
            speaker = speaker.unsqueeze(0) if speaker.dim() == 1 else speaker
            dim = self.speaker_net[0].in_features
            if speaker.dim() != 2 or speaker.shape[-1] != dim:
                raise AudioError(f"this TseNet is conditioned on {dim}-dim i-vectors, not a tensor of shape "
                                 f"{tuple(speaker.shape)} (a waveform?): give the enrollment recording to "
                                 f"model.extract(mixture, enrollment), which computes its i-vector, or pass "
                                 f"ivector_extractor.extract([enrollment]) here.")
            return self.speaker_net(speaker)
        enrollment, _ = as_batch(speaker)
        return self.speaker_net(self.encoder(self.pad(enrollment).unsqueeze(1)))

    def speaker_vector(self, enrollment: Any, sample_rate: int | None = None,
                       ivector_extractor: Any = None, *, names: Sequence[str] | None = None) -> torch.Tensor:
        """The speaker vector of enrollment recordings of the target speaker, as :meth:`embed` gives it (without
        gradients, in eval mode); the vectors of a list of enrollments are averaged.

        Args:
            enrollment: a path, numpy array or tensor (as :meth:`extract` takes), or a list of them.
            sample_rate: of arrays and tensors (``None``: the model's); paths know their own.
            ivector_extractor: for an i-vector model; ``None``: :attr:`ivector_extractor`.
            names: how messages name the enrollments (e.g. their files; default: the path, or "enrollment").

        Returns:
            ``(1, speaker_dim)`` (``(batch, speaker_dim)`` for a batched enrollment) on the model's device.

        Raises:
            AudioError: an enrollment that is unreadable, silent or shorter than ``MIN_SECONDS`` (one shorter than
                ``RELIABLE_SECONDS`` gives a warning: its speaker vector is unreliable), or list items of different
                batch sizes.
            ModelFileError: an i-vector model without an i-vector extractor, or one that does not fit it.
        """
        items = list(enrollment) if isinstance(enrollment, (list, tuple)) else [enrollment]
        if not items:
            raise AudioError("enrollment: an empty list; give at least one recording of the target speaker.")
        extractor = self._ivectors(ivector_extractor) if self.conditioning == "ivector" else None
        device = next(self.parameters()).device
        vectors = []
        for k, item in enumerate(items):
            name = "enrollment" if len(items) == 1 else f"enrollment {k + 1} of {len(items)}"
            wav, _ = to_model(item, self.sample_rate, sample_rate, name)
            check_enrollment(wav, self.sample_rate, names[k] if names else
                             str(item) if isinstance(item, (str, os.PathLike)) else name)
            with eval_mode(self), torch.no_grad():
                speaker = wav.to(device) if extractor is None else \
                    extractor.extract(list(wav.to(extractor.device))).to(device)
                vectors.append(self.embed(speaker))
        if len({v.shape[0] for v in vectors}) > 1:
            raise AudioError(f"enrollments with batch sizes {[v.shape[0] for v in vectors]}; give every item of the "
                             f"list the same batch size (or none).")
        if len(vectors) == 1:
            return vectors[0]
        # encoded enrollment frames (SliceNet attention) are joined: the masker attends to all of them
        return torch.cat(vectors, -1) if vectors[0].dim() == 3 else torch.stack(vectors).mean(0)

    def _ivectors(self, given: Any) -> Any:
        """The i-vector extractor to use, checked against the model.

        Raises:
            ModelFileError: none given or set, or one of another dimension or sample rate.
        """
        extractor = given if given is not None else self.ivector_extractor
        if extractor is None:
            raise ModelFileError(f"this TseNet is conditioned on i-vectors and has no i-vector extractor: pass "
                                 f"ivector_extractor=sepaudio.speaker.load_ivector_extractor(path) (the one it was "
                                 f"trained with; 'sepaudio ivector train' writes one), set model.ivector_extractor, "
                                 f"or load the model with sepaudio.load_model from a folder holding {IVECTOR_FILE}.")
        dim = self.speaker_net[0].in_features
        if extractor.dim != dim or extractor.sample_rate != self.sample_rate:
            raise ModelFileError(f"the i-vector extractor gives {extractor.dim}-dim i-vectors at "
                                 f"{extractor.sample_rate} Hz, but this TseNet takes {dim}-dim i-vectors at "
                                 f"{self.sample_rate} Hz; give the extractor the model was trained with.")
        return extractor

    def extract(self, mixture: Any, enrollment: Any, sample_rate: int | None = None,
                enrollment_rate: int | None = None, *, ivector_extractor: Any = None, chunk_seconds: float = 8.0,
                overlap_seconds: float = 1.0) -> Any:
        """Extract the enrolled speaker from a recording given as users hold it, in the same form.

        The speaker vector is computed once (:meth:`speaker_vector`); the mixture goes through the model in
        overlapping chunks (:func:`sepaudio.inference.process_tensor`), as in ``EncoderMaskerDecoder.separate``
        (same input rules, resampling and return types).

        Args:
            mixture: a path, or a numpy array / tensor ``(time)``, ``(channels, time)`` or ``(batch, channels, time)``.
            enrollment: a recording of the target speaker alone, in the same forms, or a list of them (their speaker
                vectors are averaged); a batched one gives one enrollment per mixture of the batch.
            sample_rate, enrollment_rate: of array / tensor inputs (``None``: the model's); paths know their own.
            ivector_extractor: for an i-vector model (default: :attr:`ivector_extractor`).
            chunk_seconds, overlap_seconds: chunk length and cross-faded overlap (at most half a chunk).

        Returns:
            ``(time)`` (``(batch, time)`` for a batch) at the mixture's rate, in the mixture's type.

        Raises:
            AudioError: see :func:`sepaudio.arrays.to_model` and :meth:`speaker_vector`; a batched enrollment whose
                size is not the mixture's batch.
            ModelFileError: an i-vector model without a fitting i-vector extractor.
        """
        wav, restore = to_model(mixture, self.sample_rate, sample_rate, "mixture")
        embedding = self.speaker_vector(enrollment, enrollment_rate, ivector_extractor)
        if embedding.shape[0] not in (1, wav.shape[0]):
            raise AudioError(f"{embedding.shape[0]} enrollments for a batch of {wav.shape[0]} mixtures; give one "
                             f"enrollment for all of them, or one per mixture.")
        last = embedding.shape[0] - 1
        out = self._chunked(wav, lambda chunk, i: self.extract_embedded(chunk, embedding[min(i, last)][None]),
                           chunk_seconds, overlap_seconds)
        return restore(out[:, 0])

    def extract_embedded(self, mixture: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """Extract with a speaker vector from :meth:`embed` (computed once for a long recording's chunks).

        Shape: mixture ``(batch, time)`` | ``(time)``, embedding ``(batch, speaker_dim)`` -> as :meth:`forward`.
        """
        return super().forward(mixture, embedding)

    def forward(self, mixture: torch.Tensor, speaker: torch.Tensor):
        embedding = self.embed(speaker)
        estimate = self.extract_embedded(mixture, embedding)
        if self.training and self.classifier is not None:
            return estimate, self.classifier(embedding.mean(-1) if embedding.dim() == 3 else embedding)
        return estimate


def check_enrollment(wav: torch.Tensor, sample_rate: int, source: str) -> None:
    """Refuse an enrollment too short or silent for a speaker vector; warn of one shorter than ``RELIABLE_SECONDS``.

    Shape: wav ``(batch, time)`` at ``sample_rate``.

    Raises:
        AudioError: shorter than ``MIN_SECONDS``, or silent (below -80 dBFS).
    """
    seconds = wav.shape[-1] / sample_rate
    if seconds < MIN_SECONDS:
        raise AudioError(f"{source}: the enrollment lasts {seconds * 1000:.1f} ms, too short for a speaker vector "
                         f"(at least {MIN_SECONDS * 1000:.0f} ms; a few seconds of the target alone work best).")
    if (wav.pow(2).mean(-1).sqrt() < SILENT_RMS).any():
        raise AudioError(f"{source}: the enrollment is silent (below -80 dBFS); give a recording of the target "
                         f"speaker talking.")
    if seconds < RELIABLE_SECONDS:
        print(f"warning: {source}: the enrollment lasts only {seconds:.2f} s; the speaker vector of less than "
              f"{RELIABLE_SECONDS:.0f} s of speech is unreliable.", file=sys.stderr)
