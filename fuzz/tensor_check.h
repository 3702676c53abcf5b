/*
 * What the fuzz targets share: abort on a broken invariant, and read every byte a decoded
 * tensor claims (so a bad pointer or size trips ASan) while checking its count and sizes.
 */
#ifndef MG_FUZZ_TENSOR_CHECK_H
#define MG_FUZZ_TENSOR_CHECK_H

#include "infer/tensor.h"

#include <stdlib.h>

static inline void check(int ok)
{
    if (!ok)
        abort();
}

/* Returns a sum of the tensor's bytes; aborts when count, shape and sizes disagree. */
static inline unsigned touch(const mg_tensor_t *t)
{
    unsigned sum = 0;
    size_t count;
    check(mg_shape_count(t->shape, t->ndim, 0, &count) == 0 && count == t->count);
    if (t->dtype == MG_DT_BYTES) {
        const mg_str_t *s = t->data;
        size_t total = 0;
        for (size_t i = 0; i < t->count; i++) {
            for (size_t k = 0; k < s[i].len; k++)
                sum += (unsigned char)s[i].ptr[k];
            total += s[i].len;
        }
        check(total == t->nbytes);
        return sum;
    }
    check(t->nbytes == t->count * mg_dtype_size(t->dtype));
    const unsigned char *p = t->data;
    for (size_t i = 0; i < t->nbytes; i++)
        sum += p[i];
    return sum;
}

#endif
