"""Opportunistic batching from the client's side, through one event loop (--threads 1): a burst
of different requests, some invalid, arrives while the loop is busy (a slow Run of another
version, the test builds' fault hook), so the next wake decodes them together; every answer
must equal, byte for byte, the answer to the same request sent alone, and /metrics must show
Runs that held more than one request. A joined Run that fails is every member's failure and
each member is replayed on the stable version as a single request would be. Triton's dynamic
batcher on the execution pool: queued requests join, a lone one waits for the queue delay."""
import http.client
import json
import os
import shutil
import socket
import struct
import time
import unittest

import mgtest
from mgtest import Daemon, binary_request, pack_bytes_elements

SAMPLE = mgtest.digits_sample()
PIXELS = SAMPLE["inputs"][0]["data"]
FAULTS = os.environ.get("MG_FAULTS", "1") not in ("0", "OFF", "")
HOLD_MS = 400  # how long the slow Run keeps the loop busy while the burst arrives


def pixels(k):
    """A distinct, valid image per k (a rotation of the sample plus k)."""
    return [float((p + k) % 17) for p in PIXELS[k % 64:] + PIXELS[:k % 64]]


def digits(rows, k=0, **extra):
    data = [v for r in range(rows) for v in pixels(k + r)]
    body = {"inputs": [{"name": "input", "shape": [rows, 64], "datatype": "FP32", "data": data}]}
    body.update(extra)
    return json.dumps(body).encode()


def repo_models(repo):
    # BYTES and FP16 identities with a batch dim and batching asked for, so their requests
    # join too (digits has it by default: batched Runs agree at load and are cheap).
    for name in ("id_bytes", "id_fp16"):
        with open(os.path.join(repo, name, "config.json"), "w") as f:
            json.dump({"max_batch_size": 8, "batching": {"opportunistic": True, "max_batch": 8}}, f)
    # digits twice more: one whose canary (2) the policy chooses and that can fail, one with
    # batching off in config.json.
    src = os.path.join(repo, "digits")
    for name, extra in (("canary", {"traffic": {"weights": {"1": 0, "2": 100}, "stable": "1"}}),
                        ("nobatch", {"batching": {"opportunistic": False}})):
        for v in ("1", "2"):
            os.makedirs(os.path.join(repo, name, v))
            shutil.copy(os.path.join(src, v, "model.onnx"), os.path.join(repo, name, v))
        cfg = {"max_batch_size": 64, "version_policy": {"all": {}}, "default_version": "2",
               "breaker": {"consecutive_failures": 0, "failure_ratio": 1.0, "min_requests": 1000}}
        cfg.update(extra)
        with open(os.path.join(repo, name, "config.json"), "w") as f:
            json.dump(cfg, f)


def raw_request(path, body, headers=None):
    hdrs = {"Host": "127.0.0.1", "Content-Length": str(len(body)), "Content-Type": "application/json"}
    hdrs.update(headers or {})
    head = "POST %s HTTP/1.1\r\n%s\r\n" % (path, "".join("%s: %s\r\n" % kv for kv in hdrs.items()))
    return head.encode() + body


def read_answer(sock):
    r = http.client.HTTPResponse(sock)
    r.begin()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    return r.status, hdrs, data


@unittest.skipUnless(FAULTS, "this build has no fault-injection hook (cmake -DMG_FAULTS=ON)")
class BatchingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(extra=repo_models)
        cls.d = Daemon(cls.repo, args=["--threads", "1"])
        s, b = cls.d.json("PUT", "/v2/admin/models/digits/versions/1/fault", {"delay_ms": HOLD_MS})
        assert s == 200, b

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        shutil.rmtree(cls.root, ignore_errors=True)
        assert code == 0, "modelgate exited with %s:\n%s" % (code, "".join(cls.d.log))

    def alone(self, path, body, headers=None):
        s, h, data = self.d.request("POST", path, body, headers)
        return s, h, data

    def burst(self, reqs):
        """Sends every (path, body, headers) on its own connection while the loop sleeps in a
        slow Run, and returns the answers in order."""
        # Connections are accepted one per wake: open them all first, each answered once.
        socks = [socket.create_connection(("127.0.0.1", self.d.port), timeout=30) for _ in reqs]
        for s in socks:
            s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            self.assertEqual(read_answer(s)[0], 200)
        hold = socket.create_connection(("127.0.0.1", self.d.port), timeout=30)
        hold.sendall(raw_request("/v2/models/digits/versions/1/infer", digits(1)))
        time.sleep(0.15)  # the loop is inside the slow Run now
        for s, (path, body, headers) in zip(socks, reqs):
            s.sendall(raw_request(path, body, headers))
        try:
            self.assertEqual(read_answer(hold)[0], 200)
            return [read_answer(s) for s in socks]
        finally:
            hold.close()
            for s in socks:
                s.close()

    def runs(self, model, version):
        text = self.d.request("GET", "/metrics")[2].decode()
        samples = mgtest.parse_prom(text)
        count = mgtest.prom_value(samples, "modelgate_batch_requests_count", model=model,
                                  version=str(version))
        alone = mgtest.prom_value(samples, "modelgate_batch_requests_bucket", model=model,
                                  version=str(version), le="1")
        total = mgtest.prom_value(samples, "modelgate_batch_requests_sum", model=model,
                                  version=str(version))
        return count, alone, total

    def test_burst_answers_equal_single_requests(self):
        bytes_in = [b"", b"a\x00b", b"hello", b"\xff\xfe"]
        bin_body, bin_len = binary_request([("x", "BYTES", [2, 3], pack_bytes_elements(bytes_in + [b"zz", b"q"]))],
                                           binary_output=True)
        bin_body2, bin_len2 = binary_request([("x", "BYTES", [1, 3], pack_bytes_elements([b"1", b"22", b"333"]))])
        fp16 = struct.pack("<6e", 0.5, -2.0, 65504.0, 0.0, 1.5, -0.25)
        f16_body, f16_len = binary_request([("x", "FP16", [2, 3], fp16)], binary_output=True)
        f16_body2, f16_len2 = binary_request([("x", "FP16", [1, 3], fp16[:6])], binary_output=True)
        infer = "/v2/models/digits/infer"
        reqs = [
            (infer, digits(1, 0), None),
            (infer, digits(1, 1, id="one"), None),
            (infer, digits(2, 2), None),
            (infer, digits(1, 3, parameters={"binary_data_output": True}), None),
            (infer, json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "INT32",
                                            "data": [1] * 64}]}).encode(), None),  # wrong datatype
            (infer, json.dumps({"inputs": [{"name": "input", "shape": [1, 63], "datatype": "FP32",
                                            "data": [1.0] * 63}]}).encode(), None),  # wrong shape
            (infer, json.dumps({"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32",
                                            "data": PIXELS}]}).encode(), None),  # unknown input
            (infer, digits(65, 4), None),  # over max_batch_size
            (infer, b'{"inputs": [', None),  # not JSON
            (infer, digits(1, 5, outputs=[{"name": "probabilities"}]), None),  # its own group
            (infer, digits(3, 6), {"X-Trace-ID": "burst-7"}),
            (infer, digits(1, 7), None),
            ("/v2/models/digits/versions/2/infer", digits(1, 8), None),
            ("/v2/models/id_bytes/infer", bin_body, {"Inference-Header-Content-Length": str(bin_len)}),
            ("/v2/models/id_bytes/infer", bin_body2, {"Inference-Header-Content-Length": str(bin_len2)}),
            ("/v2/models/id_fp16/infer", f16_body, {"Inference-Header-Content-Length": str(f16_len)}),
            ("/v2/models/id_fp16/infer", f16_body2, {"Inference-Header-Content-Length": str(f16_len2)}),
            ("/v2/models/nobatch/infer", digits(1, 9), None),
            ("/v2/models/nobatch/infer", digits(1, 10), None),
        ] + [(infer, digits(1, 11 + k), None) for k in range(12)]
        want = [self.alone(*r) for r in reqs]
        before = self.runs("digits", 2)
        got = self.burst(reqs)
        for (path, body, _), (ws, wh, wd), (gs, gh, gd) in zip(reqs, want, got):
            self.assertEqual(gs, ws, (path, body[:80], gd))
            self.assertEqual(gd, wd, (path, body[:80]))
            for h in ("x-model-version", "x-route-reason", "x-trace-id",
                      "inference-header-content-length", "content-type"):
                self.assertEqual(gh.get(h), wh.get(h), (h, path))
        self.assertEqual(sum(1 for s, _, _ in got if s == 200), len(reqs) - 5)
        after = self.runs("digits", 2)
        runs, alone, served = (a - b for a, b in zip(after, before))
        # 20 valid digits requests on version 2 went out in the burst.
        self.assertEqual(served, 20)
        self.assertLess(alone, runs, "no Run held more than one request: %s" % (after,))
        self.assertLess(runs, 20)
        # Requests of batching-off models and of the identities were each answered too; the
        # identities' Runs joined their pairs.
        bruns, balone, bserved = self.runs("id_bytes", 1)
        self.assertGreater(bserved, bruns)
        nruns, nalone, nserved = self.runs("nobatch", 2)
        self.assertEqual(nruns, nalone)

    def test_failed_joined_run_is_each_members_and_replayed(self):
        s, b = self.d.json("PUT", "/v2/admin/models/canary/versions/2/fault", {"fail_every": 1})
        self.assertEqual(s, 200, b)
        try:
            # What version 1 (the stable one) answers alone, and a named version's failure.
            want = [self.alone("/v2/models/canary/versions/1/infer", digits(1, k)) for k in range(6)]
            reqs = [("/v2/models/canary/infer", digits(1, k), None) for k in range(6)]
            reqs += [("/v2/models/canary/versions/2/infer", digits(1, k), None) for k in range(3)]
            got = self.burst(reqs)
            for (ws, wh, wd), (gs, gh, gd) in zip(want, got[:6]):
                self.assertEqual(gs, 200, gd)
                self.assertEqual(gd, wd)
                self.assertEqual(gh["x-model-version"], "1")
                self.assertEqual(gh["x-route-reason"], "fallback")
                self.assertEqual(gh.get("x-fallback-reason"), "run-failed")
            for gs, gh, gd in got[6:]:
                self.assertEqual(gs, 500, gd)
                self.assertIn("injected fault", json.loads(gd)["error"])
        finally:
            self.d.json("PUT", "/v2/admin/models/canary/versions/2/fault", {})


def dyn_models(repo):
    src = os.path.join(repo, "digits")
    for name, extra in (("dyn", {}), ("dynnow", {"max_queue_delay_microseconds": 0})):
        d = os.path.join(repo, name, "2")
        os.makedirs(d)
        shutil.copy(os.path.join(src, "2", "model.onnx"), d)
        dyn = {"max_queue_delay_microseconds": 300000, "preferred_batch_size": [4, 8]}
        dyn.update(extra)
        with open(os.path.join(repo, name, "config.json"), "w") as f:
            json.dump({"max_batch_size": 64, "execution": "pool", "dynamic_batching": dyn}, f)


class DynamicBatchingTest(unittest.TestCase):
    """Triton's dynamic batcher on the execution pool: queued requests of a version wait up to
    max_queue_delay_microseconds for the largest preferred batch size and run as one."""

    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(with_test_models=False, extra=dyn_models)
        cls.d = Daemon(cls.repo, args=["--threads", "1", "--exec-threads", "1"])

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        shutil.rmtree(cls.root, ignore_errors=True)
        assert code == 0, "modelgate exited with %s:\n%s" % (code, "".join(cls.d.log))

    def runs(self, model):
        samples = mgtest.parse_prom(self.d.request("GET", "/metrics")[2].decode())
        get = lambda n, **kw: mgtest.prom_value(samples, n, model=model, version="2", **kw)
        return (get("modelgate_batch_requests_count"), get("modelgate_batch_requests_bucket", le="1"),
                get("modelgate_batch_requests_sum"))

    def test_queued_requests_join_and_answer_as_alone(self):
        path = "/v2/models/dyn/infer"
        bodies = [digits(1 + k % 2, k) for k in range(8)]
        want = [self.d.request("POST", "/v2/models/digits/infer", b) for b in bodies]
        socks = [socket.create_connection(("127.0.0.1", self.d.port), timeout=30) for _ in bodies]
        for s in socks:
            s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            self.assertEqual(read_answer(s)[0], 200)
        before = self.runs("dyn")
        for s, b in zip(socks, bodies):
            s.sendall(raw_request(path, b))
        got = [read_answer(s) for s in socks]
        for s in socks:
            s.close()
        for (ws, _, wd), (gs, gh, gd) in zip(want, got):
            self.assertEqual(gs, 200, gd)
            self.assertEqual(json.loads(gd)["outputs"], json.loads(wd)["outputs"])
        runs, alone, served = (a - b for a, b in zip(self.runs("dyn"), before))
        self.assertEqual(served, 8)
        self.assertLess(runs, 8, "no Run joined the queued requests")
        # A request alone waits for company up to the queue delay (300 ms), then runs.
        t0 = time.monotonic()
        s, _, data = self.d.request("POST", path, digits(1, 3))
        self.assertEqual(s, 200, data)
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        # Without a delay it does not wait.
        s, _, data = self.d.request("POST", "/v2/models/dynnow/infer", digits(1, 3))
        self.assertEqual(s, 200, data)
        alone = self.d.request("POST", "/v2/models/digits/infer", digits(1, 3))[2]
        self.assertEqual(json.loads(data)["outputs"], json.loads(alone)["outputs"])


class BatchingConfigTest(unittest.TestCase):
    def test_bad_batching_config_is_refused_with_its_reason(self):
        def bad(repo):
            for name, cfg in (("bad1", {"batching": {"opportunistic": "yes"}}),
                              ("bad2", {"batching": {"max_batch": -1}}),
                              ("bad3", {"batching": {"size": 4}}),
                              ("bad4", {"max_batch_size": 8, "dynamic_batching": {}}),
                              ("bad5", {"max_batch_size": 8, "execution": "pool",
                                        "dynamic_batching": {"preferred_batch_size": [4, 16]}})):
                d = os.path.join(repo, name, "1")
                os.makedirs(d)
                shutil.copy(os.path.join(repo, "digits", "2", "model.onnx"), d)
                with open(os.path.join(repo, name, "config.json"), "w") as f:
                    json.dump(cfg, f)
        root, repo = mgtest.make_repo(with_test_models=False, extra=bad)
        d = Daemon(repo)
        try:
            s, b = d.json("GET", "/v2/health/ready")
            self.assertEqual(s, 503)
            self.assertIn("batching.opportunistic", b["error"])
            self.assertIn("max_batch", b["error"])
            self.assertIn("unknown field size", b["error"])
            self.assertIn("'dynamic_batching' needs \"execution\": \"pool\"", b["error"])
            self.assertIn("ascending sizes from 1 to max_batch_size (8)", b["error"])
        finally:
            self.assertEqual(d.stop(), 0)
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
