"""KServe v2 over real gRPC (Debian's python3-grpcio, stubs generated from the project's .proto)
against the real daemon: every method, the same answers and routing decisions as over HTTP,
every error case with its status, and that the server keeps serving after each."""
import itertools
import shutil
import signal
import struct
import threading
import time
import unittest

import grpc

import mggrpc
import mgtest
import test_routing
from mgtest import Daemon, binary_request, pack_bytes_elements, split_binary_response
from test_kserve import SAMPLE, SAMPLE_PIXELS, STRUCT, VALUES

pb, pbg = mggrpc.stubs()
BYTES_VALUES = [b"a\x00b", b"", b"\xff\xfe", b"hello", b"x" * 300, b"\x00"]

# Typed contents field per datatype (grpc_service.proto).
FIELD = {"BOOL": "bool_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
         "UINT32": "uint_contents", "UINT64": "uint64_contents", "INT8": "int_contents",
         "INT16": "int_contents", "INT32": "int_contents", "INT64": "int64_contents",
         "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}


def infer_request(model, inputs, version="", outputs=None, typed_output=False, request_id=""):
    """inputs: [(name, datatype, shape, raw bytes or typed list)]; raw bytes go in raw_input_contents."""
    req = pb.ModelInferRequest(model_name=model, model_version=version, id=request_id)
    for name, dt, shape, data in inputs:
        t = req.inputs.add(name=name, datatype=dt, shape=shape)
        if isinstance(data, bytes):
            req.raw_input_contents.append(data)
        else:
            getattr(t.contents, FIELD[dt]).extend(data)
    for o in outputs or []:
        req.outputs.add(name=o)
    if typed_output:
        req.parameters["binary_data_output"].bool_param = False
    return req


def typed_bytes(dt, out):
    """A typed output's elements packed as raw bytes, to compare bit for bit."""
    vals = list(getattr(out.contents, FIELD[dt]))
    if dt == "BYTES":
        return pack_bytes_elements(vals)
    return struct.pack("<%d%s" % (len(vals), STRUCT[dt]), *vals)


class GrpcTest(mggrpc.DaemonTestCase, unittest.TestCase):
    TEST_MODELS = True
    EXTRA = staticmethod(test_routing.with_traffic)

    def setUp(self):
        self.assertEqual(self.d.json("PUT", "/v2/admin/models/digits/traffic", test_routing.POLICY)[0], 200)

    def digits_request(self, version=""):
        return infer_request("digits", [("input", "FP32", [1, 64], struct.pack("<64f", *SAMPLE_PIXELS))],
                             version=version)

    def assert_status(self, fn, req, code, *fragments, **kw):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(req, timeout=kw.pop("timeout", 30), **kw)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        for f in fragments:
            self.assertIn(f, cm.exception.details())
        self.assert_still_serving()
        return cm.exception.details()

    def assert_still_serving(self):
        r = self.stub.ModelInfer(self.digits_request("2"), timeout=30)
        self.assertEqual(len(r.raw_output_contents[0]), 40)

    # ---- health and metadata ----------------------------------------------------------------

    def test_health(self):
        self.assertTrue(self.stub.ServerLive(pb.ServerLiveRequest()).live)
        # 'broken' and 'badconfig' never load: not ready, as /v2/health/ready says with 503.
        status, _ = self.d.json("GET", "/v2/health/ready")
        self.assertEqual((status, self.stub.ServerReady(pb.ServerReadyRequest()).ready), (503, False))
        self.assertTrue(self.stub.ModelReady(pb.ModelReadyRequest(name="digits")).ready)
        self.assertTrue(self.stub.ModelReady(pb.ModelReadyRequest(name="digits", version="1")).ready)
        self.assertFalse(self.stub.ModelReady(pb.ModelReadyRequest(name="broken")).ready)
        self.assert_status(self.stub.ModelReady, pb.ModelReadyRequest(name="nosuch"),
                           grpc.StatusCode.NOT_FOUND, "nosuch")
        self.assert_status(self.stub.ModelReady, pb.ModelReadyRequest(name="digits", version="7"),
                           grpc.StatusCode.NOT_FOUND, "7")

    def test_server_metadata_as_http(self):
        r = self.stub.ServerMetadata(pb.ServerMetadataRequest())
        _, http = self.d.json("GET", "/v2")
        self.assertEqual({"name": r.name, "version": r.version, "extensions": list(r.extensions)}, http)

    def test_model_metadata_as_http(self):
        for name, version in [("digits", ""), ("digits", "1"), ("id_fp16", ""), ("addsub", "1")]:
            with self.subTest(model=name, version=version):
                r = self.stub.ModelMetadata(pb.ModelMetadataRequest(name=name, version=version))
                _, http = self.d.json("GET", "/v2/models/%s%s" % (name, "/versions/" + version if version else ""))
                tensors = lambda ts: [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in ts]
                self.assertEqual((r.name, list(r.versions), r.platform, tensors(r.inputs), tensors(r.outputs)),
                                 (http["name"], http["versions"], http["platform"], http["inputs"], http["outputs"]))
        self.assert_status(self.stub.ModelMetadata, pb.ModelMetadataRequest(name="nosuch"),
                           grpc.StatusCode.NOT_FOUND, "nosuch")
        self.assert_status(self.stub.ModelMetadata, pb.ModelMetadataRequest(name="broken"),
                           grpc.StatusCode.UNAVAILABLE, "broken")

    # ---- inference: the same answers as HTTP ------------------------------------------------

    def test_digits_raw_equals_http(self):
        for version in ["1", "2"]:
            r, call = self.stub.ModelInfer.with_call(self.digits_request(version))
            raw = struct.pack("<64f", *SAMPLE_PIXELS)
            body, hlen = binary_request([("input", "FP32", [1, 64], raw)], binary_output=True)
            status, hdrs, data = self.d.request("POST", "/v2/models/digits/versions/%s/infer" % version, body,
                                                {"Inference-Header-Content-Length": str(hlen)})
            self.assertEqual(status, 200)
            header, raws = split_binary_response(hdrs, data)
            self.assertEqual(r.raw_output_contents[0], raws["probabilities"])
            self.assertEqual((r.model_name, r.model_version), ("digits", version))
            self.assertEqual([(o.name, o.datatype, list(o.shape)) for o in r.outputs],
                             [(o["name"], o["datatype"], o["shape"]) for o in header["outputs"]])
            md = dict(call.initial_metadata())
            self.assertEqual((md["x-model-version"], md["x-route-reason"]), (version, "url"))

    def test_every_datatype_raw_and_typed_equal_http(self):
        for dt, vals in list(VALUES.items()) + [("BYTES", BYTES_VALUES)]:
            with self.subTest(datatype=dt):
                raw = pack_bytes_elements(vals) if dt == "BYTES" else struct.pack("<6" + STRUCT[dt], *vals)
                model = "id_" + dt.lower()
                body, hlen = binary_request([("x", dt, [2, 3], raw)], binary_output=True)
                status, hdrs, data = self.d.request("POST", "/v2/models/%s/infer" % model, body,
                                                    {"Inference-Header-Content-Length": str(hlen)})
                self.assertEqual(status, 200, data[:300])
                http_raw = split_binary_response(hdrs, data)[1]["y"]
                # raw in, raw out
                r = self.stub.ModelInfer(infer_request(model, [("x", dt, [2, 3], raw)]))
                self.assertEqual((r.outputs[0].name, r.outputs[0].datatype, list(r.outputs[0].shape)),
                                 ("y", dt, [2, 3]))
                self.assertEqual(r.raw_output_contents[0], http_raw)
                if dt == "FP16":
                    # FP16 has no typed field: raw only, both ways, and asking for typed says so.
                    self.assert_status(self.stub.ModelInfer,
                                       infer_request(model, [("x", dt, [2, 3], raw)], typed_output=True),
                                       grpc.StatusCode.INVALID_ARGUMENT, "FP16")
                    continue
                # typed in (the values as the client has them), typed out
                typed_in = [fp32(v) for v in vals] if dt == "FP32" else vals
                r = self.stub.ModelInfer(infer_request(model, [("x", dt, [2, 3], typed_in)], typed_output=True))
                self.assertEqual(len(r.raw_output_contents), 0)
                self.assertEqual(typed_bytes(dt, r.outputs[0]), http_raw)
                # typed in, raw out; and the same over HTTP JSON
                r = self.stub.ModelInfer(infer_request(model, [("x", dt, [2, 3], typed_in)]))
                self.assertEqual(r.raw_output_contents[0], http_raw)
                if dt != "BYTES":
                    s, b = self.d.json("POST", "/v2/models/%s/infer" % model,
                                       {"inputs": [{"name": "x", "shape": [2, 3], "datatype": dt, "data": vals}]})
                    self.assertEqual(struct.pack("<6" + STRUCT[dt], *b["outputs"][0]["data"]), http_raw)

    def test_id_outputs_and_parameters(self):
        a = struct.pack("<4f", 1, 2, 3, 4)
        b = struct.pack("<4f", 10, 20, 30, 40)
        r = self.stub.ModelInfer(infer_request("addsub", [("a", "FP32", [2, 2], a), ("b", "FP32", [2, 2], b)],
                                               outputs=["diff"], request_id="req-7"))
        self.assertEqual((r.id, [o.name for o in r.outputs]), ("req-7", ["diff"]))
        self.assertEqual(struct.unpack("<4f", r.raw_output_contents[0]), (-9, -18, -27, -36))
        r = self.stub.ModelInfer(infer_request("addsub", [("a", "FP32", [2, 2], a), ("b", "FP32", [2, 2], b)]))
        self.assertEqual(sorted(o.name for o in r.outputs), ["diff", "sum"])
        self.assertEqual(r.id, "")
        # A request parameter as the sticky key, as over HTTP.
        policy = dict(test_routing.POLICY, sticky={"parameter": "user_id"})
        self.assertEqual(self.d.json("PUT", "/v2/admin/models/digits/traffic", policy)[0], 200)
        for k in range(20):
            req = self.digits_request()
            req.parameters["user_id"].string_param = "u%d" % k
            r, call = self.stub.ModelInfer.with_call(req)
            body = dict(SAMPLE, parameters={"user_id": "u%d" % k})
            status, hdrs, _ = self.d.request("POST", "/v2/models/digits/infer", body)
            md = dict(call.initial_metadata())
            self.assertEqual((md["x-route-reason"], md["x-model-version"], r.model_version),
                             ("sticky", hdrs["x-model-version"], hdrs["x-model-version"]))

    # ---- routing: the same decisions over metadata -----------------------------------------

    def test_every_header_combination_as_http(self):
        for url, header, ab, stage, sticky, ab_key in itertools.product(
                [None, "1", "2"], [None, "1", "2"], [None, "control", "v2-exp", "nobody"],
                [None, "gray", "prod", "nowhere"], [None, "user-17"], ["x-ab-group", "ab_group"]):
            if ab is None and ab_key == "ab_group":
                continue
            md, headers = [], {}
            if header:
                md.append(("x-model-version", header))
                headers["X-Model-Version"] = header
            if ab:
                md.append((ab_key, ab))
                headers["X-AB-Group"] = ab
            if stage:
                md.append(("x-stage", stage))
                headers["X-Stage"] = stage
            if sticky:
                md.append(("x-user-id", sticky))
                headers["X-User-ID"] = sticky
            with self.subTest(url=url, header=header, ab=ab, stage=stage, sticky=sticky, ab_key=ab_key):
                r, call = self.stub.ModelInfer.with_call(self.digits_request(url or ""), metadata=md)
                got = dict(call.initial_metadata())
                version, reason = test_routing.expected(url, header, ab, stage)
                if reason is None:
                    reason = "sticky" if sticky else "weight"
                self.assertEqual(got["x-route-reason"], reason)
                self.assertEqual(r.model_version, got["x-model-version"])
                if version is not None:
                    self.assertEqual(got["x-model-version"], version)
                if reason != "weight":  # the same decision as HTTP (a weighted draw is random)
                    path = "/v2/models/digits%s/infer" % ("/versions/" + url if url else "")
                    status, hdrs, _ = self.d.request("POST", path, SAMPLE, headers)
                    self.assertEqual((hdrs["x-model-version"], hdrs["x-route-reason"]),
                                     (got["x-model-version"], reason))

    def test_metadata_echo_and_explain(self):
        md = [("x-trace-id", "trace-9"), ("x-ab-group", "v2-exp"), ("x-route-explain", "1"),
              ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
        r, call = self.stub.ModelInfer.with_call(self.digits_request(), metadata=md)
        got = dict(call.initial_metadata())
        self.assertEqual((got["x-trace-id"], got["x-ab-group"], got["x-model-version"]), ("trace-9", "v2-exp", "2"))
        self.assertIn("reason=ab-group", got["x-route-explain"])
        self.assert_status(self.stub.ModelInfer, self.digits_request(), grpc.StatusCode.INVALID_ARGUMENT, "two",
                           metadata=[("x-model-version", "two")])
        self.assert_status(self.stub.ModelInfer, self.digits_request(), grpc.StatusCode.NOT_FOUND, "9",
                           metadata=[("x-model-version", "9")])

    # ---- errors: the documented status, and the server keeps serving ------------------------

    def test_error_unknown_model_and_version(self):
        req = infer_request("nosuch", [("x", "FP32", [1, 1], b"\0\0\0\0")])
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.NOT_FOUND, "nosuch")
        self.assert_status(self.stub.ModelInfer, self.digits_request("7"), grpc.StatusCode.NOT_FOUND, "7")
        self.assert_status(self.stub.ModelInfer, self.digits_request("x1"), grpc.StatusCode.INVALID_ARGUMENT, "x1")
        req = infer_request("broken", [("x", "FP32", [1, 1], b"\0\0\0\0")])
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.UNAVAILABLE, "broken")
        req = infer_request("", [("x", "FP32", [1, 1], b"\0\0\0\0")])
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "model_name")

    def test_error_truncated_and_garbage_messages(self):
        raw_call = self.channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        whole = self.digits_request().SerializeToString()
        for cut in [1, 5, len(whole) // 2, len(whole) - 1]:
            with self.subTest(cut=cut):
                self.assert_status(raw_call, whole[:cut], grpc.StatusCode.INVALID_ARGUMENT, "ModelInferRequest")
        self.assert_status(raw_call, b"\xff" * 40, grpc.StatusCode.INVALID_ARGUMENT, "ModelInferRequest")
        ready = self.channel.unary_unary("/inference.GRPCInferenceService/ModelReady")
        self.assert_status(ready, b"\x0a\x50digits", grpc.StatusCode.INVALID_ARGUMENT, "ModelReadyRequest")

    def test_error_lying_raw_sizes(self):
        raw = struct.pack("<64f", *SAMPLE_PIXELS)
        req = infer_request("digits", [("input", "FP32", [1, 64], raw[:-4])])
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT,
                           "input 'input': raw_input_contents 252 does not match shape [1,64] of FP32 (256 bytes)")
        req = infer_request("digits", [("input", "FP32", [1, 64], raw + b"\0")])
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "257")
        req = self.digits_request()
        req.raw_input_contents.append(raw)
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "2 entries for 1 inputs")
        req = infer_request("id_bytes", [("x", "BYTES", [1, 3], struct.pack("<I", 1000) + b"abc")])
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "length-prefixed")
        req = infer_request("id_bool", [("x", "BOOL", [1, 3], b"\x01\x02\x00")])
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "not a boolean")
        req = infer_request("digits", [("input", "FP32", [1, 64], raw)])
        req.inputs[0].contents.fp32_contents.extend([0.0] * 64)
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "both contents")

    def test_error_shapes(self):
        big = 1 << 40
        req = infer_request("digits", [("input", "FP32", [big, big], b"")])
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "too large")
        req = infer_request("digits", [("input", "FP32", [1 << 62, 4], b"")])
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "too large")
        req = infer_request("digits", [("input", "FP32", [-1, 64], b"")])
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "non-negative")
        req = infer_request("digits", [("input", "FP32", [1] * 9, b"\0\0\0\0")])
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "9 dims")
        req = infer_request("digits", [("input", "FP32", [1, 63], struct.pack("<63f", *SAMPLE_PIXELS[:63]))])
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "input")

    def test_error_typed_contents(self):
        req = infer_request("digits", [("input", "FP32", [1, 64], [0.0] * 63)])
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT,
                           "shape [1,64] needs 64 elements, got 63 in fp32_contents")
        req = infer_request("digits", [("input", "FP32", [1, 64], b"")])
        del req.raw_input_contents[:]
        req.inputs[0].contents.int_contents.extend([0] * 64)
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT,
                           "datatype FP32 takes fp32_contents, not int_contents")
        req = infer_request("id_int8", [("x", "INT8", [1, 3], [1, 200, 3])])
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "out of range for INT8")
        req = infer_request("id_uint16", [("x", "UINT16", [1, 3], [1, 70000, 3])])
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "out of range for UINT16")
        req = infer_request("id_fp16", [("x", "FP16", [1, 3], b"")])
        del req.raw_input_contents[:]
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "raw_input_contents")
        req = infer_request("digits", [("input", "FP33", [1, 64], b"")])
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "FP33")
        req = infer_request("digits", [("wrong", "FP32", [1, 64], struct.pack("<64f", *SAMPLE_PIXELS))])
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "wrong")
        req = infer_request("digits", [("input", "INT32", [1, 64], [0] * 64)])
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "INT32")

    def test_error_message_over_the_limit(self):
        # The default limit is the HTTP body limit, 64 MiB: one byte more is refused.
        limit = 64 << 20
        req = infer_request("digits", [("input", "FP32", [1, 64], b"")])
        head = len(req.SerializeToString())
        # raw entry: tag (1 byte) + length varint (4 bytes for 64 MiB) + payload
        # `head` counts the entry's tag and a 1-byte length; 64 MiB takes a 4-byte length.
        req.raw_input_contents[0] = b"\0" * (limit + 1 - head - 3)
        self.assertEqual(len(req.SerializeToString()), limit + 1)
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.RESOURCE_EXHAUSTED, timeout=60)
        req.raw_input_contents[0] = req.raw_input_contents[0][:-1]  # exactly the limit: decoded
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "does not match",
                           timeout=60)

    def test_deadline_in_the_call(self):
        # The call's deadline reaches the core as a CLOCK_MONOTONIC time: a generous one (or
        # none) is no obstacle; one that passes while the call waits: GrpcOneThreadTest.
        for timeout in [30, 3600 * 24 * 365, None]:
            self.assertEqual(self.stub.ModelInfer(self.digits_request(), timeout=timeout).model_name, "digits")

    def test_unimplemented(self):
        other = self.channel.unary_unary("/inference.GRPCInferenceService/CudaSharedMemoryStatus")
        self.assert_status(other, b"", grpc.StatusCode.UNIMPLEMENTED, "CudaSharedMemoryStatus")

    def test_classification_as_http(self):
        req = self.digits_request(version="2")
        o = req.outputs.add(name="probabilities")
        o.parameters["classification"].int64_param = 2
        r = self.stub.ModelInfer(req)
        self.assertEqual((r.outputs[0].datatype, list(r.outputs[0].shape)), ("BYTES", [1, 2]))
        raw = r.raw_output_contents[0]
        got = []
        while raw:
            n = struct.unpack("<I", raw[:4])[0]
            got.append(raw[4:4 + n].decode())
            raw = raw[4 + n:]
        _, http = self.d.json("POST", "/v2/models/digits/versions/2/infer", {
            "inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": SAMPLE_PIXELS}],
            "outputs": [{"name": "probabilities", "parameters": {"classification": 2}}]})
        self.assertEqual(got, http["outputs"][0]["data"])
        o.parameters["classification"].int64_param = 0
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.INVALID_ARGUMENT, "'classification'")

    def test_model_config_as_http(self):
        from google.protobuf import json_format
        r = self.stub.ModelConfig(pb.ModelConfigRequest(name="digits", version="1"))
        got = json_format.MessageToDict(r.config, preserving_proto_field_name=True)
        _, http = self.d.json("GET", "/v2/models/digits/versions/1/config")
        # Triton's JSON is the protobuf's JSON form (64-bit integers as strings there).
        for io in got["input"] + got["output"]:
            io["dims"] = [int(x) for x in io["dims"]]
        self.assertEqual(got, http)
        self.assert_status(self.stub.ModelConfig, pb.ModelConfigRequest(name="nosuch"),
                           grpc.StatusCode.NOT_FOUND, "Request for unknown model: 'nosuch' is not found")

    def test_model_statistics_as_http(self):
        self.stub.ModelInfer(self.digits_request(version="1"))
        r = self.stub.ModelStatistics(pb.ModelStatisticsRequest(name="digits", version="1"))
        _, http = self.d.json("GET", "/v2/models/digits/versions/1/stats")
        self.assertEqual(len(r.model_stats), 1)
        m, h = r.model_stats[0], http["model_stats"][0]
        self.assertEqual((m.name, m.version), ("digits", "1"))
        self.assertEqual(m.inference_stats.success.count, h["inference_stats"]["success"]["count"])
        self.assertGreaterEqual(m.inference_stats.success.count, 1)
        self.assertEqual(m.execution_count, h["execution_count"])
        self.assertEqual([b.batch_size for b in m.batch_stats], [b["batch_size"] for b in h["batch_stats"]])
        every = self.stub.ModelStatistics(pb.ModelStatisticsRequest())
        self.assertEqual(len(every.model_stats), len(self.d.json("GET", "/v2/models/stats")[1]["model_stats"]))
        self.assert_status(self.stub.ModelStatistics, pb.ModelStatisticsRequest(name="nosuch"),
                           grpc.StatusCode.NOT_FOUND, "Request for unknown model: 'nosuch' is not found")

    # ---- the repository extension ----------------------------------------------------------

    def test_repository_index_as_http(self):
        for ready in [False, True]:
            r = self.stub.RepositoryIndex(pb.RepositoryIndexRequest(ready=ready))
            _, http = self.d.json("POST", "/v2/repository/index", {"ready": True} if ready else None)
            # The HTTP rows also carry modelgate's finer state, which Triton's protobuf has no
            # field for; the rest must match.
            http = [{k: v for k, v in row.items() if k != "modelgate_state"} for row in http]
            self.assertEqual([{k: v for k, v in (("name", m.name), ("version", m.version), ("state", m.state),
                                                 ("reason", m.reason)) if v or (k == "reason" and m.state)}
                              for m in r.models], http)

    def test_repository_unload_and_load(self):
        model = "id_int32"
        req = infer_request(model, [("x", "INT32", [1, 3], [1, 2, 3])])
        self.stub.ModelInfer(req)
        self.stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name=model))
        self.assertFalse(self.stub.ModelReady(pb.ModelReadyRequest(name=model)).ready)
        self.assert_status(self.stub.ModelInfer, req, grpc.StatusCode.UNAVAILABLE, model)
        self.stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name=model))
        self.assertTrue(self.stub.ModelReady(pb.ModelReadyRequest(name=model)).ready)
        r = self.stub.ModelInfer(req)
        self.assertEqual(struct.unpack("<3i", r.raw_output_contents[0]), (1, 2, 3))
        self.assert_status(self.stub.RepositoryModelLoad, pb.RepositoryModelLoadRequest(model_name="nosuch"),
                           grpc.StatusCode.NOT_FOUND, "nosuch")
        self.assert_status(self.stub.RepositoryModelUnload, pb.RepositoryModelUnloadRequest(model_name="nosuch"),
                           grpc.StatusCode.NOT_FOUND, "nosuch")
        self.assert_status(self.stub.RepositoryModelLoad, pb.RepositoryModelLoadRequest(model_name="broken"),
                           grpc.StatusCode.INVALID_ARGUMENT, "broken")
        self.assert_status(self.stub.RepositoryModelLoad, pb.RepositoryModelLoadRequest(model_name=""),
                           grpc.StatusCode.INVALID_ARGUMENT, "model_name")

    def test_concurrent_calls_and_loads(self):
        """Calls on several channels while a model reloads: every call answers, none fails."""
        failures, done = [], [0]
        stop = threading.Event()

        def load():
            ch = mggrpc.channel(self.d.grpc_port)
            stub = pbg.GRPCInferenceServiceStub(ch)
            while not stop.is_set():
                try:
                    r = stub.ModelInfer(self.digits_request(), timeout=30)
                    if len(r.raw_output_contents[0]) != 40:
                        failures.append("bad answer")
                except grpc.RpcError as e:
                    failures.append((e.code(), e.details()))
                done[0] += 1
            ch.close()

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            for _ in range(5):
                self.stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="twin"), timeout=60)
                time.sleep(0.05)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(failures, [])
        self.assertGreater(done[0], 20)


def fp32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def long_call(stub, seconds):
    """A call the server spends at least `seconds` on (BYTES elements through the identity
    model, more until it takes that long here): (elements, request, seconds it took)."""
    n = 150000
    while True:
        req = infer_request("id_bytes", [("x", "BYTES", [n // 3, 3], pack_bytes_elements([b"ab"] * n))])
        took = None
        for _ in range(2):  # the second run: warm
            t0 = time.monotonic()
            stub.ModelInfer(req, timeout=120)
            took = time.monotonic() - t0
        if took >= seconds or n >= 4800000:
            return n, req, took
        n *= 2


class GrpcOneThreadTest(unittest.TestCase):
    """One completion-queue thread: calls queued behind a long one, and shutdown with calls in flight."""

    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(with_test_models=True)
        cls.d = Daemon(cls.repo, args=["--grpc-listen", "127.0.0.1:0", "--threads", "1"])
        cls.channel = mggrpc.channel(cls.d.grpc_port)
        cls.stub = pbg.GRPCInferenceServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.d.stop()
        shutil.rmtree(cls.root, ignore_errors=True)

    def test_deadline_passes_while_queued(self):
        n, long_req, took = long_call(self.stub, 0.1)
        short = infer_request("digits", [("input", "FP32", [1, 64], struct.pack("<64f", *SAMPLE_PIXELS))])
        busy = self.stub.ModelInfer.future(long_req, timeout=120)
        time.sleep(took / 10)
        # The one thread is busy: calls whose deadline passes meanwhile get DEADLINE_EXCEEDED.
        codes = []
        for _ in range(3):
            try:
                self.stub.ModelInfer(short, timeout=took / 10)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as e:
                codes.append(e.code())
        self.assertIn(grpc.StatusCode.DEADLINE_EXCEEDED, codes)
        self.assertEqual(len(busy.result().raw_output_contents[0]), 6 * n)
        self.assertEqual(len(self.stub.ModelInfer(short, timeout=30).raw_output_contents[0]), 40)


class GrpcShutdownTest(unittest.TestCase):
    def test_in_flight_calls_finish_on_sigterm(self):
        root, repo = mgtest.make_repo(with_test_models=True)
        d = Daemon(repo, args=["--grpc-listen", "127.0.0.1:0", "--threads", "1"])
        try:
            ch = mggrpc.channel(d.grpc_port)
            stub = pbg.GRPCInferenceServiceStub(ch)
            n, req, took = long_call(stub, 0.15)
            # Calls the server has received (one running, the others waiting for the one thread)
            # when SIGTERM comes: every one of them is answered.
            futures = [stub.ModelInfer.future(req, timeout=60) for _ in range(8)]
            time.sleep(took * 1.5)
            self.assertFalse(all(f.done() for f in futures))
            d.proc.send_signal(signal.SIGTERM)
            for f in futures:
                self.assertEqual(len(f.result().raw_output_contents[0]), 6 * n)
            self.assertEqual(d.proc.wait(60), 0, "".join(d.log))
            with self.assertRaises(grpc.RpcError) as cm:
                stub.ModelInfer(req, timeout=10)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            ch.close()
        finally:
            code = d.stop()
            shutil.rmtree(root, ignore_errors=True)
        self.assertEqual(code, 0, "".join(d.log))


if __name__ == "__main__":
    unittest.main()
