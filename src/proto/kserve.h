/*
 * KServe v2 / Open Inference Protocol over HTTP: decoding inference requests (JSON tensors,
 * flat or nested, and the binary tensor data extension) into mg_infer_request_t, and
 * encoding mg_infer_response_t back. Numbers are parsed straight into the tensor buffer and
 * formatted without printf or locale.
 */
#ifndef MG_PROTO_KSERVE_H
#define MG_PROTO_KSERVE_H

#include "core/buf.h"
#include "core/err.h"
#include "infer/request.h"

#include <stddef.h>

/** Pass as `header_len` when the request had no Inference-Header-Content-Length. */
#define MG_KSERVE_NO_BINARY ((size_t)-1)

/**
 * Decodes an infer request body. With the binary extension, `header_len` is the value of
 * Inference-Header-Content-Length: body[0, header_len) is JSON and the rest holds the binary
 * inputs, in input order, each `parameters.binary_data_size` bytes; the sizes must add up
 * to exactly the rest of the body. For every input: name, datatype, shape (non-negative)
 * and either `data` (flat or nested, element count equal to the shape's product, every
 * element of the datatype's JSON kind and range) or `binary_data_size` (equal to the
 * shape's product times the element size; for BYTES, 4-byte little-endian length-prefixed
 * elements). Binary input memory points into `body` when aligned for its datatype,
 * otherwise it is copied to `req->arena`. Also reads `id`, `outputs` (names and
 * `parameters.binary_data`), and `parameters.binary_data_output`.
 * `req->arena` must be set by the caller; other fields are overwritten.
 * Returns 0, or MG_EPARSE / MG_EDTYPE / MG_ESHAPE / MG_ERANGE / MG_ENOMEM with `err` naming
 * the input and the problem ("input 'x': shape [1,64] needs 64 elements, got 63").
 */
int mg_kserve_decode_request(const char *body, size_t len, size_t header_len,
                             mg_infer_request_t *req, mg_err_t *err);

/**
 * Encodes a response: {"model_name","model_version","id"?,"outputs":[{"name","datatype",
 * "shape","data"|"parameters":{"binary_data_size":N}}]} into `out` (appended). Outputs marked
 * binary follow the JSON in order; *header_len receives the JSON length when at least one
 * output is binary (the front end sends it as Inference-Header-Content-Length), otherwise
 * MG_KSERVE_NO_BINARY. FP32 values use the shortest text that reads back to the same float.
 * Returns 0 or MG_ENOMEM.
 */
int mg_kserve_encode_response(const mg_infer_response_t *resp, mg_buf_t *out, size_t *header_len);

/**
 * Decodes a JSON array of numbers/booleans/strings (flat or nested to any depth) held in
 * `json[0, len)` into `t->data` as datatype `t->dtype`, allocating from `arena`. Sets
 * `t->count` and `t->nbytes`; when `t->ndim` is 0 on entry the shape is inferred from the
 * nesting (a ragged array is an error), otherwise only the element count must match.
 * `what` names the tensor in messages. Returns 0 or an MG_E* code with `err` filled.
 */
int mg_kserve_decode_data(const char *json, size_t len, mg_tensor_t *t, mg_arena_t *arena,
                          const char *what, mg_err_t *err);

/** The simple API's request: {"data": [...], "model"?: "name", "version"?: "v"}. */
typedef struct mg_predict_request {
    mg_str_t model;   /* empty when absent (use the default model) */
    mg_str_t version; /* empty when absent */
    mg_str_t data;    /* the raw JSON text of "data", for mg_kserve_decode_data() */
} mg_predict_request_t;

/** Splits a /predict body. Returns 0, or MG_EPARSE when it is not such an object or has no data. */
int mg_predict_decode(const char *body, size_t len, mg_predict_request_t *out, mg_err_t *err);

/**
 * Encodes the simple API's answer: {"model","version","prediction","confidence","outputs":
 * {name:[...flat values...]}} where prediction is the arg-max of the first output's last
 * axis over its first row and confidence its value (for a batch, arrays of both, one per row).
 * Returns 0 or MG_ENOMEM.
 */
int mg_predict_encode_response(const mg_infer_response_t *resp, mg_buf_t *out);

/** Appends `v` as the shortest decimal text that reads back to the same float. */
int mg_json_put_float(mg_buf_t *out, float v);

/** Appends `v` as the shortest decimal text that reads back to the same double. */
int mg_json_put_double(mg_buf_t *out, double v);

/** Appends {"error":"<msg>"} (escaped). Returns 0 or MG_ENOMEM. */
int mg_json_put_error(mg_buf_t *out, const char *msg);

#endif
