/*
 * One RCU-published pointer to an immutable snapshot: the registry, the router (and anything
 * else reloadable) hold one each. Readers load it inside an RCU read section and never lock;
 * the writer builds a whole new snapshot, publishes it, waits one grace period and frees the
 * previous one. Publication is a C11 atomic exchange (release; readers load with acquire, a
 * plain load on x86), so ThreadSanitizer sees it; the grace period is core/rcu.h's.
 */
#ifndef MG_CORE_SNAPSHOT_H
#define MG_CORE_SNAPSHOT_H

#include <stdatomic.h>

/** Frees a snapshot that no reader can see any more; `ctx` is the holder's. */
typedef void (*mg_snapshot_free_fn)(void *snap, void *ctx);

/** The holder; caller-owned storage, set up by mg_snapshot_init. */
typedef struct mg_snapshot {
    _Atomic(void *) live;
    mg_snapshot_free_fn free_fn;
    void *ctx;
} mg_snapshot_t;

/** Starts a holder with `first` live (may be NULL). Thread: before any reader or writer. */
void mg_snapshot_init(mg_snapshot_t *h, void *first, mg_snapshot_free_fn free_fn, void *ctx);

/** Frees the live snapshot. No reader may be inside a read section. */
void mg_snapshot_deinit(mg_snapshot_t *h);

/**
 * The live snapshot for a reader: valid until the caller's mg_rcu_read_unlock().
 * Thread: any RCU-registered thread, inside rcu_read_lock().
 */
static inline void *mg_snapshot_read(mg_snapshot_t *h)
{
    return atomic_load_explicit(&h->live, memory_order_acquire);
}

/** The live snapshot as the writer sees it (no read section needed). Thread: the writer. */
static inline void *mg_snapshot_current(mg_snapshot_t *h)
{
    return atomic_load_explicit(&h->live, memory_order_relaxed);
}

/**
 * Makes `next` live, waits until no reader can hold the previous snapshot, then frees it.
 * Ownership: takes `next`. Thread: one writer at a time, RCU-registered, outside any read
 * section (it blocks for a grace period: never call it on an event loop).
 */
void mg_snapshot_publish(mg_snapshot_t *h, void *next);

#endif
