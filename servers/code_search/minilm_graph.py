"""Build an ONNX graph of all-MiniLM-L6-v2 from its safetensors weights, without torch.

The model is a 6-layer BERT (hidden 384, 12 heads, GELU, post-LayerNorm) followed by mean pooling
over the attention mask and L2 normalization, exactly as sentence-transformers runs it. The graph
takes `input_ids` and `attention_mask` (int64, [batch, seq]) and returns `embedding` ([batch, 384]).
`build_model` writes it once; `quantize` makes the int8 dynamic-quantized copy used by default.
"""

from __future__ import annotations

import json
import logging
import struct
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
_DTYPES = {"F32": np.float32, "I64": np.int64}


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Read a .safetensors file into numpy arrays (the format is an 8-byte length, JSON header, raw data).

    Raises:
        ValueError: a tensor has a dtype this reader does not handle.
    """
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    base = 8 + size
    out: dict[str, np.ndarray] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] not in _DTYPES:
            raise ValueError(f"unsupported dtype {meta['dtype']} for {name}")
        start, end = meta["data_offsets"]
        out[name] = np.frombuffer(raw[base + start : base + end], dtype=_DTYPES[meta["dtype"]]).reshape(meta["shape"])
    return out


class _Graph:
    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.w = weights
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def weight(self, key: str, transpose: bool = False) -> str:
        value = self.w[key].astype(np.float32)
        return self.const(key, np.ascontiguousarray(value.T if transpose else value))

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        self._n += 1
        out = f"{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def dense(self, x: str, prefix: str) -> str:
        return self.op(
            "Add", self.op("MatMul", x, self.weight(f"{prefix}.weight", True)), self.weight(f"{prefix}.bias")
        )

    def layer_norm(self, x: str, prefix: str) -> str:
        return self.op(
            "LayerNormalization", x, self.weight(f"{prefix}.weight"), self.weight(f"{prefix}.bias"), epsilon=1e-12
        )


def build_model(weights: dict[str, np.ndarray], heads: int = 12) -> onnx.ModelProto:
    """The fp32 ONNX model of a BERT sentence encoder with mean pooling and L2 normalization."""
    g = _Graph(weights)
    hidden = weights["embeddings.word_embeddings.weight"].shape[1]
    head_dim = hidden // heads
    layers = len({k.split(".")[2] for k in weights if k.startswith("encoder.layer.")})

    words = g.op("Gather", g.weight("embeddings.word_embeddings.weight"), "input_ids")
    seq_len = g.op("Gather", g.op("Shape", "input_ids"), g.const("one_i", np.array(1, np.int64)))
    positions = g.op("Range", g.const("zero_i", np.array(0, np.int64)), seq_len, "one_i")
    pos = g.op("Gather", g.weight("embeddings.position_embeddings.weight"), positions)
    type0 = g.const("type0", weights["embeddings.token_type_embeddings.weight"][0].astype(np.float32))
    x = g.layer_norm(g.op("Add", g.op("Add", words, pos), type0), "embeddings.LayerNorm")

    mask = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)
    inverted = g.op("Sub", g.const("one_f", np.array(1.0, np.float32)), mask)
    bias = g.op("Mul", inverted, g.const("neg_big", np.array(-10000.0, np.float32)))
    bias = g.op("Unsqueeze", bias, g.const("axes_12", np.array([1, 2], np.int64)))
    split_heads = g.const("split_heads", np.array([0, 0, heads, head_dim], np.int64))
    merge_heads = g.const("merge_heads", np.array([0, 0, hidden], np.int64))
    scale = g.const("scale", np.array(1.0 / np.sqrt(head_dim), np.float32))
    sqrt2 = g.const("sqrt2", np.array(np.sqrt(2.0), np.float32))
    half = g.const("half", np.array(0.5, np.float32))

    for i in range(layers):
        p = f"encoder.layer.{i}"
        q = g.op("Transpose", g.op("Reshape", g.dense(x, f"{p}.attention.self.query"), split_heads), perm=[0, 2, 1, 3])
        k = g.op("Transpose", g.op("Reshape", g.dense(x, f"{p}.attention.self.key"), split_heads), perm=[0, 2, 3, 1])
        v = g.op("Transpose", g.op("Reshape", g.dense(x, f"{p}.attention.self.value"), split_heads), perm=[0, 2, 1, 3])
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), bias)
        context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), merge_heads)
        x = g.layer_norm(
            g.op("Add", g.dense(context, f"{p}.attention.output.dense"), x), f"{p}.attention.output.LayerNorm"
        )
        h = g.dense(x, f"{p}.intermediate.dense")
        h = g.op(
            "Mul",
            g.op("Mul", h, half),
            g.op("Add", g.const(f"one_{i}", np.array(1.0, np.float32)), g.op("Erf", g.op("Div", h, sqrt2))),
        )
        x = g.layer_norm(g.op("Add", g.dense(h, f"{p}.output.dense"), x), f"{p}.output.LayerNorm")

    m = g.op("Unsqueeze", mask, g.const("axes_2", np.array([2], np.int64)))
    axis1 = g.const("axes_1", np.array([1], np.int64))
    summed = g.op("ReduceSum", g.op("Mul", x, m), axis1, keepdims=0)
    count = g.op("Max", g.op("ReduceSum", m, axis1, keepdims=0), g.const("eps_count", np.array(1e-9, np.float32)))
    mean = g.op("Div", summed, count)
    norm = g.op("Sqrt", g.op("ReduceSum", g.op("Mul", mean, mean), axis1, keepdims=1))
    g.nodes.append(
        helper.make_node(
            "Div", [mean, g.op("Max", norm, g.const("eps_norm", np.array(1e-12, np.float32)))], ["embedding"]
        )
    )
    graph = helper.make_graph(
        g.nodes,
        "minilm",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="goresolve")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def quantize(fp32_path: Path, int8_path: Path) -> None:
    """Write an int8 dynamic-quantized copy (MatMul weights, per output channel: cos >= 0.99 to fp32)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantizer warns on the root logger that the graph was not pre-processed (shape inference for
    # image models); this graph is built here with its shapes, so the line is only noise on a user's screen.
    root = logging.getLogger()
    root.addFilter(_not_preprocessing_advice)
    try:
        quantize_dynamic(
            fp32_path, int8_path, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"], per_channel=True
        )
    finally:
        root.removeFilter(_not_preprocessing_advice)


def _not_preprocessing_advice(record: logging.LogRecord) -> bool:
    return "pre-processing before quantization" not in record.getMessage()
