/*
 * Raw tensor bytes (proto/tensor_raw.h): binding received bytes to a tensor without a copy
 * when they are aligned, and writing a tensor's elements back in the same layout.
 */
#include "proto/tensor_raw.h"

#include <stdio.h>
#include <string.h>

static int fail_size(const mg_tensor_t *t, const char *what, size_t size, mg_err_t *err)
{
    char shape[128];
    mg_shape_format(t->shape, t->ndim, shape, sizeof(shape));
    return mg_err_set(err, MG_ESHAPE,
                      "input '%.*s': %s %zu does not match shape %s of %s (%zu bytes)",
                      mg_err_quote_len(t->name.len), t->name.ptr, what, size, shape,
                      mg_dtype_name(t->dtype), t->count * mg_dtype_size(t->dtype));
}

static int fail_bytes(const mg_tensor_t *t, const char *what, size_t size, mg_err_t *err)
{
    return mg_err_set(err, MG_ESHAPE,
                      "input '%.*s': %s %zu does not hold %zu length-prefixed BYTES elements",
                      mg_err_quote_len(t->name.len), t->name.ptr, what, size, t->count);
}

/* BYTES: `count` elements, each a 4-byte little-endian length and the bytes. */
static int bind_bytes(mg_tensor_t *t, const char *p, size_t size, mg_arena_t *arena,
                      const char *what, mg_err_t *err)
{
    size_t count = t->count;
    if (count > size / 4) /* refused before allocating for a count the bytes cannot hold */
        return fail_bytes(t, what, size, err);
    mg_str_t *elems = mg_arena_alloc(arena, count * sizeof(mg_str_t));
    if (elems == NULL && count > 0)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    size_t off = 0, total = 0;
    for (size_t i = 0; i < count; i++) {
        if (size - off < 4)
            return fail_bytes(t, what, size, err);
        const unsigned char *b = (const unsigned char *)p + off;
        uint32_t n =
            (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        off += 4;
        if (size - off < n)
            return fail_bytes(t, what, size, err);
        elems[i] = (mg_str_t){p + off, n};
        off += n;
        total += n;
    }
    if (off != size)
        return fail_bytes(t, what, size, err);
    t->data = elems;
    t->nbytes = total;
    return 0;
}

int mg_tensor_raw_bind(mg_tensor_t *t, const char *p, size_t size, mg_arena_t *arena,
                       const char *what, mg_err_t *err)
{
    if (t->dtype == MG_DT_BYTES)
        return bind_bytes(t, p, size, arena, what, err);
    size_t esz = mg_dtype_size(t->dtype), want;
    if (esz == 0 || mg_mul_size(t->count, esz, &want) != 0 || want != size)
        return fail_size(t, what, size, err);
    if (((uintptr_t)p & (esz - 1)) == 0) {
        t->data = (void *)(uintptr_t)p; /* zero-copy: the message outlives the request */
    } else {
        t->data = mg_arena_alloc(arena, size);
        if (t->data == NULL && size > 0)
            return mg_err_set(err, MG_ENOMEM, "out of memory");
        if (size > 0)
            memcpy(t->data, p, size);
    }
    t->nbytes = size;
    if (t->dtype == MG_DT_BOOL) {
        const unsigned char *b = t->data;
        for (size_t k = 0; k < size; k++) {
            if (b[k] > 1)
                return mg_err_set(err, MG_EDTYPE,
                                  "input '%.*s': element %zu is not a boolean (byte %u)",
                                  mg_err_quote_len(t->name.len), t->name.ptr, k, b[k]);
        }
    }
    return 0;
}

int mg_tensor_raw_size(const mg_tensor_t *t, uint64_t *size)
{
    if (t->dtype != MG_DT_BYTES) {
        size_t esz = mg_dtype_size(t->dtype);
        if (esz == 0)
            return MG_EINVAL;
        *size = (uint64_t)t->count * esz;
        return 0;
    }
    const mg_str_t *s = t->data;
    uint64_t n = 0;
    for (size_t i = 0; i < t->count; i++) {
        if (s[i].len > UINT32_MAX)
            return MG_ERANGE;
        n += 4 + (uint64_t)s[i].len;
    }
    *size = n;
    return 0;
}

void mg_tensor_raw_write(const mg_tensor_t *t, char *dst)
{
    if (t->dtype != MG_DT_BYTES) {
        if (t->count > 0)
            memcpy(dst, t->data, t->count * mg_dtype_size(t->dtype));
        return;
    }
    const mg_str_t *s = t->data;
    for (size_t i = 0; i < t->count; i++) {
        uint32_t n = (uint32_t)s[i].len;
        dst[0] = (char)(n & 0xff);
        dst[1] = (char)((n >> 8) & 0xff);
        dst[2] = (char)((n >> 16) & 0xff);
        dst[3] = (char)(n >> 24);
        if (n > 0)
            memcpy(dst + 4, s[i].ptr, n);
        dst += 4 + n;
    }
}
