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
 * Members may come in any order and unknown ones are ignored; a repeated member is an error.
 * JSON kinds: BOOL takes true/false; integer types take integers written without fraction or
 * exponent, in range; FP16/FP32/FP64 take any number (correctly rounded) and the strings
 * "NaN", "Infinity", "-Infinity"; BYTES takes strings (unescaped; t->data is an array of
 * mg_str_t and t->nbytes the sum of their lengths). Binary BOOL bytes must be 0 or 1.
 * The body need not be NUL-terminated and is never read past `len`; nesting is limited to
 * MG_JSON_MAX_DEPTH (proto/json.h); a shape larger than its data could hold is reported as a
 * count mismatch without allocating it.
 * `req->arena` must be set by the caller; other fields are overwritten (and unspecified on
 * failure). Ownership: decoded memory lives in `req->arena` or points into `body` (names,
 * unescaped strings, aligned binary inputs: read-only), so both must outlive the request.
 * Thread: the arena's owner.
 * Returns 0, or MG_EPARSE (malformed JSON or framing) / MG_EDTYPE (unknown datatype, wrong
 * JSON kind, value out of range) / MG_ESHAPE (count, shape or size mismatch) / MG_ERANGE
 * (shape size overflow) / MG_ENOMEM, with `err` naming the input and the problem
 * ("input 'x': shape [1,64] needs 64 elements, got 63"; "input #2: ..." before its name).
 */
int mg_kserve_decode_request(const char *body, size_t len, size_t header_len,
                             mg_infer_request_t *req, mg_err_t *err);

/**
 * Encodes a response: {"model_name","model_version","id"?,"outputs":[{"name","datatype",
 * "shape","data"|"parameters":{"binary_data_size":N}}]} into `out` (appended). Outputs marked
 * binary follow the JSON in order; *header_len receives the JSON length when at least one
 * output is binary (the front end sends it as Inference-Header-Content-Length), otherwise
 * MG_KSERVE_NO_BINARY. FP32 values use the shortest text that reads back to the same float.
 * "id" is written only when non-empty; NULL model name/version are written as "". Data is
 * flat; BOOL as true/false; FP16 as numbers; non-finite floats as "NaN", "Infinity",
 * "-Infinity"; BYTES as JSON strings, or in binary as a 4-byte little-endian length before
 * each element. `resp->binary` may be NULL (all JSON).
 * On failure `out` is left as it was. Thread: any (reads `resp`, writes `out`).
 * Returns 0, MG_ENOMEM, MG_EINVAL (an output of an invalid datatype) or MG_ERANGE (a binary
 * BYTES element of 4 GiB or more).
 */
int mg_kserve_encode_response(const mg_infer_response_t *resp, mg_buf_t *out, size_t *header_len);

/**
 * Decodes a JSON array of numbers/booleans/strings (flat or nested to any depth) held in
 * `json[0, len)` into `t->data` as datatype `t->dtype`, allocating from `arena`. Sets
 * `t->count` and `t->nbytes`; when `t->ndim` is 0 on entry the shape is inferred from the
 * nesting (a ragged array, or more than MG_TENSOR_MAX_DIMS levels, is MG_ESHAPE; the slots
 * are then sized for the most elements `len` bytes can hold), otherwise only the element
 * count must match. Element rules are those of mg_kserve_decode_request; nothing but
 * whitespace may follow the array. `what` prefixes messages ("input 'x'" gives "input 'x':
 * element 3 is not a boolean"); NULL means "data".
 * Ownership: t->data and unescaped strings live in `arena`, strings without escapes point
 * into `json`. Thread: the arena's owner.
 * Returns 0 or MG_EPARSE / MG_EDTYPE / MG_ESHAPE / MG_ERANGE / MG_ENOMEM with `err` filled.
 */
int mg_kserve_decode_data(const char *json, size_t len, mg_tensor_t *t, mg_arena_t *arena,
                          const char *what, mg_err_t *err);

/** The simple API's request: {"data": [...], "model"?: "name", "version"?: "v"}. */
typedef struct mg_predict_request {
    mg_str_t model;   /* empty when absent (use the default model) */
    mg_str_t version; /* empty when absent */
    mg_str_t data;    /* the raw JSON text of "data", for mg_kserve_decode_data() */
} mg_predict_request_t;

/**
 * Splits a /predict body; every span points into `body` (no allocation). "version" may also
 * be a number (its text). Strings with escapes are refused (nothing to unescape into).
 * Thread: any. Returns 0, or MG_EPARSE when it is not such an object or has no data
 * ("missing 'data' array" also when data is not an array).
 */
int mg_predict_decode(const char *body, size_t len, mg_predict_request_t *out, mg_err_t *err);

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
