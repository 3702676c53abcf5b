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
 * Refuses new jobs (mg_pool_submit returns MG_ECANCELED from now on), runs every queued one
 * and joins the threads. Accepts NULL; a second call does nothing. Thread: shutdown (not a
 * pool thread).
 */
void mg_pool_stop(mg_pool_t *p);

/** Stops the pool if it runs, and frees it. No one may submit any more. Accepts NULL. */
void mg_pool_free(mg_pool_t *p);

#endif
