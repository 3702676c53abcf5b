#!/usr/bin/python3
"""Zero-downtime swaps under load: modelgate in poll mode serving digits (`latest 1`), wrk
driving KServe JSON inference, and N new versions moved into the repository one after another
(each a complete folder renamed into place). Prints one JSON line with the figures.

Usage: bench/swap.py --modelgate BIN [--swaps 20] [--steady-secs 10] [--interval 1.0]
                     [--threads 2] [--connections 32] [--daemon-threads 2]
                     [--daemon-args "FLAGS"] [--out DIR] [--strict]

Phases, in one invocation on one daemon:
  steady   wrk for --steady-secs with no change: the steady p99 (skipped with 0)
  swaps    wrk for as long as the swaps take; version k+1 is renamed in, the script waits until
           the default version is k+1 (the watcher saw it settle, the sandbox validated it, it
           was built, warmed up and published), keeps the load on for --interval, and removes
           the folder of version k-1 (which drains and leaves)
Bars (checked with --strict, exit 1 when missed): 0 failed requests (non-2xx or socket
errors), at least 50,000 requests during the swaps, p99 during the swaps <= 2x steady p99.
Without --strict only failures fail (what `make test` runs, with a few swaps).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "it"))
import mgtest  # noqa: E402  (the daemon helper the integration tests use)


def parse_wrk(text):
    """requests, failures, p50/p99 (ms) from `wrk --latency` output with bench/digits.lua."""
    def ms(v, unit):
        return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    out = {"requests": 0, "failed": 0, "p50_ms": None, "p99_ms": None}
    m = re.search(r"(\d+) requests in", text)
    if m:
        out["requests"] = int(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+([\d.]+)(us|ms|s)\s*$" % pct, text, re.M)
        if m:
            out[key] = ms(m.group(1), m.group(2))
    m = re.search(r"non-200 responses: (\d+)", text)
    failed = int(m.group(1)) if m else 0
    m = re.search(r"socket errors: connect (\d+) read (\d+) write (\d+) timeout (\d+)", text)
    if m:
        failed += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        failed = max(failed, int(m.group(1)))
    out["failed"] = failed
    return out


def start_daemon(binary, repo, threads, extra):
    """modelgate in poll mode on a free port (tests/it/mgtest.py's Daemon: the same start-up)."""
    mgtest.MG_BIN = binary
    return mgtest.Daemon(repo, args=["--threads", str(threads), "--model-control-mode", "poll",
                                     "--repository-poll-secs", "5", *extra])


def ready_version(d):
    """The default version the daemon serves now, or None."""
    s, _, body = d.request("GET", "/v2/models/digits/ready")
    return json.loads(body).get("version") if s == 200 else None


def wrk(port, secs, threads, conns, out_path):
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % max(1, int(round(secs))), "--latency",
           "-s", os.path.join(ROOT, "bench", "digits.lua"), "http://127.0.0.1:%d" % port, "--",
           os.path.join(ROOT, "models", "digits", "sample.json")]
    return subprocess.Popen(cmd, stdout=open(out_path, "w"), stderr=subprocess.STDOUT, cwd=ROOT)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--modelgate", required=True)
    ap.add_argument("--swaps", type=int, default=20)
    ap.add_argument("--steady-secs", type=float, default=10)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--daemon-threads", type=int, default=2)
    ap.add_argument("--daemon-args", default="", help="more `modelgate serve` flags, space-separated")
    ap.add_argument("--out", default=None)
    ap.add_argument("--strict", action="store_true")
    a = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("swap: wrk is missing (scripts/setup.sh installs it)")

    tmp = tempfile.mkdtemp(prefix="mg-swap-")
    out = a.out or tmp
    os.makedirs(out, exist_ok=True)
    repo = os.path.join(tmp, "repo")
    model = os.path.join(repo, "digits")
    src = os.path.join(ROOT, "models", "digits")
    os.makedirs(model)
    shutil.copytree(os.path.join(src, "1"), os.path.join(model, "1"))
    with open(os.path.join(model, "config.json"), "w") as f:
        json.dump({"max_batch_size": 64, "version_policy": {"latest": {"num_versions": 1}},
                   "warmup": {"runs": 2}}, f)
    d = start_daemon(a.modelgate, repo, a.daemon_threads, a.daemon_args.split())
    result = {"swaps": a.swaps, "swaps_live": 0}
    try:
        if a.steady_secs > 0:
            p = wrk(d.port, a.steady_secs, a.threads, a.connections, os.path.join(out, "swap-steady.txt"))
            p.wait()
            steady = parse_wrk(open(os.path.join(out, "swap-steady.txt")).read())
            result["steady"] = steady

        # The swap phase: wrk runs for an estimate of how long the swaps take; if they take
        # longer, a second wrk run covers the rest (both are counted).
        swap_secs = a.swaps * (a.interval + 1.5) + 2
        runs = []
        runs.append(wrk(d.port, swap_secs, a.threads, a.connections, os.path.join(out, "swap-swaps-0.txt")))
        t_start = time.monotonic()
        time.sleep(0.5)
        swap_times = []
        for k in range(2, a.swaps + 2):
            staged = os.path.join(model, ".incoming-%d" % k)
            shutil.copytree(os.path.join(src, "2" if k % 2 == 0 else "1"), staged)
            t0 = time.monotonic()
            os.rename(staged, os.path.join(model, str(k)))
            deadline = t0 + 120
            while time.monotonic() < deadline and ready_version(d) != str(k):
                time.sleep(0.02)
            if ready_version(d) != str(k):
                raise SystemExit("swap: version %d did not go live:\n%s" % (k, "".join(d.log[-20:])))
            swap_times.append(time.monotonic() - t0)
            result["swaps_live"] += 1
            time.sleep(a.interval)
            old = os.path.join(model, str(k - 2))
            if k - 2 >= 1 and os.path.isdir(old):
                shutil.rmtree(old)
            if runs[-1].poll() is not None and k < a.swaps + 1:
                n = len(runs)
                runs.append(wrk(d.port, (a.swaps + 1 - k) * (a.interval + 1.5) + 2, a.threads,
                                a.connections, os.path.join(out, "swap-swaps-%d.txt" % n)))
        result["swap_phase_secs"] = round(time.monotonic() - t_start, 2)
        for p in runs:
            p.wait()
        parts = [parse_wrk(open(os.path.join(out, "swap-swaps-%d.txt" % i)).read()) for i in range(len(runs))]
        result["during"] = {
            "requests": sum(x["requests"] for x in parts),
            "failed": sum(x["failed"] for x in parts),
            "p50_ms": max(x["p50_ms"] or 0 for x in parts),
            "p99_ms": max(x["p99_ms"] or 0 for x in parts),
        }
        result["go_live_secs"] = {"min": round(min(swap_times), 2), "max": round(max(swap_times), 2),
                                  "mean": round(sum(swap_times) / len(swap_times), 2)}
    finally:
        code = d.stop()
        with open(os.path.join(out, "swap-daemon.log"), "w") as f:
            f.write("".join(d.log))
        result["exit_code"] = code
        if a.out is None:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            shutil.rmtree(repo, ignore_errors=True)

    bars = {"no_failures": result["during"]["failed"] == 0 and result.get("steady", {}).get("failed", 0) == 0}
    if "steady" in result and result["steady"]["p99_ms"]:
        result["p99_ratio"] = round(result["during"]["p99_ms"] / result["steady"]["p99_ms"], 2)
        bars["p99_within_2x"] = result["p99_ratio"] <= 2.0
    bars["at_least_50000"] = result["during"]["requests"] >= 50000
    result["bars"] = bars
    print(json.dumps(result))
    ok = bars["no_failures"] and result["swaps_live"] == a.swaps and code == 0
    if a.strict:
        ok = ok and all(bars.values())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
