/*
 * The circuit breaker: its settings, the transitions closed -> open -> half-open -> closed on
 * consecutive failures and on the failure ratio over the sliding window, the growing ejection,
 * the probes, and many threads recording and asking while it trips and closes (built under
 * ThreadSanitizer by `make tsan`). Time is passed in explicitly, so no test sleeps.
 */
#include "route/breaker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define MS(x) ((int64_t)(x)*1000000)

static mg_breaker_config_t config(int consecutive, double ratio, int min_requests)
{
    mg_breaker_config_t c;
    mg_breaker_config_default(&c);
    c.consecutive_failures = consecutive;
    c.failure_ratio = ratio;
    c.min_requests = min_requests;
    c.window_ms = 10000;
    c.ejection_ms = 100;
    c.max_ejection_ms = 1000;
    c.probes = 3;
    return c;
}

static mg_breaker_t *make(const mg_breaker_config_t *c)
{
    mg_breaker_t *b = NULL;
    assert_int_equal(mg_breaker_new(&b, c), 0);
    return b;
}

static mg_breaker_state_t state_of(mg_breaker_t *b, int64_t now)
{
    mg_breaker_status_t st;
    mg_breaker_read(b, now, &st);
    return st.state;
}

static void record_n(mg_breaker_t *b, int n, mg_breaker_outcome_t o, int64_t now)
{
    for (int i = 0; i < n; i++)
        mg_breaker_record(b, o, true, now);
}

static void test_config_parse(void **state)
{
    (void)state;
    mg_breaker_config_t c, d;
    mg_err_t err;
    mg_breaker_config_default(&d);
    assert_int_equal(d.consecutive_failures, 5);
    assert_int_equal(d.min_requests, 20);
    assert_int_equal(d.window_ms, 10000);
    assert_int_equal(d.ejection_ms, 5000);
    assert_int_equal(d.max_ejection_ms, 60000);
    assert_int_equal(d.probes, 3);
    assert_true(d.failure_ratio == 0.5);

    assert_int_equal(mg_breaker_config_parse("{}", 2, &c, &err), 0);
    assert_memory_equal(&c, &d, sizeof(c));
    const char *all = "{\"consecutive_failures\": 0, \"failure_ratio\": 0.25, \"window_ms\": 2000, "
                      "\"min_requests\": 7, \"ejection_ms\": 300, \"max_ejection_ms\": 900, "
                      "\"probes\": 2}";
    assert_int_equal(mg_breaker_config_parse(all, strlen(all), &c, &err), 0);
    assert_int_equal(c.consecutive_failures, 0);
    assert_true(c.failure_ratio == 0.25);
    assert_int_equal(c.window_ms, 2000);
    assert_int_equal(c.min_requests, 7);
    assert_int_equal(c.ejection_ms, 300);
    assert_int_equal(c.max_ejection_ms, 900);
    assert_int_equal(c.probes, 2);
    /* An ejection above the default cap raises the cap with it. */
    const char *big = "{\"ejection_ms\": 120000}";
    assert_int_equal(mg_breaker_config_parse(big, strlen(big), &c, &err), 0);
    assert_int_equal(c.max_ejection_ms, 120000);

    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"threshold\": 3}", "unknown field 'threshold'"},
        {"{\"probes\": 0}", "'probes' must be an integer from 1 to 1000"},
        {"{\"probes\": \"3\"}", "'probes' must be an integer from 1 to 1000"},
        {"{\"consecutive_failures\": -1}", "'consecutive_failures' must be an integer"},
        {"{\"failure_ratio\": 1.5}", "'failure_ratio' must be a number from 0 to 1"},
        {"{\"failure_ratio\": true}", "'failure_ratio' must be a number from 0 to 1"},
        {"{\"window_ms\": 10}", "'window_ms' must be an integer from 100"},
        {"{\"ejection_ms\": 500, \"max_ejection_ms\": 100}", "'max_ejection_ms' must be an integer "
                                                             "from 500"},
        {"[1]", "must be an object"},
        {"{\"probes\": 1,}", "line 1"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mg_breaker_config_t keep = d;
        mg_err_clear(&err);
        assert_int_equal(mg_breaker_config_parse(bad[i].json, strlen(bad[i].json), &keep, &err),
                         MG_EINVAL);
        if (strstr(err.msg, bad[i].msg) == NULL)
            fail_msg("%s: got '%s', want '%s'", bad[i].json, err.msg, bad[i].msg);
        assert_memory_equal(&keep, &d, sizeof(keep)); /* untouched on failure */
    }
    assert_string_equal(mg_breaker_state_name(MG_BREAKER_HALF_OPEN), "half-open");
    assert_string_equal(mg_breaker_trip_name(MG_BREAKER_TRIP_LOAD), "load-failed");
}

static void test_consecutive_failures_open_then_probes_close(void **state)
{
    (void)state;
    mg_breaker_config_t c = config(5, 0, 20);
    mg_breaker_t *b = make(&c);
    int64_t t = MS(1000000);
    assert_int_equal(mg_breaker_allow(b, t), MG_BREAKER_ALLOW);
    for (int i = 0; i < 4; i++)
        assert_int_equal(mg_breaker_record(b, MG_BREAKER_FAILURE, true, t), MG_BREAKER_EVENT_NONE);
    assert_int_equal(state_of(b, t), MG_BREAKER_CLOSED);
    assert_int_equal(mg_breaker_record(b, MG_BREAKER_FAILURE, true, t), MG_BREAKER_EVENT_OPENED);

    mg_breaker_status_t st;
    mg_breaker_read(b, t, &st);
    assert_int_equal(st.state, MG_BREAKER_OPEN);
    assert_int_equal(st.last_trip, MG_BREAKER_TRIP_CONSECUTIVE);
    assert_int_equal(st.trips, 1);
    assert_int_equal(st.ejection_ms, 100);
    assert_int_equal(st.reopen_in_ms, 100);
    assert_int_equal(st.window_failures, 5);
    assert_int_equal(st.window_requests, 5);

    /* Ejected for the ejection time; then `probes` requests go through, the others not. */
    assert_int_equal(mg_breaker_allow(b, t + MS(99)), MG_BREAKER_DENY);
    t += MS(100);
    for (int i = 0; i < 3; i++)
        assert_int_equal(mg_breaker_allow(b, t), MG_BREAKER_PROBE);
    assert_int_equal(state_of(b, t), MG_BREAKER_HALF_OPEN);
    assert_int_equal(mg_breaker_allow(b, t), MG_BREAKER_DENY);
    assert_int_equal(mg_breaker_record(b, MG_BREAKER_SUCCESS, true, t), MG_BREAKER_EVENT_NONE);
    assert_int_equal(mg_breaker_record(b, MG_BREAKER_SUCCESS, true, t), MG_BREAKER_EVENT_NONE);
    assert_int_equal(mg_breaker_record(b, MG_BREAKER_SUCCESS, true, t), MG_BREAKER_EVENT_CLOSED);
    assert_int_equal(state_of(b, t), MG_BREAKER_CLOSED);
    assert_int_equal(mg_breaker_allow(b, t), MG_BREAKER_ALLOW);
    mg_breaker_read(b, t, &st);
    assert_int_equal(st.trips, 1);
    assert_int_equal(st.consecutive_failures, 0);
    mg_breaker_free(b);
}

static void test_success_resets_the_streak(void **state)
{
    (void)state;
    mg_breaker_config_t c = config(5, 0, 20);
    mg_breaker_t *b = make(&c);
    int64_t t = MS(5000);
    for (int round = 0; round < 50; round++) {
        record_n(b, 4, MG_BREAKER_FAILURE, t);
        record_n(b, 1, MG_BREAKER_SUCCESS, t);
    }
    assert_int_equal(state_of(b, t), MG_BREAKER_CLOSED);
    mg_breaker_free(b);
}

static void test_failure_ratio_with_minimum_volume(void **state)
{
    (void)state;
    mg_breaker_config_t c = config(0, 0.5, 20);
    mg_breaker_t *b = make(&c);
    int64_t t = MS(70000);
    /* 9 failures of 18: over the ratio, under the volume. */
    for (int i = 0; i < 9; i++) {
        assert_int_equal(mg_breaker_record(b, MG_BREAKER_SUCCESS, true, t), MG_BREAKER_EVENT_NONE);
        assert_int_equal(mg_breaker_record(b, MG_BREAKER_FAILURE, true, t), MG_BREAKER_EVENT_NONE);
    }
    assert_int_equal(mg_breaker_record(b, MG_BREAKER_SUCCESS, true, t), MG_BREAKER_EVENT_NONE);
    /* The 20th request, the 10th failure: 50 % of 20. */
    assert_int_equal(mg_breaker_record(b, MG_BREAKER_FAILURE, true, t), MG_BREAKER_EVENT_OPENED);
    mg_breaker_status_t st;
    mg_breaker_read(b, t, &st);
    assert_int_equal(st.last_trip, MG_BREAKER_TRIP_RATIO);
    mg_breaker_free(b);

    /* Below the ratio it never opens, however long it runs. */
    b = make(&c);
    for (int i = 0; i < 1000; i++) {
        record_n(b, 2, MG_BREAKER_SUCCESS, t + MS(i));
        record_n(b, 1, MG_BREAKER_FAILURE, t + MS(i));
    }
    assert_int_equal(state_of(b, t + MS(1000)), MG_BREAKER_CLOSED);
    mg_breaker_free(b);
}

static void test_window_slides(void **state)
{
    (void)state;
    mg_breaker_config_t c = config(0, 0.5, 20);
    mg_breaker_t *b = make(&c);
    int64_t t = MS(100000);
    record_n(b, 15, MG_BREAKER_FAILURE, t);
    mg_breaker_status_t st;
    mg_breaker_read(b, t + MS(5000), &st);
    assert_int_equal(st.window_failures, 15);
    /* A window (10 s) and a bucket later, the old failures are gone. */
    t += MS(11000);
    mg_breaker_read(b, t, &st);
    assert_int_equal(st.window_requests, 0);
    record_n(b, 10, MG_BREAKER_SUCCESS, t);
    assert_int_equal(mg_breaker_record(b, MG_BREAKER_FAILURE, true, t), MG_BREAKER_EVENT_NONE);
    assert_int_equal(state_of(b, t), MG_BREAKER_CLOSED);
    mg_breaker_free(b);
}

static void test_stable_never_opens(void **state)
{
    (void)state;
    mg_breaker_config_t c = config(5, 0.5, 20);
    mg_breaker_t *b = make(&c);
    int64_t t = MS(3000);
    for (int i = 0; i < 100; i++)
        assert_int_equal(mg_breaker_record(b, MG_BREAKER_FAILURE, false, t), MG_BREAKER_EVENT_NONE);
    mg_breaker_status_t st;
    mg_breaker_read(b, t, &st);
    assert_int_equal(st.state, MG_BREAKER_CLOSED);
    assert_int_equal(st.window_failures, 100);
    assert_int_equal(st.consecutive_failures, 100);
    mg_breaker_free(b);
}

/* Opens `b` at `t` with consecutive failures; returns the ejection it got. */
static int64_t trip_at(mg_breaker_t *b, int64_t t)
{
    record_n(b, 5, MG_BREAKER_FAILURE, t);
    mg_breaker_status_t st;
    mg_breaker_read(b, t, &st);
    assert_int_equal(st.state, MG_BREAKER_OPEN);
    return st.ejection_ms;
}

static void test_ejection_doubles_and_resets(void **state)
{
    (void)state;
    mg_breaker_config_t c = config(5, 0, 20);
    mg_breaker_t *b = make(&c);
    int64_t t = MS(9000000);
    assert_int_equal(trip_at(b, t), 100);
    /* Each failed probe opens it again for twice as long, up to the cap. */
    static const int64_t want[] = {200, 400, 800, 1000, 1000};
    int64_t ejection = 100;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        t += MS(ejection);
        assert_int_equal(mg_breaker_allow(b, t), MG_BREAKER_PROBE);
        assert_int_equal(mg_breaker_record(b, MG_BREAKER_FAILURE, true, t),
                         MG_BREAKER_EVENT_OPENED);
        mg_breaker_status_t st;
        mg_breaker_read(b, t, &st);
        assert_int_equal(st.last_trip, MG_BREAKER_TRIP_PROBE);
        assert_int_equal(st.ejection_ms, want[i]);
        ejection = st.ejection_ms;
    }
    /* Probes succeed: closed. Tripping again soon keeps doubling... */
    t += MS(ejection);
    for (int i = 0; i < 3; i++)
        assert_int_equal(mg_breaker_allow(b, t), MG_BREAKER_PROBE);
    record_n(b, 3, MG_BREAKER_SUCCESS, t);
    assert_int_equal(state_of(b, t), MG_BREAKER_CLOSED);
    assert_int_equal(trip_at(b, t + MS(10)), 1000);
    t += MS(10 + 1000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(mg_breaker_allow(b, t), MG_BREAKER_PROBE);
    record_n(b, 3, MG_BREAKER_SUCCESS, t);
    /* ...but after staying closed for a whole maximum ejection it starts over. */
    assert_int_equal(trip_at(b, t + MS(1000)), 100);
    mg_breaker_status_t st;
    mg_breaker_read(b, t, &st);
    assert_int_equal(st.trips, 8);
    mg_breaker_free(b);
}

static void test_probes_are_granted_again(void **state)
{
    (void)state;
    mg_breaker_config_t c = config(5, 0, 20);
    mg_breaker_t *b = make(&c);
    int64_t t = MS(40000);
    trip_at(b, t);
    t += MS(100);
    for (int i = 0; i < 3; i++)
        assert_int_equal(mg_breaker_allow(b, t), MG_BREAKER_PROBE);
    /* The probes never report back (client errors): after an ejection time, new ones. */
    assert_int_equal(mg_breaker_allow(b, t + MS(100)), MG_BREAKER_DENY);
    assert_int_equal(mg_breaker_allow(b, t + MS(101)), MG_BREAKER_PROBE);
    mg_breaker_free(b);
}

static void test_closing_forgets_old_failures(void **state)
{
    (void)state;
    mg_breaker_config_t c = config(0, 0.5, 20);
    mg_breaker_t *b = make(&c);
    int64_t t = MS(200000);
    record_n(b, 20, MG_BREAKER_FAILURE, t);
    assert_int_equal(state_of(b, t), MG_BREAKER_OPEN);
    t += MS(100);
    for (int i = 0; i < 3; i++)
        assert_int_equal(mg_breaker_allow(b, t), MG_BREAKER_PROBE);
    record_n(b, 3, MG_BREAKER_SUCCESS, t);
    assert_int_equal(state_of(b, t), MG_BREAKER_CLOSED);
    /* The 20 failures before the trip are still inside the window, but no longer count. */
    assert_int_equal(mg_breaker_record(b, MG_BREAKER_FAILURE, true, t + MS(1000)),
                     MG_BREAKER_EVENT_NONE);
    assert_int_equal(state_of(b, t + MS(1000)), MG_BREAKER_CLOSED);
    mg_breaker_free(b);
}

/* ---- concurrency -------------------------------------------------------------------------- */

#define THREADS    4
#define OPS        40000
#define FAIL_EVERY 3

static mg_breaker_t *shared;
static _Atomic int64_t clock_ns;
static atomic_long opened, closed, probes, denied, allowed;

/*
 * Each thread asks and records like a request thread; every few hundred operations it sends a
 * burst of failures (which trips the breaker) and the clock moves on, so the breaker keeps
 * going through open, half-open and closed while the others read and write.
 */
static void *worker(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    for (int i = 0; i < OPS; i++) {
        int64_t now = atomic_fetch_add(&clock_ns, MS(1) / 10);
        mg_breaker_decision_t d = mg_breaker_allow(shared, now);
        if (d == MG_BREAKER_DENY) {
            atomic_fetch_add(&denied, 1);
            continue;
        }
        atomic_fetch_add(d == MG_BREAKER_PROBE ? &probes : &allowed, 1);
        bool burst = (i / 200) % 4 == (int)id % 4 && i % 200 < 20;
        mg_breaker_outcome_t o =
            burst || i % FAIL_EVERY == 0 ? MG_BREAKER_FAILURE : MG_BREAKER_SUCCESS;
        mg_breaker_event_t ev = mg_breaker_record(shared, o, true, now);
        if (ev == MG_BREAKER_EVENT_OPENED)
            atomic_fetch_add(&opened, 1);
        else if (ev == MG_BREAKER_EVENT_CLOSED)
            atomic_fetch_add(&closed, 1);
        if (i % 97 == 0) {
            mg_breaker_status_t st;
            mg_breaker_read(shared, now, &st);
            assert_true(st.state <= MG_BREAKER_HALF_OPEN);
            assert_true(st.window_failures <= st.window_requests);
        }
    }
    return NULL;
}

static void test_many_threads_while_it_trips(void **state)
{
    (void)state;
    mg_breaker_config_t c = config(5, 0.5, 20);
    c.ejection_ms = 2;
    c.max_ejection_ms = 8;
    c.probes = 2;
    shared = make(&c);
    atomic_store(&clock_ns, MS(1000));
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    mg_breaker_status_t st;
    mg_breaker_read(shared, atomic_load(&clock_ns), &st);
    printf("breaker under %d threads: %ld opened, %ld closed, %ld probes, %ld allowed, %ld denied, "
           "trips=%llu state=%s\n",
           THREADS, atomic_load(&opened), atomic_load(&closed), atomic_load(&probes),
           atomic_load(&allowed), atomic_load(&denied), (unsigned long long)st.trips,
           mg_breaker_state_name(st.state));
    /* Every transition was reported to exactly one caller; a close follows an open. */
    assert_int_equal((long)st.trips, atomic_load(&opened));
    assert_true(atomic_load(&opened) > 10);
    assert_true(atomic_load(&closed) > 0);
    assert_true(atomic_load(&closed) <= atomic_load(&opened));
    mg_breaker_free(shared);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_parse),
        cmocka_unit_test(test_consecutive_failures_open_then_probes_close),
        cmocka_unit_test(test_success_resets_the_streak),
        cmocka_unit_test(test_failure_ratio_with_minimum_volume),
        cmocka_unit_test(test_window_slides),
        cmocka_unit_test(test_stable_never_opens),
        cmocka_unit_test(test_ejection_doubles_and_resets),
        cmocka_unit_test(test_probes_are_granted_again),
        cmocka_unit_test(test_closing_forgets_old_failures),
        cmocka_unit_test(test_many_threads_while_it_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
