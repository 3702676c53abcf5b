"""KServe v2 over real HTTP against the real daemon: every endpoint, JSON and binary tensors."""
import http.client
import json
import os
import socket
import shutil
import struct
import unittest

import mgtest
from mgtest import Daemon, binary_request, split_binary_response, pack_bytes_elements

SAMPLE = mgtest.digits_sample()
SAMPLE_PIXELS = SAMPLE["inputs"][0]["data"]
SAMPLE_LABEL = int(open(os.path.join(mgtest.SOURCE_DIR, "models", "digits", "sample_label.txt")).read())

# Values per datatype for the identity models (input "x" [-1,3] -> output "y").
STRUCT = {"BOOL": "?", "UINT8": "B", "UINT16": "H", "UINT32": "I", "UINT64": "Q", "INT8": "b", "INT16": "h",
          "INT32": "i", "INT64": "q", "FP16": "e", "FP32": "f", "FP64": "d"}
VALUES = {"BOOL": [True, False, True, False, True, True],
          "UINT8": [0, 1, 255, 7, 128, 3], "UINT16": [0, 65535, 2, 3, 4, 5],
          "UINT32": [0, 4294967295, 1, 2, 3, 4], "UINT64": [0, 18446744073709551615, 1, 2, 3, 4],
          "INT8": [-128, 127, 0, -1, 5, 6], "INT16": [-32768, 32767, 0, -1, 5, 6],
          "INT32": [-2147483648, 2147483647, 0, -1, 5, 6],
          "INT64": [-9223372036854775808, 9223372036854775807, 0, -1, 5, 6],
          "FP16": [0.5, -2.0, 65504.0, 0.0, 1.5, -0.25], "FP32": [0.1, -3.5, 1e-30, 3.4028234663852886e38, 0.0, 2.5],
          "FP64": [0.1, -3.5, 1e-300, 1.7976931348623157e308, 0.0, 2.5]}


def fp32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


class KServeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo()
        cls.d = Daemon(cls.repo, args=["--max-body-bytes", "1048576"])

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        shutil.rmtree(cls.root, ignore_errors=True)
        assert code == 0, "modelgate exited with %s:\n%s" % (code, "".join(cls.d.log))

    def infer(self, model, body, path_version=None, headers=None):
        path = "/v2/models/%s%s/infer" % (model, "/versions/%s" % path_version if path_version else "")
        return self.d.json("POST", path, body, headers)

    def assert_error(self, status, body, want_status, *fragments):
        self.assertEqual(status, want_status, body)
        self.assertIn("error", body)
        for f in fragments:
            self.assertIn(f, body["error"])
        self.assert_still_serving()

    def assert_still_serving(self):
        s, b = self.infer("digits", SAMPLE)
        self.assertEqual(s, 200, b)
        self.assertEqual(len(b["outputs"][0]["data"]), 10)

    # ---- health and metadata ---------------------------------------------------------------

    def test_health(self):
        self.assertEqual(self.d.json("GET", "/v2/health/live"), (200, {"live": True}))
        self.assertEqual(self.d.json("GET", "/healthz"), (200, {"status": "ok"}))
        # Two models of the repository are broken on purpose: the server is live, not fully ready.
        s, b = self.d.json("GET", "/v2/health/ready")
        self.assertEqual(s, 503)
        self.assertIn("broken", b["error"])
        self.assertIn("badconfig", b["error"])
        s, b = self.d.json("GET", "/readyz")
        self.assertEqual(s, 503)

    def test_server_metadata(self):
        s, b = self.d.json("GET", "/v2")
        self.assertEqual(s, 200)
        self.assertEqual(b["name"], "modelgate")
        self.assertIn("binary_tensor_data", b["extensions"])
        self.assertIn("model_repository", b["extensions"])

    def test_model_metadata(self):
        s, b = self.d.json("GET", "/v2/models/digits")
        self.assertEqual(s, 200, b)
        self.assertEqual(b["name"], "digits")
        self.assertEqual(b["versions"], ["1", "2"])
        self.assertEqual(b["platform"], "onnxruntime_onnx")
        self.assertEqual(b["inputs"], [{"name": "input", "datatype": "FP32", "shape": [-1, 64]}])
        self.assertEqual(b["outputs"], [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}])
        s, b = self.d.json("GET", "/v2/models/digits/versions/1")
        self.assertEqual(s, 200, b)
        self.assertEqual(b["versions"], ["1"])
        s, b = self.d.json("GET", "/v2/models/addsub")
        self.assertEqual([i["name"] for i in b["inputs"]], ["a", "b"])
        self.assertEqual(b["inputs"][0]["shape"], [2, 2])

    def test_model_ready(self):
        self.assertEqual(self.d.json("GET", "/v2/models/digits/ready"),
                         (200, {"name": "digits", "version": "2", "ready": True}))
        s, b = self.d.json("GET", "/v2/models/digits/versions/1/ready")
        self.assertEqual((s, b["ready"], b["version"]), (200, True, "1"))
        s, b = self.d.json("GET", "/v2/models/broken/ready")
        self.assertEqual((s, b["ready"]), (503, False))
        self.assertIn("not ready", b["error"])
        s, b = self.d.json("GET", "/v2/models/nosuch/ready")
        self.assertEqual(s, 404)
        self.assertIn("Request for unknown model: 'nosuch' is not found", b["error"])

    # ---- inference, JSON -------------------------------------------------------------------

    def test_infer_json_both_versions(self):
        for version in ("1", "2"):
            s, b = self.infer("digits", SAMPLE, path_version=version)
            self.assertEqual(s, 200, b)
            self.assertEqual(b["model_name"], "digits")
            self.assertEqual(b["model_version"], version)
            out = b["outputs"][0]
            self.assertEqual((out["name"], out["datatype"], out["shape"]), ("probabilities", "FP32", [1, 10]))
            self.assertAlmostEqual(sum(out["data"]), 1.0, places=5)
            self.assertEqual(out["data"].index(max(out["data"])), SAMPLE_LABEL)
        # Without a version: the configured default (2), and the response header says so.
        status, hdrs, data = self.d.request("POST", "/v2/models/digits/infer", SAMPLE)
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["x-model-version"], "2")
        self.assertEqual(json.loads(data)["model_version"], "2")

    def test_infer_nested_data_batch_and_id(self):
        body = {"id": "req-\u00e9-42", "inputs": [{"name": "input", "shape": [2, 64], "datatype": "FP32",
                                                  "data": [SAMPLE_PIXELS, SAMPLE_PIXELS]}]}
        s, b = self.infer("digits", body)
        self.assertEqual(s, 200, b)
        self.assertEqual(b["id"], "req-\u00e9-42")
        out = b["outputs"][0]
        self.assertEqual(out["shape"], [2, 10])
        self.assertEqual(out["data"][:10], out["data"][10:])

    def test_infer_members_in_any_order(self):
        body = '{"inputs":[{"data":%s,"datatype":"FP32","shape":[1,64],"name":"input"}]}' % json.dumps(SAMPLE_PIXELS)
        s, b = self.infer("digits", body)
        self.assertEqual(s, 200, b)

    def test_identity_every_datatype_json(self):
        for dt, vals in VALUES.items():
            with self.subTest(datatype=dt):
                body = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": dt, "data": vals}]}
                s, b = self.infer("id_" + dt.lower(), body)
                self.assertEqual(s, 200, b)
                out = b["outputs"][0]
                self.assertEqual((out["name"], out["datatype"], out["shape"]), ("y", dt, [2, 3]))
                if dt == "FP32":
                    self.assertEqual([fp32(v) for v in out["data"]], [fp32(v) for v in vals])
                else:
                    self.assertEqual(out["data"], vals)

    def test_identity_bytes_json(self):
        vals = ["hello", "", "caf\u00e9", "tab\there", "quote\"s", "x" * 1000]
        body = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "BYTES", "data": vals}]}
        s, b = self.infer("id_bytes", body)
        self.assertEqual(s, 200, b)
        self.assertEqual(b["outputs"][0]["data"], vals)

    def test_output_selection(self):
        body = {"inputs": [{"name": "a", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]},
                           {"name": "b", "shape": [2, 2], "datatype": "FP32", "data": [10, 20, 30, 40]}],
                "outputs": [{"name": "diff"}]}
        s, b = self.infer("addsub", body)
        self.assertEqual(s, 200, b)
        self.assertEqual([o["name"] for o in b["outputs"]], ["diff"])
        body.pop("outputs")
        s, b = self.infer("addsub", body)
        self.assertEqual(s, 200, b)
        got = {o["name"]: o["data"] for o in b["outputs"]}
        self.assertEqual(sorted(got), ["diff", "sum"])
        sums = [x + y for x, y in zip([1, 2, 3, 4], [10, 20, 30, 40])]
        self.assertEqual(got["sum"], sums)

    # ---- inference, binary extension ------------------------------------------------------

    def test_binary_in_binary_out(self):
        raw = struct.pack("<64f", *SAMPLE_PIXELS)
        body, hlen = binary_request([("input", "FP32", [1, 64], raw)],
                                    outputs=[{"name": "probabilities", "parameters": {"binary_data": True}}],
                                    request_id="b1")
        status, hdrs, data = self.d.request("POST", "/v2/models/digits/infer", body,
                                            {"Inference-Header-Content-Length": str(hlen),
                                             "Content-Type": "application/octet-stream"})
        self.assertEqual(status, 200, data[:300])
        header, raws = split_binary_response(hdrs, data)
        self.assertEqual(header["id"], "b1")
        self.assertEqual(header["outputs"][0]["parameters"]["binary_data_size"], 40)
        probs = struct.unpack("<10f", raws["probabilities"])
        self.assertEqual(probs.index(max(probs)), SAMPLE_LABEL)
        # The same probabilities as the JSON path, bit for bit.
        s, b = self.infer("digits", SAMPLE)
        self.assertEqual([fp32(v) for v in b["outputs"][0]["data"]], list(probs))

    def test_binary_in_json_out_and_request_level_binary_output(self):
        raw = struct.pack("<64f", *SAMPLE_PIXELS)
        body, hlen = binary_request([("input", "FP32", [1, 64], raw)])
        status, hdrs, data = self.d.request("POST", "/v2/models/digits/infer", body,
                                            {"Inference-Header-Content-Length": str(hlen)})
        self.assertEqual(status, 200, data[:300])
        self.assertNotIn("inference-header-content-length", hdrs)
        self.assertEqual(len(json.loads(data)["outputs"][0]["data"]), 10)
        body = dict(SAMPLE, parameters={"binary_data_output": True})
        status, hdrs, data = self.d.request("POST", "/v2/models/digits/infer", body)
        self.assertEqual(status, 200)
        header, raws = split_binary_response(hdrs, data)
        self.assertEqual(len(raws["probabilities"]), 40)

    def test_identity_every_datatype_binary(self):
        for dt, vals in VALUES.items():
            with self.subTest(datatype=dt):
                raw = struct.pack("<6" + STRUCT[dt], *vals)
                body, hlen = binary_request([("x", dt, [2, 3], raw)], binary_output=True)
                status, hdrs, data = self.d.request("POST", "/v2/models/id_%s/infer" % dt.lower(), body,
                                                    {"Inference-Header-Content-Length": str(hlen)})
                self.assertEqual(status, 200, data[:300])
                header, raws = split_binary_response(hdrs, data)
                self.assertEqual(raws["y"], raw)

    def test_large_bodies_one_after_another_on_one_connection(self):
        """A connection keeps its input buffer between large requests: every answer must echo
        its own request's bytes, whatever size came before it, pipelined pairs included."""
        def request(rows, seed):
            raw = struct.pack("<%df" % (rows * 3), *[float((seed * 7919 + i) % 65521) for i in range(rows * 3)])
            body, hlen = binary_request([("x", "FP32", [rows, 3], raw)], binary_output=True)
            head = ("POST /v2/models/id_fp32/infer HTTP/1.1\r\nHost: t\r\n"
                    "Inference-Header-Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (hlen, len(body)))
            return head.encode() + body, raw

        def check(conn, raw):
            status, hdrs, data = conn.response()
            self.assertEqual(status, 200, data[:300])
            self.assertEqual(split_binary_response(hdrs, data)[1]["y"], raw)

        conn = mgtest.RawConn(self.d.port)
        try:
            # 720 KB, 240 KB, 960 KB, 12 bytes, 720 KB: shrinking, growing, tiny, back again.
            for i, rows in enumerate([60000, 20000, 80000, 1, 60000]):
                req, raw = request(rows, i)
                conn.send(req)
                check(conn, raw)
            # Two large ones in one write: the first leaves the second's bytes in the buffer.
            (a, ra), (b, rb) = request(50000, 10), request(70000, 11)
            conn.send(a + b)
            check(conn, ra)
            check(conn, rb)
        finally:
            conn.close()

    def test_identity_bytes_binary_with_nul(self):
        items = [b"a\x00b", b"", b"\xff\xfe", b"hello", b"x" * 300, b"\x00"]
        raw = pack_bytes_elements(items)
        body, hlen = binary_request([("x", "BYTES", [2, 3], raw)], binary_output=True)
        status, hdrs, data = self.d.request("POST", "/v2/models/id_bytes/infer", body,
                                            {"Inference-Header-Content-Length": str(hlen)})
        self.assertEqual(status, 200, data[:300])
        header, raws = split_binary_response(hdrs, data)
        self.assertEqual(raws["y"], raw)

    # ---- /predict ----------------------------------------------------------------------------

    def test_predict(self):
        s, b = self.d.json("POST", "/predict", {"data": SAMPLE_PIXELS, "model": "digits"})
        self.assertEqual(s, 200, b)
        self.assertEqual((b["model"], b["version"], b["prediction"]), ("digits", "2", SAMPLE_LABEL))
        self.assertGreater(b["confidence"], 0.5)
        self.assertEqual(len(b["outputs"]["probabilities"]), 10)
        self.assertAlmostEqual(b["confidence"], max(b["outputs"]["probabilities"]), places=6)
        s, b = self.d.json("POST", "/predict", {"data": [SAMPLE_PIXELS], "model": "digits", "version": "1"})
        self.assertEqual((s, b["version"], b["prediction"]), (200, "1", SAMPLE_LABEL))

    def test_predict_errors(self):
        s, b = self.d.json("POST", "/predict", {"data": SAMPLE_PIXELS})
        self.assert_error(s, b, 400, "model")  # several models and no default configured
        s, b = self.d.json("POST", "/predict", {"model": "digits"})
        self.assert_error(s, b, 400, "data")
        s, b = self.d.json("POST", "/predict", {"data": SAMPLE_PIXELS[:10], "model": "digits"})
        self.assert_error(s, b, 400, "64")
        s, b = self.d.json("POST", "/predict", {"data": SAMPLE_PIXELS, "model": "nosuch"})
        self.assert_error(s, b, 404, "nosuch")
        s, b = self.d.json("POST", "/predict", {"data": [1, 2], "model": "addsub"})
        self.assert_error(s, b, 400, "one input")

    # ---- errors ------------------------------------------------------------------------------

    def test_error_malformed_json(self):
        for body in ['{"inputs": [', "not json", '{"inputs": [{"name": "input"}]}', "", "[]",
                     '{"inputs": [{"name":"input","shape":[1,64],"datatype":"FP32","data":[1,2,}]}']:
            with self.subTest(body=body):
                s, b = self.infer("digits", body)
                self.assert_error(s, b, 400)

    def test_error_wrong_datatype(self):
        body = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "INT64", "data": [1] * 64}]}
        s, b = self.infer("digits", body)
        self.assert_error(s, b, 400, "input", "FP32", "INT64")
        body = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP33", "data": [1] * 64}]}
        s, b = self.infer("digits", body)
        self.assert_error(s, b, 400, "FP33")
        body = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "UINT8", "data": [1, 300, 2]}]}
        s, b = self.infer("id_uint8", body)
        self.assert_error(s, b, 400, "x")
        body = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ["a"] * 64}]}
        s, b = self.infer("digits", body)
        self.assert_error(s, b, 400, "input")

    def test_error_shape_and_count(self):
        body = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": SAMPLE_PIXELS[:63]}]}
        s, b = self.infer("digits", body)
        self.assert_error(s, b, 400, "input", "64", "63")
        body = {"inputs": [{"name": "input", "shape": [1, 63], "datatype": "FP32", "data": SAMPLE_PIXELS[:63]}]}
        s, b = self.infer("digits", body)
        self.assert_error(s, b, 400, "input", "64", "63")
        body = {"inputs": [{"name": "input", "shape": [1, 1, 64], "datatype": "FP32", "data": SAMPLE_PIXELS}]}
        s, b = self.infer("digits", body)
        self.assert_error(s, b, 400, "input")
        body = {"inputs": [{"name": "input", "shape": [65, 64], "datatype": "FP32", "data": SAMPLE_PIXELS * 65}]}
        s, b = self.infer("digits", body)
        self.assert_error(s, b, 400, "max_batch_size")
        body = {"inputs": [{"name": "input", "shape": [4294967296, 4294967296], "datatype": "FP32", "data": [1]}]}
        s, b = self.infer("digits", body)
        self.assert_error(s, b, 400, "input")
        body = {"inputs": [{"name": "input", "shape": [-1, 64], "datatype": "FP32", "data": SAMPLE_PIXELS}]}
        s, b = self.infer("digits", body)
        self.assert_error(s, b, 400, "input")

    def test_error_missing_and_unknown_input(self):
        body = {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": SAMPLE_PIXELS}]}
        s, b = self.infer("digits", body)
        self.assert_error(s, b, 400, "pixels")
        body = {"inputs": [{"name": "a", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
        s, b = self.infer("addsub", body)
        self.assert_error(s, b, 400, "missing input 'b'")
        body = {"inputs": []}
        s, b = self.infer("digits", body)
        self.assert_error(s, b, 400, "input")
        body = dict(SAMPLE, outputs=[{"name": "logits"}])
        s, b = self.infer("digits", body)
        self.assert_error(s, b, 400, "logits")

    def test_error_unknown_model_and_version(self):
        s, b = self.infer("nosuch", SAMPLE)
        self.assert_error(s, b, 404, "nosuch")
        s, b = self.infer("digits", SAMPLE, path_version="7")
        self.assert_error(s, b, 404, "7")
        s, b = self.d.json("GET", "/v2/models/nosuch")
        self.assert_error(s, b, 404, "nosuch")
        s, b = self.d.json("GET", "/v2/nothing/here")
        self.assert_error(s, b, 404)

    def test_error_wrong_method(self):
        status, hdrs, data = self.d.request("GET", "/v2/models/digits/infer")
        self.assertEqual(status, 405)
        self.assertEqual(hdrs["allow"], "POST")
        self.assertIn("GET", json.loads(data)["error"])
        status, hdrs, data = self.d.request("POST", "/v2/health/live", "{}")
        self.assertEqual(status, 405)
        self.assertEqual(hdrs["allow"], "GET")
        status, hdrs, data = self.d.request("DELETE", "/v2/models/digits")
        self.assertEqual(status, 405)
        self.assert_still_serving()

    def raw_exchange(self, head, body=b"", tries=5):
        """Sends raw bytes without waiting to finish the upload and reads one response.

        The server answers 413 and closes as soon as it knows; bytes it never read make the
        kernel reset the connection, which can drop the answer, so a reset is retried."""
        for _ in range(tries):
            with socket.create_connection(("127.0.0.1", self.d.port), timeout=30) as s:
                try:
                    s.sendall(head)
                    s.sendall(body)
                except OSError:
                    pass  # the server answered and closed before the body was sent
                try:
                    resp = http.client.HTTPResponse(s)
                    resp.begin()
                    return resp.status, resp.read()
                except (ConnectionResetError, http.client.RemoteDisconnected):
                    continue
        self.fail("no answer in %d tries" % tries)

    def test_error_body_too_large(self):
        # Content-Length over the limit: 413 from the headers alone, before any body byte.
        head = (b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 2000000\r\n\r\n")
        status, data = self.raw_exchange(head)
        self.assertEqual(status, 413)
        self.assertIn("1048576-byte limit", json.loads(data)["error"])
        # Chunked upload that grows past the limit.
        head = (b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
        status, data = self.raw_exchange(head, chunk * 17)
        self.assertEqual(status, 413)
        self.assertIn("error", json.loads(data))
        # Just under the limit is fine (and then a bad request, not a 413).
        body = b'{"inputs":[]}' + b" " * 1000000
        status, hdrs, data = self.d.request("POST", "/v2/models/digits/infer", body)
        self.assertEqual(status, 400)
        self.assert_still_serving()

    def test_error_not_ready(self):
        s, b = self.infer("broken", {"inputs": []})
        self.assert_error(s, b, 503, "broken")
        s, b = self.d.json("GET", "/v2/models/badconfig")
        self.assert_error(s, b, 503, "max_batch_size")

    def test_error_lying_binary_lengths(self):
        raw = struct.pack("<64f", *SAMPLE_PIXELS)
        body, hlen = binary_request([("input", "FP32", [1, 64], raw)])
        cases = [
            (body[:-1], hlen, "bytes"),                 # body shorter than binary_data_size says
            (body + b"\0\0\0\0", hlen, "bytes"),         # trailing bytes nobody claims
            (body, hlen + 10, None),                     # header length past the JSON
            (body, len(body) + 100, None),               # header length past the body
            (body, "12abc", "Inference-Header-Content-Length"),
        ]
        for b_, h, frag in cases:
            with self.subTest(header=h):
                status, hdrs, data = self.d.request("POST", "/v2/models/digits/infer", b_,
                                                    {"Inference-Header-Content-Length": str(h)})
                self.assertEqual(status, 400, data[:300])
                msg = json.loads(data)["error"]
                if frag:
                    self.assertIn(frag, msg)
        # A binary_data_size that disagrees with the shape.
        body, hlen = binary_request([("input", "FP32", [1, 64], raw[:-4])])
        status, hdrs, data = self.d.request("POST", "/v2/models/digits/infer", body,
                                            {"Inference-Header-Content-Length": str(hlen)})
        self.assertEqual(status, 400)
        self.assertIn("input", json.loads(data)["error"])
        self.assert_still_serving()

    # ---- repository extension -------------------------------------------------------------

    def test_repository_index(self):
        s, b = self.d.json("POST", "/v2/repository/index")
        self.assertEqual(s, 200)
        rows = {(r["name"], r.get("version")): r for r in b}
        self.assertEqual(rows[("digits", "1")]["state"], "READY")
        self.assertEqual(rows[("digits", "2")]["state"], "READY")
        self.assertEqual(rows[("broken", "1")]["state"], "UNAVAILABLE")
        self.assertTrue(rows[("broken", "1")]["reason"])
        self.assertEqual(rows[("badconfig", None)]["state"], "UNAVAILABLE")
        self.assertIn("max_batch_size", rows[("badconfig", None)]["reason"])
        s, b = self.d.json("POST", "/v2/repository/index", {"ready": True})
        self.assertEqual(s, 200)
        self.assertTrue(all(r["state"] == "READY" for r in b))
        self.assertIn("digits", {r["name"] for r in b})
        s, b = self.d.json("POST", "/v2/repository/index", "[1]")
        self.assertEqual(s, 400)

    def test_repository_unload_and_load(self):
        model = "id_int32"
        body = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "INT32", "data": [1, 2, 3]}]}
        self.assertEqual(self.infer(model, body)[0], 200)
        self.assertEqual(self.d.json("POST", "/v2/repository/models/%s/unload" % model), (200, {}))
        s, b = self.infer(model, body)
        self.assert_error(s, b, 503, model)
        s, b = self.d.json("POST", "/v2/repository/index")
        self.assertIn({"name": model, "version": "1", "state": "UNAVAILABLE", "modelgate_state": "UNLOADED",
                       "reason": "unloaded"}, b)
        self.assertEqual(self.d.json("POST", "/v2/repository/models/%s/load" % model), (200, {}))
        s, b = self.infer(model, body)
        self.assertEqual((s, b["outputs"][0]["data"]), (200, [1, 2, 3]))
        s, b = self.d.json("POST", "/v2/repository/models/nosuch/load")
        self.assert_error(s, b, 404, "nosuch")
        s, b = self.d.json("POST", "/v2/repository/models/nosuch/unload")
        self.assert_error(s, b, 404, "nosuch")
        s, b = self.d.json("POST", "/v2/repository/models/broken/load")
        self.assert_error(s, b, 400, "broken")

    def test_repository_load_new_model(self):
        src = os.path.join(self.repo, "id_fp64")
        dst = os.path.join(self.repo, "late")
        shutil.copytree(src, dst)
        s, b = self.d.json("POST", "/v2/repository/index")
        self.assertIn({"name": "late"}, b)
        self.assertEqual(self.d.json("POST", "/v2/repository/models/late/load"), (200, {}))
        body = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1.5, 2, 3]}]}
        s, b = self.infer("late", body)
        self.assertEqual((s, b["outputs"][0]["data"]), (200, [1.5, 2, 3]))


if __name__ == "__main__":
    unittest.main()
