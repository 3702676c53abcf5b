"""The modelgate command line: check, help, version, serve's argument and config errors."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import mgtest
from mgtest import Daemon, MG_BIN

DIGITS_V2 = os.path.join(mgtest.SOURCE_DIR, "models", "digits", "2", "model.onnx")


def run(*args, timeout=60):
    p = subprocess.run([MG_BIN, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class CliTest(unittest.TestCase):
    def test_help_and_version(self):
        code, out, _ = run("--help")
        self.assertEqual(code, 0)
        self.assertIn("serve", out)
        self.assertIn("check", out)
        code, out, _ = run("--version")
        self.assertEqual(code, 0)
        self.assertRegex(out, r"^modelgate \d+\.\d+\.\d+ \(ONNX Runtime 1\.29\.0\)")
        code, out, _ = run("serve", "--help")
        self.assertEqual(code, 0)
        self.assertIn("--repo", out)
        code, _, err = run()
        self.assertEqual(code, 2)
        self.assertIn("usage", err)
        code, _, err = run("frobnicate")
        self.assertEqual(code, 2)
        self.assertIn("unknown command 'frobnicate'", err)

    def test_check_good_model(self):
        code, out, err = run("check", DIGITS_V2)
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"input\s+FP32\s+\[-1,64\]")
        self.assertRegex(out, r"probabilities\s+FP32\s+\[-1,10\]")

    def test_check_bad_model(self):
        with tempfile.NamedTemporaryFile(suffix=".onnx") as f:
            f.write(b"\x08\x07garbage that is not a model")
            f.flush()
            code, out, err = run("check", f.name)
        self.assertEqual(code, 1)
        self.assertIn("invalid model", err)
        code, out, err = run("check", "/nonexistent/model.onnx")
        self.assertEqual(code, 1)
        self.assertIn("cannot open", err)
        code, out, err = run("check")
        self.assertEqual(code, 2)

    def test_serve_argument_errors(self):
        code, _, err = run("serve")
        self.assertEqual(code, 2)
        self.assertIn("--repo", err)
        code, _, err = run("serve", "--repo", "models", "--listen", "nowhere")
        self.assertEqual(code, 2)
        self.assertIn("ADDR:PORT", err)
        code, _, err = run("serve", "--repo", "models", "--threads", "0")
        self.assertEqual(code, 2)
        code, _, err = run("serve", "--repo", "/nonexistent/repo", "--listen", "127.0.0.1:0")
        self.assertEqual(code, 1)
        self.assertIn("/nonexistent/repo", err)
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            f.write('{"repo": "models", "listen_port": 1}')
            f.flush()
            code, _, err = run("serve", "--config", f.name)
        self.assertEqual(code, 2)
        self.assertIn("unknown field 'listen_port'", err)

    def test_serve_with_config_file_and_port_in_use(self):
        root, repo = mgtest.make_repo(with_test_models=False)
        try:
            cfg = os.path.join(root, "server.json")
            with open(cfg, "w") as f:
                json.dump({"default_model": "digits", "log_format": "json", "max_body_bytes": 4096}, f)
            d = Daemon(repo, args=["--config", cfg])
            try:
                sample = mgtest.digits_sample()
                s, b = d.json("POST", "/predict", {"data": sample["inputs"][0]["data"]})
                self.assertEqual((s, b["model"]), (200, "digits"))
                s, b = d.json("GET", "/v2/health/ready")
                self.assertEqual((s, b), (200, {"ready": True}))
                status, _, data = d.request("POST", "/predict", b"x" * 5000)
                self.assertEqual(status, 413)
                self.assertIn("4096", json.loads(data)["error"])
                # Logs are JSON lines.
                self.assertTrue(any(line.startswith("{") and json.loads(line)["area"] == "http" for line in d.log))
                code, _, err = run("serve", "--repo", repo, "--listen", "127.0.0.1:%d" % d.port, "--threads", "1")
                self.assertEqual(code, 1)
                self.assertIn("cannot listen", err)
            finally:
                self.assertEqual(d.stop(), 0)
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
