"""Helpers for integration tests: a real modelgate daemon on an ephemeral loopback port."""
import http.client
import json
import mmap
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

SOURCE_DIR = os.environ.get("MG_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.environ.get("MG_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
MG_BIN = os.environ.get("MG_BIN", os.path.join(BUILD_DIR, "modelgate"))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def read_json(path):
    """The JSON document in the file at `path` (the file is closed before this returns)."""
    with open(path) as f:
        return json.load(f)


def write_json(path, doc):
    """Writes `doc` as the file at `path`, closed (so flushed) before a daemon reads it."""
    with open(path, "w") as f:
        json.dump(doc, f)


def digits_sample():
    """The demo digits model's sample request (models/digits/sample.json), a fresh copy."""
    return read_json(os.path.join(SOURCE_DIR, "models", "digits", "sample.json"))


def make_repo(with_test_models=True, extra=None):
    """Builds a temporary model repository: the demo digits model plus test models."""
    root = tempfile.mkdtemp(prefix="mg-it-")
    repo = os.path.join(root, "repo")
    shutil.copytree(os.path.join(SOURCE_DIR, "models", "digits"), os.path.join(repo, "digits"))
    if with_test_models:
        gen = os.path.join(root, "gen")
        subprocess.run([PYTHON, os.path.join(SOURCE_DIR, "scripts", "gen_test_models.py"), gen], check=True,
                       stdout=subprocess.DEVNULL)
        for f in sorted(os.listdir(gen)):
            m = re.match(r"identity_(\w+)\.onnx$", f)
            if m:
                d = os.path.join(repo, "id_" + m.group(1).lower(), "1")
                os.makedirs(d)
                shutil.copy(os.path.join(gen, f), os.path.join(d, "model.onnx"))
        d = os.path.join(repo, "addsub", "1")
        os.makedirs(d)
        shutil.copy(os.path.join(gen, "add_fp32.onnx"), os.path.join(d, "model.onnx"))
        # A model whose file is not ONNX: it must be reported and must not stop the others.
        d = os.path.join(repo, "broken", "1")
        os.makedirs(d)
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(b"this is not an onnx model")
        # A model with an invalid config.json.
        d = os.path.join(repo, "badconfig", "1")
        os.makedirs(d)
        shutil.copy(os.path.join(gen, "add_fp32.onnx"), os.path.join(d, "model.onnx"))
        with open(os.path.join(repo, "badconfig", "config.json"), "w") as f:
            f.write('{"max_batch_size": "many"}')
    if extra:
        extra(repo)
    return root, repo


class Daemon:
    """Starts `modelgate serve` on 127.0.0.1:0 and waits until it has loaded the repository."""

    def __init__(self, repo, args=(), ready_timeout=120, wrapper=()):
        """`wrapper` is a command the daemon runs under (valgrind ...)."""
        self.repo = repo
        env = dict(os.environ)
        # Under ASan the daemon is checked for memory errors but not for leaks at exit: h2o 2.2
        # has no way to free an event loop, so what its loops hold is still allocated then.
        # The modules' own leak checks run in the unit tests.
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        self.proc = subprocess.Popen([*wrapper, MG_BIN, "serve", "--repo", repo, "--listen", "127.0.0.1:0", "--threads", "2",
                                      "--ort-threads", "1", *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        self.log = []
        self.port = None
        self.grpc_port = None  # with --grpc-listen: the bound gRPC port
        self.metrics_port = None
        self.admin_port = None
        ready = threading.Event()

        def pump():
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"\bmetrics addr=[^ \"]*:(\d+)", line)
                if m:
                    self.metrics_port = int(m.group(1))
                # Text ("main: ready addr=127.0.0.1:PORT") or JSON log lines.
                m = re.search(r"\bready addr=[^ \"]*:(\d+)", line)
                if m:
                    a = re.search(r"\badmin_addr=[^ \"]*:(\d+)", line)
                    self.admin_port = int(a.group(1)) if a else None
                    self.port = int(m.group(1))
                    g = re.search(r"\bgrpc_addr=[^ \"]*:(\d+)", line)
                    self.grpc_port = int(g.group(1)) if g else None
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=pump, daemon=True)
        self.reader.start()
        if not ready.wait(ready_timeout) or self.port is None:
            self.stop()
            raise RuntimeError("modelgate did not become ready:\n" + "".join(self.log))

    def wait_log(self, text, timeout=10):
        """True once a log line containing `text` was read (the log is read by another thread)."""
        deadline = time.monotonic() + timeout
        while True:
            if any(text in line for line in list(self.log)):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def request(self, method, path, body=None, headers=None, timeout=30, port=None):
        """Sends one request on a new connection; returns (status, headers dict, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            elif isinstance(body, str):
                body = body.encode()
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def json(self, method, path, body=None, headers=None, port=None):
        status, hdrs, data = self.request(method, path, body, headers, port=port)
        return status, json.loads(data) if data else None

    def rss_kib(self):
        """The daemon's resident set size in KiB (Linux)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, timeout=60):
        """Stops the daemon with SIGTERM and returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(10)
        if not self.reader.is_alive():  # it read the log to its end: the pipe is done with
            self.proc.stderr.close()
        return self.proc.returncode


class RawConn:
    """A raw client connection that reads responses one at a time, pipelined ones included."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            chunk = b""
        self.buf += chunk
        return bool(chunk)

    def response(self, timeout=20):
        """(status, {lower-case header: value}, body), or (None, {}, b"") when the connection
        ends without one."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(timeout):
                return None, {}, self.buf
        head, rest = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        hdrs = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        self.buf = rest
        while len(self.buf) < n and self._fill(timeout):
            pass
        body, self.buf = self.buf[:n], self.buf[n:]
        return int(lines[0].split(" ")[1]), hdrs, body

    def close(self):
        self.sock.close()


def open_shm(tag, size=4096):
    """A /dev/shm region of `size` bytes for the shared-memory tests: (key, fd, mmap of it);
    close_shm ends it."""
    key = "/mg-it-%s%d" % (tag, os.getpid())
    fd = os.open("/dev/shm" + key, os.O_CREAT | os.O_RDWR, 0o600)
    os.ftruncate(fd, size)
    return key, fd, mmap.mmap(fd, size)


def close_shm(key, fd, mem):
    mem.close()
    os.close(fd)
    os.unlink("/dev/shm" + key)


def stop_and_clean(d, root):
    """Stops daemon `d`, removes the test's temporary `root`, and fails unless `d` exited 0."""
    code = d.stop()
    shutil.rmtree(root, ignore_errors=True)
    assert code == 0, "modelgate exited with %s:\n%s" % (code, "".join(d.log))


def binary_request(inputs, outputs=None, binary_output=None, request_id=None):
    """Encodes a KServe v2 binary-extension request. inputs: [(name, datatype, shape, raw bytes)]."""
    header = {"inputs": []}
    if request_id is not None:
        header["id"] = request_id
    for name, dt, shape, raw in inputs:
        header["inputs"].append({"name": name, "datatype": dt, "shape": shape,
                                 "parameters": {"binary_data_size": len(raw)}})
    if outputs is not None:
        header["outputs"] = outputs
    if binary_output is not None:
        header["parameters"] = {"binary_data_output": binary_output}
    js = json.dumps(header).encode()
    return js + b"".join(raw for _, _, _, raw in inputs), len(js)


def split_binary_response(hdrs, data):
    """Splits a binary-extension response into (json header, {output name: raw bytes})."""
    n = int(hdrs.get("inference-header-content-length", len(data)))
    header = json.loads(data[:n])
    off = n
    raws = {}
    for o in header["outputs"]:
        size = o.get("parameters", {}).get("binary_data_size")
        if size is not None:
            raws[o["name"]] = data[off:off + size]
            off += size
    assert off == len(data), (off, len(data))
    return header, raws


def pack_bytes_elements(items):
    return b"".join(struct.pack("<I", len(x)) + x for x in items)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (for servers that need one given)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_prom(text):
    """Prometheus text exposition -> {(name, frozenset(labels.items())): float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, "bad exposition line: %r" % line
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out


def prom_value(samples, name, **labels):
    """The value of the one sample of `name` with exactly these labels (0 when absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def split_traffic(d, weights, stable, n, body):
    """Sets digits' admin policy to `weights` (version -> weight) with `stable`, sends `n`
    /v2/models/digits/infer requests of `body`, and returns how many each version served."""
    status, _ = d.json("PUT", "/v2/admin/models/digits/traffic", {"weights": weights, "stable": stable})
    assert status == 200, status
    served = {v: 0 for v in weights}
    for _ in range(n):
        status, hdrs, data = d.request("POST", "/v2/models/digits/infer", body)
        assert status == 200, data
        served[hdrs["x-model-version"]] += 1
    return served
