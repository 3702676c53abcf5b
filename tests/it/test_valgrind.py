"""One run of the daemon under valgrind (memcheck): inference (JSON, binary, /predict, on the loops
and on the execution pool, a deadline), admin changes, hostile and bad requests, then SIGTERM.
No definite or indirect leak and no invalid read or write may be reported; what the libraries we
link keep by design is suppressed by stack in tests/valgrind.supp, each with its reason. Skipped
on sanitizer builds (valgrind cannot run them) and without valgrind."""
import json
import os
import re
import shutil
import socket
import unittest

import mgtest
from mgtest import Daemon, binary_request

SAMPLE = mgtest.digits_sample()
SUPP = os.path.join(mgtest.SOURCE_DIR, "tests", "valgrind.supp")


def add_pool_copy(repo):
    # The same model again, run on the execution pool.
    shutil.copytree(os.path.join(repo, "digits"), os.path.join(repo, "digits_pool"))
    with open(os.path.join(repo, "digits_pool", "config.json"), "w") as f:
        json.dump({"execution": "pool", "max_inflight": 4}, f)


def raw(port, data):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    except (ConnectionResetError, socket.timeout):
        return out
    finally:
        s.close()


@unittest.skipIf(os.environ.get("MG_SANITIZE"), "a sanitizer build: valgrind cannot run it")
@unittest.skipIf(shutil.which("valgrind") is None, "valgrind is not installed")
class ValgrindTest(unittest.TestCase):
    def test_daemon_under_memcheck(self):
        root, repo = mgtest.make_repo(with_test_models=False, extra=add_pool_copy)
        log = os.path.join(root, "valgrind.log")
        wrapper = ["valgrind", "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                   "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99", "--num-callers=40",
                   "--suppressions=" + SUPP, "--log-file=" + log]
        # No sandbox: it execs /proc/self/exe, which under valgrind is valgrind's tool, not
        # modelgate (the sandbox is tested by test_sandbox and test_lifecycle).
        d = Daemon(repo, args=["--exec-threads", "1", "--header-timeout-ms", "3000", "--sandbox", "off"],
                   wrapper=wrapper,
                   ready_timeout=600)
        try:
            for model in ["digits", "digits_pool"]:
                st, b = d.json("POST", "/v2/models/%s/infer" % model, SAMPLE)
                self.assertEqual(st, 200, b)
            body, hlen = binary_request([("input", "FP32", [1, 64], b"\0" * 256)],
                                        outputs=[{"name": "probabilities", "parameters": {"binary_data": True}}])
            st, _, _ = d.request("POST", "/v2/models/digits/infer", body, {"Inference-Header-Content-Length": str(hlen)})
            self.assertEqual(st, 200)
            self.assertEqual(d.json("POST", "/predict", {"model": "digits", "data": [0] * 64})[0], 200)
            self.assertEqual(d.json("POST", "/v2/models/digits_pool/infer",
                                    dict(SAMPLE, parameters={"timeout": 1}))[0], 504)
            # Bad and hostile requests.
            self.assertEqual(d.json("POST", "/v2/models/digits/infer", {"inputs": 1})[0], 400)
            self.assertEqual(d.json("POST", "/v2/models/nope/infer", SAMPLE)[0], 404)
            self.assertIn(b" 414 ", raw(d.port, b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n"))
            self.assertIn(b" 431 ", raw(d.port, b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n"))
            self.assertIn(b" 400 ", raw(d.port, b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"))
            self.assertIn(b" 200 ", raw(d.port, b"POST /v2/repository/index HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                                        b"Connection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n"))
            self.assertIn(b" 408 ", raw(d.port, b"GET /v2 HTTP/1.1\r\n"))
            out = raw(d.port, b"GET /v2/health/live HTTP/1.1\r\n\r\n" * 3 + b"BAD\r\n\r\n")
            self.assertEqual((out.count(b"HTTP/1.1 200 OK"), out.count(b"HTTP/1.1 400 ")), (3, 1), out)
            # Admin changes through the control plane.
            st, _ = d.json("PUT", "/v2/admin/models/digits/traffic", {"weights": {"1": 50, "2": 50}, "stable": "1"})
            self.assertEqual(st, 200)
            self.assertEqual(d.json("PUT", "/v2/admin/routes", {"routes": [
                {"name": "r", "match": {"path": {"regex": "^/x/[0-9]+$"}}, "model": "digits", "api": "predict"}]})[0], 200)
            self.assertEqual(d.json("POST", "/x/12", {"data": [0] * 64})[0], 200)
            self.assertEqual(d.json("POST", "/v2/repository/models/digits/unload")[0], 200)
            self.assertEqual(d.json("POST", "/v2/repository/models/digits/load")[0], 200)
            self.assertEqual(d.json("POST", "/v2/models/digits/infer", SAMPLE)[0], 200)
        finally:
            code = d.stop(timeout=300)
        with open(log) as f:
            report = f.read()
        shutil.rmtree(root, ignore_errors=True)
        summary = "\n".join(l for l in report.splitlines() if "lost:" in l or "ERROR SUMMARY" in l)
        print(summary)
        self.assertEqual(code, 0, "exit %s; valgrind said:\n%s" % (code, report[-20000:]))
        self.assertRegex(report, r"ERROR SUMMARY: 0 errors", report[-20000:])
        for kind in ["definitely", "indirectly"]:
            m = re.search(kind + r" lost: ([0-9,]+) bytes", report)
            self.assertTrue(m is None or m.group(1) == "0", report[-20000:])


if __name__ == "__main__":
    unittest.main()
