"""ModelStreamInfer over real gRPC (Debian's python3-grpcio, stubs generated from the project's
.proto), as tritonclient.grpc's start_stream / async_stream_infer use it: every request of a
stream is answered in order with what ModelInfer answers it, routed by the stream's metadata; a
failed request is answered with its error_message (and its id) and the stream goes on; the
stream ends when the client closes its side, or RESOURCE_EXHAUSTED at a message over the limit;
SIGTERM ends an idle stream at once."""
import queue
import struct
import threading
import time
import unittest

import grpc

import mggrpc
import test_grpc_pool
import test_routing
from test_grpc import infer_request
from test_kserve import SAMPLE_PIXELS

pb, pbg = mggrpc.stubs()
STREAM = "/inference.GRPCInferenceService/ModelStreamInfer"


def digits(version="", request_id="", pixels=SAMPLE_PIXELS):
    return infer_request("digits", [("input", "FP32", [1, 64], struct.pack("<64f", *pixels))],
                         version=version, request_id=request_id)


def shifted(k):
    """Sample pixels rotated by k: different inputs, different answers."""
    return SAMPLE_PIXELS[k:] + SAMPLE_PIXELS[:k]


class GrpcStreamTest(mggrpc.DaemonTestCase, unittest.TestCase):
    EXTRA = staticmethod(test_routing.with_traffic)
    ARGS = ["--grpc-max-message-bytes", "65536"]

    def setUp(self):
        self.assertEqual(self.d.json("PUT", "/v2/admin/models/digits/traffic", test_routing.POLICY)[0], 200)

    def stream(self, requests, metadata=None):
        return list(self.stub.ModelStreamInfer(iter(requests), timeout=60, metadata=metadata))

    def assert_same_answer(self, streamed, unary):
        self.assertEqual(streamed.error_message, "")
        r = streamed.infer_response
        self.assertEqual((r.model_name, r.model_version, r.id), (unary.model_name, unary.model_version, unary.id))
        self.assertEqual([o.name for o in r.outputs], [o.name for o in unary.outputs])
        self.assertEqual(list(r.raw_output_contents), list(unary.raw_output_contents))

    def test_answers_in_order_as_model_infer(self):
        reqs = [digits(version=v, request_id="r%d" % i, pixels=shifted(i))
                for i, v in enumerate(["", "1", "2", "", "2", "1", ""])]
        got = self.stream(reqs)
        self.assertEqual([g.infer_response.id for g in got], ["r%d" % i for i in range(len(reqs))])
        for g, req in zip(got, reqs):
            if req.model_version:
                self.assertEqual(g.infer_response.model_version, req.model_version)
            # the same answer as ModelInfer from the version that served it (unversioned
            # requests go by the policy's 50/50 weights)
            pinned = pb.ModelInferRequest()
            pinned.CopyFrom(req)
            pinned.model_version = g.infer_response.model_version
            self.assert_same_answer(g, self.stub.ModelInfer(pinned, timeout=30))

    def test_metadata_routes_every_request(self):
        # The stream's metadata feeds the precedence of HTTP headers for each of its requests.
        cases = [("1", None, None), ("2", None, None), (None, "control", None), (None, "v2-exp", None),
                 (None, None, "gray"), (None, None, "prod"), ("1", "v2-exp", "gray"), (None, "v2-exp", "prod")]
        for header, ab, stage in cases:
            md = [("x-model-version", header)] if header else []
            md += [("x-ab-group", ab)] if ab else []
            md += [("x-stage", stage)] if stage else []
            version, _ = test_routing.expected(None, header, ab, stage)
            got = self.stream([digits(request_id="m%d" % i) for i in range(4)], metadata=md)
            self.assertEqual([g.infer_response.model_version for g in got], [version] * 4, md)
        got = self.stream([digits(request_id="q")], metadata=[("ab_group", "v2-exp")])
        self.assertEqual(got[0].infer_response.model_version, "2")
        got = self.stream([digits(request_id="bad%d" % i) for i in range(2)], metadata=[("x-model-version", "two")])
        self.assertEqual([g.infer_response.id for g in got], ["bad0", "bad1"])
        for g in got:
            self.assertIn("two", g.error_message)

    def test_failed_requests_answer_with_their_error_and_the_stream_goes_on(self):
        bad_size = digits(request_id="short")
        bad_size.raw_input_contents[0] = bad_size.raw_input_contents[0][:-4]
        unknown = infer_request("nosuch", [("input", "FP32", [1, 64], struct.pack("<64f", *SAMPLE_PIXELS))],
                                request_id="lost")
        nameless = digits(request_id="anon")
        nameless.model_name = ""
        reqs = [digits(version="2", request_id="a"), unknown, bad_size, nameless, digits(version="1", request_id="z")]
        got = self.stream(reqs)
        self.assertEqual(len(got), 5)
        self.assert_same_answer(got[0], self.stub.ModelInfer(reqs[0], timeout=30))
        self.assertIn("Request for unknown model: 'nosuch' is not found", got[1].error_message)
        self.assertEqual((got[1].infer_response.id, got[1].infer_response.model_name), ("lost", "nosuch"))
        self.assertIn("raw_input_contents 252 does not match shape [1,64] of FP32 (256 bytes)", got[2].error_message)
        self.assertEqual(got[2].infer_response.id, "short")
        self.assertIn("model_name is required", got[3].error_message)
        self.assertEqual(got[3].infer_response.id, "anon")
        self.assert_same_answer(got[4], self.stub.ModelInfer(reqs[4], timeout=30))

    def test_undecodable_message_is_answered_in_the_stream(self):
        raw = self.channel.stream_stream(STREAM, request_serializer=None,
                                         response_deserializer=pb.ModelStreamInferResponse.FromString)
        good = digits(request_id="after").SerializeToString()
        got = list(raw(iter([b"\xff\xff\xff", good]), timeout=60))
        self.assertEqual(len(got), 2)
        self.assertNotEqual(got[0].error_message, "")
        self.assertEqual(got[1].error_message, "")
        self.assertEqual(got[1].infer_response.id, "after")

    def test_oversized_message_ends_the_stream(self):
        # gRPC refuses a message over --grpc-max-message-bytes for the whole call: the requests
        # before it are answered, then the stream ends RESOURCE_EXHAUSTED; the server goes on.
        big = digits(version="2", request_id="x" * 70000)
        answered = queue.Queue()

        def requests():
            yield digits(version="2", request_id="ok")
            answered.get(timeout=30)  # the big one only once the first is answered
            yield big

        seen = []
        with self.assertRaises(grpc.RpcError) as cm:
            for g in self.stub.ModelStreamInfer(requests(), timeout=60):
                seen.append(g.infer_response.id)
                answered.put(None)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, cm.exception.details())
        self.assertEqual(seen, ["ok"])
        self.assertEqual(self.stream([digits(version="2", request_id="after")])[0].infer_response.id, "after")

    def test_empty_stream_ends_ok(self):
        self.assertEqual(self.stream([]), [])

    def test_client_paced_stream(self):
        # The client sends each request only after the previous answer: nothing waits on more.
        q = queue.Queue()

        def requests():
            for i in range(5):
                yield digits(request_id="p%d" % i)
                q.get(timeout=30)

        seen = []
        for g in self.stub.ModelStreamInfer(requests(), timeout=60):
            seen.append(g.infer_response.id)
            q.put(None)
        self.assertEqual(seen, ["p%d" % i for i in range(5)])

    def test_client_cancels_mid_stream(self):
        hold = threading.Event()

        def requests():
            yield digits(version="2", request_id="one")
            hold.wait(30)

        it = self.stub.ModelStreamInfer(requests(), timeout=60)
        self.assertEqual(next(it).infer_response.id, "one")
        it.cancel()
        hold.set()
        with self.assertRaises(grpc.RpcError) as cm:
            next(it)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.CANCELLED)
        # the server lets the stream go and answers on (the daemon's exit checks for leaks)
        self.assertEqual(self.stream([digits(version="2", request_id="after")])[0].infer_response.id, "after")

    def test_many_streams_at_once(self):
        errors = []

        def one(k):
            try:
                got = self.stream([digits(request_id="s%d-%d" % (k, i)) for i in range(20)])
                if [g.infer_response.id for g in got] != ["s%d-%d" % (k, i) for i in range(20)]:
                    errors.append("stream %d: %r" % (k, [g.infer_response.id for g in got]))
            except grpc.RpcError as e:
                errors.append("stream %d: %s %s" % (k, e.code(), e.details()))

        threads = [threading.Thread(target=one, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])


class GrpcStreamPoolTest(mggrpc.DaemonTestCase, unittest.TestCase):
    """A stream's requests to a model on the execution pool are answered from the pool's
    threads, in order with the ones run inline."""
    EXTRA = staticmethod(test_grpc_pool.pooled_model)
    ARGS = ["--threads", "2", "--exec-threads", "2"]

    def test_pool_and_inline_requests_in_one_stream(self):
        reqs = []
        for k in range(6):
            reqs.append(test_grpc_pool.request("slow" if k % 2 == 0 else "digits", k))
            reqs[-1].id = "k%d" % k
        got = list(self.stub.ModelStreamInfer(iter(reqs), timeout=60))
        self.assertEqual([g.infer_response.id for g in got], ["k%d" % k for k in range(6)])
        for g, req in zip(got, reqs):
            self.assertEqual(g.error_message, "")
            self.assertEqual(g.infer_response.model_name, req.model_name)
            want = self.stub.ModelInfer(test_grpc_pool.request("digits", int(req.id[1:])), timeout=30)
            self.assertEqual(list(g.infer_response.raw_output_contents), list(want.raw_output_contents))


class GrpcStreamDrainTest(unittest.TestCase):
    def test_sigterm_ends_an_idle_stream(self):
        hold = threading.Event()

        def requests():
            yield digits(request_id="first")
            hold.wait(60)  # the stream stays open, idle

        def body(stub, term):
            outcome = {}
            try:
                it = stub.ModelStreamInfer(requests(), timeout=120)
                outcome["first"] = next(it).infer_response.id
                t0 = time.monotonic()
                term()
                try:
                    outcome["rest"] = [g.infer_response.id for g in it]
                except grpc.RpcError as e:
                    outcome["end"] = (e.code(), e.details())
                outcome["ended_s"] = time.monotonic() - t0
            finally:
                hold.set()
            return outcome

        outcome, code, log = mggrpc.under_sigterm(body, wait_s=30)
        self.assertEqual(outcome.get("first"), "first")
        self.assertEqual(outcome.get("end"), (grpc.StatusCode.UNAVAILABLE, "the server is shutting down"),
                         outcome)
        self.assertLess(outcome["ended_s"], 5, outcome)
        self.assertEqual(code, 0, "".join(log[-20:]))

if __name__ == "__main__":
    unittest.main()
