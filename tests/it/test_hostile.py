"""Hostile requests over raw sockets: each gets its documented status (README "Limits") with the
JSON error shape, a normal request is answered correctly after each, and the daemon's memory
stays within 32 MiB of where it started over the whole suite."""
import json
import os
import shutil
import struct
import threading
import time
import unittest

import mgtest
from mgtest import Daemon

SAMPLE = mgtest.digits_sample()
SAMPLE_LABEL = int(open(os.path.join(mgtest.SOURCE_DIR, "models", "digits", "sample_label.txt")).read())
SAMPLE_BODY = json.dumps(SAMPLE).encode()
RSS_SLACK_KIB = 32 * 1024
TIMEOUT_MS = 2000  # --header-timeout-ms and --body-timeout-ms of the daemon under test


Conn = mgtest.RawConn


class HostileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(with_test_models=False)
        cls.d = Daemon(cls.repo, args=["--header-timeout-ms", str(TIMEOUT_MS), "--body-timeout-ms", str(TIMEOUT_MS)])
        for _ in range(20):  # warm the loops and their buffers before the baseline
            cls.d.request("POST", "/v2/models/digits/infer", SAMPLE_BODY)
        cls.rss_start = cls.d.rss_kib()
        cls.rss_peak = cls.rss_start

    @classmethod
    def tearDownClass(cls):
        rss_end = cls.d.rss_kib()
        code = cls.d.stop()
        shutil.rmtree(cls.root, ignore_errors=True)
        assert code == 0, "modelgate exited with %s:\n%s" % (code, "".join(cls.d.log))
        grown = max(rss_end, cls.rss_peak) - cls.rss_start
        print("rss: start %d KiB, peak %d KiB, end %d KiB" % (cls.rss_start, cls.rss_peak, rss_end))
        assert grown <= RSS_SLACK_KIB, "RSS grew by %d KiB over the suite" % grown

    def connect(self):
        return Conn(self.d.port)

    def raw(self, data, sender=None):
        """Sends `data` (bytes, or a callable that writes to the socket) on a new connection
        and reads one response."""
        s = self.connect()
        try:
            if sender is not None:
                t = threading.Thread(target=self.quiet_send, args=(sender, s))
                t.start()
            else:
                try:
                    s.send(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server may answer and stop reading before everything is sent
            r = s.response()
            if sender is not None:
                t.join(30)
            return r
        finally:
            s.close()

    @staticmethod
    def quiet_send(fn, s):
        try:
            fn(s)
        except OSError:
            pass

    def tearDown(self):
        # After each hostile request, an ordinary one is answered, and answered right.
        s, b = self.d.json("POST", "/v2/models/digits/infer", SAMPLE)
        self.assertEqual(s, 200, b)
        probs = b["outputs"][0]["data"]
        self.assertEqual(probs.index(max(probs)), SAMPLE_LABEL)
        type(self).rss_peak = max(self.rss_peak, self.d.rss_kib())

    def assert_error(self, resp, status, fragment):
        got, hdrs, body = resp
        self.assertEqual(got, status, body)
        self.assertEqual(hdrs.get("content-type"), "application/json")
        msg = json.loads(body)["error"]
        self.assertIn(fragment, msg)
        return hdrs

    # ---- request line and headers ----

    def test_malformed_request_lines(self):
        for line in [b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET /v2\r\n\r\n", b"GET  /v2 HTTP/1.1\r\n\r\n",
                     b"GET /v2 HTTP/2.0\r\n\r\n", b"GET v2 HTTP/1.1\r\n\r\n", b"G\x01T /v2 HTTP/1.1\r\n\r\n",
                     b"GET /v2 HTTP/1.1\nHost: x\n\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"]:
            with self.subTest(line=line):
                resp = self.raw(line)
                self.assertEqual(resp[0], 400, (line, resp))
                self.assertIn("error", json.loads(resp[2]))

    def test_request_line_of_100kb(self):
        self.assert_error(self.raw(b"GET /v2/" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"), 414,
                          "request line is longer than 8192 bytes")

    def test_header_of_200kb(self):
        self.assert_error(self.raw(b"GET /v2 HTTP/1.1\r\nX-Big: " + b"b" * 200000 + b"\r\n\r\n"), 431,
                          "header field 1 is longer than 8192 bytes")

    def test_ten_thousand_headers(self):
        hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(10000))
        self.assert_error(self.raw(b"GET /v2 HTTP/1.1\r\n" + hdrs + b"\r\n"), 431, "more than 100 header fields")

    def test_header_section_over_its_limit(self):
        hdrs = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 8000) for i in range(9))
        self.assert_error(self.raw(b"GET /v2 HTTP/1.1\r\n" + hdrs + b"\r\n"), 431,
                          "header section is larger than 65536 bytes")

    def test_header_with_control_character_or_folding(self):
        self.assert_error(self.raw(b"GET /v2 HTTP/1.1\r\nX-A: a\x00b\r\n\r\n"), 400, "control character")
        self.assert_error(self.raw(b"GET /v2 HTTP/1.1\r\nX-A: a\r\n  folded\r\n\r\n"), 400, "line folding")
        self.assert_error(self.raw(b"GET /v2 HTTP/1.1\r\nX-A : a\r\n\r\n"), 400, "malformed header")

    # ---- bodies ----

    def test_content_length_with_transfer_encoding(self):
        body = b"5\r\n{\"a\":\r\n0\r\n\r\n"
        self.assert_error(self.raw(b"POST /v2/models/digits/infer HTTP/1.1\r\nContent-Length: %d\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n" % len(body) + body), 400,
                          "Content-Length and Transfer-Encoding together")

    def test_two_content_lengths_and_unknown_encoding(self):
        self.assert_error(self.raw(b"POST /v2 HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"), 400,
                          "two different Content-Length")
        self.assert_error(self.raw(b"POST /v2 HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 400,
                          "Transfer-Encoding")

    def test_body_over_the_limit_is_refused_before_reading_it(self):
        # 10^8 FP32 elements as JSON: about 200 MB, over the 64 MiB default; refused from its length.
        s = self.connect()
        try:
            s.send(b"POST /v2/models/digits/infer HTTP/1.1\r\nContent-Length: 200000001\r\n\r\n[")
            self.assert_error(s.response(), 413, "larger than the 67108864-byte limit")
        finally:
            s.close()

    def test_a_million_one_byte_chunks(self):
        head = b"POST /v2/models/digits/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"

        def send(s):
            s.send(head)
            block = b"1\r\nx\r\n" * 10000
            for _ in range(100):
                s.send(block)
            s.send(b"0\r\n\r\n")
        self.assert_error(self.raw(None, sender=send), 413, "chunked body of more than 65536 chunks")

    def test_chunked_body_is_decoded(self):
        body = SAMPLE_BODY
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 100]), body[i:i + 100]) for i in range(0, len(body), 100))
        st, _, data = self.raw(b"POST /v2/models/digits/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                               b"Connection: close\r\n\r\n" + chunks + b"0\r\nX-Trailer: t\r\n\r\n")
        self.assertEqual(st, 200, data)

    def test_chunk_size_that_overflows(self):
        self.assert_error(self.raw(b"POST /v2/models/digits/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"10000000000000001\r\nx\r\n"), 400, "chunk size of more than 16 hex digits")
        self.assert_error(self.raw(b"POST /v2/models/digits/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"fffffffffffffff\r\nx\r\n"), 413, "larger than the")
        self.assert_error(self.raw(b"POST /v2/models/digits/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"zz\r\nx\r\n"), 400, "chunk size")

    # ---- slow clients ----

    def test_slowloris_headers(self):
        def send(s):
            for ch in b"GET /v2 HTTP/1.1\r\nX-Slow: " + b"s" * 30:
                s.send(bytes([ch]))
                time.sleep(1.0)
        t0 = time.time()
        self.assert_error(self.raw(None, sender=send), 408, "did not arrive within %d ms" % TIMEOUT_MS)
        self.assertLess(time.time() - t0, TIMEOUT_MS / 1000 + 10)

    def test_slowloris_body(self):
        def send(s):
            s.send(b"POST /v2/models/digits/infer HTTP/1.1\r\nContent-Length: 100\r\n\r\n")
            for _ in range(30):
                s.send(b"{")
                time.sleep(1.0)
        self.assert_error(self.raw(None, sender=send), 408, "request body did not arrive within")

    def test_connection_that_sends_nothing(self):
        s = self.connect()
        try:
            self.assert_error(s.response(), 408, "did not arrive within")
        finally:
            s.close()

    # ---- pipelining ----

    def test_pipelined_burst_with_an_error_in_the_middle(self):
        good = b"POST /v2/models/digits/infer HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(SAMPLE_BODY),
                                                                                          SAMPLE_BODY)
        s = self.connect()
        try:
            s.send(good * 3 + b"BROKEN LINE\r\n\r\n" + good * 3)
            for _ in range(3):
                st, _, body = s.response()
                self.assertEqual(st, 200, body)
            st, hdrs, body = s.response()
            self.assertEqual(st, 400, body)
            self.assertEqual(hdrs.get("connection"), "close")
            self.assertEqual(s.response(timeout=5)[0], None)  # nothing after the error
        finally:
            s.close()

    def test_pipelined_request_that_arrives_in_parts(self):
        """The next request is here only in part when the answer before it is written: its rest,
        sent after that answer was read, is read and answered (head cut, then body cut)."""
        good = b"POST /v2/models/digits/infer HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(SAMPLE_BODY),
                                                                                          SAMPLE_BODY)
        live = b"GET /v2/health/live HTTP/1.1\r\n\r\n"
        for cut in (10, good.index(b"\r\n\r\n") + 20):
            with self.subTest(cut=cut):
                s = self.connect()
                try:
                    s.send(live + good[:cut])
                    self.assertEqual(s.response()[0], 200)
                    s.send(good[cut:])
                    st, _, body = s.response(timeout=5)
                    self.assertEqual(st, 200, body)
                    self.assertEqual(json.loads(body)["model_name"], "digits")
                finally:
                    s.close()

    def test_pipelining_deeper_than_the_limit(self):
        s = self.connect()
        try:
            s.send(b"GET /v2/health/live HTTP/1.1\r\n\r\n" * 100)
            statuses = []
            while True:
                st = s.response(timeout=5)[0]
                if st is None:
                    break
                statuses.append(st)
            self.assertEqual(statuses, [200] * 64 + [429])
        finally:
            s.close()

    # ---- JSON ----

    def infer_raw(self, body, headers=b""):
        return self.raw(b"POST /v2/models/digits/infer HTTP/1.1\r\nContent-Length: %d\r\nConnection: close\r\n%s\r\n%s"
                        % (len(body), headers, body))

    def test_json_nested_100000_levels(self):
        self.assert_error(self.infer_raw(b'{"x":' + b"[" * 100000 + b"]" * 100000 + b"}"), 400, "nesting deeper than 64")
        self.assert_error(self.infer_raw(b'{"x":' * 100000 + b"1" + b"}" * 100000), 400, "nesting deeper than 64")
        body = b'{"inputs":[{"name":"input","shape":[1,64],"datatype":"FP32","data":' + b"[" * 100000 + b"]" * 100000 + b"}]}"
        self.assert_error(self.infer_raw(body), 400, "nesting deeper than 64")

    def test_shape_of_ten_to_the_eight_elements(self):
        body = json.dumps({"inputs": [{"name": "input", "shape": [100000000, 64], "datatype": "FP32",
                                       "data": [0] * 64}]}).encode()
        self.assert_error(self.infer_raw(body), 400, "needs 6400000000 elements, got 64")

    def test_dims_whose_product_overflows(self):
        body = json.dumps({"inputs": [{"name": "input", "shape": [4294967296, 4294967296, 64], "datatype": "FP32",
                                       "data": [0] * 64}]}).encode()
        st, _, data = self.infer_raw(body)
        self.assertEqual(st, 400, data)
        self.assertIn("error", json.loads(data))

    def test_nan_and_infinity_literals(self):
        for lit in [b"NaN", b"Infinity", b"-Infinity", b"nan", b"1e999999"]:
            with self.subTest(lit=lit):
                body = b'{"inputs":[{"name":"input","shape":[1,64],"datatype":"FP32","data":[' + b"0," * 63 + lit + b"]}]}"
                st, _, data = self.infer_raw(body)
                self.assertEqual(st, 400, data)
        # As strings they are the documented way to send non-finite values.
        body = b'{"inputs":[{"name":"input","shape":[1,64],"datatype":"FP32","data":[' + b"0," * 63 + b'"NaN"]}]}'
        self.assertEqual(self.infer_raw(body)[0], 200)

    def test_binary_lengths_that_lie(self):
        header = json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                                         "parameters": {"binary_data_size": 256}}]}).encode()
        raw = struct.pack("<64f", *SAMPLE["inputs"][0]["data"])
        cases = [(header + raw[:100], len(header), "binary"),           # fewer bytes than declared
                 (header + raw + b"xx", len(header), "binary"),         # more
                 (header + raw, len(header) + 1000, "Inference-Header-Content-Length"),  # header past the body
                 (header + raw, 5, "")]                                 # header cut in the middle
        for body, hlen, fragment in cases:
            with self.subTest(hlen=hlen, n=len(body)):
                st, _, data = self.infer_raw(body, b"Inference-Header-Content-Length: %d\r\n" % hlen)
                self.assertEqual(st, 400, data)
                self.assertIn(fragment, json.loads(data)["error"])
        st, _, data = self.infer_raw(header + raw, b"Inference-Header-Content-Length: -1\r\n")
        self.assertEqual(st, 400, data)

    # ---- names ----

    def test_model_names_that_are_paths_or_huge(self):
        for name in ["..%2f..%2fetc%2fpasswd", "..", "%2e%2e", "digits%00", "%00", "..%2f..%2fdigits%00"]:
            with self.subTest(name=name):
                st, _, data = self.raw(b"POST /v2/models/%s/infer HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s"
                                       % (name.encode(), len(SAMPLE_BODY), SAMPLE_BODY))
                self.assertIn(st, (404, 400), data)
                self.assertNotIn(self.repo, data.decode("latin-1"))
        # Dot segments are resolved in the URL, as any server does: this is digits' own URL.
        st, _, data = self.raw(b"POST /v2/models/digits%%2f..%%2fdigits/infer HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s"
                               % (len(SAMPLE_BODY), SAMPLE_BODY))
        self.assertEqual((st, json.loads(data).get("model_name")), (200, "digits"), data)
        for name in ["..%2fdigits", "%2e%2e%2fdigits"]:
            st, _, data = self.raw(b"POST /v2/repository/models/%s/load HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
                                   % name.encode())
            self.assertEqual(st, 404, data)
        self.assert_error(self.raw(b"POST /v2/models/%s/infer HTTP/1.1\r\n\r\n" % (b"m" * 10240)), 414,
                          "request line is longer")
        body = json.dumps({"model": "m" * 10240, "data": [0] * 64}).encode()
        st, _, data = self.raw(b"POST /predict HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        self.assertEqual(st, 404, data)
        self.assertLess(len(data), 1024)  # the name is quoted in part, not echoed whole

    def test_error_messages_hold_no_paths(self):
        st, b = self.d.json("POST", "/v2/repository/index")
        self.assertEqual(st, 200)
        self.assertNotIn(self.root, json.dumps(b))
        st, _, data = self.d.request("GET", "/v2/health/ready")
        self.assertNotIn(self.root, data.decode())


if __name__ == "__main__":
    unittest.main()
