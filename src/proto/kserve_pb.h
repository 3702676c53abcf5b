/*
 * KServe v2 over gRPC: ModelInferRequest (protobuf, src/proto/grpc_service.proto) decoded into
 * the same mg_infer_request_t the HTTP codec fills, and mg_infer_response_t encoded as
 * ModelInferResponse. The messages are protoc-c's (generated at build time); this module only
 * adds what protoc-c cannot do: raw_input_contents bound without a copy, typed contents
 * checked against their datatype, and every failure named like the HTTP codec names it.
 */
#ifndef MG_PROTO_KSERVE_PB_H
#define MG_PROTO_KSERVE_PB_H

#include "core/buf.h"
#include "core/err.h"
#include "infer/request.h"

#include "grpc_service.pb-c.h"

#include <stdbool.h>
#include <stddef.h>

/** The members of a ModelInferRequest that are not the request itself. */
typedef struct mg_kserve_pb_target {
    mg_str_t model;   /* model_name */
    mg_str_t version; /* model_version, or empty */
} mg_kserve_pb_target_t;

/**
 * Decodes one ModelInferRequest received as `nseg` byte ranges `seg` (the slices of a gRPC
 * message, in order). raw_input_contents point into `seg` when an entry lies within one range
 * and is aligned for its datatype, otherwise they are copied once into `req->arena`; every
 * other field is unpacked with protobuf-c into the arena (`scratch` holds the message without
 * its raw contents meanwhile). Inputs: a known datatype, at most MG_TENSOR_MAX_DIMS
 * non-negative dims whose product fits, and either one raw_input_contents entry per input (in
 * input order; no input then has `contents`), whose size matches the shape, or `contents` in
 * the datatype's field (BOOL bool_contents, INT8/16/32 int_contents, INT64 int64_contents,
 * UINT8/16/32 uint_contents, UINT64 uint64_contents, FP32 fp32_contents, FP64 fp64_contents,
 * BYTES bytes_contents; FP16 only raw) with as many elements as the shape holds, each in range.
 * Outputs: the requested names (none: all). Request parameters become req->params (bool,
 * int64, string, double, uint64); "binary_data_output": false asks for typed output contents
 * (req->binary_output, true by default: raw_output_contents, as Triton's clients expect).
 * `req->arena` must be set. Ownership: the result points into `seg` and the arena, which
 * must outlive the request. Thread: the arena's owner.
 * Returns 0, or MG_EPARSE (malformed protobuf, wrong contents field, raw and typed mixed,
 * wrong number of raw entries) / MG_EDTYPE / MG_ESHAPE / MG_ERANGE / MG_ENOMEM with `err`
 * filled ("input 'x': raw_input_contents 10 does not match shape [1,64] of FP32 (256 bytes)").
 */
int mg_kserve_pb_decode_request(const mg_str_t *seg, size_t nseg, mg_infer_request_t *req,
                                mg_kserve_pb_target_t *target, mg_buf_t *scratch, mg_err_t *err);

/**
 * Builds the ModelInferResponse of `resp` in `arena`: model_name, model_version, id, and per
 * output its name, datatype and shape, with the elements in raw_output_contents (`typed`
 * false) or in each output's typed contents (`typed` true; FP16 has none: MG_EDTYPE).
 * Tensor data is referenced, not copied (narrow integer types are widened into the arena), so
 * `resp` must outlive the packing of *out (protobuf_c_message_pack). Thread: the arena's owner.
 * Returns 0, MG_EDTYPE, MG_ERANGE (a BYTES element of 4 GiB or more) or MG_ENOMEM.
 */
int mg_kserve_pb_encode_response(const mg_infer_response_t *resp, bool typed, mg_arena_t *arena,
                                 Inference__ModelInferResponse **out, mg_err_t *err);

/**
 * A protobuf-c allocator over `arena` (frees are no-ops; the arena's reset frees all), for
 * unpacking the small gRPC messages without malloc. Thread: the arena's owner.
 */
void mg_kserve_pb_allocator(ProtobufCAllocator *a, mg_arena_t *arena);

#endif
