/*
 * Calls on the execution pool, and Triton's dynamic batcher over them. A front end embeds an
 * mg_pooled_t in each call it hands to the pool (a version with "execution": "pool"); the pool
 * thread that takes one runs it alone or, for a version with "dynamic_batching", first gathers
 * the queued calls of the same version that can share its Run (from any front end and any
 * thread) until the largest preferred batch size (or max_batch_size) is held or
 * max_queue_delay_microseconds since the call was queued has passed, and runs them as one
 * (serve.h mg_serve_run_batch). Each call's `ran` is then called on that pool thread; the
 * front end answers (there, or on its own thread) and calls mg_pooled_release once its answer
 * no longer views the outputs: the outputs of a joined Run are shared and freed by the last.
 */
#ifndef MG_SERVE_DYNAMIC_H
#define MG_SERVE_DYNAMIC_H

#include "serve/pool.h"
#include "serve/serve.h"

#include <stdint.h>

typedef struct mg_pooled mg_pooled_t;
typedef struct mg_pooled_batch mg_pooled_batch_t;

/** The call ran (or failed: call->res->rc); answer it. Thread: the pool thread. */
typedef void (*mg_pooled_fn)(mg_pooled_t *p);

struct mg_pooled {
    mg_pool_job_t job;           /* the pool's */
    mg_pool_t *pool;             /* mg_pooled_submit's */
    mg_serve_t *serve;           /* set by the front end: the core that runs it */
    const mg_serve_call_t *call; /* set by the front end: the call (mg_serve_begin'd) ... */
    mg_serve_result_t *res;      /* ... and its result; both live until `ran` returned */
    mg_pooled_fn ran;            /* set by the front end */
    int64_t queued_ns;           /* mg_pooled_submit's */
    mg_pooled_batch_t *batch;    /* the joined Run it shared, or NULL */
};

/**
 * Queues `p` (serve, call, res and ran set) on `pool`. Returns 0, or MG_ECANCELED once the
 * pool is stopping (nothing is run: answer the call). Thread: any.
 */
int mg_pooled_submit(mg_pool_t *pool, mg_pooled_t *p);

/**
 * Lets go of the joined Run `p` shared, if any, once its answer is encoded (the last member
 * frees the joined inputs and outputs). Thread: any; once per call that ran.
 */
void mg_pooled_release(mg_pooled_t *p);

#endif
