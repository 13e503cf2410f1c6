"""``sepaudio train CONFIG.yaml [key=value ...]``: build what the config names and fit it with Lightning.

A run writes into ``exp_dir``, a folder that is new or that a sepaudio run created (see :mod:`sepaudio.rundir`;
one training at a time): ``config.yaml`` (resolved), ``checkpoints/last.ckpt`` and ``checkpoints/best.ckpt``,
``logs/`` (CSV, and TensorBoard when installed), ``training_curves.png``, and ``model.pt``: the best model in
sepaudio format, with its model card ``README.md``. Running the same config again resumes from ``last.ckpt``
exactly (weights, optimiser, scheduler, early stopping and random state), so a killed run loses at most the epoch
in progress; SIGINT and SIGTERM end a run after the current batch, keeping the last epoch's checkpoint.

Multi-GPU and multi-node training need no code change: ``trainer.devices=4`` and ``trainer.num_nodes=2`` select
Lightning's DDP strategy (launch one process per node with the usual ``MASTER_ADDR`` / ``NODE_RANK`` variables or
under SLURM / torchrun). ``data.batch_size`` is per process. Each process draws its own share of every epoch (the
samplers shard by rank; random items are seeded per rank, worker and epoch), only rank 0 writes files, and each
rank's random state is saved in the checkpoint, so a resumed multi-process run continues exactly too.
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import multiprocessing
import os
import re
import sys
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader

from ..cards import write_card
from ..config import DEFAULTS, MONITORS, check_arguments, check_config, merge
from ..data.registry import DATASETS
from ..errors import ConfigError, ModelFileError, SepaudioError, Terminated
from ..fileio import write_text
from ..losses import LOSSES
from ..models import SepaudioModel, load_model
from ..models.base import FORMAT_VERSION, MODELS
from ..models.loading import unreadable_reason
from ..nn.fast_tcn import cpu_has_bf16
from ..plots import plot_training_curves
from ..registry import Registry
from ..rundir import claim_run_dir, run_lock
from .callbacks import AtomicCheckpointIO, callback_factory
from .logs import CSVLog, keep_log
from .system import TrainingSystem, logged_metrics

__all__ = ["train", "build", "cpu_share", "worker_context", "check_resume", "export_best"]


def build(config: dict) -> tuple[SepaudioModel, torch.nn.Module, DataLoader, DataLoader]:
    """Model, loss and data loaders named in ``config``; config mistakes raise :class:`ConfigError`.

    The loaders' workers start anew every epoch, seeded from the process's generator at that point, which a
    checkpoint holds: so a resumed run draws the same items as an uninterrupted one, with workers too.
    """
    model = _named(MODELS, config["model"], "model")
    if config["model"].get("init_from"):  # extraction that starts from separation (train/warmstart.py)
        from .warmstart import init_from_separator
        init_from_separator(model, config["model"]["init_from"])
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
        # balance: sampler (classification): class-balanced draws; Lightning shards them over DDP processes
        sampler = dataset.balanced_sampler() if getattr(dataset, "balance", None) == "sampler" else None
        loaders.append(DataLoader(
            dataset, batch_size=data.get(f"{split}_batch_size", data["batch_size"]),
            shuffle=split == "train" and sampler is None, sampler=sampler, drop_last=split == "train",
            num_workers=workers,
            multiprocessing_context=worker_context() if workers else None))
    classifier = getattr(model, "classifier", None)
    speakers = getattr(loaders[0].dataset, "speaker_names", None)
    if classifier is not None and speakers is not None and classifier.out_features != len(speakers):
        raise ConfigError(f"model.args.n_speakers: {classifier.out_features}, but data.train has {len(speakers)} "
                          f"speakers (pseudo-speakers of speed_factors included); set n_speakers: {len(speakers)}.")
    return model, loss, *loaders


def worker_context() -> multiprocessing.context.BaseContext:
    """Where data workers come from: a fork server that has imported torch, Lightning and sepaudio's datasets.

    Forking the training process itself can hang the new worker forever (CPython 3.11 waits for a lock that
    another thread, such as one of the distributed backend's, held at the moment of the fork; seen under DDP).
    The fork server is single-threaded, and forking it is about as fast as forking the trainer. Lightning is
    imported there once because every worker needs it (its worker seeding function comes with the loader), which
    would otherwise cost each new worker seconds of CPU, in every epoch.
    """
    multiprocessing.set_forkserver_preload(["torch", "lightning", "sepaudio.data"])
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
    check_arguments(factory, args, where)
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
    except RuntimeError as err:  # torch refusing a size the config gave (a negative number of channels, say)
        if "negative dimension" not in str(err):
            raise
        raise ConfigError(f"{where}: {err}; sizes must be positive.") from None


def _callbacks(specs: list[dict]) -> list[L.Callback]:
    """The callbacks ``trainer.callbacks`` names: ``[{name: NAME, args: {...}}]`` (see :mod:`.callbacks`)."""
    return [_construct(callback_factory(spec["name"]), spec.get("args") or {}, f"trainer.callbacks: {spec['name']}")
            for spec in specs]


def _is_first_process() -> bool:
    """Whether this process is rank 0 of its run, before Lightning knows (the launcher's environment variables)."""
    return all(os.environ.get(name, "0") == "0" for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def train(config: dict, callbacks: list[L.Callback] = ()) -> Path | None:
    """Train (or resume) the run described by ``config`` (from :func:`~sepaudio.config.load_config`, or a dict of
    its sections, the defaults filling what it leaves out); return its ``exp_dir`` (``None`` on the processes of
    global rank > 0 of a distributed run, which write nothing).

    Args:
        config: the run's sections; it names everything it uses (see :mod:`sepaudio.config`).
        callbacks: Lightning callback objects added to those the config names (Python callers only).

    Raises:
        ConfigError: a config mistake (see :func:`~sepaudio.config.check_config`, :func:`build`), an ``exp_dir``
            that is not a sepaudio run folder or that another training is writing into, or a checkpoint in
            ``exp_dir`` of another model (see :func:`check_resume`); nothing is written then.
        KeyboardInterrupt: SIGINT (:class:`~sepaudio.errors.Terminated` for SIGTERM) ended the run after the current
            batch; ``checkpoints/last.ckpt`` of the last whole epoch resumes it.
    """
    config = merge(copy.deepcopy(DEFAULTS), copy.deepcopy(config))  # a config built in Python may leave them out
    check_config(config)
    exp_dir = Path(config["exp_dir"])
    L.seed_everything(config["seed"], workers=True, verbose=False)
    model, loss, train_loader, valid_loader = build(config)
    trainer_args = dict(config["trainer"])
    patience, monitor = trainer_args.pop("early_stop_patience"), trainer_args.pop("monitor", "val_loss")
    if monitor not in logged_metrics(model):
        raise ConfigError(f"trainer.monitor: a {model.registered_name} run does not log {monitor} (it logs "
                          f"{', '.join(logged_metrics(model))}); set trainer.monitor=val_loss.")
    extra = [*_callbacks(trainer_args.pop("callbacks", [])), *callbacks]
    last = exp_dir / "checkpoints" / "last.ckpt"
    if last.exists():
        check_resume(last, model)
        check_resumed_settings(exp_dir / "config.yaml", config)
        trainer_args["num_sanity_val_steps"] = 0
    trainer = _trainer(exp_dir, config, trainer_args, patience, extra, monitor)
    # Before anything is written: the folder must be sepaudio's, and no other training may be writing into it.
    first = _is_first_process()
    if first:
        claim_run_dir(exp_dir, config, resuming=last.exists())
    with run_lock(exp_dir) if first else contextlib.nullcontext():
        if trainer.is_global_zero:  # every process runs this function; one writes
            write_text(exp_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
            if last.exists():
                print(f"Resuming from {last}")
            keep_log(trainer.loggers[0], last if last.exists() else None)
        try:
            trainer.fit(TrainingSystem(model, loss, config["optim"], config["seed"]), train_loader, valid_loader,
                        ckpt_path=last if last.exists() else None)
        except SystemExit as stop:  # Lightning ends an interrupted fit with sys.exit
            if trainer.state.status != "interrupted":
                raise
            where = f"; run the same command again to resume from {last}" if last.exists() else ""
            print(f"training stopped by {'SIGTERM' if trainer.received_sigterm else 'SIGINT'}{where}.",
                  file=sys.stderr)
            raise (Terminated() if trainer.received_sigterm else KeyboardInterrupt()) from stop
        if trainer.is_global_zero:
            export_best(exp_dir, config)
            plot_training_curves(exp_dir / "logs" / "metrics.csv", exp_dir / "training_curves.png")
            return exp_dir
    return None


def _trainer(exp_dir: Path, config: dict, trainer_args: dict, patience: int, extra: list,
             monitor: str = "val_loss") -> L.Trainer:
    """Lightning's Trainer with sepaudio's checkpoints, early stopping on ``monitor`` (see
    :data:`~sepaudio.config.MONITORS`), logs and atomic checkpoint writes."""
    checkpoints = exp_dir / "checkpoints"
    # best.ckpt when the monitored metric improves; last.ckpt at the end of every epoch (Lightning's save_last writes
    # it only with a new best), saved after best.ckpt so that it holds the best checkpoint's updated state
    best = L.pytorch.callbacks.ModelCheckpoint(dirpath=checkpoints, filename="best", monitor=monitor,
                                               mode=MONITORS[monitor], enable_version_counter=False)
    latest = L.pytorch.callbacks.ModelCheckpoint(dirpath=checkpoints, filename="last", enable_version_counter=False)
    # checked when a validation ends, not when a training epoch does: a run that trainer.max_steps ends in the
    # middle of an epoch has no validation for that epoch
    stop = L.pytorch.callbacks.EarlyStopping(monitor=monitor, mode=MONITORS[monitor], patience=patience,
                                             check_on_train_epoch_end=False)
    callbacks = [best, latest, stop,
                 L.pytorch.callbacks.LearningRateMonitor("step" if config["optim"]["schedule"] == "cosine" else "epoch"),
                 *extra]
    loggers = [CSVLog(exp_dir, name="logs", version="")]
    try:
        loggers.append(L.pytorch.loggers.TensorBoardLogger(exp_dir, name="logs", version="tensorboard"))
    except ModuleNotFoundError:
        pass
    trainer = _construct(L.Trainer, {"default_root_dir": exp_dir, "callbacks": callbacks, "logger": loggers,
                                     "plugins": [AtomicCheckpointIO()], **trainer_args}, "trainer")
    if str(trainer.precision).startswith("bf16") and trainer.strategy.root_device.type == "cpu" and not cpu_has_bf16():
        L.pytorch.utilities.rank_zero_warn(
            f"trainer.precision={trainer.precision} on a CPU without bfloat16 instructions "
            f"({torch.backends.cpu.get_cpu_capability()}): bfloat16 is emulated here, and a training step takes about "
            f"4x as long as in 32-true; set trainer.precision=32-true on this machine.")
    return trainer


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


#: settings a resumed run cannot change: the checkpoint's optimiser, scheduler and random state hold the old ones
FIXED_ON_RESUME = ("seed", "optim", "loss")


def check_resumed_settings(saved: Path, config: dict) -> None:
    """Refuse a resume whose config changes a setting the checkpoint fixes (see :data:`FIXED_ON_RESUME`) rather
    than recording a change that would not apply.

    Raises:
        ConfigError: naming each changed key, with both values.
    """
    try:
        before = yaml.safe_load(saved.read_text())
    except (OSError, yaml.YAMLError):
        return  # no readable record of the run's settings (the checkpoint itself was checked)
    if not isinstance(before, dict):
        return
    changed = [f"{key}: {_plain(before.get(key))!r} -> {_plain(config.get(key))!r}" for key in FIXED_ON_RESUME
               if _plain(before.get(key)) != _plain(config.get(key))]
    if changed:
        raise ConfigError(f"{saved.parent}: resuming this run cannot apply {'; '.join(changed)} (the checkpoint "
                          f"holds the optimiser, schedule and random state of the old settings); resume with them, "
                          f"or give another exp_dir to train with the new ones.")


def _plain(value):
    """Tuples as lists, recursively: how a config (YAML) and a checkpoint spell the same arguments."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def export_best(exp_dir: Path, config: dict) -> Path:
    """Write the best checkpoint's weights as ``exp_dir/model.pt`` (sepaudio format) and its model card
    ``exp_dir/README.md`` (see :mod:`sepaudio.cards`): the folder is what a user pushes to a model hub."""
    checkpoints = exp_dir / "checkpoints"
    source = checkpoints / "best.ckpt" if (checkpoints / "best.ckpt").exists() else checkpoints / "last.ckpt"
    best = load_model(source)
    path = best.save(exp_dir / "model.pt")
    write_card(exp_dir, best, config)
    return path
