/*
 * libFuzzer target for /predict bodies: the first byte picks the model input the body is
 * bound against (datatype, rank, a fixed or dynamic batch dim), the rest is the body. A
 * decoded body is bound to that input (mg_predict_bind) and, on success, encoded back as the
 * model's output (mg_predict_encode_response), which must be well-formed JSON.
 */
#include "fuzz.h"
#include "proto/json.h"
#include "proto/predict.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    mg_tensor_info_t in = {.name = "input"};
    in.dtype = (mg_dtype_t)(1 + data[0] % (MG_DT_COUNT_ - 1));
    in.ndim = 1 + (data[0] >> 4) % 4;
    for (int d = 0; d < in.ndim; d++)
        in.shape[d] = d == 0 && (data[0] & 8) ? -1 : 1 + (d * 3 + data[0]) % 5;
    char *body = fuzz_copy(data + 1, size - 1);
    if (body == NULL)
        return 0;
    mg_predict_request_t p;
    mg_err_t err;
    if (mg_predict_decode(body, size - 1, &p, &err) == 0) {
        check(p.data.ptr >= body && p.data.ptr + p.data.len <= body + size - 1);
        mg_arena_t arena;
        mg_arena_init(&arena, 4096);
        mg_infer_request_t req = {.arena = &arena};
        if (mg_predict_bind(&p, &in, 1, "m", &req, &err) == 0) {
            check(req.ninputs == 1 && req.inputs[0].dtype == in.dtype);
            size_t count;
            check(mg_shape_count(req.inputs[0].shape, req.inputs[0].ndim, 0, &count) == 0 &&
                  count == req.inputs[0].count);
            mg_infer_response_t resp = {
                .model_name = "m", .model_version = "1", .outputs = req.inputs, .noutputs = 1};
            mg_buf_t out = {0};
            if (mg_predict_encode_response(&resp, &out) == 0) {
                mg_json_t j;
                mg_json_init(&j, out.data, out.len);
                check(mg_json_skip(&j, NULL) == 0 && mg_json_end(&j) == 0);
            }
            mg_buf_free(&out);
        } else {
            check(err.msg[0] != '\0');
        }
        mg_arena_free(&arena);
    }
    free(body);
    return 0;
}
