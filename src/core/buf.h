/*
 * Growable byte buffers and a bump arena for per-request memory.
 *
 * Request threads keep one of each and reset them between requests, so the
 * steady state allocates nothing.
 */
#ifndef MG_CORE_BUF_H
#define MG_CORE_BUF_H

#include "core/err.h"

#include <stddef.h>
#include <stdint.h>

/** A byte range that is not owned and not NUL-terminated. */
typedef struct mg_str {
    const char *ptr;
    size_t len;
} mg_str_t;

#define MG_STR_LIT(s) ((mg_str_t){(s), sizeof(s) - 1})

/**
 * Returns non-zero when `a` equals the NUL-terminated `lit`. Inline, so a literal's length is
 * a constant and the compare is by length first, with no strlen.
 */
static inline int mg_str_eq(mg_str_t a, const char *lit)
{
    size_t n = __builtin_strlen(lit);
    return a.len == n && __builtin_memcmp(a.ptr, lit, n) == 0;
}

/** Orders the NUL-terminated `a` against `b` like strcmp (<0, 0, >0), for sorted name tables. */
int mg_str_cmp(const char *a, mg_str_t b);

/**
 * Formats into the fixed buffer `dst` of `cap` bytes, always NUL-terminated; longer text is
 * cut, which is what reasons and messages want. Thread: any.
 */
void mg_str_format(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** A growable byte buffer; `data` is owned, zero-initialise to start empty. */
typedef struct mg_buf {
    char *data;
    size_t len;
    size_t cap;
} mg_buf_t;

/** Makes room for `extra` more bytes. Returns 0 or MG_ENOMEM (the buffer is unchanged). */
int mg_buf_reserve(mg_buf_t *b, size_t extra);

/** Appends `n` bytes. Returns 0 or MG_ENOMEM. */
int mg_buf_append(mg_buf_t *b, const void *p, size_t n);

/** Appends a NUL-terminated string. Returns 0 or MG_ENOMEM. */
int mg_buf_puts(mg_buf_t *b, const char *s);

/** Appends printf-formatted text. Returns 0 or MG_ENOMEM. */
int mg_buf_printf(mg_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Appends `s` as a JSON string literal, quotes included, escaping as RFC 8259 requires. */
int mg_buf_json_string(mg_buf_t *b, const char *s, size_t n);

/** Empties the buffer and keeps its memory. */
static inline void mg_buf_reset(mg_buf_t *b)
{
    b->len = 0;
}

/** Frees the memory; the buffer is empty and reusable afterwards. */
void mg_buf_free(mg_buf_t *b);

/**
 * A bump allocator: allocations live until mg_arena_reset or mg_arena_free.
 * Blocks are kept across resets (up to one large block), so a thread that reuses its
 * arena stops calling malloc once it has seen its largest request.
 */
typedef struct mg_arena_block mg_arena_block_t;
typedef struct mg_arena {
    mg_arena_block_t *head;
    size_t block_size;
} mg_arena_t;

/** Initialises an empty arena whose blocks are at least `block_size` bytes (0: 64 KiB). */
void mg_arena_init(mg_arena_t *a, size_t block_size);

/** Returns `n` bytes aligned to 64, or NULL when out of memory. Thread: the arena's owner. */
void *mg_arena_alloc(mg_arena_t *a, size_t n);

/** Returns a NUL-terminated copy of `n` bytes at `s`, or NULL. */
char *mg_arena_strndup(mg_arena_t *a, const char *s, size_t n);

/** Releases every allocation; keeps the largest block for reuse. */
void mg_arena_reset(mg_arena_t *a);

/** Frees all memory. */
void mg_arena_free(mg_arena_t *a);

/** Sets *out = a * b and returns 0, or returns MG_ERANGE on overflow. */
static inline int mg_mul_size(size_t a, size_t b, size_t *out)
{
    if (__builtin_mul_overflow(a, b, out))
        return MG_ERANGE;
    return 0;
}

#endif
