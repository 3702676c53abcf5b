/*
 * KServe v2 / Open Inference Protocol over HTTP: decoding the inference request envelope
 * (inputs, outputs, id, parameters; tensor data as JSON, flat or nested, or in the binary
 * tensor data extension) into mg_infer_request_t, and encoding mg_infer_response_t back.
 * Tensor values go through proto/tensor_json.h.
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
 * JSON kinds are those of proto/tensor_json.h (BYTES: t->data is an array of mg_str_t and
 * t->nbytes the sum of their lengths). Binary BOOL bytes must be 0 or 1.
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
 * MG_KSERVE_NO_BINARY. "id" is written only when non-empty; NULL model name/version are
 * written as "". JSON data is flat, as mg_tensor_json_encode writes it (shortest round-trip
 * floats, BOOL as true/false, FP16 as numbers, non-finite floats as "NaN", "Infinity",
 * "-Infinity", BYTES as strings); binary BYTES carry a 4-byte little-endian length before
 * each element. `resp->binary` may be NULL (all JSON).
 * On failure `out` is left as it was. Thread: any (reads `resp`, writes `out`).
 * Returns 0, MG_ENOMEM, MG_EINVAL (an output of an invalid datatype) or MG_ERANGE (a binary
 * BYTES element of 4 GiB or more).
 */
int mg_kserve_encode_response(const mg_infer_response_t *resp, mg_buf_t *out, size_t *header_len);

#endif
