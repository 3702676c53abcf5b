#!/usr/bin/python3
"""Writes the small ONNX models the runtime-layer tests (tests/infer/test_session.c) load.

Usage: /usr/bin/python3 scripts/gen_test_models.py OUTDIR

Writes into OUTDIR (created when missing), all opset 13, IR version 8:
  identity_<DTYPE>.onnx  one per KServe datatype (BOOL, UINT8..UINT64, INT8..INT64, FP16,
                         FP32, FP64, BYTES): input "x" [N, 3] (N symbolic), output "y" = Identity(x)
  add_fp32.onnx          inputs "a", "b" FP32 [2, 2]; outputs "sum" = a + b, "diff" = a - b
  add_dyn_fp32.onnx      inputs "a", "b" FP32 [N, 3] (the same symbol N); output "sum" = a + b,
                         so a batch mismatch is caught by ONNX Runtime at Run, not by metadata
  bf16.onnx              input "x" BFLOAT16 [N, 3] -> Identity (no KServe datatype: refused)
  seq.onnx               input "s" sequence(tensor(float)) -> SequenceLength (not a tensor: refused)
  rank9.onnx             input "x" FP32 with 9 dims (over the 8 a tensor may have: refused)
  slow_fp32.onnx         input "x" FP32 [N, 512] -> 24 x (MatMul by a fixed 512x512 matrix, Tanh)
                         -> "y": its Run time grows with N (about 1 ms per row on one thread),
                         for the overload and deadline tests and the overload benchmark
  bad.onnx               256 seeded random bytes (not a model)

Every file is deterministic. Needs Debian's python3-onnx: run it as /usr/bin/python3.
"""
import os
import random
import sys

import onnx
from onnx import TensorProto, helper

OPSET = 13
IR_VERSION = 8

# KServe datatype name -> ONNX element type; the names are the ones tests look files up by.
DTYPES = [
    ("BOOL", TensorProto.BOOL),
    ("UINT8", TensorProto.UINT8),
    ("UINT16", TensorProto.UINT16),
    ("UINT32", TensorProto.UINT32),
    ("UINT64", TensorProto.UINT64),
    ("INT8", TensorProto.INT8),
    ("INT16", TensorProto.INT16),
    ("INT32", TensorProto.INT32),
    ("INT64", TensorProto.INT64),
    ("FP16", TensorProto.FLOAT16),
    ("FP32", TensorProto.FLOAT),
    ("FP64", TensorProto.DOUBLE),
    ("BYTES", TensorProto.STRING),
]


def model(graph, check=True):
    """Wraps `graph` into a model with fixed producer fields, so every run writes the same bytes."""
    m = helper.make_model(graph, producer_name="modelgate-tests", producer_version="1",
                          opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = IR_VERSION
    if check:
        onnx.checker.check_model(m)
    return m


def identity(name, elem_type, dims):
    x = helper.make_tensor_value_info("x", elem_type, dims)
    y = helper.make_tensor_value_info("y", elem_type, dims)
    node = helper.make_node("Identity", ["x"], ["y"])
    return model(helper.make_graph([node], name, [x], [y]))


def add_fp32():
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 2])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [2, 2])
    s = helper.make_tensor_value_info("sum", TensorProto.FLOAT, [2, 2])
    d = helper.make_tensor_value_info("diff", TensorProto.FLOAT, [2, 2])
    nodes = [helper.make_node("Add", ["a", "b"], ["sum"]),
             helper.make_node("Sub", ["a", "b"], ["diff"])]
    return model(helper.make_graph(nodes, "add_fp32", [a, b], [s, d]))


def add_dyn_fp32():
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 3])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 3])
    s = helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["N", 3])
    nodes = [helper.make_node("Add", ["a", "b"], ["sum"])]
    return model(helper.make_graph(nodes, "add_dyn_fp32", [a, b], [s]))


def positive_fp32():
    """y = the elements of x above 0: its length depends on the data, not on x's shape."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["M"])
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    nodes = [helper.make_node("Greater", ["x", "zero"], ["keep"]),
             helper.make_node("Compress", ["x", "keep"], ["y"], axis=0)]
    return model(helper.make_graph(nodes, "positive_fp32", [x], [y], initializer=[zero]))


def seq():
    s = helper.make_value_info(
        "s", helper.make_sequence_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, None)))
    n = helper.make_tensor_value_info("n", TensorProto.INT64, [])
    node = helper.make_node("SequenceLength", ["s"], ["n"])
    return model(helper.make_graph([node], "seq", [s], [n]))


def slow_fp32(layers=24, width=512):
    rng = random.Random(1)
    # Small weights keep Tanh away from saturation; one initializer shared by every layer.
    w = helper.make_tensor("w", TensorProto.FLOAT, [width, width],
                           [rng.uniform(-0.05, 0.05) for _ in range(width * width)])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", width])
    nodes, prev = [], "x"
    for i in range(layers):
        out = "y" if i == layers - 1 else "t%d" % i
        nodes.append(helper.make_node("MatMul", [prev, "w"], ["m%d" % i]))
        nodes.append(helper.make_node("Tanh", ["m%d" % i], [out]))
        prev = out
    return model(helper.make_graph(nodes, "slow_fp32", [x], [y], initializer=[w]))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_test_models.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)

    models = {"identity_%s.onnx" % kserve: identity("identity_" + kserve, onnx_type, ["N", 3])
              for kserve, onnx_type in DTYPES}
    models["add_fp32.onnx"] = add_fp32()
    models["add_dyn_fp32.onnx"] = add_dyn_fp32()
    models["bf16.onnx"] = identity("bf16", TensorProto.BFLOAT16, ["N", 3])
    models["positive_fp32.onnx"] = positive_fp32()
    models["seq.onnx"] = seq()
    models["rank9.onnx"] = identity("rank9", TensorProto.FLOAT, [1] * 9)
    models["slow_fp32.onnx"] = slow_fp32()
    for name, m in sorted(models.items()):
        onnx.save(m, os.path.join(out, name))

    rng = random.Random(0)
    with open(os.path.join(out, "bad.onnx"), "wb") as f:
        f.write(bytes(rng.randrange(256) for _ in range(256)))


if __name__ == "__main__":
    main()
