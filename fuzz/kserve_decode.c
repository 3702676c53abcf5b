/*
 * libFuzzer target for the KServe v2 request decoder. Each input is decoded twice: whole,
 * as a JSON-only body, and with the first two bytes taken as a little-endian
 * Inference-Header-Content-Length for the rest (sometimes past its end). Bodies are
 * exact-size heap copies, so ASan flags any read past `len`. After a successful decode every
 * tensor byte is touched, the element counts are checked against the shapes, the inputs are
 * re-encoded as a response whose JSON must parse and whose "data" arrays must decode back to
 * the same elements, and the /predict path gets the same body.
 */
#include "proto/json.h"
#include "proto/kserve.h"
#include "proto/predict.h"
#include "proto/tensor_json.h"
#include "tensor_check.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether element i of a and b are the same value (any NaN equals any NaN). */
static int same_element(const mg_tensor_t *a, const mg_tensor_t *b, size_t i)
{
    if (a->dtype == MG_DT_BYTES) {
        const mg_str_t *x = (const mg_str_t *)a->data + i, *y = (const mg_str_t *)b->data + i;
        return x->len == y->len && (x->len == 0 || memcmp(x->ptr, y->ptr, x->len) == 0);
    }
    size_t esz = mg_dtype_size(a->dtype);
    const unsigned char *x = (const unsigned char *)a->data + i * esz;
    const unsigned char *y = (const unsigned char *)b->data + i * esz;
    if (a->dtype == MG_DT_FP32) {
        float fx, fy;
        memcpy(&fx, x, 4);
        memcpy(&fy, y, 4);
        if (isnan(fx))
            return isnan(fy);
    } else if (a->dtype == MG_DT_FP64) {
        double dx, dy;
        memcpy(&dx, x, 8);
        memcpy(&dy, y, 8);
        if (isnan(dx))
            return isnan(dy);
    } else if (a->dtype == MG_DT_FP16) {
        uint16_t hx, hy;
        memcpy(&hx, x, 2);
        memcpy(&hy, y, 2);
        if ((hx & 0x7c00) == 0x7c00 && (hx & 0x3ff))
            return (hy & 0x7c00) == 0x7c00 && (hy & 0x3ff);
    }
    return memcmp(x, y, esz) == 0;
}

/*
 * Encodes the inputs as an all-JSON response, then decodes each output's "data" back with
 * the input's datatype and shape: formatting and parsing must agree exactly.
 */
static void round_trip(const mg_infer_request_t *req, mg_arena_t *arena)
{
    mg_infer_response_t resp = {
        .model_name = "m", .model_version = "1", .outputs = req->inputs, .noutputs = req->ninputs};
    mg_buf_t out = {0};
    size_t hl;
    if (mg_kserve_encode_response(&resp, &out, &hl) != 0) {
        mg_buf_free(&out);
        return;
    }
    check(hl == MG_KSERVE_NO_BINARY);
    mg_json_t j;
    mg_str_t key;
    mg_json_init(&j, out.data, out.len);
    check(mg_json_object_begin(&j) == 0);
    while (mg_json_object_next(&j, &key) > 0) {
        if (!mg_json_str_eq(key, "outputs")) {
            check(mg_json_skip(&j, NULL) == 0);
            continue;
        }
        size_t i = 0;
        check(mg_json_array_begin(&j) == 0);
        while (mg_json_array_next(&j) > 0) {
            check(i < req->ninputs);
            const mg_tensor_t *in = &req->inputs[i];
            check(mg_json_object_begin(&j) == 0);
            while (mg_json_object_next(&j, &key) > 0) {
                mg_str_t span;
                check(mg_json_skip(&j, &span) == 0);
                if (!mg_json_str_eq(key, "data"))
                    continue;
                mg_tensor_t back = *in;
                back.data = NULL;
                mg_err_t err;
                int rc = mg_tensor_json_decode(span.ptr, span.len, &back, arena, "rt", &err);
                if (in->ndim == 0) {
                    /* a scalar comes back as shape [1] */
                    check(rc == 0 && back.count == 1 && in->count == 1);
                } else {
                    check(rc == 0 && back.count == in->count);
                }
                for (size_t k = 0; k < in->count; k++)
                    check(same_element(in, &back, k));
            }
            i++;
        }
        check(i == req->ninputs);
    }
    mg_buf_free(&out);
}

static void decode_one(const char *body, size_t len, size_t header_len)
{
    mg_arena_t arena;
    mg_arena_init(&arena, 4096);
    mg_infer_request_t req = {.arena = &arena};
    mg_err_t err;
    mg_err_clear(&err);
    int rc = mg_kserve_decode_request(body, len, header_len, &req, &err);
    if (rc != 0) {
        /* every failure says why, with its own code */
        check(err.code == rc && err.msg[0] != '\0');
        mg_arena_free(&arena);
        return;
    }
    volatile unsigned sink = 0;
    bool *binary = calloc(req.ninputs + 1, sizeof(bool));
    check(binary != NULL);
    for (size_t i = 0; i < req.ninputs; i++) {
        const mg_tensor_t *t = &req.inputs[i];
        size_t count;
        check(t->dtype > MG_DT_INVALID && t->dtype < MG_DT_COUNT_);
        check(t->ndim >= 0 && t->ndim <= MG_TENSOR_MAX_DIMS);
        check(mg_shape_count(t->shape, t->ndim, 0, &count) == 0 && count == t->count);
        sink += touch(t);
        binary[i] = (i & 1) != 0;
    }
    round_trip(&req, &arena);
    for (size_t i = 0; i < req.noutputs; i++)
        for (size_t k = 0; k < req.outputs[i].name.len; k++)
            sink += (unsigned char)req.outputs[i].name.ptr[k];
    for (size_t k = 0; k < req.id.len; k++)
        sink += (unsigned char)req.id.ptr[k];
    (void)sink;

    /* the inputs as a response: the JSON part must be well-formed */
    mg_infer_response_t resp = {.model_name = "m",
                                .model_version = "1",
                                .id = req.id,
                                .outputs = req.inputs,
                                .binary = binary,
                                .noutputs = req.ninputs};
    mg_buf_t out = {0};
    size_t hl;
    if (mg_kserve_encode_response(&resp, &out, &hl) == 0) {
        size_t jl = hl == MG_KSERVE_NO_BINARY ? out.len : hl;
        check(jl <= out.len);
        mg_json_t j;
        mg_json_init(&j, out.data, jl);
        check(mg_json_skip(&j, NULL) == 0 && mg_json_end(&j) == 0);
    }
    mg_buf_reset(&out);
    if (mg_predict_encode_response(&resp, &out) == 0) {
        mg_json_t j;
        mg_json_init(&j, out.data, out.len);
        check(mg_json_skip(&j, NULL) == 0 && mg_json_end(&j) == 0);
    }
    mg_buf_free(&out);
    free(binary);
    mg_arena_free(&arena);
}

static void predict_one(const char *body, size_t len, mg_dtype_t dt)
{
    mg_predict_request_t p;
    mg_err_t err;
    if (mg_predict_decode(body, len, &p, &err) != 0)
        return;
    check(p.data.ptr >= body && p.data.ptr + p.data.len <= body + len);
    mg_arena_t arena;
    mg_arena_init(&arena, 4096);
    mg_tensor_t t;
    memset(&t, 0, sizeof(t));
    t.dtype = dt;
    if (mg_tensor_json_decode(p.data.ptr, p.data.len, &t, &arena, "data", &err) == 0) {
        size_t count;
        check(mg_shape_count(t.shape, t.ndim, 0, &count) == 0 && count == t.count);
        (void)touch(&t);
    }
    mg_arena_free(&arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = malloc(size ? size : 1);
    if (body == NULL)
        return 0;
    memcpy(body, data, size);
    decode_one(body, size, MG_KSERVE_NO_BINARY);
    predict_one(body, size, (mg_dtype_t)(1 + size % (MG_DT_COUNT_ - 1)));
    free(body);

    if (size >= 2) {
        size_t len = size - 2;
        size_t header_len = ((size_t)data[0] | (size_t)data[1] << 8) % (len + 3);
        char *rest = malloc(len ? len : 1);
        if (rest == NULL)
            return 0;
        memcpy(rest, data + 2, len);
        decode_one(rest, len, header_len);
        free(rest);
    }
    return 0;
}
