/*
 * The simple /predict API: {"data": [...], "model"?: "name", "version"?: "v"} in, the
 * model's outputs with an arg-max prediction and its confidence out. For models with one
 * input, so that a plain nested array is enough to call them.
 */
#ifndef MG_PROTO_PREDICT_H
#define MG_PROTO_PREDICT_H

#include "core/buf.h"
#include "core/err.h"
#include "infer/request.h"
#include "infer/tensor.h"

#include <stddef.h>

/** The simple API's request: {"data": [...], "model"?: "name", "version"?: "v"}. */
typedef struct mg_predict_request {
    mg_str_t model;   /* empty when absent (use the default model) */
    mg_str_t version; /* empty when absent */
    mg_str_t data;    /* the raw JSON text of "data", for mg_tensor_json_decode() */
} mg_predict_request_t;

/**
 * Splits a /predict body; every span points into `body` (no allocation). "version" may also
 * be a number (its text). Strings with escapes are refused (nothing to unescape into).
 * Thread: any. Returns 0, or MG_EPARSE when it is not such an object or has no data
 * ("missing 'data' array" also when data is not an array).
 */
int mg_predict_decode(const char *body, size_t len, mg_predict_request_t *out, mg_err_t *err);

/**
 * Builds the input of a /predict request for a model whose inputs are `inputs[0, ninputs)`:
 * the model must have exactly one input (else MG_EINVAL: "/predict needs a model with one
 * input; 'M' has N, use /v2/models/M/infer" with M = `model`); `p->data` is decoded as that
 * input's datatype (mg_tensor_json_decode, shape inferred from the nesting), and an example
 * without its batch dim (rank one less than the model's) becomes a batch of one. Fills
 * req->inputs / req->ninputs from req->arena (which the caller set); other fields are left
 * alone, and req->inputs / req->ninputs too on failure. Ownership: the tensor lives in
 * req->arena, its name points at `inputs[0].name` and its data may point into `p->data`.
 * Thread: the arena's owner.
 * Returns 0, MG_EINVAL, MG_ENOMEM or the decoder's MG_E* code, with `err` filled.
 */
int mg_predict_bind(const mg_predict_request_t *p, const mg_tensor_info_t *inputs, size_t ninputs,
                    const char *model, mg_infer_request_t *req, mg_err_t *err);

/**
 * Encodes the simple API's answer: {"model","version","prediction","confidence","outputs":
 * {name:[...flat values...]}} where prediction is the arg-max of the first output's last
 * axis over its first row and confidence its value (for a batch, arrays of both, one per row).
 * A first output of rank <= 1 or first dim 1 gives scalars. When the first output is a label
 * (an integer, BOOL or BYTES tensor) prediction is its value(s) and confidence the max of the
 * matching row of a float second output, or null. With nothing to predict from both are null.
 * On failure `out` is left as it was. Thread: any.
 * Returns 0, MG_ENOMEM or MG_EINVAL (an output of an invalid datatype).
 */
int mg_predict_encode_response(const mg_infer_response_t *resp, mg_buf_t *out);

#endif
