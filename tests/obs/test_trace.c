/* obs/trace: W3C traceparent parsing and continuation, sampling, the OTLP JSON, the queue. */
#include "obs/trace.h"

#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static int parse(const char *s, mg_trace_ctx_t *c)
{
    return mg_trace_parse(s, strlen(s), c);
}

static void test_parse(void **state)
{
    (void)state;
    mg_trace_ctx_t c;
    assert_int_equal(parse(TP, &c), 0);
    assert_true(c.sampled);
    assert_true(c.has_parent);
    char hex[33];
    mg_trace_hex(c.trace_id, 16, hex);
    assert_string_equal(hex, "4bf92f3577b34da6a3ce929d0e0e4736");
    mg_trace_hex(c.parent_id, 8, hex);
    assert_string_equal(hex, "00f067aa0ba902b7");
    assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &c), 0);
    assert_false(c.sampled);
    /* A later version with more fields is read by its first four. */
    assert_int_equal(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz", &c), 0);
    const char *bad[] = {
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   /* upper case */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   /* zero parent */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* version ff */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", /* 00 has 4 fields */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse(bad[i], &c), MG_EINVAL);
}

static void test_begin_and_format(void **state)
{
    (void)state;
    mg_trace_ctx_t c;
    mg_trace_begin(&c, TP, strlen(TP), NULL, 0);
    assert_true(c.sampled && c.has_parent);
    char out[56];
    mg_trace_format(&c, out);
    assert_int_equal(strlen(out), 55);
    assert_memory_equal(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36);
    assert_memory_not_equal(out + 36, "00f067aa0ba902b7", 16); /* our own span */
    assert_string_equal(out + 52, "-01");
    mg_trace_ctx_t back;
    assert_int_equal(parse(out, &back), 0);
    assert_memory_equal(back.parent_id, c.span_id, 8);

    /* Tracing off (ratio 0): a new trace is not sampled and gets no ids. */
    mg_trace_begin(&c, NULL, 0, NULL, 0);
    assert_false(c.sampled || c.has_parent);
    uint8_t zero[16] = {0};
    assert_memory_equal(c.trace_id, zero, 16);
    /* A trace of its own (a load): sampled, fresh ids each time. */
    mg_trace_ctx_t d;
    mg_trace_new(&c);
    mg_trace_new(&d);
    assert_true(c.sampled && !c.has_parent);
    assert_memory_not_equal(c.trace_id, d.trace_id, 16);
    assert_memory_not_equal(c.span_id, zero, 8);
}

/* Ratio 1: without traceparent a 32-hex X-Trace-ID names the trace; anything else, a new id. */
static void test_new_traces(void **state)
{
    (void)state;
    mg_err_t err;
    mg_trace_opts_t o = {.endpoint = "http://127.0.0.1:1", .sample_ratio = 1.0};
    assert_int_equal(mg_trace_init(&o, &err), 0);
    mg_trace_ctx_t c, d;
    const char *xt = "0af7651916cd43dd8448eb211c80319c";
    mg_trace_begin(&c, "junk", 4, xt, strlen(xt));
    assert_true(c.sampled);
    assert_false(c.has_parent);
    char hex[33];
    mg_trace_hex(c.trace_id, 16, hex);
    assert_string_equal(hex, xt);
    mg_trace_begin(&c, NULL, 0, "abc", 3);
    mg_trace_begin(&d, NULL, 0, "abc", 3);
    assert_memory_not_equal(c.trace_id, d.trace_id, 16);
    mg_trace_shutdown();
}

static void test_encode(void **state)
{
    (void)state;
    mg_span_t s;
    memset(&s, 0, sizeof(s));
    mg_trace_ctx_t c;
    assert_int_equal(parse(TP, &c), 0);
    memcpy(s.trace_id, c.trace_id, 16);
    memcpy(s.parent_id, c.parent_id, 8);
    mg_trace_span_id(s.span_id);
    snprintf(s.name, sizeof(s.name), "POST /v2/models/{}/infer");
    s.kind = MG_SPAN_SERVER;
    s.status = MG_SPAN_ERROR;
    snprintf(s.status_msg, sizeof(s.status_msg), "bad \"input\"");
    s.start_unix_ns = 1700000000000000001LL;
    s.end_unix_ns = 1700000000000000002LL;
    mg_span_attr_str(&s, "modelgate.model", "digits", 6);
    mg_span_attr_int(&s, "http.response.status_code", 400);
    mg_buf_t b = {0};
    assert_int_equal(mg_trace_encode(&s, 1, "svc", &b), 0);
    json_error_t je;
    json_t *root = json_loadb(b.data, b.len, 0, &je);
    assert_non_null(root);
    json_t *rs = json_array_get(json_object_get(root, "resourceSpans"), 0);
    json_t *attr =
        json_array_get(json_object_get(json_object_get(rs, "resource"), "attributes"), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(attr, "value"), "stringValue")), "svc");
    json_t *span = json_array_get(
        json_object_get(json_array_get(json_object_get(rs, "scopeSpans"), 0), "spans"), 0);
    assert_string_equal(json_string_value(json_object_get(span, "traceId")),
                        "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(json_string_value(json_object_get(span, "parentSpanId")),
                        "00f067aa0ba902b7");
    assert_int_equal(json_integer_value(json_object_get(span, "kind")), 2);
    assert_string_equal(json_string_value(json_object_get(span, "startTimeUnixNano")),
                        "1700000000000000001");
    json_t *a1 = json_array_get(json_object_get(span, "attributes"), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(a1, "value"), "intValue")), "400");
    json_t *st = json_object_get(span, "status");
    assert_int_equal(json_integer_value(json_object_get(st, "code")), 2);
    assert_string_equal(json_string_value(json_object_get(st, "message")), "bad \"input\"");
    json_decref(root);
    mg_buf_free(&b);
}

static void test_init_validation(void **state)
{
    (void)state;
    mg_err_t err;
    mg_trace_opts_t o = {.endpoint = "ftp://x", .sample_ratio = 0.5};
    assert_int_equal(mg_trace_init(&o, &err), MG_EINVAL);
    assert_non_null(strstr(err.msg, "--otlp-endpoint"));
    o.endpoint = "http://127.0.0.1:1";
    o.sample_ratio = 1.5;
    assert_int_equal(mg_trace_init(&o, &err), MG_EINVAL);
    assert_non_null(strstr(err.msg, "--trace-sample-ratio"));
    assert_false(mg_trace_enabled());
}

/* Ratio 0 samples no new trace, but a sampled parent still decides; a full queue drops. */
static void test_sampling_and_drops(void **state)
{
    (void)state;
    mg_err_t err;
    /* Port 1 on loopback refuses connections: every export fails at once. */
    mg_trace_opts_t o = {
        .endpoint = "http://127.0.0.1:1", .sample_ratio = 0.0, .queue_spans = 4, .flush_ms = 5000};
    assert_int_equal(mg_trace_init(&o, &err), 0);
    mg_trace_ctx_t c;
    for (int i = 0; i < 100; i++) {
        mg_trace_begin(&c, NULL, 0, NULL, 0);
        assert_false(c.sampled);
    }
    mg_trace_begin(&c, TP, strlen(TP), NULL, 0);
    assert_true(c.sampled);
    mg_span_t s;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 10; i++)
        mg_trace_submit(&s);
    mg_trace_stats_t st;
    mg_trace_stats(&st);
    assert_int_equal(st.dropped_queue_full, 6);
    mg_trace_shutdown();
    mg_trace_stats(&st);
    assert_int_equal(st.exported, 0);
    assert_int_equal(st.dropped_export_failed, 4);
}

enum { PRODUCERS = 4, PER_PRODUCER = 2000 };

static void *produce(void *arg)
{
    mg_span_t s;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < PER_PRODUCER; i++) {
        s.start_unix_ns = (int64_t)(intptr_t)arg * PER_PRODUCER + i;
        mg_trace_submit(&s);
    }
    return NULL;
}

/* Producers and the exporter at once: every span is accounted for, exported or dropped. */
static void test_concurrent_producers(void **state)
{
    (void)state;
    mg_err_t err;
    mg_trace_opts_t o = {.endpoint = "http://127.0.0.1:1",
                         .sample_ratio = 1.0,
                         .queue_spans = 64,
                         .batch_max = 16,
                         .flush_ms = 1,
                         .timeout_ms = 200};
    assert_int_equal(mg_trace_init(&o, &err), 0);
    pthread_t th[PRODUCERS];
    for (intptr_t i = 0; i < PRODUCERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, produce, (void *)i), 0);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    mg_trace_shutdown();
    mg_trace_stats_t st;
    mg_trace_stats(&st);
    assert_int_equal(st.exported, 0);
    assert_int_equal(st.dropped_queue_full + st.dropped_export_failed, PRODUCERS * PER_PRODUCER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_begin_and_format),
        cmocka_unit_test(test_new_traces),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_init_validation),
        cmocka_unit_test(test_sampling_and_drops),
        cmocka_unit_test(test_concurrent_producers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
