#include "serve/serve.h"

#include "core/log.h"
#include "core/rcu.h"
#include "serve/execute.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mg_serve {
    mg_registry_t *registry;
    mg_router_t *router;
    char *default_model; /* NULL: the only model of the repository, if there is one */
};

int mg_serve_new(mg_serve_t **out, const mg_serve_opts_t *opts, mg_err_t *err)
{
    mg_serve_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    s->registry = opts->registry;
    s->router = opts->router;
    if (opts->default_model != NULL && opts->default_model[0] != '\0' &&
        (s->default_model = strdup(opts->default_model)) == NULL) {
        free(s);
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    }
    *out = s;
    return 0;
}

void mg_serve_free(mg_serve_t *s)
{
    if (s == NULL)
        return;
    free(s->default_model);
    free(s);
}

mg_registry_t *mg_serve_registry(const mg_serve_t *s)
{
    return s->registry;
}

mg_router_t *mg_serve_router(const mg_serve_t *s)
{
    return s->router;
}

/*
 * The model a call is for: the route rule's, the URL's, the /predict body's, the configured
 * default, or the repository's only model (its name copied into `arena`: the snapshot that
 * holds it may go away).
 */
static int resolve_model(mg_serve_t *s, const mg_serve_call_t *call, mg_arena_t *arena,
                         mg_str_t *model, mg_err_t *err)
{
    if (call->rule != NULL)
        *model = (mg_str_t){call->rule->model, strlen(call->rule->model)};
    else if (call->model.len > 0)
        *model = call->model;
    else if (call->body_model.len > 0)
        *model = call->body_model;
    else if (s->default_model != NULL)
        *model = (mg_str_t){s->default_model, strlen(s->default_model)};
    else
        *model = (mg_str_t){"", 0};
    if (model->len > 0)
        return 0;
    rcu_read_lock();
    const mg_registry_snapshot_t *snap = mg_registry_snapshot(s->registry);
    if (mg_registry_snapshot_count(snap) == 1) {
        const char *name = mg_model_entry_name(mg_registry_snapshot_model(snap, 0));
        char *copy = mg_arena_strndup(arena, name, strlen(name));
        if (copy != NULL)
            *model = (mg_str_t){copy, strlen(copy)};
    }
    mg_rcu_read_unlock();
    if (model->len == 0)
        return mg_err_set(err, MG_EINVAL,
                          "no \"model\" given and no default model configured (--default-model)");
    return 0;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int fail(mg_serve_result_t *res, mg_serve_step_t step, int rc)
{
    res->rc = rc;
    res->step = step;
    mg_model_version_unpin(res->pick.version);
    res->pick.version = NULL;
    return rc;
}

int mg_serve_infer(mg_serve_t *s, const mg_serve_call_t *call, mg_serve_result_t *res)
{
    memset(res, 0, sizeof(*res));
    res->rule = call->rule != NULL ? call->rule->name : "-";
    mg_infer_request_t *req = call->req;
    int rc = resolve_model(s, call, req->arena, &res->model, &res->err);
    if (rc != 0)
        return fail(res, MG_SERVE_STEP_RESOLVE, rc);

    rc = mg_pick_version(s->registry, s->router, res->model,
                         call->rule != NULL ? call->rule->traffic : NULL, call->url_version,
                         &call->meta, req, 0, &res->pick, &res->err);
    if (rc != 0)
        return fail(res, MG_SERVE_STEP_ROUTE, rc);
    mg_model_version_t *v = res->pick.version;

    if (call->bind != NULL) {
        rc = call->bind(call->bind_ctx, mg_model_version_meta(v), mg_model_version_model(v), req,
                        &res->err);
        if (rc != 0)
            return fail(res, MG_SERVE_STEP_BIND, rc);
    }
    if (call->deadline_ns != 0 && now_ns() >= call->deadline_ns)
        return fail(res, MG_SERVE_STEP_EXECUTE,
                    mg_err_set(&res->err, MG_ETIMEDOUT,
                               "the request's deadline passed before model '%s' ran",
                               mg_model_version_model(v)));
    rc = mg_execute(v, req, &res->resp, &res->err);
    if (rc != 0)
        return fail(res, MG_SERVE_STEP_EXECUTE, rc);

    if (mg_log_enabled(MG_LOG_DEBUG)) {
        mg_str_t trace = mg_meta_value(&call->meta, "x-trace-id", 10);
        mg_log(MG_LOG_DEBUG, "serve",
               "routed model=%s version=%s reason=%s policy=%s rule=%s trace=%.*s",
               mg_model_version_model(v), mg_model_version_text(v),
               mg_policy_reason_name(res->pick.reason), mg_pick_source_name(res->pick.source),
               res->rule, (int)trace.len, trace.ptr);
    }
    return 0;
}

void mg_serve_done(mg_serve_result_t *res)
{
    mg_execute_release(&res->resp);
    mg_model_version_unpin(res->pick.version);
    res->pick.version = NULL;
}

size_t mg_serve_headers(const mg_serve_call_t *call, const mg_serve_result_t *res,
                        mg_serve_header_t *out, char *explain)
{
    const mg_model_version_t *v = res->pick.version;
    const char *version = mg_model_version_text(v);
    const char *reason = mg_policy_reason_name(res->pick.reason);
    size_t n = 0;
    out[n++] = (mg_serve_header_t){"x-model-version", {version, strlen(version)}};
    out[n++] = (mg_serve_header_t){"x-route-reason", {reason, strlen(reason)}};
    static const char *const echo[] = {"x-trace-id", "x-ab-group"};
    for (int i = 0; i < 2; i++) {
        mg_str_t e = mg_meta_value(&call->meta, echo[i], strlen(echo[i]));
        if (e.len > 0)
            out[n++] = (mg_serve_header_t){echo[i], e};
    }
    mg_str_t ask = mg_meta_value(&call->meta, "x-route-explain", 15);
    if (ask.len == 1 && ask.ptr[0] == '1') {
        int k = snprintf(explain, MG_SERVE_EXPLAIN_MAX,
                         "rule=%s policy=%s reason=%s version=%s chosen=%lld", res->rule,
                         mg_pick_source_name(res->pick.source), reason, version,
                         (long long)res->pick.chosen);
        if (res->pick.rule >= 0 && k > 0 && k < MG_SERVE_EXPLAIN_MAX)
            k += snprintf(explain + k, MG_SERVE_EXPLAIN_MAX - (size_t)k, " header-rule=%d",
                          res->pick.rule);
        if (k > 0)
            out[n++] = (mg_serve_header_t){"x-route-explain",
                                           {explain, strnlen(explain, MG_SERVE_EXPLAIN_MAX - 1)}};
    }
    return n;
}

int mg_serve_match(mg_serve_t *s, mg_str_t host, mg_str_t path, const mg_meta_t *meta,
                   mg_arena_t *arena, mg_route_rule_t *out)
{
    mg_route_request_t rr = {.host = host, .path = path, .headers = *meta};
    /*
     * The rule belongs to the snapshot: copy what the request needs into the arena and leave
     * the read section before running the model, so a long Run never holds up a writer.
     */
    int matched = 0, copied = 1;
    rcu_read_lock();
    const mg_route_rule_t *rule = mg_router_match(s->router, &rr);
    if (rule != NULL) {
        matched = 1;
        *out = *rule;
        out->name = mg_arena_strndup(arena, rule->name, strlen(rule->name));
        out->model = mg_arena_strndup(arena, rule->model, strlen(rule->model));
        if (rule->traffic != NULL) {
            mg_policy_t *p = mg_arena_alloc(arena, sizeof(*p));
            if (p != NULL)
                *p = *rule->traffic;
            out->traffic = p;
        }
        copied = out->name != NULL && out->model != NULL &&
                 (rule->traffic == NULL || out->traffic != NULL);
    }
    mg_rcu_read_unlock();
    if (!matched)
        return 0;
    return copied ? 1 : MG_ENOMEM;
}
