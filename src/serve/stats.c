/* The rows of a statistics call (serve/stats.h), read from obs/metrics.h. */
#include "serve/stats.h"

#include "core/version.h"
#include "serve/info.h"

#include <string.h>

/* Fills `row` from series (model, number): zeros when the pair never served. */
static int emit(const char *model, const mg_model_version_t *v, mg_stats_fn fn, void *ctx)
{
    mg_stats_row_t row;
    memset(&row, 0, sizeof(row));
    row.model = model;
    row.version = mg_model_version_text(v);
    mg_obs_series_t id;
    if (mg_obs_series_find((mg_str_t){model, strlen(model)}, mg_model_version_number(v), &id) ==
        0) {
        mg_obs_series_read(id, &row.figures);
        int n = mg_obs_series_batches(id, row.batches, MG_OBS_BATCH_SIZES + 1);
        row.nbatches = n > 0 ? n : 0;
    }
    return fn(ctx, &row);
}

typedef struct stats_walk {
    mg_stats_fn fn;
    void *ctx;
} stats_walk_t;

/* Every READY version of one model entry. */
static int emit_entry(void *arg, const mg_model_entry_t *e)
{
    const stats_walk_t *w = arg;
    mg_stats_fn fn = w->fn;
    void *ctx = w->ctx;
    int rc = 0;
    for (int i = 0; rc == 0 && i < mg_model_entry_nversions(e); i++) {
        const mg_model_version_t *v = mg_model_entry_version(e, i);
        if (mg_model_version_state(v) == MG_MODEL_READY)
            rc = emit(mg_model_entry_name(e), v, fn, ctx);
    }
    return rc;
}

int mg_stats_collect(mg_serve_t *s, mg_str_t model, mg_str_t version, mg_stats_fn fn, void *ctx,
                     mg_err_t *err)
{
    if (!mg_obs_enabled())
        return mg_err_set(err, MG_EUNAVAIL,
                          "statistics are not kept: metrics are off "
                          "(--metrics off)");
    if (version.len > 0) {
        mg_model_version_t *v;
        int rc = mg_info_acquire(s, model, version, &v, err);
        if (rc != 0)
            return rc;
        rc = emit(mg_model_version_model(v), v, fn, ctx);
        mg_model_version_unpin(v);
        return rc;
    }
    stats_walk_t w = {fn, ctx};
    return mg_info_each_entry(s, model, emit_entry, &w, err);
}
