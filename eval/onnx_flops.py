"""Floating-point operations of one call of an ONNX graph, counted from the shapes it sees.

Only the operators that carry the arithmetic are counted, as 2 FLOPs per
multiply-add: ``Conv``, ``ConvTranspose``, ``MatMul``, ``Gemm`` and ``LSTM``/
``GRU`` (gates, not the elementwise cell updates). Shapes come from running
the graph once on the given input with every counted node's inputs and
outputs exposed, so dynamic axes and data-dependent reshapes need no shape
inference. Elementwise ops, normalisation and pooling are left out (a few %
for the convolutional models here), so the count is a floor.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

COUNTED = ("Conv", "ConvTranspose", "MatMul", "Gemm", "LSTM", "GRU")


def _attr(node: Any, name: str, default: Any) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def node_flops(node: Any, shapes: dict[str, tuple[int, ...]]) -> float:
    """FLOPs of one node given the runtime shapes of its tensors."""
    op = node.op_type
    out = shapes.get(node.output[0]) if node.output else None
    if op in ("Conv", "ConvTranspose"):
        w = shapes[node.input[1]]
        if op == "Conv":  # out: (N, Cout, *spatial); w: (Cout, Cin/g, *k)
            return 2.0 * float(np.prod(out)) * w[1] * float(np.prod(w[2:]))
        x = shapes[node.input[0]]  # ConvTranspose: every input element scatters a kernel
        return 2.0 * float(np.prod(x)) * w[1] * float(np.prod(w[2:]))
    if op == "MatMul":
        a = shapes[node.input[0]]
        return 2.0 * float(np.prod(out)) * a[-1]
    if op == "Gemm":
        a = shapes[node.input[0]]
        k = a[0] if int(_attr(node, "transA", 0)) else a[-1]
        return 2.0 * float(np.prod(out)) * k
    if op in ("LSTM", "GRU"):
        x, w, r = shapes[node.input[0]], shapes[node.input[1]], shapes[node.input[2]]
        layout = int(_attr(node, "layout", 0))
        steps, batch = (x[0], x[1]) if layout == 0 else (x[1], x[0])
        dirs, gates_h, inp = w
        hidden = r[2]
        return 2.0 * steps * batch * dirs * gates_h * (inp + hidden)
    return 0.0


def graph_flops(path: str | Path, x: np.ndarray) -> tuple[float, dict[str, float]]:
    """(total FLOPs, FLOPs per op type) of one run of the graph at ``path`` on ``x``."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {i.name: tuple(i.dims) for i in graph.initializer}
    wanted: list[str] = []
    for node in graph.node:
        if node.op_type in COUNTED:
            wanted += [n for n in list(node.input)[:3] + list(node.output)[:1]
                       if n and n not in initializers]
    existing = {o.name for o in graph.output}
    for name in dict.fromkeys(wanted):
        if name not in existing:
            graph.output.append(onnx.ValueInfoProto(name=name))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {session.get_inputs()[0].name: np.ascontiguousarray(x, np.float32)})
    shapes = dict(initializers)
    shapes.update({n: tuple(v.shape) for n, v in zip(names, values)})
    per_op: dict[str, float] = {}
    for node in graph.node:
        if node.op_type in COUNTED:
            per_op[node.op_type] = per_op.get(node.op_type, 0.0) + node_flops(node, shapes)
    return sum(per_op.values()), per_op
