/*
 * The processors the daemon may use, for sizing its thread pools (event loops, gRPC threads),
 * and what a thread asks of the scheduler.
 */
#ifndef MG_CORE_CPU_H
#define MG_CORE_CPU_H

#include <stdint.h>
#include <unistd.h>

/** `requested` when positive, else the number of online processors (at least 1). Thread: any. */
static inline int mg_cpu_threads(int requested)
{
    if (requested > 0)
        return requested;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/**
 * The slice an execution-pool thread asks for: longer than the kernel's default (0.75 ms times
 * 1 + log2 of the cores, at most 3 ms), so any thread with the default or a shorter slice that
 * wakes up (an event loop, a client on the same machine) preempts a Run in progress.
 */
#define MG_CPU_SLICE_BATCH_NS 6000000ull

/**
 * Asks the kernel for scheduler slices of `slice_ns` for the calling thread, keeping its policy
 * (SCHED_OTHER) and nice value. Linux 6.12 and later honour it (EEVDF: a waking thread with a
 * shorter slice than the running one preempts it; the kernel clamps to 0.1..100 ms); older
 * kernels accept and ignore it. Returns 0 or a negative errno (a seccomp filter, an old
 * kernel without sched_setattr); the caller carries on either way. Thread: the caller's.
 */
int mg_cpu_set_slice(uint64_t slice_ns);

#endif
