"""The bench's gRPC load generator (bench/grpc_load.c) against the real daemon: its calls are
answered, a message of many DATA frames arrives byte for byte (an identity model echoes it and
--check-echo compares), what the server counts matches, and a call the server refuses makes it
fail with the server's message. `make bench` reports gRPC figures from this client, so a client
that sent something else would make them wrong without failing."""
import os
import re
import struct
import subprocess
import tempfile
import unittest

import mggrpc
import mgtest

LOAD = os.path.join(mgtest.BUILD_DIR, "bench_grpc_load")


def counted(d, model):
    """The server's nv_inference_request_success for `model`, all versions."""
    _, _, text = d.request("GET", "/metrics")
    samples = mgtest.parse_prom(text.decode())
    return sum(v for (name, labels), v in samples.items()
               if name == "nv_inference_request_success" and dict(labels).get("model") == model)


@unittest.skipUnless(os.path.exists(LOAD), "bench_grpc_load not built (libnghttp2-dev missing)")
class GrpcLoadTest(mggrpc.DaemonTestCase, unittest.TestCase):
    TEST_MODELS = True

    def load(self, raw, *args):
        with tempfile.NamedTemporaryFile(suffix=".raw") as f:
            f.write(raw)
            f.flush()
            p = subprocess.run([LOAD, "--target", "127.0.0.1:%d" % self.d.grpc_port, "--raw", f.name,
                                "--seconds", "1", "--warmup", "0", *args],
                               capture_output=True, text=True, timeout=60)
        m = re.search(r"rps=\S+ calls=(\d+) errors=(\d+)", p.stdout)
        return p.returncode, int(m.group(1)) if m else None, int(m.group(2)) if m else None, p

    def test_digits_calls_are_answered_and_counted(self):
        raw = struct.pack("<64f", *mgtest.digits_sample()["inputs"][0]["data"])
        before = counted(self.d, "digits")
        rc, calls, errors, p = self.load(raw, "--model", "digits", "--input", "input",
                                         "--datatype", "FP32", "--shape", "1,64",
                                         "--concurrency", "16", "--threads", "2")
        self.assertEqual(rc, 0, p.stderr)
        self.assertEqual(errors, 0)
        self.assertGreater(calls, 0)
        # Calls counted in the window, and those still in flight when it closed, all answered.
        self.assertGreaterEqual(counted(self.d, "digits") - before, calls)

    def test_a_message_of_many_frames_arrives_byte_for_byte(self):
        # 1.2 MB: about 74 DATA frames of 16 KB each, in writes that the socket takes in parts.
        n = 100000
        raw = struct.pack("<%df" % (n * 3), *[(i % 1000) * 0.25 - 7.0 for i in range(n * 3)])
        rc, calls, errors, p = self.load(raw, "--model", "id_fp32", "--input", "x",
                                         "--datatype", "FP32", "--shape", "%d,3" % n,
                                         "--concurrency", "4", "--threads", "2", "--check-echo")
        self.assertEqual(rc, 0, p.stderr)
        self.assertEqual(errors, 0)
        self.assertGreater(calls, 0)

    def test_check_echo_fails_an_answer_that_differs(self):
        # digits answers ten probabilities, not its 64 inputs: every call fails the comparison.
        raw = struct.pack("<64f", *mgtest.digits_sample()["inputs"][0]["data"])
        rc, _, _, p = self.load(raw, "--model", "digits", "--input", "input", "--datatype", "FP32",
                                "--shape", "1,64", "--concurrency", "2", "--threads", "1",
                                "--check-echo")
        self.assertEqual(rc, 1)
        self.assertIn("the answer's raw output is not the input", p.stderr)

    def test_a_refused_call_fails_the_run_with_the_servers_message(self):
        rc, _, _, p = self.load(b"\0" * 256, "--model", "id_fp32", "--input", "x",
                                "--datatype", "FP32", "--shape", "100,3",
                                "--concurrency", "2", "--threads", "1")
        self.assertEqual(rc, 1)
        self.assertIn("grpc-status 3", p.stderr)  # INVALID_ARGUMENT
        self.assertIn("raw_input_contents 256 does not match shape [100,3]", p.stderr)


if __name__ == "__main__":
    unittest.main()
