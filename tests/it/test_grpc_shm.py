"""System shared memory over gRPC, from the client's side (Debian's python3-grpcio, stubs
generated from the project's .proto): Triton's SystemSharedMemoryStatus / Register /
Unregister calls, and ModelInfer with inputs read from and outputs written to a region of
/dev/shm through the shared_memory_* parameters, as tritonclient.grpc sends them. The regions
are the same ones HTTP serves; the answers equal the ones the message itself carries."""
import os
import struct
import unittest

import grpc

import mggrpc
import mgtest
from test_kserve import SAMPLE_PIXELS

pb, pbg = mggrpc.stubs()


def param(v):
    if isinstance(v, str):
        return pb.InferParameter(string_param=v)
    return pb.InferParameter(int64_param=v)


class GrpcSharedMemoryTest(mggrpc.DaemonTestCase, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.key, cls.fd, cls.mem = mgtest.open_shm("grpc-")

    @classmethod
    def tearDownClass(cls):
        mgtest.close_shm(cls.key, cls.fd, cls.mem)
        super().tearDownClass()

    def tearDown(self):
        self.stub.SystemSharedMemoryUnregister(pb.SystemSharedMemoryUnregisterRequest(), timeout=30)

    def register(self, name, offset=0, byte_size=4096, key=None):
        return self.stub.SystemSharedMemoryRegister(pb.SystemSharedMemoryRegisterRequest(
            name=name, key=key or self.key, offset=offset, byte_size=byte_size), timeout=30)

    def request(self, inputs_shm=None, outputs_shm=None):
        """digits v2; the input from the message, or from the region `inputs_shm` names."""
        req = pb.ModelInferRequest(model_name="digits", model_version="2")
        t = req.inputs.add(name="input", datatype="FP32", shape=[1, 64])
        if inputs_shm is None:
            req.raw_input_contents.append(struct.pack("<64f", *SAMPLE_PIXELS))
        else:
            for k, v in inputs_shm.items():
                t.parameters[k].CopyFrom(param(v))
        o = req.outputs.add(name="probabilities")
        for k, v in (outputs_shm or {}).items():
            o.parameters[k].CopyFrom(param(v))
        return req

    def expect_error(self, req, code, text):
        with self.assertRaises(grpc.RpcError) as e:
            self.stub.ModelInfer(req, timeout=30)
        self.assertEqual(e.exception.code(), code, e.exception.details())
        self.assertIn(text, e.exception.details())

    def test_register_status_infer_unregister(self):
        want = self.stub.ModelInfer(self.request(), timeout=30).raw_output_contents[0]
        self.mem[0:256] = struct.pack("<64f", *SAMPLE_PIXELS)
        self.mem[1024:1064] = b"\0" * 40
        self.register("data")
        self.register("part", offset=1024, byte_size=64)
        st = self.stub.SystemSharedMemoryStatus(pb.SystemSharedMemoryStatusRequest(), timeout=30)
        self.assertEqual(sorted(st.regions), ["data", "part"])
        self.assertEqual((st.regions["part"].name, st.regions["part"].key, st.regions["part"].offset,
                          st.regions["part"].byte_size), ("part", self.key, 1024, 64))
        one = self.stub.SystemSharedMemoryStatus(pb.SystemSharedMemoryStatusRequest(name="data"),
                                                 timeout=30)
        self.assertEqual(list(one.regions), ["data"])
        # The region HTTP lists is the one gRPC registered.
        s, b = self.d.json("GET", "/v2/systemsharedmemory/region/part/status")
        self.assertEqual((s, b), (200, [{"name": "part", "key": self.key, "offset": 1024, "byte_size": 64}]))

        r = self.stub.ModelInfer(self.request(
            {"shared_memory_region": "data", "shared_memory_byte_size": 256},
            {"shared_memory_region": "data", "shared_memory_offset": 1024,
             "shared_memory_byte_size": 40}), timeout=30)
        self.assertEqual(list(r.raw_output_contents), [b""])  # its place kept, its bytes in the region
        out = r.outputs[0]
        self.assertEqual((out.name, out.datatype, list(out.shape)), ("probabilities", "FP32", [1, 10]))
        self.assertEqual(out.parameters["shared_memory_region"].string_param, "data")
        self.assertEqual(out.parameters["shared_memory_byte_size"].int64_param, 40)
        self.assertEqual(out.parameters["shared_memory_offset"].int64_param, 1024)
        self.assertEqual(bytes(self.mem[1024:1064]), want)
        # Output alone in a region at an offset of its object; the input in the message.
        self.mem[1024:1064] = b"\0" * 40
        r = self.stub.ModelInfer(self.request(
            None, {"shared_memory_region": "part", "shared_memory_byte_size": 40}), timeout=30)
        self.assertEqual(bytes(self.mem[1024:1064]), want)
        # Input alone in shared memory: no raw_input_contents entry, the output in the message.
        r = self.stub.ModelInfer(self.request(
            {"shared_memory_region": "data", "shared_memory_byte_size": 256}), timeout=30)
        self.assertEqual(r.raw_output_contents[0], want)

        self.stub.SystemSharedMemoryUnregister(
            pb.SystemSharedMemoryUnregisterRequest(name="part"), timeout=30)
        with self.assertRaises(grpc.RpcError) as e:
            self.stub.SystemSharedMemoryStatus(pb.SystemSharedMemoryStatusRequest(name="part"),
                                               timeout=30)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("no shared-memory region 'part'", e.exception.details())

    def test_errors(self):
        self.register("data")
        bad = grpc.StatusCode.INVALID_ARGUMENT
        inp = {"shared_memory_region": "data", "shared_memory_byte_size": 256}
        self.expect_error(self.request(dict(inp, shared_memory_offset=4000)), bad,
                          "input 'input': shared_memory_offset 4000 + shared_memory_byte_size 256 "
                          "is outside region 'data' (4096 bytes)")
        self.expect_error(self.request(None, {"shared_memory_region": "data",
                                              "shared_memory_byte_size": 8}), bad,
                          "output 'probabilities' is 40 bytes, more than its "
                          "shared_memory_byte_size 8")
        self.expect_error(self.request(dict(inp, shared_memory_region="nosuch")), bad,
                          "no shared-memory region 'nosuch' is registered")
        self.expect_error(self.request({"shared_memory_region": "data"}), bad,
                          "needs both 'shared_memory_region' and 'shared_memory_byte_size'")
        self.expect_error(self.request({"shared_memory_offset": 0}), bad,  # as over HTTP
                          "needs both 'shared_memory_region' and 'shared_memory_byte_size'")
        self.expect_error(self.request(dict(inp, shared_memory_byte_size=-1)), bad,
                          "'shared_memory_byte_size' must be a non-negative integer")
        self.expect_error(self.request(dict(inp, shared_memory_region=7)), bad,
                          "'shared_memory_region' must be a non-empty string")
        req = self.request(inp)
        req.raw_input_contents.append(struct.pack("<64f", *SAMPLE_PIXELS))
        self.expect_error(req, bad, "raw_input_contents has 1 entries for 0 inputs not in shared memory")
        for name, kw, want in [("data", {}, "already registered"),
                               ("x", dict(key="/etc/passwd"), "under /dev/shm"),
                               ("x", dict(key="/mg-it-no-such-object"), "cannot open shared-memory object"),
                               ("x", dict(offset=4000, byte_size=200), "past the end"),
                               ("", {}, "name is required")]:
            with self.assertRaises(grpc.RpcError) as e:
                self.register(name, **kw)
            self.assertEqual(e.exception.code(), bad, (name, kw))
            self.assertIn(want, e.exception.details())
        with self.assertRaises(grpc.RpcError) as e:
            self.stub.SystemSharedMemoryUnregister(
                pb.SystemSharedMemoryUnregisterRequest(name="nosuch"), timeout=30)
        self.assertEqual(e.exception.code(), bad)
        # The server serves on, and the region still works.
        self.mem[0:256] = struct.pack("<64f", *SAMPLE_PIXELS)
        want = self.stub.ModelInfer(self.request(), timeout=30).raw_output_contents[0]
        self.assertEqual(self.stub.ModelInfer(self.request(inp), timeout=30).raw_output_contents[0], want)


class GrpcSharedMemoryAdminTest(mggrpc.DaemonTestCase, unittest.TestCase):
    """Registrations are the admin surface's, as over HTTP: with --admin-token-file they need
    the token in "authorization" metadata; status stays open."""

    @classmethod
    def daemon_args(cls):
        token = os.path.join(cls.root, "token")
        with open(token, "w") as f:
            f.write("s3cret-token-for-tests\n")
        os.chmod(token, 0o600)
        return ["--admin-token-file", token]

    def test_registration_needs_the_token(self):
        req = pb.SystemSharedMemoryRegisterRequest(name="x", key="/mg-it-none", byte_size=1)
        with self.assertRaises(grpc.RpcError) as e:
            self.stub.SystemSharedMemoryRegister(req, timeout=30)
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("shared-memory registrations need \"authorization: Bearer <token>\"",
                      e.exception.details())
        with self.assertRaises(grpc.RpcError) as e:
            self.stub.SystemSharedMemoryUnregister(pb.SystemSharedMemoryUnregisterRequest(),
                                                   timeout=30, metadata=[("authorization", "Bearer no")])
        self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.stub.SystemSharedMemoryUnregister(pb.SystemSharedMemoryUnregisterRequest(), timeout=30,
                                               metadata=[("authorization", "Bearer s3cret-token-for-tests")])
        st = self.stub.SystemSharedMemoryStatus(pb.SystemSharedMemoryStatusRequest(), timeout=30)
        self.assertEqual(len(st.regions), 0)


if __name__ == "__main__":
    unittest.main()
