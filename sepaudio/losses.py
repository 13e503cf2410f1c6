"""Training losses, chosen by name in configs.

A loss is called as ``loss(output, batch) -> (value, logs)``: ``output`` is what the model returned, ``batch``
the dict the dataset gave (``mixture``, ``sources``, ``target``, ``label``, ...), ``logs`` named scalars to log.
Called with a tensor of targets instead of the dict (``PITNegSISDR()(estimate, sources)``), a loss returns the
value alone.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .errors import AudioError
from .metrics import pit, si_sdr
from .registry import Registry

LOSSES = Registry("loss")
register_loss = LOSSES.register
create_loss = LOSSES.create


def _batch(targets: Any, key: str, loss: str) -> tuple[dict, bool]:
    """The batch dict of a loss call, and whether the caller gave a tensor of targets instead (then it wants the
    value alone).

    Raises:
        AudioError: neither a dict nor a tensor.
    """
    if isinstance(targets, dict):
        return targets, False
    if isinstance(targets, torch.Tensor):
        return {key: targets}, True
    raise AudioError(f"{loss}(output, targets): targets is a {type(targets).__name__}; give a tensor of targets "
                     f"(torch.as_tensor(...)) or the batch dict with {key!r}.")


def _same_shape(loss: str, est: torch.Tensor, ref: torch.Tensor) -> None:
    if est.shape != ref.shape:
        raise AudioError(f"{loss}: estimate of shape {tuple(est.shape)} and targets of shape {tuple(ref.shape)}; give "
                         f"both the same shape.")


@register_loss("si_sdr")
class NegSISDR(nn.Module):
    """Negative SI-SDR of one estimate against ``batch[target]``.

    Shape: output ``(batch, time)`` or ``(batch, 1, time)``; target ``(batch, time)``.
    """

    def __init__(self, target: str = "target"):
        super().__init__()
        self.target = target

    def forward(self, output: torch.Tensor, batch: dict | torch.Tensor) -> tuple[torch.Tensor, dict] | torch.Tensor:
        batch, alone = _batch(batch, self.target, "NegSISDR")
        ref = batch[self.target]
        if output.numel() != ref.numel():
            _same_shape("NegSISDR", output, ref)
        value = si_sdr(output.reshape(ref.shape), ref).mean()
        return -value if alone else (-value, {"si_sdr": value.detach()})


@register_loss("si_sdr_speaker")
class NegSISDRSpeaker(nn.Module):
    """Negative SI-SDR plus ``weight`` x speaker cross-entropy (SpEx+ multi-task training of a speaker encoder).

    A model with a speaker classifier returns ``(estimate, speaker_logits)`` in training mode and the estimate alone
    in eval mode (validation): then only the SI-SDR term is computed.

    Shape: estimate as for ``si_sdr``; logits ``(batch, n_speakers)``; ``batch[speaker]`` ``(batch,)`` long.
    """

    def __init__(self, weight: float = 0.5, target: str = "target", speaker: str = "speaker"):
        super().__init__()
        self.si_sdr = NegSISDR(target)
        self.weight, self.speaker = weight, speaker

    def forward(self, output, batch: dict) -> tuple[torch.Tensor, dict]:
        if not isinstance(output, tuple):
            return self.si_sdr(output, batch)
        if not isinstance(batch, dict):
            raise AudioError("NegSISDRSpeaker((estimate, speaker_logits), batch): give the batch dict with "
                             f"{self.si_sdr.target!r} and {self.speaker!r}; it needs the speaker labels too.")
        estimate, logits = output
        value, logs = self.si_sdr(estimate, batch)
        ce = nn.functional.cross_entropy(logits, batch[self.speaker])
        return value + self.weight * ce, {**logs, "speaker_ce": ce.detach()}


@register_loss("pit_si_sdr")
class PITNegSISDR(nn.Module):
    """Permutation-invariant negative SI-SDR against ``batch[target]``.

    Shape: output and target ``(batch, n_src, time)``, or ``(n_src, time)`` for one example.
    """

    def __init__(self, target: str = "sources"):
        super().__init__()
        self.target = target

    def forward(self, output: torch.Tensor, batch: dict | torch.Tensor) -> tuple[torch.Tensor, dict] | torch.Tensor:
        batch, alone = _batch(batch, self.target, "PITNegSISDR")
        ref = batch[self.target]
        _same_shape("PITNegSISDR", output, ref)
        if output.dim() == 2:
            output, ref = output.unsqueeze(0), ref.unsqueeze(0)
        if output.dim() != 3:
            raise AudioError(f"PITNegSISDR: got shape {tuple(output.shape)}; give (batch, n_src, time) or "
                             f"(n_src, time).")
        best, _ = pit(si_sdr, output, ref)
        value = best.mean()
        return -value if alone else (-value, {"si_sdr": value.detach()})


@register_loss("cross_entropy")
class CrossEntropy(nn.Module):
    """Cross-entropy of class logits against ``batch["label"]`` (class indices, or soft labels from mixup).

    When the batch holds ``weight`` (a dataset with ``balance: weights``: each item's class weight), the mean is
    weighted by it, ``sum(w * ce) / sum(w)``: with class weights this is torch's ``cross_entropy(weight=...)``.

    Shape: output ``(batch, classes)``; label ``(batch,)`` long or ``(batch, classes)`` float probabilities;
    weight ``(batch,)``.
    """

    def forward(self, output: torch.Tensor, batch: dict | torch.Tensor) -> tuple[torch.Tensor, dict] | torch.Tensor:
        batch, alone = _batch(batch, "label", "CrossEntropy")
        label = batch["label"]
        if "weight" in batch:
            weight = batch["weight"].to(output.dtype)
            value = (nn.functional.cross_entropy(output, label, reduction="none") * weight).sum() \
                / weight.sum().clamp_min(1e-12)
        else:
            value = nn.functional.cross_entropy(output, label)
        if alone:
            return value
        hard = label.argmax(-1) if label.dim() == 2 else label
        return value, {"accuracy": (output.argmax(-1) == hard).float().mean().detach()}


@register_loss("distillation")
class Distillation(nn.Module):
    """Knowledge distillation (Hinton et al. 2015), as SwishNet uses it: ``soft * KL + (1 - soft) * CE``.

    The soft term is the KL divergence between teacher and student distributions at ``temperature`` (scaled by
    ``temperature ** 2`` so its gradients keep their size); the hard term is cross-entropy with the labels.

    Args:
        teacher: a saved classifier (``model.pt`` of a trained teacher) taking the same ``batch["audio"]``; it runs
            frozen, in eval mode, and is kept out of the trained parameters.
        soft: weight of the soft term (0.9 in SwishNet).
        temperature: softmax temperature of both distributions in the soft term.

    Shape: output ``(batch, classes)``; ``batch["audio"]`` ``(batch, time)``; label ``(batch,)``.
    """

    def __init__(self, teacher: str, soft: float = 0.9, temperature: float = 2.0):
        super().__init__()
        from .models import load_model

        model = load_model(teacher).eval().requires_grad_(False)
        self.__dict__["teacher"] = model  # not a submodule: never trained, saved or switched to train mode
        self.soft, self.temperature = soft, temperature
        self.hard = CrossEntropy()

    def forward(self, output: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict]:
        if not isinstance(batch, dict):
            raise AudioError("Distillation(output, batch): give the batch dict with 'audio' (the teacher's input) "
                             "and 'label'.")
        audio = batch["audio"]
        with torch.no_grad():
            teacher_logits = self.teacher.to(audio.device)(audio)
        t = self.temperature
        kl = nn.functional.kl_div(nn.functional.log_softmax(output / t, -1),
                                  nn.functional.log_softmax(teacher_logits / t, -1),
                                  log_target=True, reduction="batchmean") * t * t
        hard, logs = self.hard(output, batch)
        return self.soft * kl + (1 - self.soft) * hard, {**logs, "kl": kl.detach(), "ce": hard.detach()}
