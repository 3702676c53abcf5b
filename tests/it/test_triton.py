"""Triton's protocol extensions over real HTTP against the real daemon, as Triton's HTTP client
speaks them (docs/protocol/extension_*.md of triton-inference-server/server, KServe's
required_api.md): error wording, the repository index, statistics, model configuration,
compression and classification."""
import base64
import gzip
import http.client
import json
import os
import re
import shutil
import socket
import struct
import threading
import time
import unittest
import zlib

import mgtest
from mgtest import Daemon

with open(os.path.join(mgtest.SOURCE_DIR, "models", "digits", "sample.json")) as f:
    SAMPLE = json.load(f)


# Sanitizer builds: ASan keeps freed memory in quarantine, so RSS is checked only without one
# (descriptors and mappings always), and the shared-memory cycles are fewer.
SANITIZED = bool(os.environ.get("MG_SANITIZE"))


def copy_digits(*names):
    """An `extra` for make_repo: copies of digits (two versions) named `names`."""
    def extra(repo):
        for name in names:
            shutil.copytree(os.path.join(repo, "digits"), os.path.join(repo, name))
            path = os.path.join(repo, name, "config.json")
            with open(path) as f:
                cfg = json.load(f)
            cfg["name"] = name
            with open(path, "w") as f:
                json.dump(cfg, f)
    return extra


LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def labelled(repo):
    """digits again as "labelled", whose output has a labels file named in its config.json."""
    shutil.copytree(os.path.join(repo, "digits"), os.path.join(repo, "labelled"))
    with open(os.path.join(repo, "labelled", "config.json"), "w") as f:
        json.dump({"max_batch_size": 64, "output": [{"name": "probabilities", "label_filename": "labels.txt"}]}, f)
    with open(os.path.join(repo, "labelled", "labels.txt"), "w") as f:
        f.write("\n".join(LABELS) + "\n")


def extras(*fns):
    def extra(repo):
        for fn in fns:
            fn(repo)
    return extra


class TritonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(extra=extras(copy_digits("spare", "twin"), labelled))
        cls.d = Daemon(cls.repo, args=["--max-body-bytes", "1048576"])

    @classmethod
    def tearDownClass(cls):
        mgtest.stop_and_clean(cls.d, cls.root)

    def infer(self, model, body, version=None, headers=None):
        path = "/v2/models/%s%s/infer" % (model, "/versions/%s" % version if version else "")
        return self.d.json("POST", path, body, headers)

    # ---- error wording, index, server metadata ------------------------------------------------

    def test_unknown_model_in_tritons_words(self):
        want = "Request for unknown model: 'nosuch' is not found"
        for method, path, body in [("GET", "/v2/models/nosuch", None), ("GET", "/v2/models/nosuch/ready", None),
                                   ("GET", "/v2/models/nosuch/versions/1", None),
                                   ("POST", "/v2/models/nosuch/infer", SAMPLE),
                                   ("POST", "/v2/repository/models/nosuch/unload", None)]:
            s, b = self.d.json(method, path, body)
            self.assertEqual((s, b), (404, {"error": want}), path)

    def test_index_lists_every_version_of_an_unloaded_model(self):
        self.assertEqual(self.d.json("POST", "/v2/repository/models/spare/unload"), (200, {}))
        try:
            s, rows = self.d.json("POST", "/v2/repository/index")
            self.assertEqual(s, 200)
            spare = sorted((r["version"], r["state"], r["reason"]) for r in rows if r["name"] == "spare")
            self.assertEqual(spare, [("1", "UNAVAILABLE", "unloaded"), ("2", "UNAVAILABLE", "unloaded")])
            s, rows = self.d.json("POST", "/v2/repository/index", {"ready": True})
            self.assertNotIn("spare", {r["name"] for r in rows})
        finally:
            self.assertEqual(self.d.json("POST", "/v2/repository/models/spare/load"), (200, {}))
        s, rows = self.d.json("POST", "/v2/repository/index", {"ready": True})
        self.assertEqual(sorted(r["version"] for r in rows if r["name"] == "spare"), ["1", "2"])

    def test_server_metadata_lists_what_is_implemented(self):
        s, b = self.d.json("GET", "/v2")
        self.assertEqual(s, 200)
        self.assertEqual(b["name"], "modelgate")
        self.assertEqual(sorted(b["extensions"]), sorted(EXTENSIONS))
        # Each listed extension answers (an extension listed but missing would 404 here).
        probes = {"binary_tensor_data": None, "model_repository": ("POST", "/v2/repository/index")}
        for ext in b["extensions"]:
            probe = probes.get(ext, PROBES.get(ext))
            if probe:
                self.assertEqual(self.d.request(*probe)[0], 200, ext)

    # ---- statistics ---------------------------------------------------------------------------

    def stats(self, path):
        s, b = self.d.json("GET", path)
        self.assertEqual(s, 200, b)
        return {(r["name"], r["version"]): r for r in b["model_stats"]}

    def test_statistics_shape(self):
        self.assertEqual(self.infer("digits", SAMPLE, version="2")[0], 200)
        rows = self.stats("/v2/models/stats")
        self.assertIn(("digits", "1"), rows)
        self.assertIn(("id_fp32", "1"), rows)
        self.assertNotIn("broken", {name for name, _ in rows})  # nothing READY
        r = rows[("digits", "2")]
        self.assertEqual(set(r), {"name", "version", "last_inference", "inference_count", "execution_count",
                                  "inference_stats", "batch_stats"})
        phases = {"success", "fail", "queue", "compute_input", "compute_infer", "compute_output", "cache_hit",
                  "cache_miss"}
        self.assertEqual(set(r["inference_stats"]), phases)
        for p in phases:
            self.assertEqual(set(r["inference_stats"][p]), {"count", "ns"})
        self.assertGreater(r["inference_stats"]["compute_infer"]["ns"], 0)
        self.assertAlmostEqual(r["last_inference"] / 1000, time.time(), delta=60)
        b1 = [b for b in r["batch_stats"] if b["batch_size"] == 1]
        self.assertEqual(len(b1), 1)
        self.assertEqual(set(b1[0]), {"batch_size", "compute_input", "compute_infer", "compute_output"})
        # One model: its READY versions; one version: that one.
        self.assertEqual(sorted(self.stats("/v2/models/digits/stats")), [("digits", "1"), ("digits", "2")])
        self.assertEqual(sorted(self.stats("/v2/models/digits/versions/2/stats")), [("digits", "2")])
        s, b = self.d.json("GET", "/v2/models/nosuch/stats")
        self.assertEqual((s, b), (404, {"error": "Request for unknown model: 'nosuch' is not found"}))
        self.assertEqual(self.d.json("GET", "/v2/models/digits/versions/9/stats")[0], 404)
        self.assertEqual(self.d.json("GET", "/v2/models/broken/versions/1/stats")[0], 503)
        self.assertEqual(self.d.json("POST", "/v2/models/stats")[0], 405)

    def test_statistics_count_every_request_under_two_loops(self):
        before = self.stats("/v2/models/digits/stats")
        n = 40

        def loop():
            for i in range(n):
                for v in ("1", "2"):
                    s, b = self.infer("digits", SAMPLE, version=v)
                    assert s == 200, b
        threads = [threading.Thread(target=loop) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = self.stats("/v2/models/digits/stats")
        for v in ("1", "2"):
            a, b = after[("digits", v)], before[("digits", v)]
            self.assertEqual(a["inference_stats"]["success"]["count"] - b["inference_stats"]["success"]["count"],
                             2 * n, v)
            self.assertEqual(a["inference_count"] - b["inference_count"], 2 * n, v)
            # Runs: requests of one loop's wake may share a Run (opportunistic batching).
            runs = a["execution_count"] - b["execution_count"]
            self.assertTrue(1 <= runs <= 2 * n, (v, runs))

    # ---- model configuration ------------------------------------------------------------------

    DIGITS_CONFIG = {
        "name": "digits", "platform": "onnxruntime_onnx", "backend": "onnxruntime",
        "version_policy": {"all": {}}, "max_batch_size": 64,
        "input": [{"name": "input", "data_type": "TYPE_FP32", "dims": [64]}],
        "output": [{"name": "probabilities", "data_type": "TYPE_FP32", "dims": [10]}],
        "instance_group": [{"name": "digits", "kind": "KIND_CPU", "count": 1}],
        "default_model_filename": "model.onnx",
        "parameters": {"default_version": {"string_value": '"2"'}, "warmup": {"string_value": '{"runs":2}'}}}

    def test_model_config(self):
        self.assertEqual(self.d.json("GET", "/v2/models/digits/config"), (200, self.DIGITS_CONFIG))
        self.assertEqual(self.d.json("GET", "/v2/models/digits/versions/1/config"), (200, self.DIGITS_CONFIG))
        # Without batching, dims are the model's whole shape (dynamic dims -1).
        s, b = self.d.json("GET", "/v2/models/id_int32/config")
        self.assertEqual((s, b["max_batch_size"], b["input"]), (200, 0, [{"name": "x", "data_type": "TYPE_INT32",
                                                                          "dims": [-1, 3]}]))
        self.assertEqual(b["version_policy"], {"latest": {"num_versions": 1}})
        s, b = self.d.json("GET", "/v2/models/id_bytes/config")
        self.assertEqual(b["input"][0]["data_type"], "TYPE_STRING")
        s, b = self.d.json("GET", "/v2/models/nosuch/config")
        self.assertEqual((s, b), (404, {"error": "Request for unknown model: 'nosuch' is not found"}))
        self.assertEqual(self.d.json("GET", "/v2/models/digits/versions/7/config")[0], 404)

    def test_model_config_loads_back_and_is_checked(self):
        path = os.path.join(self.repo, "twin", "config.json")
        with open(path) as f:
            original = f.read()
        try:
            cfg = dict(self.DIGITS_CONFIG, name="twin")
            cfg["instance_group"] = [{"name": "twin", "kind": "KIND_CPU", "count": 2}]
            cfg["parameters"] = dict(cfg["parameters"], max_inflight={"string_value": "8"},
                                     execution={"string_value": '"pool"'},
                                     batching={"string_value": '{"opportunistic":false,"max_batch":4}'})
            cfg["dynamic_batching"] = {"max_queue_delay_microseconds": 100, "preferred_batch_size": [2, 4]}
            with open(path, "w") as f:
                json.dump(cfg, f)
            self.assertEqual(self.d.json("POST", "/v2/repository/models/twin/load"), (200, {}))
            self.assertEqual(self.d.json("GET", "/v2/models/twin/config"), (200, cfg))
            self.assertEqual(self.infer("twin", SAMPLE)[0], 200)
            # An input the model does not have that way: the load fails and says why.
            bad = dict(cfg, input=[{"name": "input", "data_type": "TYPE_INT32", "dims": [64]}])
            with open(path, "w") as f:
                json.dump(bad, f)
            s, b = self.d.json("POST", "/v2/repository/models/twin/load")
            self.assertEqual(s, 400, b)
            self.assertIn("input 'input' has data_type TYPE_INT32, the model's is TYPE_FP32", b["error"])
            self.assertEqual(self.infer("twin", SAMPLE)[0], 200)  # what served still serves
        finally:
            with open(path, "w") as f:
                f.write(original)

    # ---- classification -----------------------------------------------------------------------

    def classify(self, model, k, batch=1, **kw):
        body = {"inputs": [{"name": "input", "shape": [batch, 64], "datatype": "FP32",
                            "data": SAMPLE["inputs"][0]["data"] * batch}],
                "outputs": [{"name": "probabilities", "parameters": {"classification": k, **kw}}]}
        return self.infer(model, body)

    def test_classification(self):
        s, b = self.infer("digits", SAMPLE)
        probs = b["outputs"][0]["data"]
        order = sorted(range(10), key=lambda i: (-probs[i], i))
        s, b = self.classify("digits", 3)
        self.assertEqual(s, 200, b)
        out = b["outputs"][0]
        self.assertEqual((out["name"], out["datatype"], out["shape"]), ("probabilities", "BYTES", [1, 3]))
        self.assertEqual([int(x.split(":")[1]) for x in out["data"]], order[:3])
        self.assertEqual([float(x.split(":")[0]) for x in out["data"]], [probs[i] for i in order[:3]])
        with open(os.path.join(mgtest.SOURCE_DIR, "models", "digits", "sample_label.txt")) as f:
            self.assertEqual(order[0], int(f.read()))
        # Per batch element; K past the class count gives every class.
        s, b = self.classify("digits", 2, batch=3)
        self.assertEqual((s, b["outputs"][0]["shape"]), (200, [3, 2]))
        self.assertEqual(b["outputs"][0]["data"][0:2], b["outputs"][0]["data"][4:6])
        s, b = self.classify("digits", 50)
        self.assertEqual(b["outputs"][0]["shape"], [1, 10])
        # With the labels file: "score:index:label".
        s, b = self.classify("labelled", 2)
        self.assertEqual(s, 200, b)
        self.assertEqual([x.split(":", 1)[1] for x in b["outputs"][0]["data"]],
                         ["%d:%s" % (i, LABELS[i]) for i in order[:2]])
        # In the binary extension: BYTES elements, length-prefixed.
        s, h, data = self.d.request("POST", "/v2/models/labelled/infer", json.dumps(
            {"inputs": SAMPLE["inputs"], "outputs": [{"name": "probabilities",
                                                      "parameters": {"classification": 1, "binary_data": True}}]}))
        header, raws = mgtest.split_binary_response(h, data)
        raw = raws["probabilities"]
        n = struct.unpack("<I", raw[:4])[0]
        self.assertEqual(raw[4:4 + n].decode().split(":")[1:], [str(order[0]), LABELS[order[0]]])
        for k in [0, -1, "3", 1.5]:
            s, b = self.classify("digits", k)
            self.assertEqual(s, 400, k)
            self.assertIn("'classification' must be a positive integer", b["error"])
        s, b = self.infer("id_bytes", {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "BYTES",
                                                   "data": ["a", "b", "c"]}],
                                       "outputs": [{"name": "y", "parameters": {"classification": 1}}]})
        self.assertEqual(s, 400, b)
        self.assertIn("output 'y': classification needs a numeric output, it is BYTES", b["error"])

    def test_missing_labels_file_fails_the_load(self):
        path = os.path.join(self.repo, "twin", "config.json")
        with open(path) as f:
            original = f.read()
        try:
            with open(path, "w") as f:
                json.dump({"output": [{"name": "probabilities", "label_filename": "nolabels.txt"}]}, f)
            s, b = self.d.json("POST", "/v2/repository/models/twin/load")
            self.assertEqual(s, 400, b)
            self.assertIn("output 'probabilities': label_filename:", b["error"])
            self.assertIn("nolabels.txt", b["error"])
        finally:
            with open(path, "w") as f:
                f.write(original)

    # ---- model upload and config override through the repository load ----------------------

    def load_with(self, model, params):
        return self.d.json("POST", "/v2/repository/models/%s/load" % model, {"parameters": params})

    def test_upload_a_model_with_its_files(self):
        with open(os.path.join(self.repo, "digits", "2", "model.onnx"), "rb") as f:
            onnx = f.read()
        labels = "\n".join(LABELS).encode()
        config = json.dumps({"name": "uploaded", "max_batch_size": 8,
                             "output": [{"name": "probabilities", "label_filename": "labels.txt"}]})
        s, b = self.load_with("uploaded", {"config": config,
                                           "file:3/model.onnx": base64.b64encode(onnx).decode(),
                                           "file:labels.txt": base64.b64encode(labels).decode()})
        self.assertEqual((s, b), (200, {}))
        s, b = self.classify("uploaded", 1)
        self.assertEqual((s, b["model_version"], b["outputs"][0]["data"][0].split(":")[2]), (200, "3", "two"))
        folder = os.path.join(self.repo, "uploaded")
        self.assertEqual(sorted(os.listdir(folder)), ["3", "config.json", "labels.txt"])
        with open(os.path.join(folder, "3", "model.onnx"), "rb") as f:
            self.assertEqual(f.read(), onnx)
        self.assertEqual([n for n in os.listdir(self.repo) if n.startswith(".")], [])
        # A second upload replaces the folder as a whole; one that fails leaves it as it was.
        s, b = self.load_with("uploaded", {"config": config, "file:4/model.onnx": base64.b64encode(b"junk").decode()})
        self.assertEqual(s, 400, b)
        self.assertIn("not a valid ONNX model", b["error"])
        self.assertEqual(sorted(os.listdir(folder)), ["3", "config.json", "labels.txt"])
        self.assertEqual(self.classify("uploaded", 1)[0], 200)
        s, b = self.load_with("fresh", {"config": "{}", "file:1/model.onnx": base64.b64encode(b"junk").decode()})
        self.assertEqual(s, 400, b)
        self.assertFalse(os.path.exists(os.path.join(self.repo, "fresh")))
        self.assertEqual([n for n in os.listdir(self.repo) if n.startswith(".")], [])
        # A restart serves what was uploaded.
        d2 = Daemon(self.repo)
        try:
            s, b = d2.json("GET", "/v2/models/uploaded/ready")
            self.assertEqual((s, b["version"]), (200, "3"))
        finally:
            self.assertEqual(d2.stop(), 0)

    def test_config_override(self):
        path = os.path.join(self.repo, "spare", "config.json")
        with open(path) as f:
            original = f.read()
        try:
            cfg = dict(json.loads(original), max_batch_size=4)
            self.assertEqual(self.load_with("spare", {"config": json.dumps(cfg)}), (200, {}))
            self.assertEqual(self.d.json("GET", "/v2/models/spare/config")[1]["max_batch_size"], 4)
            with open(path) as f:
                self.assertEqual(json.load(f), cfg)
            # A config the model does not match: refused at load, config.json put back.
            bad = dict(cfg, input=[{"name": "nosuch"}])
            s, b = self.load_with("spare", {"config": json.dumps(bad)})
            self.assertEqual(s, 400, b)
            self.assertIn("input 'nosuch' is not one of the model's inputs", b["error"])
            with open(path) as f:
                self.assertEqual(json.load(f), cfg)
            # One that does not parse: refused before anything is written.
            s, b = self.load_with("spare", {"config": '{"max_batch_size": "many"}'})
            self.assertEqual(s, 400)
            self.assertIn("max_batch_size", b["error"])
        finally:
            with open(path, "w") as f:
                f.write(original)
            self.assertEqual(self.d.json("POST", "/v2/repository/models/spare/load"), (200, {}))

    def test_upload_errors(self):
        good = base64.b64encode(b"x").decode()
        for params, status, want in [
                ({"file:1/model.onnx": good}, 400, "needs the model's \"config\" too"),
                ({"config": "{}", "file:../x/model.onnx": good}, 400, "the path must be"),
                ({"config": "{}", "file:1/.hidden": good}, 400, "the path must be"),
                ({"config": "{}", "file:config.json": good}, 400, "the path must be"),
                ({"config": "{}", "file:01/model.onnx": good}, 400, "the path must be"),
                ({"config": "{}", "file:1/model.onnx": "not base64!"}, 400, "in base64"),
                ({"config": 7}, 400, "'config' must be a string"),
                ({"colour": "red"}, 400, "unknown load parameter 'colour'"),
                ({"config": "{}"}, 404, "no model 'nosuch'")]:
            s, b = self.load_with("nosuch", params)
            self.assertEqual(s, status, (params, b))
            self.assertIn(want, b["error"])
        s, b = self.d.json("POST", "/v2/repository/models/nosuch/load", "[1]")
        self.assertEqual(s, 400)
        # Bounded by the body limit (1 MiB here): 413 from the headers, before any byte is read.
        with socket.create_connection(("127.0.0.1", self.d.port), timeout=30) as sk:
            sk.sendall(b"POST /v2/repository/models/nosuch/load HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: 2000000\r\n\r\n")
            r = http.client.HTTPResponse(sk)
            r.begin()
            self.assertEqual(r.status, 413)
            self.assertIn("1048576-byte limit", json.loads(r.read())["error"])
        self.assertFalse(os.path.exists(os.path.join(self.repo, "nosuch")))

    # ---- compression --------------------------------------------------------------------------

    def test_compressed_request_bodies(self):
        want = self.infer("digits", SAMPLE)[1]["outputs"]
        body = json.dumps(SAMPLE).encode()
        for coding, data in [("gzip", gzip.compress(body)), ("deflate", zlib.compress(body)),
                             ("GZIP", gzip.compress(body)), ("identity", body)]:
            s, h, out = self.d.request("POST", "/v2/models/digits/infer", data, {"Content-Encoding": coding})
            self.assertEqual(s, 200, (coding, out))
            self.assertEqual(json.loads(out)["outputs"], want, coding)
        s, b = self.d.json("POST", "/v2/models/digits/infer", body, {"Content-Encoding": "br"})
        self.assertEqual(s, 415)
        self.assertIn("Content-Encoding 'br' is not supported", b["error"])
        s, b = self.d.json("POST", "/v2/models/digits/infer", body, {"Content-Encoding": "gzip"})
        self.assertEqual(s, 400)
        self.assertIn("not valid gzip", b["error"])
        s, b = self.d.json("POST", "/v2/models/digits/infer", gzip.compress(body)[:-12], {"Content-Encoding": "gzip"})
        self.assertEqual(s, 400)
        self.assertIn("truncated", b["error"])

    def test_binary_request_compressed_header_length_uncompressed(self):
        pixels = struct.pack("<64f", *SAMPLE["inputs"][0]["data"])
        body, n = mgtest.binary_request([("input", "FP32", [1, 64], pixels)], binary_output=True)
        s, h, out = self.d.request("POST", "/v2/models/digits/infer", gzip.compress(body),
                                   {"Content-Encoding": "gzip", "Inference-Header-Content-Length": str(n),
                                    "Accept-Encoding": "gzip"})
        self.assertEqual(s, 200, out)
        if h.get("content-encoding") == "gzip":
            out = gzip.decompress(out)
        header, raws = mgtest.split_binary_response(h, out)
        self.assertEqual(len(raws[header["outputs"][0]["name"]]), 40)

    def test_compressed_responses(self):
        for coding, undo in [("gzip", gzip.decompress), ("deflate", zlib.decompress)]:
            s, h, out = self.d.request("POST", "/v2/repository/index", None, {"Accept-Encoding": coding})
            self.assertEqual(s, 200)
            self.assertEqual(h.get("content-encoding"), coding)
            self.assertEqual(h.get("vary"), "accept-encoding")
            plain = undo(out)
            self.assertGreater(len(plain), len(out))
            self.assertEqual(len(json.loads(plain)), len(self.d.json("POST", "/v2/repository/index")[1]))
        # q-values: the highest wins; q=0 never; small answers as they are.
        s, h, _ = self.d.request("POST", "/v2/repository/index", None, {"Accept-Encoding": "gzip;q=0.5, deflate"})
        self.assertEqual(h.get("content-encoding"), "deflate")
        s, h, _ = self.d.request("POST", "/v2/repository/index", None, {"Accept-Encoding": "gzip;q=0"})
        self.assertNotIn("content-encoding", h)
        s, h, out = self.d.request("GET", "/v2/health/live", None, {"Accept-Encoding": "gzip"})
        self.assertEqual((s, h.get("content-encoding"), json.loads(out)), (200, None, {"live": True}))


class SharedMemoryTest(unittest.TestCase):
    """System shared memory: a region of /dev/shm registered, used for inputs and outputs."""
    CYCLES = int(os.environ.get("MG_SHM_CYCLES", "100" if SANITIZED else "300"))
    ARGS = []
    POOL = False  # digits runs on the execution pool ("execution": "pool")

    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(with_test_models=False)
        if cls.POOL:
            path = os.path.join(cls.repo, "digits", "config.json")
            with open(path) as f:
                cfg = json.load(f)
            with open(path, "w") as f:
                json.dump(dict(cfg, execution="pool"), f)
        cls.d = Daemon(cls.repo, args=cls.ARGS)
        cls.key, cls.fd, cls.mem = mgtest.open_shm("")

    @classmethod
    def tearDownClass(cls):
        mgtest.close_shm(cls.key, cls.fd, cls.mem)
        mgtest.stop_and_clean(cls.d, cls.root)

    def tearDown(self):
        self.assertEqual(self.d.json("POST", "/v2/systemsharedmemory/unregister"), (200, {}))

    def register(self, name, offset=0, byte_size=4096, key=None):
        return self.d.json("POST", "/v2/systemsharedmemory/region/%s/register" % name,
                           {"key": key or self.key, "offset": offset, "byte_size": byte_size})

    def shm_infer(self, region="data", in_off=0, out_off=1024, out_size=40):
        return self.d.json("POST", "/v2/models/digits/versions/2/infer", {
            "inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "parameters": {
                "shared_memory_region": region, "shared_memory_offset": in_off, "shared_memory_byte_size": 256}}],
            "outputs": [{"name": "probabilities", "parameters": {
                "shared_memory_region": region, "shared_memory_offset": out_off,
                "shared_memory_byte_size": out_size}}]})

    def test_register_status_infer_unregister(self):
        self.mem[0:256] = struct.pack("<64f", *SAMPLE["inputs"][0]["data"])
        self.mem[1024:1064] = b"\0" * 40
        self.assertEqual(self.register("data"), (200, {}))
        self.assertEqual(self.register("part", offset=1024, byte_size=64), (200, {}))
        s, b = self.d.json("GET", "/v2/systemsharedmemory/status")
        self.assertEqual((s, b), (200, [{"name": "data", "key": self.key, "offset": 0, "byte_size": 4096},
                                        {"name": "part", "key": self.key, "offset": 1024, "byte_size": 64}]))
        s, b = self.d.json("GET", "/v2/systemsharedmemory/region/part/status")
        self.assertEqual((s, len(b)), (200, 1))
        s, b = self.shm_infer()
        self.assertEqual(s, 200, b)
        out = b["outputs"][0]
        self.assertNotIn("data", out)
        self.assertEqual(out["parameters"], {"shared_memory_region": "data", "shared_memory_byte_size": 40,
                                             "shared_memory_offset": 1024})
        want = self.infer_json()
        self.assertEqual(list(struct.unpack("<10f", self.mem[1024:1064])), want)
        # A region at an offset of its object: offsets count from the region's start.
        self.mem[1024:1064] = b"\0" * 40
        s, b = self.d.json("POST", "/v2/models/digits/versions/2/infer", {
            "inputs": SAMPLE["inputs"], "outputs": [{"name": "probabilities", "parameters": {
                "shared_memory_region": "part", "shared_memory_byte_size": 40}}]})
        self.assertEqual(s, 200, b)
        self.assertEqual(list(struct.unpack("<10f", self.mem[1024:1064])), want)
        self.assertEqual(self.d.json("POST", "/v2/systemsharedmemory/region/part/unregister"), (200, {}))
        s, b = self.d.json("GET", "/v2/systemsharedmemory/region/part/status")
        self.assertEqual(s, 400)
        self.assertIn("no shared-memory region 'part'", b["error"])

    def infer_json(self):
        s, b = self.d.json("POST", "/v2/models/digits/versions/2/infer", SAMPLE)
        return [struct.unpack("<f", struct.pack("<f", x))[0] for x in b["outputs"][0]["data"]]

    def test_errors(self):
        self.assertEqual(self.register("data"), (200, {}))
        cases = [
            (dict(in_off=4000), "input 'input': shared_memory_offset 4000 + shared_memory_byte_size 256 is "
                                "outside region 'data' (4096 bytes)"),
            (dict(in_off=2**64 - 1), "is outside region 'data'"),
            (dict(out_off=4090), "output 'probabilities': shared_memory_offset 4090"),
            (dict(out_size=8), "output 'probabilities' is 40 bytes, more than its shared_memory_byte_size 8"),
            (dict(region="nosuch"), "no shared-memory region 'nosuch' is registered"),
        ]
        for kw, want in cases:
            s, b = self.shm_infer(**kw)
            self.assertEqual(s, 400, kw)
            self.assertIn(want, b["error"])
        s, b = self.d.json("POST", "/v2/models/digits/infer", {"inputs": [
            {"name": "input", "shape": [1, 64], "datatype": "FP32", "parameters": {"shared_memory_region": "data"}}]})
        self.assertEqual(s, 400)
        self.assertIn("needs both 'shared_memory_region' and 'shared_memory_byte_size'", b["error"])
        s, b = self.d.json("POST", "/v2/models/digits/infer", {"inputs": [
            {"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64,
             "parameters": {"shared_memory_region": "data", "shared_memory_byte_size": 256}}]})
        self.assertEqual(s, 400)
        self.assertIn("has both shared memory and 'data'", b["error"])
        for name, kw, want in [
                ("data", {}, "already registered"),
                ("x", dict(key="/etc/passwd"), "under /dev/shm"),
                ("x", dict(key="/../etc"), "under /dev/shm"),
                ("x", dict(key="relative"), "under /dev/shm"),
                ("x", dict(key="/mg-it-no-such-object"), "cannot open shared-memory object"),
                ("x", dict(offset=4000, byte_size=200), "past the end"),
                ("x", dict(byte_size=0), "'byte_size' must be at least 1")]:
            s, b = self.register(name, **kw)
            self.assertEqual(s, 400, (name, kw, b))
            self.assertIn(want, b["error"])
        s, b = self.d.json("POST", "/v2/systemsharedmemory/region/x/register", {"offset": 0})
        self.assertEqual(s, 400)
        self.assertIn("'key'", b["error"])
        s, b = self.d.json("POST", "/v2/systemsharedmemory/region/nosuch/unregister")
        self.assertEqual(s, 400)

    def test_cycles_leave_memory_and_descriptors_flat(self):
        self.mem[0:256] = struct.pack("<64f", *SAMPLE["inputs"][0]["data"])
        conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=30)

        def call(method, path, body):
            conn.request(method, path, json.dumps(body) if body is not None else None)
            r = conn.getresponse()
            data = r.read()
            assert r.status == 200, data
        infer = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "parameters": {
                    "shared_memory_region": "c", "shared_memory_byte_size": 256}}],
                 "outputs": [{"name": "probabilities", "parameters": {
                     "shared_memory_region": "c", "shared_memory_offset": 1024, "shared_memory_byte_size": 40}}]}
        pid = self.d.proc.pid
        marks = []
        try:
            for i in range(self.CYCLES):
                call("POST", "/v2/systemsharedmemory/region/c/register", {"key": self.key, "byte_size": 4096})
                call("POST", "/v2/models/digits/versions/2/infer", infer)
                call("POST", "/v2/systemsharedmemory/region/c/unregister", None)
                if i in (self.CYCLES // 10, self.CYCLES - 1):
                    with open("/proc/%d/status" % pid) as f:
                        rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
                    with open("/proc/%d/maps" % pid) as f:
                        maps = f.read().count(self.key)
                    marks.append((rss, len(os.listdir("/proc/%d/fd" % pid)), maps))
        finally:
            conn.close()
        print("shm cycles %d: (rss kB, fds, mappings) %s" % (self.CYCLES, marks))
        (rss0, fd0, maps0), (rss1, fd1, maps1) = marks
        self.assertEqual((fd1, maps0, maps1), (fd0, 0, 0))
        if not SANITIZED:
            self.assertLess(rss1 - rss0, 4 << 10)


class SharedMemoryPoolTest(SharedMemoryTest):
    """The same, with digits on the execution pool: the regions travel with the call."""
    CYCLES = 50
    ARGS = ["--exec-threads", "1"]
    POOL = True


class CompressionBombTest(unittest.TestCase):
    """A 10 MB gzip body inflating to 10 GB: 413 at once, nothing kept."""
    LIMIT = 16 << 20

    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(with_test_models=False)
        cls.d = Daemon(cls.repo, args=["--max-body-bytes", str(cls.LIMIT)])

    @classmethod
    def tearDownClass(cls):
        mgtest.stop_and_clean(cls.d, cls.root)

    def rss_kb(self):
        with open("/proc/%d/status" % self.d.proc.pid) as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    def test_bomb(self):
        # gzip members back to back are one body (RFC 1952): 1000 members of 10 MB of zeros.
        member = gzip.compress(b"\0" * (10 << 20), 9)
        bomb = member * 1000
        self.assertLess(len(bomb), 11 << 20)
        deflate_bomb = zlib.compress(b"\0" * (self.LIMIT + 1), 9)
        conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=30)
        try:
            rss = []
            for i in range(6):
                body, coding = (bomb, "gzip") if i % 2 == 0 else (deflate_bomb, "deflate")
                conn.putrequest("POST", "/v2/models/digits/infer")
                conn.putheader("Content-Encoding", coding)
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders()
                conn.send(body)  # the whole body is on its way before the clock starts
                t0 = time.monotonic()
                r = conn.getresponse()
                data = r.read()
                took = time.monotonic() - t0
                self.assertEqual(r.status, 413, data)
                self.assertIn("inflates to more than the %d-byte limit" % self.LIMIT, json.loads(data)["error"])
                # 100 ms on a quiet machine (bench/README); generous here, on a loaded one.
                self.assertLess(took, 2.0)
                rss.append(self.rss_kb())
                print("bomb %s: 413 in %.1f ms, rss %d kB" % (coding, took * 1000, rss[-1]))
            # The first rounds reach the steady state; after them nothing more is kept.
            if not SANITIZED:
                self.assertLess(rss[-1] - rss[1], 8 << 10, rss)
        finally:
            conn.close()
        s, b = self.d.json("POST", "/v2/models/digits/infer", SAMPLE)
        self.assertEqual(s, 200, b)


class ProtectedAdminTest(unittest.TestCase):
    """Behind --admin-token-file: registering shared memory and uploading through a load need
    the token; without it nothing is mapped or written."""
    TOKEN = "t0k3n-for-the-triton-tests-0123456789"

    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(with_test_models=False)
        path = os.path.join(cls.root, "admin-token")
        with open(path, "w") as f:
            f.write(cls.TOKEN + "\n")
        os.chmod(path, 0o600)
        cls.d = Daemon(cls.repo, args=["--admin-token-file", path])
        cls.key = "/mg-it-admin-%d" % os.getpid()
        with open("/dev/shm" + cls.key, "wb") as f:
            f.write(b"\0" * 4096)

    @classmethod
    def tearDownClass(cls):
        os.unlink("/dev/shm" + cls.key)
        mgtest.stop_and_clean(cls.d, cls.root)

    def call(self, path, body, token=None):
        headers = {"Authorization": "Bearer " + token} if token else {}
        return self.d.json("POST", path, body, headers)

    def test_upload_and_registration_need_the_token(self):
        with open(os.path.join(self.repo, "digits", "1", "model.onnx"), "rb") as f:
            upload = {"parameters": {"config": "{}", "file:1/model.onnx": base64.b64encode(f.read()).decode()}}
        register = {"key": self.key, "byte_size": 4096}
        for token, status in [(None, 401), ("wrong", 403)]:
            self.assertEqual(self.call("/v2/repository/models/up/load", upload, token)[0], status)
            self.assertEqual(self.call("/v2/systemsharedmemory/region/r/register", register, token)[0], status)
            self.assertEqual(self.call("/v2/systemsharedmemory/unregister", None, token)[0], status)
        self.assertFalse(os.path.exists(os.path.join(self.repo, "up")))
        self.assertEqual(self.d.json("GET", "/v2/systemsharedmemory/status"), (200, []))
        self.assertEqual(self.call("/v2/repository/models/up/load", upload, self.TOKEN), (200, {}))
        self.assertEqual(self.d.json("GET", "/v2/models/up/ready")[0], 200)
        self.assertEqual(self.call("/v2/systemsharedmemory/region/r/register", register, self.TOKEN), (200, {}))
        self.assertEqual(len(self.d.json("GET", "/v2/systemsharedmemory/status")[1]), 1)
        self.assertEqual(self.call("/v2/systemsharedmemory/unregister", None, self.TOKEN), (200, {}))


# The extensions GET /v2 lists, and a call each answers with 200 (see the test above).
EXTENSIONS = ["binary_tensor_data", "model_repository", "statistics", "model_configuration", "classification",
              "system_shared_memory"]
PROBES = {"statistics": ("GET", "/v2/models/stats"), "model_configuration": ("GET", "/v2/models/digits/config"),
          "system_shared_memory": ("GET", "/v2/systemsharedmemory/status")}


if __name__ == "__main__":
    unittest.main()
