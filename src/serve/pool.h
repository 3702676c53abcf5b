/*
 * The execution pool: a few threads that run executions for models configured with
 * "execution": "pool", so an event loop never waits for a slow Run and keeps answering
 * (among others, with 503 when the model's in-flight bound is reached: serve/admit.h bounds
 * what can be queued here). Jobs run in submission order, on threads that run 5 nice levels
 * below the caller, so the event loops get the CPU first on a busy machine.
 */
#ifndef MG_SERVE_POOL_H
#define MG_SERVE_POOL_H

#include "core/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mg_pool mg_pool_t;

/** One unit of work: embed it; `run` is called once on a pool thread. */
typedef struct mg_pool_job {
    void (*run)(struct mg_pool_job *job);
    struct mg_pool_job *next; /* the pool's */
} mg_pool_job_t;

/**
 * Starts `nthreads` (>= 1) threads, each registered with RCU. Returns 0, MG_EINVAL or
 * MG_ERUNTIME (a thread would not start; none is left running) with `err` filled.
 * Thread: start-up.
 */
int mg_pool_new(mg_pool_t **out, int nthreads, mg_err_t *err);

/**
 * Queues `job`. Returns 0, or MG_ECANCELED once the pool is stopping (the job is not run).
 * Ownership: the job stays the caller's; it must live until `run` returned. Thread: any.
 */
int mg_pool_submit(mg_pool_t *p, mg_pool_job_t *job);

/**
 * Says whether queued `job` may join the batch a pool thread is forming: returns the rows it
 * adds, or 0 (it stays queued). Called under the pool's lock: it must only read the job.
 */
typedef int64_t (*mg_pool_accept_fn)(void *ctx, const mg_pool_job_t *job, int64_t rows);

/**
 * Dynamic batching, from inside a job's `run` on a pool thread: takes queued jobs that
 * `accept` lets join (in queue order) into out[] (at most `cap`) while the rows held (`rows`
 * to start with, the running job's) stay within `max_rows`, and, while fewer than `want_rows`
 * are held, waits for more until `until_ns` (CLOCK_MONOTONIC). The jobs taken are the
 * caller's to run. Returns how many were taken. Thread: a pool thread.
 */
size_t mg_pool_gather(mg_pool_t *p, mg_pool_accept_fn accept, void *ctx, int64_t rows,
                      int64_t want_rows, int64_t max_rows, int64_t until_ns, mg_pool_job_t **out,
                      size_t cap);

/**
 * Refuses new jobs (mg_pool_submit returns MG_ECANCELED from now on), runs every queued one
 * and joins the threads. Accepts NULL; a second call does nothing. Thread: shutdown (not a
 * pool thread).
 */
void mg_pool_stop(mg_pool_t *p);

/** Stops the pool if it runs, and frees it. No one may submit any more. Accepts NULL. */
void mg_pool_free(mg_pool_t *p);

#endif
