/*
 * policy_bench: the cost of one routing decision. For policies of 5 and 16 versions, times
 * mg_policy_pick by sticky key (hash + lookup) and by weighted draw (lookup only),
 * mg_policy_lookup (branch-free bisection) against alternatives over the same bounds
 * (bisection with a branch, a linear scan, a branch-free count), the key hash alone, and
 * mg_ring_lookup (hash + bisection over the virtual nodes) at alpha 1.0 and 1.2.
 *
 *   bench_policy_bench [--reps R] [--iters N]
 *
 * Each figure is the median over R runs (default 15) of N operations (default 1,000,000)
 * on 4096 pre-generated keys or draws, cycled: ns per operation.
 */
#include "route/policy.h"
#include "support/ring.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NKEYS    4096 /* a power of two: indices wrap with a mask */
#define MAX_REPS 101

static char keys[NKEYS][32];
static size_t key_len[NKEYS];
static uint64_t draws[NKEYS];
static uint32_t points[NKEYS];
static volatile int64_t sink;

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Alternatives to the library's branch-free bisection, over the same layout; not inlined,
 * so that each costs a call like the library function does. */
__attribute__((noinline)) static int64_t lookup_bisect(const mg_policy_t *p, uint32_t h)
{
    int lo = 0, hi = p->nversions - 1; /* bound[n-1] = 2^32 > h: the answer is in range */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (h < p->bound[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return p->layout[lo];
}

/* The linear scan the library used first. */
__attribute__((noinline)) static int64_t lookup_scan(const mg_policy_t *p, uint32_t h)
{
    for (int i = 0; i < p->nversions; i++)
        if (h < p->bound[i])
            return p->layout[i];
    return 0;
}

__attribute__((noinline)) static int64_t lookup_count(const mg_policy_t *p, uint32_t h)
{
    int k = 0;
    for (int i = 0; i < p->nversions; i++)
        k += h >= p->bound[i];
    return p->layout[k];
}

typedef enum {
    OP_PICK_STICKY,
    OP_PICK_WEIGHT,
    OP_LOOKUP,
    OP_BISECT,
    OP_SCAN,
    OP_COUNT,
    OP_HASH,
    OP_RING
} op_t;

static double run(op_t op, const mg_policy_t *p, const mg_ring_t *r, int reps, long iters)
{
    double t[MAX_REPS];
    for (int k = 0; k < reps; k++) {
        int64_t acc = 0;
        double t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            size_t j = (size_t)i & (NKEYS - 1);
            mg_policy_decision_t d;
            mg_policy_input_t in = {.random = draws[j]};
            switch (op) {
            case OP_PICK_STICKY:
                in.sticky_key = (mg_str_t){keys[j], key_len[j]};
                mg_policy_pick(p, &in, &d, NULL);
                acc += d.version;
                break;
            case OP_PICK_WEIGHT:
                mg_policy_pick(p, &in, &d, NULL);
                acc += d.version;
                break;
            case OP_LOOKUP: acc += mg_policy_lookup(p, points[j]); break;
            case OP_BISECT: acc += lookup_bisect(p, points[j]); break;
            case OP_SCAN: acc += lookup_scan(p, points[j]); break;
            case OP_COUNT: acc += lookup_count(p, points[j]); break;
            case OP_HASH: acc += mg_policy_sticky_hash(keys[j], key_len[j]); break;
            case OP_RING: acc += mg_ring_lookup(r, keys[j], key_len[j]); break;
            }
        }
        t[k] = (now_ns() - t0) / (double)iters;
        sink = acc;
    }
    qsort(t, (size_t)reps, sizeof(t[0]), cmp_double);
    return t[reps / 2];
}

int main(int argc, char **argv)
{
    int reps = 15;
    long iters = 1000000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            iters = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--reps R] [--iters N]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > MAX_REPS || iters < 1) {
        fprintf(stderr, "policy_bench: --reps must be 1..%d and --iters positive\n", MAX_REPS);
        return 2;
    }
    uint64_t s = 42;
    for (size_t i = 0; i < NKEYS; i++) {
        key_len[i] = (size_t)snprintf(keys[i], sizeof(keys[i]), "user-%llu",
                                      (unsigned long long)splitmix64(&s));
        draws[i] = splitmix64(&s);
        points[i] = (uint32_t)(draws[i] >> 32);
    }

    /* 5 versions: 40/25/15/12/8; 16 versions: stable 25, fifteen canaries at 5. */
    static const char *const policies[] = {
        "{\"weights\": {\"1\": 40, \"2\": 25, \"3\": 15, \"4\": 12, \"5\": 8}, \"stable\": 1}",
        "{\"weights\": {\"1\": 25, \"2\": 5, \"3\": 5, \"4\": 5, \"5\": 5, \"6\": 5, \"7\": 5, "
        "\"8\": 5, \"9\": 5,"
        " \"10\": 5, \"11\": 5, \"12\": 5, \"13\": 5, \"14\": 5, \"15\": 5, \"16\": 5}, "
        "\"stable\": 1}",
    };
    printf("policy_bench: median of %d runs x %ld ops, ns per op\n", reps, iters);
    printf("%-9s %12s %12s %9s %9s %9s %9s %9s %14s %14s\n", "versions", "pick sticky",
           "pick weight", "lookup", "bisect", "scan", "count", "hash", "ring a=1.0", "ring a=1.2");
    for (size_t k = 0; k < sizeof(policies) / sizeof(policies[0]); k++) {
        mg_policy_t p;
        mg_err_t err;
        if (mg_policy_parse(policies[k], strlen(policies[k]), &p, &err) != 0) {
            fprintf(stderr, "policy_bench: %s\n", err.msg);
            return 1;
        }
        mg_ring_t *r1 = NULL, *r12 = NULL;
        if (mg_ring_new(&r1, p.versions, p.weights, p.nversions, 1.0) != 0 ||
            mg_ring_new(&r12, p.versions, p.weights, p.nversions, 1.2) != 0) {
            fprintf(stderr, "policy_bench: mg_ring_new failed\n");
            return 1;
        }
        /* Sanity: the alternatives agree with the library on every point used. */
        for (size_t i = 0; i < NKEYS; i++) {
            int64_t v = mg_policy_lookup(&p, points[i]);
            if (lookup_bisect(&p, points[i]) != v || lookup_scan(&p, points[i]) != v ||
                lookup_count(&p, points[i]) != v) {
                fprintf(stderr, "policy_bench: lookups disagree at %u\n", points[i]);
                return 1;
            }
        }
        char ring1[32], ring12[32];
        snprintf(ring1, sizeof(ring1), "%.1f (%zu)", run(OP_RING, &p, r1, reps, iters),
                 mg_ring_size(r1));
        snprintf(ring12, sizeof(ring12), "%.1f (%zu)", run(OP_RING, &p, r12, reps, iters),
                 mg_ring_size(r12));
        printf("%-9d %12.1f %12.1f %9.1f %9.1f %9.1f %9.1f %9.1f %14s %14s\n", p.nversions,
               run(OP_PICK_STICKY, &p, NULL, reps, iters),
               run(OP_PICK_WEIGHT, &p, NULL, reps, iters), run(OP_LOOKUP, &p, NULL, reps, iters),
               run(OP_BISECT, &p, NULL, reps, iters), run(OP_SCAN, &p, NULL, reps, iters),
               run(OP_COUNT, &p, NULL, reps, iters), run(OP_HASH, &p, NULL, reps, iters), ring1,
               ring12);
        mg_ring_free(r1);
        mg_ring_free(r12);
    }
    printf("(ring columns: ns per lookup, with the number of virtual nodes in parentheses)\n");
    return 0;
}
