/*
 * Traces: W3C Trace Context (`traceparent`, `tracestate`) read and continued, spans exported
 * over OTLP/HTTP with the JSON encoding (the OTLP specification's "JSON Protobuf Encoding":
 * field names of opentelemetry-proto's trace.proto and common.proto in lowerCamelCase, trace
 * and span ids as lower-case hex, enums as integers, 64-bit integers as decimal strings).
 *
 * Sampling is parent-based: a request with a valid `traceparent` follows its sampled flag; a
 * request without one starts a trace that is sampled with the configured ratio. Sampled spans
 * are copied into a bounded lock-free queue; one exporter thread batches them and POSTs them
 * to the collector. When the queue is full or the collector is slow or down, spans are
 * dropped and counted; a request never waits for the exporter.
 */
#ifndef MG_OBS_TRACE_H
#define MG_OBS_TRACE_H

#include "core/buf.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Start-up options. */
typedef struct mg_trace_opts {
    const char *endpoint;     /* OTLP/HTTP traces URL; a URL without a path gets /v1/traces */
    double sample_ratio;      /* 0..1, for traces this server starts */
    const char *service_name; /* resource service.name; NULL: "modelgate" */
    int queue_spans;          /* bounded queue capacity (power of two); 0: 2048 */
    int batch_max;            /* spans per export; 0: 512 */
    int flush_ms;             /* export period; 0: 200 */
    int timeout_ms;           /* per export request; 0: 2000 */
} mg_trace_opts_t;

/**
 * Starts tracing and the exporter thread. Returns 0, MG_EINVAL (ratio outside 0..1, an
 * endpoint that is not an http:// or https:// URL) with `err` naming it, MG_EEXIST, or
 * MG_ENOMEM / MG_EIO. Thread: start-up.
 */
int mg_trace_init(const mg_trace_opts_t *opts, mg_err_t *err);

/** Flushes what is queued (one short attempt), stops the exporter. Thread: shutdown. */
void mg_trace_shutdown(void);

/** True when tracing was started. Thread: any. */
bool mg_trace_enabled(void);

/** One request's place in a trace. */
typedef struct mg_trace_ctx {
    uint8_t trace_id[16];
    uint8_t parent_id[8]; /* the caller's span; all zero when this server started the trace */
    uint8_t span_id[8];   /* this request's server span */
    bool sampled;
    bool has_parent;
} mg_trace_ctx_t;

/**
 * Parses a `traceparent` value (version 00 exactly; a higher version by its first four
 * fields, as the W3C recommendation asks). Returns 0, or MG_EINVAL for anything malformed,
 * an all-zero trace or parent id, or version ff. Fills trace_id, parent_id, sampled,
 * has_parent. Thread: any.
 */
int mg_trace_parse(const char *value, size_t len, mg_trace_ctx_t *out);

/**
 * Decides the trace of a request: continues a valid `traceparent` (its sampled flag
 * decides), else starts a trace (its id taken from `x_trace_id` when that is 32 hex digits,
 * else random) sampled with the configured ratio; draws the server span's id. A new trace left
 * unsampled gets no ids (all zero): nothing will show it. Thread: any.
 */
void mg_trace_begin(mg_trace_ctx_t *ctx, const char *traceparent, size_t tp_len,
                    const char *x_trace_id, size_t xt_len);

/** Starts a new sampled trace of its own (a root span, e.g. a model load). Thread: any. */
void mg_trace_new(mg_trace_ctx_t *ctx);

/** Writes the response's `traceparent` (55 characters and a NUL) for `ctx`. Thread: any. */
void mg_trace_format(const mg_trace_ctx_t *ctx, char out[56]);

/** Writes `n` bytes as 2n lower-case hex digits and a NUL. Thread: any. */
void mg_trace_hex(const uint8_t *id, size_t n, char *out);

/** Draws a random non-zero span id. Thread: any (a per-thread generator). */
void mg_trace_span_id(uint8_t out[8]);

#define MG_SPAN_ATTRS_MAX 14

/** One span attribute: a string or an integer. */
typedef struct mg_span_attr {
    char key[40];
    bool is_int;
    int64_t ival;
    char sval[112];
} mg_span_attr_t;

/** OTLP SpanKind values (trace.proto). */
enum { MG_SPAN_INTERNAL = 1, MG_SPAN_SERVER = 2 };

/** OTLP Status.code values. */
enum { MG_SPAN_UNSET = 0, MG_SPAN_OK = 1, MG_SPAN_ERROR = 2 };

/** A finished span, plain data (copied into the queue). */
typedef struct mg_span {
    uint8_t trace_id[16], span_id[8], parent_id[8]; /* parent all zero: a root span */
    char name[64];
    int kind;
    int status;
    char status_msg[128];
    char trace_state[256];
    int64_t start_unix_ns, end_unix_ns;
    int nattrs;
    mg_span_attr_t attrs[MG_SPAN_ATTRS_MAX];
} mg_span_t;

/** Adds a string attribute (`len` bytes, cut to fit); ignored past MG_SPAN_ATTRS_MAX. */
void mg_span_attr_str(mg_span_t *s, const char *key, const char *value, size_t len);

/** Adds an integer attribute; ignored past MG_SPAN_ATTRS_MAX. */
void mg_span_attr_int(mg_span_t *s, const char *key, int64_t value);

/**
 * Queues a copy of `s` for export. Never blocks: when the queue is full the span is dropped
 * and counted. Does nothing when tracing is off. Thread: any.
 */
void mg_trace_submit(const mg_span_t *s);

/** Export counts since start. */
typedef struct mg_trace_stats {
    uint64_t exported;
    uint64_t dropped_queue_full;
    uint64_t dropped_export_failed;
} mg_trace_stats_t;

/** Reads the counts. Thread: any. */
void mg_trace_stats(mg_trace_stats_t *out);

/**
 * Appends the OTLP JSON ExportTraceServiceRequest for `spans` with resource `service`.
 * Returns 0 or MG_ENOMEM. Thread: any.
 */
int mg_trace_encode(const mg_span_t *spans, size_t n, const char *service, mg_buf_t *out);

#endif
