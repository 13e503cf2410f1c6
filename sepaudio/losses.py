"""Training losses, chosen by name in configs.

A loss is called as ``loss(output, batch) -> (value, logs)``: ``output`` is what the model returned, ``batch``
the dict the dataset gave (``mixture``, ``sources``, ``target``, ``label``, ...), ``logs`` named scalars to log.
"""
from __future__ import annotations


import torch
from torch import nn

from .metrics import pit, si_sdr
from .registry import Registry

LOSSES = Registry("loss")
register_loss = LOSSES.register
create_loss = LOSSES.create


@register_loss("si_sdr")
class NegSISDR(nn.Module):
    """Negative SI-SDR of one estimate against ``batch[target]``.

    Shape: output ``(batch, time)`` or ``(batch, 1, time)``; target ``(batch, time)``.
    """

    def __init__(self, target: str = "target"):
        super().__init__()
        self.target = target

    def forward(self, output: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict]:
        ref = batch[self.target]
        value = si_sdr(output.reshape(ref.shape), ref).mean()
        return -value, {"si_sdr": value.detach()}


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
        estimate, logits = output
        value, logs = self.si_sdr(estimate, batch)
        ce = nn.functional.cross_entropy(logits, batch[self.speaker])
        return value + self.weight * ce, {**logs, "speaker_ce": ce.detach()}


@register_loss("pit_si_sdr")
class PITNegSISDR(nn.Module):
    """Permutation-invariant negative SI-SDR against ``batch[target]``.

    Shape: output and target ``(batch, n_src, time)``.
    """

    def __init__(self, target: str = "sources"):
        super().__init__()
        self.target = target

    def forward(self, output: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict]:
        best, _ = pit(si_sdr, output, batch[self.target])
        value = best.mean()
        return -value, {"si_sdr": value.detach()}


@register_loss("cross_entropy")
class CrossEntropy(nn.Module):
    """Cross-entropy of class logits against ``batch["label"]`` (class indices, or soft labels from mixup).

    Shape: output ``(batch, classes)``; label ``(batch,)`` long or ``(batch, classes)`` float probabilities.
    """

    def forward(self, output: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict]:
        label = batch["label"]
        value = nn.functional.cross_entropy(output, label)
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
        audio = batch["audio"]
        with torch.no_grad():
            teacher_logits = self.teacher.to(audio.device)(audio)
        t = self.temperature
        kl = nn.functional.kl_div(nn.functional.log_softmax(output / t, -1),
                                  nn.functional.log_softmax(teacher_logits / t, -1),
                                  log_target=True, reduction="batchmean") * t * t
        hard, logs = self.hard(output, batch)
        return self.soft * kl + (1 - self.soft) * hard, {**logs, "kl": kl.detach(), "ce": hard.detach()}
