"""The model lifecycle over real gRPC (Debian's python3-grpcio): versions renamed into a polled
repository go live under a steady stream of ModelInfer calls with no failed call, and SIGTERM
answers every call already in flight on a slow model, and one whose message is still arriving,
before the process exits 0."""
import os
import shutil
import struct
import threading
import time
import unittest

import grpc

import mggrpc
import mgtest
from mgtest import Daemon
from test_grpc import SAMPLE_PIXELS, infer_request
from test_shutdown import add_slow

pb, pbg = mggrpc.stubs()
DIGITS = os.path.join(mgtest.SOURCE_DIR, "models", "digits")
DIGITS_REQUEST = infer_request("digits", [("input", "FP32", [1, 64], struct.pack("<64f", *SAMPLE_PIXELS))])


class Caller(threading.Thread):
    """Sends ModelInfer back to back on its own channel until told to stop; counts versions."""

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.versions = {}
        self.failed = []

    def run(self):
        with mggrpc.channel(self.port) as ch:
            stub = pbg.GRPCInferenceServiceStub(ch)
            while not self.stop.is_set():
                try:
                    r = stub.ModelInfer(DIGITS_REQUEST, timeout=30)
                    if len(r.raw_output_contents) != 1 or len(r.raw_output_contents[0]) != 40:
                        self.failed.append("bad answer: %r" % r)
                    self.versions[r.model_version] = self.versions.get(r.model_version, 0) + 1
                except grpc.RpcError as e:
                    self.failed.append("%s: %s" % (e.code(), e.details()))


class SwapOverGrpcTest(unittest.TestCase):
    def test_swaps_fail_no_call(self):
        root, repo = mgtest.make_repo(with_test_models=False)
        model = os.path.join(repo, "digits")
        shutil.rmtree(os.path.join(model, "2"))
        with open(os.path.join(model, "config.json"), "w") as f:
            f.write('{"max_batch_size": 64, "version_policy": {"latest": {"num_versions": 1}}}')
        d = Daemon(repo, args=["--grpc-listen", "127.0.0.1:0", "--model-control-mode", "poll",
                               "--repository-poll-secs", "1", "--repository-debounce-ms", "300"])
        stop = threading.Event()
        callers = [Caller(d.grpc_port, stop) for _ in range(4)]
        try:
            for c in callers:
                c.start()
            for k in range(2, 5):
                staged = os.path.join(model, ".incoming-%d" % k)
                shutil.copytree(os.path.join(DIGITS, "2"), staged)
                os.rename(staged, os.path.join(model, str(k)))
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not any(str(k) in c.versions for c in callers):
                    time.sleep(0.05)
                self.assertTrue(any(str(k) in c.versions for c in callers),
                                "version %d never answered over gRPC:\n%s" % (k, "".join(d.log[-15:])))
                time.sleep(0.3)
                shutil.rmtree(os.path.join(model, str(k - 1)))  # the replaced version drains
            time.sleep(0.5)
        finally:
            stop.set()
            for c in callers:
                c.join(60)
            code = d.stop()
            shutil.rmtree(root, ignore_errors=True)
        calls = sum(n for c in callers for n in c.versions.values())
        seen = sorted({v for c in callers for v in c.versions})
        failed = [f for c in callers for f in c.failed]
        print("\n  gRPC swaps 1 -> 4: %d calls, versions %s, %d failed" % (calls, seen, len(failed)))
        self.assertEqual(failed, [])
        self.assertEqual(seen, ["1", "2", "3", "4"])
        self.assertEqual(code, 0)


class ShutdownOverGrpcTest(unittest.TestCase):
    def test_sigterm_answers_calls_in_flight(self):
        slow = infer_request("slow", [("input", "FP32", [1, 16], struct.pack("<16f", *range(16)))])

        def body(stub, term):
            stub.ModelInfer(slow, timeout=60)  # connected, model warm
            t0 = time.monotonic()
            stub.ModelInfer(slow, timeout=60)
            one = time.monotonic() - t0
            # Enough calls in flight to take several Run times to answer after the signal.
            futures = [stub.ModelInfer.future(slow, timeout=120) for _ in range(16)]
            time.sleep(min(one, 0.5))
            term()
            outcomes = []
            for f in futures:
                try:
                    outcomes.append("ok" if len(f.result().raw_output_contents) == 1 else "bad")
                except grpc.RpcError as e:
                    outcomes.append("%s: %s" % (e.code(), e.details()))
            return one, outcomes

        (one, outcomes), code, log = mggrpc.under_sigterm(body, ["--threads", "2"], extra=add_slow)
        print("\n  SIGTERM with 16 gRPC calls in flight (one Run %.0f ms): %s, exit %s"
              % (one * 1000, {o: outcomes.count(o) for o in set(outcomes)}, code))
        self.assertEqual(outcomes.count("ok"), 16, "".join(log[-40:]))
        self.assertEqual(code, 0, "".join(log[-20:]))

    def test_sigterm_answers_a_call_whose_message_is_still_arriving(self):
        # A 48 MiB message takes tens of ms to arrive: SIGTERM lands after its metadata and
        # before its end, and the call is still answered (its id echoed whole).
        big = pb.ModelInferRequest()
        big.CopyFrom(DIGITS_REQUEST)
        big.id = "x" * (48 << 20)

        def body(stub, term):
            stub.ModelInfer(DIGITS_REQUEST, timeout=30)  # connected
            f = stub.ModelInfer.future(big, timeout=60)
            time.sleep(0.005)
            term()
            try:
                return "ok" if len(f.result().id) == len(big.id) else "bad id"
            except grpc.RpcError as e:
                return "%s: %s" % (e.code(), e.details())

        outcome, code, log = mggrpc.under_sigterm(body)
        self.assertEqual(outcome, "ok", "".join(log[-20:]))
        self.assertEqual(code, 0, "".join(log[-20:]))

if __name__ == "__main__":
    unittest.main()
