#include "serve/serve.h"

#include "core/log.h"
#include "core/rcu.h"
#include "route/breaker.h"
#include "serve/execute.h"
#include "serve/status.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mg_serve {
    mg_registry_t *registry;
    mg_router_t *router;
    char *default_model;  /* NULL: the only model of the repository, if there is one */
    atomic_bool draining; /* shutting down: readiness says no, requests still run */
};

int mg_serve_new(mg_serve_t **out, const mg_serve_opts_t *opts, mg_err_t *err)
{
    mg_serve_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    s->registry = opts->registry;
    s->router = opts->router;
    atomic_init(&s->draining, false);
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

void mg_serve_drain(mg_serve_t *s)
{
    atomic_store_explicit(&s->draining, true, memory_order_release);
}

bool mg_serve_draining(const mg_serve_t *s)
{
    return atomic_load_explicit(&((mg_serve_t *)s)->draining, memory_order_acquire);
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

/*
 * How a breaker counts a result: server-side failures of the model count against it; client
 * errors (4xx), a deadline that passed and a shutdown are not the version's fault and are not
 * recorded at all. Returns 1 (failure), 0 (success) or -1 (not recorded).
 */
static int breaker_outcome(int rc)
{
    if (rc == 0)
        return 0;
    if (rc == MG_ETIMEDOUT || rc == MG_ECANCELED || rc == MG_EUNAVAIL)
        return -1;
    return mg_status_http(rc) >= 500 ? 1 : -1;
}

/*
 * Runs the call's request on the pinned version `v` (the deadline checked first) and records
 * the outcome on the version's breaker; `may_open` is false when `v` serves as the stable
 * version, which is never ejected. The one place a request executes: the first run and the
 * replay on the stable version both come through here.
 */
static int run_on(mg_model_version_t *v, bool may_open, const mg_serve_call_t *call,
                  mg_serve_result_t *res)
{
    if (call->deadline_ns != 0 && now_ns() >= call->deadline_ns)
        return mg_err_set(&res->err, MG_ETIMEDOUT,
                          "the request's deadline passed before model '%s' ran",
                          mg_model_version_model(v));
    int rc = mg_execute(v, call->req, &res->resp, &res->err);
    int outcome = breaker_outcome(rc);
    if (outcome < 0)
        return rc;
    mg_breaker_t *b = mg_model_version_breaker(v);
    int64_t t = mg_breaker_now();
    mg_breaker_event_t ev =
        mg_breaker_record(b, outcome ? MG_BREAKER_FAILURE : MG_BREAKER_SUCCESS, may_open, t);
    if (ev != MG_BREAKER_EVENT_NONE) {
        mg_breaker_status_t st;
        mg_breaker_read(b, t, &st);
        if (ev == MG_BREAKER_EVENT_OPENED)
            mg_log(MG_LOG_WARN, "breaker",
                   "opened model=%s version=%s trips=%llu ejection_ms=%lld (%s; last: %s)",
                   mg_model_version_model(v), mg_model_version_text(v),
                   (unsigned long long)st.trips, (long long)st.ejection_ms,
                   mg_breaker_trip_name(st.last_trip), res->err.msg);
        else
            mg_log(MG_LOG_INFO, "breaker", "closed model=%s version=%s trips=%llu",
                   mg_model_version_model(v), mg_model_version_text(v),
                   (unsigned long long)st.trips);
    }
    return rc;
}

/* A failed run that is replayed: server-side, on a version the policy chose that is not stable. */
static bool replayable(const mg_serve_result_t *res, int rc)
{
    const mg_pick_t *p = &res->pick;
    return breaker_outcome(rc) == 1 && p->stable > 0 &&
           mg_model_version_number(p->version) != p->stable &&
           (mg_pick_by_policy(p->reason) || p->reason == MG_POLICY_REASON_FALLBACK);
}

/*
 * The replay: pins the policy's stable version and runs the same decoded request on it once.
 * On success the result names the stable version (X-Route-Reason: fallback, X-Fallback-Reason:
 * run-failed) and the failed version's pin is dropped; on failure the first failure is what
 * the client sees, with the replay's reason added. Admission control wraps run_on, so a replay
 * counts against the stable version like any request that runs there.
 */
static int replay_on_stable(mg_serve_t *s, const mg_serve_call_t *call, mg_serve_result_t *res,
                            int first_rc)
{
    mg_model_version_t *stable = NULL;
    mg_err_t perr;
    if (mg_registry_acquire(s->registry, res->model, res->pick.stable, &stable, &perr) != 0)
        return first_rc;
    mg_err_t first = res->err;
    int rc = run_on(stable, false, call, res);
    if (rc != 0) {
        mg_err_t replay = res->err;
        res->err = first;
        size_t n = strlen(res->err.msg);
        snprintf(res->err.msg + n, sizeof(res->err.msg) - n,
                 "; the replay on stable version %s failed too: %s", mg_model_version_text(stable),
                 replay.msg);
        mg_model_version_unpin(stable);
        return first_rc;
    }
    mg_log(MG_LOG_DEBUG, "serve", "replayed model=%s version=%s on stable=%s (%s)",
           mg_model_version_model(stable), mg_model_version_text(res->pick.version),
           mg_model_version_text(stable), first.msg);
    mg_model_version_unpin(res->pick.version);
    res->pick.version = stable;
    res->pick.reason = MG_POLICY_REASON_FALLBACK;
    res->pick.fallback = MG_PICK_FALLBACK_RUN_FAILED;
    return 0;
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
    rc = run_on(v, mg_model_version_number(v) != res->pick.stable, call, res);
    if (rc != 0 && replayable(res, rc))
        rc = replay_on_stable(s, call, res, rc);
    if (rc != 0)
        return fail(res, MG_SERVE_STEP_EXECUTE, rc);
    v = res->pick.version;

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
    if (res->pick.reason == MG_POLICY_REASON_FALLBACK &&
        res->pick.fallback != MG_PICK_FALLBACK_NONE) {
        const char *why = mg_pick_fallback_name(res->pick.fallback);
        out[n++] = (mg_serve_header_t){"x-fallback-reason", {why, strlen(why)}};
    }
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
        if (res->pick.config_revision != 0 && k > 0 && k < MG_SERVE_EXPLAIN_MAX)
            k += snprintf(explain + k, MG_SERVE_EXPLAIN_MAX - (size_t)k, " config-revision=%llu",
                          (unsigned long long)res->pick.config_revision);
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
