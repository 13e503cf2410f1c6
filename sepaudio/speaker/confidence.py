"""How sure an extraction is that it returned the enrolled talker.

With ``e``, ``r`` and ``n`` the speaker vectors of the estimate, of the residual (what the extractor left out: the
mixture minus the estimate scaled to its least-squares share of the mixture, so that a model's output gain does not
leak the estimate into the residual) and of the enrollment, and ``d`` the SI-SDR of the estimate against the mixture
(dB), the confidence is

    ``sigmoid(SHARPNESS * (cos(e, n) - cos(r, n))) * (s + (1 - s) * (1 - max(cos(e, r), 0)))``,
    ``s = sigmoid((SEPARATED_DB - d) / SEPARATED_SCALE_DB)``

The first factor is the side the enrollment takes: about 1 when the estimate is the nearer voice, 0.5 at a tie, about
0 when the residual is (the extractor swapped the talkers). The second asks whether the extractor separated anything.
An extractor that cannot tell two voices apart returns nearly the whole mixture: ``d`` is high, ``s`` near 0, and
which talker dominates its output is then left to their levels. A clean extraction of a talker much louder than the
rest has a high ``d`` too, but what it left out is another voice (``cos(e, r)`` low), which keeps the factor up; an
estimate of one of two voices at comparable levels has ``d`` near 0 dB. The confidence lies in (0, 1). A plain
``cos(e, n)`` is not comparable across mixtures (two like voices are both near the enrollment). The constants were
chosen on mixtures of tse_mini's training voices, never its test voices (docs/extraction.md;
``recipes/tse_mini/local/tune_confidence.py``).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from ..metrics import si_sdr

__all__ = ["cosine", "confidence", "confidence_inputs", "waveform_confidence", "SHARPNESS", "SEPARATED_DB",
           "SEPARATED_SCALE_DB", "SpeakerVectors", "item_confidence", "ConfidenceMeter", "roc_auc", "kept_confusion"]

#: how steeply the enrollment's side (cos(e, n) - cos(r, n)) moves the confidence from 0 to its full value
SHARPNESS = 8.0
#: the SI-SDR of the estimate against the mixture (dB) at which the separation factor is 1/2, and its scale (dB): the
#: factor is 0.73 at ``SEPARATED_DB - SEPARATED_SCALE_DB`` and 0.27 at ``SEPARATED_DB + SEPARATED_SCALE_DB``
SEPARATED_DB, SEPARATED_SCALE_DB = 2.0, 1.5
#: a residual below this share of the mixture's energy (-60 dB) holds no voice: the estimate is the whole mixture
LEFT_NOTHING = 1e-6
#: below this length (25 ms, one analysis frame) a chunk gives no speaker vector and does not count
MIN_SECONDS = 0.025


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity along the last dimension. Shape: ``(..., dim)``, ``(..., dim)`` -> ``(...)``."""
    return torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1)


def confidence(estimate: torch.Tensor, residual: torch.Tensor, enrollment: torch.Tensor,
               against_mixture_db: torch.Tensor | float, centre_db: float = SEPARATED_DB,
               scale_db: float = SEPARATED_SCALE_DB) -> torch.Tensor:
    """The confidence of the module docstring from the speaker vectors of estimate, residual and enrollment and the
    SI-SDR (dB) of the estimate against the mixture (``centre_db`` / ``scale_db``: the separation factor's
    constants, for tuning them).

    Shape: speaker vectors ``(..., dim)`` each, ``against_mixture_db`` ``(...)`` or a number -> ``(...)``.
    """
    side = torch.sigmoid(SHARPNESS * (cosine(estimate, enrollment) - cosine(residual, enrollment)))
    separated = torch.sigmoid((centre_db - torch.as_tensor(against_mixture_db, dtype=side.dtype)) / scale_db)
    return side * (separated + (1 - separated) * (1 - cosine(estimate, residual).clamp(0, 1)))


def confidence_inputs(vectors: Callable[[torch.Tensor], torch.Tensor], mixture: torch.Tensor,
                      estimate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What :func:`confidence` takes besides the enrollment: the speaker vectors of the estimate and of the residual
    (the mixture minus the estimate scaled to its least-squares share of it), and the estimate's SI-SDR against the
    mixture (dB).

    A residual with nothing in it (below ``LEFT_NOTHING`` of the mixture's energy) gets the estimate's vector: the
    extractor found no second voice.

    Shape: mixture, estimate ``(time,)`` or ``(1, time)`` -> ``(dim)``, ``(dim)``, ``()``.
    """
    mixture, estimate = mixture.reshape(1, -1).float(), estimate.reshape(1, -1).float()
    share = (estimate * mixture).sum() / estimate.pow(2).sum().clamp_min(1e-12)
    residual = mixture - share * estimate
    if residual.pow(2).sum() <= LEFT_NOTHING * mixture.pow(2).sum():  # no other voice left out: no vector of its own
        est = res = vectors(estimate)[0]
    else:
        est, res = vectors(torch.cat([estimate, residual]))
    return est, res, si_sdr(estimate[0], mixture[0])


def waveform_confidence(vectors: Callable[[torch.Tensor], torch.Tensor], mixture: torch.Tensor,
                        estimate: torch.Tensor, enrolled: torch.Tensor) -> float:
    """The :func:`confidence` of one extraction from its waveforms and the enrollment's speaker vector.

    Shape: mixture, estimate ``(time,)`` or ``(1, time)`` (on the CPU); enrolled ``(1, dim)``.
    """
    est, res, db = confidence_inputs(vectors, mixture, estimate)
    return float(confidence(est, res, enrolled[0], db))


class SpeakerVectors:
    """The speaker vectors confidence and selection compare: i-vectors when an i-vector extractor is given (an
    i-vector TseNet, separate-then-select), else the learned speaker encoder of a TseNet (``model.embed``).

    Args:
        extractor: an :class:`~sepaudio.speaker.IVectorExtractor`, or ``None``.
        model: a TseNet conditioned by its own encoder (used when ``extractor`` is ``None``).

    Raises:
        ValueError: neither an i-vector extractor nor a model with a speaker encoder.
    """

    def __init__(self, extractor: Any = None, model: Any = None):
        if extractor is None and getattr(model, "conditioning", None) != "encoder":
            raise ValueError("speaker vectors need an i-vector extractor or a TseNet with a learned speaker encoder")
        self.extractor, self.model = extractor, model

    @classmethod
    def for_model(cls, model: Any, extractor: Any = None) -> "SpeakerVectors | None":
        """The speaker vectors the confidence of an extraction model compares: the i-vectors of ``extractor`` (a
        ``with_ivectors`` dataset's) or of the model's own, else its learned speaker encoder; ``None``: none."""
        conditioning = getattr(model, "conditioning", None)
        if conditioning == "encoder":
            return cls(model=model)
        extractor = extractor or getattr(model, "ivector_extractor", None)
        return cls(extractor) if conditioning == "ivector" and extractor is not None else None

    @torch.no_grad()
    def __call__(self, wavs: torch.Tensor) -> torch.Tensor:
        """Shape: ``(batch, time)`` -> ``(batch, dim)`` on the CPU (frame embeddings averaged over their frames)."""
        if self.extractor is not None:
            return self.extractor.extract(list(wavs.to(self.extractor.device))).cpu()
        device = next(self.model.parameters()).device
        was = self.model.training
        self.model.eval()
        try:
            vectors = self.model.embed(wavs.to(device))
            # an attending masker's embedding keeps the enrollment's frames: their mean is its speaker vector
            return (vectors.mean(-1) if vectors.dim() == 3 else vectors).cpu()
        finally:
            self.model.train(was)

    def mean(self, enrollments: Sequence[torch.Tensor]) -> torch.Tensor:
        """The mean of the unit-length vectors of several enrollments. Shape: each ``(1, time)`` -> ``(1, dim)``."""
        return torch.stack([torch.nn.functional.normalize(self(e.reshape(1, -1)), dim=-1)
                            for e in enrollments]).mean(0)


def item_confidence(vectors: SpeakerVectors, estimate: torch.Tensor, item: dict) -> float:
    """The confidence of one extraction of a dataset item (the enrollment's vector: the item's ``ivector``, or its
    ``enrollment``'s).

    Shape: estimate ``(time,)``; ``item["mixture"]`` ``(time,)``.
    """
    enrolled = item["ivector"][None] if vectors.extractor is not None else vectors(item["enrollment"].reshape(1, -1))
    return waveform_confidence(vectors, item["mixture"], estimate, enrolled)


class ConfidenceMeter:
    """The confidence of a long recording processed in chunks: the length-weighted mean of its chunks'.

    Args:
        vectors: the speaker vectors to compare.
        enrollment: the enrollment's vector ``(1, dim)``.
        sample_rate: of the chunks.
    """

    def __init__(self, vectors: Callable[[torch.Tensor], torch.Tensor], enrollment: torch.Tensor, sample_rate: int):
        self.vectors, self.enrollment, self.sample_rate = vectors, enrollment, sample_rate
        self.total = self.weight = 0.0

    def add(self, mixture: torch.Tensor, estimate: torch.Tensor) -> None:
        """Score one chunk. Shape: mixture, estimate ``(1, time)``."""
        if mixture.shape[-1] < MIN_SECONDS * self.sample_rate:
            return
        self.total += waveform_confidence(self.vectors, mixture.cpu(), estimate.cpu(), self.enrollment) * \
            mixture.shape[-1]
        self.weight += mixture.shape[-1]

    @property
    def value(self) -> float:
        """The confidence so far (NaN before any chunk)."""
        return self.total / self.weight if self.weight else float("nan")


def roc_auc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the ROC curve of ``scores`` ranking the ``positive`` items first (ties count half): the
    probability that a random positive scores above a random negative. NaN without both kinds."""
    s, y = torch.as_tensor(scores, dtype=torch.float64), torch.as_tensor(positive, dtype=torch.bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return float("nan")
    greater = (s[y][:, None] > s[~y][None, :]).double().sum()
    ties = (s[y][:, None] == s[~y][None, :]).double().sum()
    return float((greater + 0.5 * ties) / (n_pos * n_neg))


def kept_confusion(scores: Sequence[float], confused: Sequence[bool], keep: float = 0.9) -> tuple[float, float]:
    """Keep the ``keep`` fraction of extractions of highest confidence: the threshold that does it, and the
    confusion rate among those kept.

    Returns:
        ``(threshold, confusion rate)``: accepting ``confidence >= threshold`` keeps ``ceil(keep * n)`` items.
    """
    s, c = torch.as_tensor(scores, dtype=torch.float64), torch.as_tensor(confused, dtype=torch.float64)
    if not len(s):
        return float("nan"), float("nan")
    order = torch.argsort(s, descending=True, stable=True)
    n = max(1, int(torch.ceil(torch.tensor(keep * len(s) - 1e-9))))
    return float(s[order[n - 1]]), float(c[order[:n]].mean())
