#include "control/control.h"

#include "core/jsonx.h"
#include "core/log.h"
#include "core/rcu.h"
#include "obs/metrics.h"
#include "repo/upload.h"
#include "route/policy.h"
#include "route/table.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mg_control {
    mg_registry_t *registry;
    mg_router_t *router;
    pthread_t tid;
    pthread_mutex_t lock; /* guards the queue and `stopping` */
    pthread_cond_t wake;
    mg_control_op_t *head, *tail;
    bool stopping;
    mg_control_persist_fn persist; /* NULL: routing changes are not kept */
    void *persist_ctx;
    const char *managed_by; /* "etcd": only APPLY_FLEET changes routing */
};

/* ---- operations (control thread) ---------------------------------------------------------- */

typedef struct load_ctx {
    mg_control_t *c;
    const char *model;
} load_ctx_t;

static int load_model(void *ctx, mg_err_t *err)
{
    load_ctx_t *x = ctx;
    return mg_registry_load(x->c->registry, x->model, err);
}

/* LOAD: a plain load, or with the body's config and files put in place first (repo/upload.h). */
static int op_load(mg_control_t *c, mg_control_op_t *op)
{
    load_ctx_t x = {c, op->model};
    if (op->body_len == 0)
        return load_model(&x, &op->err);
    mg_upload_t *u = malloc(sizeof(*u));
    if (u == NULL)
        return mg_err_set(&op->err, MG_ENOMEM, "out of memory");
    int rc = mg_upload_parse(op->body, op->body_len, u, &op->err);
    if (rc == 0)
        rc = mg_upload_any(u) ? mg_upload_apply(mg_registry_repo_dir(c->registry), op->model, u,
                                                load_model, &x, &op->err)
                              : load_model(&x, &op->err);
    mg_upload_deinit(u);
    free(u);
    return rc;
}

/* Parses `model`'s policy and checks its versions against the registry, as the admin API does. */
static int check_policy(mg_control_t *c, const char *model, const char *json, size_t len,
                        mg_policy_t *p, mg_err_t *err)
{
    int64_t versions[MG_VERSIONS_MAX];
    int n = mg_registry_model_versions(c->registry, (mg_str_t){model, strlen(model)}, versions,
                                       MG_VERSIONS_MAX);
    if (n < 0)
        return mg_err_set(err, MG_ENOMODEL, MG_UNKNOWN_MODEL_FMT, mg_err_quote_len(strlen(model)),
                          model);
    mg_err_t perr;
    if (mg_policy_parse(json ? json : "", len, p, &perr) != 0 ||
        mg_policy_check_versions(p, versions, n, &perr) != 0)
        return mg_err_set(err, MG_EINVAL, "traffic policy of '%s' rejected: %s", model, perr.msg);
    return 0;
}

static void op_set_policy(mg_control_t *c, mg_control_op_t *op)
{
    mg_policy_t p;
    if ((op->rc = check_policy(c, op->model, op->body, op->body_len, &p, &op->err)) != 0)
        return;
    mg_router_policy_change_t one = {op->model, &p};
    mg_router_change_t change = {.policies = &one, .npolicies = 1};
    if ((op->rc = mg_router_apply(c->router, &change, &op->revision, &op->err)) != 0)
        return;
    mg_log(MG_LOG_INFO, "control", "traffic policy set model=%s revision=%llu", op->model,
           (unsigned long long)op->revision);
}

/* Every rule must name a model the registry knows, and its override only that model's versions. */
static int check_table(mg_control_t *c, const mg_route_table_t *t, mg_err_t *err)
{
    for (size_t i = 0; i < mg_route_table_count(t); i++) {
        const mg_route_rule_t *r = mg_route_table_rule(t, i);
        int64_t versions[MG_VERSIONS_MAX];
        int n = mg_registry_model_versions(c->registry, (mg_str_t){r->model, strlen(r->model)},
                                           versions, MG_VERSIONS_MAX);
        if (n < 0)
            return mg_err_set(err, MG_EINVAL,
                              "route table rejected: route '%s': unknown model '%s'", r->name,
                              r->model);
        mg_err_t perr;
        if (r->traffic != NULL && mg_policy_check_versions(r->traffic, versions, n, &perr) != 0)
            return mg_err_set(err, MG_EINVAL, "route table rejected: route '%s': traffic: %s",
                              r->name, perr.msg);
    }
    return 0;
}

/* Parses and checks a route table; *out is the caller's to free (or hand to the router). */
static int parse_table(mg_control_t *c, const char *json, size_t len, mg_route_table_t **out,
                       mg_err_t *err)
{
    mg_route_table_t *t = NULL;
    mg_err_t perr;
    if (mg_route_table_parse(json ? json : "", len, &t, &perr) != 0)
        return mg_err_set(err, perr.code == MG_ENOMEM ? MG_ENOMEM : MG_EINVAL,
                          "route table rejected: %s", perr.msg);
    int rc = check_table(c, t, err);
    if (rc != 0) {
        mg_route_table_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

static void op_set_routes(mg_control_t *c, mg_control_op_t *op)
{
    mg_route_table_t *t = NULL;
    if ((op->rc = parse_table(c, op->body, op->body_len, &t, &op->err)) != 0)
        return;
    op->count = mg_route_table_count(t);
    mg_router_change_t change = {.table = t};
    if ((op->rc = mg_router_apply(c->router, &change, &op->revision, &op->err)) != 0)
        return;
    mg_log(MG_LOG_INFO, "control", "route table set rules=%zu revision=%llu", op->count,
           (unsigned long long)op->revision);
}

int mg_control_kill_switch_parse(const char *json, size_t len, int *on, mg_err_t *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return mg_err_set(err, MG_EINVAL, "kill switch: line %d column %d: %s", jerr.line,
                          jerr.column, jerr.text);
    static const char *const known[] = {"enabled"};
    json_t *v = json_object_get(root, "enabled");
    const char *unknown = mg_jsonx_unknown_field(root, known, 1);
    int rc = 0;
    if (!json_is_object(root) || unknown != NULL || !json_is_boolean(v))
        rc = mg_err_set(err, MG_EINVAL, "kill switch: %s%s%s",
                        unknown ? "unknown field '" : "want {\"enabled\": true|false}",
                        unknown ? unknown : "", unknown ? "'" : "");
    else
        *on = json_is_true(v);
    json_decref(root);
    return rc;
}

static void op_set_kill_switch(mg_control_t *c, mg_control_op_t *op)
{
    int on = 0;
    if ((op->rc = mg_control_kill_switch_parse(op->body, op->body_len, &on, &op->err)) != 0)
        return;
    mg_router_change_t change = {.kill = on ? MG_ROUTER_KILL_ON : MG_ROUTER_KILL_OFF};
    if ((op->rc = mg_router_apply(c->router, &change, &op->revision, &op->err)) != 0)
        return;
    mg_log(MG_LOG_INFO, "control", "kill switch set enabled=%s revision=%llu", on ? "on" : "off",
           (unsigned long long)op->revision);
}

/* Validates every part of a fleet configuration, then publishes it as one snapshot. */
static void op_apply_fleet(mg_control_t *c, mg_control_op_t *op)
{
    mg_control_fleet_t *f = op->fleet;
    f->rejected = MG_CONTROL_FLEET_OTHER;
    mg_policy_t *policies = f->npolicies ? calloc(f->npolicies, sizeof(*policies)) : NULL;
    mg_router_policy_change_t *changes =
        f->npolicies ? calloc(f->npolicies, sizeof(*changes)) : NULL;
    mg_route_table_t *t = NULL;
    if (f->npolicies > 0 && (policies == NULL || changes == NULL)) {
        op->rc = mg_err_set(&op->err, MG_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < f->npolicies; i++) {
        const mg_control_policy_text_t *pt = &f->policies[i];
        if ((op->rc = check_policy(c, pt->model, pt->json, pt->len, &policies[i], &op->err)) != 0) {
            f->rejected = (long)i;
            goto out;
        }
        changes[i] = (mg_router_policy_change_t){pt->model, &policies[i]};
    }
    const char *routes = f->routes != NULL ? f->routes : "{\"routes\":[]}";
    size_t routes_len = f->routes != NULL ? f->routes_len : 13;
    if ((op->rc = parse_table(c, routes, routes_len, &t, &op->err)) != 0) {
        f->rejected = op->rc == MG_ENOMEM ? MG_CONTROL_FLEET_OTHER : MG_CONTROL_FLEET_ROUTES;
        goto out;
    }
    op->count = mg_route_table_count(t);
    mg_router_change_t change = {
        .table = t,
        .policies = changes,
        .npolicies = f->npolicies,
        .replace_policies = 1,
        .kill = f->kill_switch ? MG_ROUTER_KILL_ON : MG_ROUTER_KILL_OFF,
        .config_revision = f->revision,
    };
    if ((op->rc = mg_router_apply(c->router, &change, &op->revision, &op->err)) != 0)
        goto out;
    f->rejected = MG_CONTROL_FLEET_NONE;
    mg_log(MG_LOG_INFO, "control",
           "fleet configuration applied source=%s config_revision=%llu policies=%zu rules=%zu "
           "kill_switch=%s revision=%llu",
           f->source ? f->source : "-", (unsigned long long)f->revision, f->npolicies, op->count,
           f->kill_switch ? "on" : "off", (unsigned long long)op->revision);
out:
    free(changes);
    free(policies);
}

/* After a routing change applied: the state file, so a restart serves the same. */
static void persist(mg_control_t *c, const mg_control_op_t *op)
{
    if (c->persist == NULL || op->rc != 0)
        return;
    const char *source = "admin";
    uint64_t revision = 0, digest = 0;
    switch (op->kind) {
    case MG_CONTROL_SET_POLICY:
    case MG_CONTROL_SET_ROUTES:
    case MG_CONTROL_SET_KILL_SWITCH: break;
    case MG_CONTROL_APPLY_FLEET:
        if (!op->fleet->persist)
            return;
        source = op->fleet->source;
        revision = op->fleet->revision;
        digest = op->fleet->digest;
        break;
    default: return;
    }
    c->persist(c->persist_ctx, c->router, source, revision, digest);
}

static void run_op(mg_control_t *c, mg_control_op_t *op)
{
    op->rc = 0;
    op->revision = 0;
    op->count = 0;
    mg_err_clear(&op->err);
    switch (op->kind) {
    case MG_CONTROL_LOAD_ALL:
        op->count = op->listed_only
                        ? (size_t)mg_registry_load_list(c->registry, op->models, op->nmodels)
                        : (size_t)mg_registry_load_all(c->registry);
        break;
    case MG_CONTROL_RESCAN:
        if (op->model[0] == '\0') {
            op->count = (size_t)mg_registry_rescan_all(c->registry);
            break;
        }
        op->rc = mg_registry_rescan(c->registry, op->model, op->settled, op->nsettled, &op->err);
        if (op->rc != MG_ENOMODEL)
            mg_obs_model_reload(op->model, op->rc == 0);
        break;
    case MG_CONTROL_LOAD:
        op->rc = op_load(c, op);
        if (op->rc != MG_ENOMODEL)
            mg_obs_model_reload(op->model, op->rc == 0);
        if (op->rc == 0)
            mg_log(MG_LOG_INFO, "control", "repository load model=%s", op->model);
        break;
    case MG_CONTROL_UNLOAD: op->rc = mg_registry_unload(c->registry, op->model, &op->err); break;
    case MG_CONTROL_SET_POLICY:
    case MG_CONTROL_SET_ROUTES:
    case MG_CONTROL_SET_KILL_SWITCH:
        if (c->managed_by != NULL) {
            op->rc = mg_err_set(&op->err, MG_EMANAGED,
                                "routing is managed by %s for the whole fleet: change it there "
                                "(modelgate ctl --etcd URL ...)",
                                c->managed_by);
            break;
        }
        if (op->kind == MG_CONTROL_SET_POLICY)
            op_set_policy(c, op);
        else if (op->kind == MG_CONTROL_SET_ROUTES)
            op_set_routes(c, op);
        else
            op_set_kill_switch(c, op);
        break;
    case MG_CONTROL_APPLY_FLEET: op_apply_fleet(c, op); break;
    default: op->rc = mg_err_set(&op->err, MG_EINVAL, "unknown control operation %d", op->kind);
    }
    persist(c, op);
}

/* ---- the thread --------------------------------------------------------------------------- */

static void *control_main(void *arg)
{
    mg_control_t *c = arg;
    rcu_register_thread();
    int draining = 0;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (c->head == NULL && !c->stopping) {
            if (draining == 0) {
                pthread_cond_wait(&c->wake, &c->lock);
                continue;
            }
            /* Versions are draining: look again soon to free them once their pins are gone. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&c->wake, &c->lock, &ts);
            pthread_mutex_unlock(&c->lock);
            draining = mg_registry_reap(c->registry);
            pthread_mutex_lock(&c->lock);
        }
        if (c->head == NULL) /* stopping, and nothing queued */
            break;
        mg_control_op_t *op = c->head;
        c->head = op->next_;
        if (c->head == NULL)
            c->tail = NULL;
        bool cancel = c->stopping;
        pthread_mutex_unlock(&c->lock);
        if (cancel) {
            op->rc = mg_err_set(&op->err, MG_ECANCELED, "the server is shutting down");
        } else {
            run_op(c, op);
            draining = mg_registry_reap(c->registry);
        }
        op->done(op);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    rcu_unregister_thread();
    return NULL;
}

int mg_control_start(mg_control_t **out, mg_registry_t *reg, mg_router_t *router, mg_err_t *err)
{
    mg_control_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    c->registry = reg;
    c->router = router;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    if (pthread_create(&c->tid, NULL, control_main, c) != 0) {
        pthread_cond_destroy(&c->wake);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return mg_err_set(err, MG_EIO, "cannot start the control thread");
    }
    *out = c;
    return 0;
}

void mg_control_stop(mg_control_t *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->tid, NULL);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void mg_control_persist_with(mg_control_t *c, mg_control_persist_fn fn, void *ctx)
{
    c->persist = fn;
    c->persist_ctx = ctx;
}

void mg_control_managed_by(mg_control_t *c, const char *source)
{
    c->managed_by = source;
}

int mg_control_submit(mg_control_t *c, mg_control_op_t *op)
{
    op->next_ = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->stopping) {
        pthread_mutex_unlock(&c->lock);
        return MG_ECANCELED;
    }
    if (c->tail != NULL)
        c->tail->next_ = op;
    else
        c->head = op;
    c->tail = op;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/* mg_control_run's completion: wakes the waiting caller. */
typedef struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
} waiter_t;

static void wake_waiter(mg_control_op_t *op)
{
    waiter_t *w = op->ctx;
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int mg_control_run(mg_control_t *c, mg_control_op_t *op)
{
    waiter_t w = {.done = false};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    op->done = wake_waiter;
    op->ctx = &w;
    int rc = mg_control_submit(c, op);
    if (rc == 0) {
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        rc = op->rc;
    } else {
        op->rc = mg_err_set(&op->err, rc, "the server is shutting down");
    }
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    return rc;
}
