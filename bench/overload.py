#!/usr/bin/python3
"""Overload benchmark: a slow model on the execution pool, driven open-loop at 4x the rate it
can serve. Prints, in one run:

  unloaded       p50/p99 of requests sent one at a time (the baseline)
  sustainable    requests/s the pool completes with every thread busy (closed loop)
  overload       4x that rate, open loop (arrivals on a fixed schedule, whatever the answers):
                 accepted (200) p50/p99 and their ratio to the unloaded p99 (target <= 2x),
                 refused (503 with Retry-After) p50/p99/max (target p99 <= 1 ms), other statuses
  memory         the daemon's RSS before and after the overload phase (target: flat, < 16 MiB)
  server side    the 503s' latency as the daemon's access log records it (from the first byte
                 of the request read by its loop to the answer handed to the socket): the
                 server's own share of a refusal, without the client's and the kernel's
  floor          GET /v2/health/live probes sent during the overload phase: what any answer
                 costs on this machine at that moment (the client's and the kernel's share of
                 the 503s' latency; on a loaded machine their tails are scheduling, not shedding)

Usage: bench/overload.py --bin BUILD/modelgate [--seconds 10] [--rows N] [--exec-threads 1]
Exits 1 when a target is missed and --strict is given. The load generator runs on the same
machine: on a 2-core box it competes with the model for CPU, so read the figures as ratios.
"""
import argparse
import asyncio
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "it"))
import mgtest  # noqa: E402  (the daemon helper the integration tests use)
PY = "/usr/bin/python3"


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def request_bytes(rows, port):
    header = {"inputs": [{"name": "x", "shape": [rows, 512], "datatype": "FP32",
                          "parameters": {"binary_data_size": rows * 512 * 4}}],
              "outputs": [{"name": "y", "parameters": {"binary_data": True}}]}
    js = json.dumps(header, separators=(",", ":")).encode()
    body = js + struct.pack("<f", 0.01) * (rows * 512)
    head = ("POST /v2/models/slow/infer HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %d\r\n"
            "Inference-Header-Content-Length: %d\r\n\r\n" % (port, len(body), len(js))).encode()
    return head + body


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?i)content-length: *(\d+)", head)
    body = await reader.readexactly(int(m.group(1)) if m else 0)
    retry = re.search(rb"(?i)retry-after: *(\d+)", head) is not None
    return status, retry, body


class Client:
    """Keep-alive connections, each used by one request at a time."""

    def __init__(self, port, req):
        self.port, self.req, self.idle = port, req, []

    async def one(self):
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        t0 = time.perf_counter()
        writer.write(self.req)
        await writer.drain()
        status, retry, _ = await read_response(reader)
        dt = time.perf_counter() - t0
        self.idle.append((reader, writer))
        return status, retry, dt


async def sequential(client, n):
    out = []
    for _ in range(n):
        out.append(await client.one())
    return out


async def closed_loop(client, conc, seconds):
    stop = time.perf_counter() + seconds
    done = []

    async def worker():
        while time.perf_counter() < stop:
            done.append(await client.one())
    await asyncio.gather(*[worker() for _ in range(conc)])
    return done


async def open_loop(client, rate, seconds, probe=None):
    results, tasks, probes = [], [], []

    async def probing():
        while time.perf_counter() < start + seconds:
            probes.append(await probe.one())
            await asyncio.sleep(0.02)
    start = time.perf_counter()
    if probe is not None:
        tasks.append(asyncio.ensure_future(probing()))
    n = int(rate * seconds)
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)

        async def go():
            results.append(await client.one())
        tasks.append(asyncio.ensure_future(go()))
    await asyncio.gather(*tasks)
    return results, time.perf_counter() - start, [dt for _, _, dt in probes]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rows", type=int, default=0, help="rows per request (0: about 10 ms of Run)")
    ap.add_argument("--exec-threads", type=int, default=1)
    ap.add_argument("--factor", type=float, default=4.0)
    ap.add_argument("--strict", action="store_true")
    args = ap.parse_args()

    root = tempfile.mkdtemp(prefix="mg-overload-")
    d = None
    try:
        gen = os.path.join(root, "gen")
        subprocess.run([PY, os.path.join(ROOT, "scripts", "gen_test_models.py"), gen], check=True,
                       stdout=subprocess.DEVNULL)
        os.makedirs(os.path.join(root, "repo", "slow", "1"))
        shutil.copy(os.path.join(gen, "slow_fp32.onnx"), os.path.join(root, "repo", "slow", "1", "model.onnx"))
        # No queueing: as many in flight as the pool runs at once, so accepted requests never wait.
        with open(os.path.join(root, "repo", "slow", "config.json"), "w") as f:
            json.dump({"execution": "pool", "max_inflight": args.exec_threads}, f)
        mgtest.MG_BIN = args.bin
        access = os.path.join(root, "access.log")
        d = mgtest.Daemon(os.path.join(root, "repo"), args=["--threads", "1", "--ort-threads", "1",
                                                            "--exec-threads", str(args.exec_threads),
                                                            "--access-log", access])
        proc, port = d.proc, d.port

        async def run():
            rows = args.rows
            if rows == 0:  # calibrate to about 10 ms a Run
                rows = 8
                while True:
                    c = Client(port, request_bytes(rows, port))
                    r = await sequential(c, 5)
                    if min(x[2] for x in r) >= 0.010 or rows >= 4096:
                        break
                    rows *= 2
            client = Client(port, request_bytes(rows, port))
            await sequential(client, 10)  # warm-up
            base = [x[2] for x in await sequential(client, 200)]
            sus = await closed_loop(client, args.exec_threads, 5)
            ok = [x for x in sus if x[0] == 200]
            sustainable = len(ok) / 5.0
            rate = args.factor * sustainable
            rss0 = rss_kib(proc.pid)
            probe = Client(port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            res, took, floor = await open_loop(client, rate, args.seconds, probe)
            rss1 = rss_kib(proc.pid)
            return rows, base, sustainable, rate, res, took, rss0, rss1, floor

        rows, base, sustainable, rate, res, took, rss0, rss1, floor = asyncio.run(run())
        acc = [dt for st, _, dt in res if st == 200]
        ref = [dt for st, retry, dt in res if st == 503 and retry]
        other = [st for st, retry, _ in res if st != 200 and not (st == 503 and retry)]
        base_p99 = pct(base, 99)
        ratio = pct(acc, 99) / base_p99 if acc else float("nan")
        ms = lambda s: "%.2f ms" % (s * 1000)
        print("overload benchmark: slow model (%d rows a request), --exec-threads %d, max_inflight %d" %
              (rows, args.exec_threads, args.exec_threads))
        print("  unloaded    : p50 %s  p99 %s (200 requests, one at a time)" % (ms(pct(base, 50)), ms(base_p99)))
        print("  sustainable : %.1f req/s (closed loop, %d in flight)" % (sustainable, args.exec_threads))
        print("  overload    : %.1f req/s offered (%.1fx) for %.1f s: %d requests, %d accepted, %d refused, %d other"
              % (rate, args.factor, took, len(res), len(acc), len(ref), len(other)))
        v1 = ratio <= 2.0
        v2 = pct(ref, 99) <= 0.001 if ref else False
        print("  accepted    : p50 %s  p99 %s = %.2fx the unloaded p99 (target <= 2x) %s"
              % (ms(pct(acc, 50)), ms(pct(acc, 99)), ratio, "PASS" if v1 else "MISS"))
        print("  refused 503 : p50 %s  p99 %s  max %s (target p99 <= 1 ms) %s"
              % (ms(pct(ref, 50)), ms(pct(ref, 99)), ms(max(ref) if ref else float("nan")), "PASS" if v2 else "MISS"))
        grown = rss1 - rss0
        v3 = grown < 16 * 1024
        print("  memory      : RSS %d KiB before, %d KiB after (%+d KiB; target < 16 MiB) %s"
              % (rss0, rss1, grown, "PASS" if v3 else "MISS"))
        d.stop()  # flushes the access log
        served = []
        with open(access) as f:
            for line in f:
                e = json.loads(line)
                if e.get("status") == 503 and e.get("path") == "/v2/models/slow/infer":
                    served.append(e["latency_ms"] / 1000.0)
        print("  server side : the 503s in the access log: p50 %s  p99 %s  max %s (%d)"
              % (ms(pct(served, 50)), ms(pct(served, 99)), ms(max(served) if served else float("nan")),
                 len(served)))
        print("  floor       : health probes during the overload: p50 %s  p99 %s (%d probes)"
              % (ms(pct(floor, 50)), ms(pct(floor, 99)), len(floor)))
        if other:
            print("  other statuses: %s" % sorted(set(other)))
        if args.strict and not (v1 and v2 and v3 and not other):
            sys.exit(1)
    finally:
        if d is not None:
            d.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
