/*
 * What operators read about the running server, assembled in one place from the per-request
 * accumulators (obs/metrics.h), the registry and the router, so every front end serves the
 * same figures: the Prometheus exposition of /metrics, the canary page's JSON
 * (/v2/admin/stats), and the debug views of memory and of the live routing state.
 */
#ifndef MG_SERVE_REPORT_H
#define MG_SERVE_REPORT_H

#include "core/buf.h"
#include "serve/serve.h"

/**
 * Appends the Prometheus text exposition (format 0.0.4): Triton's per-model families
 * (nv_inference_*), modelgate's own (request duration histogram by route reason, routing
 * decisions, fallbacks, in-flight, version states, load durations, reloads, routing
 * revision, trace and access-log counts), the process's RSS, descriptors and CPU, and what
 * registered collectors add. Returns 0 or MG_ENOMEM. Thread: any RCU-registered thread,
 * outside a read section.
 */
int mg_report_metrics(mg_serve_t *s, mg_buf_t *out);

/**
 * Appends the canary page's JSON: per model its policy and, per version, state, configured
 * weight and share, the last window's observed share, rate, p50/p99, error and fallback
 * rates, and totals since start. Returns 0 or MG_ENOMEM. Thread: as mg_report_metrics.
 */
int mg_report_stats(mg_serve_t *s, mg_buf_t *out);

/**
 * Appends /debug/memory: the process's RSS and peak, the allocator's figures (glibc
 * mallinfo2), and per loaded version the allocator statistics ONNX Runtime reports for each
 * session. Returns 0 or MG_ENOMEM. Thread: as mg_report_metrics.
 */
int mg_report_memory(mg_serve_t *s, mg_buf_t *out);

/**
 * Appends /debug/config: the live routing snapshot's revision, its route table and the
 * traffic policy in force per model with where it came from. Returns 0 or MG_ENOMEM.
 * Thread: as mg_report_metrics.
 */
int mg_report_config(mg_serve_t *s, mg_buf_t *out);

#endif
