"""Metrics over real HTTP: the exposition checked by promtool, scraped by a real Prometheus server,
Triton's figures per version, modelgate's own, the metrics listener, the reports, the logs."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

import mgtest
from mgtest import Daemon, parse_prom, prom_value

SAMPLE = mgtest.digits_sample()
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def with_broken_version(repo):
    """digits gets a version 3 whose file is not ONNX: it is listed, FAILED."""
    d = os.path.join(repo, "digits", "3")
    os.makedirs(d)
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(b"not a model")


def promtool(text):
    """Runs `promtool check metrics` on `text`: (exit code, the problems it printed)."""
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=60)
    return p.returncode, [l for l in (p.stdout + p.stderr).splitlines() if l.strip()]


# Triton's own names break two of promtool's style rules, and must keep Triton's spelling so
# Triton dashboards work: these, and only these, are the findings allowed on them.
TRITON_LINT = re.compile(r'^nv_inference_\w+ (counter metrics should have "_total" suffix|'
                         r'metric names should not contain abbreviated units|'
                         r'non-histogram and non-summary metrics should not have "_count" suffix)$')


def without_triton(text):
    """The exposition without the nv_inference_* families."""
    return "".join(l + "\n" for l in text.splitlines()
                   if not re.match(r"(# (HELP|TYPE) )?nv_inference_", l))


class MetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(with_test_models=False, extra=with_broken_version)
        cls.access = os.path.join(cls.root, "access.log")
        cls.d = Daemon(cls.repo, args=["--metrics-listen", "127.0.0.1:0", "--access-log", cls.access,
                                       "--log-json", "--log-level", "debug"])
        assert cls.d.metrics_port, "no 'metrics addr=' in the log"

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        shutil.rmtree(cls.root, ignore_errors=True)
        assert code == 0, "modelgate exited %s" % code

    def infer(self, path="/v2/models/digits/infer", headers=None, body=None):
        status, hdrs, data = self.d.request("POST", path, body if body is not None else SAMPLE,
                                            headers=headers)
        return status, hdrs, data

    def scrape(self, port=None):
        status, hdrs, data = self.d.request("GET", "/metrics") if port is None else \
            _get(port, "/metrics")
        self.assertEqual(status, 200, data)
        self.assertTrue(hdrs["content-type"].startswith("text/plain; version=0.0.4"), hdrs)
        return data.decode()

    def test_01_triton_counts_per_version(self):
        before = parse_prom(self.scrape())
        for _ in range(7):
            self.assertEqual(self.infer("/v2/models/digits/versions/1/infer")[0], 200)
        for _ in range(4):
            self.assertEqual(self.infer(headers={"X-Model-Version": "2"})[0], 200)
        batch = {"inputs": [{"name": "input", "shape": [3, 64], "datatype": "FP32",
                             "data": SAMPLE["inputs"][0]["data"] * 3}]}
        self.assertEqual(self.infer("/v2/models/digits/versions/2/infer", body=batch)[0], 200)
        # A request the model refuses (wrong shape) is a failure with Triton's reason OTHER.
        bad = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
        self.assertEqual(self.infer("/v2/models/digits/versions/1/infer", body=bad)[0], 400)
        after = parse_prom(self.scrape())

        def delta(name, **labels):
            return prom_value(after, name, **labels) - prom_value(before, name, **labels)

        self.assertEqual(delta("nv_inference_request_success", model="digits", version="1"), 7)
        self.assertEqual(delta("nv_inference_request_success", model="digits", version="2"), 5)
        self.assertEqual(delta("nv_inference_request_failure", model="digits", version="1",
                               reason="OTHER"), 1)
        self.assertEqual(delta("nv_inference_request_failure", model="digits", version="1",
                               reason="BACKEND"), 0)
        # Batch 3 counts 3 inferences in 1 execution.
        self.assertEqual(delta("nv_inference_count", model="digits", version="2"), 7)
        self.assertEqual(delta("nv_inference_exec_count", model="digits", version="2"), 5)
        for phase in ("request", "queue", "compute_input", "compute_infer", "compute_output"):
            self.assertGreater(delta("nv_inference_%s_duration_us" % phase, model="digits", version="1"), 0,
                               phase)
        total = delta("nv_inference_request_duration_us", model="digits", version="2")
        parts = sum(delta("nv_inference_%s_duration_us" % p, model="digits", version="2")
                    for p in ("queue", "compute_input", "compute_infer", "compute_output"))
        self.assertLessEqual(parts, total + 5)  # each rounded down to whole microseconds
        self.assertEqual(prom_value(after, "nv_inference_pending_request_count", model="digits", version="1"), 0)
        self.assertEqual(prom_value(after, "modelgate_requests_in_flight", model="digits", version="1"), 0)
        # The histogram by route reason and the decision counters agree with what was sent.
        self.assertEqual(delta("modelgate_request_duration_seconds_count", model="digits", version="1",
                               route_reason="url"), 8)
        self.assertEqual(delta("modelgate_request_duration_seconds_bucket", model="digits", version="1",
                               route_reason="url", le="+Inf"), 8)
        self.assertEqual(delta("modelgate_route_decisions_total", model="digits", version="2",
                               reason="header"), 4)

    def test_02_promtool(self):
        self.infer()
        text = self.scrape()
        code, problems = promtool(text)
        bad = [p for p in problems if not TRITON_LINT.match(p)]
        self.assertEqual(bad, [], "promtool found more than Triton's own names:\n" + "\n".join(problems))
        self.assertIn(code, (0, 3), problems)  # 3: lint findings only (all on Triton's names, above)
        code, problems = promtool(without_triton(text))
        self.assertEqual((code, problems), (0, []))

    def test_03_states_loads_reloads_revision(self):
        m = parse_prom(self.scrape())
        self.assertEqual(prom_value(m, "modelgate_model_version_state", model="digits", version="1",
                                    state="READY"), 1)
        self.assertEqual(prom_value(m, "modelgate_model_version_state", model="digits", version="3",
                                    state="FAILED"), 1)
        self.assertEqual(prom_value(m, "modelgate_model_version_state", model="digits", version="3",
                                    state="READY"), 0)
        # Breakers: a version that serves is closed (0); one that cannot serve reads open (2).
        self.assertEqual(m[("modelgate_breaker_state", frozenset({"model": "digits", "version": "1"}.items()))], 0)
        self.assertEqual(prom_value(m, "modelgate_breaker_state", model="digits", version="3"), 2)
        self.assertEqual(prom_value(m, "modelgate_breaker_trips_total", model="digits", version="1"), 0)
        self.assertEqual(prom_value(m, "modelgate_model_load_duration_seconds_count", model="digits",
                                    version="2", outcome="success"), 1)
        self.assertEqual(prom_value(m, "modelgate_model_load_duration_seconds_count", model="digits",
                                    version="3", outcome="failure"), 1)
        self.assertGreater(prom_value(m, "modelgate_model_load_duration_seconds_sum", model="digits",
                                      version="2", outcome="success"), 0)
        rev = prom_value(m, "modelgate_routing_revision")
        # A reload keeps the unchanged versions ("unchanged"); the broken version 3 fails again,
        # so the load answers its reason (the others keep serving) and counts a failed reload.
        status, body = self.d.json("POST", "/v2/repository/models/digits/load")
        self.assertEqual(status, 400)
        self.assertIn("version 3 of 'digits' failed (version 2 serves)", body["error"])
        status, _ = self.d.json("PUT", "/v2/admin/models/digits/traffic",
                                {"weights": {"1": 1, "2": 1}, "stable": "1"})
        self.assertEqual(status, 200)
        status, _ = self.d.json("POST", "/v2/repository/models/nosuch/load")
        self.assertEqual(status, 404)
        m = parse_prom(self.scrape())
        self.assertEqual(prom_value(m, "modelgate_model_reloads_total", model="digits", outcome="failure"), 1)
        self.assertEqual(prom_value(m, "modelgate_model_reloads_total", model="digits", outcome="success"), 0)
        self.assertEqual(prom_value(m, "modelgate_model_load_duration_seconds_count", model="digits",
                                    version="3", outcome="failure"), 2)
        self.assertEqual(prom_value(m, "modelgate_model_load_duration_seconds_count", model="digits",
                                    version="1", outcome="unchanged"), 1)
        self.assertNotIn("nosuch", self.scrape())
        self.assertEqual(prom_value(m, "modelgate_routing_revision"), rev + 1)
        self.assertGreater(prom_value(m, "process_resident_memory_bytes"), 10 << 20)
        self.assertGreater(prom_value(m, "process_open_fds"), 3)
        self.assertEqual(prom_value(m, "modelgate_build_info", version="0.1.0",
                                    onnxruntime="1.29.0"), 1)

    def test_04_fallbacks(self):
        # Version 3 takes half the weight but cannot serve: the stable version 1 answers.
        status, _ = self.d.json("PUT", "/v2/admin/models/digits/traffic",
                                {"weights": {"1": 1, "3": 1}, "stable": "1"})
        self.assertEqual(status, 200)
        before = parse_prom(self.scrape())
        reasons = []
        for _ in range(40):
            status, hdrs, _ = self.infer()
            self.assertEqual(status, 200)
            reasons.append(hdrs["x-route-reason"])
        after = parse_prom(self.scrape())
        fallbacks = reasons.count("fallback")
        self.assertGreater(fallbacks, 0)
        got = prom_value(after, "modelgate_fallbacks_total", model="digits", version="3") - \
            prom_value(before, "modelgate_fallbacks_total", model="digits", version="3")
        self.assertEqual(got, fallbacks)
        got = prom_value(after, "modelgate_route_decisions_total", model="digits", version="1", reason="fallback") - \
            prom_value(before, "modelgate_route_decisions_total", model="digits", version="1", reason="fallback")
        self.assertEqual(got, fallbacks)
        self.d.json("PUT", "/v2/admin/models/digits/traffic", {"weights": {"1": 1}, "stable": "1"})

    def test_05_metrics_listener_serves_metrics_only(self):
        text = self.scrape(self.d.metrics_port)
        self.assertIn("nv_inference_request_success", text)
        for path in ("/v2/health/live", "/v2/admin/stats", "/ui", "/debug/config"):
            status, _, body = _get(self.d.metrics_port, path)
            self.assertEqual(status, 404, path)
            self.assertIn("no endpoint", json.loads(body)["error"])
        status, _, _ = _get(self.d.metrics_port, "/metrics", method="POST")
        self.assertEqual(status, 405)

    def test_06_reports(self):
        status, stats = self.d.json("GET", "/v2/admin/stats")
        self.assertEqual(status, 200)
        model = [m for m in stats["models"] if m["name"] == "digits"][0]
        self.assertEqual([v["version"] for v in model["versions"]], ["1", "2", "3"])
        self.assertEqual(model["versions"][2]["state"], "FAILED")
        self.assertEqual(model["versions"][0]["breaker"]["state"], "closed")
        self.assertEqual(model["versions"][2]["breaker"]["state"], "open")
        self.assertIn("window", model["versions"][0])
        status, mem = self.d.json("GET", "/debug/memory")
        self.assertEqual(status, 200)
        self.assertGreater(mem["rss_bytes"], 10 << 20)
        self.assertIn("in_use_bytes", mem["malloc"])  # 0 under ASan, whose allocator glibc cannot see
        v1 = [v for v in mem["versions"] if v["version"] == "1"][0]
        self.assertEqual(len(v1["instances"]), 2)  # a small model: a session per loop (--threads 2)
        self.assertTrue("InUse" in v1["instances"][0] or "error" in v1["instances"][0], v1)
        status, cfg = self.d.json("GET", "/debug/config")
        self.assertEqual(status, 200)
        self.assertIn("revision", cfg)
        self.assertEqual(cfg["route_table"], {"routes": []})
        self.assertEqual([p["model"] for p in cfg["policies"]], ["digits"])
        status, hdrs, page = self.d.request("GET", "/ui")
        self.assertEqual(status, 200)
        self.assertTrue(hdrs["content-type"].startswith("text/html"))
        self.assertIn(b"/v2/admin/stats", page)
        self.assertNotIn(b"https://", page)  # self-contained: no CDN

    def test_07_access_log_and_json_log_context(self):
        tid = "0af7651916cd43dd8448eb211c80319c"
        status, hdrs, data = self.infer("/v2/models/digits/versions/2/infer",
                                        headers={"X-Trace-ID": tid, "X-AB-Group": "blue"})
        self.assertEqual(status, 200)
        self.assertEqual(self.infer("/v2/models/digits/versions/9/infer")[0], 404)
        deadline = time.time() + 10
        lines = []
        while time.time() < deadline:
            with open(self.access) as f:
                lines = [json.loads(l) for l in f if l.strip()]
            if any(l.get("trace_id") == tid for l in lines) and any(l["status"] == 404 for l in lines):
                break
            time.sleep(0.1)
        mine = [l for l in lines if l.get("trace_id") == tid]
        self.assertEqual(len(mine), 1, lines[-5:])
        line = mine[0]
        self.assertEqual((line["method"], line["path"], line["status"]),
                         ("POST", "/v2/models/digits/versions/2/infer", 200))
        self.assertEqual((line["model"], line["version"], line["route_reason"]), ("digits", "2", "url"))
        self.assertEqual(line["bytes_out"], len(data))
        self.assertGreater(line["bytes_in"], 100)
        self.assertGreater(line["latency_ms"], 0)
        self.assertRegex(line["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        self.assertTrue(any(l["status"] == 404 and "version" not in l for l in lines))
        # The JSON log's routing line carries the request's context as fields.
        self.assertTrue(self.d.wait_log('"trace_id":"%s"' % tid), "no log line with the trace id")
        routed = [json.loads(l) for l in list(self.d.log) if l.startswith("{") and '"routed ' in l]
        ctx = [l for l in routed if l.get("trace_id") == tid]
        self.assertEqual(len(ctx), 1, routed[-3:])
        self.assertEqual((ctx[0]["model"], ctx[0]["version"], ctx[0]["ab_group"], ctx[0]["route_reason"]),
                         ("digits", "2", "blue", "url"))
        loads = [json.loads(l) for l in list(self.d.log) if '"version ready' in l]
        self.assertTrue(all(l["model"] == "digits" for l in loads) and loads, loads)


def _get(port, path, method="GET"):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


class MetricsOffTest(unittest.TestCase):
    def test_metrics_off_and_prometheus_names(self):
        root, repo = mgtest.make_repo(with_test_models=False)
        try:
            d = Daemon(repo, args=["--metrics", "off"])
            try:
                status, _, _ = d.request("POST", "/v2/models/digits/infer", SAMPLE)
                self.assertEqual(status, 200)
                status, _, body = d.request("GET", "/metrics")
                self.assertEqual(status, 404)
                self.assertIn("--metrics off", json.loads(body)["error"])
                status, stats = d.json("GET", "/v2/admin/stats")
                self.assertEqual((status, stats["metrics"]), (200, False))
            finally:
                self.assertEqual(d.stop(), 0)
            # The same figures under Prometheus-style names pass promtool with no finding at all.
            d = Daemon(repo, args=["--metrics-names", "prometheus"])
            try:
                d.request("POST", "/v2/models/digits/infer", SAMPLE)
                status, _, body = d.request("GET", "/metrics")
                text = body.decode()
                self.assertNotIn("nv_inference", text)
                m = parse_prom(text)
                self.assertEqual(prom_value(m, "modelgate_inference_request_success_total", model="digits",
                                            version="2"), 1)
                self.assertGreater(prom_value(m, "modelgate_inference_compute_infer_duration_seconds_total",
                                              model="digits", version="2"), 0)
                self.assertEqual(promtool(text), (0, []))
            finally:
                self.assertEqual(d.stop(), 0)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def test_bad_flags(self):
        for args, want in ((["--metrics", "maybe"], "--metrics wants on or off"),
                           (["--metrics-listen", "nowhere"], "--metrics-listen wants ADDR:PORT"),
                           (["--trace-sample-ratio", "2"], "--trace-sample-ratio wants a ratio 0..1"),
                           (["--otlp-endpoint", "collector:4318"], "--otlp-endpoint wants an http://"),
                           (["--access-log", "/nonexistent/dir/a.log"], "--access-log: cannot open")):
            p = subprocess.run([mgtest.MG_BIN, "serve", "--repo", os.path.join(mgtest.SOURCE_DIR, "models"),
                                "--listen", "127.0.0.1:0", *args], capture_output=True, text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0, args)
            self.assertIn(want, p.stderr, args)


FAULTS = os.environ.get("MG_FAULTS", "1") not in ("0", "OFF", "")


class GrpcMetricsTest(unittest.TestCase):
    """gRPC calls go through the same request core: counted and traced-for-logs alike."""

    def test_grpc_calls_are_counted(self):
        import mggrpc
        import struct
        pb, pbg = mggrpc.stubs()
        root, repo = mgtest.make_repo(with_test_models=False)
        d = Daemon(repo, args=["--grpc-listen", "127.0.0.1:0"])
        try:
            stub = pbg.GRPCInferenceServiceStub(mggrpc.channel(d.grpc_port))
            pixels = SAMPLE["inputs"][0]["data"]
            for _ in range(5):
                req = pb.ModelInferRequest(model_name="digits", model_version="1")
                req.inputs.add(name="input", datatype="FP32", shape=[1, 64])
                req.raw_input_contents.append(struct.pack("<64f", *pixels))
                stub.ModelInfer(req, timeout=30)
            bad = pb.ModelInferRequest(model_name="digits", model_version="1")
            bad.inputs.add(name="input", datatype="FP32", shape=[1, 3])
            bad.raw_input_contents.append(struct.pack("<3f", 1, 2, 3))
            with self.assertRaises(Exception):
                stub.ModelInfer(bad, timeout=30)
            _, _, body = d.request("GET", "/metrics")
            m = parse_prom(body.decode())
            self.assertEqual(prom_value(m, "nv_inference_request_success", model="digits", version="1"), 5)
            self.assertEqual(prom_value(m, "nv_inference_request_failure", model="digits", version="1",
                                        reason="OTHER"), 1)
            self.assertEqual(prom_value(m, "modelgate_route_decisions_total", model="digits", version="1",
                                        reason="url"), 6)
        finally:
            self.assertEqual(d.stop(), 0)
            shutil.rmtree(root, ignore_errors=True)


@unittest.skipUnless(FAULTS, "this build has no fault-injection hook (cmake -DMG_FAULTS=ON)")
class BreakerMetricsTest(unittest.TestCase):
    """A canary that fails every Run under 50/50: the clients see no failure, and the figures say
    what happened: its failures, the fallbacks, the stable version's replays, the open breaker."""

    def test_failing_canary(self):
        from test_breaker import add_model  # the breaker tests' repository helper
        breaker = {"consecutive_failures": 3, "failure_ratio": 0, "ejection_ms": 600000,
                   "max_ejection_ms": 600000, "probes": 1}
        root, repo = mgtest.make_repo(with_test_models=False,
                                      extra=lambda r: add_model(r, "canary", config={"breaker": breaker}))
        d = Daemon(repo)
        try:
            status, _ = d.json("PUT", "/v2/admin/models/canary/traffic", {"weights": {"1": 1, "2": 1}, "stable": "1"})
            self.assertEqual(status, 200)
            status, _ = d.json("PUT", "/v2/admin/models/canary/versions/2/fault", {"fail_every": 1})
            self.assertEqual(status, 200)
            why = []
            for _ in range(60):
                status, hdrs, _ = d.request("POST", "/v2/models/canary/infer", SAMPLE)
                self.assertEqual(status, 200)
                self.assertEqual(hdrs["x-model-version"], "1")
                why.append(hdrs.get("x-fallback-reason"))
            replays, ejected = why.count("run-failed"), why.count("breaker-open")
            self.assertEqual(replays, 3)  # the breaker opened after 3 failures in a row
            self.assertGreater(ejected, 0)
            _, _, body = d.request("GET", "/metrics")
            m = parse_prom(body.decode())
            self.assertEqual(prom_value(m, "nv_inference_request_failure", model="canary", version="2",
                                        reason="BACKEND"), replays)
            self.assertEqual(prom_value(m, "nv_inference_request_success", model="canary", version="2"), 0)
            self.assertEqual(prom_value(m, "nv_inference_request_success", model="canary", version="1"), 60)
            self.assertEqual(prom_value(m, "modelgate_fallbacks_total", model="canary", version="2"),
                             replays + ejected)
            self.assertEqual(prom_value(m, "modelgate_route_decisions_total", model="canary", version="1",
                                        reason="fallback"), replays + ejected)
            self.assertEqual(prom_value(m, "modelgate_breaker_state", model="canary", version="2"), 2)
            self.assertEqual(prom_value(m, "modelgate_breaker_trips_total", model="canary", version="2"), 1)
            self.assertEqual(prom_value(m, "modelgate_breaker_state", model="canary", version="1"), 0)
            time.sleep(1.2)  # a sampler snapshot after the last request
            _, stats = d.json("GET", "/v2/admin/stats")
            v2 = [v for v in stats["models"][0]["versions"] if v["version"] == "2"][0]
            self.assertEqual((v2["breaker"]["state"], v2["breaker"]["trips"], v2["breaker"]["last_trip"]),
                             ("open", 1, "consecutive-failures"))
            self.assertEqual(v2["window"]["fallbacks"], replays + ejected)
            self.assertEqual(v2["window"]["fallback_rate"], 1.0)
            self.assertEqual(v2["window"]["errors"], replays)
        finally:
            d.stop()
            shutil.rmtree(root, ignore_errors=True)


class PrometheusServerTest(unittest.TestCase):
    """A real Prometheus server scrapes modelgate; its query API must see what was sent."""

    def test_prometheus_scrapes_counts_per_version(self):
        root, repo = mgtest.make_repo(with_test_models=False)
        tmp = tempfile.mkdtemp(prefix="mg-prom-")
        d = prom = None
        try:
            d = Daemon(repo, args=["--metrics-listen", "127.0.0.1:0"])
            port = mgtest.free_port()
            with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
                f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                        "scrape_configs:\n"
                        "  - job_name: modelgate\n"
                        "    static_configs: [{targets: ['127.0.0.1:%d']}]\n" % d.metrics_port)
            log_path = os.path.join(tmp, "prom.log")
            with open(log_path, "w") as log:
                prom = subprocess.Popen([PROMETHEUS, "--config.file=" + os.path.join(tmp, "prometheus.yml"),
                                         "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                                         "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
                                        stdout=subprocess.DEVNULL, stderr=log)
            sent = mgtest.split_traffic(d, {"1": 3, "2": 1}, "1", 120, SAMPLE)
            self.assertTrue(sent["1"] > 0 and sent["2"] > 0, sent)
            base = "http://127.0.0.1:%d" % port
            query = urllib.parse.urlencode({"query": 'nv_inference_request_success{model="digits"}'})
            seen, deadline = {}, time.time() + 60
            while time.time() < deadline:
                try:
                    with urllib.request.urlopen(base + "/api/v1/query?" + query, timeout=5) as r:
                        res = json.load(r)["data"]["result"]
                    seen = {x["metric"]["version"]: int(float(x["value"][1])) for x in res}
                    if seen == sent:
                        break
                except OSError:
                    pass
                if prom.poll() is not None:
                    with open(log_path) as f:
                        self.fail("prometheus exited: " + f.read())
                time.sleep(0.5)
            self.assertEqual(seen, sent, "Prometheus saw %s, modelgate was sent %s" % (seen, sent))
            # Prometheus judged the target healthy: it parsed every scrape.
            with urllib.request.urlopen(base + "/api/v1/targets", timeout=5) as r:
                targets = json.load(r)["data"]["activeTargets"]
            self.assertEqual([t["health"] for t in targets], ["up"], targets)
        finally:
            if prom is not None:
                prom.terminate()
                try:
                    prom.wait(20)
                except subprocess.TimeoutExpired:
                    prom.kill()
                    prom.wait()
            if d is not None:
                d.stop()
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
