"""int8 ONNX graphs (``sepaudio export --format onnx --precision int8``): the TCN blocks' 1x1 convolutions of an
exported fp32 graph in 8-bit integers, for onnxruntime.

Each block's 1x1 convolution ``Conv(x, W, b)`` (``x`` of shape ``(batch, in, frames)``) becomes
``Transpose -> MatMul(W.T) -> Add(b) -> Transpose`` (the residual and skip 1x1 share the first transpose), and
onnxruntime's dynamic quantization turns each ``MatMul`` into its fused ``DynamicQuantizeMatMul``: int8 weights with
one scale per output channel (7 bits, ``reduce_range``: CPUs without VNNI sum u8 x s8 pairs in saturating int16),
uint8 activations with a scale and zero point computed per call, one MLAS GEMM with the scales and bias applied to its
output. The bottleneck, the mask 1x1, the depthwise convolutions, norms and encoder / decoder stay float32, as in the
PyTorch int8 path (:mod:`sepaudio.nn.fast_tcn`). :func:`sepaudio.export.export` writes the fp32 graph and calls
:func:`quantize_onnx` (in a temporary folder; the file given is written atomically).

Why this form (measured on an AVX2 EPYC without VNNI, the default Conv-TasNet, 10 s at 8 kHz, one thread): the
graph's 1x1 ``Conv`` nodes quantized as they are become ``ConvInteger`` + cast + scale, 1.6x slower than the fp32
graph; static quantization (``QLinearConv``) ran at the fp32 speed but fixes every activation range from calibration
data (-19 dB error on a random-weight model from two calibration inputs); ``DynamicQuantizeMatMul`` ran at about the
fp32 graph's speed with a -34 dB error, and it is the form whose kernels use VNNI / AMX where the CPU has them.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from .optional import require

__all__ = ["quantize_onnx", "check_int8_export", "pointwise_convs"]


def pointwise_convs(graph) -> list:
    """The TCN blocks' 1x1 ``Conv`` nodes of an exported graph (constant weight, kernel 1, one group), in order."""
    weights = {init.name: init for init in graph.initializer}
    out = []
    for node in graph.node:
        w = weights.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        groups = next((a.i for a in node.attribute if a.name == "group"), 1)
        if w is not None and len(w.dims) == 3 and w.dims[2] == 1 and groups == 1 and "/blocks." in node.name:
            out.append(node)
    return out


def _as_matmuls(model) -> list[str]:
    """Rewrite (in place) every node of :func:`pointwise_convs` as transpose / MatMul / bias / transpose; returns the
    names of the new MatMul nodes."""
    onnx = require("onnx", "int8 ONNX export")
    from onnx import helper, numpy_helper

    graph = model.graph
    convs = {node.name for node in pointwise_convs(graph)}
    weights = {init.name: init for init in graph.initializer}
    nodes, matmuls, transposed = [], [], {}
    for node in graph.node:
        if node.name not in convs:
            nodes.append(node)
            continue
        name, (x, w_name, *bias) = node.name, node.input
        if x not in transposed:  # the residual and the skip 1x1 read the same tensor
            transposed[x] = f"{name}/x_t"
            nodes.append(helper.make_node("Transpose", [x], [transposed[x]], perm=[0, 2, 1], name=f"{name}/T_in"))
        w = numpy_helper.to_array(weights[w_name])[:, :, 0]
        graph.initializer.append(numpy_helper.from_array(w.T.copy(), f"{w_name}/t"))
        out = f"{name}/mm"
        nodes.append(helper.make_node("MatMul", [transposed[x], f"{w_name}/t"], [out], name=f"{name}/MatMul"))
        matmuls.append(f"{name}/MatMul")
        if bias:
            nodes.append(helper.make_node("Add", [out, bias[0]], [f"{out}_b"], name=f"{name}/Bias"))
            out = f"{out}_b"
        nodes.append(helper.make_node("Transpose", [out], [node.output[0]], perm=[0, 2, 1], name=f"{name}/T_out"))
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return matmuls


def quantize_onnx(source: str | os.PathLike, target: str | os.PathLike) -> int:
    """Write ``target``: the fp32 ONNX file ``source`` with its TCN blocks' 1x1 convolutions in int8 (module doc).

    Returns:
        how many 1x1 convolutions were quantized.

    Raises:
        ValueError: the graph has no TCN block 1x1 convolution.
    """
    onnx = require("onnx", "int8 ONNX export")
    require("onnxruntime", "int8 ONNX export")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source))
    matmuls = _as_matmuls(model)
    if not matmuls:
        raise ValueError("int8 export quantizes the 1x1 convolutions of TCN blocks, and this model has none")
    with tempfile.TemporaryDirectory() as tmp:
        rewritten = Path(tmp) / "matmul.onnx"
        onnx.save(model, str(rewritten))
        quiet = logging.getLogger().level
        logging.disable(logging.WARNING)  # its notes on the int64 shape tensors it leaves alone
        try:
            quantize_dynamic(str(rewritten), str(target), weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=True, nodes_to_quantize=matmuls, op_types_to_quantize=["MatMul"])
        finally:
            logging.disable(logging.NOTSET)
            logging.getLogger().setLevel(quiet)
    return len(matmuls)


def check_int8_export(model, fmt: str, streaming: bool) -> None:
    """Refuse an int8 export this module cannot write, naming what can be.

    Raises:
        ConfigError: TorchScript, a streaming step, or a model without TCN blocks.
    """
    from .errors import ConfigError

    if fmt != "onnx":
        raise ConfigError(f"--precision int8: the {fmt} format has no int8 export (TorchScript cannot trace the "
                          f"fused oneDNN int8 path); use --format onnx --precision int8 (onnxruntime), --precision "
                          f"fp32, or int8 in PyTorch (model.fast('int8'), --precision int8 on separate / extract).")
    if streaming:
        raise ConfigError("--precision int8: the streaming step exports in fp32 only; leave out --stream for an int8 "
                          "graph of the whole model, or use --precision fp32.")
    if not hasattr(getattr(model, "masker", None), "tcn"):
        raise ConfigError(f"--precision int8: int8 export quantizes the 1x1 convolutions of TCN blocks, and "
                          f"{model.registered_name} has none; use --precision fp32.")

