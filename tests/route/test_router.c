/*
 * The router's snapshots under concurrency: reader threads route in a loop (policy lookup,
 * pick, route-table match) while a writer publishes new policies and tables as fast as it
 * can. Every read must see one whole snapshot: a policy whose weights add up to 100 and a
 * table whose rules agree with their generation; a policy with the kill switch and the
 * configuration revision published with it. Built under ThreadSanitizer by `make tsan`.
 */
#include "route/router.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/rcu.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define READERS 3
#define UPDATES 400

static mg_router_t *router;
static atomic_bool stop;
static atomic_long reads;
static atomic_long bad_reads;

static int no_headers(void *ctx, const char *lname, size_t len, mg_str_t *value)
{
    (void)ctx;
    (void)lname;
    (void)len;
    (void)value;
    return 0;
}

static void *reader(void *arg)
{
    (void)arg;
    rcu_register_thread();
    uint64_t n = 0;
    while (!atomic_load(&stop)) {
        mg_route_request_t req = {
            .host = {"h", 1}, .path = {"/api/score", 10}, .headers = {no_headers, NULL}};
        rcu_read_lock();
        const mg_policy_t *p = mg_router_policy(router, (mg_str_t){"m", 1});
        if (p != NULL) {
            uint32_t sum = 0;
            for (int i = 0; i < p->nversions; i++)
                sum += p->weights[i];
            mg_policy_input_t in;
            memset(&in, 0, sizeof(in));
            in.random = ++n * 0x9e3779b97f4a7c15ULL;
            mg_policy_decision_t d;
            if (sum != 100 || mg_policy_pick(p, &in, &d, NULL) != 0 ||
                (d.version != 1 && d.version != 2))
                atomic_fetch_add(&bad_reads, 1);
        }
        const mg_route_rule_t *rule = mg_router_match(router, &req);
        if (rule != NULL && (strcmp(rule->model, "m") != 0 || strncmp(rule->name, "gen-", 4) != 0))
            atomic_fetch_add(&bad_reads, 1);
        mg_rcu_read_unlock();
        atomic_fetch_add(&reads, 1);
    }
    rcu_unregister_thread();
    return NULL;
}

static void test_readers_never_see_a_torn_snapshot(void **state)
{
    (void)state;
    rcu_register_thread();
    assert_int_equal(mg_router_new(&router), 0);
    atomic_store(&stop, false);
    pthread_t t[READERS];
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, NULL), 0);

    mg_err_t err;
    uint64_t rev = mg_router_revision(router);
    for (int i = 0; i < UPDATES; i++) {
        /* Keep the readers in the race on a busy machine: let them read between updates. */
        if (i % 40 == 0) {
            long seen = atomic_load(&reads);
            while (atomic_load(&reads) < seen + 2 * READERS)
                sched_yield();
        }
        char json[256];
        int w = i % 101;
        snprintf(json, sizeof(json), "{\"weights\":{\"1\":%d,\"2\":%d},\"stable\":\"1\"}", 100 - w,
                 w);
        mg_policy_t p;
        if (w == 100) /* all weight on 2: keep 1 stable with 0 weight is fine */
            snprintf(json, sizeof(json), "{\"weights\":{\"1\":0,\"2\":100},\"stable\":\"1\"}");
        assert_int_equal(mg_policy_parse(json, strlen(json), &p, &err), 0);
        assert_int_equal(mg_router_set_policy(router, "m", &p, &err), 0);
        if (i % 10 == 0) {
            char table[512];
            snprintf(table, sizeof(table),
                     "{\"routes\":[{\"name\":\"gen-%d\",\"match\":{\"path\":{\"prefix\":\"/api/"
                     "\"}},\"model\":\"m\"},"
                     "{\"name\":\"gen-%d-x\",\"match\":{\"path\":{\"regex\":\"^/x/"
                     "%d$\"}},\"model\":\"m\"}]}",
                     i, i, i);
            mg_route_table_t *tab = NULL;
            assert_int_equal(mg_route_table_parse(table, strlen(table), &tab, &err), 0);
            assert_int_equal(mg_router_set_table(router, tab, &err), 0);
        }
        if (i % 50 == 25)
            assert_int_equal(mg_router_set_policy(router, "m", NULL, &err),
                             0); /* cleared for a moment */
    }
    atomic_store(&stop, true);
    for (int i = 0; i < READERS; i++)
        pthread_join(t[i], NULL);

    assert_int_equal(atomic_load(&bad_reads), 0);
    assert_true(atomic_load(&reads) > 0);
    assert_true(mg_router_revision(router) > rev + UPDATES);
    assert_int_equal(mg_router_table_count(router), 2);
    mg_buf_t b = {0};
    assert_int_equal(mg_router_table_json(router, &b), 0);
    assert_non_null(memmem(b.data, b.len, "gen-390", 7));
    mg_buf_free(&b);
    mg_router_free(router);
    rcu_unregister_thread();
}

/* Readers of mg_router_lookup: the policy, the kill switch and the revision of one snapshot. */
static void *flag_reader(void *arg)
{
    (void)arg;
    rcu_register_thread();
    while (!atomic_load(&stop)) {
        rcu_read_lock();
        mg_router_flags_t f;
        const mg_policy_t *p = mg_router_lookup(router, (mg_str_t){"m", 1}, &f);
        if (p != NULL && p->nversions == 2 &&
            (f.config_revision != (uint64_t)p->weights[1] + 1 ||
             f.kill_switch != (int)(p->weights[1] % 2)))
            atomic_fetch_add(&bad_reads, 1);
        mg_rcu_read_unlock();
        atomic_fetch_add(&reads, 1);
    }
    rcu_unregister_thread();
    return NULL;
}

static void test_lookup_sees_one_snapshot(void **state)
{
    (void)state;
    rcu_register_thread();
    assert_int_equal(mg_router_new(&router), 0);
    atomic_store(&stop, false);
    atomic_store(&bad_reads, 0);
    pthread_t t[READERS];
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, flag_reader, NULL), 0);
    mg_err_t err;
    for (int i = 0; i < UPDATES; i++) {
        if (i % 40 == 0) {
            long seen = atomic_load(&reads);
            while (atomic_load(&reads) < seen + 2 * READERS)
                sched_yield();
        }
        /* Weight i on version 2 goes with revision i + 1 and the kill switch on for odd i. */
        char json[128];
        snprintf(json, sizeof(json), "{\"weights\":{\"1\":1,\"2\":%d},\"stable\":\"1\"}", i);
        mg_policy_t p;
        assert_int_equal(mg_policy_parse(json, strlen(json), &p, &err), 0);
        mg_router_policy_change_t one = {"m", &p};
        mg_router_change_t c = {.policies = &one,
                                .npolicies = 1,
                                .replace_policies = 1,
                                .kill = i % 2 ? MG_ROUTER_KILL_ON : MG_ROUTER_KILL_OFF,
                                .config_revision = (uint64_t)i + 1};
        assert_int_equal(mg_router_apply(router, &c, NULL, &err), 0);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < READERS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&bad_reads), 0);
    mg_router_info_t info;
    mg_router_info(router, &info);
    assert_int_equal(info.config_revision, UPDATES);
    assert_int_equal(info.kill_switch, 1);
    assert_int_equal(info.npolicies, 1);
    mg_router_free(router);
    rcu_unregister_thread();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readers_never_see_a_torn_snapshot),
        cmocka_unit_test(test_lookup_sees_one_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
