/*
 * HTTP/1.1 request framing, apart from any socket: finding and checking the head (request
 * line and header fields) against the limits of net/http1.h, reading its framing (method,
 * target, version, Content-Length, Transfer-Encoding, Connection, Expect), and decoding a
 * chunked body. Incremental: call again with the same state when more input arrived (the
 * input may move between calls: only offsets are kept). Every refusal is an MG_E* code whose
 * status (serve/status.h) is the one README "Limits" lists, with the reason in `err`.
 */
#ifndef MG_NET_HTTP1_PARSE_H
#define MG_NET_HTTP1_PARSE_H

#include "core/buf.h"
#include "core/err.h"
#include "net/http1.h"

#include <stddef.h>
#include <stdint.h>

/** One header line: offsets into the input. */
typedef struct mg_http1_span {
    uint32_t start, len;
} mg_http1_span_t;

/** The head of one request: scanning state, then what it says. Zero it for each request. */
typedef struct mg_http1_head {
    /* Scanning. */
    size_t scan, line_start, nlines, header_bytes;
    mg_http1_span_t *hdrs; /* room for the limit's max_headers lines: the caller's */
    /* Found by mg_http1_scan_head. */
    size_t head_len; /* bytes up to and including the blank line */
    mg_http1_span_t line0;
    /* Found by mg_http1_parse_head. */
    mg_http1_span_t method, target;
    int version_minor, keep_alive, chunked, has_length, expect_continue, is_head;
    size_t content_length;
} mg_http1_head_t;

/**
 * Scans `b[0, n)` (the request starts at 0) for the end of the head, refusing a line over its
 * limit as soon as it is known to be. Returns 1 (complete: head_len set), 0 (more input
 * needed) or MG_EURITOOLONG (414) / MG_EHEADERS (431) / MG_EPARSE (400: a line not ended by
 * CRLF) with `err` filled. Thread: any.
 */
int mg_http1_scan_head(mg_http1_head_t *h, const mg_http1_limits_t *lim, const char *b, size_t n,
                       mg_err_t *err);

/**
 * Parses a complete head: the request line (a token method, an origin-form target, HTTP/1.0
 * or 1.1), every header field (token name, no space before the colon, no control characters,
 * no line folding; names are lower-cased in place in `b`), and the framing: one
 * Content-Length (or equal repeats), a single "chunked" Transfer-Encoding (not with
 * Content-Length, not in HTTP/1.0), Connection close/keep-alive, Expect 100-continue.
 * Returns 0, or MG_EPARSE (400) / MG_ETOOBIG (413: Content-Length over max_body_bytes) with
 * `err` filled. Thread: any.
 */
int mg_http1_parse_head(mg_http1_head_t *h, const mg_http1_limits_t *lim, char *b, mg_err_t *err);

/**
 * Splits header line `i` (0-based; there are nlines - 1) of a parsed head into its name and
 * its value without surrounding whitespace (views of `b`). Thread: any.
 */
void mg_http1_header(const mg_http1_head_t *h, const char *b, size_t i, mg_str_t *name,
                     mg_str_t *value);

/** The state of a chunked body being decoded. Zero it, then set `pos` to where it starts. */
typedef struct mg_http1_chunked {
    int state;
    size_t pos; /* the next input byte to decode */
    size_t size, digits, ext, count, line_start, trailer;
} mg_http1_chunked_t;

/**
 * Decodes chunked input `b[c->pos, n)` into `body` (appended); a state machine over the bytes,
 * so no chunk costs stack or more memory than its data. Returns 1 (complete: c->pos is the
 * input offset after the body and its trailer), 0 (more input needed), or MG_EPARSE (400: bad
 * framing, a chunk size of more than 16 hex digits) / MG_ETOOBIG (413: more than max_chunks
 * chunks, or a body over max_body_bytes) / MG_EHEADERS (431: trailer over max_header_bytes) /
 * MG_ENOMEM with `err` filled. Thread: any.
 */
int mg_http1_read_chunked(mg_http1_chunked_t *c, const mg_http1_limits_t *lim, const char *b,
                          size_t n, mg_buf_t *body, mg_err_t *err);

#endif
