/*
 * A per-client rate limit: one token bucket per client key (the peer address, or the value of
 * a header the operator names), refilled at `rate` requests a second up to `burst`. Buckets
 * live in a fixed table indexed by a hash of the key, so memory is bounded whatever the
 * number of clients; two keys that share a slot share its budget (stricter, never looser).
 * Lock-free: one compare-and-swap per request.
 */
#ifndef MG_SERVE_RATELIMIT_H
#define MG_SERVE_RATELIMIT_H

#include "core/buf.h"
#include "core/err.h"

#include <stdint.h>

typedef struct mg_ratelimit mg_ratelimit_t;

/**
 * Creates the limiter: `rate` requests a second per key (1..1000000), bursts of up to `burst`
 * (0: `rate`). Returns 0, MG_EINVAL or MG_ENOMEM. Thread: start-up.
 */
int mg_ratelimit_new(mg_ratelimit_t **out, uint32_t rate, uint32_t burst);

/** Frees it. Accepts NULL. */
void mg_ratelimit_free(mg_ratelimit_t *r);

/**
 * Takes one token from `key`'s bucket at time `now_ms` (CLOCK_MONOTONIC milliseconds).
 * Returns 0, or MG_ERATELIMIT with `err` saying so and *retry_after_s the whole seconds until
 * a token is back (at least 1). Thread: any.
 */
int mg_ratelimit_take(mg_ratelimit_t *r, mg_str_t key, uint64_t now_ms, unsigned *retry_after_s,
                      mg_err_t *err);

#endif
