"""The protected admin surface: its own listener, the bearer token, refusing to start exposed,
`modelgate ctl` with a token, and the systemd unit under dist/. Loopback addresses only."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import mgtest
from mgtest import Daemon

TOKEN = "s3cr3t-admin-token-0123456789"
POLICY = {"weights": {"1": 50, "2": 50}, "stable": "1"}
# Every admin call, as (method, path, body).
ADMIN_CALLS = [
    ("GET", "/v2/admin/models/digits/traffic", None),
    ("PUT", "/v2/admin/models/digits/traffic", POLICY),
    ("GET", "/v2/admin/routes", None),
    ("PUT", "/v2/admin/routes", {"routes": []}),
    ("POST", "/v2/repository/models/digits/load", None),
    ("POST", "/v2/repository/models/digits/unload", None),
]


def write_token(root, token=TOKEN):
    path = os.path.join(root, "admin-token")
    with open(path, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return path


def run_serve(repo, *args):
    """Runs `modelgate serve` that must refuse to start; returns (exit code, stderr)."""
    p = subprocess.run([mgtest.MG_BIN, "serve", "--repo", repo, *args], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    return p.returncode, p.stderr


class RefuseToStartTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(with_test_models=False)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def assert_refused(self, args, fragment):
        code, err = run_serve(self.repo, *args)
        self.assertEqual(code, 2, err)
        self.assertIn(fragment, err)
        # Nothing was bound or loaded: the refusal comes before any listener or model.
        self.assertNotIn("listening", err)
        self.assertNotIn("version ready", err)

    def test_admin_listener_beyond_loopback_without_a_token(self):
        self.assert_refused(["--listen", "127.0.0.1:0", "--admin-listen", "0.0.0.0:18999"],
                            "the admin API would be reachable on 0.0.0.0:18999 without a token")

    def test_main_listener_beyond_loopback_serving_admin_without_a_token(self):
        self.assert_refused(["--listen", "0.0.0.0:18999"], "--admin-token-file FILE, or --admin-listen")
        self.assert_refused(["--listen", "[::]:18999"], "without a token")

    def test_bad_token_files(self):
        self.assert_refused(["--listen", "127.0.0.1:0", "--admin-token-file", os.path.join(self.root, "missing")],
                            "--admin-token-file: cannot open")
        self.assert_refused(["--listen", "127.0.0.1:0", "--admin-token-file", write_token(self.root, "short")],
                            "at least 16 characters")


class AdminTokenTest(unittest.TestCase):
    """A token on loopback, with the admin API on its own listener."""

    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(with_test_models=False)
        cls.token_file = write_token(cls.root)
        cls.d = Daemon(cls.repo, args=["--admin-listen", "127.0.0.1:0", "--admin-token-file", cls.token_file])
        assert cls.d.admin_port, "".join(cls.d.log)

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        shutil.rmtree(cls.root, ignore_errors=True)
        assert code == 0, "modelgate exited with %s:\n%s" % (code, "".join(cls.d.log))

    def admin(self, method, path, body=None, token=None):
        headers = {"Authorization": "Bearer " + token} if token is not None else {}
        return self.d.request(method, path, json.dumps(body) if body is not None else None, headers,
                              port=self.d.admin_port)

    def test_every_admin_call_without_the_token_is_401(self):
        for method, path, body in ADMIN_CALLS:
            with self.subTest(method=method, path=path):
                st, hdrs, data = self.admin(method, path, body)
                self.assertEqual(st, 401, data)
                self.assertEqual(hdrs.get("www-authenticate"), 'Bearer realm="modelgate-admin"')
                self.assertIn("Authorization: Bearer", json.loads(data)["error"])
        # Not a bearer credential at all counts as none.
        st, _, _ = self.d.request("GET", "/v2/admin/routes", headers={"Authorization": "Basic YTpi"},
                                  port=self.d.admin_port)
        self.assertEqual(st, 401)

    def test_every_admin_call_with_a_wrong_token_is_403(self):
        for wrong in ["nope", TOKEN + "x", TOKEN[:-1], ""]:
            for method, path, body in ADMIN_CALLS:
                with self.subTest(method=method, path=path, wrong=wrong):
                    st, hdrs, data = self.admin(method, path, body, token=wrong)
                    self.assertEqual(st, 403 if wrong else 401, data)

    def test_with_the_token_the_calls_work(self):
        for method, path, body in ADMIN_CALLS:
            with self.subTest(method=method, path=path):
                st, _, data = self.admin(method, path, body, token=TOKEN)
                self.assertEqual(st, 200, data)
        st, _, data = self.admin("POST", "/v2/repository/models/digits/load", token=TOKEN)
        self.assertEqual(st, 200, data)
        # Names are matched against the repository's listing, never joined into paths.
        for name in ["..%2fdigits", "digits%2f..%2f..%2fdigits", ".hidden", "x" * 300]:
            st, _, data = self.admin("POST", "/v2/repository/models/%s/load" % name, token=TOKEN)
            self.assertIn(st, (404, 400), data)
            self.assertNotIn(self.root, data.decode())

    def test_admin_paths_on_the_main_listener_are_404(self):
        for method, path, body in ADMIN_CALLS:
            with self.subTest(method=method, path=path):
                st, _, data = self.d.request(method, path, json.dumps(body) if body else None,
                                             {"Authorization": "Bearer " + TOKEN})
                self.assertEqual(st, 404, data)

    def test_inference_is_not_served_on_the_admin_listener(self):
        st, _, _ = self.d.request("GET", "/v2/health/live", port=self.d.admin_port)
        self.assertEqual(st, 404)
        st, _, _ = self.d.request("GET", "/v2/health/live")
        self.assertEqual(st, 200)

    def test_ctl_with_a_token_file_or_the_environment(self):
        url = "http://127.0.0.1:%d" % self.d.admin_port
        env = {k: v for k, v in os.environ.items() if k != "MODELGATE_TOKEN"}
        p = subprocess.run([mgtest.MG_BIN, "ctl", "--server", url, "traffic", "digits"], capture_output=True,
                           text=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("refused (401)", p.stderr)
        p = subprocess.run([mgtest.MG_BIN, "ctl", "--server", url, "--token-file", self.token_file, "traffic",
                            "digits", "1=70", "2=30"], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("-> 1=70 2=30", p.stdout)
        p = subprocess.run([mgtest.MG_BIN, "ctl", "--server", url, "routes"], capture_output=True, text=True,
                           env=dict(env, MODELGATE_TOKEN=TOKEN), timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run([mgtest.MG_BIN, "ctl", "--server", url, "routes"], capture_output=True, text=True,
                           env=dict(env, MODELGATE_TOKEN="wrong-but-long-enough"), timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("refused (403)", p.stderr)


class TokenOnTheMainListenerTest(unittest.TestCase):
    """Without --admin-listen a token file protects the admin paths of the one listener."""

    def test_token_applies_on_loopback(self):
        root, repo = mgtest.make_repo(with_test_models=False)
        d = Daemon(repo, args=["--admin-token-file", write_token(root)])
        try:
            st, hdrs, _ = d.request("GET", "/v2/admin/routes")
            self.assertEqual(st, 401)
            self.assertIn("www-authenticate", hdrs)
            st, _, _ = d.request("GET", "/v2/admin/routes", headers={"Authorization": "Bearer wrong"})
            self.assertEqual(st, 403)
            st, _, _ = d.request("GET", "/v2/admin/routes", headers={"Authorization": "Bearer " + TOKEN})
            self.assertEqual(st, 200)
            st, _, _ = d.request("GET", "/v2/health/ready")  # inference needs no token
            self.assertEqual(st, 200)
        finally:
            self.assertEqual(d.stop(), 0)
            shutil.rmtree(root, ignore_errors=True)


class GrpcRepositoryTest(unittest.TestCase):
    """gRPC's repository load and unload are admin calls: the token applies, and with
    --admin-listen they are not served on the gRPC listener at all."""

    def start(self, args):
        import grpc
        import mggrpc
        root, repo = mgtest.make_repo(with_test_models=False)
        self.addCleanup(shutil.rmtree, root, True)
        d = Daemon(repo, args=["--grpc-listen", "127.0.0.1:0", *args(root)])
        self.addCleanup(lambda: self.assertEqual(d.stop(), 0))
        ch = mggrpc.channel(d.grpc_port)
        self.addCleanup(ch.close)
        pb, pbg = mggrpc.stubs()
        return grpc, pb, pbg.GRPCInferenceServiceStub(ch)

    def load(self, grpc, pb, stub, metadata=None):
        try:
            stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="digits"), timeout=60,
                                     metadata=metadata)
            return grpc.StatusCode.OK, ""
        except grpc.RpcError as e:
            return e.code(), e.details()

    def test_token_on_grpc_repository_calls(self):
        grpc, pb, stub = self.start(lambda root: ["--admin-token-file", write_token(root)])
        code, msg = self.load(grpc, pb, stub)
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED, msg)
        self.assertIn("authorization: Bearer", msg)
        self.assertEqual(self.load(grpc, pb, stub, [("authorization", "Bearer nope")])[0],
                         grpc.StatusCode.PERMISSION_DENIED)
        self.assertEqual(self.load(grpc, pb, stub, [("authorization", "Bearer " + TOKEN)])[0], grpc.StatusCode.OK)

    def test_admin_listener_takes_grpc_repository_calls_away(self):
        grpc, pb, stub = self.start(lambda root: ["--admin-listen", "127.0.0.1:0"])
        code, msg = self.load(grpc, pb, stub)
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED, msg)
        self.assertIn("--admin-listen", msg)

    def test_grpc_beyond_loopback_without_a_token_is_refused(self):
        root, repo = mgtest.make_repo(with_test_models=False)
        self.addCleanup(shutil.rmtree, root, True)
        code, err = run_serve(repo, "--listen", "127.0.0.1:0", "--grpc-listen", "0.0.0.0:18998")
        self.assertEqual(code, 2, err)
        self.assertIn("reachable on 0.0.0.0:18998 without a token", err)


class SystemdUnitTest(unittest.TestCase):
    UNIT = os.path.join(mgtest.SOURCE_DIR, "dist", "modelgate.service")

    def test_unit_has_the_hardening_options(self):
        with open(self.UNIT) as f:
            text = f.read()
        for key in ["DynamicUser=yes", "ProtectSystem=strict", "ReadOnlyPaths=", "NoNewPrivileges=yes",
                    "SystemCallFilter=@system-service", "MemoryMax=", "CapabilityBoundingSet=",
                    "--admin-token-file %d/admin-token", "--admin-listen 127.0.0.1:"]:
            self.assertIn(key, text)

    def test_systemd_analyze_verify(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is not installed (no systemd here): dist/modelgate.service "
                          "is not verified")
        tmp = tempfile.mkdtemp(prefix="mg-unit-")
        try:
            # The unit as installed, but naming the binary just built (verify checks it exists).
            unit = os.path.join(tmp, "modelgate.service")
            with open(self.UNIT) as src, open(unit, "w") as f:
                f.write(src.read().replace("/usr/local/bin/modelgate", os.path.abspath(mgtest.MG_BIN)))
            p = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stderr.strip(), "", "systemd-analyze verify complained:\n" + p.stderr)
            p = subprocess.run(["systemd-analyze", "security", "--offline=true", unit], capture_output=True,
                               text=True, timeout=120)
            m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout)
            self.assertIsNotNone(m, p.stdout + p.stderr)
            self.assertLessEqual(float(m.group(1)), 2.0, p.stdout)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
