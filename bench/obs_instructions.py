"""Instructions the request path costs with metrics on and traces sampled at 1 %, against both
off, counted by callgrind: unlike requests/s this does not move with what else loads the
machine.

  /usr/bin/python3 bench/obs_instructions.py MODELGATE REPO [REQUESTS]

Runs `modelgate serve --threads 1 --ort-threads 1 --sandbox off` under `valgrind --tool=callgrind` twice
(metrics on + --otlp-endpoint to a local stub receiver + --trace-sample-ratio 0.01, then
--metrics off), sends REQUESTS (default 2000) digits JSON requests one after another on one
connection, stops it, and prints the instructions per request counted inside the event loop
(`--toggle-collect=h2o_evloop_run`: reading, parsing, the handler, the answer's write; not
the background threads) and inside the handler alone (`on_req`), and their ratios on/off.
"""
import http.client
import http.server
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading

BIN, REPO = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
SAMPLE = open(os.path.join(REPO, "digits", "sample.json"), "rb").read()


class Stub(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def run(extra, toggle, out):
    p = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                          "--toggle-collect=" + toggle, BIN, "serve", "--repo", REPO, "--listen",
                          "127.0.0.1:0", "--threads", "1", "--ort-threads", "1",
                          # The sandbox execs /proc/self/exe, which under valgrind is valgrind's
                          # tool; loads are not what is measured here.
                          "--sandbox", "off", *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    port = None
    for line in p.stderr:
        m = re.search(r"ready addr=[^ ]*:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    if port is None:
        sys.exit("obs_instructions: modelgate did not start under valgrind")
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for _ in range(N):
        c.request("POST", "/v2/models/digits/infer", body=SAMPLE)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            sys.exit("obs_instructions: HTTP %d" % r.status)
    c.close()
    p.send_signal(signal.SIGTERM)
    p.wait(120)
    with open(out) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1]) / N
    sys.exit("obs_instructions: no totals in " + out)


stub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
threading.Thread(target=stub.serve_forever, daemon=True).start()
on = ["--otlp-endpoint", "http://127.0.0.1:%d" % stub.server_address[1], "--trace-sample-ratio", "0.01"]
off = ["--metrics", "off"]
with tempfile.TemporaryDirectory() as tmp:
    for toggle in ("h2o_evloop_run", "on_req"):
        a = run(on, toggle, os.path.join(tmp, "on.out"))
        b = run(off, toggle, os.path.join(tmp, "off.out"))
        print("obs_instructions: %s instructions per request: on %.0f off %.0f ratio %.4f"
              % ("event loop" if toggle == "h2o_evloop_run" else "handler", a, b, a / b), flush=True)
