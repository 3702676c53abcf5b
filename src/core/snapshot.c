#include "core/snapshot.h"

#include "core/rcu.h"

void mg_snapshot_init(mg_snapshot_t *h, void *first, mg_snapshot_free_fn free_fn, void *ctx)
{
    atomic_init(&h->live, first);
    h->free_fn = free_fn;
    h->ctx = ctx;
}

void mg_snapshot_deinit(mg_snapshot_t *h)
{
    void *s = atomic_exchange_explicit(&h->live, NULL, memory_order_acq_rel);
    if (s != NULL)
        h->free_fn(s, h->ctx);
}

void mg_snapshot_publish(mg_snapshot_t *h, void *next)
{
    void *old = atomic_exchange_explicit(&h->live, next, memory_order_acq_rel);
    if (old == NULL)
        return;
    mg_rcu_synchronize();
    h->free_fn(old, h->ctx);
}
