"""gRPC test support: Python stubs generated at test time from the project's .proto (test code only)."""
import atexit
import os
import shutil
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
