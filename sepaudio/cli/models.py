"""``sepaudio info`` (describe a model without running it) and ``sepaudio export`` (ONNX / TorchScript)."""
from __future__ import annotations

import json

from .options import add_device, add_model, add_option, add_output

__all__ = ["add_info", "run_info", "add_export", "run_export"]


def add_info(sub) -> None:
    p = sub.add_parser("info", help="describe a saved model: architecture arguments, parameters, sample rate")
    add_model(p, "the model to describe (or a training checkpoint)", positional=True)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run_info)


def run_info(args) -> None:
    from ..modelfile import read_summary

    info = read_summary(args.model)  # without torch, from the summary a model file of this version stores
    if info is None:
        from ..models import load_model

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


def add_export(sub) -> None:
    p = sub.add_parser("export", help="write a model as ONNX or TorchScript (dynamic batch and time axes) and check "
                                      "it against PyTorch at two input lengths")
    add_model(p, "the model to export", positional=True)
    p.add_argument("--format", choices=["onnx", "torchscript"], required=True,
                   help="onnx (for onnxruntime and other ONNX runtimes) or torchscript (torch.jit.load)")
    add_output(p, "file to write", old=("--out",), metavar="FILE")
    add_option(p, "--stream", old=("--streaming",), action="store_true",
               help="export the streaming step of a causal model: (chunk, [embedding,] state...) -> "
                    "(output, state...)")
    p.add_argument("--precision", choices=["fp32", "int8"], default="fp32",
                   help="fp32 (default), or int8: an ONNX graph whose TCN blocks' 1x1 convolutions are dynamically "
                        "quantized for onnxruntime (int8 weights per output channel, activations per call)")
    add_device(p)
    p.set_defaults(func=run_export)


def run_export(args) -> None:
    from ..export import export_checked

    path, diffs = export_checked(args.model, args.output, args.format, args.stream, device=args.device,
                                 precision=args.precision)
    checked = ", ".join(f"{length} samples {diff:.1e}" for length, diff in diffs.items())
    print(f"{path} ({args.format}, {args.precision}); max |difference| from PyTorch (fp32): {checked}")
