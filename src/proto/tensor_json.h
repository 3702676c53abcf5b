/*
 * Tensor element values as JSON: decoding an array of numbers, booleans or strings (flat or
 * nested) into mg_tensor_t storage of a given datatype, and encoding a tensor's elements as a
 * flat array. The KServe v2 request and response codecs and the /predict API share it.
 * Numbers are parsed straight into the tensor buffer and formatted without printf or locale.
 *
 * JSON kinds: BOOL takes true/false; integer types take integers written without fraction or
 * exponent, in range; FP16/FP32/FP64 take any number (correctly rounded) and the strings
 * "NaN", "Infinity", "-Infinity"; BYTES takes strings (unescaped; t->data is an array of
 * mg_str_t and t->nbytes the sum of their lengths). The encoder writes the same kinds back:
 * BOOL as true/false, FP16 as numbers, non-finite floats as "NaN", "Infinity", "-Infinity",
 * BYTES as JSON strings, and floats as the shortest text that reads back to the same value.
 */
#ifndef MG_PROTO_TENSOR_JSON_H
#define MG_PROTO_TENSOR_JSON_H

#include "core/buf.h"
#include "core/err.h"
#include "infer/tensor.h"
#include "proto/json.h"

#include <stddef.h>

/**
 * Decodes a JSON array of numbers/booleans/strings (flat or nested to any depth) held in
 * `json[0, len)` into `t->data` as datatype `t->dtype`, allocating from `arena`. Sets
 * `t->count` and `t->nbytes`; when `t->ndim` is 0 on entry the shape is inferred from the
 * nesting (a ragged array, or more than MG_TENSOR_MAX_DIMS levels, is MG_ESHAPE; the slots
 * are then sized for the most elements `len` bytes can hold), otherwise only the element
 * count must match. Elements must be of the datatype's JSON kind and range (above); nothing
 * but whitespace may follow the array; nesting is limited to MG_JSON_MAX_DEPTH. `what`
 * prefixes messages ("input 'x'" gives "input 'x': element 3 is not a boolean"); NULL means
 * "data".
 * Ownership: t->data and unescaped strings live in `arena`, strings without escapes point
 * into `json`. Thread: the arena's owner.
 * Returns 0 or MG_EPARSE / MG_EDTYPE / MG_ESHAPE / MG_ERANGE / MG_ENOMEM with `err` filled.
 */
int mg_tensor_json_decode(const char *json, size_t len, mg_tensor_t *t, mg_arena_t *arena,
                          const char *what, mg_err_t *err);

/**
 * Reads the array at cursor `j` (a '[' must be next) into `t->data`, for a decoder walking a
 * larger document: `t->dtype` and `t->shape` are set and `count` is the shape's product.
 * Nesting is free, the element count must equal `count`; a count larger than the rest of the
 * input could hold is reported as a mismatch without allocating it. Sets `t->count` and
 * `t->nbytes`; the cursor is left after the array. Element rules, `what` (not NULL here; ""
 * gives messages without a prefix, for callers that name the tensor only when it fails),
 * ownership and thread as mg_tensor_json_decode.
 * Returns 0 or MG_EPARSE / MG_EDTYPE / MG_ESHAPE / MG_ENOMEM with `err` filled.
 */
int mg_tensor_json_read(mg_json_t *j, mg_tensor_t *t, size_t count, mg_arena_t *arena,
                        const char *what, mg_err_t *err);

/**
 * Appends t's `count` elements to `out` as one flat JSON array, in the kinds above. On
 * failure `out` may hold part of the array. Thread: any (reads `t`, writes `out`).
 * Returns 0, MG_ENOMEM or MG_EINVAL (an invalid datatype).
 */
int mg_tensor_json_encode(mg_buf_t *out, const mg_tensor_t *t);

/**
 * Appends element `i` (< t->count) of `t` as mg_tensor_json_encode writes it.
 * Thread: any. Returns 0, MG_ENOMEM or MG_EINVAL (an invalid datatype).
 */
int mg_tensor_json_encode_element(mg_buf_t *out, const mg_tensor_t *t, size_t i);

#endif
