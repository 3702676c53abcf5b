"""The canary page in a real headless Chromium, driven over the DevTools protocol (on a pipe, so
nothing but the standard library is needed): under a 90/10 split its rendered numbers must be
those of /v2/admin/stats, it must load nothing from outside, and a screenshot is taken."""
import base64
import decimal
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import mgtest
from mgtest import Daemon

SAMPLE = mgtest.digits_sample()
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOT = os.path.join(mgtest.BUILD_DIR, "test-artifacts", "ui.png")


class Chromium:
    """Headless Chromium with --remote-debugging-pipe: DevTools messages are JSON objects ended
    by a NUL byte, read by the browser from fd 3 and written by it to fd 4."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="mg-chromium-")
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()

        def fds():
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--user-data-dir=" + self.profile, "--window-size=1280,800",
             "--remote-debugging-pipe", "about:blank"],
            pass_fds=(3, 4), preexec_fn=fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self.next_id = 0
        self.buf = b""
        self.events = []

    def _read_message(self, deadline):
        import select
        while b"\0" not in self.buf:
            left = deadline - time.time()
            if left <= 0 or not select.select([self.from_child], [], [], left)[0]:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self.from_child, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed the pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, session=None, timeout=30, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.events.append(m)

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_child)
        os.close(self.from_child)
        shutil.rmtree(self.profile, ignore_errors=True)


# What the page shows for each field of a version, formatted as the page formats it.
def fixed(x, digits):
    """JavaScript's Number.prototype.toFixed: the exact binary value, ties rounded up."""
    q = decimal.Decimal(1).scaleb(-digits)
    return str(decimal.Decimal(x).quantize(q, rounding=decimal.ROUND_HALF_UP))


def pct(x):
    return fixed(100 * x, 1) + " %"


def ms(x):
    return fixed(x, 0) if x >= 100 else fixed(x, 1) if x >= 10 else fixed(x, 2)


class UiTest(unittest.TestCase):
    def test_page_matches_stats_under_90_10(self):
        root, repo = mgtest.make_repo(with_test_models=False)
        d = browser = None
        try:
            d = Daemon(repo)
            sent = mgtest.split_traffic(d, {"1": 90, "2": 10}, "1", 300, SAMPLE)
            time.sleep(2.2)  # the sampler's next snapshot holds them all

            browser = Chromium()
            target = browser.call("Target.createTarget", url="about:blank")["targetId"]
            session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            browser.call("Network.enable", session)
            browser.call("Page.enable", session)
            url = "http://127.0.0.1:%d/ui" % d.port
            browser.call("Page.navigate", session, url=url)

            def evaluate(expr):
                r = browser.call("Runtime.evaluate", session, expression=expr, returnByValue=True)
                return r["result"].get("value")

            # Wait for two renders: the first at load, the next one 2 s later (the refresh works).
            deadline = time.time() + 30
            while time.time() < deadline and (evaluate("Number(document.body.dataset.rendered || 0)") or 0) < 2:
                time.sleep(0.2)
            self.assertGreaterEqual(evaluate("Number(document.body.dataset.rendered || 0)"), 2,
                                    "the page did not render twice")
            # The page's numbers and the server's must come from the same window snapshot. The
            # sampler takes one a second and the page refreshes every 2 s, so the two can stay in a
            # phase where the page always shows the snapshot just before the server's current one:
            # the test keeps every snapshot it has read, by number (each lives about a second and
            # is read every 0.1 s), until the page shows one of them.
            read_cells = """JSON.stringify({sample: document.body.dataset.sample, cells:
                [...document.querySelectorAll('td[data-field]')].map(
                    c => [c.dataset.model, c.dataset.version, c.dataset.field, c.textContent])})"""
            seen = {}
            deadline = time.time() + 30
            while True:
                _, snap = d.json("GET", "/v2/admin/stats")
                seen[str(snap["sample"])] = snap
                page = json.loads(evaluate(read_cells))
                if page["sample"] in seen or time.time() > deadline:
                    break
                time.sleep(0.1)
            self.assertIn(page["sample"], seen, "no render matched a snapshot read")
            stats = seen[page["sample"]]
            shot = browser.call("Page.captureScreenshot", session, format="png")["data"]
            os.makedirs(os.path.dirname(SHOT), exist_ok=True)
            with open(SHOT, "wb") as f:
                f.write(base64.b64decode(shot))
            png = base64.b64decode(shot)
            self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
            self.assertGreater(len(png), 10000)

            # Nothing but this server was asked for anything (no CDN, no fonts, no analytics).
            urls = [e["params"]["request"]["url"] for e in browser.events
                    if e.get("method") == "Network.requestWillBeSent"]
            self.assertIn(url, urls)
            self.assertTrue(any(u.endswith("/v2/admin/stats") for u in urls), urls)
            self.assertEqual([u for u in urls if not u.startswith("http://127.0.0.1:%d/" % d.port)], [])

            shown = {}
            for model, version, field, text in page["cells"]:
                shown[(model, version, field)] = text
            self.assertEqual([m["name"] for m in stats["models"]], ["digits"])
            va = {v["version"]: v for v in stats["models"][0]["versions"]}
            self.assertEqual(sorted(va), ["1", "2"])
            served = {k: v["window"]["requests"] for k, v in va.items()}
            self.assertEqual(served, sent)
            self.assertGreater(served["1"], served["2"])  # 90/10, by chance, but never close
            for ver in ("1", "2"):
                a = va[ver]
                w = a["window"]
                self.assertEqual(shown[("digits", ver, "weight")], str(a["weight"]))
                self.assertEqual(shown[("digits", ver, "weight_share")], pct(a["weight_share"]))
                self.assertEqual(shown[("digits", ver, "share")], pct(w["share"]))
                self.assertEqual(shown[("digits", ver, "rate")], fixed(w["rate"], 1))
                self.assertEqual(shown[("digits", ver, "p50_ms")], ms(w["p50_ms"]))
                self.assertEqual(shown[("digits", ver, "p99_ms")], ms(w["p99_ms"]))
                self.assertEqual(shown[("digits", ver, "error_rate")], pct(w["error_rate"]))
                self.assertEqual(shown[("digits", ver, "fallback_rate")], pct(w["fallback_rate"]))
                self.assertEqual(shown[("digits", ver, "breaker")], a["breaker"]["state"])
                self.assertEqual(a["breaker"]["state"], "closed")
            self.assertEqual(shown[("digits", "1", "weight_share")], "90.0 %")
            self.assertEqual(shown[("digits", "2", "weight_share")], "10.0 %")
        finally:
            if browser is not None:
                browser.close()
            if d is not None:
                d.stop()
            shutil.rmtree(root, ignore_errors=True)


class UiTokenTest(unittest.TestCase):
    def test_page_with_an_admin_token(self):
        """With --admin-token-file the page itself is served (it holds no data) and asks for the
        token; given in the address's fragment, the token is sent with the page's calls."""
        root, repo = mgtest.make_repo(with_test_models=False)
        token = "ui-admin-token-0123456789abcdef"
        token_file = os.path.join(root, "admin-token")
        with open(token_file, "w") as f:
            f.write(token + "\n")
        os.chmod(token_file, 0o600)
        d = browser = None
        try:
            d = Daemon(repo, args=["--admin-token-file", token_file])
            st, hdrs, body = d.request("GET", "/ui")
            self.assertEqual(st, 200)
            self.assertIn(b"<html", body)
            self.assertEqual(d.request("GET", "/v2/admin/stats")[0], 401)

            browser = Chromium()
            target = browser.call("Target.createTarget", url="about:blank")["targetId"]
            session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            browser.call("Network.enable", session)
            browser.call("Page.enable", session)

            def evaluate(expr):
                r = browser.call("Runtime.evaluate", session, expression=expr, returnByValue=True)
                return r["result"].get("value")

            def wait(expr, what):
                deadline = time.time() + 30
                while time.time() < deadline and not evaluate(expr):
                    time.sleep(0.2)
                self.assertTrue(evaluate(expr), what)

            base = "http://127.0.0.1:%d/ui" % d.port
            browser.call("Page.navigate", session, url=base)
            wait("!!document.getElementById('token-form')", "no token form without a token")
            self.assertEqual(evaluate("Number(document.body.dataset.rendered || 0)"), 0)

            browser.call("Page.navigate", session, url=base + "#token=" + token)
            wait("Number(document.body.dataset.rendered || 0) >= 1", "the page did not render with the token")
            self.assertEqual(evaluate("location.hash"), "")  # the token leaves the address bar
            self.assertIsNone(evaluate("document.getElementById('token-form')"))
            sent = [e["params"]["request"] for e in browser.events
                    if e.get("method") == "Network.requestWillBeSent"
                    and e["params"]["request"]["url"].endswith("/v2/admin/stats")]
            self.assertTrue(any(r["headers"].get("Authorization") == "Bearer " + token for r in sent), sent)
            # The page's own address never carried the token to the server.
            self.assertEqual([r["url"] for r in sent if token in r["url"]], [])
        finally:
            if browser is not None:
                browser.close()
            if d is not None:
                d.stop()
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
