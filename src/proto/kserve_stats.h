/*
 * Triton's statistics extension JSON (docs/protocol/extension_statistics.md):
 * {"model_stats": [$model_stat, ...]} with each $model_stat {"name", "version",
 * "last_inference" (ms since the epoch), "inference_count", "execution_count",
 * "inference_stats" {"success", "fail", "queue", "compute_input", "compute_infer",
 * "compute_output", "cache_hit", "cache_miss": {"count", "ns"}}, "batch_stats" [{"batch_size",
 * "compute_input", "compute_infer", "compute_output"}]}. The facts come from serve/stats.h.
 */
#ifndef MG_PROTO_KSERVE_STATS_H
#define MG_PROTO_KSERVE_STATS_H

#include "core/buf.h"
#include "obs/metrics.h"

/** Appends {"model_stats":[. Returns 0 or MG_ENOMEM. Thread: any. */
int mg_kserve_stats_begin(mg_buf_t *out);

/**
 * Appends one $model_stat of `model` / `version` (preceded by a comma unless `first`), with
 * `nbatches` batch sizes (the overflow entry, batch size 0, is left out). modelgate has no response cache: cache_hit and cache_miss are zero.
 * Returns 0 or MG_ENOMEM. Thread: any.
 */
int mg_kserve_stats_row(mg_buf_t *out, int first, const char *model, const char *version,
                        const mg_obs_series_stats_t *figures, const mg_obs_batch_stats_t *batches,
                        int nbatches);

/** Appends the closing ]}. Returns 0 or MG_ENOMEM. Thread: any. */
int mg_kserve_stats_end(mg_buf_t *out);

#endif
