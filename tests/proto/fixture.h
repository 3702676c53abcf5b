/*
 * What the proto unit tests share: a fixture (a request arena, an error, an exact-size copy
 * of the last body so sanitizer builds catch reads past the end, an output buffer) and small
 * tensor helpers. Include after cmocka.h.
 */
#ifndef MG_TESTS_PROTO_FIXTURE_H
#define MG_TESTS_PROTO_FIXTURE_H

#include "core/buf.h"
#include "infer/request.h"
#include "infer/tensor.h"

#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    mg_arena_t arena;
    mg_infer_request_t req;
    mg_err_t err;
    char *body; /* exact-size copy of the last decoded body */
    mg_buf_t out;
} fixture_t;

static inline int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    mg_arena_init(&f->arena, 0);
    f->req.arena = &f->arena;
    *state = f;
    return 0;
}

static inline int teardown(void **state)
{
    fixture_t *f = *state;
    mg_arena_free(&f->arena);
    mg_buf_free(&f->out);
    free(f->body);
    free(f);
    return 0;
}

/* Replaces f->body with an exact-size heap copy of s[0, n) (no NUL) and returns it. */
static inline char *keep_body(fixture_t *f, const char *s, size_t n)
{
    free(f->body);
    f->body = malloc(n ? n : 1);
    assert_non_null(f->body);
    memcpy(f->body, s, n);
    return f->body;
}

/* Element i of an FP32 tensor. */
static inline float f32_at(const mg_tensor_t *t, size_t i)
{
    float v;
    memcpy(&v, (const char *)t->data + i * 4, 4);
    return v;
}

/* A tensor over caller-owned `data`. */
static inline mg_tensor_t tensor(const char *name, mg_dtype_t dt, int ndim, const int64_t *shape,
                                 void *data, size_t count)
{
    mg_tensor_t t;
    memset(&t, 0, sizeof(t));
    t.name = (mg_str_t){name, strlen(name)};
    t.dtype = dt;
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t.shape[i] = shape[i];
    t.data = data;
    t.count = count;
    t.nbytes = dt == MG_DT_BYTES ? 0 : count * mg_dtype_size(dt);
    return t;
}

#endif
