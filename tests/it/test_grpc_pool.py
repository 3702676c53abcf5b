"""ModelInfer over gRPC for a model on the execution pool, from the client's side (Debian's
python3-grpcio, stubs generated from the project's .proto; --threads 2 --exec-threads 2): the
completion-queue threads hand such Runs to the pool, so while slow calls are in flight
ServerLive and ModelInfer on digits (inline) keep being answered at once, every answer is the
one the same request gets alone, and clients that cancel while their Run is on the pool leave
nothing behind (the version's in-flight count comes back to 0)."""
import json
import os
import shutil
import struct
import threading
import time
import unittest

import grpc

import mggrpc
import mgtest
from test_kserve import SAMPLE_PIXELS

pb, pbg = mggrpc.stubs()
FAULTS = os.environ.get("MG_FAULTS", "1") not in ("0", "OFF", "")
DELAY_MS = 800  # each slow Run; both pool threads stay busy for about SLOW_CALLS / 2 of them
SLOW_CALLS = 6


def pooled_model(repo):
    # digits once more, on the pool: "slow" gets the fault hook's delay.
    d = os.path.join(repo, "slow", "1")
    os.makedirs(d)
    shutil.copy(os.path.join(repo, "digits", "1", "model.onnx"), d)
    with open(os.path.join(repo, "slow", "config.json"), "w") as f:
        json.dump({"max_batch_size": 64, "execution": "pool"}, f)


def request(model, k=0):
    """A distinct digits request per k, raw contents."""
    px = [float((p + k) % 17) for p in SAMPLE_PIXELS]
    req = pb.ModelInferRequest(model_name=model, model_version="1")
    req.inputs.add(name="input", datatype="FP32", shape=[1, 64])
    req.raw_input_contents.append(struct.pack("<64f", *px))
    return req


@unittest.skipUnless(FAULTS, "this build has no fault-injection hook (cmake -DMG_FAULTS=ON)")
class GrpcPoolTest(mggrpc.DaemonTestCase, unittest.TestCase):
    EXTRA = staticmethod(pooled_model)
    ARGS = ["--threads", "2", "--exec-threads", "2"]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # What each request answers alone, inline on digits (the same model file as "slow").
        cls.want = {k: cls.stub.ModelInfer(request("digits", k), timeout=30).raw_output_contents
                    for k in range(SLOW_CALLS + 1)}

    def set_delay(self, ms):
        s, b = self.d.json("PUT", "/v2/admin/models/slow/versions/1/fault",
                           {"delay_ms": ms} if ms else {})
        self.assertEqual(s, 200, b)

    def in_flight(self):
        samples = mgtest.parse_prom(self.d.request("GET", "/metrics")[2].decode())
        return mgtest.prom_value(samples, "modelgate_requests_in_flight", model="slow", version="1")

    def test_other_calls_answered_while_slow_runs_are_on_the_pool(self):
        self.set_delay(DELAY_MS)
        try:
            started = time.monotonic()
            slow = [self.stub.ModelInfer.future(request("slow", k), timeout=60)
                    for k in range(SLOW_CALLS)]
            time.sleep(0.2)  # the slow calls are taken and on the pool
            worst, answered, errors = 0.0, 0, []
            k = 0
            while not all(f.done() for f in slow) and time.monotonic() - started < 30:
                t0 = time.monotonic()
                live = self.stub.ServerLive(pb.ServerLiveRequest(), timeout=30)
                r = self.stub.ModelInfer(request("digits", k % (SLOW_CALLS + 1)), timeout=30)
                worst = max(worst, time.monotonic() - t0)
                if not live.live or r.raw_output_contents != self.want[k % (SLOW_CALLS + 1)]:
                    errors.append((k, live.live))
                answered += 1
                k += 1
            elapsed = time.monotonic() - started
            answers = [f.result() for f in slow]
        finally:
            self.set_delay(0)
        self.assertEqual(errors, [])
        for k, r in enumerate(answers):
            self.assertEqual(r.model_name, "slow")
            self.assertEqual(r.raw_output_contents, self.want[k], "slow call %d" % k)
        # The slow calls took their time on the two pool threads...
        self.assertGreaterEqual(elapsed, (SLOW_CALLS / 2) * DELAY_MS / 1000 * 0.9)
        # ...while the other calls went on: a Run on a completion-queue thread would have held
        # up the calls behind it for a whole delay at least (a generous bound: loaded machines).
        self.assertGreater(answered, 5)
        self.assertLess(worst, DELAY_MS / 1000 * 0.75,
                        "a ServerLive + digits pair took %.3f s while slow Runs were in flight" % worst)
        self.assertIsNone(self.d.proc.poll(), "the daemon exited")

    def test_cancelled_calls_leave_nothing_behind(self):
        self.set_delay(300)
        try:
            calls = [self.stub.ModelInfer.future(request("slow", k), timeout=60) for k in range(4)]
            time.sleep(0.1)  # taken, the first two Running on the pool
            for f in calls:
                self.assertTrue(f.cancel() or f.done())
            for f in calls:
                if not f.cancelled():
                    f.result()  # finished before its cancel: then it must have succeeded
            # A client whose deadline passes while its Run is queued on the pool.
            with self.assertRaises(grpc.RpcError) as e:
                self.stub.ModelInfer(request("slow", 0), timeout=0.05)
            self.assertEqual(e.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        finally:
            self.set_delay(0)
        # What the cancelled calls held is released, and the server serves on.
        deadline = time.monotonic() + 10
        while self.in_flight() != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.in_flight(), 0)
        for k in range(3):
            r = self.stub.ModelInfer(request("slow", k), timeout=30)
            self.assertEqual(r.raw_output_contents, self.want[k])
        self.assertIsNone(self.d.proc.poll(), "the daemon exited:\n" + "".join(self.d.log[-40:]))


def dyn_model(repo):
    # digits once more, on the pool with Triton's dynamic batcher: a call waits up to 300 ms
    # for the largest preferred batch size.
    d = os.path.join(repo, "dyn", "1")
    os.makedirs(d)
    shutil.copy(os.path.join(repo, "digits", "1", "model.onnx"), d)
    with open(os.path.join(repo, "dyn", "config.json"), "w") as f:
        json.dump({"max_batch_size": 64, "execution": "pool",
                   "dynamic_batching": {"max_queue_delay_microseconds": 300000,
                                        "preferred_batch_size": [4, 8]}}, f)


class GrpcDynamicBatchingTest(mggrpc.DaemonTestCase, unittest.TestCase):
    """The dynamic batcher sits under both front ends: ModelInfer calls queued on the pool join
    one Run, with HTTP requests queued beside them, and each gets the answer it gets alone."""
    EXTRA = staticmethod(dyn_model)
    ARGS = ["--threads", "2", "--exec-threads", "1"]

    def runs(self):
        samples = mgtest.parse_prom(self.d.request("GET", "/metrics")[2].decode())
        get = lambda n: mgtest.prom_value(samples, n, model="dyn", version="1")
        return get("modelgate_batch_requests_count"), get("modelgate_batch_requests_sum")

    def test_queued_grpc_and_http_calls_join_and_answer_as_alone(self):
        want = {k: self.stub.ModelInfer(request("digits", k), timeout=30).raw_output_contents
                for k in range(6)}
        bodies = [json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                                          "data": [float((p + k) % 17) for p in SAMPLE_PIXELS]}]})
                  for k in (6, 7)]
        want_http = [json.loads(self.d.request("POST", "/v2/models/digits/versions/1/infer", b)[2])["outputs"]
                     for b in bodies]
        before = self.runs()
        calls = [self.stub.ModelInfer.future(request("dyn", k), timeout=30) for k in range(6)]
        got_http = [None, None]

        def post(i):
            got_http[i] = self.d.request("POST", "/v2/models/dyn/infer", bodies[i])

        posts = [threading.Thread(target=post, args=(i,)) for i in range(2)]
        for t in posts:
            t.start()
        answers = [f.result() for f in calls]
        for t in posts:
            t.join()
        for k, r in enumerate(answers):
            self.assertEqual(r.model_name, "dyn")
            self.assertEqual(r.raw_output_contents, want[k], "gRPC call %d" % k)
        for i, (status, _, data) in enumerate(got_http):
            self.assertEqual(status, 200, data)
            self.assertEqual(json.loads(data)["outputs"][0]["data"], want_http[i][0]["data"])
        runs, served = (a - b for a, b in zip(self.runs(), before))
        self.assertEqual(served, 8)
        self.assertLess(runs, 6, "the queued calls did not share Runs")


if __name__ == "__main__":
    unittest.main()
