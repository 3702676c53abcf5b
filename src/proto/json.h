/*
 * JSON (RFC 8259) for the protocol codecs: a small pull parser and the writers the encoders
 * share. The parser is a cursor over a byte range that the caller walks value by value. It
 * never allocates (except mg_json_unescape, into an arena), never recurses, never reads at or
 * past the end of its input (which need not be NUL-terminated), and limits nesting to
 * MG_JSON_MAX_DEPTH. The first syntax error is kept with its offset. The writers append
 * values to an mg_buf_t (strings are core's mg_buf_json_string, which they build on).
 *
 * Walking an object:
 *
 *     if ((rc = mg_json_object_begin(j)) != 0) return rc;
 *     while ((rc = mg_json_object_next(j, &key)) > 0) {
 *         if (mg_json_str_eq(key, "shape")) ... read the value ...
 *         else if ((rc = mg_json_skip(j, NULL)) != 0) return rc;
 *     }
 *     if (rc < 0) return rc;
 */
#ifndef MG_PROTO_JSON_H
#define MG_PROTO_JSON_H

#include "core/buf.h"
#include "core/err.h"
#include "proto/numfmt.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The deepest nesting of arrays and objects a cursor accepts. */
#define MG_JSON_MAX_DEPTH 64

/** What the next value is, judged by its first byte. */
typedef enum {
    MG_JSON_END = 0, /* only whitespace is left */
    MG_JSON_OBJECT,
    MG_JSON_ARRAY,
    MG_JSON_STRING,
    MG_JSON_NUMBER,
    MG_JSON_TRUE,
    MG_JSON_FALSE,
    MG_JSON_NULL,
    MG_JSON_INVALID, /* a byte that cannot start a value (a closing bracket, a comma...) */
} mg_json_type_t;

/** A cursor; caller-owned, set up by mg_json_init, plain data (copying it forks the walk). */
typedef struct mg_json {
    const char *base;     /* the whole input; offsets are relative to it */
    size_t len;           /* bytes at base that may be read */
    size_t pos;           /* the next byte to read */
    int depth;            /* open arrays and objects */
    bool fresh;           /* just after '[' or '{': no ',' expected before the next item */
    size_t err_pos;       /* offset of the first error */
    const char *err_what; /* the first error ("expected ':'"), NULL while none */
} mg_json_t;

/** Starts a cursor over s[0, len). Thread: the cursor's owner. */
void mg_json_init(mg_json_t *j, const char *s, size_t len);

/** Skips whitespace and says what comes next, without consuming it. */
mg_json_type_t mg_json_peek(mg_json_t *j);

/**
 * Reads a string value. *raw receives the bytes between the quotes, escapes still in place
 * (pointing into the input); escapes are checked (\uXXXX, surrogates paired) and raw control
 * characters rejected, so mg_json_unescape cannot fail on it except for memory. Bytes >= 0x80
 * pass unchecked. Returns 0 or MG_EPARSE.
 */
int mg_json_read_string(mg_json_t *j, mg_str_t *raw);

/**
 * Decodes `raw` (from mg_json_read_string) into UTF-8. Without escapes *out is `raw` itself
 * (no copy); otherwise it is a NUL-terminated copy allocated from `arena`. Returns 0 or
 * MG_ENOMEM. Thread: the arena's owner.
 */
int mg_json_unescape(mg_str_t raw, mg_arena_t *arena, mg_str_t *out);

/**
 * The part of mg_json_str_eq that decodes escapes: true when `raw` (holding a backslash)
 * decodes to the `n` bytes of `lit`. Thread: any.
 */
bool mg_json_str_eq_escaped(mg_str_t raw, const char *lit, size_t n);

/**
 * Returns true when `raw` (escapes allowed, from mg_json_read_string) decodes to `lit`. Inline,
 * so a literal's length is known at compile time and keys compare by length first, with no
 * strlen; only a key holding an escape goes on to the decoding compare.
 */
static inline bool mg_json_str_eq(mg_str_t raw, const char *lit)
{
    size_t n = __builtin_strlen(lit);
    if (raw.len == n) /* an escape would make the decoded text shorter */
        return __builtin_memcmp(raw.ptr, lit, n) == 0;
    return raw.len > n && mg_json_str_eq_escaped(raw, lit, n);
}

/** Reads a number into *num (see mg_numfmt_scan). Returns 0 or MG_EPARSE. */
int mg_json_read_number(mg_json_t *j, mg_numfmt_decimal_t *num);

/** Reads true or false. Returns 0 or MG_EPARSE (also when the value is of another kind). */
int mg_json_read_bool(mg_json_t *j, bool *v);

/** Reads null. Returns 0 or MG_EPARSE. */
int mg_json_read_null(mg_json_t *j);

/**
 * Checks and skips one value of any kind; *span (when not NULL) receives its text.
 * Iterative, so hostile nesting costs no stack. Returns 0 or MG_EPARSE.
 */
int mg_json_skip(mg_json_t *j, mg_str_t *span);

/** Consumes '{'. Returns 0 or MG_EPARSE (another value, or nesting too deep). */
int mg_json_object_begin(mg_json_t *j);

/**
 * Moves to the next member: returns 1 with *key (raw, as mg_json_read_string; may be NULL)
 * set and the ':' consumed, so the value is next; 0 after consuming the closing '}';
 * MG_EPARSE on a syntax error. The caller must read or skip each value before calling again.
 */
int mg_json_object_next(mg_json_t *j, mg_str_t *key);

/** Consumes '['. Returns 0 or MG_EPARSE (another value, or nesting too deep). */
int mg_json_array_begin(mg_json_t *j);

/**
 * Moves to the next element: returns 1 when an element follows (not consumed), 0 after
 * consuming the closing ']', MG_EPARSE on a syntax error.
 */
int mg_json_array_next(mg_json_t *j);

/** Checks that only whitespace is left. Returns 0 or MG_EPARSE. */
int mg_json_end(mg_json_t *j);

/**
 * Records a syntax error at the current offset (the first one wins; `what` must be a
 * string literal) and returns MG_EPARSE, for callers that reject a well-formed value.
 */
int mg_json_fail(mg_json_t *j, const char *what);

/** Fills `err` with "malformed JSON at offset N: <what>" and returns MG_EPARSE. */
int mg_json_error(const mg_json_t *j, mg_err_t *err);

/* ---- writers: each appends to `out`; Thread: the buffer's owner ---- */

/**
 * Appends `v` as the shortest decimal text that reads back to the same float ("0.1", "1.0",
 * "1.5e-7"; non-finite values as the strings "NaN", "Infinity", "-Infinity"), without printf.
 * Returns 0 or MG_ENOMEM.
 */
int mg_json_put_float(mg_buf_t *out, float v);

/**
 * Appends `v` as the shorter of %.15g and %.17g that reads back to the same double, with the
 * conventions of mg_json_put_float. Returns 0 or MG_ENOMEM.
 */
int mg_json_put_double(mg_buf_t *out, double v);

/** Appends `v` in decimal. Returns 0 or MG_ENOMEM. */
int mg_json_put_u64(mg_buf_t *out, uint64_t v);

/** Appends the NUL-terminated `s` as a JSON string (escaped), NULL as "". Returns 0 or MG_ENOMEM. */
int mg_json_put_str(mg_buf_t *out, const char *s);

/** Appends {"error":"<msg>"} (escaped). Returns 0 or MG_ENOMEM. */
int mg_json_put_error(mg_buf_t *out, const char *msg);

/**
 * For writers with one cleanup path: stores `expr` (an MG_E* result) in the caller's `rc`
 * and jumps to the caller's `fail` label when it is not 0.
 */
#define MG_JSON_PUT(expr)                                                                          \
    do {                                                                                           \
        if ((rc = (expr)) != 0)                                                                    \
            goto fail;                                                                             \
    } while (0)

/** MG_JSON_PUT of appending the string literal `lit` to `out`. */
#define MG_JSON_PUTS(out, lit) MG_JSON_PUT(mg_buf_append((out), (lit), sizeof(lit) - 1))

#endif
