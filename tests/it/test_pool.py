"""The execution pool from the client's side (--threads 2 --exec-threads 2): both event loops
hand Runs to the pool and take the answers back through their message queues, many at once.
Every answer must equal the answer of the same request run inline, clients that close their
connection while their Run is on the pool must leave nothing behind, and health requests keep
being answered while every pool thread is busy. Under the sanitizer builds of `make test`
this is also the check that a loop's h2o state (sockets, queues, their buffers) is used only
on that loop's thread."""
import http.client
import json
import os
import random
import shutil
import socket
import threading
import time
import unittest

import mgtest
from mgtest import Daemon
from test_batching import digits, raw_request

FAULTS = os.environ.get("MG_FAULTS", "1") not in ("0", "OFF", "")
CLIENTS = 8
PER_CLIENT = 400


def pooled_models(repo):
    # digits twice more, on the pool: "pooled" as it is, "slow" with the fault hook's delay.
    for name in ("pooled", "slow"):
        d = os.path.join(repo, name, "1")
        os.makedirs(d)
        shutil.copy(os.path.join(repo, "digits", "1", "model.onnx"), d)
        with open(os.path.join(repo, name, "config.json"), "w") as f:
            json.dump({"max_batch_size": 64, "execution": "pool"}, f)


class PoolTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(with_test_models=False, extra=pooled_models)
        cls.d = Daemon(cls.repo, args=["--threads", "2", "--exec-threads", "2"])
        # What each distinct request answers inline (digits runs on the loops).
        cls.want = {}
        for k in range(32):
            s, _, data = cls.d.request("POST", "/v2/models/digits/versions/1/infer", digits(1, k))
            assert s == 200, data
            cls.want[k] = json.loads(data)["outputs"]

    @classmethod
    def tearDownClass(cls):
        mgtest.stop_and_clean(cls.d, cls.root)

    def test_concurrent_answers_equal_inline(self):
        """Eight keep-alive clients over both loops, every answer checked."""
        errors = []

        def client(c):
            conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=60)
            try:
                for i in range(PER_CLIENT):
                    k = (c * 7 + i) % 32
                    conn.request("POST", "/v2/models/pooled/infer", body=digits(1, k),
                                 headers={"Content-Type": "application/json"})
                    r = conn.getresponse()
                    data = r.read()
                    if r.status != 200 or json.loads(data)["outputs"] != self.want[k]:
                        errors.append((c, i, r.status, data[:200]))
                        return
            except Exception as e:  # a reset or a crash: reported below with the log
                errors.append((c, repr(e)))
            finally:
                conn.close()

        threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [], "".join(self.d.log[-20:]))
        self.assertIsNone(self.d.proc.poll(), "the daemon exited")

    def test_pipelined_mix_is_answered_in_order(self):
        """Pipelined requests on one connection, pooled and inline, valid and not, get their
        answers in the order sent, each equal to the same request's answer alone."""
        bad = b'{"inputs": [{"name": "input", "shape": [1, 63], "datatype": "FP32", "data": [1]}]}'
        reqs = [("/v2/models/pooled/infer", digits(1, 1)), ("/v2/models/digits/versions/1/infer", digits(1, 2)),
                ("/v2/models/pooled/infer", bad), ("/v2/models/pooled/infer", digits(1, 3)),
                ("/v2/models/nosuch/infer", digits(1, 4)), ("/v2/models/digits/versions/1/infer", digits(1, 5)),
                ("/v2/models/pooled/infer", digits(1, 6))]
        alone = [self.d.request("POST", p, b) for p, b in reqs]
        conn = mgtest.RawConn(self.d.port)
        try:
            conn.send(b"".join(raw_request(p, b) for p, b in reqs))
            for (want_status, _, want_body), (path, _) in zip(alone, reqs):
                status, _, data = conn.response()
                self.assertEqual(status, want_status, (path, data))
                if want_status == 200:
                    self.assertEqual(json.loads(data)["outputs"], json.loads(want_body)["outputs"], path)
                else:
                    self.assertEqual(json.loads(data)["error"], json.loads(want_body)["error"])
        finally:
            conn.close()
        self.assertEqual([a[0] for a in alone], [200, 200, 400, 200, 404, 200, 200])

    @unittest.skipUnless(FAULTS, "this build has no fault-injection hook (cmake -DMG_FAULTS=ON)")
    def test_clients_leaving_while_their_run_is_on_the_pool(self):
        """Clients close after sending, some while their (slowed) Run is on the pool: those
        answers are dropped, the others' are right, and the server serves on."""
        s, b = self.d.json("PUT", "/v2/admin/models/slow/versions/1/fault", {"delay_ms": 15})
        self.assertEqual(s, 200, b)
        rng = random.Random(7)
        stop = threading.Event()
        errors = []

        def leaver():
            while not stop.is_set():
                try:
                    sock = socket.create_connection(("127.0.0.1", self.d.port), timeout=30)
                    sock.sendall(raw_request("/v2/models/slow/infer", digits(1, rng.randrange(32))))
                    time.sleep(rng.uniform(0, 0.03))
                    sock.close()
                except OSError as e:
                    errors.append(repr(e))
                    return

        def health():
            # One connection, answers expected throughout while both pool threads are busy.
            conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=30)
            try:
                while not stop.is_set():
                    conn.request("GET", "/v2/health/ready")
                    r = conn.getresponse()
                    r.read()
                    if r.status != 200:
                        errors.append("health %d" % r.status)
                        return
            except Exception as e:
                errors.append("health " + repr(e))
            finally:
                conn.close()

        threads = [threading.Thread(target=leaver) for _ in range(4)]
        threads.append(threading.Thread(target=health))
        for t in threads:
            t.start()
        time.sleep(4)
        stop.set()
        for t in threads:
            t.join()
        self.d.json("PUT", "/v2/admin/models/slow/versions/1/fault", {})
        self.assertEqual(errors, [], "".join(self.d.log[-20:]))
        self.assertIsNone(self.d.proc.poll(), "the daemon exited:\n" + "".join(self.d.log[-40:]))
        # The server serves on, and what the leavers' Runs held is released: the version's
        # in-flight count (modelgate_requests_in_flight) comes back to 0.
        for k in (0, 5, 31):
            s, _, data = self.d.request("POST", "/v2/models/slow/infer", digits(1, k))
            self.assertEqual(s, 200, data)
            self.assertEqual(json.loads(data)["outputs"], self.want[k])
        deadline = time.monotonic() + 10
        while True:
            samples = mgtest.parse_prom(self.d.request("GET", "/metrics")[2].decode())
            left = mgtest.prom_value(samples, "modelgate_requests_in_flight", model="slow", version="1")
            if left == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(left, 0)


if __name__ == "__main__":
    unittest.main()
