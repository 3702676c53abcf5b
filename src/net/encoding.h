/*
 * HTTP content codings (RFC 9110 section 8.4) as Triton's HTTP front end speaks them: request
 * bodies sent with Content-Encoding gzip (RFC 1952) or deflate (the zlib format, RFC 1950, as
 * Python's zlib.compress and Triton's client write it) are inflated with the decompressed size
 * bounded, and answers are compressed when Accept-Encoding asks for gzip or deflate and the
 * body is at least MG_ENCODING_MIN_BYTES. zlib does the (de)compression.
 *
 * A bomb (a small body that claims or inflates to gigabytes) costs at most the bound: the
 * output grows geometrically as zlib produces it and the inflate stops the moment the next byte
 * would pass the bound; nothing is ever sized by what the body claims.
 */
#ifndef MG_NET_ENCODING_H
#define MG_NET_ENCODING_H

#include "core/err.h"

#include <stddef.h>

/** A content coding. */
typedef enum {
    MG_ENCODING_IDENTITY = 0,
    MG_ENCODING_GZIP,
    MG_ENCODING_DEFLATE,
} mg_encoding_t;

/** Answers shorter than this are sent as they are: compressing them costs more than it saves. */
#define MG_ENCODING_MIN_BYTES 1024

/** "gzip", "deflate" or "identity". Static. Thread: any. */
const char *mg_encoding_name(mg_encoding_t e);

/**
 * Parses a Content-Encoding value: "gzip" (also "x-gzip"), "deflate", "identity" or empty,
 * case-insensitive, spaces around ignored. Returns 0 with *out set, or MG_EENCODING with `err`
 * naming the coding and the supported ones (a list of codings is refused too). Thread: any.
 */
int mg_encoding_parse(const char *value, size_t len, mg_encoding_t *out, mg_err_t *err);

/**
 * The coding to answer with for an Accept-Encoding value, as Triton chooses it: the listed
 * coding among gzip, deflate and identity with the highest q-value (default 1; the first on a
 * tie; q=0 never), identity when none is listed. Thread: any.
 */
mg_encoding_t mg_encoding_accept(const char *value, size_t len);

/**
 * Inflates `in` (`len` bytes in coding `e`, which must not be identity) into `*out`, a malloc'd
 * buffer of *out_len bytes (NUL-terminated past them) that the caller frees. The stream must be
 * complete, and nothing may follow its end (for gzip: further members are inflated too).
 * Returns 0, MG_ETOOBIG (it inflates to more than `max` bytes: stopped there, nothing kept),
 * MG_EPARSE (not valid gzip / zlib data, or truncated) or MG_ENOMEM, with `err` filled; *out is
 * untouched on failure. Thread: any.
 */
int mg_encoding_inflate(mg_encoding_t e, const char *in, size_t len, size_t max, char **out,
                        size_t *out_len, mg_err_t *err);

/** The most bytes mg_encoding_compress can write for `len` bytes in. Thread: any. */
size_t mg_encoding_bound(size_t len);

/**
 * Compresses `in` in coding `e` (gzip or deflate) at zlib's fastest level into `out` (`cap`
 * bytes, at least mg_encoding_bound(len)), its length in *out_len. Returns 0 or MG_ENOMEM.
 * Thread: any.
 */
int mg_encoding_compress(mg_encoding_t e, const char *in, size_t len, char *out, size_t cap,
                         size_t *out_len);

#endif
