#include "serve/ratelimit.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <xxhash.h>

#define SLOTS 65536

/* A bucket: the refill time (ms, modulo 2^32) in the high half, milli-tokens in the low. */
struct mg_ratelimit {
    uint32_t rate_milli_per_ms; /* tokens a second = milli-tokens a millisecond */
    uint32_t burst_milli;
    _Atomic uint64_t slots[SLOTS];
};

int mg_ratelimit_new(mg_ratelimit_t **out, uint32_t rate, uint32_t burst)
{
    if (rate < 1 || rate > 1000000 || burst > 1000000)
        return MG_EINVAL;
    mg_ratelimit_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return MG_ENOMEM;
    r->rate_milli_per_ms = rate;
    r->burst_milli = (burst ? burst : rate) * 1000u;
    for (size_t i = 0; i < SLOTS; i++)
        atomic_init(&r->slots[i], 0);
    *out = r;
    return 0;
}

void mg_ratelimit_free(mg_ratelimit_t *r)
{
    free(r);
}

int mg_ratelimit_take(mg_ratelimit_t *r, mg_str_t key, uint64_t now_ms, unsigned *retry_after_s,
                      mg_err_t *err)
{
    _Atomic uint64_t *slot = &r->slots[XXH3_64bits(key.ptr, key.len) % SLOTS];
    uint32_t now = (uint32_t)now_ms;
    uint64_t cur = atomic_load_explicit(slot, memory_order_relaxed), next;
    uint32_t tokens;
    do {
        /* A slot never used (0) starts full. */
        uint32_t then = (uint32_t)(cur >> 32);
        uint64_t have = cur == 0 ? r->burst_milli : (uint32_t)cur;
        have += (uint64_t)(uint32_t)(now - then) * r->rate_milli_per_ms;
        if (have > r->burst_milli)
            have = r->burst_milli;
        tokens = (uint32_t)have;
        if (tokens < 1000) {
            uint32_t wait_ms = (1000 - tokens + r->rate_milli_per_ms - 1) / r->rate_milli_per_ms;
            *retry_after_s = (wait_ms + 999) / 1000;
            return mg_err_set(err, MG_ERATELIMIT,
                              "over the rate limit of %u requests a second; retry later",
                              r->rate_milli_per_ms);
        }
        next = (uint64_t)now << 32 | (tokens - 1000);
        if (next == 0)
            next = 1u; /* 0 means unused */
    } while (!atomic_compare_exchange_weak_explicit(slot, &cur, next, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 0;
}
