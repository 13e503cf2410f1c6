"""TseNet (Xu, Rao, Chng, Li, ASRU 2019): time-domain target speaker extraction conditioned on a speaker vector."""
from __future__ import annotations

import torch
from torch import nn

from ..filterbanks import make_filterbank
from ..nn import SpeakerEncoder, TCNMasker
from .base import EncoderMaskerDecoder, as_batch, register_model
from .conv_tasnet import tcn_config, upgrade_tcn_args

CONDITIONINGS = ("ivector", "encoder")


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
    ):
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"unknown conditioning {conditioning!r}; choose one of {CONDITIONINGS}")
        if n_speakers and conditioning != "encoder":
            raise ValueError("the speaker classifier (n_speakers > 0) trains the learned encoder: "
                             "use conditioning='encoder' or n_speakers=0")
        encoder, decoder = make_filterbank(filterbank, n_filters=n_filters, filter_length=filter_length, stride=stride,
                                           sample_rate=sample_rate)
        masker = TCNMasker(encoder.filterbank.n_feats_out, 1, tcn_config(tcn, self.tcn_defaults), mask_act=mask_act,
                           cond_dim=speaker_dim, fusion=fusion, fuse_at=fuse_at)
        super().__init__(encoder, masker, decoder, sample_rate)
        self.conditioning = conditioning
        self.input_keys = ("mixture", "ivector" if conditioning == "ivector" else "enrollment")
        if conditioning == "ivector":
            self.speaker_net = nn.Sequential(nn.Linear(ivector_dim, speaker_dim), nn.ReLU())
        else:
            self.speaker_net = SpeakerEncoder(encoder.filterbank.n_feats_out, speaker_dim, channels=speaker_channels,
                                              blocks=speaker_blocks)
        self.classifier = nn.Linear(speaker_dim, n_speakers) if n_speakers else None

    def embed(self, speaker: torch.Tensor) -> torch.Tensor:
        """The speaker vector fused into the TCN.

        Shape: i-vector ``(batch, ivector_dim)`` | ``(ivector_dim)``, or enrollment ``(batch, enroll_time)`` |
        ``(enroll_time)`` -> ``(batch, speaker_dim)``.
        """
        if self.conditioning == "ivector":
            return self.speaker_net(speaker.unsqueeze(0) if speaker.dim() == 1 else speaker)
        enrollment, _ = as_batch(speaker)
        return self.speaker_net(self.encoder(self.pad(enrollment).unsqueeze(1)))

    def extract(self, mixture: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """Extract with a speaker vector from :meth:`embed` (computed once for a long recording's chunks).

        Shape: mixture ``(batch, time)`` | ``(time)``, embedding ``(batch, speaker_dim)`` -> as :meth:`forward`.
        """
        return super().forward(mixture, embedding)

    def forward(self, mixture: torch.Tensor, speaker: torch.Tensor):
        embedding = self.embed(speaker)
        estimate = self.extract(mixture, embedding)
        if self.training and self.classifier is not None:
            return estimate, self.classifier(embedding)
        return estimate
