/*
 * liburcu (the memb flavour) with the two calls that matter to a race detector wrapped:
 * under ThreadSanitizer, leaving a read section releases and a grace period acquires one
 * sync token, so TSan sees that every read of an old snapshot happens before its free.
 * In other builds the wrappers are exactly rcu_read_unlock() and synchronize_rcu().
 *
 * Threads that read register with rcu_register_thread(); read sections are
 * rcu_read_lock() ... mg_rcu_read_unlock(); writers publish with a C11 atomic exchange and
 * free the old version after mg_rcu_synchronize().
 */
#ifndef MG_CORE_RCU_H
#define MG_CORE_RCU_H

#include <urcu.h>

#if defined(__SANITIZE_THREAD__)
#define MG_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MG_TSAN 1
#endif
#endif

#ifdef MG_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
/** The sync token of grace periods (only under ThreadSanitizer). */
extern char mg_rcu_grace_token;
#endif

/** Leaves a read section. Thread: a registered reader inside a read section. */
static inline void mg_rcu_read_unlock(void)
{
#ifdef MG_TSAN
    __tsan_release(&mg_rcu_grace_token);
#endif
    rcu_read_unlock();
}

/** Waits until every read section that began before the call has ended. Never inside one. */
static inline void mg_rcu_synchronize(void)
{
    synchronize_rcu();
#ifdef MG_TSAN
    __tsan_acquire(&mg_rcu_grace_token);
#endif
}

#endif
