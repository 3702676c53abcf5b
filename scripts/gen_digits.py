#!/usr/bin/python3
"""Builds the `digits` demo model repository: two versions of an 8x8 handwritten-digit classifier.

Usage: /usr/bin/python3 scripts/gen_digits.py OUTDIR      (the repository root, e.g. `models`)

Writes, under OUTDIR/digits/:
  1/model.onnx       version 1: multinomial logistic regression  (MatMul, Add, Softmax)
  2/model.onnx       version 2: MLP, one hidden layer of 64 ReLU  (MatMul, Add, Relu, ..., Softmax)
  config.json        the daemon's model config (version 2 is the default)
  sample.json        a KServe v2 JSON request holding the first held-out image
  sample_label.txt   that image's true label
  ACCURACY.md        each version's held-out accuracy

Both graphs take input "input" FP32 [batch, 64]: the raw pixel values 0..16 of sklearn's
load_digits() (row-major 8x8). The 1/16 scaling used in training is folded into the first
layer's weights (W / 16: a power of two, so exact), so clients send raw pixels and the graph
has no extra node to run. Output "probabilities" FP32
[batch, 10], class k = digit k.

The data set ships with Debian's python3-sklearn (no download). Everything is seeded and the
ONNX files carry fixed producer fields and doc strings, so two runs give byte-identical files.
Each graph is checked against sklearn's predict_proba (max abs difference <= 1e-5), with the
ONNX math done in numpy float32 from the exported weights (onnx 1.12 has no reference runtime).

Needs Debian's python3 (python3-onnx, python3-numpy, python3-sklearn): run it as /usr/bin/python3.
"""
import json
import os
import sys
import warnings

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

SEED = 0
TEST_SIZE = 0.25
PIXEL_SCALE = np.float32(1.0 / 16.0)  # exact in float32
OPSET = 13
IR_VERSION = 8
TOLERANCE = 1e-5

CONFIG = {
    "name": "digits",
    "max_batch_size": 64,
    "version_policy": {"all": {}},
    "default_version": "2",
    "instance_count": 1,
    "warmup": {"runs": 2},
}


def f32(name, array):
    """An FP32 initializer from a numpy array (copied, C order)."""
    return numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name=name)


def make_model(graph_name, doc, layers):
    """Builds input -> [MatMul -> Add (-> Relu between layers)]* -> Softmax.

    `layers` is a list of (W [in, out], b [out]) in float32; Relu follows every layer but the last.
    The pixel scaling is folded into the first layer: x * s @ W == x @ (W * s) exactly, s = 2^-4.
    """
    nodes = []
    inits = []
    x = "input"
    for i, (w, b) in enumerate(layers):
        if i == 0:
            w = (w * PIXEL_SCALE).astype(np.float32)
        last = i == len(layers) - 1
        nodes.append(helper.make_node("MatMul", [x, f"W{i}"], [f"mm{i}"], name=f"matmul{i}"))
        y = "logits" if last else f"pre{i}"
        nodes.append(helper.make_node("Add", [f"mm{i}", f"b{i}"], [y], name=f"add{i}"))
        inits += [f32(f"W{i}", w), f32(f"b{i}", b)]
        if not last:
            nodes.append(helper.make_node("Relu", [y], [f"h{i}"], name=f"relu{i}"))
            x = f"h{i}"
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=-1))

    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 64])
    out = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])
    graph = helper.make_graph(nodes, graph_name, [inp], [out], initializer=inits, doc_string=doc)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="modelgate scripts/gen_digits.py",
        producer_version="1",
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    model.model_version = 1
    onnx.checker.check_model(model)
    return model


def numpy_forward(layers, x_raw):
    """The exported graph's math in float32: what ONNX Runtime computes."""
    h = x_raw.astype(np.float32) * PIXEL_SCALE
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = np.maximum(h, np.float32(0))
    h = h - h.max(axis=1, keepdims=True)
    e = np.exp(h)
    return e / e.sum(axis=1, keepdims=True)


def check(name, clf, layers, x_test_raw, x_test_scaled):
    want = clf.predict_proba(x_test_scaled)
    got = numpy_forward(layers, x_test_raw)
    err = float(np.abs(got.astype(np.float64) - want).max())
    if err > TOLERANCE:
        sys.exit(f"gen_digits: {name}: exported graph differs from sklearn by {err:.3g} > {TOLERANCE}")
    if not np.array_equal(got.argmax(axis=1), clf.predict(x_test_scaled)):
        sys.exit(f"gen_digits: {name}: exported graph predicts other classes than sklearn")
    return err


def write_bytes(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: /usr/bin/python3 scripts/gen_digits.py OUTDIR")
    outdir = os.path.join(sys.argv[1], "digits")

    digits = load_digits()
    x_raw, y = digits.data.astype(np.float64), digits.target
    x_tr_raw, x_te_raw, y_tr, y_te = train_test_split(
        x_raw, y, test_size=TEST_SIZE, stratify=y, random_state=SEED)
    x_tr, x_te = x_tr_raw / 16.0, x_te_raw / 16.0

    # Version 1: multinomial logistic regression; predict_proba = softmax(x W^T + b).
    logreg = LogisticRegression(multi_class="multinomial", solver="lbfgs", C=1.0, max_iter=2000,
                                random_state=SEED)
    logreg.fit(x_tr, y_tr)
    v1 = [(logreg.coef_.T.astype(np.float32), logreg.intercept_.astype(np.float32))]

    # Version 2: MLP 64 -> 64 ReLU -> 10, softmax output (sklearn's multiclass output layer).
    mlp = MLPClassifier(hidden_layer_sizes=(64,), activation="relu", solver="adam", alpha=1e-4,
                        max_iter=1000, random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(x_tr, y_tr)
    if mlp.out_activation_ != "softmax":
        sys.exit(f"gen_digits: unexpected MLP output activation {mlp.out_activation_}")
    v2 = [(w.astype(np.float32), b.astype(np.float32)) for w, b in zip(mlp.coefs_, mlp.intercepts_)]

    versions = [
        ("1", "logistic regression", logreg, v1,
         "digits v1: multinomial logistic regression on sklearn load_digits; "
         "input raw pixels 0..16 (1/16 scaling folded into the first layer)"),
        ("2", "MLP 64 relu", mlp, v2,
         "digits v2: MLP (64 ReLU hidden units) on sklearn load_digits; "
         "input raw pixels 0..16 (1/16 scaling folded into the first layer)"),
    ]
    n_test = len(y_te)
    accuracy_lines = []
    for ver, title, clf, layers, doc in versions:
        err = check(f"version {ver}", clf, layers, x_te_raw, x_te)
        acc = float((numpy_forward(layers, x_te_raw).argmax(axis=1) == y_te).mean())
        model = make_model(f"digits_v{ver}", doc, layers)
        write_bytes(os.path.join(outdir, ver, "model.onnx"), model.SerializeToString())
        line = f"version {ver} ({title}): {acc:.4f} held-out accuracy on {n_test} images"
        accuracy_lines.append(line)
        print(f"{line} (max |onnx - sklearn| = {err:.2e})")

    write_bytes(os.path.join(outdir, "config.json"),
                (json.dumps(CONFIG, separators=(",", ":")) + "\n").encode())
    write_bytes(os.path.join(outdir, "ACCURACY.md"),
                ("# digits: held-out accuracy\n\n"
                 f"Stratified split of sklearn load_digits (1797 images), {int(TEST_SIZE * 100)}% "
                 f"held out, seed {SEED}; written by scripts/gen_digits.py.\n\n"
                 + "".join(f"- {line}\n" for line in accuracy_lines)).encode())

    # The first held-out image as a KServe v2 JSON request (raw pixel values, as floats).
    pixels = [float(v) for v in x_te_raw[0]]
    sample = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": pixels}]}
    sample_text = json.dumps(sample, separators=(",", ":"))
    write_bytes(os.path.join(outdir, "sample.json"), (sample_text + "\n").encode())
    write_bytes(os.path.join(outdir, "sample_label.txt"), f"{int(y_te[0])}\n".encode())
    print(f"sample (first held-out image, label {int(y_te[0])}):")
    print(sample_text)


if __name__ == "__main__":
    main()
