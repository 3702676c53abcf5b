#!/usr/bin/python3
"""Writes the models the lifecycle tests (verification, sandbox, swaps) load.

Usage: /usr/bin/python3 scripts/gen_lifecycle_models.py OUTDIR

Writes into OUTDIR (created when missing), all opset 13, IR version 8, deterministic:
  add.onnx             input "x" FP32 [N, 4] -> "y" = x + w, w = [1, 2, 3, 4] stored inside
  ext/model.onnx       the same, with w stored as external data in ext/weights.bin
  ext_escape/model.onnx  w's location is "../escape.bin" (a path leaving the version folder)
  ext_absolute/model.onnx  w's location is "/tmp/modelgate-absolute.bin"
  hog.onnx             input "x" FP32 [1] -> y = x + sum(ConstantOfShape([65536, 32768])):
                       every Run allocates 8 GiB (the sandbox's memory limit refuses it)
  slow.onnx            input "x" FP32 [1] -> a Loop of 2^40 iterations adding 1: every Run
                       takes far longer than any sandbox timeout
  spin.onnx            input "n" INT64 [1] -> "y" FP32 [1]: a Loop of n iterations adding 1,
                       so a request takes as long as it asks (the warm-up's zeros: no time)

Needs Debian's python3-onnx: run it as /usr/bin/python3.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from gen_test_models import model  # fixed producer fields, opset 13, IR 8, checked


def add_graph():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    w = numpy_helper.from_array(np.array([1, 2, 3, 4], dtype=np.float32), "w")
    return helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "add", [x], [y], [w])


def external(location, data_dir=None):
    """The add model with w stored externally at `location` (written to data_dir when given)."""
    g = add_graph()
    w = g.initializer[0]
    raw = w.raw_data
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(len(raw)))):
        e = w.external_data.add()
        e.key, e.value = k, v
    if data_dir is not None:
        with open(os.path.join(data_dir, location), "wb") as f:
            f.write(raw)
    return model(g, check=False)  # the checker would look for the file


def hog():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    shape = numpy_helper.from_array(np.array([65536, 32768], dtype=np.int64), "shape")
    one = numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one")
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["big"], value=one),
             helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
             helper.make_node("Add", ["x", "total"], ["y"])]
    return model(helper.make_graph(nodes, "hog", [x], [y], [shape]))


def counting_loop_body():
    """A Loop body (i, cond_in, a_in) -> (cond_out = cond_in, a_out = a_in + 1)."""
    bi = helper.make_tensor_value_info("i", TensorProto.INT64, [])
    bc = helper.make_tensor_value_info("c_in", TensorProto.BOOL, [])
    ba = helper.make_tensor_value_info("a_in", TensorProto.FLOAT, [1])
    bco = helper.make_tensor_value_info("c_out", TensorProto.BOOL, [])
    bao = helper.make_tensor_value_info("a_out", TensorProto.FLOAT, [1])
    one = numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one")
    return helper.make_graph([helper.make_node("Identity", ["c_in"], ["c_out"]),
                              helper.make_node("Add", ["a_in", "one"], ["a_out"])],
                             "body", [bi, bc, ba], [bco, bao], [one])


def slow():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    trips = numpy_helper.from_array(np.array(1 << 40, dtype=np.int64), "trips")
    cond = numpy_helper.from_array(np.array(True), "cond")
    body = counting_loop_body()
    loop = helper.make_node("Loop", ["trips", "cond", "x"], ["y"], body=body)
    return model(helper.make_graph([loop], "slow", [x], [y], [trips, cond]))


def spin():
    n = helper.make_tensor_value_info("n", TensorProto.INT64, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    scalar = numpy_helper.from_array(np.array([], dtype=np.int64), "scalar")
    cond = numpy_helper.from_array(np.array(True), "cond")
    zero = numpy_helper.from_array(np.array([0.0], dtype=np.float32), "zero")
    body = counting_loop_body()
    nodes = [helper.make_node("Reshape", ["n", "scalar"], ["trips"]),
             helper.make_node("Loop", ["trips", "cond", "zero"], ["y"], body=body)]
    return model(helper.make_graph(nodes, "spin", [n], [y], [scalar, cond, zero]))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    onnx.save(model(add_graph()), os.path.join(out, "add.onnx"))
    for name, loc, write in (("ext", "weights.bin", True), ("ext_escape", "../escape.bin", False),
                             ("ext_absolute", "/tmp/modelgate-absolute.bin", False)):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        onnx.save(external(loc, d if write else None), os.path.join(d, "model.onnx"))
    onnx.save(hog(), os.path.join(out, "hog.onnx"))
    onnx.save(slow(), os.path.join(out, "slow.onnx"))
    onnx.save(spin(), os.path.join(out, "spin.onnx"))


if __name__ == "__main__":
    main()
