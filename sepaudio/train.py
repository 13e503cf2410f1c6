"""Training on Lightning: ``sepaudio train CONFIG.yaml [key=value ...]``.

Models, datasets and losses are chosen by name in the config (see ``recipes/*/conf.yml``). A run writes into
``exp_dir``: ``config.yaml`` (resolved), ``checkpoints/last.ckpt`` and ``checkpoints/best.ckpt``, ``logs/``
(CSV, and TensorBoard when installed), ``training_curves.png``, and ``model.pt``: the best model in sepaudio format.
Running the same config again resumes from ``last.ckpt`` exactly (weights, optimiser, scheduler, early stopping and
random state), so a killed run loses at most the epoch in progress. ``trainer.callbacks`` adds Lightning callbacks:
``[{class_path: package.module.Class, init_args: {...}}]``.

Multi-GPU and multi-node training need no code change: ``trainer.devices=4`` and ``trainer.num_nodes=2`` select
Lightning's DDP strategy (launch one process per node with the usual ``MASTER_ADDR`` / ``NODE_RANK`` variables or
under SLURM / torchrun). ``data.batch_size`` is per process. Each process draws its own share of every epoch (the
samplers shard by rank; random items are seeded per rank, worker and epoch), only rank 0 writes files, and each
rank's random state is saved in the checkpoint, so a resumed multi-process run continues exactly too.
"""
from __future__ import annotations

import copy
import csv
import importlib
import inspect
import os
import random
import re
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader

from .data.registry import DATASETS
from .errors import ConfigError
from .fileio import write_text
from .losses import LOSSES
from .models import SepaudioModel, load_model
from .models.base import MODELS
from .plots import plot_training_curves
from .registry import Registry

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


class TrainingSystem(L.LightningModule):
    """Any sepaudio model + a named loss: ``loss(model(*batch[input_keys]), batch)``.

    Args:
        model, loss: what is trained and on what.
        optim: the config's ``optim`` section.
        seed: the run's seed; each process seeds its random draws with it and its rank.
    """

    def __init__(self, model: SepaudioModel, loss: torch.nn.Module, optim: dict, seed: int):
        super().__init__()
        self.model, self.loss, self.optim, self.seed = model, loss, optim, seed

    def setup(self, stage: str) -> None:
        # In each process, after the model was built (the same on every rank), before a checkpoint is restored.
        seed_process(self.seed, self.global_rank)

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        output = self.model(*[batch[k] for k in self.model.input_keys])
        value, logs = self.loss(output, batch)
        size = batch[self.model.input_keys[0]].shape[0]
        # Averaged over the processes: the plateau scheduler, early stopping and checkpointing read the same value
        # on every rank.
        self.log(f"{stage}_loss", value, prog_bar=True, on_step=stage == "train", on_epoch=True, batch_size=size,
                 sync_dist=True)
        for name, log in logs.items():
            self.log(f"{stage}_{name}", log, batch_size=size, sync_dist=True)
        return value

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.optim["lr"], weight_decay=self.optim["weight_decay"])

    def configure_callbacks(self) -> list[L.Callback]:
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


def build(config: dict) -> tuple[SepaudioModel, torch.nn.Module, DataLoader, DataLoader]:
    """Model, loss and data loaders named in ``config``; config mistakes raise :class:`ConfigError`.

    The loaders' workers start anew every epoch, seeded from the process's generator at that point, which a
    checkpoint holds: so a resumed run draws the same items as an uninterrupted one, with workers too.
    """
    model = _named(MODELS, config["model"], "model")
    loss = _named(LOSSES, config["loss"], "loss")
    data = config["data"]
    loaders = []
    for split in ("train", "valid"):
        if split not in data:
            raise ConfigError(f"data.{split}: missing; give the {split} dataset's arguments.")
        dataset = _named(DATASETS, {"name": data["name"], "args": data[split]}, f"data.{split}")
        loaders.append(DataLoader(
            dataset, batch_size=data.get(f"{split}_batch_size", data["batch_size"]), shuffle=split == "train",
            drop_last=split == "train", num_workers=data["num_workers"]))
    return model, loss, *loaders


def _named(registry: Registry, section: dict, where: str):
    """Build the entry ``section["name"]`` of ``registry`` with the keyword arguments ``section["args"]``.

    Raises:
        ConfigError: the name is not registered, or an argument is not one the entry takes (see :func:`_construct`).
    """
    try:
        factory = registry.get(section["name"])
    except KeyError as err:
        raise ConfigError(f"{where}: {err.args[0]}") from None
    return _construct(factory, section.get("args") or {}, where)


def _construct(factory, args: dict, where: str):
    """``factory(**args)``, where a wrong argument name of the config raises :class:`ConfigError`.

    The names are checked against ``factory``'s signature; those it passes on through ``**kwargs`` are wrong when
    the call they reach rejects them. Any other exception raised while constructing (a bug included) propagates.
    """
    signature = inspect.signature(factory)
    try:
        bound = signature.bind(**args)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}; it takes {', '.join(signature.parameters)}") from None
    passed_on = {name for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD
                 for name in bound.arguments.get(p.name, {})}
    try:
        return factory(**args)
    except TypeError as err:
        rejected = re.search(r"got an unexpected keyword argument '(\w+)'", str(err))
        if rejected and rejected[1] in passed_on:
            raise ConfigError(f"{where}: {err}") from None
        raise


def _callbacks(specs: list[dict]) -> list[L.Callback]:
    """Extra Lightning callbacks from ``trainer.callbacks``: ``[{class_path: package.module.Class, init_args: {}}]``
    (LightningCLI's format)."""
    callbacks = []
    for spec in specs:
        path = spec.get("class_path", "") if isinstance(spec, dict) else ""
        module, _, name = path.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as err:
            raise ConfigError(f"trainer.callbacks: cannot import {path!r} ({err}); give each callback as "
                              f"{{class_path: package.module.Class, init_args: {{...}}}}") from err
        callbacks.append(_construct(cls, spec.get("init_args") or {}, f"trainer.callbacks: {path}"))
    return callbacks


def train(config: dict) -> Path | None:
    """Train (or resume) the run described by ``config``; return its ``exp_dir`` (``None`` on the processes of
    global rank > 0 of a distributed run, which write nothing)."""
    exp_dir = Path(config["exp_dir"])
    L.seed_everything(config["seed"], workers=True, verbose=False)
    model, loss, train_loader, valid_loader = build(config)
    trainer_args = dict(config["trainer"])
    patience = trainer_args.pop("early_stop_patience")
    extra = _callbacks(trainer_args.pop("callbacks", []))
    checkpoints = exp_dir / "checkpoints"
    # best.ckpt when the validation loss improves; last.ckpt at the end of every epoch (Lightning's save_last writes
    # it only with a new best), saved after best.ckpt so that it holds the best checkpoint's updated state
    best = L.pytorch.callbacks.ModelCheckpoint(dirpath=checkpoints, filename="best", monitor="val_loss", mode="min",
                                               enable_version_counter=False)
    latest = L.pytorch.callbacks.ModelCheckpoint(dirpath=checkpoints, filename="last", enable_version_counter=False)
    callbacks = [best, latest, L.pytorch.callbacks.EarlyStopping(monitor="val_loss", patience=patience),
                 L.pytorch.callbacks.LearningRateMonitor("epoch"), *extra]
    loggers = [L.pytorch.loggers.CSVLogger(exp_dir, name="logs", version="")]
    try:
        loggers.append(L.pytorch.loggers.TensorBoardLogger(exp_dir, name="logs", version="tensorboard"))
    except ModuleNotFoundError:
        pass
    last = checkpoints / "last.ckpt"
    if last.exists():
        trainer_args["num_sanity_val_steps"] = 0
    trainer = _construct(L.Trainer, {"default_root_dir": exp_dir, "callbacks": callbacks, "logger": loggers,
                                     **trainer_args}, "trainer")
    if trainer.is_global_zero:  # every process runs this function; one writes
        write_text(exp_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
        if last.exists():
            print(f"Resuming from {last}")
            keep_log(loggers[0], last)
    trainer.fit(TrainingSystem(model, loss, config["optim"], config["seed"]), train_loader, valid_loader,
                ckpt_path=last if last.exists() else None)
    if trainer.is_global_zero:
        export_best(exp_dir)
        plot_training_curves(exp_dir / "logs" / "metrics.csv", exp_dir / "training_curves.png")
        return exp_dir
    return None


def keep_log(logger: L.pytorch.loggers.CSVLogger, checkpoint: Path) -> None:
    """Put back the rows of the CSV log up to ``checkpoint``, which Lightning's CSV logger deletes when a resumed
    run opens it (rows logged after the checkpoint are logged again by the resumed run)."""
    log = Path(logger.log_dir) / "metrics.csv"
    if not log.exists():
        return
    with open(log, newline="") as f:
        rows = list(csv.DictReader(f))
    step = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)["global_step"]
    with warnings.catch_warnings():  # "previous log files ... will be deleted": they are put back
        warnings.filterwarnings("ignore", "Experiment logs directory")
        writer = logger.experiment  # deletes the file
    for row in rows:
        if int(row["step"]) < step:
            writer.log_metrics({k: v for k, v in row.items() if v and k != "step"}, int(row["step"]))
    writer.save()


def export_best(exp_dir: Path) -> Path:
    """Write the best checkpoint's weights as ``exp_dir/model.pt`` (sepaudio format)."""
    checkpoints = exp_dir / "checkpoints"
    source = checkpoints / "best.ckpt" if (checkpoints / "best.ckpt").exists() else checkpoints / "last.ckpt"
    best = load_model(source)
    return best.save(exp_dir / "model.pt")
