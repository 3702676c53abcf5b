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
