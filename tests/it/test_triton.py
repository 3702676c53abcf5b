"""Triton's protocol extensions over real HTTP against the real daemon, as Triton's HTTP client
speaks them (docs/protocol/extension_*.md of triton-inference-server/server, KServe's
required_api.md): error wording, the repository index, statistics, model configuration,
compression and classification."""
import gzip
import json
import os
import shutil
import threading
import time
import unittest
import zlib

import mgtest
from mgtest import Daemon

SAMPLE = json.load(open(os.path.join(mgtest.SOURCE_DIR, "models", "digits", "sample.json")))


def copy_digits(name):
    """An `extra` for make_repo: a second copy of digits (two versions) named `name`."""
    def extra(repo):
        shutil.copytree(os.path.join(repo, "digits"), os.path.join(repo, name))
        cfg = json.load(open(os.path.join(repo, name, "config.json")))
        cfg["name"] = name
        json.dump(cfg, open(os.path.join(repo, name, "config.json"), "w"))
    return extra


class TritonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root, cls.repo = mgtest.make_repo(extra=copy_digits("spare"))
        cls.d = Daemon(cls.repo, args=["--max-body-bytes", "1048576"])

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        shutil.rmtree(cls.root, ignore_errors=True)
        assert code == 0, "modelgate exited with %s:\n%s" % (code, "".join(cls.d.log))

    def infer(self, model, body, version=None, headers=None):
        path = "/v2/models/%s%s/infer" % (model, "/versions/%s" % version if version else "")
        return self.d.json("POST", path, body, headers)

    # ---- error wording, index, server metadata ------------------------------------------------

    def test_unknown_model_in_tritons_words(self):
        want = "Request for unknown model: 'nosuch' is not found"
        for method, path, body in [("GET", "/v2/models/nosuch", None), ("GET", "/v2/models/nosuch/ready", None),
                                   ("GET", "/v2/models/nosuch/versions/1", None),
                                   ("POST", "/v2/models/nosuch/infer", SAMPLE),
                                   ("POST", "/v2/repository/models/nosuch/unload", None)]:
            s, b = self.d.json(method, path, body)
            self.assertEqual((s, b), (404, {"error": want}), path)

    def test_index_lists_every_version_of_an_unloaded_model(self):
        self.assertEqual(self.d.json("POST", "/v2/repository/models/spare/unload"), (200, {}))
        try:
            s, rows = self.d.json("POST", "/v2/repository/index")
            self.assertEqual(s, 200)
            spare = sorted((r["version"], r["state"], r["reason"]) for r in rows if r["name"] == "spare")
            self.assertEqual(spare, [("1", "UNAVAILABLE", "unloaded"), ("2", "UNAVAILABLE", "unloaded")])
            s, rows = self.d.json("POST", "/v2/repository/index", {"ready": True})
            self.assertNotIn("spare", {r["name"] for r in rows})
        finally:
            self.assertEqual(self.d.json("POST", "/v2/repository/models/spare/load"), (200, {}))
        s, rows = self.d.json("POST", "/v2/repository/index", {"ready": True})
        self.assertEqual(sorted(r["version"] for r in rows if r["name"] == "spare"), ["1", "2"])

    def test_server_metadata_lists_what_is_implemented(self):
        s, b = self.d.json("GET", "/v2")
        self.assertEqual(s, 200)
        self.assertEqual(b["name"], "modelgate")
        self.assertEqual(sorted(b["extensions"]), sorted(EXTENSIONS))
        # Each listed extension answers (an extension listed but missing would 404 here).
        probes = {"binary_tensor_data": None, "model_repository": ("POST", "/v2/repository/index")}
        for ext in b["extensions"]:
            probe = probes.get(ext, PROBES.get(ext))
            if probe:
                self.assertEqual(self.d.request(*probe)[0], 200, ext)


# The extensions GET /v2 lists, and a call each answers with 200 (see the test above).
EXTENSIONS = ["binary_tensor_data", "model_repository"]
PROBES = {}


if __name__ == "__main__":
    unittest.main()
