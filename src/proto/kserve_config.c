/* Triton's model configuration JSON (proto/kserve_config.h). */
#include "proto/kserve_config.h"

#include "core/version.h"

#include <inttypes.h>
#include <string.h>

/* The label file config.json names for output `name`, or "". */
static const char *label_file(const mg_model_config_t *cfg, const char *name)
{
    for (int i = 0; i < cfg->noutputs; i++) {
        if (strcmp(cfg->outputs[i].name, name) == 0)
            return cfg->outputs[i].label_filename;
    }
    return "";
}

static int put_tensors(mg_buf_t *out, const char *key, const mg_tensor_info_t *t, size_t n,
                       const mg_model_config_t *cfg, bool outputs)
{
    int rc = mg_buf_printf(out, ",\"%s\":[", key);
    int skip = cfg->max_batch_size > 0 ? 1 : 0; /* Triton's dims leave the batch dim out */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = mg_buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
        if (rc == 0)
            rc = mg_buf_json_string(out, t[i].name, strlen(t[i].name));
        if (rc == 0)
            rc = mg_buf_printf(out, ",\"data_type\":\"%s\",\"dims\":[",
                               mg_dtype_config_name(t[i].dtype));
        for (int d = skip; rc == 0 && d < t[i].ndim; d++)
            rc = mg_buf_printf(out, "%s%" PRId64, d > skip ? "," : "",
                               t[i].shape[d] < 0 ? (int64_t)-1 : t[i].shape[d]);
        if (rc == 0)
            rc = mg_buf_puts(out, "]");
        const char *labels = outputs ? label_file(cfg, t[i].name) : "";
        if (rc == 0 && labels[0] != '\0') {
            rc = mg_buf_puts(out, ",\"label_filename\":");
            if (rc == 0)
                rc = mg_buf_json_string(out, labels, strlen(labels));
        }
        if (rc == 0)
            rc = mg_buf_puts(out, "}");
    }
    return rc == 0 ? mg_buf_puts(out, "]") : rc;
}

static int put_policy(mg_buf_t *out, const mg_model_config_t *cfg)
{
    switch (cfg->policy) {
    case MG_VERSION_POLICY_ALL: return mg_buf_puts(out, ",\"version_policy\":{\"all\":{}}");
    case MG_VERSION_POLICY_SPECIFIC: {
        int rc = mg_buf_puts(out, ",\"version_policy\":{\"specific\":{\"versions\":[");
        for (int i = 0; rc == 0 && i < cfg->nspecific; i++)
            rc = mg_buf_printf(out, "%s%" PRId64, i ? "," : "", cfg->specific[i]);
        return rc == 0 ? mg_buf_puts(out, "]}}") : rc;
    }
    default:
        return mg_buf_printf(out, ",\"version_policy\":{\"latest\":{\"num_versions\":%d}}",
                             cfg->latest_n);
    }
}

/* One parameter as JSON: ,"key":{"string_value":"<json>"} (the first without its comma). */
typedef struct param_writer {
    mg_buf_t *out;
    int first;
} param_writer_t;

static int put_parameter(void *ctx, const char *key, const mg_buf_t *json)
{
    param_writer_t *w = ctx;
    int rc = mg_buf_printf(w->out, "%s\"%s\":{\"string_value\":", w->first ? "" : ",", key);
    w->first = 0;
    if (rc == 0)
        rc = mg_buf_json_string(w->out, json->data, json->len);
    return rc == 0 ? mg_buf_puts(w->out, "}") : rc;
}

/* "sha256": {"<version>": {"<file>": "<hex>", ...}, ...}, one object per pinned version. */
static int pins_json(const mg_model_config_t *cfg, mg_buf_t *j)
{
    int rc = mg_buf_puts(j, "{");
    for (int i = 0; rc == 0 && i < cfg->npins; i++) {
        int64_t v = cfg->pins[i].version;
        bool seen = false;
        for (int k = 0; k < i && !seen; k++)
            seen = cfg->pins[k].version == v;
        if (seen)
            continue;
        rc = mg_buf_printf(j, "%s\"%" PRId64 "\":{", j->len > 1 ? "," : "", v);
        int n = 0;
        for (int k = i; rc == 0 && k < cfg->npins; k++) {
            if (cfg->pins[k].version != v)
                continue;
            rc = mg_buf_puts(j, n++ ? "," : "");
            if (rc == 0)
                rc = mg_buf_json_string(j, cfg->pins[k].file, strlen(cfg->pins[k].file));
            if (rc == 0)
                rc = mg_buf_puts(j, ":\"");
            for (int b = 0; rc == 0 && b < 32; b++)
                rc = mg_buf_printf(j, "%02x", cfg->pins[k].sha256[b]);
            if (rc == 0)
                rc = mg_buf_puts(j, "\"");
        }
        if (rc == 0)
            rc = mg_buf_puts(j, "}");
    }
    return rc == 0 ? mg_buf_puts(j, "}") : rc;
}

int mg_kserve_config_parameters(const mg_model_config_t *cfg,
                                int (*fn)(void *ctx, const char *key, const mg_buf_t *json),
                                void *ctx)
{
    mg_buf_t j = {0};
    int rc = 0;
    if (rc == 0 && cfg->default_version > 0) {
        mg_buf_reset(&j);
        rc = mg_buf_printf(&j, "\"%" PRId64 "\"", cfg->default_version);
        if (rc == 0)
            rc = fn(ctx, "default_version", &j);
    }
    if (rc == 0 && cfg->intra_op_threads > 0) {
        mg_buf_reset(&j);
        rc = mg_buf_printf(&j, "%d", cfg->intra_op_threads);
        if (rc == 0)
            rc = fn(ctx, "intra_op_threads", &j);
    }
    if (rc == 0 && cfg->warmup_runs > 0) {
        mg_buf_reset(&j);
        rc = mg_buf_printf(&j, "{\"runs\":%d}", cfg->warmup_runs);
        if (rc == 0)
            rc = fn(ctx, "warmup", &j);
    }
    if (rc == 0 && cfg->max_inflight > 0) {
        mg_buf_reset(&j);
        rc = mg_buf_printf(&j, "%d", cfg->max_inflight);
        if (rc == 0)
            rc = fn(ctx, "max_inflight", &j);
    }
    if (rc == 0 && cfg->execution != MG_EXECUTION_AUTO) {
        mg_buf_reset(&j);
        rc = mg_buf_puts(&j, cfg->execution == MG_EXECUTION_POOL ? "\"pool\"" : "\"inline\"");
        if (rc == 0)
            rc = fn(ctx, "execution", &j);
    }
    if (rc == 0 && (cfg->batching != MG_BATCHING_AUTO || cfg->batch_max > 0)) {
        mg_buf_reset(&j);
        rc = mg_buf_puts(&j, "{");
        if (rc == 0 && cfg->batching != MG_BATCHING_AUTO)
            rc = mg_buf_printf(&j, "\"opportunistic\":%s",
                               cfg->batching == MG_BATCHING_ON ? "true" : "false");
        if (rc == 0 && cfg->batch_max > 0)
            rc = mg_buf_printf(&j, "%s\"max_batch\":%" PRId64,
                               cfg->batching != MG_BATCHING_AUTO ? "," : "", cfg->batch_max);
        if (rc == 0)
            rc = mg_buf_puts(&j, "}");
        if (rc == 0)
            rc = fn(ctx, "batching", &j);
    }
    if (rc == 0 && cfg->has_traffic) {
        mg_buf_reset(&j);
        rc = mg_policy_to_json(&cfg->traffic, &j);
        if (rc == 0)
            rc = fn(ctx, "traffic", &j);
    }
    mg_breaker_config_t defaults;
    mg_breaker_config_default(&defaults);
    if (rc == 0 && memcmp(&defaults, &cfg->breaker, sizeof(defaults)) != 0) {
        const mg_breaker_config_t *b = &cfg->breaker;
        mg_buf_reset(&j);
        rc = mg_buf_printf(&j,
                           "{\"consecutive_failures\":%d,\"failure_ratio\":%.17g,"
                           "\"window_ms\":%d,\"min_requests\":%d,\"ejection_ms\":%d,"
                           "\"max_ejection_ms\":%d,\"probes\":%d}",
                           (int)b->consecutive_failures, b->failure_ratio, (int)b->window_ms,
                           (int)b->min_requests, (int)b->ejection_ms, (int)b->max_ejection_ms,
                           (int)b->probes);
        if (rc == 0)
            rc = fn(ctx, "breaker", &j);
    }
    if (rc == 0 && cfg->npins > 0) {
        mg_buf_reset(&j);
        rc = pins_json(cfg, &j);
        if (rc == 0)
            rc = fn(ctx, "sha256", &j);
    }
    mg_buf_free(&j);
    return rc;
}

int mg_kserve_config(mg_buf_t *out, const char *name, const mg_model_config_t *cfg,
                     const mg_kserve_info_tensors_t *tensors)
{
    int rc = mg_buf_puts(out, "{\"name\":");
    if (rc == 0)
        rc = mg_buf_json_string(out, name, strlen(name));
    if (rc == 0)
        rc = mg_buf_puts(out, ",\"platform\":\"onnxruntime_onnx\",\"backend\":\"onnxruntime\"");
    if (rc == 0)
        rc = put_policy(out, cfg);
    if (rc == 0)
        rc = mg_buf_printf(out, ",\"max_batch_size\":%" PRId64, cfg->max_batch_size);
    if (rc == 0)
        rc = put_tensors(out, "input", tensors->inputs, tensors->ninputs, cfg, false);
    if (rc == 0)
        rc = put_tensors(out, "output", tensors->outputs, tensors->noutputs, cfg, true);
    for (int i = -1; rc == 0 && cfg->dynamic_batching && i < cfg->npreferred; i++) {
        if (i < 0)
            rc = mg_buf_printf(out,
                               ",\"dynamic_batching\":{\"max_queue_delay_microseconds\":%" PRId64
                               ",\"preferred_batch_size\":[",
                               cfg->queue_delay_us);
        else
            rc = mg_buf_printf(out, "%s%" PRId64, i ? "," : "", cfg->preferred[i]);
    }
    if (rc == 0 && cfg->dynamic_batching)
        rc = mg_buf_puts(out, "]}");
    if (rc == 0)
        rc = mg_buf_puts(out, ",\"instance_group\":[{\"name\":");
    if (rc == 0)
        rc = mg_buf_json_string(out, name, strlen(name));
    if (rc == 0)
        rc = mg_buf_printf(out, ",\"kind\":\"KIND_CPU\",\"count\":%d}]", cfg->instance_count);
    if (rc == 0)
        rc = mg_buf_puts(out, ",\"default_model_filename\":\"model.onnx\"");
    param_writer_t w = {out, 1};
    if (rc == 0)
        rc = mg_buf_puts(out, ",\"parameters\":{");
    if (rc == 0)
        rc = mg_kserve_config_parameters(cfg, put_parameter, &w);
    return rc == 0 ? mg_buf_puts(out, "}}") : rc;
}
