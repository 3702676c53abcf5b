"""Poll mode over real HTTP: versions renamed into the repository go live by themselves under
`latest 1`, a failing one never displaces the serving one and is not retried while unchanged,
removed folders drain and leave, config.json changes apply, a half-written file is never picked
up, new and removed model folders, a version waiting for its SHA256SUMS when checksums are
required; and the short version of the swap benchmark: wrk load while
versions are swapped in, with no failed request."""
import json
import os
import shutil
import subprocess
import time
import unittest

import mgtest
from mgtest import Daemon

SAMPLE = mgtest.digits_sample()
DIGITS = os.path.join(mgtest.SOURCE_DIR, "models", "digits")


class PollTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(with_test_models=False)
        cls.model = os.path.join(cls.repo, "digits")
        shutil.rmtree(os.path.join(cls.model, "2"))
        cls.write_config({"max_batch_size": 64, "version_policy": {"latest": {"num_versions": 1}}})
        cls.d = Daemon(cls.repo, args=["--model-control-mode", "poll", "--repository-poll-secs", "1",
                                       "--repository-debounce-ms", "300"])

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        shutil.rmtree(cls.root, ignore_errors=True)
        assert code == 0, "modelgate exited with %s:\n%s" % (code, "".join(cls.d.log))

    @classmethod
    def write_config(cls, cfg):
        tmp = os.path.join(cls.model, ".config.json.tmp")
        with open(tmp, "w") as f:
            json.dump(cfg, f)
        os.rename(tmp, os.path.join(cls.model, "config.json"))

    def put_version(self, k, src="2"):
        staged = os.path.join(self.model, ".incoming-%d" % k)
        shutil.copytree(os.path.join(DIGITS, src), staged)
        os.rename(staged, os.path.join(self.model, str(k)))

    def rows(self, name="digits"):
        s, b = self.d.json("POST", "/v2/repository/index")
        self.assertEqual(s, 200, b)
        return {r.get("version"): r for r in b if r["name"] == name}

    def wait_for(self, what, check, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            time.sleep(0.05)
        self.fail("timed out waiting for %s; log:\n%s" % (what, "".join(self.d.log[-15:])))

    def serving(self):
        s, h, b = self.d.request("POST", "/v2/models/digits/infer", SAMPLE)
        self.assertEqual(s, 200, b)
        return h["x-model-version"]

    def test_lifecycle_in_poll_mode(self):
        self.assertEqual(self.serving(), "1")

        # A new highest version goes live by itself; the previous one drains and is unloaded.
        self.put_version(2)
        self.wait_for("version 2 live", lambda: self.serving() == "2")
        self.wait_for("version 1 unloaded", lambda: self.rows()["1"]["modelgate_state"] == "UNLOADED")

        # A broken one is refused, the serving one stays, the index says why; unchanged, it is
        # not tried again on later scans.
        staged = os.path.join(self.model, ".incoming-3")
        os.makedirs(staged)
        with open(os.path.join(staged, "model.onnx"), "wb") as f:
            f.write(os.urandom(2000))
        os.rename(staged, os.path.join(self.model, "3"))
        row = self.wait_for("version 3 failed", lambda: self.rows().get("3", {}).get("modelgate_state") == "FAILED"
                            and self.rows()["3"])
        self.assertEqual(row["state"], "UNAVAILABLE")
        self.assertIn("not a valid ONNX model", row["reason"])
        self.assertEqual(self.serving(), "2")
        time.sleep(2.5)  # two full rescans
        tries = [l for l in self.d.log if "load failed model=digits version=3" in l]
        self.assertEqual(len(tries), 1, "".join(tries))
        self.assertEqual(self.serving(), "2")

        # The serving version's folder removed: it drains and leaves; the next one down serves.
        shutil.rmtree(os.path.join(self.model, "2"))
        self.wait_for("version 1 back", lambda: self.serving() == "1")
        self.assertNotIn("2", self.rows())
        self.assertEqual(self.rows()["3"]["modelgate_state"], "FAILED")

        # Fixing the broken version (its files change): tried again, and it goes live.
        shutil.rmtree(os.path.join(self.model, "3"))
        self.put_version(3)
        self.wait_for("version 3 live", lambda: self.serving() == "3")

        # A changed config.json applies on the next scan.
        self.write_config({"max_batch_size": 64, "version_policy": {"all": {}}, "default_version": "1"})
        self.wait_for("all versions", lambda: self.rows()["1"]["modelgate_state"] == "READY"
                      and self.rows()["3"]["modelgate_state"] == "READY")
        self.assertEqual(self.serving(), "1")
        self.write_config({"max_batch_size": 64, "version_policy": {"latest": {"num_versions": 1}}})
        self.wait_for("latest again", lambda: self.serving() == "3")

    def test_half_written_file_is_never_picked_up(self):
        with open(os.path.join(DIGITS, "2", "model.onnx"), "rb") as f:
            data = f.read()
        vdir = os.path.join(self.repo, "late", "1")
        os.makedirs(vdir)
        seen = set()
        with open(os.path.join(vdir, "model.onnx"), "wb") as f:
            for i in range(0, len(data), len(data) // 5):
                f.write(data[i:i + len(data) // 5])
                f.flush()
                for r in self.rows("late").values():
                    seen.add(r.get("modelgate_state"))
                time.sleep(0.1)  # slower than the watcher's coalescing, faster than the debounce
        self.wait_for("late ready", lambda: self.rows("late").get("1", {}).get("modelgate_state") == "READY")
        self.assertNotIn("FAILED", seen)
        self.assertFalse(any("load failed model=late" in l for l in self.d.log))
        s, b = self.d.json("POST", "/v2/models/late/infer", SAMPLE)
        self.assertEqual(s, 200, b)
        # A model folder that goes away leaves the registry.
        shutil.rmtree(os.path.join(self.repo, "late"))
        self.wait_for("late gone", lambda: self.d.json("GET", "/v2/models/late/ready")[0] == 404)


class ChecksumsRequiredPollTest(unittest.TestCase):
    def test_a_version_waits_for_its_sha256sums(self):
        root, repo = mgtest.make_repo(with_test_models=False)
        model = os.path.join(repo, "digits")
        shutil.rmtree(os.path.join(model, "2"))
        with open(os.path.join(model, "config.json"), "w") as f:
            json.dump({"max_batch_size": 64, "version_policy": {"latest": {"num_versions": 1}}}, f)

        def sums(vdir):
            subprocess.run("sha256sum model.onnx > SHA256SUMS", shell=True, cwd=vdir, check=True)
        sums(os.path.join(model, "1"))
        d = Daemon(repo, args=["--model-control-mode", "poll", "--repository-poll-secs", "1",
                               "--repository-debounce-ms", "200", "--require-checksums"])
        try:
            staged = os.path.join(model, ".incoming")
            shutil.copytree(os.path.join(DIGITS, "2"), staged)
            os.rename(staged, os.path.join(model, "2"))
            time.sleep(2.0)  # settled long ago, two full rescans: still not considered
            s, b = d.json("POST", "/v2/repository/index")
            self.assertEqual([r.get("version") for r in b if r["name"] == "digits"], ["1"], b)
            self.assertFalse(any("model=digits version=2" in l for l in d.log))
            sums(os.path.join(model, "2"))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                s, h, _ = d.request("POST", "/v2/models/digits/infer", SAMPLE)
                if s == 200 and h["x-model-version"] == "2":
                    break
                time.sleep(0.05)
            self.assertEqual((s, h["x-model-version"]), (200, "2"))
        finally:
            code = d.stop()
            shutil.rmtree(root, ignore_errors=True)
        self.assertEqual(code, 0, "".join(d.log[-20:]))


class SwapUnderLoadTest(unittest.TestCase):
    def test_swaps_under_wrk_fail_no_request(self):
        """bench/swap.py, short: 5 versions swapped in under wrk -t2 -c32, 0 failed requests."""
        r = subprocess.run([mgtest.PYTHON, os.path.join(mgtest.SOURCE_DIR, "bench", "swap.py"),
                            "--modelgate", mgtest.MG_BIN, "--swaps", "5", "--steady-secs", "0",
                            "--interval", "0.3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        print("\n  swaps: %s" % json.dumps(res))
        self.assertEqual(res["swaps_live"], 5)
        self.assertEqual(res["during"]["failed"], 0)
        self.assertGreater(res["during"]["requests"], 0)


if __name__ == "__main__":
    unittest.main()
