/*
 * The processors the daemon may use, for sizing its thread pools (event loops, gRPC threads).
 */
#ifndef MG_CORE_CPU_H
#define MG_CORE_CPU_H

#include <unistd.h>

/** `requested` when positive, else the number of online processors (at least 1). Thread: any. */
static inline int mg_cpu_threads(int requested)
{
    if (requested > 0)
        return requested;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

#endif
