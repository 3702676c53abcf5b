#!/usr/bin/python3
"""Writes a compute-bound "slow" model for the drain tests and benchmark (tests/it/test_shutdown.py,
bench/run.sh part "drain"): each Run takes tens of milliseconds, so many requests are in flight
when the daemon is told to stop.

Usage: /usr/bin/python3 scripts/gen_slow_model.py OUTDIR [--layers K] [--size N]

Writes OUTDIR/slow/1/model.onnx (opset 13, IR version 8). Graph: input "input" FP32 [1, 16] ->
MatMul [16, N] -> Expand to [N, N] -> K times (MatMul with one [N, N] weight, Tanh) ->
ReduceMean -> output "output" FP32 [1, 1]. Every layer depends on the input, so ONNX Runtime
cannot fold it away at load: a Run costs K * 2 * N^3 FLOPs (default K=8, N=384: 0.9 GFLOPs,
about 20-60 ms on one core of this machine class). Seeded, so two runs write the same bytes.
Needs Debian's python3-onnx and numpy: run it as /usr/bin/python3.
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
IR_VERSION = 8


def build(layers, size):
    rng = np.random.default_rng(0)
    w0 = numpy_helper.from_array(rng.standard_normal((16, size)).astype(np.float32) * 0.1, "w0")
    w = numpy_helper.from_array(rng.standard_normal((size, size)).astype(np.float32) / size, "w")
    shape = numpy_helper.from_array(np.array([size, size], dtype=np.int64), "shape")
    nodes = [helper.make_node("MatMul", ["input", "w0"], ["row"]),
             helper.make_node("Expand", ["row", "shape"], ["y0"])]
    y = "y0"
    for i in range(layers):
        nodes.append(helper.make_node("MatMul", [y, "w"], ["m%d" % i]))
        nodes.append(helper.make_node("Tanh", ["m%d" % i], ["y%d" % (i + 1)]))
        y = "y%d" % (i + 1)
    nodes.append(helper.make_node("ReduceMean", [y], ["output"], keepdims=1))
    graph = helper.make_graph(
        nodes, "slow",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1])],
        initializer=[w0, w, shape])
    m = helper.make_model(graph, producer_name="modelgate-tests", producer_version="1",
                          opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = IR_VERSION
    onnx.checker.check_model(m)
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--size", type=int, default=384)
    a = ap.parse_args()
    d = os.path.join(a.outdir, "slow", "1")
    os.makedirs(d, exist_ok=True)
    onnx.save(build(a.layers, a.size), os.path.join(d, "model.onnx"))
    print("slow: %d layers of %dx%d, %.2f GFLOPs per Run" %
          (a.layers, a.size, a.size, a.layers * 2 * a.size ** 3 / 1e9))


if __name__ == "__main__":
    main()
