#include "serve/batch.h"

#include "core/buf.h"
#include "infer/session.h"

#include <stdlib.h>

struct mg_batch {
    size_t cap, n;
    const mg_serve_call_t **calls;
    mg_serve_result_t **res;
    void **ctx;
    bool *done;
    /* One group at a time: its members, in the form mg_serve_run_batch takes. */
    const mg_serve_call_t **gcalls;
    mg_serve_result_t **gres;
    size_t *gidx;
    mg_arena_t arena; /* the joined inputs and shared outputs of the group being run */
};

int mg_batch_new(mg_batch_t **out, size_t cap)
{
    if (cap == 0)
        return MG_EINVAL;
    mg_batch_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return MG_ENOMEM;
    b->cap = cap;
    b->calls = calloc(cap, sizeof(*b->calls));
    b->res = calloc(cap, sizeof(*b->res));
    b->ctx = calloc(cap, sizeof(*b->ctx));
    b->done = calloc(cap, sizeof(*b->done));
    b->gcalls = calloc(cap, sizeof(*b->gcalls));
    b->gres = calloc(cap, sizeof(*b->gres));
    b->gidx = calloc(cap, sizeof(*b->gidx));
    mg_arena_init(&b->arena, 0);
    if (b->calls == NULL || b->res == NULL || b->ctx == NULL || b->done == NULL ||
        b->gcalls == NULL || b->gres == NULL || b->gidx == NULL) {
        mg_batch_free(b);
        return MG_ENOMEM;
    }
    *out = b;
    return 0;
}

void mg_batch_free(mg_batch_t *b)
{
    if (b == NULL)
        return;
    free(b->calls);
    free(b->res);
    free(b->ctx);
    free(b->done);
    free(b->gcalls);
    free(b->gres);
    free(b->gidx);
    mg_arena_free(&b->arena);
    free(b);
}

bool mg_batch_add(mg_batch_t *b, const mg_serve_call_t *call, mg_serve_result_t *res, void *ctx)
{
    if (b->n == b->cap)
        return false;
    b->calls[b->n] = call;
    b->res[b->n] = res;
    b->ctx[b->n] = ctx;
    b->done[b->n] = false;
    b->n++;
    return true;
}

mg_place_t mg_batch_place(mg_batch_t *b, bool pooled, const mg_serve_call_t *call,
                          mg_serve_result_t *res, void *ctx)
{
    if (pooled && mg_serve_on_pool(res))
        return MG_PLACE_POOL;
    if (b != NULL && mg_serve_batchable(call, res) && mg_batch_add(b, call, res, ctx))
        return MG_PLACE_HELD;
    return MG_PLACE_NOW;
}

size_t mg_batch_count(const mg_batch_t *b)
{
    return b->n;
}

/* Whether held call `j` may join the group led by `i` that holds `rows` rows so far. */
static bool joins(const mg_batch_t *b, size_t i, size_t j, int64_t rows, int64_t limit)
{
    if (b->done[j] || b->res[j]->pick.version != b->res[i]->pick.version)
        return false;
    const mg_infer_request_t *r = b->calls[j]->req;
    return rows + r->inputs[0].shape[0] <= limit &&
           mg_session_batch_compatible(b->calls[i]->req, r);
}

void mg_batch_flush(mg_batch_t *b, mg_serve_t *s, mg_batch_answer_fn answer)
{
    for (size_t i = 0; i < b->n; i++) {
        if (b->done[i])
            continue;
        int64_t limit = mg_serve_batch_rows(b->res[i]);
        int64_t rows = b->calls[i]->req->inputs[0].shape[0];
        size_t g = 0;
        b->gidx[g++] = i;
        b->done[i] = true;
        for (size_t j = i + 1; j < b->n; j++) {
            if (!joins(b, i, j, rows, limit))
                continue;
            rows += b->calls[j]->req->inputs[0].shape[0];
            b->gidx[g++] = j;
            b->done[j] = true;
        }
        void *owner = NULL;
        if (g == 1) {
            mg_serve_run(s, b->calls[i], b->res[i]);
        } else {
            for (size_t m = 0; m < g; m++) {
                b->gcalls[m] = b->calls[b->gidx[m]];
                b->gres[m] = b->res[b->gidx[m]];
            }
            mg_serve_run_batch(s, b->gcalls, b->gres, g, &b->arena, &owner);
        }
        for (size_t m = 0; m < g; m++)
            answer(b->ctx[b->gidx[m]], b->res[b->gidx[m]]);
        mg_session_owner_release(owner);
        mg_arena_reset(&b->arena);
    }
    b->n = 0;
}
