/*
 * Request metadata as every front end offers it: HTTP headers, gRPC metadata. Names are
 * looked up lower-case; the lookup is a callback so no front end copies its headers.
 */
#ifndef MG_CORE_META_H
#define MG_CORE_META_H

#include "core/buf.h"

#include <stddef.h>

/**
 * Looks up one metadata entry by lower-case name (`lname`, `len` bytes, also NUL-terminated).
 * Returns 1 and sets *value when present (the first entry of that name), 0 when absent. May be
 * called several times per request, so it should be cheap. Thread: the request's thread.
 */
typedef int (*mg_meta_fn)(void *ctx, const char *lname, size_t len, mg_str_t *value);

/** A metadata source: `get` may be NULL (every entry is then absent). */
typedef struct mg_meta {
    mg_meta_fn get;
    void *ctx;
} mg_meta_t;

/** Returns the value of `lname` (a string literal or NUL-terminated), or an empty string. */
static inline mg_str_t mg_meta_value(const mg_meta_t *m, const char *lname, size_t len)
{
    mg_str_t v = {"", 0};
    if (m != NULL && m->get != NULL && m->get(m->ctx, lname, len, &v) != 1)
        v = (mg_str_t){"", 0};
    return v;
}

/** True when `lname` is present. */
static inline int mg_meta_has(const mg_meta_t *m, const char *lname, size_t len)
{
    mg_str_t v;
    return m != NULL && m->get != NULL && m->get(m->ctx, lname, len, &v) == 1;
}

#endif
