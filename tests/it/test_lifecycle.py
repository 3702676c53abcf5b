"""The model lifecycle over real HTTP, with the sandbox on and checksums required: every way a
new version can be refused (truncated, random bytes, empty, checksum mismatch in SHA256SUMS or
config.json, no checksum at all, external data escaping the version folder, a model that
allocates without bound, one slower than the sandbox timeout) is refused with its reason in the
response, the index and the log, while the version that served keeps answering; states
LOADING / DRAINING / UNLOADED / FAILED in the index beside Triton's; explicit mode."""
import hashlib
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

def gen_models(root):
    gen = os.path.join(root, "gen")
    subprocess.run([mgtest.PYTHON, os.path.join(mgtest.SOURCE_DIR, "scripts", "gen_lifecycle_models.py"), gen],
                   check=True, stdout=subprocess.DEVNULL)
    return gen


def write_sums(vdir, names=None):
    """Writes vdir/SHA256SUMS (sha256sum format) over `names` (default: every file)."""
    names = names or sorted(f for f in os.listdir(vdir) if f != "SHA256SUMS")
    with open(os.path.join(vdir, "SHA256SUMS"), "w") as f:
        for n in names:
            with open(os.path.join(vdir, n), "rb") as g:
                f.write("%s  %s\n" % (hashlib.sha256(g.read()).hexdigest(), n))


def add_request(value=1.0):
    return {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [value] * 4}]}


def index_rows(d, name):
    s, b = d.json("POST", "/v2/repository/index")
    assert s == 200, b
    return {r.get("version"): r for r in b if r["name"] == name}


class RefusalFixture:
    """One daemon (explicit loads through the API, sandbox on, --require-checksums) with its
    sandbox timeout TIMEOUT, and the checks of a refusal."""

    TIMEOUT = 60

    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(with_test_models=False)
        gen = gen_models(cls.root)
        cls.gen = gen
        m = os.path.join(cls.repo, "m", "1")
        os.makedirs(m)
        shutil.copy(os.path.join(gen, "add.onnx"), os.path.join(m, "model.onnx"))
        write_sums(m)
        with open(os.path.join(cls.repo, "m", "config.json"), "w") as f:
            json.dump({"warmup": {"runs": 1}}, f)
        write_sums(os.path.join(cls.repo, "digits", "1"))
        write_sums(os.path.join(cls.repo, "digits", "2"))
        cls.d = Daemon(cls.repo, args=["--require-checksums", "--sandbox-memory-mb", "1024",
                                       "--sandbox-timeout-secs", str(cls.TIMEOUT)])

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        shutil.rmtree(cls.root, ignore_errors=True)
        assert code == 0, "modelgate exited with %s:\n%s" % (code, "".join(cls.d.log))

    def serves_v1(self):
        s, h, b = self.d.request("POST", "/v2/models/m/infer", add_request())
        self.assertEqual(s, 200, b)
        self.assertEqual(h["x-model-version"], "1")
        self.assertEqual(json.loads(b)["outputs"][0]["data"], [2.0, 3.0, 4.0, 5.0])

    def refused(self, make, reason, sums=True):
        """Puts version 2 in place with make(vdir), loads, expects `reason` everywhere."""
        vdir = os.path.join(self.repo, "m", "2")
        os.makedirs(vdir)
        try:
            make(vdir)
            if sums:
                write_sums(vdir)
            t0 = time.monotonic()
            s, b = self.d.json("POST", "/v2/repository/models/m/load")
            took = time.monotonic() - t0
            self.assertEqual(s, 400, b)
            self.assertIn("version 2 of 'm' failed (version 1 serves): ", b["error"])
            self.assertIn(reason, b["error"])
            row = index_rows(self.d, "m")["2"]
            self.assertEqual((row["state"], row["modelgate_state"]), ("UNAVAILABLE", "FAILED"))
            self.assertIn(reason, row["reason"])
            self.assertEqual(index_rows(self.d, "m")["1"]["modelgate_state"], "READY")
            self.assertTrue(self.wait_line("load failed model=m version=2 ", reason), "".join(self.d.log[-5:]))
            self.serves_v1()
            print("\n  refused in %.2f s: %s" % (took, row["reason"]))
        finally:
            shutil.rmtree(vdir)
            self.d.json("POST", "/v2/repository/models/m/load")

    def wait_line(self, *parts, timeout=10):
        """True once a log line holding every one of `parts` was read (another thread reads it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(all(p in line for p in parts) for line in list(self.d.log)):
                return True
            time.sleep(0.02)
        return False

    def copy(self, name, dst_name="model.onnx"):
        return lambda vdir: shutil.copy(os.path.join(self.gen, name), os.path.join(vdir, dst_name))


class RefusalTest(RefusalFixture, unittest.TestCase):
    """The sandbox timeout is generous here: a validation child runs at nice 10, and on a loaded
    machine it may wait seconds for a core; TimeoutTest has a short one for the model that must
    time out."""

    def test_truncated_file(self):
        def make(vdir):
            with open(os.path.join(mgtest.SOURCE_DIR, "models", "digits", "2", "model.onnx"), "rb") as f:
                data = f.read()
            with open(os.path.join(vdir, "model.onnx"), "wb") as f:
                f.write(data[:len(data) // 2])
        self.refused(make, "truncated?")

    def test_random_bytes(self):
        def make(vdir):
            with open(os.path.join(vdir, "model.onnx"), "wb") as f:
                f.write(os.urandom(4096))
        self.refused(make, "not a valid ONNX model")

    def test_empty_file(self):
        self.refused(lambda vdir: open(os.path.join(vdir, "model.onnx"), "wb").close(), "model.onnx is empty")

    def test_checksum_mismatch(self):
        def make(vdir):
            self.copy("add.onnx")(vdir)
            with open(os.path.join(vdir, "SHA256SUMS"), "w") as f:
                f.write("%s  model.onnx\n" % ("ab" * 32))
        self.refused(make, "checksum mismatch for 'model.onnx': expected abababababababab", sums=False)

    def test_pinned_digest_mismatch(self):
        cfg = os.path.join(self.repo, "m", "config.json")
        with open(cfg, "w") as f:
            json.dump({"warmup": {"runs": 1}, "sha256": {"2": "cd" * 32}}, f)
        try:
            self.refused(self.copy("add.onnx"), "checksum mismatch for 'model.onnx': expected cdcdcdcd")
        finally:
            with open(cfg, "w") as f:
                json.dump({"warmup": {"runs": 1}}, f)

    def test_no_checksum_required(self):
        self.refused(self.copy("add.onnx"), "no checksum for 'model.onnx' (--require-checksums", sums=False)

    def test_external_data_escaping(self):
        def escape(vdir):
            shutil.copy(os.path.join(self.gen, "ext_escape", "model.onnx"), os.path.join(vdir, "model.onnx"))
            shutil.copy(os.path.join(self.gen, "ext", "weights.bin"), os.path.join(vdir, "..", "escape.bin"))
        self.refused(escape, "external data '../escape.bin': '..' is not allowed")

        def absolute(vdir):
            shutil.copy(os.path.join(self.gen, "ext_absolute", "model.onnx"), os.path.join(vdir, "model.onnx"))
        self.refused(absolute, "absolute paths are not allowed")

        def symlink(vdir):
            shutil.copy(os.path.join(self.gen, "ext", "model.onnx"), os.path.join(vdir, "model.onnx"))
            os.symlink(os.path.join(self.gen, "ext", "weights.bin"), os.path.join(vdir, "weights.bin"))
        self.refused(symlink, "resolves outside the version folder")

    def test_external_data_inside_loads(self):
        vdir = os.path.join(self.repo, "m", "2")
        os.makedirs(vdir)
        try:
            shutil.copy(os.path.join(self.gen, "ext", "model.onnx"), os.path.join(vdir, "model.onnx"))
            shutil.copy(os.path.join(self.gen, "ext", "weights.bin"), os.path.join(vdir, "weights.bin"))
            write_sums(vdir, ["model.onnx"])
            s, b = self.d.json("POST", "/v2/repository/models/m/load")
            # SHA256SUMS must cover the external data too.
            self.assertEqual(s, 400, b)
            self.assertIn("SHA256SUMS does not list 'weights.bin'", b["error"])
            write_sums(vdir)
            s, b = self.d.json("POST", "/v2/repository/models/m/load")
            self.assertEqual((s, b), (200, {}))
            s, h, b = self.d.request("POST", "/v2/models/m/infer", add_request(10.0))
            self.assertEqual((s, h["x-model-version"]), (200, "2"))
            self.assertEqual(json.loads(b)["outputs"][0]["data"], [11.0, 12.0, 13.0, 14.0])
            rows = index_rows(self.d, "m")
            self.assertEqual(rows["1"]["modelgate_state"], "UNLOADED")
            self.assertIn("no longer selected", rows["1"]["reason"])
        finally:
            shutil.rmtree(vdir)
            self.d.json("POST", "/v2/repository/models/m/load")
        self.serves_v1()

    def test_unbounded_allocation(self):
        self.refused(self.copy("hog.onnx"), "out of memory")



class TimeoutTest(RefusalFixture, unittest.TestCase):
    """The same daemon with a 3 s sandbox timeout, for the model slower than it."""

    TIMEOUT = 3

    def test_slower_than_the_sandbox_timeout(self):
        self.refused(self.copy("slow.onnx"), "sandbox: timed out after 3000 ms")


class StatesTest(unittest.TestCase):
    """DRAINING while a request is in flight, LOADING while a load runs, explicit mode."""

    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(with_test_models=False)
        gen = gen_models(cls.root)
        os.makedirs(os.path.join(cls.repo, "spin", "1"))
        shutil.copy(os.path.join(gen, "spin.onnx"), os.path.join(cls.repo, "spin", "1", "model.onnx"))
        os.makedirs(os.path.join(cls.repo, "other", "1"))
        shutil.copy(os.path.join(gen, "add.onnx"), os.path.join(cls.repo, "other", "1", "model.onnx"))
        cls.d = Daemon(cls.repo, args=["--model-control-mode", "explicit", "--load-model", "spin",
                                       "--load-model", "digits"])

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        shutil.rmtree(cls.root, ignore_errors=True)
        assert code == 0, "modelgate exited with %s:\n%s" % (code, "".join(cls.d.log))

    def spin(self, n):
        return self.d.request("POST", "/v2/models/spin/infer",
                              {"inputs": [{"name": "n", "shape": [1], "datatype": "INT64", "data": [n]}]},
                              timeout=120)

    def free_loop_connection(self):
        for _ in range(32):
            conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=0.5)
            try:
                conn.request("GET", "/v2/health/live")
                conn.getresponse().read()
                conn.timeout = 30
                conn.sock.settimeout(30)
                return conn
            except (socket.timeout, TimeoutError):
                conn.close()
        self.fail("no event loop answered")

    def test_explicit_mode_loads_only_what_is_named(self):
        s, b = self.d.json("GET", "/v2/health/ready")
        self.assertEqual(s, 200, b)
        self.assertEqual(self.d.json("GET", "/v2/models/other/ready")[0], 404)
        self.assertEqual(index_rows(self.d, "other"), {None: {"name": "other"}})
        self.assertEqual(self.d.json("POST", "/v2/repository/models/other/load"), (200, {}))
        self.assertEqual(index_rows(self.d, "other")["1"]["modelgate_state"], "READY")

    def test_draining_while_a_request_is_in_flight(self):
        # Calibrate: a request that takes about five seconds (the quicker of two measures, so a
        # loaded machine makes it longer, not shorter).
        per = 1.0
        for _ in range(2):
            t0 = time.monotonic()
            self.assertEqual(self.spin(100000)[0], 200)
            per = min(per, max((time.monotonic() - t0) / 100000, 1e-8))
        n = int(5.0 / per)
        result = {}

        def slow():
            result["answer"] = self.spin(n)

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.3)
        # Runs are inline on the event loops: talk over a connection whose loop is not the one
        # busy with the slow request (one that answers at once).
        conn = self.free_loop_connection()

        def call(method, path):
            conn.request(method, path, body=b"")
            r = conn.getresponse()
            return r.status, json.loads(r.read() or b"null")

        self.assertEqual(call("POST", "/v2/repository/models/spin/unload"), (200, {}))
        s, b = call("POST", "/v2/repository/index")
        row = [r for r in b if r["name"] == "spin"][0]
        self.assertEqual((row["state"], row["modelgate_state"]), ("UNLOADING", "DRAINING"), row)
        self.assertTrue(t.is_alive(), "the slow request ended too early to test anything")
        conn.close()
        self.assertEqual(self.spin(1)[0], 503)  # new requests: not ready
        t.join()
        self.assertEqual(result["answer"][0], 200, result["answer"][2])
        deadline = time.monotonic() + 10
        while index_rows(self.d, "spin")["1"]["modelgate_state"] != "UNLOADED" and time.monotonic() < deadline:
            time.sleep(0.05)
        row = index_rows(self.d, "spin")["1"]
        self.assertEqual((row["state"], row["modelgate_state"], row["reason"]), ("UNAVAILABLE", "UNLOADED", "unloaded"))
        self.assertTrue(self.d.wait_log("version released model=spin version=1"))
        self.assertEqual(self.d.json("POST", "/v2/repository/models/spin/load"), (200, {}))

    def test_loading_is_visible(self):
        cnn_gen = os.path.join(self.root, "cnn")
        subprocess.run([mgtest.PYTHON, os.path.join(mgtest.SOURCE_DIR, "scripts", "gen_cnn.py"), cnn_gen, "--width", "2"],
                       check=True, stdout=subprocess.DEVNULL)
        shutil.copytree(os.path.join(cnn_gen, "cnn"), os.path.join(self.repo, "cnn"))
        with open(os.path.join(self.repo, "cnn", "config.json"), "w") as f:
            json.dump({"max_batch_size": 8, "warmup": {"runs": 200}}, f)
        result = {}
        t = threading.Thread(target=lambda: result.setdefault("a", self.d.json("POST", "/v2/repository/models/cnn/load")))
        t.start()
        seen = set()
        while t.is_alive():
            for v, row in index_rows(self.d, "cnn").items():
                seen.add((v, row.get("state"), row.get("modelgate_state")))
            time.sleep(0.02)
        t.join()
        self.assertEqual(result["a"], (200, {}))
        self.assertIn(("1", "LOADING", "LOADING"), seen)
        self.assertEqual(index_rows(self.d, "cnn")["1"]["modelgate_state"], "READY")


if __name__ == "__main__":
    unittest.main()
