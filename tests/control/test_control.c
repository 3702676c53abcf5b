/*
 * The control plane on its real thread: operations submitted from other threads run there, one
 * at a time, in order; policies and route tables are validated against the registry and
 * published as routing snapshots; loads and unloads reach the registry; results come back
 * through the completion callback (on the control thread) or mg_control_run; operations still
 * queued when the plane stops are cancelled, never dropped. A fleet configuration is validated
 * whole and published at once; the routing state survives in the state file.
 */
#include "control/control.h"
#include "control/state.h"
#include "core/log.h"
#include "core/rcu.h"
#include "infer/session.h"
#include "support/support.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static char tmp[256];
static mg_registry_t *reg;
static mg_router_t *router;
static mg_control_t *ctl;

static int setup(void **state)
{
    (void)state;
    if (mg_test_tmpdir("mg-control-", tmp, sizeof(tmp)) != 0)
        return -1;
    mg_test_sh("cp -r %s/models/digits %s/digits", mg_test_source_dir(), tmp);
    mg_log_configure(MG_LOG_ERROR + 1, 0);
    mg_infer_env_opts_t eo = {.intra_op_threads = 1, .inter_op_threads = 1};
    mg_err_t err;
    if (mg_infer_env_init(&eo, &err) != 0)
        return -1;
    rcu_register_thread();
    mg_registry_opts_t ro = {.repo_dir = tmp};
    if (mg_registry_new(&reg, &ro, &err) != 0 || mg_router_new(&router) != 0 ||
        mg_control_start(&ctl, reg, router, &err) != 0)
        return -1;
    mg_control_op_t op = {.kind = MG_CONTROL_LOAD_ALL};
    if (mg_control_run(ctl, &op) != 0 || op.count != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_control_stop(ctl);
    mg_router_free(router);
    mg_registry_free(reg);
    rcu_unregister_thread();
    mg_infer_env_deinit();
    mg_test_sh("rm -rf %s", tmp);
    return 0;
}

static int run(mg_control_kind_t kind, const char *model, const char *body, mg_control_op_t *op)
{
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    snprintf(op->model, sizeof(op->model), "%s", model ? model : "");
    op->body = body;
    op->body_len = body ? strlen(body) : 0;
    return mg_control_run(ctl, op);
}

static void test_policies_are_validated_and_published(void **state)
{
    (void)state;
    mg_control_op_t op;
    uint64_t before = mg_router_revision(router);
    assert_int_equal(run(MG_CONTROL_SET_POLICY, "nosuch", "{\"weights\":{\"1\":1}}", &op),
                     MG_ENOMODEL);
    assert_string_equal(op.err.msg, "Request for unknown model: 'nosuch' is not found");
    assert_int_equal(run(MG_CONTROL_SET_POLICY, "digits", "{\"weights\":{\"7\":1}}", &op),
                     MG_EINVAL);
    assert_non_null(strstr(op.err.msg, "traffic policy of 'digits' rejected: "));
    assert_non_null(strstr(op.err.msg, "7"));
    assert_int_equal(run(MG_CONTROL_SET_POLICY, "digits", "{\"weights\":", &op), MG_EINVAL);
    assert_int_equal(mg_router_revision(router), before); /* nothing was published */

    assert_int_equal(run(MG_CONTROL_SET_POLICY, "digits",
                         "{\"weights\":{\"1\":90,\"2\":10},\"stable\":\"1\"}", &op),
                     0);
    assert_int_equal(op.revision, before + 1);
    assert_int_equal(mg_router_revision(router), before + 1);
    rcu_read_lock();
    const mg_policy_t *p = mg_router_policy(router, mg_test_str("digits"));
    assert_non_null(p);
    assert_int_equal(p->stable, 1);
    mg_rcu_read_unlock();
}

static void test_route_tables_are_validated_and_published(void **state)
{
    (void)state;
    mg_control_op_t op;
    uint64_t before = mg_router_revision(router);
    assert_int_equal(run(MG_CONTROL_SET_ROUTES, NULL,
                         "{\"routes\":[{\"name\":\"a\",\"match\":{\"path\":{\"exact\":\"/a\"}},"
                         "\"model\":\"ghost\"}]}",
                         &op),
                     MG_EINVAL);
    assert_string_equal(op.err.msg, "route table rejected: route 'a': unknown model 'ghost'");
    assert_int_equal(run(MG_CONTROL_SET_ROUTES, NULL,
                         "{\"routes\":[{\"name\":\"a\",\"match\":{\"path\":{\"exact\":\"/a\"}},"
                         "\"model\":\"digits\",\"traffic\":{\"weights\":{\"3\":1}}}]}",
                         &op),
                     MG_EINVAL);
    assert_non_null(strstr(op.err.msg, "route table rejected: route 'a': traffic: "));
    assert_int_equal(run(MG_CONTROL_SET_ROUTES, NULL, "{\"routes\":[{}]}", &op), MG_EINVAL);
    assert_non_null(strstr(op.err.msg, "route table rejected: route #1"));
    assert_int_equal(mg_router_revision(router), before);

    assert_int_equal(run(MG_CONTROL_SET_ROUTES, NULL,
                         "{\"routes\":[{\"name\":\"a\",\"match\":{\"path\":{\"exact\":\"/a\"}},"
                         "\"model\":\"digits\"}]}",
                         &op),
                     0);
    assert_int_equal(op.count, 1);
    assert_int_equal(op.revision, before + 1);
    assert_int_equal(mg_router_table_count(router), 1);
}

static const char P90[] = "{\"weights\":{\"1\":90,\"2\":10},\"stable\":\"1\"}";
static const char P_BAD_VERSION[] = "{\"weights\":{\"1\":50,\"9\":50},\"stable\":\"1\"}";
static const char ONE_ROUTE[] = "{\"routes\":[{\"name\":\"a\",\"match\":{\"path\":{\"exact\":"
                                "\"/a\"}},\"model\":\"digits\"}]}";

static int apply_fleet(mg_control_fleet_t *f, mg_control_op_t *op)
{
    memset(op, 0, sizeof(*op));
    op->kind = MG_CONTROL_APPLY_FLEET;
    op->fleet = f;
    return mg_control_run(ctl, op);
}

static int64_t digits_stable(void)
{
    rcu_read_lock();
    const mg_policy_t *p = mg_router_policy(router, mg_test_str("digits"));
    int64_t v = p != NULL ? p->stable : 0;
    mg_rcu_read_unlock();
    return v;
}

/* A fleet configuration: every part validated, one invalid part rejects it all, else one
 * publication replaces the policies, the table and the kill switch together. */
static void test_fleet_configuration_is_one_publication(void **state)
{
    (void)state;
    mg_control_op_t op;
    mg_control_policy_text_t good = {"digits", P90, strlen(P90)};
    mg_control_fleet_t f = {.source = "etcd",
                            .revision = 41,
                            .policies = &good,
                            .npolicies = 1,
                            .routes = ONE_ROUTE,
                            .routes_len = strlen(ONE_ROUTE),
                            .kill_switch = 1};
    uint64_t before = mg_router_revision(router);
    assert_int_equal(apply_fleet(&f, &op), 0);
    assert_int_equal(f.rejected, MG_CONTROL_FLEET_NONE);
    assert_int_equal(op.revision, before + 1); /* one publication for all of it */
    mg_router_info_t info;
    mg_router_info(router, &info);
    assert_int_equal(info.config_revision, 41);
    assert_int_equal(info.kill_switch, 1);
    assert_int_equal(info.rules, 1);
    assert_int_equal(info.npolicies, 1);

    /* A bad policy among good parts: nothing changes, the culprit is named. */
    mg_control_policy_text_t two[] = {{"digits", P90, strlen(P90)}, {"ghost", P90, strlen(P90)}};
    mg_control_fleet_t bad = {.source = "etcd", .revision = 42, .policies = two, .npolicies = 2};
    assert_int_equal(apply_fleet(&bad, &op), MG_ENOMODEL);
    assert_int_equal(bad.rejected, 1);
    assert_string_equal(op.err.msg, "Request for unknown model: 'ghost' is not found");
    two[0] = (mg_control_policy_text_t){"digits", P_BAD_VERSION, strlen(P_BAD_VERSION)};
    bad.npolicies = 1;
    assert_int_equal(apply_fleet(&bad, &op), MG_EINVAL);
    assert_int_equal(bad.rejected, 0);
    assert_non_null(strstr(op.err.msg, "unknown version 9"));
    two[0] = (mg_control_policy_text_t){"digits", P90, strlen(P90)};
    bad.routes = "{\"routes\":[{\"name\":\"a\"}]}";
    bad.routes_len = strlen(bad.routes);
    assert_int_equal(apply_fleet(&bad, &op), MG_EINVAL);
    assert_int_equal(bad.rejected, MG_CONTROL_FLEET_ROUTES);
    mg_router_info(router, &info);
    assert_int_equal(info.revision, before + 1);
    assert_int_equal(info.config_revision, 41);

    /* The next configuration replaces everything: no policy, no table, kill switch off. */
    mg_control_fleet_t empty = {.source = "etcd", .revision = 43};
    assert_int_equal(apply_fleet(&empty, &op), 0);
    mg_router_info(router, &info);
    assert_int_equal(info.npolicies, 0);
    assert_int_equal(info.rules, 0);
    assert_int_equal(info.kill_switch, 0);
    assert_int_equal(info.config_revision, 43);
}

static void test_kill_switch_and_managed_routing(void **state)
{
    (void)state;
    mg_control_op_t op;
    assert_int_equal(run(MG_CONTROL_SET_KILL_SWITCH, NULL, "{\"enabled\":true}", &op), 0);
    mg_router_info_t info;
    mg_router_info(router, &info);
    assert_int_equal(info.kill_switch, 1);
    assert_int_equal(run(MG_CONTROL_SET_KILL_SWITCH, NULL, "{\"enabled\":1}", &op), MG_EINVAL);
    assert_non_null(strstr(op.err.msg, "kill switch"));
    assert_int_equal(run(MG_CONTROL_SET_KILL_SWITCH, NULL, "{\"enabled\":false,\"x\":1}", &op),
                     MG_EINVAL);
    assert_string_equal(op.err.msg, "kill switch: unknown field 'x'");
    assert_int_equal(run(MG_CONTROL_SET_KILL_SWITCH, NULL, "{\"enabled\":false}", &op), 0);

    /* Owned by etcd: the admin operations are refused, a fleet configuration still applies. */
    mg_control_managed_by(ctl, "etcd");
    uint64_t before = mg_router_revision(router);
    assert_int_equal(run(MG_CONTROL_SET_POLICY, "digits", P90, &op), MG_EMANAGED);
    assert_non_null(strstr(op.err.msg, "managed by etcd"));
    assert_int_equal(run(MG_CONTROL_SET_ROUTES, NULL, ONE_ROUTE, &op), MG_EMANAGED);
    assert_int_equal(run(MG_CONTROL_SET_KILL_SWITCH, NULL, "{\"enabled\":true}", &op), MG_EMANAGED);
    assert_int_equal(mg_router_revision(router), before);
    mg_control_fleet_t f = {.source = "etcd", .revision = 50};
    assert_int_equal(apply_fleet(&f, &op), 0);
    mg_control_managed_by(ctl, NULL);
}

/* Every routing change is saved; a restore applies the same state; a broken file changes
 * nothing and says why. */
static void test_state_file_round_trip(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof(path), "%s/%s", tmp, MG_STATE_FILE);
    mg_control_persist_with(ctl, mg_state_persist, (void *)path);
    mg_control_op_t op;
    assert_int_equal(run(MG_CONTROL_SET_POLICY, "digits", P90, &op), 0);
    assert_int_equal(run(MG_CONTROL_SET_ROUTES, NULL, ONE_ROUTE, &op), 0);
    assert_int_equal(run(MG_CONTROL_SET_KILL_SWITCH, NULL, "{\"enabled\":true}", &op), 0);
    size_t len;
    char *text = mg_test_read_file(path, &len);
    assert_non_null(strstr(text, "\"source\":\"admin\""));
    assert_non_null(strstr(text, "\"kill_switch\":true"));
    free(text);

    /* Clear the routing state, then restore it from the file. */
    mg_control_persist_with(ctl, NULL, NULL);
    mg_control_fleet_t empty = {.source = "test"};
    assert_int_equal(apply_fleet(&empty, &op), 0);
    assert_int_equal(digits_stable(), 0);
    mg_state_restored_t r;
    mg_err_t err;
    assert_int_equal(mg_state_restore(ctl, path, &r, &err), 0);
    assert_string_equal(r.source, "admin");
    assert_int_equal(digits_stable(), 1);
    mg_router_info_t info;
    mg_router_info(router, &info);
    assert_int_equal(info.rules, 1);
    assert_int_equal(info.kill_switch, 1);

    /* A fleet configuration not marked to persist leaves the file as it was. */
    mg_control_persist_with(ctl, mg_state_persist, (void *)path);
    assert_int_equal(apply_fleet(&empty, &op), 0);
    text = mg_test_read_file(path, &len);
    assert_non_null(strstr(text, "\"kill_switch\":true"));
    free(text);
    mg_control_persist_with(ctl, NULL, NULL);

    assert_int_equal(mg_state_restore(ctl, "/nonexistent/state.json", &r, &err), MG_ENOENT);
    mg_test_sh("printf '{\"format\":1,\"policies\":[]}' > %s", path);
    assert_int_equal(mg_state_restore(ctl, path, &r, &err), MG_ECONFIG);
    assert_non_null(strstr(err.msg, "'policies' must be an object"));
    mg_test_sh("printf '{\"format\":1,\"policie\":{}}' > %s", path);
    assert_int_equal(mg_state_restore(ctl, path, &r, &err), MG_ECONFIG);
    assert_non_null(strstr(err.msg, "unknown field 'policie'"));
    mg_test_sh("printf '{\"format\":1,\"policies\":{\"digits\":{\"weights\":{\"8\":1}}}}' > %s",
               path);
    assert_int_equal(mg_state_restore(ctl, path, &r, &err), MG_EINVAL);
    assert_non_null(strstr(err.msg, "unknown version 8"));
    assert_int_equal(digits_stable(), 0); /* nothing changed */
}

static void test_load_and_unload(void **state)
{
    (void)state;
    mg_control_op_t op;
    mg_model_version_t *v = NULL;
    mg_err_t err;
    assert_int_equal(run(MG_CONTROL_UNLOAD, "digits", NULL, &op), 0);
    assert_int_equal(mg_registry_acquire(reg, mg_test_str("digits"), 0, &v, &err), MG_EUNAVAIL);
    assert_int_equal(run(MG_CONTROL_LOAD, "digits", NULL, &op), 0);
    assert_int_equal(mg_registry_acquire(reg, mg_test_str("digits"), 0, &v, &err), 0);
    mg_model_version_unpin(v);
    assert_int_equal(run(MG_CONTROL_LOAD, "ghost", NULL, &op), MG_ENOMODEL);
    assert_int_equal(run(MG_CONTROL_UNLOAD, "ghost", NULL, &op), MG_ENOMODEL);
}

/* Completions: where they run, and in which order. */
typedef struct completions {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int order[2048];
    int n;
    pthread_t thread;
    int gate_open; /* the first operation's completion waits for it */
    int entered;   /* the first completion has begun */
} completions_t;

static void on_done(mg_control_op_t *op)
{
    completions_t *c = op->ctx;
    pthread_mutex_lock(&c->lock);
    c->thread = pthread_self();
    c->entered = 1;
    pthread_cond_broadcast(&c->cond);
    while (!c->gate_open && c->n == 0)
        pthread_cond_wait(&c->cond, &c->lock);
    c->order[c->n++] = op->rc;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void test_async_completion_in_order(void **state)
{
    (void)state;
    completions_t c = {.n = 0, .gate_open = 1};
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);
    mg_control_op_t ops[3];
    const char *models[3] = {"ghost", "digits", "ghost2"};
    for (int i = 0; i < 3; i++) {
        memset(&ops[i], 0, sizeof(ops[i]));
        ops[i].kind = MG_CONTROL_LOAD;
        snprintf(ops[i].model, sizeof(ops[i].model), "%s", models[i]);
        ops[i].done = on_done;
        ops[i].ctx = &c;
        assert_int_equal(mg_control_submit(ctl, &ops[i]), 0);
    }
    pthread_mutex_lock(&c.lock);
    while (c.n < 3)
        pthread_cond_wait(&c.cond, &c.lock);
    pthread_mutex_unlock(&c.lock);
    assert_int_equal(c.order[0], MG_ENOMODEL);
    assert_int_equal(c.order[1], 0);
    assert_int_equal(c.order[2], MG_ENOMODEL);
    assert_false(pthread_equal(c.thread, pthread_self())); /* on the control thread */
    pthread_cond_destroy(&c.cond);
    pthread_mutex_destroy(&c.lock);
}

static void *stop_plane(void *arg)
{
    mg_control_stop(arg);
    return NULL;
}

/* Stopping: the running operation finishes, the queued ones are cancelled with their reason. */
static void test_stop_cancels_queued(void **state)
{
    (void)state;
    /* A plane of its own, so the shared one stays up for the other tests. */
    mg_control_t *own;
    mg_err_t err;
    assert_int_equal(mg_control_start(&own, reg, router, &err), 0);
    completions_t c = {.n = 0, .gate_open = 0};
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);
    enum { MAX_OPS = 2000 };
    mg_control_op_t *ops = calloc(MAX_OPS, sizeof(*ops));
    assert_non_null(ops);
    int submitted = 0;
    /* The first operation's completion holds the control thread until the gate opens. */
    for (; submitted < 3; submitted++) {
        memset(&ops[submitted], 0, sizeof(ops[0]));
        ops[submitted].kind = MG_CONTROL_UNLOAD;
        snprintf(ops[submitted].model, sizeof(ops[0].model), "ghost");
        ops[submitted].done = on_done;
        ops[submitted].ctx = &c;
        assert_int_equal(mg_control_submit(own, &ops[submitted]), 0);
    }
    /* The first one runs and its completion is held; only then begin to stop. */
    pthread_mutex_lock(&c.lock);
    while (!c.entered)
        pthread_cond_wait(&c.cond, &c.lock);
    pthread_mutex_unlock(&c.lock);
    pthread_t stopper;
    pthread_create(&stopper, NULL, stop_plane, own);
    /* Queue more until the plane refuses: then it is stopping (and still held, so not freed). */
    for (;;) {
        assert_true(submitted < MAX_OPS); /* 2 s at one a millisecond */
        mg_control_op_t *op = &ops[submitted];
        memset(op, 0, sizeof(*op));
        op->kind = MG_CONTROL_UNLOAD;
        op->done = on_done;
        op->ctx = &c;
        if (mg_control_submit(own, op) != 0)
            break;
        submitted++;
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
    }
    pthread_mutex_lock(&c.lock);
    c.gate_open = 1;
    pthread_cond_broadcast(&c.cond);
    pthread_mutex_unlock(&c.lock);
    pthread_join(stopper, NULL);
    assert_int_equal(c.n, submitted);
    assert_int_equal(c.order[0], MG_ENOMODEL); /* it ran */
    for (int i = 1; i < submitted; i++)
        assert_int_equal(c.order[i], MG_ECANCELED);
    assert_string_equal(ops[2].err.msg, "the server is shutting down");
    free(ops);
    pthread_cond_destroy(&c.cond);
    pthread_mutex_destroy(&c.lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policies_are_validated_and_published),
        cmocka_unit_test(test_route_tables_are_validated_and_published),
        cmocka_unit_test(test_fleet_configuration_is_one_publication),
        cmocka_unit_test(test_kill_switch_and_managed_routing),
        cmocka_unit_test(test_state_file_round_trip),
        cmocka_unit_test(test_load_and_unload),
        cmocka_unit_test(test_async_completion_in_order),
        cmocka_unit_test(test_stop_cancels_queued),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
