#!/usr/bin/python3
"""Builds a compute-bound CNN model repository for benchmarks (random weights, fixed seed).

Usage: /usr/bin/python3 scripts/gen_cnn.py OUTDIR [--width K]   (bench/run.sh uses bench/models)

--width K multiplies every conv's channel count by K (default 1, the model described below);
K=2 gives about 4x the FLOPs, for measuring the serving overhead on a heavier model.

Writes OUTDIR/cnn/1/model.onnx and OUTDIR/cnn/config.json. Generated at benchmark time only,
never committed (bench/models/ is git-ignored). Two runs give byte-identical files.

Graph at --width 1 (opset 13, ir_version 8), input "input" FP32 [batch, 3, 224, 224], NCHW:

  layer        op                       out shape       MACs per image
  conv1        Conv 3->16  k3 s2 p1     16x112x112      5.42 M
  pool1        MaxPool k2 s2            16x56x56        -
  conv2        Conv 16->32 k3 s1 p1     32x56x56       14.45 M
  conv3        Conv 32->64 k3 s2 p1     64x28x28       14.45 M
  conv4        Conv 64->128 k3 s2 p1   128x14x14       14.45 M
  conv5        Conv 128->256 k3 s2 p1  256x7x7         14.45 M
  head         GlobalAveragePool, Flatten, Gemm 256->1000, Softmax   0.26 M

Every Conv is followed by Relu. Total about 63.5 M multiply-adds = 127 MFLOPs per image
(convolutions 126.4 MFLOPs, Gemm 0.5 MFLOPs); printed exactly when the script runs.
Sized so one batch-1 Run takes about 0.5 ms with ONNX Runtime 1.29 on 2 cores (2 intra-op
threads, ORT_ENABLE_ALL) on this machine class: see bench/README.md.

Output "probabilities" FP32 [batch, 1000].
Needs Debian's python3 (python3-onnx, python3-numpy): run it as /usr/bin/python3.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SEED = 0
OPSET = 13
IR_VERSION = 8
H = W = 224
CLASSES = 1000

# (out_channels, stride, maxpool 2x2 after)
CONVS = [(16, 2, True), (32, 1, False), (64, 2, False), (128, 2, False), (256, 2, False)]

CONFIG = {"name": "cnn", "max_batch_size": 8, "version_policy": {"latest": {"num_versions": 1}}}


def f32(name, array):
    return numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name=name)


def build(width):
    rng = np.random.default_rng(SEED)
    nodes, inits = [], []
    x, c, h, w = "input", 3, H, W
    macs = 0
    for i, (base_oc, stride, pool) in enumerate(CONVS, start=1):
        oc = max(1, int(round(base_oc * width)))
        # He-initialised so activations stay O(1) through the ReLU stack.
        wt = rng.standard_normal((oc, c, 3, 3)) * np.sqrt(2.0 / (c * 9))
        bias = rng.standard_normal(oc) * 0.01
        inits += [f32(f"conv{i}.w", wt), f32(f"conv{i}.b", bias)]
        nodes.append(helper.make_node("Conv", [x, f"conv{i}.w", f"conv{i}.b"], [f"conv{i}"],
                                      name=f"conv{i}", kernel_shape=[3, 3], strides=[stride] * 2,
                                      pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"], name=f"relu{i}"))
        h, w = (h + 2 - 3) // stride + 1, (w + 2 - 3) // stride + 1
        macs += oc * h * w * c * 9
        x, c = f"relu{i}", oc
        if pool:
            nodes.append(helper.make_node("MaxPool", [x], [f"pool{i}"], name=f"pool{i}",
                                          kernel_shape=[2, 2], strides=[2, 2]))
            x, h, w = f"pool{i}", h // 2, w // 2
    conv_macs = macs
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1))
    fc_w = rng.standard_normal((CLASSES, c)) * np.sqrt(1.0 / c)
    inits += [f32("fc.w", fc_w), f32("fc.b", np.zeros(CLASSES))]
    nodes.append(helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="fc",
                                  transB=1))
    macs += c * CLASSES
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax",
                                  axis=-1))

    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, H, W])
    out = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", CLASSES])
    doc = ("cnn: random-weight 5-conv benchmark model (modelgate scripts/gen_cnn.py); "
           f"{2 * macs / 1e6:.1f} MFLOPs per image")
    graph = helper.make_graph(nodes, "cnn", [inp], [out], initializer=inits, doc_string=doc)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="modelgate scripts/gen_cnn.py", producer_version="1",
                              doc_string=doc)
    model.ir_version = IR_VERSION
    model.model_version = 1
    onnx.checker.check_model(model)
    return model, macs, conv_macs


def main():
    ap = argparse.ArgumentParser(description="Builds the benchmark CNN model repository.")
    ap.add_argument("outdir")
    ap.add_argument("--width", type=float, default=1.0, help="channel multiplier (default 1)")
    args = ap.parse_args()
    if args.width <= 0:
        sys.exit("gen_cnn: --width must be > 0")
    root = os.path.join(args.outdir, "cnn")
    model, macs, conv_macs = build(args.width)
    os.makedirs(os.path.join(root, "1"), exist_ok=True)
    with open(os.path.join(root, "1", "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    with open(os.path.join(root, "config.json"), "w") as f:
        f.write(json.dumps(CONFIG, separators=(",", ":")) + "\n")
    print(f"gen_cnn: {root}/1/model.onnx (width {args.width:g}): {macs / 1e6:.2f} M MACs = {2 * macs / 1e6:.1f} MFLOPs "
          f"per image (convolutions {2 * conv_macs / 1e6:.1f} MFLOPs)")


if __name__ == "__main__":
    main()
