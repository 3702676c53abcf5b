"""Traces over real HTTP: W3C trace context in and out, spans exported over OTLP/HTTP (JSON
encoding) to a test receiver that decodes them, parent/child links and attributes, sampling,
and what happens when the collector is down."""
import http.server
import json
import shutil
import threading
import time
import unittest

import mgtest
from mgtest import Daemon, parse_prom, prom_value

SAMPLE = mgtest.digits_sample()
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class Receiver:
    """A minimal OTLP/HTTP traces receiver: POST /v1/traces with Content-Type application/json,
    each body an ExportTraceServiceRequest; keeps every span with its resource's attributes."""

    def __init__(self, port=0):
        self.spans = []
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.requests.append((self.path, self.headers.get("Content-Type")))
                    doc = json.loads(body)
                    for rs in doc["resourceSpans"]:
                        res = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
                        for ss in rs["scopeSpans"]:
                            for sp in ss["spans"]:
                                sp["_resource"] = res
                                sp["_scope"] = ss["scope"]
                                outer.spans.append(sp)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                # One request a connection, so stopping the server stops the receiving too.
                self.send_header("Connection", "close")
                self.close_connection = True
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def wait(self, pred, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                got = [s for s in self.spans if pred(s)]
            if got:
                return got
            time.sleep(0.05)
        return []


def attrs(span):
    out = {}
    for a in span.get("attributes", []):
        v = a["value"]
        out[a["key"]] = int(v["intValue"]) if "intValue" in v else v.get("stringValue")
    return out


class TracingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rx = Receiver()
        cls.root, cls.repo = mgtest.make_repo(with_test_models=False)
        # The endpoint without a path gets OTLP's /v1/traces.
        cls.d = Daemon(cls.repo, args=["--otlp-endpoint", "http://127.0.0.1:%d" % cls.rx.port,
                                       "--trace-sample-ratio", "1"])

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        cls.rx.stop()
        shutil.rmtree(cls.root, ignore_errors=True)
        assert code == 0, "modelgate exited %s" % code

    def test_01_spans_continue_the_callers_trace(self):
        status, hdrs, _ = self.d.request("POST", "/v2/models/digits/infer", SAMPLE, headers={
            "traceparent": "00-%s-%s-01" % (TRACE, PARENT), "tracestate": "vendor=abc",
            "X-AB-Group": "blue", "X-Stage": "gray", "X-Trace-ID": "req-42"})
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["x-trace-id"], "req-42")  # kept and returned as before
        tp = hdrs["traceparent"].split("-")
        self.assertEqual((tp[0], tp[1], tp[3]), ("00", TRACE, "01"))
        self.assertEqual(hdrs["tracestate"], "vendor=abc")
        spans = self.rx.wait(lambda s: s["traceId"] == TRACE and s["name"] == "onnxruntime.run")
        self.assertTrue(spans, "no inference span arrived")
        time.sleep(0.3)
        with self.rx.lock:
            mine = {s["name"]: s for s in self.rx.spans if s["traceId"] == TRACE}
        self.assertEqual(set(mine), {"POST /v2/models/{}/infer", "route", "onnxruntime.run"})
        server, route, run = mine["POST /v2/models/{}/infer"], mine["route"], mine["onnxruntime.run"]
        # The server span is the child of the caller's, the one the response names; the others its.
        self.assertEqual(server["parentSpanId"], PARENT)
        self.assertEqual(server["spanId"], tp[2])
        self.assertEqual(server["kind"], 2)
        self.assertEqual(server["traceState"], "vendor=abc")
        self.assertEqual(route["parentSpanId"], server["spanId"])
        self.assertEqual(run["parentSpanId"], server["spanId"])
        self.assertEqual(len({server["spanId"], route["spanId"], run["spanId"]}), 3)
        a = attrs(server)
        self.assertEqual((a["url.path"], a["http.response.status_code"], a["modelgate.model"]),
                         ("/v2/models/digits/infer", 200, "digits"))
        a = attrs(route)
        self.assertEqual(a["modelgate.model"], "digits")
        self.assertEqual(a["modelgate.version.served"], 2)
        self.assertEqual(a["modelgate.route_reason"], "default")
        self.assertEqual((a["modelgate.ab_group"], a["modelgate.stage"], a["modelgate.rule"]),
                         ("blue", "gray", "-"))
        a = attrs(run)
        self.assertEqual((a["modelgate.version"], a["modelgate.batch_size"]), (2, 1))
        # Spans nest in time: the run inside the request.
        t = lambda s, k: int(s[k])
        self.assertLessEqual(t(server, "startTimeUnixNano"), t(run, "startTimeUnixNano"))
        self.assertLessEqual(t(run, "endTimeUnixNano"), t(server, "endTimeUnixNano"))
        self.assertLess(abs(t(server, "startTimeUnixNano") / 1e9 - time.time()), 60)
        self.assertEqual(server["_resource"]["service.name"], {"stringValue": "modelgate"})
        with self.rx.lock:
            self.assertTrue(all(r == ("/v1/traces", "application/json") for r in self.rx.requests),
                            self.rx.requests)

    def test_02_routing_attributes_under_a_policy(self):
        status, _ = self.d.json("PUT", "/v2/admin/models/digits/traffic",
                                {"weights": {"1": 1, "2": 0}, "stable": "1", "ab_groups": {"exp": "2"}})
        self.assertEqual(status, 200)
        tid = "0af7651916cd43dd8448eb211c80319c"
        status, hdrs, _ = self.d.request("POST", "/v2/models/digits/infer", SAMPLE,
                                         headers={"X-AB-Group": "exp", "X-Trace-ID": tid})
        self.assertEqual(status, 200)
        # Without traceparent, a W3C-shaped X-Trace-ID names the trace.
        self.assertEqual(hdrs["traceparent"].split("-")[1], tid)
        route = self.rx.wait(lambda s: s["traceId"] == tid and s["name"] == "route")
        self.assertTrue(route)
        a = attrs(route[0])
        self.assertEqual((a["modelgate.version.chosen"], a["modelgate.version.served"],
                          a["modelgate.route_reason"], a["modelgate.policy"]), (2, 2, "ab-group", "admin"))
        self.assertNotIn("parentSpanId", [s for s in self.rx.spans if s["traceId"] == tid
                                          and s["kind"] == 2][0])
        self.d.json("PUT", "/v2/admin/models/digits/traffic", {"weights": {"2": 1}, "stable": "2"})

    def test_03_failures_and_unsampled_parents(self):
        t1 = "1" * 32
        status, _, _ = self.d.request("POST", "/v2/models/digits/versions/7/infer", SAMPLE,
                                      headers={"traceparent": "00-%s-%s-01" % (t1, PARENT)})
        self.assertEqual(status, 404)
        server = self.rx.wait(lambda s: s["traceId"] == t1 and s["kind"] == 2)
        self.assertTrue(server)
        self.assertEqual(server[0]["status"]["code"], 2)
        self.assertEqual(attrs(server[0])["http.response.status_code"], 404)
        self.assertIn("version", server[0]["status"]["message"])
        # The caller decided not to sample: nothing is exported for that trace.
        t2 = "2" * 32
        status, hdrs, _ = self.d.request("POST", "/v2/models/digits/infer", SAMPLE,
                                         headers={"traceparent": "00-%s-%s-00" % (t2, PARENT)})
        self.assertEqual(status, 200)
        self.assertTrue(hdrs["traceparent"].endswith("-00"))
        time.sleep(0.8)
        with self.rx.lock:
            self.assertFalse([s for s in self.rx.spans if s["traceId"] == t2])
        # A malformed traceparent starts a new trace.
        status, hdrs, _ = self.d.request("POST", "/v2/models/digits/infer", SAMPLE,
                                         headers={"traceparent": "00-zz-%s-01" % PARENT})
        self.assertEqual(status, 200)
        self.assertNotIn("zz", hdrs["traceparent"])

    def test_04_load_spans(self):
        loads = self.rx.wait(lambda s: s["name"] == "model load")
        self.assertTrue(loads)
        seen = {(attrs(s)["modelgate.model"], attrs(s)["modelgate.version"], attrs(s)["modelgate.load.outcome"])
                for s in self.rx.wait(lambda s: s["name"] == "model load")}
        self.assertIn(("digits", 1, "success"), seen)
        self.assertIn(("digits", 2, "success"), seen)

    def test_05_collector_down(self):
        """With the receiver stopped, requests still succeed, and the dropped-span count rises."""
        def dropped():
            _, _, body = self.d.request("GET", "/metrics")
            return prom_value(parse_prom(body.decode()), "modelgate_trace_spans_dropped_total",
                              reason="export_failed")
        _, _, body = self.d.request("GET", "/metrics")
        self.assertGreater(prom_value(parse_prom(body.decode()), "modelgate_trace_spans_exported_total"), 0)
        before = dropped()
        self.rx.stop()
        try:
            t0 = time.time()
            for _ in range(50):
                status, _, _ = self.d.request("POST", "/v2/models/digits/infer", SAMPLE)
                self.assertEqual(status, 200)
            self.assertLess(time.time() - t0, 20)
            deadline = time.time() + 15
            while time.time() < deadline and dropped() < before + 150:
                time.sleep(0.2)
            self.assertGreaterEqual(dropped(), before + 150)  # 3 spans a request
        finally:
            # Back up on the same port for the tests that may follow.
            self.__class__.rx = Receiver(self.rx.port)


if __name__ == "__main__":
    unittest.main()
