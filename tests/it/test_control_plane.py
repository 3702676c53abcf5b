"""The control plane over real HTTP: repository loads run on the control thread, so the event
loop that received one keeps answering while the model warms up; answers come back to that loop
when the load is done; a client that goes away before its answer harms nothing."""
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import unittest

import mgtest
from mgtest import Daemon

SAMPLE = mgtest.digits_sample()


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


class ControlPlaneTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(with_test_models=False)
        # A model that takes seconds to load: the benchmark CNN, 300 warm-up runs on 1 thread.
        gen = os.path.join(cls.root, "gen")
        subprocess.run([mgtest.PYTHON, os.path.join(mgtest.SOURCE_DIR, "scripts", "gen_cnn.py"), gen, "--width", "2"],
                       check=True, stdout=subprocess.DEVNULL)
        cls.slow_src = os.path.join(gen, "cnn")
        with open(os.path.join(cls.slow_src, "config.json"), "w") as f:
            json.dump({"max_batch_size": 8, "warmup": {"runs": 300}}, f)
        # One event loop: the health requests certainly share the loop that received the load.
        cls.d = Daemon(cls.repo, args=["--threads", "1"])

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        shutil.rmtree(cls.root, ignore_errors=True)
        assert code == 0, "modelgate exited with %s:\n%s" % (code, "".join(cls.d.log))

    def add_slow_model(self, name):
        shutil.copytree(self.slow_src, os.path.join(self.repo, name))

    def test_load_does_not_stall_the_loop(self):
        self.add_slow_model("slow")
        result = {}

        def load():
            t0 = time.monotonic()
            result["answer"] = self.d.json("POST", "/v2/repository/models/slow/load")
            result["seconds"] = time.monotonic() - t0

        loader = threading.Thread(target=load)
        conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=10)
        conn.request("GET", "/v2/health/live")
        conn.getresponse().read()
        loader.start()
        lat = []
        while loader.is_alive():
            t0 = time.monotonic()
            conn.request("GET", "/v2/health/live")
            r = conn.getresponse()
            body = r.read()
            lat.append(time.monotonic() - t0)
            self.assertEqual((r.status, json.loads(body)), (200, {"live": True}))
        loader.join()
        conn.close()
        self.assertEqual(result["answer"], (200, {}))
        # The load must really have taken long enough for the measurement to mean something.
        self.assertGreater(result["seconds"], 0.5, "the slow model loaded too fast to test anything")
        self.assertGreater(len(lat), 50)
        p99 = percentile(lat, 99) * 1000
        print("\nhealth during a %.2f s load: %d requests, p50 %.2f ms, p99 %.2f ms, max %.2f ms" %
              (result["seconds"], len(lat), percentile(lat, 50) * 1000, p99, max(lat) * 1000))
        self.assertLess(p99, 10.0)
        s, b = self.d.json("GET", "/v2/models/slow/ready")
        self.assertEqual((s, b["ready"]), (200, True))

    def test_changes_wait_their_turn_and_inference_goes_on(self):
        """A policy change submitted during a load waits for it; inference never does."""
        self.add_slow_model("slow2")
        answers = {}

        def call(key, method, path, body=None):
            answers[key] = (self.d.json(method, path, body), time.monotonic())

        t_load = threading.Thread(target=call, args=("load", "POST", "/v2/repository/models/slow2/load"))
        t_load.start()
        time.sleep(0.1)
        t_pol = threading.Thread(target=call, args=("policy", "PUT", "/v2/admin/models/digits/traffic",
                                                    {"weights": {"1": 1, "2": 3}, "stable": "1"}))
        t_pol.start()
        s, b = self.d.json("POST", "/v2/models/digits/infer", SAMPLE)
        t_infer = time.monotonic()
        self.assertEqual(s, 200)
        t_load.join()
        t_pol.join()
        (ls, lb), l_end = answers["load"]
        (ps, pb), p_end = answers["policy"]
        self.assertEqual((ls, lb), (200, {}))
        self.assertEqual(ps, 200, pb)
        self.assertEqual(pb["weights"], {"1": 1, "2": 3})
        self.assertLess(t_infer, l_end)      # inference did not wait for the load
        # The change ran after the load, in order (the two answers arrive within moments).
        self.assertGreater(p_end, l_end - 0.05)
        self.d.json("PUT", "/v2/admin/models/digits/traffic", {"weights": {"2": 1}, "stable": "2"})

    def test_client_gone_before_the_answer(self):
        self.add_slow_model("slow3")
        sock = socket.create_connection(("127.0.0.1", self.d.port))
        sock.sendall(b"POST /v2/repository/models/slow3/load HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        time.sleep(0.05)
        sock.close()
        # The load still completes, the server still serves.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            s, b = self.d.json("GET", "/v2/models/slow3/ready")
            if s == 200:
                break
            time.sleep(0.1)
        self.assertEqual((s, b.get("ready")), (200, True))
        s, b = self.d.json("POST", "/v2/models/digits/infer", SAMPLE)
        self.assertEqual(s, 200)


if __name__ == "__main__":
    unittest.main()
