/*
 * An instance in a fleet, on its real threads (the watch, the reporter, the control plane)
 * against a real etcd: a policy written to etcd reaches the router as one configuration with
 * its revision, an invalid one is rejected with its key and leaves the router alone, the report
 * lands under the instance's lease, and losing etcd shows as staleness, never as a failure.
 */
#include "cluster/cluster.h"
#include "cluster/etcd.h"
#include "core/log.h"
#include "core/rcu.h"
#include "infer/session.h"
#include "support/etcd.h"
#include "support/support.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static char repo[256];
static mg_test_etcd_t server;
static mg_etcd_t *writer;
static mg_registry_t *reg;
static mg_router_t *router;
static mg_control_t *ctl;

static int setup(void **state)
{
    (void)state;
    if (mg_test_tmpdir("mg-cluster-", repo, sizeof(repo)) != 0)
        return -1;
    mg_test_sh("cp -r %s/models/digits %s/digits", mg_test_source_dir(), repo);
    mg_log_configure(getenv("MG_TEST_LOG") ? MG_LOG_DEBUG : MG_LOG_ERROR + 1, 0);
    mg_infer_env_opts_t eo = {.intra_op_threads = 1, .inter_op_threads = 1};
    mg_err_t err;
    if (mg_infer_env_init(&eo, &err) != 0)
        return -1;
    rcu_register_thread();
    mg_registry_opts_t ro = {.repo_dir = repo};
    if (mg_registry_new(&reg, &ro, &err) != 0 || mg_router_new(&router) != 0 ||
        mg_control_start(&ctl, reg, router, &err) != 0)
        return -1;
    mg_control_op_t load = {.kind = MG_CONTROL_LOAD_ALL};
    mg_control_run(ctl, &load);
    mg_test_etcd_start(&server);
    mg_etcd_opts_t o = {.endpoints = server.url};
    return mg_etcd_new(&writer, &o, &err);
}

static int teardown(void **state)
{
    (void)state;
    mg_etcd_free(writer);
    mg_test_etcd_stop(&server);
    mg_control_stop(ctl);
    mg_router_free(router);
    mg_registry_free(reg);
    rcu_unregister_thread();
    mg_infer_env_deinit();
    mg_test_sh("rm -rf %s", repo);
    return 0;
}

static int64_t put(const char *key, const char *value)
{
    return mg_test_etcd_put(writer, key, value);
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls `cond` every 10 ms for up to 20 s; evaluates it once more only while it is false. */
#define WAIT_FOR(cond)                                                                             \
    do {                                                                                           \
        int waited_ = 0, ok_;                                                                      \
        while (!(ok_ = (cond)) && waited_++ < 2000)                                                \
            nap_ms(10);                                                                            \
        assert_true(ok_);                                                                          \
    } while (0)

static uint64_t config_revision(void)
{
    mg_router_info_t info;
    mg_router_info(router, &info);
    return info.config_revision;
}

static mg_cluster_status_t status_of(mg_cluster_t *c)
{
    mg_cluster_status_t st;
    mg_cluster_status(c, &st);
    return st;
}

/* True when the one report under /c/instances/ holds `text`; *kvs keeps it then. */
static bool report_says(mg_etcd_kvs_t *kvs, const char *text)
{
    mg_err_t err;
    if (mg_etcd_range(writer, "/c/instances/", false, kvs, &err) != 0)
        return false;
    if (kvs->n == 1 && strstr(kvs->kvs[0].value, text) != NULL)
        return true;
    mg_etcd_kvs_free(kvs);
    return false;
}

static void test_instance_follows_etcd(void **state)
{
    (void)state;
    mg_cluster_opts_t o = {.endpoints = server.url,
                           .prefix = "/c",
                           .instance_id = "unit",
                           .address = "127.0.0.1:1",
                           .lease_ttl_s = 2,
                           .watch_check_ms = 300,
                           .control = ctl,
                           .registry = reg};
    mg_cluster_t *c = NULL;
    mg_err_t err;
    o.prefix = "c";
    assert_int_equal(mg_cluster_start(&c, &o, &err), MG_EINVAL);
    o.prefix = "/c";
    assert_int_equal(mg_cluster_start(&c, &o, &err), 0);
    WAIT_FOR(status_of(c).watching);
    assert_string_equal(status_of(c).source, "etcd");
    assert_true(mg_cluster_config_stale_seconds(c) == 0);

    int64_t rev =
        put("/c/config/traffic/digits", "{\"weights\":{\"1\":3,\"2\":1},\"stable\":\"1\"}");
    WAIT_FOR(config_revision() == (uint64_t)rev);
    rcu_read_lock();
    const mg_policy_t *p = mg_router_policy(router, mg_test_str("digits"));
    assert_non_null(p);
    assert_int_equal(p->weights[0], 3);
    mg_rcu_read_unlock();
    WAIT_FOR(status_of(c).applied_revision == (uint64_t)rev); /* set once the operation returns */

    /* Invalid: rejected with its key, the router keeps what it had. */
    int64_t bad = put("/c/config/traffic/digits", "{\"weights\":{\"5\":1}}");
    WAIT_FOR(status_of(c).rejected_total == 1);
    mg_cluster_status_t st = status_of(c);
    assert_int_equal(st.last_rejected_revision, bad);
    assert_non_null(strstr(st.last_rejection, "key /c/config/traffic/digits: "));
    assert_non_null(strstr(st.last_rejection, "unknown version 5"));
    assert_int_equal(config_revision(), rev);
    mg_buf_t json = {0};
    assert_int_equal(mg_cluster_status_json(c, &json), 0);
    assert_non_null(strstr(json.data, "\"rejected_total\":1"));
    mg_buf_free(&json);

    /* The report, under a lease. */
    mg_etcd_kvs_t kvs = {0};
    WAIT_FOR(report_says(&kvs, "unknown version 5"));
    assert_string_equal(kvs.kvs[0].key, "/c/instances/unit");
    assert_true(kvs.kvs[0].lease != 0);
    assert_non_null(strstr(kvs.kvs[0].value, "\"model\":\"digits\",\"version\":\"1\""));
    mg_etcd_kvs_free(&kvs);

    /* Fixed: applied again. */
    int64_t good = put("/c/config/traffic/digits", "{\"weights\":{\"2\":1}}");
    WAIT_FOR(config_revision() == (uint64_t)good);

    /* A policy for a model this instance does not have yet is rejected, and applies by itself
     * once the model is loaded (retried while the watch is quiet). */
    int64_t late = put("/c/config/traffic/late", "{\"weights\":{\"2\":1}}");
    WAIT_FOR(status_of(c).last_rejected_revision == (uint64_t)late);
    assert_non_null(
        strstr(status_of(c).last_rejection, "Request for unknown model: 'late' is not found"));
    mg_test_sh("cp -r %s/digits %s/late && rm %s/late/config.json", repo, repo, repo);
    mg_control_op_t load = {.kind = MG_CONTROL_LOAD};
    snprintf(load.model, sizeof(load.model), "late");
    assert_int_equal(mg_control_run(ctl, &load), 0);
    WAIT_FOR(config_revision() == (uint64_t)late);
    assert_int_equal(status_of(c).rejected_total, 2); /* the retries were not counted */
    good = late;

    /* etcd gone: the instance notices, and the configuration goes stale without failing. */
    mg_test_etcd_t gone = server;
    kill(gone.pid, SIGSTOP); /* a partition: connections stay open, nothing answers */
    WAIT_FOR(!status_of(c).watching);
    WAIT_FOR(mg_cluster_config_stale_seconds(c) > 0.2);
    assert_int_equal(config_revision(), good);
    kill(gone.pid, SIGCONT);
    WAIT_FOR(status_of(c).watching);

    mg_cluster_stop(c);
    /* A stopped instance revokes its lease: the report goes at once. */
    assert_int_equal(mg_etcd_range(writer, "/c/instances/", false, &kvs, &err), 0);
    assert_int_equal(kvs.n, 0);
    mg_etcd_kvs_free(&kvs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_instance_follows_etcd),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
