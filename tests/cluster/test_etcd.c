/*
 * The etcd client against a real etcd server (tests/support/etcd.h): range reads by prefix,
 * transactions with and without a compare on the mod revision, leases, the watch (events in
 * order, a transaction's events at one revision, deletes, compaction), endpoint failover and
 * cancellation from another thread.
 */
#include "cluster/etcd.h"
#include "support/etcd.h"
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

static mg_test_etcd_t server;
static mg_etcd_t *client;

static int setup(void **state)
{
    (void)state;
    mg_test_etcd_start(&server);
    mg_etcd_opts_t o = {.endpoints = server.url};
    mg_err_t err;
    return mg_etcd_new(&client, &o, &err);
}

static int teardown(void **state)
{
    (void)state;
    mg_etcd_free(client);
    mg_test_etcd_stop(&server);
    return 0;
}

static int64_t put(const char *key, const char *value)
{
    return mg_test_etcd_put(client, key, value);
}

static void test_endpoints_are_checked(void **state)
{
    (void)state;
    mg_etcd_t *e = NULL;
    mg_err_t err;
    mg_etcd_opts_t o = {.endpoints = "ftp://127.0.0.1:1"};
    assert_int_equal(mg_etcd_new(&e, &o, &err), MG_EINVAL);
    assert_non_null(strstr(err.msg, "not an http:// or https:// URL"));
    o.endpoints = " , ";
    assert_int_equal(mg_etcd_new(&e, &o, &err), MG_EINVAL);
    assert_string_equal(err.msg, "no etcd endpoint given");
    assert_null(e);
    mg_buf_t end = {0};
    assert_int_equal(mg_etcd_prefix_end("/a/", &end), 0);
    assert_int_equal(end.len, 3);
    assert_memory_equal(end.data, "/a0", 3);
    mg_buf_free(&end);
}

static void test_range_and_txn(void **state)
{
    (void)state;
    /* Values as they come: quotes, newlines, UTF-8. */
    const char *odd = "{\"a\": \"\xc3\xa9\"}\n\"\\";
    int64_t r1 = put("/t/a/x", odd);
    put("/t/a/y", "2");
    put("/t/a0", "not under /t/a/");
    put("/t/b", "3");
    mg_etcd_kvs_t kvs = {0};
    mg_err_t err;
    assert_int_equal(mg_etcd_range(client, "/t/a/", false, &kvs, &err), 0);
    assert_int_equal(kvs.n, 2);
    assert_string_equal(kvs.kvs[0].key, "/t/a/x");
    assert_string_equal(kvs.kvs[0].value, odd);
    assert_int_equal(kvs.kvs[0].value_len, strlen(odd));
    assert_int_equal(kvs.kvs[0].mod_revision, r1);
    assert_string_equal(kvs.kvs[1].key, "/t/a/y");
    assert_true(kvs.revision >= r1 + 3);
    mg_etcd_kvs_free(&kvs);
    assert_int_equal(mg_etcd_range(client, "/t/b", true, &kvs, &err), 0);
    assert_int_equal(kvs.n, 1);
    mg_etcd_kvs_free(&kvs);
    assert_int_equal(mg_etcd_range(client, "/t/none/", false, &kvs, &err), 0);
    assert_int_equal(kvs.n, 0);
    mg_etcd_kvs_free(&kvs);

    /* A compare on the mod revision: a stale one writes nothing. */
    mg_etcd_put_t p = {"/t/a/x", "new", 3, 0};
    bool ok = true;
    int64_t rev = 0;
    assert_int_equal(mg_etcd_txn(client, &p, 1, "/t/a/x", r1 - 1, &ok, &rev, &err), 0);
    assert_false(ok);
    assert_int_equal(mg_etcd_range(client, "/t/a/x", true, &kvs, &err), 0);
    assert_string_equal(kvs.kvs[0].value, odd);
    mg_etcd_kvs_free(&kvs);
    assert_int_equal(mg_etcd_txn(client, &p, 1, "/t/a/x", r1, &ok, &rev, &err), 0);
    assert_true(ok);
    /* Mod revision 0: the key must not exist yet. */
    mg_etcd_put_t fresh = {"/t/c", "1", 1, 0};
    assert_int_equal(mg_etcd_txn(client, &fresh, 1, "/t/c", 0, &ok, &rev, &err), 0);
    assert_true(ok);
    assert_int_equal(mg_etcd_txn(client, &fresh, 1, "/t/c", 0, &ok, &rev, &err), 0);
    assert_false(ok);
    /* Several puts, one revision. */
    mg_etcd_put_t two[] = {{"/t/m/1", "a", 1, 0}, {"/t/m/2", "b", 1, 0}};
    assert_int_equal(mg_etcd_txn(client, two, 2, NULL, 0, &ok, &rev, &err), 0);
    assert_int_equal(mg_etcd_range(client, "/t/m/", false, &kvs, &err), 0);
    assert_int_equal(kvs.n, 2);
    assert_int_equal(kvs.kvs[0].mod_revision, rev);
    assert_int_equal(kvs.kvs[1].mod_revision, rev);
    mg_etcd_kvs_free(&kvs);
    assert_int_equal(mg_etcd_delete(client, "/t/m/1", &rev, &err), 0);
    assert_int_equal(mg_etcd_range(client, "/t/m/", false, &kvs, &err), 0);
    assert_int_equal(kvs.n, 1);
    mg_etcd_kvs_free(&kvs);
}

static void test_leases(void **state)
{
    (void)state;
    int64_t id = 0;
    mg_err_t err;
    assert_int_equal(mg_etcd_lease_grant(client, 30, &id, &err), 0);
    assert_true(id != 0);
    mg_etcd_put_t p = {"/t/lease/me", "here", 4, id};
    bool ok = false;
    assert_int_equal(mg_etcd_txn(client, &p, 1, NULL, 0, &ok, NULL, &err), 0);
    assert_int_equal(mg_etcd_lease_keepalive(client, id, &err), 0);
    mg_etcd_kvs_t kvs = {0};
    assert_int_equal(mg_etcd_range(client, "/t/lease/", false, &kvs, &err), 0);
    assert_int_equal(kvs.n, 1);
    assert_int_equal(kvs.kvs[0].lease, id);
    mg_etcd_kvs_free(&kvs);
    assert_int_equal(mg_etcd_lease_revoke(client, id, &err), 0);
    assert_int_equal(mg_etcd_range(client, "/t/lease/", false, &kvs, &err), 0);
    assert_int_equal(kvs.n, 0); /* its keys went with it */
    mg_etcd_kvs_free(&kvs);
    assert_int_equal(mg_etcd_lease_keepalive(client, id, &err), MG_ENOENT);
    /* A put under a lease that is gone is refused. */
    assert_int_equal(mg_etcd_txn(client, &p, 1, NULL, 0, &ok, NULL, &err), MG_EIO);
    assert_non_null(strstr(err.msg, "lease not found"));
}

typedef struct watch_run {
    mg_etcd_t *writer; /* writes from the tick: the watching client is busy */
    int ticks;
    int created;
    int64_t start;
    int nevents;
    mg_etcd_event_type_t types[8];
    char keys[8][32];
    int64_t revs[8];
    int64_t compact_revision;
} watch_run_t;

static int on_msg(void *ctx, const mg_etcd_watch_msg_t *m)
{
    watch_run_t *w = ctx;
    if (m->created)
        w->created = 1;
    if (m->canceled) {
        w->compact_revision = m->compact_revision;
        return 2;
    }
    for (size_t i = 0; i < m->nevents && w->nevents < 8; i++, w->nevents++) {
        w->types[w->nevents] = m->events[i].type;
        snprintf(w->keys[w->nevents], sizeof(w->keys[0]), "%s", m->events[i].kv.key);
        w->revs[w->nevents] = m->events[i].kv.mod_revision;
    }
    return w->nevents >= 4 ? 1 : 0;
}

static int on_tick(void *ctx)
{
    watch_run_t *w = ctx;
    if (++w->ticks == 2) {
        /* Once the watch is up: a put, a transaction of two, a delete. */
        mg_err_t err;
        bool ok;
        mg_etcd_put_t one = {"/t/w/a", "1", 1, 0};
        mg_etcd_put_t two[] = {{"/t/w/b", "2", 1, 0}, {"/t/w/c", "3", 1, 0}};
        mg_etcd_txn(w->writer, &one, 1, NULL, 0, &ok, NULL, &err);
        mg_etcd_txn(w->writer, two, 2, NULL, 0, &ok, NULL, &err);
        mg_etcd_delete(w->writer, "/t/w/a", NULL, &err);
    }
    return w->ticks > 200 ? 3 : 0; /* about 20 s: give up */
}

static void test_watch(void **state)
{
    (void)state;
    mg_etcd_opts_t o = {.endpoints = server.url};
    watch_run_t w = {0};
    mg_err_t err;
    assert_int_equal(mg_etcd_new(&w.writer, &o, &err), 0);
    int64_t from = put("/t/w/before", "0") + 1;
    assert_int_equal(mg_etcd_watch(client, "/t/w/", from, on_msg, on_tick, &w, &err), 1);
    assert_true(w.created);
    assert_int_equal(w.nevents, 4);
    assert_string_equal(w.keys[0], "/t/w/a");
    assert_int_equal(w.types[0], MG_ETCD_PUT);
    assert_string_equal(w.keys[1], "/t/w/b");
    assert_string_equal(w.keys[2], "/t/w/c");
    assert_int_equal(w.revs[1], w.revs[2]); /* one transaction, one revision */
    assert_true(w.revs[1] > w.revs[0]);
    assert_string_equal(w.keys[3], "/t/w/a");
    assert_int_equal(w.types[3], MG_ETCD_DELETE);
    assert_true(w.revs[3] > w.revs[2]);

    /* Compacted past the start: etcd cancels the watch and says where it compacted. */
    int64_t last = put("/t/w/d", "4");
    char body[64];
    snprintf(body, sizeof(body), "%lld", (long long)last);
    mg_test_sh("ETCDCTL_API=3 etcdctl --endpoints %s compact %s >/dev/null", server.url, body);
    watch_run_t c = {.writer = w.writer};
    assert_int_equal(mg_etcd_watch(client, "/t/w/", from, on_msg, NULL, &c, &err), 2);
    assert_int_equal(c.compact_revision, last);
    mg_etcd_free(w.writer);
}

static void *cancel_later(void *arg)
{
    struct timespec ms = {0, 200000000L};
    nanosleep(&ms, NULL);
    mg_etcd_cancel(arg);
    return NULL;
}

static int never(void *ctx, const mg_etcd_watch_msg_t *m)
{
    (void)ctx;
    (void)m;
    return 0;
}

static void test_failover_and_cancel(void **state)
{
    (void)state;
    char endpoints[200];
    snprintf(endpoints, sizeof(endpoints), "http://127.0.0.1:%d,%s", mg_test_free_port(),
             server.url);
    mg_etcd_opts_t o = {.endpoints = endpoints};
    mg_etcd_t *e = NULL;
    mg_err_t err;
    assert_int_equal(mg_etcd_new(&e, &o, &err), 0);
    mg_etcd_kvs_t kvs = {0};
    assert_int_equal(mg_etcd_range(e, "/t/", false, &kvs, &err), 0); /* the second one answers */
    mg_etcd_kvs_free(&kvs);
    assert_string_equal(mg_etcd_endpoint(e), server.url);
    /* A watch waits until it is cancelled from another thread. */
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, e);
    assert_int_equal(mg_etcd_watch(e, "/t/", 1, never, NULL, NULL, &err), MG_ECANCELED);
    pthread_join(t, NULL);
    assert_int_equal(mg_etcd_range(e, "/t/", false, &kvs, &err), MG_ECANCELED);
    mg_etcd_free(e);

    char dead[64];
    snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", mg_test_free_port());
    o.endpoints = dead;
    assert_int_equal(mg_etcd_new(&e, &o, &err), 0);
    assert_int_equal(mg_etcd_range(e, "/t/", false, &kvs, &err), MG_EIO);
    assert_non_null(strstr(err.msg, "cannot reach etcd"));
    assert_int_equal(mg_etcd_watch(e, "/t/", 1, never, NULL, NULL, &err), MG_EIO);
    mg_etcd_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints_are_checked),
        cmocka_unit_test(test_range_and_txn),
        cmocka_unit_test(test_leases),
        cmocka_unit_test(test_watch),
        cmocka_unit_test(test_failover_and_cancel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
