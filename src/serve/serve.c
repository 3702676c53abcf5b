#include "serve/serve.h"

#include "core/log.h"
#include "core/rcu.h"
#include "route/breaker.h"
#include "serve/admit.h"
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
    int max_inflight;     /* the admission bound of versions whose config has none */
    mg_deadline_opts_t deadline;
};

int mg_serve_new(mg_serve_t **out, const mg_serve_opts_t *opts, mg_err_t *err)
{
    mg_serve_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    s->registry = opts->registry;
    s->router = opts->router;
    atomic_init(&s->draining, false);
    s->max_inflight = opts->max_inflight;
    s->deadline = opts->deadline;
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

/* ---- accounting: metrics, spans, log context ---------------------------------------------- */

static mg_str_t meta_get(const mg_serve_call_t *call, const char *lname)
{
    return mg_meta_value(&call->meta, lname, strlen(lname));
}

/* Starts a call's accounting: its arrival time and, with tracing, its place in a trace. */
static void obs_begin(mg_serve_result_t *res, const mg_serve_call_t *call)
{
    mg_serve_obs_t *o = &res->obs;
    o->call = call;
    o->series = MG_OBS_NO_SERIES;
    o->metrics = mg_obs_enabled();
    if (mg_trace_enabled()) {
        mg_str_t tp = meta_get(call, "traceparent"), xt = meta_get(call, "x-trace-id");
        mg_trace_begin(&o->trace, tp.ptr, tp.len, xt.ptr, xt.len);
        /*
         * A trace to continue: ours (sampled) or the caller's. A new trace left unsampled has
         * nothing to continue, so it costs no formatting and no answer header.
         */
        o->traced = o->trace.sampled || o->trace.has_parent;
        if (o->traced) {
            mg_trace_hex(o->trace.trace_id, 16, o->trace_hex);
            mg_trace_format(&o->trace, o->traceparent);
        }
    }
    if (o->metrics || o->traced)
        o->start_ns = call->received_ns != 0 ? call->received_ns : mg_obs_now_ns();
}

/* Copies the version's text into the call's accounting (no formatting: it is a plain copy). */
static void copy_version_text(mg_serve_obs_t *o, const mg_model_version_t *v)
{
    const char *text = mg_model_version_text(v);
    size_t n = strnlen(text, sizeof(o->version_text) - 1);
    memcpy(o->version_text, text, n);
    o->version_text[n] = '\0';
}

/* The version is known: count the request in flight and set the thread's log context. */
static void obs_routed(mg_serve_result_t *res)
{
    mg_serve_obs_t *o = &res->obs;
    const mg_model_version_t *v = res->pick.version;
    if (o->metrics) {
        mg_str_t model = res->model;
        if (mg_obs_series_get(model, mg_model_version_number(v), &o->series) == 0)
            mg_obs_request_enter(o->series);
        mg_obs_series_t chosen;
        if (res->pick.reason == MG_POLICY_REASON_FALLBACK && res->pick.chosen > 0 &&
            mg_obs_series_find(model, res->pick.chosen, &chosen) == 0)
            mg_obs_fallback(chosen, false);
    }
    /* A copy: the access log and log lines may name the version after its pin is gone. */
    copy_version_text(o, v);
    const char *reason = mg_policy_reason_name(res->pick.reason);
    o->log = (mg_log_context_t){
        .model = res->model,
        .version = {o->version_text, strlen(o->version_text)},
        .trace_id = o->traced ? (mg_str_t){o->trace_hex, 32} : meta_get(o->call, "x-trace-id"),
        .ab_group = meta_get(o->call, "x-ab-group"),
        .route_reason = {reason, strlen(reason)},
    };
    mg_log_context_set(&o->log);
}

static void span_init(mg_span_t *sp, const mg_serve_obs_t *o, const char *name, int kind,
                      int64_t start_ns, int64_t end_ns)
{
    memset(sp, 0, sizeof(*sp));
    memcpy(sp->trace_id, o->trace.trace_id, 16);
    snprintf(sp->name, sizeof(sp->name), "%s", name);
    sp->kind = kind;
    sp->start_unix_ns = mg_obs_unix_ns(start_ns);
    sp->end_unix_ns = mg_obs_unix_ns(end_ns > start_ns ? end_ns : start_ns);
}

static void span_str(mg_span_t *sp, const char *key, mg_str_t v)
{
    if (v.len > 0)
        mg_span_attr_str(sp, key, v.ptr, v.len);
}

static void span_cstr(mg_span_t *sp, const char *key, const char *v)
{
    mg_span_attr_str(sp, key, v, strlen(v));
}

/* Queues the call's spans: the server span, routing (when it ran) and inference (when it ran). */
static void emit_spans(const mg_serve_result_t *res, int64_t end_ns)
{
    const mg_serve_obs_t *o = &res->obs;
    const mg_serve_call_t *call = o->call;
    int status = res->rc == 0 ? 200 : mg_status_http(res->rc);
    const mg_model_version_t *v = res->pick.version;
    mg_span_t sp;

    char name[64];
    snprintf(name, sizeof(name), "%.*s", call->operation.len ? (int)call->operation.len : 5,
             call->operation.len ? call->operation.ptr : "infer");
    span_init(&sp, o, name, MG_SPAN_SERVER, o->start_ns, end_ns);
    memcpy(sp.span_id, o->trace.span_id, 8);
    memcpy(sp.parent_id, o->trace.parent_id, 8);
    mg_str_t state = meta_get(call, "tracestate");
    snprintf(sp.trace_state, sizeof(sp.trace_state), "%.*s", (int)state.len, state.ptr);
    span_str(&sp, "url.path", call->target);
    mg_span_attr_int(&sp, "http.response.status_code", status);
    span_str(&sp, "modelgate.model", res->model);
    if (res->rc != 0) {
        sp.status = MG_SPAN_ERROR;
        snprintf(sp.status_msg, sizeof(sp.status_msg), "%.120s", res->err.msg);
    }
    mg_trace_submit(&sp);

    if (o->route_start_ns != 0) {
        span_init(&sp, o, "route", MG_SPAN_INTERNAL, o->route_start_ns, o->route_end_ns);
        mg_trace_span_id(sp.span_id);
        memcpy(sp.parent_id, o->trace.span_id, 8);
        span_str(&sp, "modelgate.model", res->model);
        if (res->pick.chosen > 0)
            mg_span_attr_int(&sp, "modelgate.version.chosen", res->pick.chosen);
        if (v != NULL) {
            mg_span_attr_int(&sp, "modelgate.version.served", mg_model_version_number(v));
            span_cstr(&sp, "modelgate.route_reason", mg_policy_reason_name(res->pick.reason));
            span_cstr(&sp, "modelgate.policy", mg_pick_source_name(res->pick.source));
            if (res->pick.reason == MG_POLICY_REASON_FALLBACK &&
                res->pick.fallback != MG_PICK_FALLBACK_NONE)
                span_cstr(&sp, "modelgate.fallback_reason",
                          mg_pick_fallback_name(res->pick.fallback));
        } else {
            sp.status = MG_SPAN_ERROR;
            snprintf(sp.status_msg, sizeof(sp.status_msg), "%.120s", res->err.msg);
        }
        span_cstr(&sp, "modelgate.rule", res->rule);
        span_str(&sp, "modelgate.ab_group", meta_get(call, "x-ab-group"));
        span_str(&sp, "modelgate.stage", meta_get(call, "x-stage"));
        mg_trace_submit(&sp);
    }

    if (o->run.infer_ns != 0 && v != NULL) {
        span_init(&sp, o, "onnxruntime.run", MG_SPAN_INTERNAL, o->run.infer_ns,
                  o->run.output_ns != 0 ? o->run.output_ns : end_ns);
        mg_trace_span_id(sp.span_id);
        memcpy(sp.parent_id, o->trace.span_id, 8);
        span_str(&sp, "modelgate.model", res->model);
        mg_span_attr_int(&sp, "modelgate.version", mg_model_version_number(v));
        mg_span_attr_int(&sp, "modelgate.batch_size", (int64_t)o->batch);
        if (res->rc != 0 && res->step == MG_SERVE_STEP_EXECUTE) {
            sp.status = MG_SPAN_ERROR;
            snprintf(sp.status_msg, sizeof(sp.status_msg), "%.120s", res->err.msg);
        }
        mg_trace_submit(&sp);
    }
}

/* Records the finished call (success or failure) once. */
static void obs_finish(mg_serve_result_t *res)
{
    mg_serve_obs_t *o = &res->obs;
    if (o->finished || (!o->metrics && !o->traced))
        return;
    o->finished = true;
    int64_t end = mg_obs_now_ns();
    if (o->series != MG_OBS_NO_SERIES) {
        mg_obs_request_t r = {
            .series = o->series,
            .reason = (int)res->pick.reason,
            .fail = res->rc == 0 ? -1 : (int)mg_obs_fail_of(res->rc),
            .batch = o->batch,
            .items = o->items,
            .run_requests = o->run_requests,
            .shared_run = o->shared_run,
            .start_ns = o->start_ns,
            .exec_ns = o->exec_ns,
            .infer_ns = o->run.infer_ns,
            .output_ns = o->run.output_ns,
            .end_ns = end,
        };
        mg_obs_request_done(&r);
    }
    if (o->traced && o->trace.sampled)
        emit_spans(res, end);
}

/* Execution starts (again, for a replay): the batch size, the time, the pending count. */
static void obs_executing(mg_serve_result_t *res, const mg_infer_request_t *req)
{
    mg_serve_obs_t *o = &res->obs;
    o->batch = req->ninputs > 0 && req->inputs[0].ndim > 0 && req->inputs[0].shape[0] > 0
                   ? (uint64_t)req->inputs[0].shape[0]
                   : 1;
    o->items = 0;
    o->run_requests = 0;
    o->shared_run = false;
    o->run = (mg_session_timing_t){0, 0};
    o->exec_ns = mg_obs_now_ns();
    if (o->series != MG_OBS_NO_SERIES)
        mg_obs_request_executing(o->series);
}

/*
 * The run on the chosen version failed and the stable version gets the same request: the
 * chosen one counts the failure and a fallback, the stable one the request from here on.
 */
static void obs_replay(mg_serve_result_t *res, const mg_model_version_t *stable, int first_rc)
{
    mg_serve_obs_t *o = &res->obs;
    copy_version_text(o, stable);
    const char *reason = mg_policy_reason_name(MG_POLICY_REASON_FALLBACK);
    o->log.version = (mg_str_t){o->version_text, strlen(o->version_text)};
    o->log.route_reason = (mg_str_t){reason, strlen(reason)};
    if (!o->metrics || o->series == MG_OBS_NO_SERIES)
        return;
    mg_obs_request_t r = {
        .series = o->series,
        .reason = (int)res->pick.reason,
        .fail = (int)mg_obs_fail_of(first_rc),
        .batch = o->batch,
        .items = o->items,
        .run_requests = o->run_requests,
        .shared_run = o->shared_run,
        .start_ns = o->start_ns,
        .exec_ns = o->exec_ns,
        .infer_ns = o->run.infer_ns,
        .output_ns = o->run.output_ns,
        .end_ns = mg_obs_now_ns(),
    };
    mg_obs_request_done(&r);
    mg_obs_fallback(o->series, true);
    if (mg_obs_series_get(res->model, mg_model_version_number(stable), &o->series) == 0)
        mg_obs_request_enter(o->series);
    else
        o->series = MG_OBS_NO_SERIES;
}

static void admit_leave(mg_serve_result_t *res)
{
    if (res->admitted != NULL)
        mg_admit_leave(res->admitted);
    res->admitted = NULL;
}

static int fail(mg_serve_result_t *res, mg_serve_step_t step, int rc)
{
    res->rc = rc;
    res->step = step;
    obs_finish(res);
    admit_leave(res);
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
    if (rc == MG_ETIMEDOUT || rc == MG_ECANCELED || rc == MG_EUNAVAIL || rc == MG_EOVERLOAD)
        return -1;
    return mg_status_http(rc) >= 500 ? 1 : -1;
}

/*
 * Runs the call's request on the pinned version `v` (the deadline checked first; a Run still
 * going at it is stopped) and records the outcome on the version's breaker; `may_open` is
 * false when `v` serves as the stable version, which is never ejected. The one place a request
 * executes: the first run and the replay on the stable version both come through here, each
 * admitted on its version by the caller.
 */
static void record_outcome(mg_model_version_t *v, bool may_open, int rc, mg_serve_result_t *res);

static int run_on(mg_model_version_t *v, bool may_open, const mg_serve_call_t *call,
                  mg_serve_result_t *res)
{
    if (res->deadline_ns != 0 && now_ns() >= res->deadline_ns)
        return mg_err_set(&res->err, MG_ETIMEDOUT,
                          "the request's deadline passed before model '%s' ran",
                          mg_model_version_model(v));
    call->req->deadline_ns = res->deadline_ns;
    bool timed = res->obs.metrics || res->obs.traced;
    if (timed)
        obs_executing(res, call->req);
    int rc = mg_execute(v, call->req, &res->resp, timed ? &res->obs.run : NULL, &res->err);
    if (rc == MG_ETIMEDOUT) {
        char why[sizeof(res->err.msg)];
        snprintf(why, sizeof(why), "%s", res->err.msg);
        mg_err_set(&res->err, MG_ETIMEDOUT, "model '%s' version %s: %s", mg_model_version_model(v),
                   mg_model_version_text(v), why);
    }
    record_outcome(v, may_open, rc, res);
    return rc;
}

/* Records the outcome `rc` of a run on `v` on its breaker (as run_on explains). */
static void record_outcome(mg_model_version_t *v, bool may_open, int rc, mg_serve_result_t *res)
{
    int outcome = breaker_outcome(rc);
    if (outcome < 0)
        return;
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
    mg_err_t aerr;
    if (mg_admit_enter(stable, s->max_inflight, &aerr) != 0) {
        size_t n = strlen(res->err.msg);
        snprintf(res->err.msg + n, sizeof(res->err.msg) - n, "; no replay on stable version %s: %s",
                 mg_model_version_text(stable), aerr.msg);
        mg_model_version_unpin(stable);
        return first_rc;
    }
    obs_replay(res, stable, first_rc);
    int rc = run_on(stable, false, call, res);
    mg_admit_leave(stable);
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
    int rc = mg_serve_begin(s, call, res);
    return rc != 0 ? rc : mg_serve_run(s, call, res);
}

/* The routing debug line of a call that succeeded. */
static void log_routed(const mg_serve_call_t *call, const mg_serve_result_t *res)
{
    if (!mg_log_enabled(MG_LOG_DEBUG))
        return;
    const mg_model_version_t *v = res->pick.version;
    mg_str_t trace = mg_meta_value(&call->meta, "x-trace-id", 10);
    mg_log(MG_LOG_DEBUG, "serve",
           "routed model=%s version=%s reason=%s policy=%s rule=%s trace=%.*s",
           mg_model_version_model(v), mg_model_version_text(v),
           mg_policy_reason_name(res->pick.reason), mg_pick_source_name(res->pick.source),
           res->rule, (int)trace.len, trace.ptr);
}

int mg_serve_begin(mg_serve_t *s, const mg_serve_call_t *call, mg_serve_result_t *res)
{
    int64_t now = now_ns();
    memset(res, 0, sizeof(*res));
    res->rule = call->rule != NULL ? call->rule->name : "-";
    obs_begin(res, call);
    mg_infer_request_t *req = call->req;
    int rc = resolve_model(s, call, req->arena, &res->model, &res->err);
    if (rc != 0)
        return fail(res, MG_SERVE_STEP_RESOLVE, rc);

    bool span = res->obs.traced && res->obs.trace.sampled;
    if (span)
        res->obs.route_start_ns = mg_obs_now_ns();
    rc = mg_pick_version(s->registry, s->router, res->model,
                         call->rule != NULL ? call->rule->traffic : NULL, call->url_version,
                         &call->meta, req, 0, &res->pick, &res->err);
    if (span)
        res->obs.route_end_ns = mg_obs_now_ns();
    if (rc != 0)
        return fail(res, MG_SERVE_STEP_ROUTE, rc);
    mg_model_version_t *v = res->pick.version;
    obs_routed(res);

    /* The call's own deadline (gRPC), else the request's; capped either way. */
    if (call->deadline_ns != 0) {
        int64_t cap = s->deadline.max_ms > 0 ? now + s->deadline.max_ms * 1000000 : INT64_MAX;
        res->deadline_ns = call->deadline_ns < cap ? call->deadline_ns : cap;
    } else if ((rc = mg_deadline_resolve(&s->deadline, req, &call->meta, now, &res->deadline_ns,
                                         &res->err)) != 0) {
        return fail(res, MG_SERVE_STEP_ROUTE, rc);
    }
    if ((rc = mg_admit_enter(v, s->max_inflight, &res->err)) != 0)
        return fail(res, MG_SERVE_STEP_ROUTE, rc);
    res->admitted = v;
    return 0;
}

bool mg_serve_on_pool(const mg_serve_result_t *res)
{
    return res->pick.version != NULL && mg_model_version_on_pool(res->pick.version);
}

int mg_serve_run(mg_serve_t *s, const mg_serve_call_t *call, mg_serve_result_t *res)
{
    mg_infer_request_t *req = call->req;
    mg_model_version_t *v = res->pick.version;
    int rc;
    mg_log_context_set(&res->obs.log); /* this thread may be a pool thread */
    if (call->bind != NULL) {
        rc = call->bind(call->bind_ctx, mg_model_version_meta(v), mg_model_version_model(v), req,
                        &res->err);
        if (rc != 0)
            return fail(res, MG_SERVE_STEP_BIND, rc);
    }
    rc = run_on(v, mg_model_version_number(v) != res->pick.stable, call, res);
    admit_leave(res); /* the first version's execution is over; a replay is admitted apart */
    if (rc != 0 && replayable(res, rc))
        rc = replay_on_stable(s, call, res, rc);
    if (rc != 0)
        return fail(res, MG_SERVE_STEP_EXECUTE, rc);
    log_routed(call, res);
    return 0;
}

void mg_serve_move(mg_serve_result_t *dst, const mg_serve_result_t *src,
                   const mg_serve_call_t *call)
{
    *dst = *src;
    mg_serve_obs_t *o = &dst->obs;
    o->call = call;
    /* The log context names the version and the trace id from the result's own copies. */
    if (o->log.version.ptr == src->obs.version_text)
        o->log.version.ptr = o->version_text;
    if (o->log.trace_id.ptr == src->obs.trace_hex)
        o->log.trace_id.ptr = o->trace_hex;
    mg_log_context_set(NULL);
}

bool mg_serve_batchable(const mg_serve_call_t *call, const mg_serve_result_t *res)
{
    const mg_infer_request_t *req = call->req;
    if (res->rc != 0 || res->pick.version == NULL || call->bind != NULL || req->ninputs == 0 ||
        req->inputs[0].ndim < 1 || mg_serve_on_pool(res))
        return false;
    int64_t rows = req->inputs[0].shape[0];
    return rows >= 1 && rows <= mg_model_version_batch_rows(res->pick.version);
}

int64_t mg_serve_batch_rows(const mg_serve_result_t *res)
{
    return mg_model_version_batch_rows(res->pick.version);
}

void mg_serve_run_batch(mg_serve_t *s, const mg_serve_call_t *const *calls,
                        mg_serve_result_t *const *res, size_t n, mg_arena_t *arena, void **owner)
{
    *owner = NULL;
    mg_model_version_t *v = res[0]->pick.version;
    /* Who joins: the calls whose deadline has not passed and that are valid on their own. */
    const mg_infer_request_t **reqs = mg_arena_alloc(arena, n * sizeof(*reqs));
    size_t *who = mg_arena_alloc(arena, n * sizeof(*who));
    mg_infer_response_t *resps = mg_arena_alloc(arena, n * sizeof(*resps));
    if (reqs == NULL || who == NULL || resps == NULL) {
        for (size_t i = 0; i < n; i++)
            mg_serve_run(s, calls[i], res[i]);
        return;
    }
    int64_t now = now_ns();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const mg_serve_call_t *call = calls[i];
        int rc = 0;
        if (res[i]->deadline_ns != 0 && now >= res[i]->deadline_ns)
            rc = mg_err_set(&res[i]->err, MG_ETIMEDOUT,
                            "the request's deadline passed before model '%s' ran",
                            mg_model_version_model(v));
        else
            rc = mg_execute_check(v, call->req, &res[i]->err);
        call->req->deadline_ns = res[i]->deadline_ns; /* the joined Run's is the latest */
        if (rc != 0) {
            fail(res[i], MG_SERVE_STEP_EXECUTE, rc);
            continue;
        }
        reqs[k] = call->req;
        who[k++] = i;
    }
    if (k == 1)
        mg_serve_run(s, calls[who[0]], res[who[0]]);
    if (k <= 1)
        return;

    /* One Run for all of them; each member is a request of its own for accounting. */
    mg_err_t err;
    mg_session_timing_t timing = {0, 0};
    bool timed = false;
    uint64_t total = 0;
    for (size_t m = 0; m < k; m++) {
        mg_serve_result_t *r = res[who[m]];
        total += (uint64_t)reqs[m]->inputs[0].shape[0];
        if (r->obs.metrics || r->obs.traced) {
            obs_executing(r, reqs[m]);
            timed = true;
        }
    }
    int rc = mg_execute_batch(v, reqs, k, arena, resps, owner, timed ? &timing : NULL, &err);
    for (size_t m = 0; m < k; m++) {
        size_t i = who[m];
        mg_serve_result_t *r = res[i];
        r->obs.run = timing;
        r->obs.batch = total;
        r->obs.items = (uint64_t)reqs[m]->inputs[0].shape[0];
        r->obs.run_requests = (uint32_t)k;
        r->obs.shared_run = m > 0;
        admit_leave(r); /* as in mg_serve_run: a replay is admitted apart */
        if (rc == 0) {
            r->resp = resps[m];
            record_outcome(v, mg_model_version_number(v) != r->pick.stable, 0, r);
            log_routed(calls[i], r);
            continue;
        }
        /* The joined Run failed: every member gets its error, and the replay a single would. */
        r->err = err;
        record_outcome(v, mg_model_version_number(v) != r->pick.stable, rc, r);
        int mrc = rc;
        if (replayable(r, rc))
            mrc = replay_on_stable(s, calls[i], r, rc);
        if (mrc != 0)
            fail(r, MG_SERVE_STEP_EXECUTE, mrc);
        else
            log_routed(calls[i], r);
    }
}

void mg_serve_done(mg_serve_result_t *res)
{
    obs_finish(res);
    mg_log_context_set(NULL);
    admit_leave(res);
    mg_execute_release(&res->resp);
    mg_model_version_unpin(res->pick.version);
    res->pick.version = NULL;
}

size_t mg_serve_headers(const mg_serve_call_t *call, const mg_serve_result_t *res,
                        mg_serve_header_t *out, char *explain)
{
    /* The version's text as the result copied it: valid after mg_serve_done too. */
    const char *version = res->obs.version_text;
    const char *reason = mg_policy_reason_name(res->pick.reason);
    size_t n = 0;
    out[n++] = (mg_serve_header_t){"x-model-version", {version, strlen(version)}};
    out[n++] = (mg_serve_header_t){"x-route-reason", {reason, strlen(reason)}};
    if (res->pick.reason == MG_POLICY_REASON_FALLBACK &&
        res->pick.fallback != MG_PICK_FALLBACK_NONE) {
        const char *why = mg_pick_fallback_name(res->pick.fallback);
        out[n++] = (mg_serve_header_t){"x-fallback-reason", {why, strlen(why)}};
    }
    static const mg_str_t echo[] = {{"x-trace-id", 10}, {"x-ab-group", 10}};
    for (int i = 0; i < 2; i++) {
        mg_str_t e = mg_meta_value(&call->meta, echo[i].ptr, echo[i].len);
        if (e.len > 0)
            out[n++] = (mg_serve_header_t){echo[i].ptr, e};
    }
    if (res->obs.traced) {
        out[n++] = (mg_serve_header_t){"traceparent", {res->obs.traceparent, 55}};
        mg_str_t state = mg_meta_value(&call->meta, "tracestate", 10);
        if (state.len > 0)
            out[n++] = (mg_serve_header_t){"tracestate", state};
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

size_t mg_serve_error_headers(const mg_serve_result_t *res, mg_serve_header_t *out)
{
    size_t n = 0;
    if (res->rc == MG_EOVERLOAD) {
        static const char retry[] = {'0' + MG_ADMIT_RETRY_AFTER_S, '\0'};
        out[n++] = (mg_serve_header_t){"retry-after", {retry, 1}};
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
