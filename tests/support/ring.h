/*
 * The weighted virtual-node hash ring of the original design notes, kept as the baseline the
 * default sticky layout (route/policy.h) is measured against: each version with weight w > 0
 * gets max(1, floor(w^alpha)) virtual nodes (a version with weight 0 gets none), node i of
 * version v at mg_policy_sticky_hash("<v>:<i>"); a key goes to the first virtual node at or
 * clockwise after mg_policy_sticky_hash(key) (lower bound, wrapping past the last node to the
 * first), found by binary search. Comparisons: docs/routing.md.
 *
 * Test support, not part of the daemon: only tests/route/test_policy.c and
 * bench/policy_bench.c use it, to compare the sticky layout against.
 */
#ifndef MG_SUPPORT_RING_H
#define MG_SUPPORT_RING_H

#include "core/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mg_ring mg_ring_t;

/**
 * Builds a ring for `n` versions with integer `weights` and exponent `alpha` (> 0, finite).
 * Returns 0, MG_EINVAL (n <= 0, no version with weight > 0, bad alpha) or MG_ENOMEM (also
 * when the ring would exceed 2^26 virtual nodes); *out untouched on failure.
 */
int mg_ring_new(mg_ring_t **out, const int64_t *versions, const uint32_t *weights, int n,
                double alpha);

/** Frees the ring. Accepts NULL. */
void mg_ring_free(mg_ring_t *r);

/** Returns the version for `key`. Thread: any (the ring is immutable). */
int64_t mg_ring_lookup(const mg_ring_t *r, const char *key, size_t len);

/** Number of virtual nodes on the ring. */
size_t mg_ring_size(const mg_ring_t *r);

#endif
