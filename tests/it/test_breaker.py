"""The circuit breaker and the replay on the stable version, against the real daemon: a canary
made to fail on every Run (the test builds' fault hook) while a 50/50 policy is in force costs
the clients nothing, its breaker opens within its threshold and closes again once the fault is
gone; the failure ratio, client errors, the stable version, versions that are not loaded or
not ready, and the settings' validation."""
import json
import os
import shutil
import threading
import time
import unittest

import mgtest
from mgtest import Daemon

SAMPLE = mgtest.digits_sample()
PIXELS = SAMPLE["inputs"][0]["data"]
FAULTS = os.environ.get("MG_FAULTS", "1") not in ("0", "OFF", "")

BREAKER = {"consecutive_failures": 5, "failure_ratio": 0.5, "min_requests": 20, "window_ms": 10000,
           "ejection_ms": 1000, "max_ejection_ms": 4000, "probes": 3}


def add_model(repo, name, versions=(1, 2), config=None, broken=()):
    """A copy of digits' versions under `name`; versions in `broken` get a file that is not ONNX."""
    src = os.path.join(mgtest.SOURCE_DIR, "models", "digits")
    for v in versions:
        d = os.path.join(repo, name, str(v))
        os.makedirs(d)
        if v in broken:
            with open(os.path.join(d, "model.onnx"), "wb") as f:
                f.write(b"not a model")
        else:
            shutil.copy(os.path.join(src, str(v if v in (1, 2) else 2), "model.onnx"), d)
    cfg = {"version_policy": {"all": {}}}
    cfg.update(config or {})
    with open(os.path.join(repo, name, "config.json"), "w") as f:
        json.dump(cfg, f)


def repo_models(repo):
    shutil.rmtree(os.path.join(repo, "digits"))
    add_model(repo, "canary", config={"breaker": BREAKER})
    add_model(repo, "ratio", config={"breaker": dict(BREAKER, consecutive_failures=0)})
    add_model(repo, "clienterr", config={"breaker": BREAKER})
    add_model(repo, "stablefail", config={"breaker": BREAKER})
    add_model(repo, "gone", config={"breaker": BREAKER})
    # Version 1 (the stable one) fails to load: version 2 is the last one able to serve.
    add_model(repo, "laststand", broken=(1,),
              config={"breaker": BREAKER, "default_version": "2",
                      "traffic": {"weights": {"1": 50, "2": 50}, "stable": "1"}})
    add_model(repo, "badbreaker", versions=(1,), config={"breaker": {"probes": 0}})
    add_model(repo, "typobreaker", versions=(1,), config={"breaker": {"threshold": 3}})


def infer_body(model_input="input"):
    return {"inputs": [{"name": model_input, "shape": [1, 64], "datatype": "FP32", "data": PIXELS}]}


@unittest.skipUnless(FAULTS, "this build has no fault-injection hook (cmake -DMG_FAULTS=ON)")
class BreakerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(with_test_models=False, extra=repo_models)
        cls.d = Daemon(cls.repo)
        for m in ("canary", "ratio", "clienterr", "stablefail", "gone"):
            s, b = cls.d.json("PUT", "/v2/admin/models/%s/traffic" % m,
                              {"weights": {"1": 50, "2": 50}, "stable": "1"})
            assert s == 200, (m, s, b)

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        shutil.rmtree(cls.root, ignore_errors=True)
        assert code == 0, "modelgate exited with %s:\n%s" % (code, "".join(cls.d.log))

    def fault(self, model, version, **spec):
        s, b = self.d.json("PUT", "/v2/admin/models/%s/versions/%d/fault" % (model, version), spec)
        self.assertEqual((s, b), (200, {}))

    def logged(self, text):
        return self.d.wait_log(text)

    def breaker(self, model, version):
        s, b = self.d.json("GET", "/v2/admin/models/%s/breakers" % model)
        self.assertEqual(s, 200, b)
        return {v["version"]: v for v in b["versions"]}[str(version)]

    def infer(self, model, body=None, headers=None):
        s, h, data = self.d.request("POST", "/v2/models/%s/infer" % model, body or infer_body(), headers)
        return s, h, json.loads(data)

    def test_failing_canary_costs_the_clients_nothing(self):
        """The bar: every Run of version 2 fails, 50/50 policy; 0 client failures."""
        self.assertEqual(self.breaker("canary", 2)["state"], "closed")
        self.fault("canary", 2, fail_every=1)
        reasons = {}
        for i in range(200):
            s, h, b = self.infer("canary")
            self.assertEqual(s, 200, b)
            self.assertEqual(h["x-model-version"], "1")
            self.assertEqual(b["model_version"], "1")
            key = (h["x-route-reason"], h.get("x-fallback-reason"))
            reasons[key] = reasons.get(key, 0) + 1
        print("\nfailing canary, 200 sequential requests:", reasons)
        st = self.breaker("canary", 2)
        self.assertIn(st["state"], ("open", "half-open"))
        self.assertTrue(self.logged("opened model=canary version=2 trips=1 ejection_ms=1000 "
                                    "(consecutive-failures"), "".join(self.d.log))
        # The breaker opened on the 5th failure: 5 requests were replayed, then one more for
        # each failed probe when the ejection ended during the run (a trip each); the rest of
        # version 2's share went straight to the stable version.
        self.assertEqual(reasons.get(("fallback", "run-failed")), 5 + st["trips"] - 1)
        self.assertGreater(reasons.get(("fallback", "breaker-open"), 0), 50)
        self.assertGreater(reasons.get(("weight", None), 0), 50)
        self.assertEqual(self.breaker("canary", 1)["state"], "closed")

        # /predict goes through the same replay (its input is bound for the chosen version).
        # Concurrent clients while it is open: still no failure.
        errors = []

        def client():
            for _ in range(25):
                s, h, data = self.d.request("POST", "/predict", {"model": "canary", "data": PIXELS})
                if s != 200 or h["x-model-version"] != "1":
                    errors.append((s, data))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

        # The fault goes; after the ejection the probes close the breaker, version 2 serves again.
        self.fault("canary", 2)
        deadline = time.monotonic() + 20
        served = 0
        while time.monotonic() < deadline and served < 20:
            s, h, b = self.infer("canary")
            self.assertEqual(s, 200, b)
            if h["x-model-version"] == "2":
                self.assertEqual(h["x-route-reason"], "weight")
                served += 1
            else:
                time.sleep(0.02)
        self.assertEqual(served, 20, "version 2 never served again")
        st = self.breaker("canary", 2)
        self.assertEqual(st["state"], "closed")
        self.assertTrue(self.logged("closed model=canary version=2"))

    def test_concurrent_clients_while_it_trips(self):
        """Eight clients at once through the trip: 0 failures, the replays stay near the threshold."""
        self.fault("stablefail", 2, fail_every=1)
        results = []
        lock = threading.Lock()

        def client():
            for _ in range(40):
                s, h, _ = self.d.request("POST", "/v2/models/stablefail/infer", infer_body())
                with lock:
                    results.append((s, h.get("x-model-version"), h.get("x-fallback-reason")))

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.fault("stablefail", 2)
        self.assertEqual([r for r in results if r[0] != 200 or r[1] != "1"], [])
        replayed = sum(1 for r in results if r[2] == "run-failed")
        st = self.breaker("stablefail", 2)
        print("\n8 concurrent clients, 320 requests: %d replayed, %d trips" % (replayed, st["trips"]))
        # At most the threshold plus the requests already running when it opened, and the
        # probes of each half-open spell the run lasted into.
        self.assertGreaterEqual(replayed, 5)
        self.assertLessEqual(replayed, 5 + 8 + 3 * (st["trips"] - 1))
        self.assertIn(st["state"], ("open", "half-open"))

    def test_stable_version_is_never_ejected(self):
        """Version 1 (stable) fails: its clients get the error, but it is never ejected."""
        self.fault("stablefail", 1, fail_every=1)
        try:
            codes = {}
            for _ in range(60):
                s, h, b = self.infer("stablefail", headers={"X-Model-Version": "1"})
                codes[s] = codes.get(s, 0) + 1
            self.assertEqual(codes, {500: 60})
            self.assertIn("injected fault", b["error"])
            st = self.breaker("stablefail", 1)
            self.assertEqual((st["state"], st["trips"]), ("closed", 0))
            self.assertGreaterEqual(st["consecutive_failures"], 60)
        finally:
            self.fault("stablefail", 1)

    def test_failure_ratio_opens_it(self):
        """Every 2nd Run of version 2 fails: no streak of 5, but 50 % of 20 requests."""
        self.fault("ratio", 2, fail_every=2)
        try:
            for _ in range(150):
                s, h, b = self.infer("ratio")
                self.assertEqual(s, 200, b)
            st = self.breaker("ratio", 2)
            self.assertIn(st["state"], ("open", "half-open"))
            self.assertTrue(self.logged("opened model=ratio version=2 trips=1 ejection_ms=1000 "
                                        "(failure-ratio"), "".join(self.d.log))
            self.assertGreaterEqual(st["window_requests"], 20)
        finally:
            self.fault("ratio", 2)

    def test_client_errors_never_count(self):
        """Requests that are wrong get 400 and are neither replayed nor counted, fault or not."""
        self.fault("clienterr", 2, fail_every=1)
        try:
            bad = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
            for _ in range(60):
                s, h, b = self.infer("clienterr", body=bad)
                self.assertEqual(s, 400, b)
                self.assertNotIn("x-fallback-reason", h)
            st = self.breaker("clienterr", 2)
            self.assertEqual((st["state"], st["trips"], st["window_requests"]), ("closed", 0, 0))
        finally:
            self.fault("clienterr", 2)

    def test_url_pinned_requests_are_not_replayed(self):
        """The client named version 2: it gets version 2's failure, not another version's answer."""
        self.fault("clienterr", 2, fail_every=1)
        try:
            s, h, data = self.d.request("POST", "/v2/models/clienterr/versions/2/infer", infer_body())
            self.assertEqual(s, 500)
            self.assertIn("injected fault", json.loads(data)["error"])
        finally:
            self.fault("clienterr", 2)

    def test_policy_naming_a_version_not_loaded_falls_back(self):
        """A reload removed version 2: the policy still names it; the stable version answers."""
        shutil.rmtree(os.path.join(self.repo, "gone", "2"))
        s, b = self.d.json("POST", "/v2/repository/models/gone/load")
        self.assertEqual((s, b), (200, {}))
        reasons = {}
        for _ in range(60):
            s, h, b = self.infer("gone")
            self.assertEqual((s, h["x-model-version"]), (200, "1"), b)
            key = (h["x-route-reason"], h.get("x-fallback-reason"))
            reasons[key] = reasons.get(key, 0) + 1
        self.assertGreater(reasons.get(("fallback", "not-loaded"), 0), 10)
        self.assertEqual(set(reasons) - {("fallback", "not-loaded"), ("weight", None)}, set())

    def test_last_version_able_to_serve(self):
        """Stable version 1 failed to load: it reads open (load-failed); version 2 serves it all."""
        st = self.breaker("laststand", 1)
        self.assertEqual((st["ready"], st["state"], st["last_trip"]), (False, "open", "load-failed"))
        # Version 2 fails: nothing can take its requests, so its clients see its failures...
        self.fault("laststand", 2, fail_every=1)
        codes = {}
        for _ in range(30):
            s, h, b = self.infer("laststand")
            codes[s] = codes.get(s, 0) + 1
        self.assertEqual(set(codes), {500})
        self.assertEqual(self.breaker("laststand", 2)["state"], "open")
        # ...and when it recovers it serves at once, breaker open or not: it is never ejected.
        self.fault("laststand", 2)
        for _ in range(30):
            s, h, b = self.infer("laststand")
            self.assertEqual((s, h["x-model-version"]), (200, "2"), b)

    def test_breaker_settings_are_validated(self):
        s, body = self.d.json("POST", "/v2/repository/index")
        rows = {r["name"]: r for r in body if r.get("version") in (None, "1")}
        self.assertIn("config.json: 'breaker': 'probes' must be an integer from 1 to 1000",
                      rows["badbreaker"]["reason"])
        self.assertIn("config.json: 'breaker': unknown field 'threshold'", rows["typobreaker"]["reason"])
        s, b = self.d.json("GET", "/v2/admin/models/nosuch/breakers")
        self.assertEqual(s, 404)
        self.assertIn("Request for unknown model: 'nosuch' is not found", b["error"])

    def test_fault_endpoint_checks_its_body(self):
        s, b = self.d.json("PUT", "/v2/admin/models/canary/versions/2/fault", {"fail_evry": 1})
        self.assertEqual(s, 400)
        self.assertIn("unknown field 'fail_evry'", b["error"])


if __name__ == "__main__":
    unittest.main()
