"""``sepaudio <command>``: parses arguments and calls the library; no logic of its own.

Each command is a pair: ``add_<name>(subparsers)`` declares its arguments and sets ``func`` to a function that
takes the parsed namespace. Register the pair in ``COMMANDS``.
"""
from __future__ import annotations

import argparse
import json
import sys

from .errors import SepaudioError


def add_info(sub) -> None:
    p = sub.add_parser("info", help="describe a saved model: architecture arguments, parameters, sample rate")
    p.add_argument("model", help="model file (.pt from 'sepaudio train', or a training checkpoint)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run_info)


def run_info(args) -> None:
    from .models import load_model

    model = load_model(args.model)
    info = {"model": model.registered_name, "parameters": model.num_parameters,
            "sample_rate": model.sample_rate, "arguments": model.model_args}
    if args.json:
        print(json.dumps(info, indent=2))
        return
    print(f"model:       {info['model']}")
    print(f"parameters:  {info['parameters']:,}")
    print(f"sample rate: {info['sample_rate']} Hz")
    print("arguments:")
    for key, value in info["arguments"].items():
        print(f"  {key}: {value}")


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config (resumes from exp_dir/checkpoints/last.ckpt)")
    p.add_argument("config", help="YAML config (see recipes/*/conf.yml)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="override config entries, e.g. optim.lr=5e-4")
    p.set_defaults(func=run_train)


def run_train(args) -> None:
    from .train import load_config, train

    exp_dir = train(load_config(args.config, args.overrides))
    print(f"model: {exp_dir / 'model.pt'}")


COMMANDS = [add_info, add_train]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="sepaudio", description="Separate, extract and classify audio with depthwise separable networks.")
    parser.add_argument("--version", action="version", version=f"sepaudio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except SepaudioError as err:
        print(f"sepaudio {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
