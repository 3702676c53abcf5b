#include "control/control.h"

#include "core/log.h"
#include "core/rcu.h"
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
};

/* ---- operations (control thread) ---------------------------------------------------------- */

static void op_set_policy(mg_control_t *c, mg_control_op_t *op)
{
    int64_t versions[MG_VERSIONS_MAX];
    mg_str_t model = {op->model, strlen(op->model)};
    int n = mg_registry_model_versions(c->registry, model, versions, MG_VERSIONS_MAX);
    if (n < 0) {
        op->rc = mg_err_set(&op->err, MG_ENOMODEL, "unknown model '%s'", op->model);
        return;
    }
    mg_policy_t p;
    mg_err_t perr;
    if (mg_policy_parse(op->body ? op->body : "", op->body_len, &p, &perr) != 0 ||
        mg_policy_check_versions(&p, versions, n, &perr) != 0) {
        op->rc = mg_err_set(&op->err, MG_EINVAL, "traffic policy of '%s' rejected: %s", op->model,
                            perr.msg);
        return;
    }
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

static void op_set_routes(mg_control_t *c, mg_control_op_t *op)
{
    mg_route_table_t *t = NULL;
    mg_err_t perr;
    if (mg_route_table_parse(op->body ? op->body : "", op->body_len, &t, &perr) != 0) {
        op->rc = mg_err_set(&op->err, perr.code == MG_ENOMEM ? MG_ENOMEM : MG_EINVAL,
                            "route table rejected: %s", perr.msg);
        return;
    }
    if ((op->rc = check_table(c, t, &op->err)) != 0) {
        mg_route_table_free(t);
        return;
    }
    op->count = mg_route_table_count(t);
    mg_router_change_t change = {.table = t};
    if ((op->rc = mg_router_apply(c->router, &change, &op->revision, &op->err)) != 0)
        return;
    mg_log(MG_LOG_INFO, "control", "route table set rules=%zu revision=%llu", op->count,
           (unsigned long long)op->revision);
}

static void run_op(mg_control_t *c, mg_control_op_t *op)
{
    op->rc = 0;
    op->revision = 0;
    op->count = 0;
    mg_err_clear(&op->err);
    switch (op->kind) {
    case MG_CONTROL_LOAD_ALL: op->count = (size_t)mg_registry_load_all(c->registry); break;
    case MG_CONTROL_LOAD:
        op->rc = mg_registry_load(c->registry, op->model, &op->err);
        if (op->rc == 0)
            mg_log(MG_LOG_INFO, "control", "repository load model=%s", op->model);
        break;
    case MG_CONTROL_UNLOAD: op->rc = mg_registry_unload(c->registry, op->model, &op->err); break;
    case MG_CONTROL_SET_POLICY: op_set_policy(c, op); break;
    case MG_CONTROL_SET_ROUTES: op_set_routes(c, op); break;
    default: op->rc = mg_err_set(&op->err, MG_EINVAL, "unknown control operation %d", op->kind);
    }
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
