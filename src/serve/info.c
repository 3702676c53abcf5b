#include "serve/info.h"

#include "core/rcu.h"
#include "core/version.h"

#include <string.h>

void mg_info_server(mg_info_server_t *out)
{
    static const char *const extensions[] = {"binary_tensor_data", "model_repository",
                                             "statistics",         "model_configuration",
                                             "classification",     "system_shared_memory"};
    *out = (mg_info_server_t){"modelgate", MG_VERSION, extensions,
                              sizeof(extensions) / sizeof(extensions[0])};
}

bool mg_info_ready(mg_serve_t *s, mg_buf_t *why)
{
    mg_registry_t *reg = mg_serve_registry(s);
    if (mg_serve_draining(s)) {
        if (why != NULL)
            mg_buf_puts(why, "the server is shutting down");
        return false;
    }
    if (mg_registry_all_ready(reg))
        return true;
    if (why == NULL)
        return false;
    size_t start = why->len;
    rcu_read_lock();
    const mg_registry_snapshot_t *snap = mg_registry_snapshot(reg);
    for (size_t i = 0; i < mg_registry_snapshot_count(snap); i++) {
        const mg_model_entry_t *e = mg_registry_snapshot_model(snap, i);
        if (mg_model_entry_failed(e))
            mg_buf_printf(why, "%smodel '%s' is not ready (%s)", why->len > start ? "; " : "",
                          mg_model_entry_name(e), mg_model_entry_reason(e));
    }
    mg_rcu_read_unlock();
    if (why->len == start)
        mg_buf_puts(why, "models are still loading");
    return false;
}

int mg_info_acquire(mg_serve_t *s, mg_str_t model, mg_str_t version, mg_model_version_t **out,
                    mg_err_t *err)
{
    int64_t number = 0;
    if (version.len > 0 && mg_version_parse(version.ptr, version.len, &number) != 0) {
        /* Not a number, so not a version of any model; but say so only for a known model. */
        int rc = mg_registry_acquire(mg_serve_registry(s), model, 0, out, err);
        if (rc == MG_ENOMODEL)
            return rc;
        mg_model_version_unpin(*out);
        *out = NULL;
        return mg_err_set(err, MG_ENOVERSION, "unknown version '%.*s' of model '%.*s'",
                          (int)(version.len > 64 ? 64 : version.len), version.ptr, (int)model.len,
                          model.ptr);
    }
    return mg_registry_acquire(mg_serve_registry(s), model, number, out, err);
}

int mg_info_ready_versions(mg_serve_t *s, mg_str_t model, int64_t *out, int cap)
{
    int n = 0;
    rcu_read_lock();
    const mg_model_entry_t *e =
        mg_registry_snapshot_find(mg_registry_snapshot(mg_serve_registry(s)), model);
    for (int i = 0; e != NULL && i < mg_model_entry_nversions(e) && n < cap; i++) {
        const mg_model_version_t *v = mg_model_entry_version(e, i);
        if (mg_model_version_state(v) == MG_MODEL_READY)
            out[n++] = mg_model_version_number(v);
    }
    mg_rcu_read_unlock();
    return n;
}

/* Adapts a registry row to the index row the front ends encode. */
typedef struct index_adapter {
    mg_info_index_fn fn;
    void *ctx;
} index_adapter_t;

static int adapt_row(void *ctx, const mg_registry_row_t *r)
{
    index_adapter_t *a = ctx;
    mg_info_index_row_t row = {r->name, r->version, NULL, NULL, NULL};
    if (r->known) {
        row.state = mg_model_state_triton(r->state);
        row.modelgate_state = mg_model_state_name(r->state);
        row.reason = r->reason;
    }
    return a->fn(a->ctx, &row);
}

int mg_info_index(mg_serve_t *s, bool ready_only, mg_info_index_fn fn, void *ctx)
{
    index_adapter_t a = {fn, ctx};
    return mg_registry_index(mg_serve_registry(s), ready_only, adapt_row, &a);
}

int mg_info_traffic(mg_serve_t *s, mg_str_t model, mg_policy_t *out, mg_pick_source_t *source,
                    mg_err_t *err)
{
    mg_registry_t *reg = mg_serve_registry(s);
    int rc = 0;
    rcu_read_lock();
    if (mg_registry_snapshot_find(mg_registry_snapshot(reg), model) == NULL) {
        rc = mg_err_set(err, MG_ENOMODEL, MG_UNKNOWN_MODEL_FMT, mg_err_quote_len(model.len),
                        model.ptr);
    } else {
        const mg_policy_t *p = mg_pick_policy(reg, mg_serve_router(s), model, NULL, source);
        if (p != NULL)
            *out = *p;
    }
    mg_rcu_read_unlock();
    return rc;
}

int mg_info_each_entry(mg_serve_t *s, mg_str_t model, mg_info_entry_fn fn, void *ctx, mg_err_t *err)
{
    int rc = 0;
    rcu_read_lock();
    const mg_registry_snapshot_t *snap = mg_registry_snapshot(mg_serve_registry(s));
    if (model.len > 0) {
        const mg_model_entry_t *e = mg_registry_snapshot_find(snap, model);
        if (e == NULL)
            rc = mg_err_set(err, MG_ENOMODEL, MG_UNKNOWN_MODEL_FMT, mg_err_quote_len(model.len),
                            model.ptr);
        else
            rc = fn(ctx, e);
    } else {
        for (size_t i = 0; rc == 0 && i < mg_registry_snapshot_count(snap); i++)
            rc = fn(ctx, mg_registry_snapshot_model(snap, i));
    }
    mg_rcu_read_unlock();
    return rc;
}

typedef struct breaker_walk {
    int64_t now;
    mg_info_breaker_fn fn;
    void *ctx;
} breaker_walk_t;

/* The rows of one model's versions. */
static int breaker_rows(void *arg, const mg_model_entry_t *e)
{
    const breaker_walk_t *w = arg;
    int64_t now = w->now;
    mg_info_breaker_fn fn = w->fn;
    void *ctx = w->ctx;
    int rc = 0;
    for (int k = 0; rc == 0 && k < mg_model_entry_nversions(e); k++) {
        const mg_model_version_t *v = mg_model_entry_version(e, k);
        mg_info_breaker_row_t row = {.model = mg_model_entry_name(e),
                                     .version = mg_model_version_text(v),
                                     .ready = mg_model_version_state(v) == MG_MODEL_READY};
        mg_breaker_read(mg_model_version_breaker(v), now, &row.status);
        if (!row.ready) {
            /* A version that failed to load is open from the start: nothing can reach it. */
            row.status.state = MG_BREAKER_OPEN;
            row.status.last_trip = MG_BREAKER_TRIP_LOAD;
        }
        rc = fn(ctx, &row);
    }
    return rc;
}

int mg_info_breakers(mg_serve_t *s, mg_str_t model, mg_info_breaker_fn fn, void *ctx, mg_err_t *err)
{
    breaker_walk_t w = {mg_breaker_now(), fn, ctx};
    return mg_info_each_entry(s, model, breaker_rows, &w, err);
}

int mg_info_model(mg_serve_t *s, mg_str_t model, mg_str_t version, mg_info_model_t *out,
                  mg_err_t *err)
{
    memset(out, 0, sizeof(*out));
    mg_model_version_t *v;
    int rc = mg_info_acquire(s, model, version, &v, err);
    if (rc != 0)
        return rc;
    out->version = v;
    out->name = mg_model_version_model(v);
    out->platform = "onnxruntime_onnx";
    out->versions[0] = mg_model_version_number(v);
    out->nversions = 1;
    if (version.len == 0) /* every READY version of the model, ascending */
        out->nversions = mg_info_ready_versions(s, model, out->versions, MG_VERSIONS_MAX);
    out->max_batch_size = mg_model_version_config(v)->max_batch_size;
    const mg_session_t *meta = mg_model_version_meta(v);
    out->inputs = mg_session_inputs(meta);
    out->ninputs = mg_session_ninputs(meta);
    out->outputs = mg_session_outputs(meta);
    out->noutputs = mg_session_noutputs(meta);
    return 0;
}

void mg_info_model_done(mg_info_model_t *m)
{
    mg_model_version_unpin(m->version);
    m->version = NULL;
}
