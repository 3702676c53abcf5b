/*
 * libFuzzer target for the ModelInferRequest decoder (proto/kserve_pb.h). Each input is decoded
 * twice: as one slice, and cut into slices at the positions the first byte picks, so the walk
 * across slice ends and the copies of raw entries that span them are exercised. Slices are
 * exact-size heap copies, so ASan flags any read past one. After a successful decode every
 * tensor byte is touched and the counts are checked against the shapes, both decodings must
 * agree, and the inputs are encoded back as a ModelInferResponse, raw and typed.
 */
#include "proto/kserve_pb.h"

#include "tensor_check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct decoded {
    int rc;
    unsigned sum;
    size_t ninputs;
} decoded_t;

static decoded_t decode(const uint8_t *data, size_t size, size_t piece, mg_arena_t *arena,
                        mg_buf_t *scratch)
{
    mg_str_t seg[256];
    char *copies[256];
    size_t n = 0;
    for (size_t off = 0; off < size && n < 256; n++) {
        size_t k = n == 255 || size - off < piece ? size - off : piece;
        copies[n] = malloc(k);
        check(copies[n] != NULL);
        memcpy(copies[n], data + off, k);
        seg[n] = (mg_str_t){copies[n], k};
        off += k;
    }
    mg_arena_reset(arena);
    mg_infer_request_t req = {.arena = arena};
    mg_kserve_pb_target_t target;
    mg_err_t err;
    decoded_t d = {0, 0, 0};
    d.rc = mg_kserve_pb_decode_request(seg, n, &req, &target, scratch, &err);
    if (d.rc == 0) {
        d.ninputs = req.ninputs;
        for (size_t i = 0; i < req.ninputs; i++)
            d.sum += touch(&req.inputs[i]);
        mg_infer_response_t resp = {.model_name = "m",
                                    .model_version = "1",
                                    .outputs = req.inputs,
                                    .noutputs = req.ninputs};
        for (int typed = 0; typed < 2; typed++) {
            Inference__ModelInferResponse *m;
            if (mg_kserve_pb_encode_response(&resp, typed, arena, &m, &err) == 0) {
                size_t len = protobuf_c_message_get_packed_size(&m->base);
                uint8_t *buf = malloc(len ? len : 1);
                check(buf != NULL);
                check(protobuf_c_message_pack(&m->base, buf) == len);
                free(buf);
            }
        }
    } else {
        check(err.code == d.rc && err.msg[0] != '\0');
    }
    for (size_t i = 0; i < n; i++)
        free(copies[i]);
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mg_arena_t arena;
    static mg_buf_t scratch;
    static int init;
    if (!init) {
        mg_arena_init(&arena, 0);
        init = 1;
    }
    if (size == 0)
        return 0;
    size_t piece = (size_t)data[0] % 17 + 1;
    data++;
    size--;
    decoded_t whole = decode(data, size, size ? size : 1, &arena, &scratch);
    decoded_t cut = decode(data, size, piece, &arena, &scratch);
    check(whole.rc == cut.rc);
    if (whole.rc == 0)
        check(whole.sum == cut.sum && whole.ninputs == cut.ninputs);
    return 0;
}
