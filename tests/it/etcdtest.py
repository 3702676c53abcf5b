"""A real etcd server for integration tests (Debian's etcd-server): loopback, free ports, a
temporary data dir, stopped by the harness (also on failure). Plus a small v3 JSON gateway
client, so tests write and read keys exactly as any etcd client would."""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ETCD_BIN = shutil.which("etcd") or "/usr/bin/etcd"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def unb64(s):
    return base64.b64decode(s).decode()


def prefix_end(prefix):
    b = prefix.encode()
    return b[:-1] + bytes([b[-1] + 1])


class Etcd:
    """One etcd member. start() / stop() / pause() / resume() keep ports and data."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mg-etcd-")
        self.client_port = free_port()
        self.peer_port = free_port()
        self.url = "http://127.0.0.1:%d" % self.client_port
        self.proc = None
        self.log = open(os.path.join(self.dir, "etcd.log"), "ab")
        self.start()

    def start(self, timeout=30):
        peer = "http://127.0.0.1:%d" % self.peer_port
        self.proc = subprocess.Popen(
            [ETCD_BIN, "--name", "mgtest", "--data-dir", os.path.join(self.dir, "data"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", "mgtest=" + peer, "--log-level", "warn"],
            stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("etcd exited with %s; see %s" % (self.proc.returncode, self.dir))
            try:
                self.call("/v3/kv/range", {"key": b64("/")}, timeout=1)
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.05)
        raise RuntimeError("etcd did not answer on %s" % self.url)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self):
        self.stop()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- the v3 JSON gateway ----

    def call(self, path, body, timeout=10):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def put(self, key, value):
        """Puts one key; returns the store revision after it."""
        if not isinstance(value, str):
            value = json.dumps(value)
        r = self.call("/v3/kv/put", {"key": b64(key), "value": b64(value)})
        return int(r["header"]["revision"])

    def txn(self, puts):
        """Puts every (key, value) in ONE transaction; returns its revision."""
        ops = [{"request_put": {"key": b64(k), "value": b64(v if isinstance(v, str) else json.dumps(v))}}
               for k, v in puts]
        r = self.call("/v3/kv/txn", {"compare": [], "success": ops})
        assert r.get("succeeded"), r
        return int(r["header"]["revision"])

    def delete(self, key):
        return int(self.call("/v3/kv/deleterange", {"key": b64(key)})["header"]["revision"])

    def get_prefix(self, prefix):
        """{key: (value, mod_revision)} of every key under the prefix, and the store revision."""
        r = self.call("/v3/kv/range", {"key": b64(prefix), "range_end": b64(prefix_end(prefix))})
        kvs = {unb64(kv["key"]): (unb64(kv.get("value", "")), int(kv["mod_revision"])) for kv in r.get("kvs", [])}
        return kvs, int(r["header"]["revision"])

    def revision(self):
        return int(self.call("/v3/kv/range", {"key": b64("/")})["header"]["revision"])

    def compact(self, revision):
        self.call("/v3/kv/compaction", {"revision": str(revision), "physical": True})
