/*
 * Request deadlines: from the KServe "timeout" parameter (integer microseconds, as Triton
 * reads it) or the Request-Timeout header / metadata, capped by the server's maximum. The
 * core refuses to start a Run past its deadline and the session stops a Run still going at
 * it (infer/session.h); either way the client gets 504.
 */
#ifndef MG_SERVE_DEADLINE_H
#define MG_SERVE_DEADLINE_H

#include "core/err.h"
#include "core/meta.h"
#include "infer/request.h"

#include <stdint.h>

/** The server's rules. */
typedef struct mg_deadline_opts {
    int64_t max_ms;     /* cap on every request's time; 0: no cap */
    int64_t default_ms; /* for requests that ask for none; 0: none */
} mg_deadline_opts_t;

/**
 * Parses a Request-Timeout value: a positive decimal number with an optional unit, "s"
 * (the default), "ms" or "us" ("2", "0.5", "250ms", "1500us"). Sets *ns. Returns 0 or -1.
 * Thread: any.
 */
int mg_deadline_parse_header(mg_str_t v, int64_t *ns);

/**
 * The CLOCK_MONOTONIC deadline of a request arriving at `now_ns`: `timeout` among
 * `req`'s parameters (a positive integer, microseconds; `req` may be NULL), else the
 * request-timeout entry of `meta`, else the default; capped by the maximum. *deadline_ns = 0
 * when there is none. Returns 0, or MG_EINVAL with `err` saying which value is wrong.
 * Thread: any.
 */
int mg_deadline_resolve(const mg_deadline_opts_t *o, const mg_infer_request_t *req,
                        const mg_meta_t *meta, int64_t now_ns, int64_t *deadline_ns, mg_err_t *err);

#endif
