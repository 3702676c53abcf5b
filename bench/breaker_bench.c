/*
 * breaker_bench: what the circuit breaker costs a request in the closed state. Times
 * mg_breaker_allow + mg_breaker_record(success) with the clock read (mg_breaker_now) per
 * operation, from 1 and from 2 threads on one breaker, against the same loop bumping one shared
 * atomic counter (what an unstriped breaker would do).
 *
 *   bench_breaker_bench [--iters N]     (default 5,000,000 operations per thread)
 *
 * Prints ns per operation per thread, the median of 5 runs.
 */
#include "route/breaker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long iters = 5000000;
static mg_breaker_t *breaker;
static atomic_ulong shared_counter;
static atomic_int go;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *run_breaker(void *arg)
{
    double *out = arg;
    while (!atomic_load(&go))
        ;
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        /* As the request core does: allow reads no clock when closed, record reads it. */
        if (mg_breaker_allow(breaker, 0) != MG_BREAKER_DENY)
            mg_breaker_record(breaker, MG_BREAKER_SUCCESS, true, mg_breaker_now());
    }
    *out = (now_ns() - t0) / (double)iters;
    return NULL;
}

static void *run_shared(void *arg)
{
    double *out = arg;
    while (!atomic_load(&go))
        ;
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        (void)mg_breaker_now();
        atomic_fetch_add_explicit(&shared_counter, 1, memory_order_relaxed);
    }
    *out = (now_ns() - t0) / (double)iters;
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median over 5 runs of the mean ns per operation of `nthreads` threads running `fn`. */
static double measure(void *(*fn)(void *), int nthreads)
{
    double runs[5];
    for (int r = 0; r < 5; r++) {
        pthread_t t[2];
        double ns[2] = {0, 0};
        atomic_store(&go, 0);
        for (int i = 0; i < nthreads; i++)
            pthread_create(&t[i], NULL, fn, &ns[i]);
        atomic_store(&go, 1);
        for (int i = 0; i < nthreads; i++)
            pthread_join(t[i], NULL);
        runs[r] = (ns[0] + ns[1]) / nthreads;
    }
    qsort(runs, 5, sizeof(runs[0]), cmp);
    return runs[2];
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--iters") == 0)
            iters = atol(argv[++i]);
    }
    mg_breaker_config_t cfg;
    mg_breaker_config_default(&cfg);
    if (mg_breaker_new(&breaker, &cfg) != 0)
        return 1;
    printf("breaker_bench: ns per request (allow + record success + clock), closed state\n");
    printf("  %-34s %8s %8s\n", "", "1 thread", "2 threads");
    printf("  %-34s %8.1f %8.1f\n", "breaker (striped counters)", measure(run_breaker, 1),
           measure(run_breaker, 2));
    printf("  %-34s %8.1f %8.1f\n", "one shared atomic counter + clock", measure(run_shared, 1),
           measure(run_shared, 2));
    mg_breaker_free(breaker);
    return 0;
}
