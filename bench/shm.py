#!/usr/bin/python3
"""System shared memory against the binary extension on the benchmark CNN, in one run, and the
region register / use / unregister soak. Prints one JSON line with the figures.

Usage: bench/shm.py --modelgate BIN --repo DIR [--secs 10] [--clients 4] [--rounds 3]
                    [--cycles 10000] [--daemon-threads 2] [--strict]

  binary   --clients keep-alive connections POST the CNN input ([1,3,224,224] FP32, every
           element 0.5) in the binary extension and ask for the output binary
  shm      the same clients name a registered region (one per client) for the input and the
           output instead; the bytes stay in /dev/shm
  The two alternate --rounds times (--secs each); items/s is the median per mode.
  soak     --cycles times on one connection: register a region, infer through it, unregister.
           RSS, descriptors and mappings of the object are read after a tenth of the cycles
           and at the end.
Bars (--strict: exit 1 when missed): shm items/s >= binary items/s; over the soak, RSS grows
< 4 MiB, descriptors and mappings do not grow.
The clients are Python's http.client: both modes pay the same client cost.
"""
import argparse
import http.client
import json
import mmap
import os
import re
import statistics
import struct
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "it"))
import mgtest  # noqa: E402  (the daemon helper the integration tests use)

IN_BYTES = 3 * 224 * 224 * 4
OUT_BYTES = 4000  # [1,1000] FP32
REGION = 1 << 20


def binary_body():
    raw = struct.pack("<f", 0.5) * (IN_BYTES // 4)
    return mgtest.binary_request([("input", "FP32", [1, 3, 224, 224], raw)], binary_output=True)


def shm_body(name):
    return json.dumps({
        "inputs": [{"name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32", "parameters": {
            "shared_memory_region": name, "shared_memory_byte_size": IN_BYTES}}],
        "outputs": [{"name": "probabilities", "parameters": {
            "shared_memory_region": name, "shared_memory_offset": IN_BYTES,
            "shared_memory_byte_size": OUT_BYTES}}]}).encode()


def post(conn, path, body, headers=None):
    conn.request("POST", path, body, headers or {})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError("%s: %d %s" % (path, r.status, data[:300]))
    return data


def load(port, secs, clients, make):
    """`clients` threads each sending make(i) -> (body, headers) for `secs`; returns items/s."""
    stop = time.monotonic() + secs
    counts = [0] * clients
    errors = []

    def run(i):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body, headers = make(i)
        try:
            while time.monotonic() < stop:
                post(conn, "/v2/models/cnn/infer", body, headers)
                counts[i] += 1
        except Exception as e:  # reported below; the run fails
            errors.append(repr(e))
        finally:
            conn.close()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[0])
    return sum(counts) / (time.monotonic() - t0)


def proc_figures(pid, key):
    with open("/proc/%d/status" % pid) as f:
        rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().count(key)
    return {"rss_kb": rss, "fds": len(os.listdir("/proc/%d/fd" % pid)), "mappings": maps}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--modelgate", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--secs", type=float, default=10)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cycles", type=int, default=10000)
    ap.add_argument("--daemon-threads", type=int, default=2)
    ap.add_argument("--strict", action="store_true")
    a = ap.parse_args()

    mgtest.MG_BIN = a.modelgate
    d = mgtest.Daemon(a.repo, args=["--threads", str(a.daemon_threads)])
    keys, mems, fds = [], [], []
    try:
        for i in range(a.clients + 1):
            key = "/mg-bench-%d-%d" % (os.getpid(), i)
            fd = os.open("/dev/shm" + key, os.O_CREAT | os.O_RDWR, 0o600)
            os.ftruncate(fd, REGION)
            mem = mmap.mmap(fd, REGION)
            mem[0:IN_BYTES] = struct.pack("<f", 0.5) * (IN_BYTES // 4)
            keys.append(key)
            mems.append(mem)
            fds.append(fd)
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
        for i in range(a.clients):
            post(conn, "/v2/systemsharedmemory/region/r%d/register" % i,
                 json.dumps({"key": keys[i], "byte_size": REGION}))
        body, n = binary_body()
        bin_headers = {"Inference-Header-Content-Length": str(n)}
        # Smoke: both modes give the same 1000 scores.
        hdrs = {}
        conn.request("POST", "/v2/models/cnn/infer", body, bin_headers)
        r = conn.getresponse()
        data = r.read()
        _, raws = mgtest.split_binary_response({k.lower(): v for k, v in r.getheaders()}, data)
        post(conn, "/v2/models/cnn/infer", shm_body("r0"))
        if bytes(mems[0][IN_BYTES:IN_BYTES + OUT_BYTES]) != raws["probabilities"]:
            raise RuntimeError("shared-memory output differs from the binary one")
        load(d.port, 2, a.clients, lambda i: (body, bin_headers))  # warm-up
        runs = {"binary": [], "shm": []}
        for _ in range(a.rounds):
            runs["binary"].append(load(d.port, a.secs, a.clients, lambda i: (body, bin_headers)))
            runs["shm"].append(load(d.port, a.secs, a.clients, lambda i: (shm_body("r%d" % i), hdrs)))
        conn.close()  # idle through the load: the server may have closed it
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
        post(conn, "/v2/systemsharedmemory/unregister", b"")

        # Soak: register / use / unregister.
        soak_key = keys[a.clients]
        use = shm_body("soak")
        reg = json.dumps({"key": soak_key, "byte_size": REGION})
        marks = []
        t0 = time.monotonic()
        for i in range(a.cycles):
            post(conn, "/v2/systemsharedmemory/region/soak/register", reg)
            post(conn, "/v2/models/cnn/infer", use)
            post(conn, "/v2/systemsharedmemory/region/soak/unregister", b"")
            if i in (a.cycles // 10, a.cycles - 1):
                marks.append(proc_figures(d.proc.pid, soak_key))
        soak_secs = time.monotonic() - t0
        conn.close()
    except BaseException:
        sys.stderr.write("shm: the daemon (exit status %s) log ends:\n%s"
                         % (d.proc.poll(), "".join(list(d.log)[-20:])))
        raise
    finally:
        for m in mems:
            m.close()
        for fd in fds:
            os.close(fd)
        for k in keys:
            os.unlink("/dev/shm" + k)
        d.stop()
    med = {k: statistics.median(v) for k, v in runs.items()}
    first, last = marks[0], marks[-1]
    bars = {"shm_not_slower": med["shm"] >= med["binary"],
            "rss_flat": last["rss_kb"] - first["rss_kb"] < 4096,
            "fds_flat": last["fds"] <= first["fds"],
            "mappings_flat": last["mappings"] <= first["mappings"] == 0}
    out = {"binary_items_s": med["binary"], "shm_items_s": med["shm"],
           "ratio": med["shm"] / med["binary"] if med["binary"] else 0, "runs": runs,
           "cycles": a.cycles, "soak_secs": soak_secs, "soak": marks, "bars": bars}
    print(json.dumps(out))
    return 1 if a.strict and not all(bars.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
