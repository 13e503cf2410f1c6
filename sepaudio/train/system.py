"""The Lightning module every sepaudio model trains in, its random state (exact resume) and its plateau schedule."""
from __future__ import annotations

import math
import random

import lightning as L
import numpy as np
import torch

from ..models import SepaudioModel
from ..models.classifier import AudioClassifier
from ..optional import require

__all__ = ["TrainingSystem", "PlateauScheduler", "seed_process", "rng_state", "set_rng_state", "logged_metrics"]


def seed_process(seed: int, rank: int) -> None:
    """Seed torch (CPU and CUDA), numpy and random for process ``rank`` of a run.

    Every rank then draws its own random items, and so does each of its data workers (Lightning seeds them from
    the rank's generator and the rank).
    """
    torch_seed, numpy_seed, python_seed = np.random.SeedSequence([seed, rank]).generate_state(3)
    torch.manual_seed(int(torch_seed))
    np.random.seed(int(numpy_seed))
    random.seed(int(python_seed))


def rng_state(device: torch.device) -> dict:
    """This process's random state: torch (and the CUDA generator of ``device``), numpy, random; tensors and
    plain values only, so that checkpoints load with ``weights_only=True``."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    """Restore a state from :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


class PlateauScheduler(L.Callback):
    """Multiply the learning rate by ``factor`` when ``val_loss`` has not improved for more than ``patience``
    validations (torch's ``ReduceLROnPlateau``), stepped as soon as a validation ends.

    Lightning steps a plateau scheduler after the epoch's checkpoint is written, and a resumed run skips that step
    for the epoch it resumes from (it has no validation loss for it): the learning rate then differs from the
    uninterrupted run's. Stepped here, the step is in the checkpoint, with the scheduler's state.
    """

    def __init__(self, factor: float, patience: int):
        self.factor, self.patience = factor, patience
        self.scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self.restored: dict | None = None  # from a checkpoint, loaded before the optimizer exists

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(trainer.optimizers[0], factor=self.factor,
                                                                    patience=self.patience)
        if self.restored is not None:
            self.scheduler.load_state_dict(self.restored)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.scheduler.step(float(trainer.callback_metrics["val_loss"]))

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.restored = state_dict


def _float32(output):
    """A model's output (a tensor or a tuple of them) in float32: under ``bf16-mixed`` / ``16-mixed`` the network
    runs in half precision, but losses such as SI-SDR take energy ratios of near-equal signals, which half precision
    rounds too coarsely to learn from."""
    if isinstance(output, tuple):
        return tuple(_float32(part) for part in output)
    return output.float() if output.is_floating_point() else output


def logged_metrics(model: SepaudioModel) -> list[str]:
    """The validation metrics a run of ``model`` logs every epoch, besides the loss's own: for a classifier,
    ``val_macro_f1`` (F1 averaged over the classes, each counting the same) and ``val_f1_<label>`` per class."""
    if not isinstance(model, AudioClassifier):
        return ["val_loss"]
    return ["val_loss", "val_macro_f1", *(f"val_f1_{label}" for label in model.labels)]


def f1_scores(stats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class F1 and their mean from torchmetrics' per-class stat scores ``[tp, fp, tn, fn, support]`` (a class
    never predicted nor present has F1 0 and counts in the mean, as in ``sepaudio evaluate``).

    Shape: stats ``(classes, 5)`` -> ``((classes,), ())``.
    """
    tp, fp, fn = stats[:, 0].float(), stats[:, 1].float(), stats[:, 3].float()
    f1 = 2 * tp / (2 * tp + fp + fn).clamp_min(1)
    return f1, f1.mean()


class TrainingSystem(L.LightningModule):
    """Any sepaudio model + a named loss: ``loss(model(*batch[input_keys]), batch)``.

    A classifier's run also logs the F1 of every class and their mean (``val_f1_<label>``, ``val_macro_f1``) at
    the end of every validation (see :func:`logged_metrics`), counted over all the processes.

    Args:
        model, loss: what is trained and on what.
        optim: the config's ``optim`` section.
        seed: the run's seed; each process seeds its random draws with it and its rank.
    """

    def __init__(self, model: SepaudioModel, loss: torch.nn.Module, optim: dict, seed: int):
        super().__init__()
        self.model, self.loss, self.optim, self.seed = model, loss, optim, seed
        self.val_stats = None
        if isinstance(model, AudioClassifier):  # states not persistent: checkpoints hold the same keys as before
            classification = require("torchmetrics.classification", "training")
            self.val_stats = classification.MulticlassStatScores(model.num_classes, average="none")

    def setup(self, stage: str) -> None:
        # In each process, after the model was built (the same on every rank), before a checkpoint is restored.
        seed_process(self.seed, self.global_rank)

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        output = _float32(self.model(*[batch[k] for k in self.model.input_keys]))
        value, logs = self.loss(output, batch)
        size = batch[self.model.input_keys[0]].shape[0]
        # Averaged over the processes: the plateau scheduler, early stopping and checkpointing read the same value
        # on every rank.
        self.log(f"{stage}_loss", value, prog_bar=True, on_step=stage == "train", on_epoch=True, batch_size=size,
                 sync_dist=True)
        for name, log in logs.items():
            self.log(f"{stage}_{name}", log, batch_size=size, sync_dist=True)
        if stage == "val" and self.val_stats is not None:
            label = batch["label"]
            self.val_stats.update(output.argmax(-1), label.argmax(-1) if label.dim() == 2 else label)
        return value

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        if self.val_stats is None:
            return
        f1, macro = f1_scores(self.val_stats.compute())  # summed over the processes: the same on every rank
        self.val_stats.reset()
        self.log("val_macro_f1", macro, prog_bar=True)
        for label, value in zip(self.model.labels, f1):
            self.log(f"val_f1_{label}", value)

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.optim["lr"], weight_decay=self.optim["weight_decay"])
        if self.optim["schedule"] != "cosine":
            return optimizer
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        cosine = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / steps)))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": cosine, "interval": "step"}}

    def configure_callbacks(self) -> list[L.Callback]:
        if self.optim["schedule"] != "plateau":
            return []
        return [PlateauScheduler(self.optim["plateau_factor"], self.optim["plateau_patience"])]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The model's name and arguments make the checkpoint loadable by sepaudio.load_model; the random state of
        # every rank (gathered: every rank runs this hook, rank 0 writes the file) makes a resumed run continue
        # exactly as an uninterrupted one.
        checkpoint["sepaudio_model"] = {k: v for k, v in self.model.serialize().items() if k != "state_dict"}
        state = rng_state(self.trainer.strategy.root_device)
        checkpoint["rng"] = [state] * self.trainer.world_size
        if self.trainer.world_size > 1:
            torch.distributed.all_gather_object(checkpoint["rng"], state)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Restored before the resumed fit creates its data iterators, which is where an uninterrupted run stands
        # when it saved (the sanity validation, which would draw numbers in between, is skipped on resume).
        states = checkpoint.get("rng")
        if not isinstance(states, list) or len(states) != self.trainer.world_size:  # another process count
            L.pytorch.utilities.rank_zero_warn(
                f"the checkpoint holds no random state for {self.trainer.world_size} process(es): the run continues "
                f"with fresh random draws, not exactly as an uninterrupted run would.")
            return
        set_rng_state(states[self.global_rank], self.trainer.strategy.root_device)


