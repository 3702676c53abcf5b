/*
 * Tensor elements as raw bytes, the layout both the HTTP binary tensor data extension and
 * gRPC's raw_input_contents / raw_output_contents use: fixed-size elements packed
 * little-endian without padding, BYTES elements each preceded by a 4-byte little-endian length.
 * The KServe v2 JSON+binary codec (proto/kserve.h) and the protobuf codec (proto/kserve_pb.h)
 * share it, so both check sizes, booleans and length prefixes alike.
 */
#ifndef MG_PROTO_TENSOR_RAW_H
#define MG_PROTO_TENSOR_RAW_H

#include "core/buf.h"
#include "core/err.h"
#include "infer/tensor.h"

#include <stddef.h>
#include <stdint.h>

/**
 * Binds the `size` raw bytes at `p` as the elements of `t`, whose name, datatype, shape and
 * count are set. Fixed-size datatypes: `size` must be count times the element size; the data
 * points at `p` when it is aligned for the datatype, otherwise it is copied into `arena`;
 * BOOL bytes must be 0 or 1. BYTES: exactly `count` length-prefixed elements filling `size`
 * (t->data becomes an mg_str_t array in `arena` pointing into `p`). `what` names the byte
 * count in messages ("binary_data_size", "raw_input_contents"). Sets t->data and t->nbytes.
 * Ownership: `p` must outlive the request. Thread: the arena's owner.
 * Returns 0, or MG_ESHAPE (size mismatch, bad length prefixes) / MG_EDTYPE (a BOOL byte
 * other than 0 or 1) / MG_ENOMEM with `err` naming the input ("input 'x': ...").
 */
int mg_tensor_raw_bind(mg_tensor_t *t, const char *p, size_t size, mg_arena_t *arena,
                       const char *what, mg_err_t *err);

/**
 * Sets *size to the bytes `t` takes raw: count times the element size, or 4 plus the length
 * of each BYTES element. Returns 0, MG_EINVAL (an invalid datatype) or MG_ERANGE (a BYTES
 * element of 4 GiB or more). Thread: any.
 */
int mg_tensor_raw_size(const mg_tensor_t *t, uint64_t *size);

/**
 * Writes `t`'s elements raw to `dst`, which has room for the size mg_tensor_raw_size gave.
 * Thread: any.
 */
void mg_tensor_raw_write(const mg_tensor_t *t, char *dst);

#endif
