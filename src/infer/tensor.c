#include "infer/tensor.h"

#include "core/err.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    size_t len; /* of the name: parsing compares lengths first, no strlen */
    size_t size;
} dtypes[MG_DT_COUNT_] = {
#define DT(dt, name, size) [dt] = {name, sizeof(name) - 1, size}
    DT(MG_DT_INVALID, "INVALID", 0), DT(MG_DT_BOOL, "BOOL", 1),     DT(MG_DT_UINT8, "UINT8", 1),
    DT(MG_DT_UINT16, "UINT16", 2),   DT(MG_DT_UINT32, "UINT32", 4), DT(MG_DT_UINT64, "UINT64", 8),
    DT(MG_DT_INT8, "INT8", 1),       DT(MG_DT_INT16, "INT16", 2),   DT(MG_DT_INT32, "INT32", 4),
    DT(MG_DT_INT64, "INT64", 8),     DT(MG_DT_FP16, "FP16", 2),     DT(MG_DT_FP32, "FP32", 4),
    DT(MG_DT_FP64, "FP64", 8),       DT(MG_DT_BYTES, "BYTES", 0),
#undef DT
};

const char *mg_dtype_name(mg_dtype_t dt)
{
    if ((unsigned)dt >= MG_DT_COUNT_)
        return "INVALID";
    return dtypes[dt].name;
}

mg_dtype_t mg_dtype_parse(const char *s, size_t n)
{
    for (int i = 1; i < MG_DT_COUNT_; i++) {
        if (dtypes[i].len == n && memcmp(dtypes[i].name, s, n) == 0)
            return (mg_dtype_t)i;
    }
    return MG_DT_INVALID;
}

/* Triton's model configuration names (model_config.proto's DataType): BYTES is TYPE_STRING. */
static const char *const triton_names[MG_DT_COUNT_] = {
    [MG_DT_INVALID] = "TYPE_INVALID", [MG_DT_BOOL] = "TYPE_BOOL",
    [MG_DT_UINT8] = "TYPE_UINT8",     [MG_DT_UINT16] = "TYPE_UINT16",
    [MG_DT_UINT32] = "TYPE_UINT32",   [MG_DT_UINT64] = "TYPE_UINT64",
    [MG_DT_INT8] = "TYPE_INT8",       [MG_DT_INT16] = "TYPE_INT16",
    [MG_DT_INT32] = "TYPE_INT32",     [MG_DT_INT64] = "TYPE_INT64",
    [MG_DT_FP16] = "TYPE_FP16",       [MG_DT_FP32] = "TYPE_FP32",
    [MG_DT_FP64] = "TYPE_FP64",       [MG_DT_BYTES] = "TYPE_STRING",
};

const char *mg_dtype_config_name(mg_dtype_t dt)
{
    return (unsigned)dt < MG_DT_COUNT_ ? triton_names[dt] : "TYPE_INVALID";
}

mg_dtype_t mg_dtype_parse_config(const char *s)
{
    for (int i = 1; i < MG_DT_COUNT_; i++) {
        if (strcmp(triton_names[i], s) == 0)
            return (mg_dtype_t)i;
    }
    return MG_DT_INVALID;
}

int mg_dtype_config_number(mg_dtype_t dt)
{
    /* model_config.proto's DataType numbers: BOOL 1, UINT8..UINT64 2-5, INT8..INT64 6-9,
       FP16 10, FP32 11, FP64 12, STRING 13; INVALID 0. */
    static const int numbers[MG_DT_COUNT_] = {
        [MG_DT_BOOL] = 1,   [MG_DT_UINT8] = 2, [MG_DT_UINT16] = 3, [MG_DT_UINT32] = 4,
        [MG_DT_UINT64] = 5, [MG_DT_INT8] = 6,  [MG_DT_INT16] = 7,  [MG_DT_INT32] = 8,
        [MG_DT_INT64] = 9,  [MG_DT_FP16] = 10, [MG_DT_FP32] = 11,  [MG_DT_FP64] = 12,
        [MG_DT_BYTES] = 13,
    };
    return (unsigned)dt < MG_DT_COUNT_ ? numbers[dt] : 0;
}

size_t mg_dtype_size(mg_dtype_t dt)
{
    if ((unsigned)dt >= MG_DT_COUNT_)
        return 0;
    return dtypes[dt].size;
}

size_t mg_dtype_storage_size(mg_dtype_t dt)
{
    return dt == MG_DT_BYTES ? sizeof(mg_str_t) : mg_dtype_size(dt);
}

bool mg_dtype_is_float(mg_dtype_t dt)
{
    return dt == MG_DT_FP16 || dt == MG_DT_FP32 || dt == MG_DT_FP64;
}

int mg_shape_count(const int64_t *shape, int ndim, size_t elem_size, size_t *count)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return MG_ESHAPE;
        if (mg_mul_size(n, (size_t)shape[i], &n) != 0)
            return MG_ERANGE;
    }
    size_t bytes;
    if (elem_size != 0 && mg_mul_size(n, elem_size, &bytes) != 0)
        return MG_ERANGE;
    *count = n;
    return 0;
}

void mg_shape_format(const int64_t *shape, int ndim, char *out, size_t cap)
{
    size_t len = 0;
    if (cap == 0)
        return;
    out[0] = '\0';
    len += (size_t)snprintf(out + len, cap - len, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (len < cap)
        snprintf(out + len, cap - len, "]");
}
