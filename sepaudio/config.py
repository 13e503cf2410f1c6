"""Run configs: YAML read within bounds, ``key=value`` overrides, defaults, and checks that name the key.

Configs are data. They choose registered things by name (models, datasets, losses, callbacks) and give plain
values; nothing in a config imports or calls Python code. The YAML reader is PyYAML's safe loader with limits on
size, nesting and alias expansion, so a hostile file gets a :class:`~sepaudio.errors.ConfigError`, not a crash.
"""
from __future__ import annotations

import ast
import collections.abc
import copy
import difflib
import functools
import importlib.util
import inspect
import math
import os
import re
import reprlib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

__all__ = ["DEFAULTS", "SCHEDULES", "MONITORS", "BALANCE", "load_config", "check_config", "check_arguments", "parse_yaml", "merge",
           "MAX_CONFIG_BYTES"]

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
#: what early stopping and ``best.ckpt`` follow (``trainer.monitor``): the validation loss (lower is better), or the
#: macro-averaged F1 of a classifier's validation clips (higher is better; every class counts the same)
MONITORS = {"val_loss": "min", "val_macro_f1": "max"}
#: ways of training on classes of unequal size (``data.train.balance`` of classification datasets): ``none``;
#: ``sampler``: clips drawn with probability inversely proportional to their class's size, so every class comes up
#: equally often (:meth:`~sepaudio.data.classification.ClipDataset.balanced_sampler`); ``weights``: every item
#: carries its class's inverse frequency, which the cross-entropy weighs it by
BALANCE = ("none", "sampler", "weights")
#: bounds of a YAML document: bytes, nesting depth, and nodes after expanding aliases
MAX_CONFIG_BYTES, MAX_DEPTH, MAX_NODES = 1 << 20, 64, 100_000
#: Trainer arguments a config may not set: sepaudio sets them itself (``callbacks`` is sepaudio's own key)
TRAINER_RESERVED = {"default_root_dir", "logger", "callbacks", "plugins"}
_TOP = {"exp_dir", "seed", "model", "data", "loss", "optim", "trainer"}


@functools.lru_cache(maxsize=None)
def _trainer_keys() -> frozenset[str] | None:
    """The keys of ``trainer``: the arguments of Lightning's ``Trainer``, less those sepaudio sets (``None`` on an
    inference-only install, where the trainer section is not used).

    They are read from Lightning's source with :mod:`ast`, so that checking a config does not import Lightning
    (seconds of CPU for every ``evaluate``); Lightning is imported only when its source cannot be read.
    """
    spec = importlib.util.find_spec("lightning")
    if spec is None:
        return None
    try:
        source = Path(spec.submodule_search_locations[0], "pytorch", "trainer", "trainer.py").read_text()
        init = next(node for cls in ast.parse(source).body if isinstance(cls, ast.ClassDef) and cls.name == "Trainer"
                    for node in cls.body if isinstance(node, ast.FunctionDef) and node.name == "__init__")
        names = {a.arg for a in init.args.args[1:] + init.args.kwonlyargs}
    except (OSError, SyntaxError, StopIteration, TypeError, IndexError, UnicodeDecodeError):
        import lightning

        names = set(inspect.signature(lightning.Trainer).parameters)
    return frozenset(names - TRAINER_RESERVED)


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
    ("exp_dir", lambda v: isinstance(v, str) and v.strip() != "", "a folder path"),
    ("data.batch_size", _number(1, integer=True), "an integer >= 1"),
    ("data.train_batch_size", _number(1, integer=True), "an integer >= 1"),
    ("data.valid_batch_size", _number(1, integer=True), "an integer >= 1"),
    ("data.num_workers", lambda v: v == "auto" or _number(0, integer=True)(v), "an integer >= 0, or auto"),
    ("data.*.segment", _number(0, above=True, none=True), "seconds > 0, or null for whole files"),
    ("data.*.enrollment_seconds", _number(0, above=True, none=True), "seconds > 0, or null for whole files"),
    ("data.*.clip_seconds", _number(0, above=True, none=True), "seconds > 0, or null for whole files"),
    ("data.*.length", _number(1, integer=True), "an integer >= 1 (items)"),
    ("data.*.sample_rate", _number(1, integer=True), "an integer >= 1 (Hz)"),
    ("data.*.balance", lambda v: v in BALANCE, f"one of {', '.join(BALANCE)}"),
    ("optim.lr", _number(0, above=True), "a number > 0"),
    ("optim.weight_decay", _number(0), "a number >= 0"),
    ("optim.schedule", lambda v: v in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
    ("optim.plateau_factor", lambda v: _number(0, above=True)(v) and v < 1, "a number between 0 and 1"),
    ("optim.plateau_patience", _number(0, integer=True), "an integer >= 0"),
    ("trainer.max_epochs", lambda v: v is None or v == -1 or _number(1, integer=True)(v),
     "an integer >= 1 (-1: no limit; null: Lightning's default)"),
    ("trainer.early_stop_patience", _number(0, integer=True), "an integer >= 0"),
    ("trainer.monitor", lambda v: isinstance(v, str) and v in MONITORS, f"one of {', '.join(MONITORS)}"),
    ("trainer.gradient_clip_val", _number(0, none=True), "a number >= 0, or null for none"),
]


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML that also reads ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3``), within :data:`MAX_DEPTH` levels
    of nesting."""

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent, index):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConfigError(f"nested more than {MAX_DEPTH} levels deep (at line {self.peek_event().start_mark.line + 1})")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+|\.[0-9_]+"
               r"(?:[eE][-+]?[0-9]+)?|\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes of the document once every alias is expanded (each shared node counted once per use)."""
    key = id(node)
    if key not in memo:
        memo[key] = 1  # a node that contains itself stops here
        if isinstance(node, yaml.SequenceNode):
            memo[key] += sum(_expanded_size(child, memo) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            memo[key] += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
        if memo[key] > MAX_NODES:
            raise ConfigError(f"expands to more than {MAX_NODES:,} values (aliases of aliases?)")
    return memo[key]


def parse_yaml(text: str):
    """One YAML document as plain data (mappings, lists, strings, numbers, booleans, null).

    Raises:
        ConfigError: malformed YAML, more than :data:`MAX_CONFIG_BYTES`, nesting deeper than :data:`MAX_DEPTH`, or
            more than :data:`MAX_NODES` values once aliases are expanded (the message says which; the caller adds
            the file).
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        raise ConfigError(f"larger than {MAX_CONFIG_BYTES // 1024} KiB; a config is a short text")
    try:
        loader = _YamlLoader(text)  # reading starts here: it refuses unprintable characters
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _expanded_size(node, {})
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        raise ConfigError(f"not valid YAML: {' '.join(str(err).split())[:300]}") from None
    except RecursionError:
        raise ConfigError(f"nested more than {MAX_DEPTH} levels deep") from None


def load_config(path: str | os.PathLike, overrides: list[str] = ()) -> dict:
    """Read a YAML config, apply ``a.b.c=value`` overrides (values parsed as YAML) and fill defaults.

    Raises:
        ConfigError: missing, unreadable, non-UTF-8, oversized or malformed file, a malformed override, or a config
            :func:`check_config` refuses; the message names the file or override and the key.
    """
    path = Path(path)
    if not path.is_file():
        what = "not a regular file" if path.exists() else "no such config file"
        raise ConfigError(f"{path}: {what}; give a YAML config (see recipes/*/conf.yml).")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB; a config is a short text.")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}); save the config as UTF-8.") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror}).") from None
    try:
        config = parse_yaml(text) or {}
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the config must be a mapping of sections (model, data, loss, ...).")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key or "" in key.split("."):
            raise ConfigError(f"override {item!r}: write it as section.key=value, e.g. optim.lr=5e-4")
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        try:
            node[leaf] = parse_yaml(value)
        except ConfigError as err:
            raise ConfigError(f"override {item!r}: {err}") from None
    config = merge(copy.deepcopy(DEFAULTS), config)
    for section in ("model", "data", "loss"):
        if not isinstance(config[section], dict) or "name" not in config[section]:
            raise ConfigError(f"{path}: section {section!r} needs a 'name' (e.g. model: {{name: conv_tasnet}}).")
    check_config(config, path)
    return config


def check_config(config: dict, source: str | os.PathLike = "config") -> None:
    """Refuse keys no part of sepaudio reads and values a run cannot work with, naming the key.

    Raises:
        ConfigError: an unknown key (with the nearest known one), a section that is not a mapping, a value of
            :data:`VALUES` out of range, a trainer value that is not plain data, or a callback not given by name.
    """
    trainer_keys = _trainer_keys()
    sections = {"": _TOP, "model": {"name", "args", "init_from"}, "loss": {"name", "args"},
                "optim": set(DEFAULTS["optim"]),
                "data": {"name", "batch_size", "num_workers", "train_batch_size", "valid_batch_size"},
                "trainer": None if trainer_keys is None else trainer_keys | {"early_stop_patience", "monitor", "callbacks"}}
    for section, known in sections.items():
        node = config.get(section) if section else config
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: {section} must be a mapping of keys, got {_short(node)}.")
        for key, value in node.items():
            name = f"{section}.{key}" if section else str(key)
            if section == "trainer" and key in TRAINER_RESERVED - {"callbacks"}:
                raise ConfigError(f"{source}: {name} is set by sepaudio (logs go to exp_dir/logs); remove it.")
            if known is not None and key not in known and not (section == "data" and isinstance(value, dict)):
                near = difflib.get_close_matches(str(key), sorted(known), n=1)
                hint = f"did you mean {(section + '.' if section else '') + near[0]}?" if near else \
                    f"known: {', '.join(sorted(known))}"
                raise ConfigError(f"{source}: unknown key {name!r}; {hint}")
    for key, value in config["trainer"].items():
        if key != "callbacks" and not _plain_value(value):
            raise ConfigError(f"{source}: trainer.{key}={_short(value)}: give a plain value (a name, a number, a "
                              f"boolean or a list of them); objects are not built from configs.")
    check_callbacks(config["trainer"].get("callbacks", []), source)
    splits = [key for key, value in config["data"].items() if isinstance(value, dict)]
    for key, test, want in VALUES:
        section, *rest = key.split(".")
        nodes = [(key.replace("*", split), config["data"][split]) for split in splits] if "*" in key else \
            [(key, config.get(section) if rest else config)]
        for name, node in nodes:
            leaf = name.rsplit(".", 1)[-1]
            if isinstance(node, dict) and leaf in node and not test(node[leaf]):
                raise ConfigError(f"{source}: {name}={_short(node[leaf])} cannot work; give {want}.")
    if config["optim"].get("schedule") == "cosine" and config["trainer"].get("max_epochs") in (None, -1):
        raise ConfigError(f"{source}: optim.schedule=cosine anneals to 0 at the last epoch, so it needs a number of "
                          f"epochs; set trainer.max_epochs, or use optim.schedule=plateau.")


def check_callbacks(specs: Any, source: str | os.PathLike = "config") -> None:
    """``trainer.callbacks`` is a list of ``{name: NAME, args: {...}}``, each naming a registered callback (see
    :mod:`sepaudio.train.callbacks`); Lightning's ``class_path`` form is refused: a config does not import code.

    Raises:
        ConfigError: naming the entry and the fix.
    """
    if not isinstance(specs, list):
        raise ConfigError(f"{source}: trainer.callbacks must be a list of {{name: NAME, args: {{...}}}}.")
    for index, spec in enumerate(specs):
        where = f"{source}: trainer.callbacks[{index}]"
        if isinstance(spec, dict) and "class_path" in spec:
            raise ConfigError(f"{where}: class_path {_short(spec['class_path'])} would import Python code, which a "
                              f"config may not do; name a registered callback ({{name: NAME, args: {{...}}}}), or "
                              f"pass callback objects to sepaudio.train.train(config, callbacks=[...]) from Python.")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or set(spec) - {"name", "args"} \
                or not isinstance(spec.get("args", {}), (dict, type(None))):
            raise ConfigError(f"{where}: give {{name: NAME, args: {{...}}}}, got {_short(spec)}.")


def check_arguments(factory: Any, args: dict, where: str) -> None:
    """Check config values against the type annotations of ``factory``'s parameters, so a wrong type is a
    :class:`ConfigError` naming the key rather than an error from deep inside the constructor.

    Plain annotations are checked (``int``, ``float``, ``str``, ``bool``, paths, ``None``, unions, sequences and
    mappings of them); any other annotation is left to the constructor.

    Raises:
        ConfigError: ``where.key=value`` and the type it needs.
    """
    try:
        hints = typing.get_type_hints(factory.__init__ if isinstance(factory, type) else factory)
    except Exception:  # noqa: BLE001 - annotations that do not resolve: nothing to check against
        return
    for key, value in args.items():
        if key in hints and not _fits(value, hints[key]):
            raise ConfigError(f"{where}: {key}={_short(value)} is not {_type_name(hints[key])}.")


def _fits(value: Any, hint: Any) -> bool:
    origin, params = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or isinstance(hint, typing.TypeVar):
        return True
    if origin is typing.Literal:
        return any(type(value) is type(option) and value == option for option in params)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, option) for option in params)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:  # beyond 2**62 no size, count or seed makes sense (and torch overflows)
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= 2**62
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= 2.0**62
    if hint in (str, os.PathLike, Path) or origin is os.PathLike:
        return isinstance(value, (str, os.PathLike))
    if origin in (list, tuple, collections.abc.Sequence) or hint in (list, tuple, collections.abc.Sequence):
        inner = [p for p in params if p is not Ellipsis]
        if isinstance(value, str):  # a string is a Sequence[str] (e.g. the path of a list file)
            return collections.abc.Sequence in (origin, hint) and inner in ([], [str])
        if not isinstance(value, (list, tuple)):
            return False
        return len(inner) != 1 or all(_fits(v, inner[0]) for v in value)
    if origin in (dict, collections.abc.Mapping) or hint in (dict, collections.abc.Mapping):
        return isinstance(value, dict)
    return True  # an annotation this check does not read: the constructor decides


def _type_name(hint: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null",
             os.PathLike: "a path", Path: "a path"}
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(str(option) for option in typing.get_args(hint))
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(_type_name(h) for h in typing.get_args(hint)))
    if typing.get_origin(hint) in (list, tuple, collections.abc.Sequence):
        inner = [h for h in typing.get_args(hint) if h is not Ellipsis]
        return "a list" + (f" (each item {_type_name(inner[0])})" if len(inner) == 1 else "")
    if typing.get_origin(hint) in (dict, collections.abc.Mapping):
        return "a mapping"
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _plain_value(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain_value(v) and not isinstance(v, (list, tuple)) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlevel = 60, 60, 3


def _short(value: Any) -> str:
    """``repr`` of a config value, cut short (a hostile value can be huge or deeply nested)."""
    return _REPR.repr(value)


def merge(base: dict, extra: dict) -> dict:
    """``extra`` merged into ``base`` (nested mappings merged key by key); returns ``base``."""
    for key, value in extra.items():
        base[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return base
