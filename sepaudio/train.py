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
import difflib
import importlib
import inspect
import io
import math
import multiprocessing
import os
import random
import re
import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader

from .data.registry import DATASETS
from .cards import write_card
from .errors import ConfigError, ModelFileError, SepaudioError
from .fileio import write_text
from .losses import LOSSES
from .models import SepaudioModel, load_model
from .models.base import FORMAT_VERSION, MODELS, unreadable_reason
from .nn.fast_tcn import cpu_has_bf16
from .plots import plot_training_curves
from .registry import Registry

DEFAULTS: dict[str, Any] = {
    "exp_dir": "exp/run",
    "seed": 0,
    "data": {"batch_size": 4, "num_workers": "auto"},
    "loss": {"args": {}},
    "model": {"args": {}},
    "optim": {"lr": 1e-3, "weight_decay": 0.0, "schedule": "plateau", "plateau_factor": 0.5, "plateau_patience": 3},
    "trainer": {"max_epochs": 20, "gradient_clip_val": 5.0, "early_stop_patience": 10},
}
#: learning-rate schedules (``optim.schedule``): ``plateau`` multiplies the rate by ``plateau_factor`` after
#: ``plateau_patience`` validations without improvement; ``cosine`` anneals it from ``lr`` at the first step to 0 at
#: the last step of ``trainer.max_epochs`` (half a cosine, stepped every batch), for a fixed training budget.
SCHEDULES = ("plateau", "cosine")
#: the keys of each fixed section; a mapping under ``data`` is a split (``train``, ``valid``, ``test``, ...). Model,
#: loss and dataset arguments are checked against their constructors when built.
SECTIONS: dict[str, set[str]] = {
    "": {"exp_dir", "seed", "model", "data", "loss", "optim", "trainer"},
    "model": {"name", "args"}, "loss": {"name", "args"}, "optim": set(DEFAULTS["optim"]),
    "data": {"name", "batch_size", "num_workers", "train_batch_size", "valid_batch_size"},
    "trainer": (set(inspect.signature(L.Trainer).parameters) - {"default_root_dir", "logger"})
    | {"early_stop_patience", "callbacks"},
}


def _number(low: float, integer: bool = False, above: bool = False, none: bool = False):
    """A test of a config value: a finite number of at least ``low`` (above it with ``above``)."""
    def test(value) -> bool:
        if value is None:
            return none
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            return False
        return math.isfinite(value) and (value > low if above else value >= low)
    return test


#: (key, test, what works) for the values a run cannot work without; ``*`` is any data split
VALUES = [
    ("seed", _number(0, integer=True), "an integer >= 0"),
    ("data.batch_size", _number(1, integer=True), "an integer >= 1"),
    ("data.train_batch_size", _number(1, integer=True), "an integer >= 1"),
    ("data.valid_batch_size", _number(1, integer=True), "an integer >= 1"),
    ("data.num_workers", lambda v: v == "auto" or _number(0, integer=True)(v), "an integer >= 0, or auto"),
    ("data.*.segment", _number(0, above=True, none=True), "seconds > 0, or null for whole files"),
    ("data.*.enrollment_seconds", _number(0, above=True, none=True), "seconds > 0, or null for whole files"),
    ("data.*.clip_seconds", _number(0, above=True, none=True), "seconds > 0, or null for whole files"),
    ("data.*.length", _number(1, integer=True), "an integer >= 1 (items)"),
    ("data.*.sample_rate", _number(1, integer=True), "an integer >= 1 (Hz)"),
    ("optim.lr", _number(0, above=True), "a number > 0"),
    ("optim.weight_decay", _number(0), "a number >= 0"),
    ("optim.schedule", lambda v: v in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
    ("optim.plateau_factor", lambda v: _number(0, above=True)(v) and v < 1, "a number between 0 and 1"),
    ("optim.plateau_patience", _number(0, integer=True), "an integer >= 0"),
    ("trainer.max_epochs", lambda v: v is None or v == -1 or _number(1, integer=True)(v),
     "an integer >= 1 (-1: no limit; null: Lightning's default)"),
    ("trainer.early_stop_patience", _number(0, integer=True), "an integer >= 0"),
    ("trainer.gradient_clip_val", _number(0, none=True), "a number >= 0, or null for none"),
]


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
        if not isinstance(config[section], dict) or "name" not in config[section]:
            raise ConfigError(f"{path}: section {section!r} needs a 'name' (e.g. model: {{name: conv_tasnet}}).")
    check_config(config, path)
    return config


def check_config(config: dict, source: str | os.PathLike = "config") -> None:
    """Refuse keys no part of sepaudio reads and values a run cannot work with, naming the key.

    Raises:
        ConfigError: an unknown key (with the nearest known one), a section that is not a mapping, or a value of
            :data:`VALUES` out of range.
    """
    for section, known in SECTIONS.items():
        node = config.get(section) if section else config
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: {section} must be a mapping of keys, got {node!r}.")
        for key, value in node.items():
            if key not in known and not (section == "data" and isinstance(value, dict)):
                name = f"{section}.{key}" if section else key
                near = difflib.get_close_matches(str(key), sorted(known), n=1)
                hint = f"did you mean {(section + '.' if section else '') + near[0]}?" if near else \
                    f"known: {', '.join(sorted(known))}"
                raise ConfigError(f"{source}: unknown key {name!r}; {hint}")
    splits = [key for key, value in config["data"].items() if isinstance(value, dict)]
    for key, test, want in VALUES:
        section, *rest = key.split(".")
        nodes = [(key.replace("*", split), config["data"][split]) for split in splits] if "*" in key else \
            [(key, config.get(section) if rest else config)]
        for name, node in nodes:
            leaf = name.rsplit(".", 1)[-1]
            if isinstance(node, dict) and leaf in node and not test(node[leaf]):
                raise ConfigError(f"{source}: {name}={node[leaf]!r} cannot work; give {want}.")
    if config["optim"].get("schedule") == "cosine" and config["trainer"].get("max_epochs") in (None, -1):
        raise ConfigError(f"{source}: optim.schedule=cosine anneals to 0 at the last epoch, so it needs a number of "
                          f"epochs; set trainer.max_epochs, or use optim.schedule=plateau.")


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


def _float32(output):
    """A model's output (a tensor or a tuple of them) in float32: under ``bf16-mixed`` / ``16-mixed`` the network
    runs in half precision, but losses such as SI-SDR take energy ratios of near-equal signals, which half precision
    rounds too coarsely to learn from."""
    if isinstance(output, tuple):
        return tuple(_float32(part) for part in output)
    return output.float() if output.is_floating_point() else output


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
        value, logs = self.loss(_float32(output), batch)
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


def build(config: dict) -> tuple[SepaudioModel, torch.nn.Module, DataLoader, DataLoader]:
    """Model, loss and data loaders named in ``config``; config mistakes raise :class:`ConfigError`.

    The loaders' workers start anew every epoch, seeded from the process's generator at that point, which a
    checkpoint holds: so a resumed run draws the same items as an uninterrupted one, with workers too.
    """
    model = _named(MODELS, config["model"], "model")
    loss = _named(LOSSES, config["loss"], "loss")
    data = config["data"]
    devices = config.get("trainer", {}).get("devices")
    workers, threads = cpu_share(data["num_workers"], devices if isinstance(devices, int) and devices > 0 else 1)
    if threads != torch.get_num_threads():  # only when needed: torch 2.11's batched LU solve fails after a change
        torch.set_num_threads(threads)
    loaders = []
    for split in ("train", "valid"):
        if split not in data:
            raise ConfigError(f"data.{split}: missing; give the {split} dataset's arguments.")
        dataset = _named(DATASETS, {"name": data["name"], "args": data[split]}, f"data.{split}")
        loaders.append(DataLoader(
            dataset, batch_size=data.get(f"{split}_batch_size", data["batch_size"]), shuffle=split == "train",
            drop_last=split == "train", num_workers=workers,
            multiprocessing_context=worker_context() if workers else None))
    classifier = getattr(model, "classifier", None)
    speakers = getattr(loaders[0].dataset, "speaker_names", None)
    if classifier is not None and speakers is not None and classifier.out_features != len(speakers):
        raise ConfigError(f"model.args.n_speakers: {classifier.out_features}, but data.train has {len(speakers)} "
                          f"speakers (pseudo-speakers of speed_factors included); set n_speakers: {len(speakers)}.")
    return model, loss, *loaders


def worker_context() -> multiprocessing.context.BaseContext:
    """Where data workers come from: a fork server that has imported torch and sepaudio's datasets.

    Forking the training process itself can hang the new worker forever (CPython 3.11 waits for a lock that
    another thread, such as one of the distributed backend's, held at the moment of the fork; seen under DDP).
    The fork server is single-threaded, and forking it is about as fast as forking the trainer.
    """
    multiprocessing.set_forkserver_preload(["torch", "sepaudio.data"])
    return multiprocessing.get_context("forkserver")


def cpu_share(num_workers: int | str, processes: int = 1) -> tuple[int, int]:
    """Data loader workers and torch threads of each of ``processes`` training processes on this machine.

    Each process gets ``cores // processes`` of the usable cores (at least one) as torch threads, or
    ``OMP_NUM_THREADS`` when the environment sets it (the user's or a recipe's choice); ``num_workers: auto`` gives
    it one loader worker less than that, at most 4 (so 0 on one core, 1 on two cores, 4 from six).

    Returns:
        ``(workers, threads)``.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    chosen = os.environ.get("OMP_NUM_THREADS", "")
    threads = max(1, int(chosen) if chosen.isdigit() else cores // processes)
    return (min(4, threads - 1) if num_workers == "auto" else num_workers), threads


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
    except SepaudioError:
        raise
    except TypeError as err:
        rejected = re.search(r"got an unexpected keyword argument '(\w+)'", str(err))
        if rejected and rejected[1] in passed_on:
            raise ConfigError(f"{where}: {err}") from None
        raise
    except (ValueError, MisconfigurationException) as err:  # the constructor refused a value of the config
        raise ConfigError(f"{where}: {err}") from None


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
    """Train (or resume) the run described by ``config`` (from :func:`load_config`, or a dict of its sections, the
    defaults filling what it leaves out); return its ``exp_dir`` (``None`` on the processes of global rank > 0 of a
    distributed run, which write nothing).

    Raises:
        ConfigError: a config mistake (see :func:`check_config`, :func:`build`), or a checkpoint in ``exp_dir`` of
            another model (see :func:`check_resume`); nothing is written then.
    """
    config = _merge(copy.deepcopy(DEFAULTS), copy.deepcopy(config))  # a config built in Python may leave them out
    check_config(config)
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
                 L.pytorch.callbacks.LearningRateMonitor("step" if config["optim"]["schedule"] == "cosine" else "epoch"),
                 *extra]
    loggers = [CSVLog(exp_dir, name="logs", version="")]
    try:
        loggers.append(L.pytorch.loggers.TensorBoardLogger(exp_dir, name="logs", version="tensorboard"))
    except ModuleNotFoundError:
        pass
    last = checkpoints / "last.ckpt"
    if last.exists():
        check_resume(last, model)
        trainer_args["num_sanity_val_steps"] = 0
    trainer = _construct(L.Trainer, {"default_root_dir": exp_dir, "callbacks": callbacks, "logger": loggers,
                                     **trainer_args}, "trainer")
    if str(trainer.precision).startswith("bf16") and trainer.strategy.root_device.type == "cpu" and not cpu_has_bf16():
        L.pytorch.utilities.rank_zero_warn(
            f"trainer.precision={trainer.precision} on a CPU without bfloat16 instructions "
            f"({torch.backends.cpu.get_cpu_capability()}): bfloat16 is emulated here, and a training step takes about "
            f"4x as long as in 32-true; set trainer.precision=32-true on this machine.")
    if trainer.is_global_zero:  # every process runs this function; one writes
        write_text(exp_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
        if last.exists():
            print(f"Resuming from {last}")
        keep_log(loggers[0], last if last.exists() else None)
    trainer.fit(TrainingSystem(model, loss, config["optim"], config["seed"]), train_loader, valid_loader,
                ckpt_path=last if last.exists() else None)
    if trainer.is_global_zero:
        export_best(exp_dir, config)
        plot_training_curves(exp_dir / "logs" / "metrics.csv", exp_dir / "training_curves.png")
        return exp_dir
    return None


def check_resume(checkpoint: Path, model: SepaudioModel) -> None:
    """Check that a run's checkpoint holds the model its config builds, before anything is written.

    Raises:
        ModelFileError: the checkpoint is unreadable or holds no sepaudio model record.
        ConfigError: the checkpoint holds another model, or one with other arguments (naming the keys).
    """
    try:
        record = torch.load(checkpoint, map_location="cpu", weights_only=True)["sepaudio_model"]
        name, args = record["model"], dict(record["model_args"])
        factory = MODELS.get(name)
        if record.get("sepaudio_format", FORMAT_VERSION) < FORMAT_VERSION and hasattr(factory, "upgrade_args"):
            args = factory.upgrade_args(args, record["sepaudio_format"])
    except Exception as err:  # torch raises many types for truncated / foreign files
        raise ModelFileError(f"{checkpoint}: not a readable sepaudio training checkpoint: {unreadable_reason(err)} "
                             f"Move it away to start the run afresh.") from err
    if name != model.registered_name:
        raise ConfigError(f"{checkpoint}: holds a {name} model but the config builds {model.registered_name}; "
                          f"resume with the config it was trained with, or give another exp_dir.")
    ours = _plain(model.model_args)
    differ = sorted(k for k in set(args) | set(ours) if _plain(args.get(k)) != ours.get(k))
    if differ:
        changes = "; ".join(f"model.args.{k}: {_plain(args.get(k))!r} in the checkpoint, {ours.get(k)!r} in the "
                            f"config" for k in differ)
        raise ConfigError(f"{checkpoint}: the run was trained with other model arguments ({changes}); resume with "
                          f"the config it was trained with, or give another exp_dir.")


def _plain(value):
    """Tuples as lists, recursively: how a config (YAML) and a checkpoint spell the same arguments."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


class _CSVWriter(L.pytorch.loggers.csv_logs.ExperimentWriter):
    """Lightning's CSV writer, except that it leaves an existing log to :func:`keep_log` (Lightning's deletes it)
    and rewrites the log for a new column atomically: a run killed at any moment keeps the rows it had written."""

    def _check_log_dir_exists(self) -> None:
        pass

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        _write_csv(Path(self.metrics_file_path), fieldnames, _read_csv(Path(self.metrics_file_path))[1])


class CSVLog(L.pytorch.loggers.CSVLogger):
    """Lightning's CSV logger with :class:`_CSVWriter`."""

    @property
    @rank_zero_experiment
    def experiment(self) -> _CSVWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _CSVWriter(log_dir=self.log_dir)
        return self._experiment


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    """Header and rows of a CSV log, without a last line cut short by a kill."""
    text = path.read_text()
    if text and not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), list(reader)


def _write_csv(path: Path, fieldnames: list[str], rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, text.getvalue())


def keep_log(logger: CSVLog, checkpoint: Path | None) -> None:
    """Keep the rows of the CSV log logged before ``checkpoint`` (rows after it are logged again by the resumed run;
    without a checkpoint, none), rewriting the file atomically."""
    log = Path(logger.log_dir) / "metrics.csv"
    if not log.exists():
        return
    step = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)["global_step"] if checkpoint else 0
    try:
        fields, rows = _read_csv(log)
    except (UnicodeDecodeError, csv.Error) as err:  # not a CSV log: kept aside, never deleted
        aside = log.with_name(log.name + ".unreadable")
        os.replace(log, aside)
        print(f"warning: {log} is not a readable CSV log ({err}); moved it to {aside} and started a new log",
              file=sys.stderr)
        return
    rows = [row for row in rows if (row.get("step") or "").isdigit() and int(row["step"]) < step]
    if not rows:
        log.unlink()
        return
    _write_csv(log, fields, rows)
    logger.experiment.metrics_keys = fields  # the columns the writer appends to


def export_best(exp_dir: Path, config: dict) -> Path:
    """Write the best checkpoint's weights as ``exp_dir/model.pt`` (sepaudio format) and its model card
    ``exp_dir/README.md`` (see :mod:`sepaudio.cards`): the folder is what a user pushes to a model hub."""
    checkpoints = exp_dir / "checkpoints"
    source = checkpoints / "best.ckpt" if (checkpoints / "best.ckpt").exists() else checkpoints / "last.ckpt"
    best = load_model(source)
    path = best.save(exp_dir / "model.pt")
    write_card(exp_dir, best, config)
    return path
