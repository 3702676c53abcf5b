"""A fleet for integration tests and the bench: N real modelgate instances configured through one
real etcd, each with its own state dir, and samplers that send real inference requests."""
import http.client
import json
import os
import shutil
import subprocess
import threading
import time
import uuid

import mgtest
from mgtest import Daemon, MG_BIN

SAMPLE = mgtest.digits_sample()
BODY = json.dumps(SAMPLE).encode()


def with_twin(repo):
    """A second model with the same two versions as digits, for multi-key changes."""
    shutil.copytree(os.path.join(repo, "digits"), os.path.join(repo, "twin"))
    path = os.path.join(repo, "twin", "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["name"] = "twin"
    with open(path, "w") as f:
        json.dump(cfg, f)


def wait_until(fn, timeout=20, step=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(step)
    raise AssertionError("timed out after %.1f s waiting for %s (last: %r)" % (timeout, what, last))


def split(v1, v2):
    """A policy that sends everything to one version: deterministic to observe."""
    return {"weights": {"1": v1, "2": v2}, "stable": "1"}


class Fleet:
    def __init__(self, etcd, root, repo, n=3, extra_args=()):
        self.etcd = etcd
        self.root = root
        self.repo = repo
        self.prefix = "/mgtest/" + uuid.uuid4().hex[:8]
        self.extra_args = list(extra_args)
        self.nodes = [None] * n
        for i in range(n):
            self.start(i)

    def args(self, i):
        return ["--etcd", self.etcd.url, "--etcd-prefix", self.prefix, "--state-dir",
                os.path.join(self.root, "state%d" % i), "--instance-id", "node%d" % i,
                "--etcd-lease-ttl", "3", "--etcd-watch-check-ms", "1000", *self.extra_args]

    def start(self, i):
        self.nodes[i] = Daemon(self.repo, args=self.args(i))
        return self.nodes[i]

    def stop(self, i):
        code = self.nodes[i].stop()
        return code

    def close(self):
        codes = []
        for d in self.nodes:
            if d is not None:
                codes.append(d.stop())
        return codes

    def key(self, suffix):
        return self.prefix + suffix

    def ctl(self, *args, timeout=60):
        p = subprocess.run([MG_BIN, "ctl", "--etcd", self.etcd.url, "--etcd-prefix", self.prefix, *args],
                           capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def status(self, i):
        """The instance's readiness body: its "config" says where its routing stands."""
        s, b = self.nodes[i].json("GET", "/v2/health/ready")
        return b

    def wait_applied(self, revision, nodes=None, timeout=20):
        """Waits until every node (or those listed) applied a configuration >= revision."""
        for i in nodes if nodes is not None else range(len(self.nodes)):
            wait_until(lambda: self.status(i)["config"]["revision"] >= revision, timeout,
                       what="node%d to apply revision %d" % (i, revision))

    def wait_seen(self, revision, nodes=None, timeout=20):
        for i in nodes if nodes is not None else range(len(self.nodes)):
            wait_until(lambda: self.status(i)["config"]["seen_revision"] >= revision, timeout,
                       what="node%d to see revision %d" % (i, revision))


class Sampler(threading.Thread):
    """Sends inference requests to one instance as fast as it can, over one keep-alive
    connection, recording (time, model, status, version served, config revision) for each.
    `models` are taken in turn."""

    def __init__(self, port, models=("digits",), headers=None):
        super().__init__(daemon=True)
        self.port = port
        self.models = models
        self.headers = dict(headers or {})
        self.headers["X-Route-Explain"] = "1"
        self.samples = []
        self.errors = []
        self.running = True
        self.paused = threading.Event()
        self.paused.set()

    def run(self):
        conn = None
        k = 0
        while self.running:
            if not self.paused.is_set():
                if conn is not None:
                    conn.close()
                    conn = None
                time.sleep(0.005)
                continue
            model = self.models[k % len(self.models)]
            k += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("POST", "/v2/models/%s/infer" % model, body=BODY, headers=self.headers)
                r = conn.getresponse()
                r.read()
                t = time.monotonic()
                explain = r.getheader("x-route-explain", "")
                rev = 0
                for part in explain.split():
                    if part.startswith("config-revision="):
                        rev = int(part.split("=", 1)[1])
                self.samples.append((t, model, r.status, r.getheader("x-model-version"), rev))
                if r.status != 200:
                    self.errors.append((t, model, r.status))
                # About 2,000 requests a second at most: dense enough to catch a mixed snapshot,
                # light enough for the tests running beside this one on two cores.
                time.sleep(0.0003)
            except (OSError, http.client.HTTPException) as e:
                self.errors.append((time.monotonic(), model, repr(e)))
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.01)
        if conn is not None:
            conn.close()

    def pause(self):
        self.paused.clear()
        time.sleep(0.05)

    def resume(self, port=None):
        if port is not None:
            self.port = port
        self.paused.set()

    def stop(self):
        self.running = False
        self.join(10)

    def first(self, after, pred):
        """The time of the first sample after `after` that satisfies pred, or None."""
        for s in list(self.samples):
            if s[0] >= after and pred(s):
                return s[0]
        return None


def measure_change(fleet, samplers, version, model="digits", timeout=10):
    """Writes a 100 % split to `version` with ctl --etcd and returns, per instance, the ms from
    the write's answer (the moment ctl prints it) to the first request that instance routed to
    `version` (0 when an instance already did before ctl's line arrived). The instances must
    serve the other version before."""
    other = "1" if version == "2" else "2"
    t_start = time.monotonic()
    p = subprocess.Popen([MG_BIN, "ctl", "--etcd", fleet.etcd.url, "--etcd-prefix", fleet.prefix,
                          "traffic", model, "%s=100" % version, "%s=0" % other, "--stable", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    t0 = time.monotonic()
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0 and "revision" in line, (line, out, err)
    result = []
    for s in samplers:
        t = wait_until(lambda: s.first(t_start, lambda x: x[1] == model and x[3] == version),
                       timeout, step=0.005, what="an instance to serve version %s" % version)
        result.append(max(0.0, (t - t0) * 1000))
    return result
