#include "serve/dynamic.h"

#include "obs/metrics.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

/* The most calls one dynamic batch joins. */
#define DYNAMIC_BATCH_MAX 64

/*
 * A joined Run of a dynamic batch: its joined inputs and shared outputs, released when the
 * last member's answer is encoded (members may be answered on different threads).
 */
struct mg_pooled_batch {
    atomic_int refs;
    mg_arena_t arena;
    void *owner;
};

static void pooled_run(mg_pool_job_t *job);

static mg_pooled_t *of_job(const mg_pool_job_t *job)
{
    return (mg_pooled_t *)((char *)job - offsetof(mg_pooled_t, job));
}

/*
 * Whether queued `job` may join the dynamic batch `ctx` leads (mg_pool_accept_fn): a call of
 * the same version, decoded already, with requests that can share a Run. Reads only.
 */
static int64_t dynamic_accept(void *ctx, const mg_pool_job_t *job, int64_t rows)
{
    (void)rows;
    const mg_pooled_t *lead = ctx;
    if (job->run != pooled_run)
        return 0;
    const mg_pooled_t *c = of_job(job);
    if (c->res->pick.version != lead->res->pick.version || c->call->bind != NULL ||
        !mg_session_batch_compatible(lead->call->req, c->call->req))
        return 0;
    return c->call->req->inputs[0].shape[0];
}

/*
 * Joins the queued calls of `p`'s version until the largest preferred batch size (or
 * max_batch_size) is held or the queue delay since `p` was queued has passed, and runs them
 * as one, `ran` for each. Returns false when nothing joined (run it alone).
 */
static bool run_dynamic_batch(mg_pooled_t *p)
{
    const mg_model_config_t *cfg = mg_model_version_config(p->res->pick.version);
    const mg_infer_request_t *req = p->call->req;
    if (!cfg->dynamic_batching || p->call->bind != NULL || req->ninputs == 0 ||
        req->inputs[0].ndim < 1 || req->inputs[0].shape[0] < 1)
        return false;
    int64_t rows = req->inputs[0].shape[0];
    int64_t want = cfg->npreferred > 0 ? cfg->preferred[cfg->npreferred - 1] : cfg->max_batch_size;
    mg_pool_job_t *more[DYNAMIC_BATCH_MAX - 1];
    size_t n =
        mg_pool_gather(p->pool, dynamic_accept, p, rows, want, cfg->max_batch_size,
                       p->queued_ns + cfg->queue_delay_us * 1000, more, DYNAMIC_BATCH_MAX - 1);
    if (n == 0)
        return false;
    mg_pooled_t *members[DYNAMIC_BATCH_MAX];
    const mg_serve_call_t *calls[DYNAMIC_BATCH_MAX];
    mg_serve_result_t *res[DYNAMIC_BATCH_MAX];
    members[0] = p;
    for (size_t i = 0; i < n; i++)
        members[i + 1] = of_job(more[i]);
    for (size_t i = 0; i <= n; i++) {
        calls[i] = members[i]->call;
        res[i] = members[i]->res;
    }
    mg_pooled_batch_t *b = calloc(1, sizeof(*b));
    if (b == NULL) { /* no memory for the joined Run: each alone */
        for (size_t i = 0; i <= n; i++)
            mg_serve_run(p->serve, calls[i], res[i]);
    } else {
        atomic_init(&b->refs, (int)n + 1);
        mg_arena_init(&b->arena, 0);
        mg_serve_run_batch(p->serve, calls, res, n + 1, &b->arena, &b->owner);
    }
    for (size_t i = 0; i <= n; i++) {
        members[i]->batch = b;
        members[i]->ran(members[i]);
    }
    return true;
}

/* Pool thread: run (alone, or as a dynamic batch), then `ran`. */
static void pooled_run(mg_pool_job_t *job)
{
    mg_pooled_t *p = of_job(job);
    if (run_dynamic_batch(p))
        return;
    mg_serve_run(p->serve, p->call, p->res);
    p->ran(p);
}

int mg_pooled_submit(mg_pool_t *pool, mg_pooled_t *p)
{
    p->job.run = pooled_run;
    p->pool = pool;
    p->batch = NULL;
    p->queued_ns = mg_obs_now_ns();
    return mg_pool_submit(pool, &p->job);
}

void mg_pooled_release(mg_pooled_t *p)
{
    mg_pooled_batch_t *b = p->batch;
    p->batch = NULL;
    if (b == NULL || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    mg_session_owner_release(b->owner);
    mg_arena_free(&b->arena);
    free(b);
}
