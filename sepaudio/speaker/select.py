"""Separate, then select: a blind separator used as a target speaker extractor by returning, of its outputs, the one
whose i-vector is nearest (cosine) the enrollment's. It answers to what ``sepaudio extract`` and ``sepaudio
evaluate`` call on a TseNet (``speaker_vector``, ``extract_embedded``, ``forward(mixture, ivector)``), so the
comparison of the two is one flag (``--select ivector``)."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..arrays import to_model
from ..errors import ConfigError
from .confidence import SpeakerVectors, cosine

__all__ = ["SELECTIONS", "SelectExtractor", "check_selection"]

#: how ``--select`` picks the output
SELECTIONS = ("ivector",)


def check_selection(select: str) -> None:
    """Raises: ConfigError: ``select`` is not one of :data:`SELECTIONS`."""
    if select not in SELECTIONS:
        raise ConfigError(f"--select {select}: choose one of {', '.join(SELECTIONS)}.")


class SelectExtractor(nn.Module):
    """A blind separator and an i-vector extractor as one extraction model.

    Args:
        separator: a separation model, ``(batch, time)`` -> ``(batch, n_src, time)``.
        extractor: an :class:`~sepaudio.speaker.IVectorExtractor` at the separator's sample rate.

    Shape: mixture ``(batch, time)``, ivector ``(batch, dim)`` -> ``(batch, 1, time)``.

    Raises:
        ValueError: the extractor's sample rate is not the separator's.
    """

    conditioning = "ivector"
    input_keys = ("mixture", "ivector")

    def __init__(self, separator: nn.Module, extractor: Any):
        super().__init__()
        if extractor.sample_rate != separator.sample_rate:
            raise ValueError(f"the i-vector extractor takes {extractor.sample_rate} Hz audio but the separator "
                             f"{separator.sample_rate} Hz; give an extractor trained at the separator's rate")
        self.separator, self.sample_rate = separator, separator.sample_rate
        self.__dict__["ivector_extractor"] = extractor  # not a submodule: the separator alone is the model
        self.vectors = SpeakerVectors(extractor)
        self.registered_name = f"{separator.registered_name}+select_ivector"
        self.num_parameters = separator.num_parameters

    def speaker_vector(self, enrollment: Any, sample_rate: int | None = None, ivector_extractor: Any = None, *,
                       names: Any = None) -> torch.Tensor:
        """The mean unit-length i-vector of an enrollment or a list of them (as ``TseNet.speaker_vector`` takes).

        Shape: -> ``(1, dim)``.
        """
        items = enrollment if isinstance(enrollment, (list, tuple)) else [enrollment]
        return self.vectors.mean([to_model(item, self.sample_rate, sample_rate, "enrollment")[0] for item in items])

    @torch.no_grad()
    def extract_embedded(self, mixture: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """The separator's output nearest the speaker vector ``embedding`` (per item of the batch).

        Shape: mixture ``(batch, time)`` | ``(time)``, embedding ``(batch | 1, dim)`` -> ``(batch, 1, time)``.
        """
        mixture = mixture.reshape(-1, mixture.shape[-1])
        outputs = self.separator(mixture)
        outputs = outputs.reshape(mixture.shape[0], -1, outputs.shape[-1])  # (batch, n_src, time)
        vectors = self.vectors(outputs.reshape(-1, outputs.shape[-1])).reshape(*outputs.shape[:2], -1)
        chosen = cosine(vectors, embedding.cpu()[:, None]).argmax(1).to(outputs.device)
        return outputs[torch.arange(len(outputs), device=outputs.device), chosen][:, None]

    def forward(self, mixture: torch.Tensor, ivector: torch.Tensor) -> torch.Tensor:
        return self.extract_embedded(mixture, ivector)
