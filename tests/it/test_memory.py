"""Memory that stays flat: 200 load/unload cycles of a model through the repository API (each a
full load: verify, sandbox, sessions, warm-up; each unload drains and frees), then the daemon's
RSS, threads and open descriptors against their values after a short warm-up. Prints the
figures; the RSS bar (<= 16 MiB growth) is checked on builds without a sanitizer (ASan keeps
freed memory in quarantine), threads and descriptors on every build. Sanitizer builds run 50
cycles (what they check, memory errors and leaked threads or descriptors, shows in any number;
200 cost a minute there)."""
import json
import os
import shutil
import time
import unittest

import mgtest
from mgtest import Daemon

SANITIZED = bool(os.environ.get("MG_SANITIZE"))
CYCLES = int(os.environ.get("MG_CYCLES", "50" if SANITIZED else "200"))


def figures(pid):
    with open("/proc/%d/status" % pid) as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    return {"rss_kib": rss, "threads": len(os.listdir("/proc/%d/task" % pid)),
            "fds": len(os.listdir("/proc/%d/fd" % pid))}


class MemoryTest(unittest.TestCase):
    def test_load_unload_cycles(self):
        root, repo = mgtest.make_repo(with_test_models=False)
        shutil.copytree(os.path.join(repo, "digits"), os.path.join(repo, "cyc"))
        with open(os.path.join(repo, "cyc", "config.json"), "w") as f:
            json.dump({"max_batch_size": 64, "version_policy": {"latest": {"num_versions": 1}},
                       "warmup": {"runs": 2}}, f)
        sample = mgtest.digits_sample()
        d = Daemon(repo)
        try:
            def cycle():
                s, b = d.json("POST", "/v2/repository/models/cyc/unload")
                self.assertEqual((s, b), (200, {}))
                s, b = d.json("POST", "/v2/repository/models/cyc/load")
                self.assertEqual((s, b), (200, {}))

            def settled():
                # Every retired version freed (nothing DRAINING), then a moment for the trim.
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    s, b = d.json("POST", "/v2/repository/index")
                    if not any(r.get("modelgate_state") == "DRAINING" for r in b):
                        break
                    time.sleep(0.05)
                time.sleep(0.3)
                return figures(d.proc.pid)

            for _ in range(20):  # warm: ORT's and glibc's one-time allocations
                cycle()
            start = settled()
            t0 = time.monotonic()
            for i in range(CYCLES):
                cycle()
                if i % 50 == 0:
                    s, b = d.json("POST", "/v2/models/cyc/infer", sample)
                    self.assertEqual(s, 200, b)
            took = time.monotonic() - t0
            end = settled()
            growth_mib = (end["rss_kib"] - start["rss_kib"]) / 1024.0
            print("\n  %d load/unload cycles in %.1f s (%.0f ms each): RSS %.1f -> %.1f MiB (%+.2f MiB), "
                  "threads %d -> %d, fds %d -> %d%s" %
                  (CYCLES, took, took * 1000 / CYCLES, start["rss_kib"] / 1024.0, end["rss_kib"] / 1024.0,
                   growth_mib, start["threads"], end["threads"], start["fds"], end["fds"],
                   " (sanitizer build: RSS not checked)" if SANITIZED else ""))
            self.assertEqual(end["threads"], start["threads"])
            self.assertEqual(end["fds"], start["fds"])
            if not SANITIZED:
                self.assertLessEqual(growth_mib, 16.0)
        finally:
            code = d.stop()
            shutil.rmtree(root, ignore_errors=True)
        self.assertEqual(code, 0, "".join(d.log[-20:]))


if __name__ == "__main__":
    unittest.main()
