/*
 * Tensors as every layer sees them: KServe v2 datatypes, shapes and element storage.
 */
#ifndef MG_INFER_TENSOR_H
#define MG_INFER_TENSOR_H

#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The KServe v2 datatypes that ONNX has. BYTES maps to ONNX string tensors. */
typedef enum {
    MG_DT_INVALID = 0,
    MG_DT_BOOL,
    MG_DT_UINT8,
    MG_DT_UINT16,
    MG_DT_UINT32,
    MG_DT_UINT64,
    MG_DT_INT8,
    MG_DT_INT16,
    MG_DT_INT32,
    MG_DT_INT64,
    MG_DT_FP16,
    MG_DT_FP32,
    MG_DT_FP64,
    MG_DT_BYTES,
    MG_DT_COUNT_
} mg_dtype_t;

/** Returns the KServe name ("FP32", "BYTES", ...), or "INVALID". */
const char *mg_dtype_name(mg_dtype_t dt);

/** Parses a KServe datatype name of `n` bytes; returns MG_DT_INVALID when unknown. */
mg_dtype_t mg_dtype_parse(const char *s, size_t n);

/** Triton's model configuration name of `dt` ("TYPE_FP32"; BYTES is "TYPE_STRING"). Static. */
const char *mg_dtype_config_name(mg_dtype_t dt);

/** Parses a Triton model configuration type name; MG_DT_INVALID when unknown. */
mg_dtype_t mg_dtype_parse_config(const char *s);

/** The number of `dt` in Triton's model_config.proto DataType enum (0 for INVALID). */
int mg_dtype_config_number(mg_dtype_t dt);

/** Returns the element size in bytes; 0 for BYTES (variable length) and INVALID. */
size_t mg_dtype_size(mg_dtype_t dt);

/** Returns the bytes an element takes in mg_tensor_t.data (sizeof(mg_str_t) for BYTES). */
size_t mg_dtype_storage_size(mg_dtype_t dt);

/** Returns true for FP16, FP32 and FP64. */
bool mg_dtype_is_float(mg_dtype_t dt);

/* Tensor elements are packed little-endian and copied as host values. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tensors assume a little-endian host"
#endif

#define MG_TENSOR_MAX_DIMS 8

/**
 * A named tensor. For fixed-size datatypes `data` holds `count` packed little-endian
 * elements (`nbytes` = count * element size). For BYTES `data` is an array of `count`
 * mg_str_t, each pointing at one element's bytes. Whoever filled the tensor owns the
 * memory (a request arena, a request body, or an ONNX Runtime output).
 */
typedef struct mg_tensor {
    mg_str_t name;
    mg_dtype_t dtype;
    int ndim;
    int64_t shape[MG_TENSOR_MAX_DIMS];
    size_t count;
    void *data;
    size_t nbytes;
} mg_tensor_t;

/** Name, datatype and shape of a model input or output; dynamic dims are -1. Session-owned. */
typedef struct mg_tensor_info {
    char *name;
    mg_dtype_t dtype;
    int ndim;
    int64_t shape[MG_TENSOR_MAX_DIMS];
} mg_tensor_info_t;

/**
 * Sets *count to the product of the first `ndim` dims of `shape`. Returns 0, MG_ESHAPE for a
 * negative dim, or MG_ERANGE when the product or its size in bytes (`elem_size`, 0 to skip)
 * overflows size_t.
 */
int mg_shape_count(const int64_t *shape, int ndim, size_t elem_size, size_t *count);

/** Formats a shape as "[1,3,224,224]" into `out` (always NUL-terminated). */
void mg_shape_format(const int64_t *shape, int ndim, char *out, size_t cap);

#endif
