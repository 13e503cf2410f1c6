"""How fast can any CPU inference path of Conv-TasNet be? The time of its 1x1 convolutions as bare GEMMs.

The default Conv-TasNet (torchaudio's, 4.98 M parameters) spends almost all of its arithmetic in 1x1 convolutions.
This benchmark records every one of them on one forward pass (input channels, output channels, frames), times each
shape as a bare ``torch.matmul`` of ``(frames, in) @ (in, out)`` in fp32 and bf16, and sums them: a floor under
any implementation that does the same arithmetic, since it leaves out the depthwise convolutions, norms,
activations, encoder and decoder. A residual 1x1 and the skip 1x1 beside it read the same input, so a shape that
occurs twice per block is also timed as one GEMM of twice the width (half its time counted per convolution), and
the faster of the two kept. In the same run, interleaved with the GEMMs, it times torchaudio's whole model, so the
ratio ``torchaudio / floor`` is the largest speed-up any path can reach on this machine. Usage:

    python benchmarks/bench_gemm_ceiling.py [--seconds 10] [--rounds 5] [--threads 2]

``benchmarks/bench_conv_tasnet.py`` times the same floor interleaved with the models (:func:`floor_calls`,
:func:`floor_seconds`) and reports each contender as a percentage of it.
"""
from __future__ import annotations

import argparse
import collections
import os
import statistics
import time

import torch
import torchaudio

from sepaudio import runtime
from sepaudio.nn.fast_tcn import cpu_has_bf16


def pointwise_shapes(model: torch.nn.Module, samples: int) -> collections.Counter:
    """``(in, out, frames)`` -> count, for every 1x1 ``Conv1d`` of one forward pass on ``samples`` samples."""
    shapes = collections.Counter()

    def record(module, inputs, _output):
        shapes[(module.in_channels, module.out_channels, inputs[0].shape[-1])] += 1

    hooks = [m.register_forward_hook(record) for m in model.modules()
             if isinstance(m, torch.nn.Conv1d) and m.kernel_size == (1,)]
    with torch.inference_mode():
        model(torch.randn(1, 1, samples))
    for hook in hooks:
        hook.remove()
    return shapes


def gemm(n_in: int, n_out: int, frames: int, dtype: torch.dtype):
    """A call of ``(frames, n_in) @ (n_in, n_out)`` in ``dtype`` on fresh random operands."""
    x, w = torch.randn(frames, n_in).to(dtype), torch.randn(n_in, n_out).to(dtype)
    return lambda: torch.matmul(x, w)


def floor_dtypes() -> dict[str, torch.dtype]:
    """fp32, and bf16 only where the CPU has bfloat16 instructions: emulated, a GEMM runs at 1-2 GFLOP/s (a minute a
    call)."""
    return {"fp32": torch.float32, **({"bf16": torch.bfloat16} if cpu_has_bf16() else {})}


def floor_calls(shapes: collections.Counter, dtypes: dict) -> dict:
    """``(in, out, frames, dtype name, width)`` -> a GEMM call, for every 1x1 shape and dtype; width 2: the residual
    and skip 1x1 of a block (a shape occurring an even number of times) as one GEMM of twice the output."""
    calls = {}
    for (n_in, n_out, frames), count in shapes.items():
        for name, dtype in dtypes.items():
            calls[(n_in, n_out, frames, name, 1)] = gemm(n_in, n_out, frames, dtype)
            if count % 2 == 0:
                calls[(n_in, n_out, frames, name, 2)] = gemm(n_in, 2 * n_out, frames, dtype)
    return calls


def shape_seconds(shape: tuple, count: int, name: str, median: dict) -> float:
    """The time of ``count`` 1x1 convolutions of ``shape`` in dtype ``name``: the faster of one GEMM each and half of
    a double-width one, from the medians of :func:`floor_calls`' keys."""
    one = median[(*shape, name, 1)]
    fused = median.get((*shape, name, 2), float("inf")) / 2
    return min(one, fused) * count


def floor_seconds(shapes: collections.Counter, median: dict) -> dict[str, float]:
    """dtype name -> the GEMM floor in seconds (the sum over every 1x1 convolution), from :func:`floor_calls`'
    medians."""
    names = {key[3] for key in median if isinstance(key, tuple)}
    return {name: sum(shape_seconds(shape, count, name, median) for shape, count in shapes.items())
            for name in sorted(names)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="input length at 8 kHz (10)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runtime.configure()  # as every sepaudio command does
    torch.manual_seed(0)
    model = torchaudio.models.ConvTasNet().eval()
    samples = int(8000 * args.seconds)
    shapes = pointwise_shapes(model, samples)
    dtypes = floor_dtypes()
    # contenders: the whole model, and every (shape, dtype, fused width) GEMM
    calls = {"torchaudio": lambda x=torch.randn(1, 1, samples): model(x), **floor_calls(shapes, dtypes)}
    times = collections.defaultdict(list)
    with torch.inference_mode():
        for fn in calls.values():
            fn()  # warm-up
        for _ in range(args.rounds):
            for key, fn in calls.items():
                start = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - start)
    median = {key: statistics.median(t) for key, t in times.items()}
    print(f"torch {torch.__version__}, threads {args.threads}, cpu capability "
          f"{torch.backends.cpu.get_cpu_capability()}, bf16 instructions {'yes' if cpu_has_bf16() else 'no'}, "
          f"{args.seconds:g} s at 8 kHz, {args.rounds} interleaved rounds, load average {os.getloadavg()[0]:.2f}")
    print(f"{'1x1 conv (in -> out)':<22} {'frames':>7} {'count':>6} {'GFLOP':>7}"
          + "".join(f" {n + ' GFLOP/s':>13}" for n in dtypes))
    floor = floor_seconds(shapes, median)
    total_flop = 0.0
    for (n_in, n_out, frames), count in shapes.items():
        flop = 2.0 * n_in * n_out * frames * count
        total_flop += flop
        rates = [flop / shape_seconds((n_in, n_out, frames), count, name, median) / 1e9 for name in dtypes]
        print(f"{f'{n_in} -> {n_out}':<22} {frames:>7} {count:>6} {flop / 1e9:>7.1f}"
              + "".join(f" {r:>13.0f}" for r in rates))
    reference = median["torchaudio"]
    print(f"\n1x1 convolutions: {total_flop / 1e9:.1f} GFLOP per call")
    print(f"torchaudio ConvTasNet, whole model: {reference:.3f} s ({total_flop / reference / 1e9:.0f} GFLOP/s overall)")
    for name, seconds in floor.items():
        print(f"GEMM floor {name}: {seconds:.3f} s -> no {name} path can be more than {reference / seconds:.2f}x "
              f"torchaudio fp32 here")
    if not cpu_has_bf16():
        print("bf16: not timed, this CPU has no bfloat16 instructions (AVX512-BW/VL/DQ or AVX-NE-CONVERT)")


if __name__ == "__main__":
    main()
