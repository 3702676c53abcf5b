"""Canary routing over real HTTP: precedence, sticky keys, admin API, route table, ctl, live updates."""
import http.client
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import unittest

import mgtest
from mgtest import Daemon, MG_BIN

SAMPLE = mgtest.digits_sample()
PIXELS = SAMPLE["inputs"][0]["data"]

POLICY = {"weights": {"1": 50, "2": 50}, "stable": "1",
          "ab_groups": {"control": "1", "v2-exp": "2"},
          "stages": {"gray": "2", "prod": "1"}}


def with_traffic(repo):
    """digits with a traffic policy in config.json; 'twin' is a second copy without one."""
    cfg_path = os.path.join(repo, "digits", "config.json")
    cfg = mgtest.read_json(cfg_path)
    cfg["traffic"] = POLICY
    mgtest.write_json(cfg_path, cfg)
    shutil.copytree(os.path.join(repo, "digits"), os.path.join(repo, "twin"))
    cfg["name"] = "twin"
    del cfg["traffic"]
    mgtest.write_json(os.path.join(repo, "twin", "config.json"), cfg)


def expected(url, header, ab, stage):
    """The documented precedence, for everything but sticky and weight."""
    if url:
        return url, "url"
    if header:
        return header, "header"
    groups = POLICY["ab_groups"]
    if ab in groups:
        return groups[ab], "ab-group"
    stages = POLICY["stages"]
    if stage in stages:
        return stages[stage], "stage"
    return None, None


class RoutingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(with_test_models=False, extra=with_traffic)
        cls.d = Daemon(cls.repo)
        cls.server = "http://127.0.0.1:%d" % cls.d.port

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        shutil.rmtree(cls.root, ignore_errors=True)
        assert code == 0, "modelgate exited with %s:\n%s" % (code, "".join(cls.d.log))

    def setUp(self):
        # Every test starts from config.json's policy and an empty route table.
        self.put_traffic("digits", POLICY)
        self.assertEqual(self.d.json("PUT", "/v2/admin/routes", {"routes": []})[0], 200)

    def put_traffic(self, model, policy):
        return self.d.json("PUT", "/v2/admin/models/%s/traffic" % model, policy)

    def infer(self, path="/v2/models/digits/infer", headers=None, body=None):
        status, hdrs, data = self.d.request("POST", path, body or SAMPLE, headers or {})
        return status, hdrs, json.loads(data)

    def ctl(self, *args, env=None):
        e = dict(os.environ)
        e.pop("MODELGATE_SERVER", None)
        e.update(env or {})
        p = subprocess.run([MG_BIN, "ctl", *args], capture_output=True, text=True, timeout=60, env=e)
        return p.returncode, p.stdout, p.stderr

    # ---- precedence -------------------------------------------------------------------------

    def test_precedence_every_header_combination(self):
        for url, header, ab, stage, sticky in itertools.product(
                [None, "1", "2"], [None, "1", "2"], [None, "control", "v2-exp", "nobody"],
                [None, "gray", "prod", "nowhere"], [None, "user-17"]):
            headers = {}
            if header:
                headers["X-Model-Version"] = header
            if ab:
                headers["X-AB-Group"] = ab
            if stage:
                headers["X-Stage"] = stage
            if sticky:
                headers["X-User-ID"] = sticky
            path = "/v2/models/digits%s/infer" % ("/versions/" + url if url else "")
            with self.subTest(url=url, header=header, ab=ab, stage=stage, sticky=sticky):
                status, hdrs, body = self.infer(path, headers)
                self.assertEqual(status, 200, body)
                version, reason = expected(url, header, ab, stage)
                if reason is None:
                    reason = "sticky" if sticky else "weight"
                self.assertEqual(hdrs["x-route-reason"], reason)
                if version is not None:
                    self.assertEqual(hdrs["x-model-version"], version)
                self.assertEqual(body["model_version"], hdrs["x-model-version"])

    def test_sticky_keys_stay_and_split_by_weight(self):
        counts = {"1": 0, "2": 0}
        for k in range(400):
            key = "user-%d" % k
            first = self.infer(headers={"X-User-ID": key})[1]["x-model-version"]
            again = self.infer(headers={"X-User-ID": key})[1]["x-model-version"]
            self.assertEqual(first, again, key)
            counts[first] += 1
        # 50/50 over 400 keys: far from either extreme.
        self.assertGreater(counts["1"], 130)
        self.assertGreater(counts["2"], 130)

    def test_sticky_key_from_parameters(self):
        policy = dict(POLICY, sticky={"parameter": "user_id"})
        self.assertEqual(self.put_traffic("digits", policy)[0], 200)
        seen = {}
        for k in range(60):
            body = dict(SAMPLE, parameters={"user_id": "u%d" % k})
            v1 = self.infer(body=body)[1]
            v2 = self.infer(body=body)[1]
            self.assertEqual(v1["x-route-reason"], "sticky")
            self.assertEqual(v1["x-model-version"], v2["x-model-version"])
            seen[v1["x-model-version"]] = True
        self.assertEqual(sorted(seen), ["1", "2"])
        # Without the parameter the split is by weight.
        self.assertEqual(self.infer()[1]["x-route-reason"], "weight")

    def test_weights_move_traffic(self):
        self.assertEqual(self.put_traffic("digits", {"weights": {"1": 0, "2": 1}, "stable": "2"})[0], 200)
        for _ in range(20):
            self.assertEqual(self.infer()[1]["x-model-version"], "2")
        self.assertEqual(self.put_traffic("digits", {"weights": {"1": 1, "2": 0}, "stable": "1"})[0], 200)
        for _ in range(20):
            self.assertEqual(self.infer(headers={"X-User-ID": "u"})[1]["x-model-version"], "1")

    def test_no_policy_uses_default_version(self):
        status, hdrs, body = self.infer("/v2/models/twin/infer")
        self.assertEqual((status, hdrs["x-model-version"], hdrs["x-route-reason"]), (200, "2", "default"))
        s, b = self.d.json("GET", "/v2/admin/models/twin/traffic")
        self.assertEqual((s, b), (200, {}))

    def test_headers_echo_and_explain(self):
        status, hdrs, body = self.infer(headers={"X-Trace-ID": "trace-123", "X-AB-Group": "v2-exp",
                                                 "X-Route-Explain": "1"})
        self.assertEqual(hdrs["x-trace-id"], "trace-123")
        self.assertEqual(hdrs["x-ab-group"], "v2-exp")
        self.assertIn("reason=ab-group", hdrs["x-route-explain"])
        self.assertIn("policy=admin", hdrs["x-route-explain"])
        self.assertIn("version=2", hdrs["x-route-explain"])
        status, hdrs, body = self.infer()
        self.assertNotIn("x-route-explain", hdrs)

    def test_bad_version_header(self):
        status, hdrs, body = self.infer(headers={"X-Model-Version": "two"})
        self.assertEqual(status, 400)
        self.assertIn("two", body["error"])
        status, hdrs, body = self.infer(headers={"X-Model-Version": "9"})
        self.assertEqual(status, 404)
        self.assertIn("9", body["error"])

    def test_predict_is_routed_too(self):
        s, hdrs, b = self.infer("/predict", {"X-AB-Group": "control"}, {"model": "digits", "data": PIXELS})
        self.assertEqual((s, hdrs["x-model-version"], hdrs["x-route-reason"], b["version"]), (200, "1", "ab-group", "1"))

    # ---- admin API ---------------------------------------------------------------------------

    def test_traffic_get_and_put(self):
        status, hdrs, data = self.d.request("GET", "/v2/admin/models/digits/traffic")
        self.assertEqual(status, 200)
        got = json.loads(data)
        self.assertEqual(got["weights"], {"1": 50, "2": 50})
        self.assertEqual(got["stable"], "1")
        self.assertEqual(got["ab_groups"], POLICY["ab_groups"])
        s, b = self.put_traffic("digits", {"weights": {"1": 90, "2": 10}, "stable": "1"})
        self.assertEqual((s, b["weights"]), (200, {"1": 90, "2": 10}))
        status, hdrs, data = self.d.request("GET", "/v2/admin/models/digits/traffic")
        self.assertEqual(hdrs["x-policy-source"], "admin")
        self.assertEqual(json.loads(data)["weights"], {"1": 90, "2": 10})
        s, b = self.d.json("GET", "/v2/admin/models/nosuch/traffic")
        self.assertEqual(s, 404)
        s, b = self.put_traffic("nosuch", POLICY)
        self.assertEqual(s, 404)
        status, hdrs, data = self.d.request("POST", "/v2/admin/models/digits/traffic", "{}")
        self.assertEqual((status, hdrs["allow"]), (405, "GET, PUT"))

    def test_invalid_traffic_rejected_whole(self):
        good = {"weights": {"1": 0, "2": 1}, "stable": "2"}
        self.assertEqual(self.put_traffic("digits", good)[0], 200)
        bad = [
            ({"weights": {"1": 50, "7": 50}, "stable": "1"}, "7"),
            ({"weights": {"1": -5, "2": 50}, "stable": "1"}, "weights"),
            ({"weights": {"1": 0, "2": 0}, "stable": "1"}, "zero"),
            ({"weights": {"1": 1.5, "2": 1}, "stable": "1"}, "weights"),
            ({"weights": {"1": 50, "2": 50}, "stable": "3"}, "stable"),
            ({"weights": {"1": 50, "2": 50}, "stable": "1", "ab_groups": {"x": "9"}}, "9"),
            ({"weights": {"1": 50, "2": 50}, "stable": "1", "sticky": {"cookie": "a"}}, "sticky"),
            ({"weights": {"1": 50, "2": 50}, "stable": "1", "color": "blue"}, "color"),
        ]
        for policy, frag in bad:
            with self.subTest(policy=policy):
                s, b = self.put_traffic("digits", policy)
                self.assertEqual(s, 400, b)
                self.assertIn(frag, b["error"])
        for body in ['{"weights": {"1": NaN, "2": 1}, "stable": "1"}', "not json", "[]"]:
            status, _, data = self.d.request("PUT", "/v2/admin/models/digits/traffic", body)
            self.assertEqual(status, 400, data)
        # The previous policy still serves.
        s, b = self.d.json("GET", "/v2/admin/models/digits/traffic")
        self.assertEqual(b["weights"], {"1": 0, "2": 1})
        for _ in range(10):
            self.assertEqual(self.infer()[1]["x-model-version"], "2")

    # ---- route table -------------------------------------------------------------------------

    ROUTES = {"routes": [
        {"name": "eu-scores", "priority": 10, "match": {"host": "*.eu.example.com", "path": {"prefix": "/score/"}},
         "model": "digits", "traffic": {"weights": {"1": 1, "2": 0}, "stable": "1"}},
        {"name": "twin-exact", "priority": 20, "match": {"path": {"exact": "/score/twin"}}, "model": "twin"},
        {"name": "by-regex", "priority": 30, "match": {"path": {"regex": "^/m/[0-9]+/predict$"}},
         "model": "digits", "api": "predict"},
        {"name": "tenant-header", "priority": 5,
         "match": {"path": {"prefix": "/score/"}, "headers": [{"name": "X-Tenant", "exact": "gold"}]},
         "model": "twin"},
        {"name": "catch-score", "priority": 100, "match": {"path": {"prefix": "/score/"}}, "model": "digits"},
    ]}

    def test_route_table(self):
        s, b = self.d.json("PUT", "/v2/admin/routes", self.ROUTES)
        self.assertEqual((s, b["routes"]), (200, 5))
        # Host wildcard + prefix with a traffic override: version 1 only.
        status, hdrs, body = self.infer("/score/a", {"Host": "api.eu.example.com", "X-Route-Explain": "1"})
        self.assertEqual((status, body["model_name"], hdrs["x-model-version"]), (200, "digits", "1"))
        self.assertIn("rule=eu-scores", hdrs["x-route-explain"])
        self.assertIn("policy=route", hdrs["x-route-explain"])
        # Exact path beats the catch-all by priority; another host skips the wildcard rule.
        status, hdrs, body = self.infer("/score/twin", {"Host": "api.us.example.com"})
        self.assertEqual((status, body["model_name"]), (200, "twin"))
        # Header rule has the best priority.
        status, hdrs, body = self.infer("/score/a", {"Host": "api.eu.example.com", "X-Tenant": "gold"})
        self.assertEqual(body["model_name"], "twin")
        # Catch-all prefix.
        status, hdrs, body = self.infer("/score/zzz", {"Host": "other"})
        self.assertEqual((status, body["model_name"]), (200, "digits"))
        # Regex rule speaking the simple API.
        s, hdrs, b = self.infer("/m/42/predict", {}, {"data": PIXELS})
        self.assertEqual((s, b["model"], b["prediction"]), (200, "digits", 2))
        status, hdrs, body = self.infer("/m/42x/predict", {}, {"data": PIXELS})
        self.assertEqual(status, 404)
        # GET returns the table in match order.
        s, b = self.d.json("GET", "/v2/admin/routes")
        self.assertEqual([r["name"] for r in b["routes"]],
                         ["tenant-header", "eu-scores", "twin-exact", "by-regex", "catch-score"])

    def test_invalid_route_table_rejected_whole(self):
        self.assertEqual(self.d.json("PUT", "/v2/admin/routes", self.ROUTES)[0], 200)
        bad = [
            ({"routes": [{"name": "r", "match": {"path": {"regex": "^/m/("}}, "model": "digits"}]}, "regex"),
            ({"routes": [{"name": "r", "match": {"path": {"prefix": "/a"}}, "model": "digits"},
                         {"name": "r", "match": {"path": {"prefix": "/b"}}, "model": "digits"}]}, "duplicate"),
            ({"routes": [{"name": "a", "match": {"path": {"prefix": "/a"}}, "model": "digits"},
                         {"name": "b", "match": {"path": {"prefix": "/a"}}, "model": "digits"}]}, "same match"),
            ({"routes": [{"name": "r", "match": {"path": {"prefix": "/a"}}, "model": "nosuch"}]}, "nosuch"),
            ({"routes": [{"name": "r", "match": {"path": {"prefix": "/a"}}, "model": "digits",
                          "traffic": {"weights": {"5": 1}, "stable": "5"}}]}, "5"),
            ({"routes": [{"name": "r", "match": {"path": {}}, "model": "digits"}]}, "path"),
        ]
        for table, frag in bad:
            with self.subTest(table=table):
                s, b = self.d.json("PUT", "/v2/admin/routes", table)
                self.assertEqual(s, 400, b)
                self.assertIn(frag, b["error"])
        s, b = self.d.json("GET", "/v2/admin/routes")
        self.assertEqual(len(b["routes"]), 5)
        status, hdrs, body = self.infer("/score/twin")
        self.assertEqual(body["model_name"], "twin")

    # ---- ctl ---------------------------------------------------------------------------------

    def test_ctl_traffic_and_routes(self):
        code, out, err = self.ctl("--server", self.server, "traffic", "digits", "1=90", "2=10")
        self.assertEqual(code, 0, err)
        self.assertIn("1=50 2=50 (stable 1) -> 1=90 2=10 (stable 1)", out)
        s, b = self.d.json("GET", "/v2/admin/models/digits/traffic")
        self.assertEqual(b["weights"], {"1": 90, "2": 10})
        self.assertEqual(b["ab_groups"], POLICY["ab_groups"])  # the rest of the policy is kept
        code, out, err = self.ctl("traffic", "digits", "1=0", "2=0", env={"MODELGATE_SERVER": self.server})
        self.assertEqual(code, 1)
        self.assertIn("zero", err)
        code, out, err = self.ctl("--server", self.server, "traffic", "digits", "1=x")
        self.assertEqual(code, 2)
        code, out, err = self.ctl("--server", self.server, "traffic", "nosuch", "1=1")
        self.assertEqual(code, 1)
        self.assertIn("nosuch", err)
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            json.dump(self.ROUTES, f)
            f.flush()
            code, out, err = self.ctl("--server", self.server, "routes", f.name)
        self.assertEqual(code, 0, err)
        self.assertIn("0 -> 5 rules", out)
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            f.write('{"routes": [{"name": "r", "match": {"path": {"regex": "("}}, "model": "digits"}]}')
            f.flush()
            code, out, err = self.ctl("--server", self.server, "routes", f.name)
        self.assertEqual(code, 1)
        self.assertIn("regex", err)
        code, out, err = self.ctl("--server", "http://127.0.0.1:1", "traffic", "digits")
        self.assertEqual(code, 1)
        self.assertIn("cannot reach", err)

    # ---- live updates ------------------------------------------------------------------------

    def test_updates_under_load_fail_no_request(self):
        stop = threading.Event()
        failures = []
        done = [0]

        def load():
            conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=30)
            body = json.dumps(SAMPLE)
            while not stop.is_set():
                conn.request("POST", "/v2/models/digits/infer", body, {"X-User-ID": "u%d" % done[0]})
                r = conn.getresponse()
                data = r.read()
                if r.status != 200:
                    failures.append((r.status, data[:200]))
                done[0] += 1
            conn.close()

        threads = [threading.Thread(target=load) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            for i in range(200):
                w = i % 101
                s, b = self.put_traffic("digits", {"weights": {"1": 100 - w, "2": w}, "stable": "1"})
                self.assertEqual(s, 200, b)
                if i % 20 == 0:
                    self.assertEqual(self.d.json("PUT", "/v2/admin/routes", self.ROUTES)[0], 200)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(failures, [])
        self.assertGreater(done[0], 50)


if __name__ == "__main__":
    unittest.main()
