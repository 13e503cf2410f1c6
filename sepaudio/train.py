"""Training on Lightning: ``sepaudio train CONFIG.yaml [key=value ...]``.

Models, datasets and losses are chosen by name in the config (see ``recipes/*/conf.yml``). A run writes into
``exp_dir``: ``config.yaml`` (resolved), ``checkpoints/last.ckpt`` and ``checkpoints/best.ckpt``, ``logs/``
(CSV, and TensorBoard when installed), ``training_curves.png``, and ``model.pt``: the best model in sepaudio format.
Running the same config again resumes from ``last.ckpt`` exactly (weights, optimiser, scheduler, early stopping and
random state), so a killed run loses at most the epoch in progress.

Multi-GPU and multi-node training need no code change: ``trainer.devices=4`` and ``trainer.num_nodes=2`` select
Lightning's DDP strategy (launch one process per node with the usual ``MASTER_ADDR`` / ``NODE_RANK`` variables or
under SLURM / torchrun).
"""
from __future__ import annotations

import copy
import os
import random
import re
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader

from .data import create_dataset
from .errors import ConfigError
from .fileio import atomic_path, write_text
from .losses import create_loss
from .models import SepaudioModel, create_model, load_model

DEFAULTS: dict[str, Any] = {
    "exp_dir": "exp/run",
    "seed": 0,
    "data": {"batch_size": 4, "num_workers": 0},
    "loss": {"args": {}},
    "model": {"args": {}},
    "optim": {"lr": 1e-3, "weight_decay": 0.0, "plateau_factor": 0.5, "plateau_patience": 3},
    "trainer": {"max_epochs": 20, "gradient_clip_val": 5.0, "early_stop_patience": 10},
}


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML that also reads ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3``)."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+|\.[0-9_]+"
               r"(?:[eE][-+]?[0-9]+)?|\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


def parse_yaml(text: str):
    return yaml.load(text, Loader=_YamlLoader)


def load_config(path: str | os.PathLike, overrides: list[str] = ()) -> dict:
    """Read a YAML config, apply ``a.b.c=value`` overrides (values parsed as YAML) and fill defaults.

    Raises:
        ConfigError: missing or malformed file, malformed override, or a required section missing.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file.")
    try:
        config = parse_yaml(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the config must be a mapping of sections (model, data, loss, ...).")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: write it as section.key=value, e.g. optim.lr=5e-4")
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node[leaf] = parse_yaml(value)
    config = _merge(copy.deepcopy(DEFAULTS), config)
    for section in ("model", "data", "loss"):
        if "name" not in config[section]:
            raise ConfigError(f"{path}: section {section!r} needs a 'name' (e.g. model: {{name: conv_tasnet}}).")
    return config


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        base[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return base


class TrainingSystem(L.LightningModule):
    """Any sepaudio model + a named loss: ``loss(model(*batch[input_keys]), batch)``."""

    def __init__(self, model: SepaudioModel, loss: torch.nn.Module, optim: dict):
        super().__init__()
        self.model, self.loss, self.optim = model, loss, optim

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        output = self.model(*[batch[k] for k in self.model.input_keys])
        value, logs = self.loss(output, batch)
        size = batch[self.model.input_keys[0]].shape[0]
        self.log(f"{stage}_loss", value, prog_bar=True, on_step=stage == "train", on_epoch=True, batch_size=size,
                 sync_dist=stage == "val")
        for name, log in logs.items():
            self.log(f"{stage}_{name}", log, batch_size=size, sync_dist=stage == "val")
        return value

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.optim["lr"], weight_decay=self.optim["weight_decay"])
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=self.optim["plateau_factor"], patience=self.optim["plateau_patience"])
        return {"optimizer": opt, "lr_scheduler": {"scheduler": plateau, "monitor": "val_loss"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The model's name and arguments make the checkpoint loadable by sepaudio.load_model; the random state
        # makes a resumed run continue exactly as an uninterrupted one.
        checkpoint["sepaudio_model"] = {k: v for k, v in self.model.serialize().items() if k != "state_dict"}
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        checkpoint["rng"] = {"torch": torch.get_rng_state(), "python": random.getstate(),
                             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Restored before the resumed fit creates its data iterators, which is where an uninterrupted run stands
        # when it saved (the sanity validation, which would draw numbers in between, is skipped on resume).
        rng = checkpoint["rng"]
        torch.set_rng_state(rng["torch"])
        kind, keys, pos, has_gauss, gauss = rng["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        random.setstate(rng["python"])


def build(config: dict) -> tuple[SepaudioModel, torch.nn.Module, DataLoader, DataLoader]:
    """Model, loss and data loaders named in ``config``; config mistakes raise :class:`ConfigError`."""
    model = _named(create_model, config["model"], "model")
    loss = _named(create_loss, config["loss"], "loss")
    data = config["data"]
    loaders = []
    for split in ("train", "valid"):
        if split not in data:
            raise ConfigError(f"data.{split}: missing; give the {split} dataset's arguments.")
        dataset = _named(create_dataset, {"name": data["name"], "args": data[split]}, f"data.{split}")
        loaders.append(DataLoader(
            dataset, batch_size=data.get(f"{split}_batch_size", data["batch_size"]), shuffle=split == "train",
            drop_last=split == "train", num_workers=data["num_workers"], persistent_workers=data["num_workers"] > 0))
    return model, loss, *loaders


def _named(factory, section: dict, where: str):
    try:
        return factory(section["name"], **(section.get("args") or {}))
    except (KeyError, TypeError) as err:
        raise ConfigError(f"{where}: {err}") from err


def train(config: dict) -> Path:
    """Train (or resume) the run described by ``config``; return its ``exp_dir``."""
    exp_dir = Path(config["exp_dir"])
    L.seed_everything(config["seed"], workers=True, verbose=False)
    model, loss, train_loader, valid_loader = build(config)
    write_text(exp_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    trainer_args = dict(config["trainer"])
    patience = trainer_args.pop("early_stop_patience")
    checkpoints = exp_dir / "checkpoints"
    best = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=checkpoints, filename="best", monitor="val_loss", mode="min", save_top_k=1, save_last=True,
        enable_version_counter=False)
    callbacks = [best, L.pytorch.callbacks.EarlyStopping(monitor="val_loss", patience=patience),
                 L.pytorch.callbacks.LearningRateMonitor()]
    loggers = [L.pytorch.loggers.CSVLogger(exp_dir, name="logs", version="")]
    try:
        loggers.append(L.pytorch.loggers.TensorBoardLogger(exp_dir, name="logs", version="tensorboard"))
    except ModuleNotFoundError:
        pass
    last = checkpoints / "last.ckpt"
    if last.exists():
        trainer_args["num_sanity_val_steps"] = 0
    try:
        trainer = L.Trainer(default_root_dir=exp_dir, callbacks=callbacks, logger=loggers, **trainer_args)
    except TypeError as err:
        raise ConfigError(f"trainer: {err}") from err
    if last.exists():
        print(f"Resuming from {last}")
    trainer.fit(TrainingSystem(model, loss, config["optim"]), train_loader, valid_loader,
                ckpt_path=last if last.exists() else None)
    if trainer.global_rank == 0:
        export_best(exp_dir)
        plot_curves(exp_dir)
    return exp_dir


def export_best(exp_dir: Path) -> Path:
    """Write the best checkpoint's weights as ``exp_dir/model.pt`` (sepaudio format)."""
    checkpoints = exp_dir / "checkpoints"
    source = checkpoints / "best.ckpt" if (checkpoints / "best.ckpt").exists() else checkpoints / "last.ckpt"
    best = load_model(source)
    return best.save(exp_dir / "model.pt")


def plot_curves(exp_dir: Path) -> Path | None:
    """Draw train / validation loss per epoch from the CSV log into ``training_curves.png``."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = exp_dir / "logs" / "metrics.csv"
    if not log.exists():
        return None
    curves: dict[str, dict[int, float]] = {"train_loss_epoch": {}, "val_loss": {}}
    with open(log, newline="") as f:
        for row in csv.DictReader(f):
            for name, points in curves.items():
                if row.get(name):
                    points[int(row["epoch"])] = float(row[name])
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in curves.items():
        if points:
            ax.plot(list(points), list(points.values()), marker="o", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    out = exp_dir / "training_curves.png"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out
