"""Replaces digits' traffic policy 100 times a second (90/10 <-> 89/11) until interrupted,
writing `updates=N failed=M` to the given file after each update (bench/run.sh, which stops
it with SIGTERM: background jobs of a non-interactive shell ignore SIGINT)."""
import http.client
import json
import os
import sys
import time
import urllib.parse

url, out = sys.argv[1], sys.argv[2]
u = urllib.parse.urlparse(url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
done = failed = 0
start = time.monotonic()
try:
    while True:
        w = 10 + done % 2
        conn.request("PUT", "/v2/admin/models/digits/traffic",
                     json.dumps({"weights": {"1": 100 - w, "2": w}, "stable": "1"}))
        r = conn.getresponse()
        r.read()
        done += 1
        failed += r.status != 200
        # Replaced whole, so the SIGTERM that ends the run never leaves a half-written file.
        with open(out + ".tmp", "w") as f:
            f.write(f"updates={done} failed={failed}\n")
        os.replace(out + ".tmp", out)
        time.sleep(max(0.0, start + done / 100.0 - time.monotonic()))
except OSError:
    pass
