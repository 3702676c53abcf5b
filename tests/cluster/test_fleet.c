/*
 * The fleet's key layout and view: keys built under a prefix, a view filled by a range read and
 * kept up to date by events (puts, replaces, deletes, in revision order), its digest (equal for
 * equal content however it was reached), and the routing configuration built from it, with
 * every key that does not belong rejected by name.
 */
#include "cluster/fleet.h"
#include "support/support.h"

#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static mg_etcd_kv_t kv(const char *key, const char *value, int64_t rev)
{
    mg_etcd_kv_t k = {strdup(key), strlen(key), strdup(value), strlen(value), rev, rev, 0};
    return k;
}

/* A range result of `n` pairs (copied). */
static mg_etcd_kvs_t kvs_of(const mg_etcd_kv_t *pairs, size_t n, int64_t revision)
{
    mg_etcd_kvs_t r = {calloc(n ? n : 1, sizeof(mg_etcd_kv_t)), n, revision};
    for (size_t i = 0; i < n; i++)
        r.kvs[i] = kv(pairs[i].key, pairs[i].value, pairs[i].mod_revision);
    return r;
}

static mg_etcd_event_t event(mg_etcd_event_type_t type, const char *key, const char *value,
                             int64_t rev)
{
    mg_etcd_event_t e = {type,
                         {(char *)key, strlen(key), (char *)value, strlen(value), rev, rev, 0}};
    return e;
}

static void test_keys_and_prefixes(void **state)
{
    (void)state;
    mg_buf_t b = {0};
    assert_int_equal(mg_fleet_key(&b, "/mg/prod//", MG_FLEET_TRAFFIC, "digits"), 0);
    assert_string_equal(b.data, "/mg/prod/config/traffic/digits");
    mg_buf_free(&b);
    mg_err_t err;
    assert_int_equal(mg_fleet_check_prefix("/mg/prod", &err), 0);
    assert_int_equal(mg_fleet_check_prefix("mg", &err), MG_EINVAL);
    assert_non_null(strstr(err.msg, "must start with '/'"));
    assert_int_equal(mg_fleet_check_prefix("/a\nb", &err), MG_EINVAL);
}

static void test_view_follows_events(void **state)
{
    (void)state;
    mg_etcd_kv_t pairs[] = {{"/p/config/traffic/b", 0, "B", 1, 5, 5, 0},
                            {"/p/config/routes", 0, "R", 1, 3, 3, 0}};
    mg_etcd_kvs_t r = kvs_of(pairs, 2, 9);
    mg_fleet_view_t v = {0};
    assert_int_equal(mg_fleet_view_reset(&v, &r), 0);
    assert_int_equal(r.n, 0); /* moved */
    assert_int_equal(v.n, 2);
    assert_string_equal(v.entries[0].key, "/p/config/routes"); /* sorted */
    assert_int_equal(v.revision, 9);
    uint64_t d0 = mg_fleet_view_digest(&v);

    mg_etcd_event_t e1 = event(MG_ETCD_PUT, "/p/config/traffic/a", "A", 10);
    mg_etcd_event_t e2 = event(MG_ETCD_PUT, "/p/config/traffic/b", "B2", 10);
    mg_etcd_event_t e3 = event(MG_ETCD_DELETE, "/p/config/routes", "", 11);
    assert_int_equal(mg_fleet_view_apply(&v, &e1), 0);
    assert_int_equal(mg_fleet_view_apply(&v, &e2), 0);
    assert_int_equal(mg_fleet_view_apply(&v, &e3), 0);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.entries[0].key, "/p/config/traffic/a");
    assert_string_equal(v.entries[1].value, "B2");
    assert_int_equal(v.entries[1].mod_revision, 10);
    assert_int_equal(v.revision, 11);
    uint64_t d1 = mg_fleet_view_digest(&v);
    assert_true(d1 != d0);

    /* The same content read at once has the same digest. */
    mg_etcd_kv_t same[] = {{"/p/config/traffic/b", 0, "B2", 2, 10, 10, 0},
                           {"/p/config/traffic/a", 0, "A", 1, 10, 10, 0}};
    mg_etcd_kvs_t r2 = kvs_of(same, 2, 12);
    mg_fleet_view_t w = {0};
    assert_int_equal(mg_fleet_view_reset(&w, &r2), 0);
    assert_int_equal(mg_fleet_view_digest(&w), d1);
    mg_fleet_view_t empty = {0};
    assert_true(mg_fleet_view_digest(&empty) != 0);
    mg_fleet_view_free(&w);
    mg_fleet_view_free(&v);
}

static void test_configuration_from_the_view(void **state)
{
    (void)state;
    const char *pol = "{\"weights\":{\"1\":1}}";
    mg_etcd_kv_t pairs[] = {{"/p/config/traffic/digits", 0, (char *)pol, 0, 4, 4, 0},
                            {"/p/config/routes", 0, "{\"routes\":[]}", 0, 5, 5, 0},
                            {"/p/config/kill-switch", 0, "{\"enabled\":true}", 0, 6, 6, 0}};
    mg_etcd_kvs_t r = kvs_of(pairs, 3, 7);
    mg_fleet_view_t v = {0};
    assert_int_equal(mg_fleet_view_reset(&v, &r), 0);
    mg_fleet_config_t cfg;
    const char *bad = NULL;
    mg_err_t err;
    assert_int_equal(mg_fleet_config_build(&v, "/p", &cfg, &bad, &err), 0);
    assert_int_equal(cfg.fleet.npolicies, 1);
    assert_string_equal(cfg.fleet.policies[0].model, "digits");
    assert_string_equal(cfg.policy_keys[0], "/p/config/traffic/digits");
    assert_string_equal(cfg.fleet.routes, "{\"routes\":[]}");
    assert_int_equal(cfg.fleet.kill_switch, 1);
    assert_int_equal(cfg.fleet.revision, 7);
    assert_int_equal(cfg.fleet.digest, mg_fleet_view_digest(&v));
    assert_true(cfg.fleet.persist);
    mg_fleet_config_free(&cfg);

    /* Keys that do not belong, and a kill switch that does not parse, are named. */
    static const struct {
        const char *key, *value, *why;
    } cases[] = {
        {"/p/config/trafic/digits", "{}", "unknown key"},
        {"/p/config/traffic/", "{}", "a traffic key is"},
        {"/p/config/traffic/a/b", "{}", "a traffic key is"},
        {"/p/config/kill-switch", "on", "kill switch"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mg_etcd_event_t e = event(MG_ETCD_PUT, cases[i].key, cases[i].value, 20 + (int64_t)i);
        assert_int_equal(mg_fleet_view_apply(&v, &e), 0);
        assert_int_equal(mg_fleet_config_build(&v, "/p/", &cfg, &bad, &err), MG_EINVAL);
        assert_string_equal(bad, cases[i].key);
        assert_non_null(strstr(err.msg, cases[i].why));
        assert_non_null(strstr(err.msg, cases[i].key));
        mg_etcd_event_t undo = event(MG_ETCD_DELETE, cases[i].key, "", 40 + (int64_t)i);
        if (strcmp(cases[i].key, "/p/config/kill-switch") != 0)
            assert_int_equal(mg_fleet_view_apply(&v, &undo), 0);
    }
    mg_fleet_view_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_and_prefixes),
        cmocka_unit_test(test_view_follows_events),
        cmocka_unit_test(test_configuration_from_the_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
