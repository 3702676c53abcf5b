/*
 * Opportunistic batching: the inference calls one event-loop wake decoded and routed are held
 * until the wake ends, then those routed to the same version with the same non-batch input
 * shapes run as one ONNX Runtime Run (serve.h mg_serve_run_batch), and each gets its own rows
 * back. Nothing waits for more work: a batch is what the wake already holds, so a lone request
 * runs at the end of the wake that read it. Routing stays per request (members of a batch are
 * the calls that chose the same version), and a call invalid on its own never joins.
 *
 * One batcher per request thread; the front end owns the calls and results it holds, and
 * answers each once mg_batch_flush hands it back.
 */
#ifndef MG_SERVE_BATCH_H
#define MG_SERVE_BATCH_H

#include "serve/serve.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct mg_batch mg_batch_t;

/**
 * Answers one held call after its Run (or its failure, in res->rc): encode, send, then
 * mg_serve_done(res). Called once per held call, by mg_batch_flush, on its thread.
 */
typedef void (*mg_batch_answer_fn)(void *ctx, mg_serve_result_t *res);

/** Creates a batcher holding up to `cap` calls. Returns 0, MG_EINVAL or MG_ENOMEM. */
int mg_batch_new(mg_batch_t **out, size_t cap);

/** Frees the batcher; it must hold nothing (flush first). Accepts NULL. */
void mg_batch_free(mg_batch_t *b);

/**
 * Holds a call mg_serve_begin routed and mg_serve_batchable accepted, with `ctx` for its
 * answer. `call` and `res` must stay valid and untouched until answered. Returns false (and
 * holds nothing) when the batcher is full: run the call alone. Thread: the batcher's.
 */
bool mg_batch_add(mg_batch_t *b, const mg_serve_call_t *call, mg_serve_result_t *res, void *ctx);

/** Where a call mg_serve_begin routed goes next (mg_batch_place). */
typedef enum {
    MG_PLACE_NOW,  /**< run it here (mg_serve_run), then answer it */
    MG_PLACE_POOL, /**< hand it to the execution pool, which runs and answers it */
    MG_PLACE_HELD, /**< held by the batcher: mg_batch_flush runs and answers it */
} mg_place_t;

/**
 * The one placement every front end applies after a successful mg_serve_begin: the
 * execution pool when the call's version runs there (mg_serve_on_pool) and `pooled` (the
 * server has a pool); else held in `b` with `ctx` when mg_serve_batchable and `b` has room
 * (a NULL `b` holds nothing); else now. Thread: the batcher's.
 */
mg_place_t mg_batch_place(mg_batch_t *b, bool pooled, const mg_serve_call_t *call,
                          mg_serve_result_t *res, void *ctx);

/** The calls held. Thread: the batcher's. */
size_t mg_batch_count(const mg_batch_t *b);

/**
 * Runs every held call: in arrival order, each call not yet run leads a group of the later
 * calls that can share its Run (same version, mg_session_batch_compatible, rows within the
 * version's limit), the group runs (mg_serve_run_batch, or mg_serve_run alone), `answer` is
 * called for each member, and the group's shared memory is released before the next group.
 * Holds nothing afterwards. Thread: the batcher's.
 */
void mg_batch_flush(mg_batch_t *b, mg_serve_t *s, mg_batch_answer_fn answer);

#endif
