/*
 * Overload and deadline building blocks of the request core: admission (the in-flight bound,
 * never exceeded by threads racing for it), deadlines (the timeout parameter, Request-Timeout,
 * the cap and the default), the per-client rate limit, and the execution pool (order, stop).
 */
#include "repo/version_internal.h" /* a bare version: admission needs only its config */
#include "serve/admit.h"
#include "serve/deadline.h"
#include "serve/pool.h"
#include "serve/ratelimit.h"
#include "support/support.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static mg_model_version_t *version_with(int max_inflight)
{
    mg_model_config_t cfg;
    mg_model_config_default(&cfg);
    cfg.max_inflight = max_inflight;
    mg_model_version_t *v = mg_model_version_alloc("m", 3, &cfg);
    assert_non_null(v);
    return v;
}

static void test_admit_bound(void **state)
{
    (void)state;
    mg_model_version_t *v = version_with(2);
    mg_err_t err;
    assert_int_equal(mg_admit_enter(v, 100, &err), 0);
    assert_int_equal(mg_admit_enter(v, 100, &err), 0);
    assert_int_equal(mg_admit_enter(v, 100, &err), MG_EOVERLOAD);
    assert_non_null(strstr(err.msg, "model 'm' version 3 is at its limit of 2 requests in flight"));
    assert_int_equal(mg_admit_inflight(v), 2); /* a refusal leaves no trace */
    mg_admit_leave(v);
    assert_int_equal(mg_admit_enter(v, 100, &err), 0);
    mg_admit_leave(v);
    mg_admit_leave(v);
    assert_int_equal(mg_admit_inflight(v), 0);
    mg_model_version_free(v);

    v = version_with(0); /* the server default applies; 0 for both: no bound */
    assert_int_equal(mg_admit_enter(v, 1, &err), 0);
    assert_int_equal(mg_admit_enter(v, 1, &err), MG_EOVERLOAD);
    mg_admit_leave(v);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(mg_admit_enter(v, 0, &err), 0);
    mg_model_version_free(v);
}

typedef struct racer {
    mg_model_version_t *v;
    atomic_int *inside, *peak;
    int admitted;
} racer_t;

static void *race(void *arg)
{
    racer_t *r = arg;
    mg_err_t err;
    for (int i = 0; i < 20000; i++) {
        if (mg_admit_enter(r->v, 0, &err) != 0)
            continue;
        int now = atomic_fetch_add(r->inside, 1) + 1;
        int p = atomic_load(r->peak);
        while (now > p && !atomic_compare_exchange_weak(r->peak, &p, now))
            ;
        r->admitted++;
        atomic_fetch_sub(r->inside, 1);
        mg_admit_leave(r->v);
    }
    return NULL;
}

/* Threads racing for three slots: never more than three inside at once. */
static void test_admit_race(void **state)
{
    (void)state;
    mg_model_version_t *v = version_with(3);
    atomic_int inside = 0, peak = 0;
    racer_t r[6];
    pthread_t t[6];
    for (int i = 0; i < 6; i++) {
        r[i] = (racer_t){v, &inside, &peak, 0};
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        total += r[i].admitted;
    }
    assert_true(atomic_load(&peak) <= 3);
    assert_true(total > 0);
    assert_int_equal(mg_admit_inflight(v), 0);
    mg_model_version_free(v);
}

static int hdr(void *ctx, const char *lname, size_t len, mg_str_t *value)
{
    (void)len;
    if (ctx == NULL || strcmp(lname, "request-timeout") != 0)
        return 0;
    *value = mg_test_str(ctx);
    return 1;
}

static void test_deadlines(void **state)
{
    (void)state;
    int64_t ns;
    assert_int_equal(mg_deadline_parse_header(mg_test_str("2"), &ns), 0);
    assert_int_equal(ns, 2000000000);
    assert_int_equal(mg_deadline_parse_header(mg_test_str("0.25"), &ns), 0);
    assert_int_equal(ns, 250000000);
    assert_int_equal(mg_deadline_parse_header(mg_test_str("250ms"), &ns), 0);
    assert_int_equal(ns, 250000000);
    assert_int_equal(mg_deadline_parse_header(mg_test_str("1500us"), &ns), 0);
    assert_int_equal(ns, 1500000);
    const char *bad[] = {"",   "s", "-1", "0", "1m", "1.5.5", "99999999999999999999",
                         "ms", ".", "0.0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(mg_deadline_parse_header(mg_test_str(bad[i]), &ns), -1);

    mg_deadline_opts_t o = {.max_ms = 1000, .default_ms = 0};
    mg_param_t p = {.key = mg_test_str("timeout"), .kind = MG_PARAM_INT, .num_int = 5000};
    mg_infer_request_t req = {.params = &p, .nparams = 1};
    mg_meta_t none = {hdr, NULL}, header = {hdr, "2s"};
    mg_err_t err;
    int64_t d;
    assert_int_equal(mg_deadline_resolve(&o, &req, &header, 100, &d, &err), 0);
    assert_int_equal(d, 100 + 5000 * 1000); /* the parameter wins over the header */
    p.num_int = 10 * 1000 * 1000;           /* 10 s: capped to 1 s */
    assert_int_equal(mg_deadline_resolve(&o, &req, &none, 100, &d, &err), 0);
    assert_int_equal(d, 100 + 1000000000);
    assert_int_equal(mg_deadline_resolve(&o, NULL, &header, 0, &d, &err), 0);
    assert_int_equal(d, 1000000000); /* 2 s capped */
    assert_int_equal(mg_deadline_resolve(&o, NULL, &none, 0, &d, &err), 0);
    assert_int_equal(d, 0);
    o.default_ms = 300;
    assert_int_equal(mg_deadline_resolve(&o, NULL, &none, 7, &d, &err), 0);
    assert_int_equal(d, 7 + 300000000);
    p.kind = MG_PARAM_STRING;
    assert_int_equal(mg_deadline_resolve(&o, &req, &none, 0, &d, &err), MG_EINVAL);
    assert_non_null(strstr(err.msg, "'timeout'"));
    mg_meta_t worse = {hdr, "soon"};
    assert_int_equal(mg_deadline_resolve(&o, NULL, &worse, 0, &d, &err), MG_EINVAL);
    assert_non_null(strstr(err.msg, "Request-Timeout"));
}

static void test_ratelimit(void **state)
{
    (void)state;
    mg_ratelimit_t *r;
    assert_int_equal(mg_ratelimit_new(&r, 0, 0), MG_EINVAL);
    assert_int_equal(mg_ratelimit_new(&r, 10, 3), 0);
    mg_err_t err;
    unsigned retry = 0;
    mg_str_t a = mg_test_str("alice"), b = mg_test_str("bob");
    for (int i = 0; i < 3; i++)
        assert_int_equal(mg_ratelimit_take(r, a, 1000, &retry, &err), 0);
    assert_int_equal(mg_ratelimit_take(r, a, 1000, &retry, &err), MG_ERATELIMIT);
    assert_int_equal(retry, 1);
    assert_int_equal(mg_ratelimit_take(r, b, 1000, &retry, &err), 0); /* its own bucket */
    assert_int_equal(mg_ratelimit_take(r, a, 1100, &retry, &err), 0); /* 100 ms: one token */
    assert_int_equal(mg_ratelimit_take(r, a, 1100, &retry, &err), MG_ERATELIMIT);
    for (int i = 0; i < 3; i++) /* refilled up to the burst, no further */
        assert_int_equal(mg_ratelimit_take(r, a, 60000, &retry, &err), 0);
    assert_int_equal(mg_ratelimit_take(r, a, 60000, &retry, &err), MG_ERATELIMIT);
    mg_ratelimit_free(r);
}

typedef struct job {
    mg_pool_job_t job;
    int index;
    int *order;
    atomic_int *next;
} job_t;

static void run_job(mg_pool_job_t *j)
{
    job_t *job = (job_t *)j;
    job->order[atomic_fetch_add(job->next, 1)] = job->index;
}

static void test_pool(void **state)
{
    (void)state;
    mg_pool_t *p;
    mg_err_t err;
    assert_int_equal(mg_pool_new(&p, 0, &err), MG_EINVAL);
    assert_int_equal(mg_pool_new(&p, 1, &err), 0);
    job_t jobs[100];
    int order[100];
    atomic_int next = 0;
    for (int i = 0; i < 100; i++) {
        jobs[i] = (job_t){{run_job, NULL}, i, order, &next};
        assert_int_equal(mg_pool_submit(p, &jobs[i].job), 0);
    }
    mg_pool_stop(p); /* runs everything queued first */
    assert_int_equal(atomic_load(&next), 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(order[i], i); /* one thread: submission order */
    job_t late = {{run_job, NULL}, 0, order, &next};
    assert_int_equal(mg_pool_submit(p, &late.job), MG_ECANCELED);
    mg_pool_stop(p);
    mg_pool_free(p);
    mg_pool_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admit_bound), cmocka_unit_test(test_admit_race),
        cmocka_unit_test(test_deadlines),   cmocka_unit_test(test_ratelimit),
        cmocka_unit_test(test_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
