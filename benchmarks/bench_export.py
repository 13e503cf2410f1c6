"""onnxruntime (a file from ``sepaudio export``) vs PyTorch, same weights, same input, on the CPU.

Models: Conv-TasNet at torchaudio's defaults (4,984,881 parameters) and TseNet in the paper configuration
(13,002,725 parameters, i-vector input). For each model and thread count: median seconds per call after a warm-up,
PyTorch and onnxruntime interleaved (twice each, the better median kept) so that machine noise hits both alike,
the ratio onnxruntime / PyTorch, and the largest absolute difference of the outputs. Usage:

    python benchmarks/bench_export.py [--seconds 10] [--rate 8000] [--threads 1 2] [--repeats 3]
                                      [--models conv_tasnet tsenet] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import onnxruntime as ort
import torch

from sepaudio.export import export, input_names
from sepaudio.models import ConvTasNet, TseNet


def median_seconds(call, repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="input length (10)")
    parser.add_argument("--rate", type=int, default=8000, help="sample rate (8000)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (1 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per median (3)")
    parser.add_argument("--models", nargs="+", choices=["conv_tasnet", "tsenet"], default=["conv_tasnet", "tsenet"],
                        help="models to time (both)")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    torch.manual_seed(0)
    samples = int(args.seconds * args.rate)
    mixture = 0.1 * torch.randn(1, samples)
    cases = {"conv_tasnet": (ConvTasNet(sample_rate=args.rate).eval(), (mixture,)),
             "tsenet": (TseNet(sample_rate=args.rate).eval(), (mixture, torch.randn(1, 400)))}
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {args.seconds:g} s at {args.rate} Hz")
    print(f"{'model':<12} {'params':>10} {'threads':>7} | {'pytorch s':>9} {'onnxrt s':>9} {'ratio':>6} | "
          f"{'max |diff|':>10}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            model, inputs = cases[name]
            path = export(model, Path(tmp) / f"{name}.onnx", "onnx")
            feeds = {key: x.numpy() for key, x in zip(input_names(model), inputs)}
            for threads in args.threads:
                torch.set_num_threads(threads)
                options = ort.SessionOptions()
                options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
                session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

                def run_torch():
                    with torch.inference_mode():
                        return model(*inputs)

                t_torch, t_ort = [], []
                for _ in range(2):
                    t_torch.append(median_seconds(run_torch, args.repeats))
                    t_ort.append(median_seconds(lambda: session.run(None, feeds), args.repeats))
                diff = float((torch.from_numpy(session.run(None, feeds)[0]) - run_torch()).abs().max())
                row = {"model": name, "parameters": model.num_parameters, "threads": threads,
                       "pytorch_s": min(t_torch), "onnxruntime_s": min(t_ort), "max_abs_diff": diff}
                row["ratio"] = row["onnxruntime_s"] / row["pytorch_s"]
                rows.append(row)
                print(f"{name:<12} {row['parameters']:>10,} {threads:>7} | {row['pytorch_s']:>9.3f} "
                      f"{row['onnxruntime_s']:>9.3f} {row['ratio']:>6.2f} | {diff:>10.1e}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
