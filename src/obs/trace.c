/*
 * W3C trace context, span ids, the bounded span queue and the OTLP/HTTP JSON exporter.
 *
 * The queue is a bounded multi-producer queue of fixed cells, each with a sequence number
 * (the classic array queue with per-cell turns): a producer claims a position with one CAS
 * and fills the cell, the exporter thread takes cells in order. A full queue drops the span.
 *
 * OTLP JSON field names used below, from opentelemetry-proto (collector/trace/v1/
 * trace_service.proto, trace/v1/trace.proto, common/v1/common.proto, resource/v1/
 * resource.proto): ExportTraceServiceRequest.resourceSpans; ResourceSpans.resource,
 * .scopeSpans; Resource.attributes; ScopeSpans.scope, .spans; InstrumentationScope.name,
 * .version; Span.traceId, .spanId, .traceState, .parentSpanId, .name, .kind,
 * .startTimeUnixNano, .endTimeUnixNano, .attributes, .status; Status.message, .code;
 * KeyValue.key, .value; AnyValue.stringValue, .intValue.
 */
#include "obs/trace.h"

#include "core/log.h"
#include "obs/ticker.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

typedef struct cell {
    _Atomic size_t seq;
    mg_span_t span;
} cell_t;

static struct {
    atomic_bool enabled;
    double ratio;
    uint64_t ratio_threshold; /* a 64-bit draw below it samples */
    char url[1024];
    char service[128];
    int batch_max, flush_ms, timeout_ms;

    cell_t *cells;
    size_t mask;
    _Atomic size_t enq;
    size_t deq; /* the exporter's */

    mg_ticker_t exporter;
    /* The exporter thread's own. */
    CURL *curl;
    struct curl_slist *headers;
    mg_span_t *batch;
    mg_buf_t body;
    int64_t last_warn;

    _Atomic uint64_t exported, dropped_full, dropped_failed;
} t;

/* ---- ids ---------------------------------------------------------------------------------- */

static _Thread_local uint64_t rng_state;

/* splitmix64 over a per-thread state seeded once from the kernel. */
static uint64_t rng_next(void)
{
    if (rng_state == 0) {
        uint64_t seed = 0;
        if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)&ts;
        }
        rng_state = seed | 1;
    }
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

static void random_bytes(uint8_t *out, size_t n)
{
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t r = rng_next();
            memcpy(out + i, &r, n - i < 8 ? n - i : 8);
        }
    } while (all_zero(out, n));
}

void mg_trace_span_id(uint8_t out[8])
{
    random_bytes(out, 8);
}

void mg_trace_hex(const uint8_t *id, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* upper case is not valid in traceparent */
}

/* Decodes 2n lower-case hex digits. Returns 0 or -1. */
static int unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int mg_trace_parse(const char *v, size_t len, mg_trace_ctx_t *out)
{
    /* version "-" trace-id "-" parent-id "-" flags: 2+1+32+1+16+1+2 = 55 characters. */
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    while (len > 0 && (v[0] == ' ' || v[0] == '\t')) {
        v++;
        len--;
    }
    uint8_t version, flags;
    if (len < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' || unhex(v, &version, 1) != 0)
        return MG_EINVAL;
    if (version == 0xff || (version == 0 && len != 55) ||
        (version != 0 && len > 55 && v[55] != '-'))
        return MG_EINVAL;
    mg_trace_ctx_t c;
    memset(&c, 0, sizeof(c));
    if (unhex(v + 3, c.trace_id, 16) != 0 || unhex(v + 36, c.parent_id, 8) != 0 ||
        unhex(v + 53, &flags, 1) != 0 || all_zero(c.trace_id, 16) || all_zero(c.parent_id, 8))
        return MG_EINVAL;
    c.sampled = (flags & 1) != 0;
    c.has_parent = true;
    *out = c;
    return 0;
}

void mg_trace_begin(mg_trace_ctx_t *ctx, const char *tp, size_t tp_len, const char *xt,
                    size_t xt_len)
{
    if (tp_len == 0 || mg_trace_parse(tp, tp_len, ctx) != 0) {
        memset(ctx, 0, sizeof(*ctx));
        ctx->sampled = t.ratio >= 1.0 || (t.ratio > 0.0 && rng_next() < t.ratio_threshold);
        if (!ctx->sampled)
            return; /* a trace nobody will see: no ids to draw */
        /* An X-Trace-ID that is a W3C trace id names the trace, so both views agree. */
        if (xt_len != 32 || unhex(xt, ctx->trace_id, 16) != 0 || all_zero(ctx->trace_id, 16))
            random_bytes(ctx->trace_id, 16);
    }
    mg_trace_span_id(ctx->span_id);
}

void mg_trace_new(mg_trace_ctx_t *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
    random_bytes(ctx->trace_id, 16);
    mg_trace_span_id(ctx->span_id);
    ctx->sampled = true;
}

void mg_trace_format(const mg_trace_ctx_t *ctx, char out[56])
{
    memcpy(out, "00-", 3);
    mg_trace_hex(ctx->trace_id, 16, out + 3);
    out[35] = '-';
    mg_trace_hex(ctx->span_id, 8, out + 36);
    out[52] = '-';
    out[53] = '0';
    out[54] = ctx->sampled ? '1' : '0';
    out[55] = '\0';
}

/* ---- spans -------------------------------------------------------------------------------- */

void mg_span_attr_str(mg_span_t *s, const char *key, const char *value, size_t len)
{
    if (s->nattrs >= MG_SPAN_ATTRS_MAX)
        return;
    mg_span_attr_t *a = &s->attrs[s->nattrs++];
    snprintf(a->key, sizeof(a->key), "%s", key);
    a->is_int = false;
    if (len >= sizeof(a->sval))
        len = sizeof(a->sval) - 1;
    memcpy(a->sval, value, len);
    a->sval[len] = '\0';
}

void mg_span_attr_int(mg_span_t *s, const char *key, int64_t value)
{
    if (s->nattrs >= MG_SPAN_ATTRS_MAX)
        return;
    mg_span_attr_t *a = &s->attrs[s->nattrs++];
    snprintf(a->key, sizeof(a->key), "%s", key);
    a->is_int = true;
    a->ival = value;
}

bool mg_trace_enabled(void)
{
    return atomic_load_explicit(&t.enabled, memory_order_relaxed);
}

void mg_trace_submit(const mg_span_t *s)
{
    if (!mg_trace_enabled())
        return;
    size_t pos = atomic_load_explicit(&t.enq, memory_order_relaxed);
    cell_t *c;
    for (;;) {
        c = &t.cells[pos & t.mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&t.enq, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (dif < 0) {
            atomic_fetch_add_explicit(&t.dropped_full, 1, memory_order_relaxed);
            return;
        } else {
            pos = atomic_load_explicit(&t.enq, memory_order_relaxed);
        }
    }
    c->span = *s;
    atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
}

/* Exporter: takes the next span, or returns false when none is ready. */
static bool take(mg_span_t *out)
{
    cell_t *c = &t.cells[t.deq & t.mask];
    size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
    if (seq != t.deq + 1)
        return false;
    *out = c->span;
    atomic_store_explicit(&c->seq, t.deq + t.mask + 1, memory_order_release);
    t.deq++;
    return true;
}

void mg_trace_stats(mg_trace_stats_t *out)
{
    out->exported = atomic_load_explicit(&t.exported, memory_order_relaxed);
    out->dropped_queue_full = atomic_load_explicit(&t.dropped_full, memory_order_relaxed);
    out->dropped_export_failed = atomic_load_explicit(&t.dropped_failed, memory_order_relaxed);
}

/* ---- OTLP JSON ---------------------------------------------------------------------------- */

static int put_attr(mg_buf_t *b, const char *key, const mg_span_attr_t *a, const char *sval)
{
    int rc = mg_buf_puts(b, "{\"key\":");
    if (rc == 0)
        rc = mg_buf_json_string(b, key, strlen(key));
    if (rc == 0 && a != NULL && a->is_int)
        return mg_buf_printf(b, ",\"value\":{\"intValue\":\"%lld\"}}", (long long)a->ival);
    if (rc == 0)
        rc = mg_buf_puts(b, ",\"value\":{\"stringValue\":");
    if (rc == 0)
        rc = mg_buf_json_string(b, sval, strlen(sval));
    return rc ? rc : mg_buf_puts(b, "}}");
}

int mg_trace_encode(const mg_span_t *spans, size_t n, const char *service, mg_buf_t *out)
{
    int rc = mg_buf_puts(out, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    if (rc == 0)
        rc = put_attr(out, "service.name", NULL, service);
    if (rc == 0)
        rc = mg_buf_puts(
            out, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"modelgate\",\"version\":\"" MG_VERSION
                 "\"},\"spans\":[");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const mg_span_t *s = &spans[i];
        char trace[33], span[17], parent[17];
        mg_trace_hex(s->trace_id, 16, trace);
        mg_trace_hex(s->span_id, 8, span);
        mg_trace_hex(s->parent_id, 8, parent);
        rc = mg_buf_printf(out, "%s{\"traceId\":\"%s\",\"spanId\":\"%s\"", i ? "," : "", trace,
                           span);
        if (rc == 0 && !all_zero(s->parent_id, 8))
            rc = mg_buf_printf(out, ",\"parentSpanId\":\"%s\"", parent);
        if (rc == 0 && s->trace_state[0] != '\0') {
            rc = mg_buf_puts(out, ",\"traceState\":");
            if (rc == 0)
                rc = mg_buf_json_string(out, s->trace_state, strlen(s->trace_state));
        }
        if (rc == 0)
            rc = mg_buf_puts(out, ",\"name\":");
        if (rc == 0)
            rc = mg_buf_json_string(out, s->name, strlen(s->name));
        if (rc == 0)
            rc = mg_buf_printf(out,
                               ",\"kind\":%d,\"startTimeUnixNano\":\"%lld\","
                               "\"endTimeUnixNano\":\"%lld\",\"attributes\":[",
                               s->kind, (long long)s->start_unix_ns, (long long)s->end_unix_ns);
        for (int k = 0; rc == 0 && k < s->nattrs; k++) {
            if (k > 0)
                rc = mg_buf_puts(out, ",");
            if (rc == 0)
                rc = put_attr(out, s->attrs[k].key, &s->attrs[k], s->attrs[k].sval);
        }
        if (rc == 0)
            rc = mg_buf_printf(out, "],\"status\":{\"code\":%d", s->status);
        if (rc == 0 && s->status_msg[0] != '\0') {
            rc = mg_buf_puts(out, ",\"message\":");
            if (rc == 0)
                rc = mg_buf_json_string(out, s->status_msg, strlen(s->status_msg));
        }
        if (rc == 0)
            rc = mg_buf_puts(out, "}}");
    }
    return rc ? rc : mg_buf_puts(out, "]}]}]}");
}

/* ---- the exporter thread ------------------------------------------------------------------ */

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

/* POSTs one batch; returns true when the collector took it (2xx). */
static bool post(CURL *curl, const mg_buf_t *body, int timeout_ms)
{
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)body->len);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(timeout_ms < 1000 ? timeout_ms : 1000));
    CURLcode cc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    return cc == CURLE_OK && status >= 200 && status < 300;
}

/* Sends everything queued, in batches. Returns once the queue is empty. */
static void flush(int timeout_ms)
{
    for (;;) {
        size_t n = 0;
        while (n < (size_t)t.batch_max && take(&t.batch[n]))
            n++;
        if (n == 0)
            return;
        mg_buf_reset(&t.body);
        bool ok = mg_trace_encode(t.batch, n, t.service, &t.body) == 0 &&
                  post(t.curl, &t.body, timeout_ms);
        atomic_fetch_add_explicit(ok ? &t.exported : &t.dropped_failed, n, memory_order_relaxed);
        if (!ok) {
            /* Once in a while, not per batch: a collector that is down must not flood the log. */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            if (ts.tv_sec - t.last_warn >= 30) {
                t.last_warn = ts.tv_sec;
                mg_log(MG_LOG_WARN, "trace", "export failed url=%s spans=%zu (dropped)", t.url, n);
            }
        }
    }
}

/* The exporter's tick: sends what is queued; at stop, one short last try, the rest dropped. */
static void export_tick(void *ctx, bool last)
{
    (void)ctx;
    if (t.curl != NULL && t.batch != NULL)
        flush(last ? 500 : t.timeout_ms);
    if (!last)
        return;
    mg_span_t one;
    while (take(&one))
        atomic_fetch_add_explicit(&t.dropped_failed, 1, memory_order_relaxed);
}

/* The exporter's resources, made before its thread starts and freed after it stopped. */
static int exporter_open(void)
{
    t.curl = curl_easy_init();
    t.headers = curl_slist_append(NULL, "Content-Type: application/json");
    /* No "Expect: 100-continue" round trip before each batch. */
    t.headers = curl_slist_append(t.headers, "Expect:");
    t.batch = malloc(sizeof(*t.batch) * (size_t)t.batch_max);
    memset(&t.body, 0, sizeof(t.body));
    t.last_warn = -1000;
    if (t.curl == NULL || t.headers == NULL || t.batch == NULL)
        return MG_ENOMEM;
    curl_easy_setopt(t.curl, CURLOPT_URL, t.url);
    curl_easy_setopt(t.curl, CURLOPT_HTTPHEADER, t.headers);
    curl_easy_setopt(t.curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t.curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(t.curl, CURLOPT_USERAGENT, "modelgate/" MG_VERSION);
    return 0;
}

static void exporter_close(void)
{
    mg_buf_free(&t.body);
    free(t.batch);
    t.batch = NULL;
    curl_slist_free_all(t.headers);
    t.headers = NULL;
    if (t.curl != NULL)
        curl_easy_cleanup(t.curl);
    t.curl = NULL;
}

int mg_trace_init(const mg_trace_opts_t *o, mg_err_t *err)
{
    if (mg_trace_enabled() || t.exporter.running)
        return mg_err_set(err, MG_EEXIST, "tracing: already started");
    if (!(o->sample_ratio >= 0.0 && o->sample_ratio <= 1.0))
        return mg_err_set(err, MG_EINVAL, "--trace-sample-ratio wants 0..1, got %g",
                          o->sample_ratio);
    const char *u = o->endpoint != NULL ? o->endpoint : "";
    const char *rest = strncmp(u, "http://", 7) == 0    ? u + 7
                       : strncmp(u, "https://", 8) == 0 ? u + 8
                                                        : NULL;
    if (rest == NULL || rest[0] == '\0' || rest[0] == '/')
        return mg_err_set(err, MG_EINVAL,
                          "--otlp-endpoint wants an http:// or https:// URL, got '%s'", u);
    const char *path = strchr(rest, '/');
    int n = path == NULL || strcmp(path, "/") == 0
                ? snprintf(t.url, sizeof(t.url), "%.*s/v1/traces",
                           (int)(path ? (size_t)(path - u) : strlen(u)), u)
                : snprintf(t.url, sizeof(t.url), "%s", u);
    if (n < 0 || (size_t)n >= sizeof(t.url))
        return mg_err_set(err, MG_EINVAL, "--otlp-endpoint is too long");
    snprintf(t.service, sizeof(t.service), "%s", o->service_name ? o->service_name : "modelgate");
    t.ratio = o->sample_ratio;
    t.ratio_threshold = (uint64_t)(o->sample_ratio * 18446744073709551615.0);
    size_t cap = o->queue_spans > 0 ? (size_t)o->queue_spans : 2048;
    size_t pow2 = 1;
    while (pow2 < cap)
        pow2 <<= 1;
    t.batch_max = o->batch_max > 0 ? o->batch_max : 512;
    t.flush_ms = o->flush_ms > 0 ? o->flush_ms : 200;
    t.timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 2000;
    t.cells = calloc(pow2, sizeof(*t.cells));
    if (t.cells == NULL)
        return mg_err_set(err, MG_ENOMEM, "tracing: out of memory");
    for (size_t i = 0; i < pow2; i++)
        atomic_init(&t.cells[i].seq, i);
    t.mask = pow2 - 1;
    atomic_store(&t.enq, 0);
    t.deq = 0;
    atomic_store(&t.exported, 0);
    atomic_store(&t.dropped_full, 0);
    atomic_store(&t.dropped_failed, 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (exporter_open() != 0 || mg_ticker_start(&t.exporter, t.flush_ms, export_tick, NULL) != 0) {
        exporter_close();
        free(t.cells);
        t.cells = NULL;
        return mg_err_set(err, MG_EIO, "tracing: cannot start the exporter");
    }
    atomic_store(&t.enabled, true);
    mg_log(MG_LOG_INFO, "trace", "exporting url=%s sample_ratio=%g queue=%zu", t.url, t.ratio,
           pow2);
    return 0;
}

void mg_trace_shutdown(void)
{
    if (!t.exporter.running)
        return;
    atomic_store(&t.enabled, false);
    mg_ticker_stop(&t.exporter);
    exporter_close();
    free(t.cells);
    t.cells = NULL;
}
