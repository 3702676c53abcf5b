"""gRPC test support: Python stubs generated at test time from the project's .proto (test code only)."""
import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import mgtest

PROTO = os.environ.get("MG_PROTO", os.path.join(mgtest.SOURCE_DIR, "src", "proto", "grpc_service.proto"))

_stubs = None


def stubs():
    """Returns (messages module, service module) generated from src/proto/grpc_service.proto."""
    global _stubs
    if _stubs is None:
        from grpc_tools import protoc  # Debian's python3-grpc-tools

        out = tempfile.mkdtemp(prefix="mg-grpc-stubs-")
        atexit.register(shutil.rmtree, out, True)
        rc = protoc.main(["protoc", "-I" + os.path.dirname(PROTO), "--python_out=" + out,
                          "--grpc_python_out=" + out, PROTO])
        if rc != 0:
            raise RuntimeError("grpc_tools.protoc failed on %s (exit %d)" % (PROTO, rc))
        sys.path.insert(0, out)
        import grpc_service_pb2
        import grpc_service_pb2_grpc
        _stubs = (grpc_service_pb2, grpc_service_pb2_grpc)
    return _stubs


def channel(port, **options):
    """An insecure channel to 127.0.0.1:port; sends and receives messages of any size."""
    import grpc

    opts = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    opts += list(options.items())
    return grpc.insecure_channel("127.0.0.1:%d" % port, options=opts)


class DaemonTestCase:
    """Mix-in for a unittest.TestCase class with its own daemon serving gRPC: cls.root and
    cls.repo (mgtest.make_repo with TEST_MODELS and EXTRA), cls.d (started with
    daemon_args() and --grpc-listen on an ephemeral port), cls.channel and cls.stub; stopped
    at the end, failing unless the daemon exited 0."""

    TEST_MODELS = False
    EXTRA = None  # a make_repo `extra`: staticmethod(fn(repo))
    ARGS = []

    @classmethod
    def daemon_args(cls):
        return list(cls.ARGS)

    @classmethod
    def setUpClass(cls):
        from mgtest import Daemon

        cls.root, cls.repo = mgtest.make_repo(with_test_models=cls.TEST_MODELS, extra=cls.EXTRA)
        cls.d = Daemon(cls.repo, args=cls.daemon_args() + ["--grpc-listen", "127.0.0.1:0"])
        assert cls.d.grpc_port, "no grpc_addr in the ready line:\n" + "".join(cls.d.log)
        cls.channel = channel(cls.d.grpc_port)
        cls.stub = stubs()[1].GRPCInferenceServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        mgtest.stop_and_clean(cls.d, cls.root)


def under_sigterm(body, args=(), extra=None, wait_s=60):
    """Runs body(stub, term) against a daemon of its own serving gRPC (mgtest.make_repo without
    the test models, `extra` applied), term() sending it SIGTERM. Returns (what body returned,
    the exit code or None when the daemon did not exit within wait_s, the daemon's log)."""
    from mgtest import Daemon

    root, repo = mgtest.make_repo(with_test_models=False, extra=extra)
    d = Daemon(repo, args=["--grpc-listen", "127.0.0.1:0"] + list(args))
    try:
        with channel(d.grpc_port) as ch:
            result = body(stubs()[1].GRPCInferenceServiceStub(ch),
                          lambda: d.proc.send_signal(signal.SIGTERM))
        try:
            code = d.proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            code = None
    finally:
        d.stop()
        shutil.rmtree(root, ignore_errors=True)
    return result, code, d.log
