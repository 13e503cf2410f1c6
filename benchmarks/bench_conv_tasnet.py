"""sepaudio Conv-TasNet vs torchaudio's ConvTasNet: same weights, same inputs, one run.

Contenders: torchaudio fp32, sepaudio's plain path, and on CPU its fused paths (``model.fast(precision)``): fp32,
bf16 (CPUs with bfloat16 instructions), int8 (the TCN blocks' 1x1 convolutions in 8-bit integers; CPUs with
oneDNN's int8 kernels); with ``--onnxruntime``, also the exported model under onnxruntime in fp32 and in int8
(``sepaudio export --precision int8``: dynamically quantized 1x1 GEMMs, per-channel weights). Each round calls
every contender once (interleaved, so machine noise hits all alike), and on CPU every 1x1 GEMM of the GEMM floor
(``benchmarks/bench_gemm_ceiling.py``: the bare fp32 GEMMs of the 1x1 convolutions, a floor under any fp32 path).

Prints the machine first, then per input length and sample rate, per contender: median seconds per call, speed-up
over torchaudio, "% of floor" (the fp32 GEMM floor's time over the contender's: 100 % is as fast as the bare fp32
GEMMs alone; int8 can pass it), real-time factor, the error against torchaudio's output (dB of its energy), and
peak memory (CPU: peak RSS growth of a fresh process doing one call; GPU: torch.cuda.max_memory_allocated). Usage:

    python benchmarks/bench_conv_tasnet.py [--seconds 1 10 60] [--rates 8000 16000] [--repeats 3] [--device cpu]
        [--threads N] [--onnxruntime] [--no-memory] [--json FILE] [--profile]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import torch
import torchaudio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_gemm_ceiling import floor_calls, floor_seconds, pointwise_shapes  # noqa: E402
from machine import machine_line  # noqa: E402
from sepaudio import runtime  # noqa: E402
from sepaudio.models import ConvTasNet  # noqa: E402
from sepaudio.nn.fast_tcn import cpu_has_bf16, cpu_has_int8  # noqa: E402


def fast_precisions() -> tuple[str, ...]:
    """The fused precisions this CPU runs."""
    return ("fp32",) + (("bf16",) if cpu_has_bf16() else ()) + (("int8",) if cpu_has_int8() else ())


def onnxruntime_models(model: ConvTasNet, threads: int) -> dict:
    """``onnxruntime fp32`` / ``onnxruntime int8``: ``model`` exported to ONNX (``sepaudio export``), in fp32 and with
    ``--precision int8`` (the TCN 1x1 convolutions as dynamically quantized MatMuls, see
    :mod:`sepaudio.onnx_int8`), as callables on a ``(1, 1, time)`` tensor."""
    import onnxruntime

    from sepaudio.export import export

    folder = tempfile.mkdtemp(prefix="bench_conv_tasnet_")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    out = {}
    for precision in ("fp32", "int8"):
        path = export(model, os.path.join(folder, f"model.{precision}.onnx"), precision=precision)
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0].name
        out[f"onnxruntime {precision}"] = \
            lambda x, s=session, f=feed: torch.from_numpy(s.run(None, {f: x[:, 0].numpy()})[0])
    return out


def models(device: str, onnx: bool = False) -> dict:
    """name -> callable on ``(1, 1, time)``, all with the weights of one seeded torchaudio ConvTasNet."""
    torch.manual_seed(0)
    reference = torchaudio.models.ConvTasNet().eval().to(device)
    out = {"torchaudio": reference, "sepaudio": ConvTasNet.from_torchaudio(reference).eval().to(device)}
    if device == "cpu":
        for precision in fast_precisions():
            out[f"sepaudio {precision}"] = ConvTasNet.from_torchaudio(reference).eval().fast(precision)
        if onnx:
            out.update(onnxruntime_models(out["sepaudio"], torch.get_num_threads()))
    return out


def time_rounds(calls: dict, rounds: int, cuda: bool = False) -> dict:
    """name -> median seconds of ``calls[name]()``, over ``rounds`` rounds each calling every one once (after a
    warm-up call of each)."""
    times = {name: [] for name in calls}
    with torch.inference_mode():
        for fn in calls.values():
            fn()
        for _ in range(rounds):
            for name, fn in calls.items():
                if cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                fn()
                if cuda:
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def error_db(got: torch.Tensor, ref: torch.Tensor) -> float:
    """Energy of ``got - ref`` in dB of ``ref``'s (-inf: equal)."""
    err = float((got.float() - ref.float()).pow(2).sum() / ref.float().pow(2).sum())
    return 10 * torch.log10(torch.tensor(err)).item() if err > 0 else float("-inf")


def peak_memory_mb(impl: str, samples: int, device: str) -> float:
    """Peak memory of one call: in a fresh process on CPU, from the CUDA allocator on GPU."""
    if device == "cuda":
        model = models(device)[impl]
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.inference_mode():
            model(torch.randn(1, 1, samples, device=device))
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    out = subprocess.run([sys.executable, __file__, "--threads", str(torch.get_num_threads()), "--peak-memory-of",
                          impl, str(samples)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def rss_growth_mb(impl: str, samples: int) -> float:
    """In this (fresh) process: the largest RSS growth in MB during one CPU call."""
    model, x = models("cpu", impl.startswith("onnxruntime"))[impl], torch.randn(1, 1, samples)
    return peak_rss_growth_mb(lambda: model(x))


def peak_rss_growth_mb(call, inference: bool = True) -> float:
    """The largest RSS growth of this process in MB while ``call()`` runs (in inference mode unless ``inference`` is
    false: a training step), sampled every ms."""
    page = os.sysconf("SC_PAGE_SIZE")
    rss = lambda: int(open("/proc/self/statm").read().split()[1]) * page  # noqa: E731
    base, peak, done = rss(), [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    with torch.inference_mode(inference):
        call()
    done.set()
    watcher.join()
    return max(peak[0], rss()) / 2**20 - base / 2**20


def op_kind(name: str, shapes: list) -> str:
    """Which part of the fused path a profiled op (name, input shapes) belongs to (see :func:`profile_fused`): ops
    on at most 1024 rows of the ``(time, channels)`` layout are the few frames at the edges that gLN's folding
    recomputes exactly and the padding rows (a scalar times a weight: the per-call scaling of the packed weight)."""
    small = any(len(shape) == 2 and shape[0] <= 1024 for shape in shapes or [])
    if name in ("mkldnn::_linear_pointwise", "aten::addmm_", "aten::addmm"):
        return "1x1 GEMMs"
    if name == "mkldnn::_convolution_pointwise":
        return "depthwise conv (+bias, PReLU)"
    if name == "aten::native_group_norm":
        return "gLN statistics"
    if name in ("aten::_convolution", "aten::mkldnn_convolution", "aten::convolution"):
        return "encoder / decoder conv"
    if name == "mkldnn::_reorder_linear_weight" or (name == "aten::mul" and len(shapes) > 1 and shapes[1] == []):
        return "weight scaling by gLN 1/std"
    if small:
        return "gLN edge frames, padding rows"
    if name in ("aten::leaky_relu", "aten::sigmoid_", "aten::softmax", "aten::_softmax"):
        return "PReLU / mask activation"
    if name in ("aten::copy_", "aten::clone", "aten::fill_", "aten::zero_"):
        return "copies / zero fills"
    if name in ("aten::mul", "aten::add", "aten::sub"):
        return "elementwise (masks x rep, offsets)"
    return "other (dispatch, views, scalars)"


def profile_fused(samples: int, rounds: int = 3) -> None:
    """Print where the fused fp32 path's time goes: torch.profiler's self CPU time per op, grouped by kind."""
    from torch.profiler import ProfilerActivity, profile

    model, x = models("cpu")["sepaudio fp32"], torch.randn(1, 1, samples)
    with torch.inference_mode():
        model(x)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(rounds):
                model(x)
    kinds, total = {}, 0.0
    for event in prof.key_averages(group_by_input_shape=True):
        kind = op_kind(event.key, event.input_shapes)
        kinds[kind] = kinds.get(kind, 0.0) + event.self_cpu_time_total
        total += event.self_cpu_time_total
    print(f"profile of sepaudio fp32 (fused), {samples} samples, {rounds} calls, threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.2f}: self CPU time by kind")
    for kind, t in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:<34} {100 * t / total:>5.1f} %  {t / rounds / 1e6:>7.3f} s per call (CPU, all threads)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--rates", type=int, nargs="+", default=[8000, 16000])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (a third of them from 30 s on)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--onnxruntime", action="store_true", help="also the exported model under onnxruntime, "
                                                                   "fp32 and int8 (export --precision int8)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    parser.add_argument("--profile", action="store_true", help="only profile the fused fp32 path (torch.profiler, "
                                                               "the first --seconds and --rates) by op kind")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--peak-memory-of", nargs=2, metavar=("IMPL", "SAMPLES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    runtime.configure()  # as every sepaudio command does
    if args.peak_memory_of:
        print(rss_growth_mb(args.peak_memory_of[0], int(args.peak_memory_of[1])))
        return

    if args.profile:
        print(machine_line())
        profile_fused(int(args.rates[0] * args.seconds[0]), args.repeats)
        return
    nets = models(args.device, args.onnxruntime)
    cpu = args.device == "cpu"
    print(machine_line())
    print(f"device: {args.device}, threads {torch.get_num_threads()}, bf16 instructions "
          f"{'yes' if cpu_has_bf16() else 'no'}, int8 kernels {'yes' if cpu_has_int8() else 'no'}, VNNI "
          f"{'yes' if torch.cpu._is_vnni_supported() else 'no (7-bit activations)'}, load average "
          f"{os.getloadavg()[0]:.2f}; parameters {nets['sepaudio'].num_parameters:,} (all); contenders: "
          f"{', '.join(nets)}")
    header = f"{'rate':>6} {'secs':>5} {'contender':<17} | {'s':>7} {'speed-up':>8} {'% floor':>7} {'RTF':>6} " \
             f"{'err dB':>7}"
    if not args.no_memory:
        header += f" | {'peak MB':>7}"
    print(header)
    rows = []
    for rate in args.rates:
        for seconds in args.seconds:
            samples = int(rate * seconds)
            x = torch.randn(1, 1, samples, device=args.device)
            rounds = args.repeats if seconds < 30 else max(1, args.repeats // 3)
            calls = {name: (lambda m=model: m(x)) for name, model in nets.items()}
            shapes = pointwise_shapes(nets["torchaudio"], samples) if cpu else {}
            median = time_rounds({**calls, **floor_calls(shapes, {"fp32": torch.float32})}, rounds, not cpu)
            floor = floor_seconds(shapes, median).get("fp32") if cpu else None
            with torch.inference_mode():
                ref = nets["torchaudio"](x)
                errors = {name: error_db(model(x).reshape(ref.shape), ref) for name, model in nets.items()}
            if floor:
                print(f"{rate:>6} {seconds:>5g} {'GEMM floor fp32':<17} | {floor:>7.3f} "
                      f"{median['torchaudio'] / floor:>7.2f}x {100:>6.0f}%")
            for name in nets:
                row = {"rate": rate, "seconds": seconds, "contender": name, "s": median[name],
                       "speedup": median["torchaudio"] / median[name], "floor_s": floor,
                       "floor_percent": 100 * floor / median[name] if floor else None, "error_db": errors[name]}
                line = f"{rate:>6} {seconds:>5g} {name:<17} | {row['s']:>7.3f} {row['speedup']:>7.2f}x " \
                       f"{row['floor_percent'] or float('nan'):>6.0f}% {row['s'] / seconds:>6.3f} " \
                       f"{row['error_db']:>7.1f}"
                if not args.no_memory:
                    row["peak_mb"] = peak_memory_mb(name, samples, args.device)
                    line += f" | {row['peak_mb']:>7.0f}"
                print(line, flush=True)
                rows.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
