/*
 * The HTTP/1.1 connection layer: modelgate reads and frames requests itself and hands each
 * complete one to h2o's request machinery (hostconfs, handlers, filters, pools, ostreams).
 *
 * h2o 2.2's own HTTP/1 layer has no configurable limits: a request head up to 408 KB
 * (H2O_MAX_REQLEN) reaches the handlers, more than 100 header fields (H2O_MAX_HEADERS) or a
 * malformed request line close the connection without an answer, Content-Length with
 * Transfer-Encoding is accepted (the chunked framing wins), chunk counts are unbounded, and
 * one timeout (http1.req_timeout, 10 s) covers idle keep-alive, the head and the body alike
 * and closes silently. This layer gives every limit its own bound and its own status, with
 * the {"error": ...} body every other error has:
 *
 *   400 malformed request line or header, Content-Length with Transfer-Encoding, bad
 *       chunked framing (a chunk size of more than 16 hex digits), unsupported
 *       Transfer-Encoding or Expect, bare LF line ends, obsolete line folding
 *   408 the head, or the body, not received within its deadline
 *   413 Content-Length over the body limit (before any of the body is read), a chunked
 *       body growing past it, or more chunks than allowed
 *   414 request line over its limit        431 a header field, the header section or the
 *   429 over the per-client connection         field count over its limit
 *       count, or pipelining too deep      503 over the listener's connection count
 *
 * An error that breaks the framing closes the connection after the answer (the rest of what
 * the client sends is read and dropped for a moment, so the answer is not lost to a reset).
 * Requests on one connection are answered in order; reading stops while one is in flight.
 */
#ifndef MG_NET_HTTP1_H
#define MG_NET_HTTP1_H

#include <h2o.h>
#include <stddef.h>

/** The limits of the connection layer; every field has a default (mg_http1_limits_default). */
typedef struct mg_http1_limits {
    size_t max_request_line;    /* bytes of "METHOD TARGET HTTP/1.x" (414); default 8192 */
    size_t max_header_field;    /* bytes of one "name: value" line (431); default 8192 */
    size_t max_header_bytes;    /* bytes of all header lines (431); default 65536 */
    size_t max_headers;         /* header fields (431); default 100 */
    size_t max_body_bytes;      /* decoded body (413); default 64 MiB */
    size_t max_chunks;          /* chunks of a chunked body (413); default 65536 */
    size_t max_pipelined;       /* requests answered from one burst of input (429); default 64 */
    size_t max_connections;     /* open connections per listener (503); default 10000 */
    size_t max_client_conns;    /* open connections per client address (429); default 256 */
    unsigned header_timeout_ms; /* first byte of a request (or accept) to the end of its
                                   head (408); default 10000 */
    unsigned body_timeout_ms;   /* end of the head to the end of the body (408); default 60000 */
    unsigned idle_timeout_ms;   /* keep-alive: end of a response to the next request's first
                                   byte, then closed without an answer; default 30000 */
} mg_http1_limits_t;

/** Fills `l` with the defaults named in mg_http1_limits_t. Thread: any. */
void mg_http1_limits_default(mg_http1_limits_t *l);

/** What all loops share: the limits, the connection counts per listener and per client. */
typedef struct mg_http1_shared mg_http1_shared_t;

/**
 * Creates the shared state for `nlisteners` listeners (limits copied). Returns 0 or
 * MG_ENOMEM. Thread: start-up.
 */
int mg_http1_shared_new(mg_http1_shared_t **out, const mg_http1_limits_t *limits, int nlisteners);

/** Frees it once no loop uses it. Accepts NULL. */
void mg_http1_shared_free(mg_http1_shared_t *s);

/** One event loop's connections and timers. */
typedef struct mg_http1_loop mg_http1_loop_t;

/**
 * Creates the connection state of the loop of `ctx`. Returns 0 or MG_ENOMEM.
 * Ownership: `shared` and `ctx` must outlive it. Thread: start-up, before the loop runs.
 */
int mg_http1_loop_new(mg_http1_loop_t **out, mg_http1_shared_t *shared, h2o_context_t *ctx);

/**
 * Takes a freshly accepted socket of listener `listener` whose requests go to `hosts`.
 * A connection over the listener's or its client's count is answered 503 / 429 and closed.
 * Thread: the loop's.
 */
void mg_http1_accept(mg_http1_loop_t *l, int listener, h2o_hostconf_t **hosts, h2o_socket_t *sock);

/**
 * Closes every connection of the loop now, in-flight requests included (their dispose
 * callbacks run). For shutdown, after the loop stopped accepting. Thread: the loop's.
 */
void mg_http1_loop_close_all(mg_http1_loop_t *l);

/** Open connections of the loop. Thread: the loop's. */
size_t mg_http1_loop_connections(const mg_http1_loop_t *l);

/** Frees the loop's state; close every connection first. Accepts NULL. Thread: the loop's. */
void mg_http1_loop_free(mg_http1_loop_t *l);

#endif
