/*
 * What the fuzz targets share besides the tensor checks (tensor_check.h, included): the
 * libFuzzer entry point's prototype and exact-size copies of an input.
 */
#ifndef MG_FUZZ_FUZZ_H
#define MG_FUZZ_FUZZ_H

#include "tensor_check.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/** libFuzzer's entry point: one input, which the target must not keep. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/** An exact-size heap copy of the input, so ASan flags any read past its end. Free it. */
static inline char *fuzz_copy(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    if (p != NULL && size > 0)
        __builtin_memcpy(p, data, size);
    return p;
}

#endif
