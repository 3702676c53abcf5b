/*
 * Triton's statistics extension, the facts: which (model, version) rows a statistics call
 * covers (one version, every READY version of one model, or of every model) and their figures,
 * read from obs/metrics.h's per-thread counters (summed on read; nothing is counted twice).
 * proto/kserve_stats.h writes them in the protocol's JSON.
 */
#ifndef MG_SERVE_STATS_H
#define MG_SERVE_STATS_H

#include "core/err.h"
#include "obs/metrics.h"
#include "serve/serve.h"

/** One version's statistics (Triton's $model_stat). Pointers valid during the callback only. */
typedef struct mg_stats_row {
    const char *model;
    const char *version;
    mg_obs_series_stats_t figures; /* zeros for a version that has served nothing */
    int nbatches;
    mg_obs_batch_stats_t batches[MG_OBS_BATCH_SIZES + 1];
} mg_stats_row_t;

/** Called once per row; a non-zero return stops the walk and is returned. */
typedef int (*mg_stats_fn)(void *ctx, const mg_stats_row_t *row);

/**
 * Calls `fn` for the rows a statistics call asks for: `model` empty: every READY version of
 * every model (by name, then version); `version` empty: every READY version of `model`; else
 * that version, which must be READY. Returns 0, MG_ENOMODEL / MG_ENOVERSION (404, with
 * `err`), MG_EUNAVAIL (the version does not serve, or metrics are off: --metrics off), or the
 * callback's value. Thread: any RCU-registered thread; lock-free.
 */
int mg_stats_collect(mg_serve_t *s, mg_str_t model, mg_str_t version, mg_stats_fn fn, void *ctx,
                     mg_err_t *err);

#endif
