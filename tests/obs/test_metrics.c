/* obs/metrics: series interning, per-thread accumulation summed on read, windows, loads. */
#include "obs/metrics.h"
#include "obs/prom.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static int setup(void **state)
{
    (void)state;
    mg_obs_opts_t o = {.metrics = true, .window_seconds = 60, .sample_period_ms = 1000};
    mg_err_t err;
    return mg_obs_init(&o, &err);
}

static int teardown(void **state)
{
    (void)state;
    mg_obs_shutdown();
    return 0;
}

static mg_str_t S(const char *s)
{
    return (mg_str_t){s, strlen(s)};
}

static void test_series_intern(void **state)
{
    (void)state;
    mg_obs_series_t a, b, c, again;
    assert_int_equal(mg_obs_series_find(S("m"), 1, &a), MG_ENOENT);
    assert_int_equal(mg_obs_series_get(S("m"), 1, &a), 0);
    assert_int_equal(mg_obs_series_get(S("m"), 2, &b), 0);
    assert_int_equal(mg_obs_series_get(S("mm"), 1, &c), 0);
    assert_int_not_equal(a, b);
    assert_int_not_equal(a, c);
    assert_int_equal(mg_obs_series_get(S("m"), 1, &again), 0);
    assert_int_equal(again, a);
    assert_int_equal(mg_obs_series_find(S("m"), 2, &again), 0);
    assert_int_equal(again, b);
    assert_int_equal(mg_obs_series_count(), 3);
    assert_string_equal(mg_obs_series_model(c), "mm");
    assert_int_equal(mg_obs_series_version(b), 2);
}

/* One successful request with the phases 10/20/30/40 us and a failure. */
static void test_request_phases(void **state)
{
    (void)state;
    mg_obs_series_t id;
    assert_int_equal(mg_obs_series_get(S("p"), 1, &id), 0);
    mg_obs_request_enter(id);
    mg_obs_series_stats_t st;
    mg_obs_series_read(id, &st);
    assert_int_equal(st.in_flight, 1);
    assert_int_equal(st.pending, 1);
    mg_obs_request_executing(id);
    mg_obs_series_read(id, &st);
    assert_int_equal(st.pending, 0);
    mg_obs_request_t r = {.series = id,
                          .reason = 5,
                          .fail = -1,
                          .batch = 4,
                          .start_ns = 1000000,
                          .exec_ns = 1010000,
                          .infer_ns = 1030000,
                          .output_ns = 1060000,
                          .end_ns = 1100000};
    mg_obs_request_done(&r);
    mg_obs_request_enter(id);
    mg_obs_request_t f = {.series = id,
                          .reason = 5,
                          .fail = MG_OBS_FAIL_BACKEND,
                          .batch = 1,
                          .start_ns = 0,
                          .exec_ns = 1,
                          .infer_ns = 2,
                          .output_ns = 3,
                          .end_ns = 2000000};
    mg_obs_request_done(&f);
    mg_obs_series_read(id, &st);
    assert_int_equal(st.success.count, 1);
    assert_int_equal(st.success.ns, 100000);
    assert_int_equal(st.fail.count, 1);
    assert_int_equal(st.fail_by_reason[MG_OBS_FAIL_BACKEND], 1);
    assert_int_equal(st.queue.ns, 10000);
    assert_int_equal(st.compute_input.ns, 20000);
    assert_int_equal(st.compute_infer.ns, 30000);
    assert_int_equal(st.compute_output.ns, 40000);
    assert_int_equal(st.queue.count, 1);
    assert_int_equal(st.execution_count, 2);
    assert_int_equal(st.inference_count, 5);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.reason_count[5], 2);
    /* 100 us lands in the first bucket (<= 0.1 ms), 2 ms in the one of 2.5 ms. */
    assert_int_equal(st.reason_buckets[5][0], 1);
    assert_int_equal(st.reason_buckets[5][4], 1);
    assert_true(st.last_inference_ms > 0);

    /* Every routing reason has its own count, the kill switch's (the last one) too. */
    mg_obs_request_enter(id);
    mg_obs_request_t k = r;
    k.reason = MG_POLICY_REASON_KILL_SWITCH;
    mg_obs_request_done(&k);
    mg_obs_series_read(id, &st);
    assert_int_equal(st.reason_count[MG_POLICY_REASON_KILL_SWITCH], 1);
    assert_int_equal(st.reason_count[MG_POLICY_REASON_URL], 0);

    mg_obs_batch_stats_t b[4];
    assert_int_equal(mg_obs_series_batches(id, b, 4), 1);
    assert_int_equal(b[0].batch_size, 4);
    assert_int_equal(b[0].compute_infer.count, 2);
    assert_int_equal(b[0].compute_infer.ns, 60000);
}

enum { THREADS = 4, PER_THREAD = 20000 };

static void *hammer(void *arg)
{
    mg_obs_series_t id = *(mg_obs_series_t *)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        mg_obs_request_enter(id);
        mg_obs_request_executing(id);
        mg_obs_request_t r = {.series = id,
                              .reason = i % 8,
                              .fail = -1,
                              .batch = 1 + i % 3,
                              .start_ns = 10,
                              .exec_ns = 20,
                              .infer_ns = 30,
                              .output_ns = 40,
                              .end_ns = 50 + i};
        mg_obs_request_done(&r);
    }
    return NULL;
}

/* Threads record at once while this one reads: sums are exact once they are done. */
static void test_threads_sum(void **state)
{
    (void)state;
    mg_obs_series_t id;
    assert_int_equal(mg_obs_series_get(S("t"), 7, &id), 0);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &id), 0);
    mg_obs_series_stats_t st;
    for (int k = 0; k < 50; k++) {
        mg_obs_series_read(id, &st);
        mg_obs_sample_now();
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    mg_obs_series_read(id, &st);
    assert_int_equal(st.success.count, THREADS * PER_THREAD);
    uint64_t batch_sum = 0;
    for (int i = 0; i < PER_THREAD; i++)
        batch_sum += 1 + i % 3;
    assert_int_equal(st.inference_count, THREADS * batch_sum);
    assert_int_equal(st.in_flight, 0);
    uint64_t by_reason = 0;
    for (int r = 0; r < MG_OBS_REASONS; r++)
        by_reason += st.reason_count[r];
    assert_int_equal(by_reason, THREADS * PER_THREAD);
    mg_obs_batch_stats_t b[8];
    int n = mg_obs_series_batches(id, b, 8);
    assert_int_equal(n, 3);
    uint64_t runs = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(b[i].batch_size, (uint64_t)i + 1);
        runs += b[i].compute_infer.count;
    }
    assert_int_equal(runs, THREADS * PER_THREAD);

    mg_obs_sample_now();
    mg_obs_window_t w;
    uint64_t seq;
    assert_int_equal(mg_obs_series_window(id, &w, &seq), 0);
    assert_true(seq >= 2);
    assert_int_equal(w.requests, THREADS * PER_THREAD);
    assert_true(w.p50_ms > 0 && w.p99_ms >= w.p50_ms);
}

static void test_fine_buckets(void **state)
{
    (void)state;
    assert_int_equal(mg_obs_fine_bucket(0), 0);
    assert_int_equal(mg_obs_fine_bucket(1023), 0);
    for (uint64_t v = 1024; v < ((uint64_t)1 << 36); v = v * 3 / 2 + 7) {
        int i = mg_obs_fine_bucket(v);
        assert_true(v < mg_obs_fine_upper(i));
        assert_true(i == 0 || v >= mg_obs_fine_upper(i - 1));
    }
    assert_int_equal(mg_obs_fine_bucket(UINT64_MAX), MG_OBS_FINE_BUCKETS - 1);
    /* 99 values of ~1 ms and one of ~1 s: p50 near 1 ms, p99 still 1 ms, the max 1 s. */
    uint64_t h[MG_OBS_FINE_BUCKETS] = {0};
    h[mg_obs_fine_bucket(1000000)] = 99;
    h[mg_obs_fine_bucket(1000000000)] = 1;
    uint64_t p50 = mg_obs_fine_quantile(h, 0.5), p99 = mg_obs_fine_quantile(h, 0.99);
    assert_true(p50 > 800000 && p50 < 1250000);
    assert_true(p99 == p50);
    uint64_t p100 = mg_obs_fine_quantile(h, 1.0);
    assert_true(p100 > 800000000 && p100 < 1250000000);
    uint64_t empty[MG_OBS_FINE_BUCKETS] = {0};
    assert_int_equal(mg_obs_fine_quantile(empty, 0.5), 0);
}

static void test_fail_mapping(void **state)
{
    (void)state;
    assert_string_equal(mg_obs_fail_name(mg_obs_fail_of(MG_ERUNTIME)), "BACKEND");
    assert_string_equal(mg_obs_fail_name(mg_obs_fail_of(MG_ETIMEDOUT)), "REJECTED");
    assert_string_equal(mg_obs_fail_name(mg_obs_fail_of(MG_ECANCELED)), "CANCELED");
    assert_string_equal(mg_obs_fail_name(mg_obs_fail_of(MG_ESHAPE)), "OTHER");
}

static int count_loads(void *ctx, const mg_obs_load_stats_t *s)
{
    if (strcmp(s->model, "lm") == 0)
        *(uint64_t *)ctx += s->count;
    return 0;
}

static void test_loads(void **state)
{
    (void)state;
    mg_obs_model_load("lm", 1, MG_OBS_LOAD_SUCCESS, 30000000);
    mg_obs_model_load("lm", 1, MG_OBS_LOAD_SUCCESS, 3000000000);
    mg_obs_model_load("lm", 2, MG_OBS_LOAD_FAILURE, 1000);
    uint64_t n = 0;
    assert_int_equal(mg_obs_loads_foreach(count_loads, NULL, &n), 0);
    assert_int_equal(n, 3);
}

static void test_prom_histogram(void **state)
{
    (void)state;
    mg_buf_t b = {0};
    mg_prom_label_t l[3] = {{"model", "a\"b\\c\nd"}, {"version", "1"}};
    const double bounds[2] = {0.5, 1};
    const uint64_t counts[2] = {1, 2};
    assert_int_equal(mg_prom_family(&b, "x_seconds", "histogram", "help \\ me\nnow"), 0);
    assert_int_equal(mg_prom_histogram(&b, "x_seconds", l, 2, bounds, counts, 2, 4, 1.25), 0);
    assert_int_equal(mg_buf_append(&b, "", 1), 0);
    assert_string_equal(b.data,
                        "# HELP x_seconds help \\\\ me\\nnow\n# TYPE x_seconds histogram\n"
                        "x_seconds_bucket{model=\"a\\\"b\\\\c\\nd\",version=\"1\",le=\"0.5\"} 1\n"
                        "x_seconds_bucket{model=\"a\\\"b\\\\c\\nd\",version=\"1\",le=\"1\"} 3\n"
                        "x_seconds_bucket{model=\"a\\\"b\\\\c\\nd\",version=\"1\",le=\"+Inf\"} 4\n"
                        "x_seconds_sum{model=\"a\\\"b\\\\c\\nd\",version=\"1\"} 1.25\n"
                        "x_seconds_count{model=\"a\\\"b\\\\c\\nd\",version=\"1\"} 4\n");
    mg_buf_free(&b);
}

static void test_disabled(void **state)
{
    (void)state;
    mg_obs_shutdown();
    mg_obs_opts_t o = {.metrics = false};
    mg_err_t err;
    assert_int_equal(mg_obs_init(&o, &err), 0);
    assert_false(mg_obs_enabled());
    mg_obs_series_t id;
    assert_int_equal(mg_obs_series_get(S("m"), 1, &id), MG_EINVAL);
    mg_obs_shutdown();
    o.metrics = true;
    o.window_seconds = 100000;
    assert_int_equal(mg_obs_init(&o, &err), MG_EINVAL);
    o.window_seconds = 60;
    assert_int_equal(mg_obs_init(&o, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_series_intern, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_phases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_sum, setup, teardown),
        cmocka_unit_test(test_fine_buckets),
        cmocka_unit_test(test_fail_mapping),
        cmocka_unit_test_setup_teardown(test_loads, setup, teardown),
        cmocka_unit_test(test_prom_histogram),
        cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
