/* Triton's statistics JSON (proto/kserve_stats.h). */
#include "proto/kserve_stats.h"

#include <inttypes.h>
#include <string.h>

int mg_kserve_stats_begin(mg_buf_t *out)
{
    return mg_buf_puts(out, "{\"model_stats\":[");
}

int mg_kserve_stats_end(mg_buf_t *out)
{
    return mg_buf_puts(out, "]}");
}

/* ,"key":{"count":N,"ns":N} (no comma before the first of an object: `comma` 0). */
static int duration(mg_buf_t *out, int comma, const char *key, mg_obs_duration_t d)
{
    return mg_buf_printf(out, "%s\"%s\":{\"count\":%" PRIu64 ",\"ns\":%" PRIu64 "}",
                         comma ? "," : "", key, d.count, d.ns);
}

int mg_kserve_stats_row(mg_buf_t *out, int first, const char *model, const char *version,
                        const mg_obs_series_stats_t *f, const mg_obs_batch_stats_t *batches,
                        int nbatches)
{
    static const mg_obs_duration_t none = {0, 0};
    int rc = mg_buf_puts(out, first ? "{\"name\":" : ",{\"name\":");
    if (rc == 0)
        rc = mg_buf_json_string(out, model, strlen(model));
    if (rc == 0)
        rc = mg_buf_puts(out, ",\"version\":");
    if (rc == 0)
        rc = mg_buf_json_string(out, version, strlen(version));
    if (rc == 0)
        rc = mg_buf_printf(out,
                           ",\"last_inference\":%" PRIu64 ",\"inference_count\":%" PRIu64
                           ",\"execution_count\":%" PRIu64 ",\"inference_stats\":{",
                           f->last_inference_ms, f->inference_count, f->execution_count);
    if (rc == 0)
        rc = duration(out, 0, "success", f->success);
    if (rc == 0)
        rc = duration(out, 1, "fail", f->fail);
    if (rc == 0)
        rc = duration(out, 1, "queue", f->queue);
    if (rc == 0)
        rc = duration(out, 1, "compute_input", f->compute_input);
    if (rc == 0)
        rc = duration(out, 1, "compute_infer", f->compute_infer);
    if (rc == 0)
        rc = duration(out, 1, "compute_output", f->compute_output);
    if (rc == 0)
        rc = duration(out, 1, "cache_hit", none);
    if (rc == 0)
        rc = duration(out, 1, "cache_miss", none);
    if (rc == 0)
        rc = mg_buf_puts(out, "},\"batch_stats\":[");
    int written = 0;
    for (int i = 0; rc == 0 && i < nbatches; i++) {
        const mg_obs_batch_stats_t *b = &batches[i];
        if (b->batch_size == 0) /* sizes past the distinct ones counted: no size to name */
            continue;
        rc = mg_buf_printf(out, "%s{\"batch_size\":%" PRIu64 ",", written++ ? "," : "",
                           b->batch_size);
        if (rc == 0)
            rc = duration(out, 0, "compute_input", b->compute_input);
        if (rc == 0)
            rc = duration(out, 1, "compute_infer", b->compute_infer);
        if (rc == 0)
            rc = duration(out, 1, "compute_output", b->compute_output);
        if (rc == 0)
            rc = mg_buf_puts(out, "}");
    }
    if (rc == 0)
        rc = mg_buf_puts(out, "]}");
    return rc;
}
