"""The fleet benchmark (bench/run.sh part `fleet`): a real etcd and three modelgate instances on
loopback; CHANGES weight changes written with `modelgate ctl --etcd`, each timed from the write's
answer to the first request every instance routes by it (a sampler per instance sends real
inference requests over keep-alive connections). Prints the distribution and, last, one
machine-readable line:

  fleet: changes=20 samples=60 p50_ms=... p90_ms=... p99_ms=... max_ms=... within_250ms=60

Target: every instance within 250 ms of every change. Usage: fleet_bench.py BUILD_DIR [CHANGES]."""
import os
import shutil
import statistics
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "it"))
build = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, "build")
os.environ.setdefault("MG_BIN", os.path.join(build, "modelgate"))
os.environ.setdefault("MG_SOURCE_DIR", ROOT)
changes = int(sys.argv[2]) if len(sys.argv) > 2 else 20

import etcdtest  # noqa: E402
import fleettest  # noqa: E402
import mgtest  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    root, repo = mgtest.make_repo(with_test_models=False)
    etcd = etcdtest.Etcd()
    fleet = samplers = None
    try:
        fleet = fleettest.Fleet(etcd, root, repo)
        rev = etcd.put(fleet.key("/config/traffic/digits"), fleettest.split(100, 0))
        fleet.wait_applied(rev)
        samplers = [fleettest.Sampler(d.port) for d in fleet.nodes]
        for s in samplers:
            s.start()
        fleettest.wait_until(lambda: all(len(s.samples) > 20 for s in samplers), what="samplers")
        per_change = []
        for k in range(changes):
            ms = fleettest.measure_change(fleet, samplers, "2" if k % 2 == 0 else "1")
            per_change.append(ms)
            print("fleet: change %2d: %s ms" % (k + 1, " ".join("%6.1f" % x for x in ms)), flush=True)
            time.sleep(0.1)
        flat = [x for r in per_change for x in r]
        errors = sum(len(s.errors) for s in samplers)
        print("fleet: %d changes x %d instances; per instance, ms from the write's answer to the first "
              "request routed by it: min %.1f p50 %.1f p90 %.1f p99 %.1f max %.1f (mean %.1f); "
              "%d requests, %d failed" %
              (changes, len(fleet.nodes), min(flat), pct(flat, 50), pct(flat, 90), pct(flat, 99), max(flat),
               statistics.mean(flat), sum(len(s.samples) for s in samplers), errors))
        print("fleet: changes=%d samples=%d p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f max_ms=%.1f within_250ms=%d "
              "failed=%d" % (changes, len(flat), pct(flat, 50), pct(flat, 90), pct(flat, 99), max(flat),
                             sum(x <= 250 for x in flat), errors))
    finally:
        for s in samplers or []:
            s.stop()
        if fleet is not None:
            fleet.close()
        etcd.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
