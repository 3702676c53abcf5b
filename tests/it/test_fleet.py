"""Fleet configuration over a real etcd: three modelgate instances converge on every change
written with `ctl --etcd`, reject an invalid one whole, never serve half a transaction, re-read
after compaction, ride out etcd's loss (and restart from their state files), and report under
leases. Short versions of the bars; bench/fleet_bench.py prints the distributions."""
import json
import os
import shutil
import signal
import statistics
import subprocess
import time
import unittest

import etcdtest
import fleettest
import mgtest
from fleettest import Fleet, Sampler, split, wait_until


class FleetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(with_test_models=False, extra=fleettest.with_twin)
        cls.etcd = etcdtest.Etcd()
        try:
            cls.fleet = Fleet(cls.etcd, cls.root, cls.repo)
        except Exception:
            cls.etcd.close()
            raise

    @classmethod
    def tearDownClass(cls):
        codes = cls.fleet.close()
        cls.etcd.close()
        shutil.rmtree(cls.root, ignore_errors=True)
        assert all(c in (0, None) for c in codes), codes

    def setUp(self):
        if self.etcd.proc is None:
            self.etcd.start()

    def both(self, v1, v2):
        """Sets digits and twin to the same split in one transaction; waits for all three."""
        rev = self.etcd.txn([(self.fleet.key("/config/traffic/digits"), split(v1, v2)),
                             (self.fleet.key("/config/traffic/twin"), split(v1, v2))])
        self.fleet.wait_applied(rev)
        return rev

    def samplers(self, models=("digits",)):
        ss = [Sampler(d.port, models) for d in self.fleet.nodes]
        for s in ss:
            s.start()
        wait_until(lambda: all(len(s.samples) > 5 for s in ss), what="samplers to start")
        return ss

    def test_1_change_reaches_all_three(self):
        self.both(100, 0)
        ss = self.samplers()
        try:
            rounds = []
            for k in range(4):
                rounds.append(fleettest.measure_change(self.fleet, ss, "2" if k % 2 == 0 else "1"))
        finally:
            for s in ss:
                s.stop()
        flat = [x for r in rounds for x in r]
        print("\nctl --etcd weight change -> first request routed by it, per instance (ms): %s; "
              "max %.1f, median %.1f" % (" | ".join(" ".join("%.1f" % x for x in r) for r in rounds),
                                         max(flat), statistics.median(flat)))
        for s in ss:
            self.assertEqual(s.errors, [])
        # The strict 250 ms bar is bench/fleet_bench.py's, on a quiet machine; here it must hold
        # with room for a loaded 2-core machine running sanitizer builds.
        self.assertLess(max(flat), 2000)
        # Every instance reports the configuration's revision in X-Route-Explain and the admin API.
        for d in self.fleet.nodes:
            s, h, _ = d.request("GET", "/v2/admin/routes")
            self.assertEqual(s, 200)
            self.assertGreater(int(h["x-config-revision"]), 0)
        # Reports follow the change asynchronously: wait until all three say so.
        out = wait_until(lambda: (lambda r: r[1].count("converged") == 3 and r[1])(self.fleet.ctl("status")),
                         what="ctl status to show three converged instances")
        self.assertIn("instances: 3", out)

    def test_2_invalid_policy_rejected_everywhere(self):
        rev = self.both(100, 0)
        # Valid JSON, but version 7 exists nowhere: ctl cannot know, every instance refuses it.
        code, out, err = self.fleet.ctl("traffic", "digits", "1=50", "7=50")
        self.assertEqual(code, 0, err)
        bad = int(out.rsplit("revision ", 1)[1].rstrip(")\n"))
        self.fleet.wait_seen(bad)
        for i, d in enumerate(self.fleet.nodes):
            cfg = wait_until(lambda: self.fleet.status(i)["config"].get("last_rejected_revision") == bad and
                             self.fleet.status(i)["config"], what="the rejection")
            self.assertIn("unknown version 7", cfg["last_rejection"])
            self.assertIn(self.fleet.key("/config/traffic/digits"), cfg["last_rejection"])
            self.assertEqual(cfg["revision"], rev)  # the previous configuration still serves
            for _ in range(20):
                s, h, _ = d.request("POST", "/v2/models/digits/infer", fleettest.BODY)
                self.assertEqual((s, h["x-model-version"]), (200, "1"))
            self.assertTrue(d.wait_log("configuration rejected revision=%d" % bad))
        out = wait_until(lambda: (lambda r: r[1].count("rejected revision %d" % bad) == 3 and r[1])(
            self.fleet.ctl("status")), what="ctl status to show the rejection on all three")
        self.assertIn("unknown version 7 in 'weights'", out)
        # Not JSON at all, written past ctl: rejected too, with the parser's reason.
        self.etcd.put(self.fleet.key("/config/traffic/digits"), split(100, 0))
        bad2 = self.etcd.put(self.fleet.key("/config/traffic/twin"), "{not json")
        self.fleet.wait_seen(bad2)
        wait_until(lambda: all("line 1" in self.fleet.status(i)["config"].get("last_rejection", "")
                               for i in range(3)), what="the JSON rejection")
        # ctl refuses what the validators refuse, and writes nothing.
        before, _ = self.etcd.get_prefix(self.fleet.key("/config/"))
        code, out, err = self.fleet.ctl("traffic", "digits", "1=-5", "2=5")
        self.assertEqual(code, 1)
        self.assertIn("refused", err)
        self.assertEqual(self.etcd.get_prefix(self.fleet.key("/config/"))[0], before)
        # A valid configuration clears it.
        self.both(0, 100)

    def test_3_transaction_is_one_snapshot(self):
        self.both(100, 0)
        ss = self.samplers(models=("digits", "twin"))
        flips = []
        try:
            for k in range(6):
                v = (0, 100) if k % 2 == 0 else (100, 0)
                rev = self.etcd.txn([(self.fleet.key("/config/traffic/digits"), split(*v)),
                                     (self.fleet.key("/config/traffic/twin"), split(*v))])
                flips.append((rev, "2" if v[1] else "1"))
                self.fleet.wait_applied(rev)
                time.sleep(0.05)
        finally:
            for s in ss:
                s.stop()
        # Which version a revision routes to: the last flip at or before it.
        def want(rev):
            v = None
            for r, version in flips:
                if r <= rev:
                    v = version
            return v
        first_rev = flips[0][0]
        for n, s in enumerate(ss):
            self.assertEqual(s.errors, [])
            seen_old = seen_new = 0
            last_rev = 0
            for t, model, status, version, rev in s.samples:
                self.assertGreaterEqual(rev, last_rev, "node%d went back in time" % n)
                last_rev = rev
                if rev < first_rev:
                    self.assertEqual(version, "1")
                    seen_old += 1
                    continue
                # Both models at every revision: never one flipped and the other not.
                self.assertEqual(version, want(rev), "node%d: %s served %s at revision %d; flips %s; log:\n%s" %
                                 (n, model, version, rev, flips, "".join(self.fleet.nodes[n].log[-30:])))
                seen_new += 1
            self.assertGreater(seen_old, 0)
            self.assertGreater(seen_new, 0)
        print("\ntransactions: %d flips of two models, %s samples per instance, none mixed" %
              (len(flips), [len(s.samples) for s in ss]))

    def test_4_compaction_past_a_paused_instance(self):
        self.both(100, 0)
        d = self.fleet.nodes[2]
        os.kill(d.proc.pid, signal.SIGSTOP)
        try:
            # Its watch connection breaks while it sleeps (etcd restarts), then 100 revisions
            # are written and compacted: the revision it resumes from is gone.
            self.etcd.stop()
            self.etcd.start()
            rules = [{"name": "r%d" % i, "match": {"path": {"exact": "/r/%d" % i}}, "model": "digits"}
                     for i in range(60)]
            for k in range(100):
                if k % 2:
                    self.etcd.put(self.fleet.key("/config/routes"), {"routes": rules[: k // 2 + 1]})
                else:
                    self.etcd.put(self.fleet.key("/config/traffic/twin"), split(100 - k, k + 1))
            final = self.etcd.put(self.fleet.key("/config/traffic/digits"), split(0, 100))
            self.etcd.compact(final)
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)
        self.fleet.wait_applied(final)
        for i in range(3):
            s, h, _ = self.fleet.nodes[i].request("POST", "/v2/models/digits/infer", fleettest.BODY)
            self.assertEqual((s, h["x-model-version"]), (200, "2"))
            s, twin = self.fleet.nodes[i].json("GET", "/v2/admin/models/twin/traffic")
            self.assertEqual(twin["weights"], {"1": 2, "2": 99})
            s, h, body = self.fleet.nodes[i].request("GET", "/v2/admin/routes")
            self.assertEqual(len(json.loads(body)["routes"]), 50)
        self.assertTrue(any("watch compacted" in line for line in d.log),
                        "the paused instance never met the compaction:\n" + "".join(d.log[-20:]))
        print("\ncompaction: the paused instance resumed at a compacted revision, read everything "
              "again and converged on revision %d" % final)
        self.etcd.put(self.fleet.key("/config/routes"), {"routes": []})

    def test_5_etcd_outage(self):
        self.both(100, 0)
        ss = self.samplers()
        try:
            self.etcd.stop()
            t_down = time.monotonic()
            # An instance restarted while etcd is gone serves the last configuration from its
            # state file, and says so.
            ss[2].pause()
            self.assertEqual(self.fleet.stop(2), 0)
            d = self.fleet.start(2)
            ss[2].resume(d.port)
            cfg = wait_until(lambda: self.fleet.status(2)["config"], what="readiness")
            self.assertEqual(cfg["source"], "state file")
            self.assertFalse(cfg["watching"])
            s, h, _ = d.request("POST", "/v2/models/digits/infer", fleettest.BODY, headers={"X-Route-Explain": "1"})
            self.assertEqual((s, h["x-model-version"]), (200, "1"))
            self.assertIn("policy=admin", h["x-route-explain"])
            for i in range(3):
                wait_until(lambda: self.fleet.status(i)["config"]["watching"] is False, what="the watch to drop")
            time.sleep(max(0.0, 10 - (time.monotonic() - t_down)))
            stale = [self.fleet.status(i)["config"]["stale_seconds"] for i in range(3)]
            self.assertTrue(all(x >= 5 for x in stale), stale)
            self.etcd.start()
            code, out, err = self.fleet.ctl("traffic", "digits", "1=0", "2=100")
            self.assertEqual(code, 0, err)
            t0 = time.monotonic()
            for s in ss:
                wait_until(lambda: s.first(t0, lambda x: x[3] == "2"), 15, what="the change after the outage")
            took = time.monotonic() - t0
        finally:
            for s in ss:
                s.stop()
        print("\netcd down %.1f s: %d requests, %d failed; change after it reached all three in %.2f s" %
              (10.0, sum(len(s.samples) for s in ss), sum(len(s.errors) for s in ss), took))
        for s in ss:
            self.assertEqual(s.errors, [])
        # The status follows the publication by a moment.
        cfg = wait_until(lambda: (lambda c: c["source"] == "etcd" and c)(self.fleet.status(2)["config"]),
                         what="the restarted instance to take etcd's configuration")
        self.assertEqual(cfg["stale_seconds"], 0)

    def test_6_kill_switch_admin_refused_and_leases(self):
        self.both(0, 100)
        code, out, err = self.fleet.ctl("kill-switch", "on")
        self.assertEqual(code, 0, err)
        rev = int(out.rsplit("revision ", 1)[1].rstrip(")\n"))
        self.fleet.wait_applied(rev)
        for d in self.fleet.nodes:
            s, h, _ = d.request("POST", "/v2/models/digits/infer", fleettest.BODY)
            self.assertEqual((s, h["x-model-version"], h["x-route-reason"]), (200, "1", "kill-switch"))
            s, h, _ = d.request("POST", "/v2/models/digits/versions/2/infer", fleettest.BODY)
            self.assertEqual((s, h["x-model-version"]), (200, "2"))  # an explicit version still serves
            s, b = d.json("GET", "/v2/admin/kill-switch")
            self.assertEqual(b, {"enabled": True})
            # With --etcd the admin API does not change routing: etcd owns it.
            s, b = d.json("PUT", "/v2/admin/models/digits/traffic", split(100, 0))
            self.assertEqual(s, 409)
            self.assertIn("etcd", b["error"])
        code, out, err = self.fleet.ctl("kill-switch", "off")
        self.assertEqual(code, 0, err)
        self.fleet.wait_applied(int(out.rsplit("revision ", 1)[1].rstrip(")\n")))
        s, h, _ = self.fleet.nodes[0].request("POST", "/v2/models/digits/infer", fleettest.BODY)
        self.assertEqual((h["x-model-version"], h["x-route-reason"]), ("2", "weight"))
        # --if-revision: a stale revision is refused and nothing is written.
        kvs, _ = self.etcd.get_prefix(self.fleet.key("/config/traffic/digits"))
        mod = kvs[self.fleet.key("/config/traffic/digits")][1]
        code, out, err = self.fleet.ctl("traffic", "digits", "1=10", "2=90", "--if-revision", str(mod - 1))
        self.assertEqual(code, 1)
        self.assertIn("changed since revision", err)
        code, out, err = self.fleet.ctl("--if-revision", str(mod), "traffic", "digits", "1=10", "2=90")
        self.assertEqual(code, 0, err)
        # Reports under leases: a killed instance disappears when its lease (3 s) expires.
        reports, _ = self.etcd.get_prefix(self.fleet.key("/instances/"))
        self.assertEqual(len(reports), 3)
        report = json.loads(reports[self.fleet.key("/instances/node0")][0])
        self.assertEqual(report["address"], "127.0.0.1:%d" % self.fleet.nodes[0].port)
        self.assertIn({"model": "twin", "version": "2", "state": "READY"}, report["versions"])
        self.fleet.nodes[1].proc.kill()
        self.fleet.nodes[1].proc.wait()
        wait_until(lambda: self.fleet.key("/instances/node1") not in self.etcd.get_prefix(self.fleet.key("/instances/"))[0],
                   timeout=15, what="the dead instance's report to expire")
        self.fleet.nodes[1] = None
        code, out, err = self.fleet.ctl("status")
        self.assertIn("instances: 2", out)


class FleetArgumentsTest(unittest.TestCase):
    def test_bad_etcd_arguments_and_unreachable_etcd(self):
        root, repo = mgtest.make_repo(with_test_models=False)
        try:
            for args, want in ((["--etcd", "ftp://127.0.0.1:1"], "not an http:// or https:// URL"),
                               (["--etcd", "http://127.0.0.1:1", "--etcd-prefix", "nope"], "must start with '/'")):
                p = subprocess.run([mgtest.MG_BIN, "serve", "--repo", repo, "--listen", "127.0.0.1:0", *args],
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn(want, p.stderr)
            dead = "http://127.0.0.1:%d" % etcdtest.free_port()
            for cmd in (["status"], ["traffic", "digits", "1=1"], ["kill-switch", "on"]):
                p = subprocess.run([mgtest.MG_BIN, "ctl", "--etcd", dead, *cmd], capture_output=True, text=True,
                                   timeout=60)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn("cannot reach etcd", p.stderr)
            p = subprocess.run([mgtest.MG_BIN, "ctl", "status"], capture_output=True, text=True, timeout=60,
                               env={k: v for k, v in os.environ.items() if k != "MODELGATE_ETCD"})
            self.assertEqual(p.returncode, 2)
            self.assertIn("status needs --etcd URL", p.stderr)
            # An instance that cannot reach etcd serves anyway and says so.
            d = mgtest.Daemon(repo, args=["--etcd", dead, "--etcd-prefix", "/x"])
            try:
                s, b = d.json("GET", "/v2/health/ready")
                self.assertEqual(s, 200)
                self.assertEqual(b["config"]["source"], "none")
                self.assertFalse(b["config"]["watching"])
                wait_until(lambda: "etcd_error" in d.json("GET", "/v2/health/ready")[1]["config"], what="the error")
                s, h, _ = d.request("POST", "/v2/models/digits/infer", fleettest.BODY)
                self.assertEqual(s, 200)
                self.assertTrue(any("--etcd without --state-dir" in line for line in d.log))
            finally:
                self.assertEqual(d.stop(), 0)
        finally:
            shutil.rmtree(root, ignore_errors=True)


class StateFileTest(unittest.TestCase):
    """Without --etcd, admin API changes persist to --state-dir and survive a restart."""

    def test_admin_changes_survive_restart(self):
        root, repo = mgtest.make_repo(with_test_models=False)
        state = os.path.join(root, "state")
        args = ["--state-dir", state]
        try:
            d = mgtest.Daemon(repo, args=args)
            try:
                s, b = d.json("PUT", "/v2/admin/models/digits/traffic", split(0, 100))
                self.assertEqual(s, 200, b)
                routes = {"routes": [{"name": "x", "match": {"path": {"exact": "/x"}}, "model": "digits"}]}
                self.assertEqual(d.json("PUT", "/v2/admin/routes", routes)[0], 200)
                p = subprocess.run([mgtest.MG_BIN, "ctl", "--server", "http://127.0.0.1:%d" % d.port,
                                    "kill-switch", "on"], capture_output=True, text=True, timeout=60)
                self.assertEqual((p.returncode, p.stdout), (0, "kill switch: on\n"), p.stderr)
                self.assertEqual(d.json("GET", "/v2/admin/kill-switch"), (200, {"enabled": True}))
                s, b = d.json("PUT", "/v2/admin/kill-switch", {"enabled": "yes"})
                self.assertEqual(s, 400)
                self.assertIn("enabled", b["error"])
            finally:
                self.assertEqual(d.stop(), 0)
            with open(os.path.join(state, "state.json")) as f:
                saved = json.load(f)
            self.assertEqual(saved["source"], "admin")
            self.assertEqual(saved["policies"]["digits"]["weights"], {"1": 0, "2": 100})
            d = mgtest.Daemon(repo, args=args)
            try:
                s, b = d.json("GET", "/v2/admin/models/digits/traffic")
                self.assertEqual(b["weights"], {"1": 0, "2": 100})
                s, h, body = d.request("GET", "/v2/admin/routes")
                self.assertEqual([r["name"] for r in json.loads(body)["routes"]], ["x"])
                self.assertEqual(h["x-kill-switch"], "on")
                s, h, _ = d.request("POST", "/x", fleettest.BODY)
                self.assertEqual((s, h["x-model-version"], h["x-route-reason"]), (200, "1", "kill-switch"))
                self.assertTrue(any("routing state restored" in line for line in d.log))
            finally:
                self.assertEqual(d.stop(), 0)
            # A damaged state file is reported and the server starts without it.
            with open(os.path.join(state, "state.json"), "w") as f:
                f.write('{"format": 1, "policies": [')
            d = mgtest.Daemon(repo, args=args)
            try:
                s, b = d.json("GET", "/v2/admin/models/digits/traffic")
                self.assertEqual(b, {})
                self.assertTrue(any("routing state not restored" in line and "state.json" in line for line in d.log))
            finally:
                self.assertEqual(d.stop(), 0)
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
