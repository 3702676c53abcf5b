"""Prints `host path rule` for a plain rule in the middle of a route table file (bench/run.sh)."""
import json
import sys

rules = json.load(open(sys.argv[1]))["routes"]
plain = [r for r in rules if "*" not in r["match"].get("host", "*") and "prefix" in r["match"]["path"]
         and not r["match"].get("headers") and "traffic" not in r]
r = plain[len(plain) // 2]
print(r["match"]["host"], r["match"]["path"]["prefix"] + "score", r["name"])
