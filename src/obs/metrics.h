/*
 * Per-request figures, counted per thread and summed when read.
 *
 * A series is one (model, version): interned once (on the control thread when a version is
 * loaded, or on a request thread the first time it serves one) into a small id. Every thread
 * that records owns a private slot per series, laid out in pages of its own (64-byte aligned,
 * allocated once per thread and page); a request adds to its thread's slot with relaxed
 * atomic load+store pairs (plain adds on x86, no lock prefix), so the request path takes no
 * lock and writes no cache line another thread writes. Readers (the /metrics scrape, the
 * statistics endpoints, the window sampler) sum every thread's slot with relaxed loads; a
 * read may see one request's counters half-added, never a torn counter.
 *
 * Once a second the sampler thread keeps a snapshot of each series' window figures, so the
 * canary page can show the last minute (traffic share, rate, p50/p99, error and fallback
 * rates) without touching the request path.
 *
 * The figures follow Triton's statistics extension: success and failure {count, ns}, the
 * queue / compute input / compute infer / compute output phases of successful requests
 * {count, ns}, inference and execution counts, and per batch size the compute phases.
 */
#ifndef MG_OBS_METRICS_H
#define MG_OBS_METRICS_H

#include "core/buf.h"
#include "core/err.h"
#include "route/policy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A (model, version) pair's id: 0 .. mg_obs_series_count()-1. */
typedef uint32_t mg_obs_series_t;

#define MG_OBS_SERIES_MAX 4096
#define MG_OBS_NO_SERIES  UINT32_MAX

/** Why a request failed, with Triton's `reason` label values. */
typedef enum {
    MG_OBS_FAIL_REJECTED = 0, /* deadline passed (before or in its Run), not admitted */
    MG_OBS_FAIL_CANCELED,     /* dropped: shutting down, client gone */
    MG_OBS_FAIL_BACKEND,      /* ONNX Runtime failed to run it, or memory ran out */
    MG_OBS_FAIL_OTHER,        /* anything else: the request did not fit the model */
    MG_OBS_FAIL_COUNT_
} mg_obs_fail_t;

/** Returns "REJECTED", "CANCELED", "BACKEND" or "OTHER". Static. Thread: any. */
const char *mg_obs_fail_name(mg_obs_fail_t f);

/** The failure reason of an MG_E* code that stopped a request after routing. Thread: any. */
mg_obs_fail_t mg_obs_fail_of(int code);

/** Routing reasons counted apart: route/policy.h's mg_policy_reason_t values. */
#define MG_OBS_REASONS MG_POLICY_REASON_COUNT_

/** Buckets of modelgate_request_duration_seconds (upper bounds, seconds), +Inf after. */
#define MG_OBS_LATENCY_BUCKETS 16
extern const double mg_obs_latency_bounds[MG_OBS_LATENCY_BUCKETS];

/** Buckets of requests per ONNX Runtime Run (1, 2, 4, ... 64; more only in the count). */
#define MG_OBS_RUN_REQUEST_BUCKETS 7
extern const double mg_obs_run_request_bounds[MG_OBS_RUN_REQUEST_BUCKETS];

/**
 * The fine latency histogram behind the page's quantiles: bucket 0 holds [0, 1024) ns, then
 * four buckets per power of two (relative width 25 %), the last one open-ended (~68 s).
 */
#define MG_OBS_FINE_BUCKETS 112

/** Returns the fine bucket of `ns`. Thread: any. */
int mg_obs_fine_bucket(uint64_t ns);

/** Returns the upper bound (ns) of fine bucket `i` (UINT64_MAX for the last). Thread: any. */
uint64_t mg_obs_fine_upper(int i);

/** Start-up options. */
typedef struct mg_obs_opts {
    bool metrics;          /* false: nothing is recorded, mg_obs_enabled() says so */
    int window_seconds;    /* the page's window; 0: 60 */
    int sample_period_ms;  /* the sampler's period; 0: 1000 */
    bool prometheus_names; /* expose Triton's figures under Prometheus-style names */
} mg_obs_opts_t;

/**
 * Sets up the process-wide accumulators and starts the sampler thread (when metrics are on).
 * Returns 0, MG_EEXIST (already set up) or MG_ENOMEM / MG_EIO. Thread: start-up, before any
 * request thread records.
 */
int mg_obs_init(const mg_obs_opts_t *opts, mg_err_t *err);

/** Stops the sampler and frees every accumulator. No thread may record. Thread: shutdown. */
void mg_obs_shutdown(void);

/** True when metrics are recorded (mg_obs_init with metrics on). Thread: any. */
bool mg_obs_enabled(void);

/**
 * True when /metrics should name Triton's figures the Prometheus way (modelgate_inference_*,
 * _total counters, seconds) instead of Triton's nv_inference_* names. Thread: any.
 */
bool mg_obs_prometheus_names(void);

/** CLOCK_MONOTONIC now, in ns. Thread: any. */
int64_t mg_obs_now_ns(void);

/** CLOCK_REALTIME of a CLOCK_MONOTONIC time, in ns since the epoch. Thread: any. */
int64_t mg_obs_unix_ns(int64_t mono_ns);

/**
 * The id of (`model`, `version`), interned on first sight: a lock-free lookup, and a short
 * lock only the first time a pair is seen. Returns 0 with *out set, MG_ENOMEM (table full:
 * MG_OBS_SERIES_MAX pairs) or MG_EINVAL (metrics off). Thread: any.
 */
int mg_obs_series_get(mg_str_t model, int64_t version, mg_obs_series_t *out);

/** The id of a pair already seen, without interning; MG_ENOENT when never seen. Thread: any. */
int mg_obs_series_find(mg_str_t model, int64_t version, mg_obs_series_t *out);

/** Number of series interned so far (ids below it are valid). Thread: any. */
uint32_t mg_obs_series_count(void);

/** The model (NUL-terminated, owned by the table) and version of series `id`. Thread: any. */
const char *mg_obs_series_model(mg_obs_series_t id);
int64_t mg_obs_series_version(mg_obs_series_t id);

/** What one request on a version did, as the request core measured it (CLOCK_MONOTONIC ns). */
typedef struct mg_obs_request {
    mg_obs_series_t series;
    int reason;            /* mg_policy_reason_t of the routing decision */
    int fail;              /* -1: succeeded; else mg_obs_fail_t */
    uint64_t batch;        /* first dim of the Run's first input (1 without a batch dim) */
    uint64_t items;        /* of those, the request's own (opportunistic batching); 0: `batch` */
    uint32_t run_requests; /* requests the Run served (opportunistic batching); 0: 1 */
    bool shared_run;       /* the Run is counted by another request of its batch */
    int64_t start_ns;      /* the request arrived */
    int64_t exec_ns;       /* execution started (compute input begins); 0: never ran */
    int64_t infer_ns;      /* ONNX Runtime Run started; 0: never ran */
    int64_t output_ns;     /* Run returned (compute output begins); 0: never ran */
    int64_t end_ns;        /* the response was encoded */
} mg_obs_request_t;

/**
 * Marks a request routed to `series` as in flight (Triton's pending count until it executes).
 * Thread: a request thread; touches only its own slot.
 */
void mg_obs_request_enter(mg_obs_series_t series);

/** Marks the request of `series` entered earlier as executing. Thread: as mg_obs_request_enter. */
void mg_obs_request_executing(mg_obs_series_t series);

/**
 * Records a finished request (entered earlier with mg_obs_request_enter): success or failure,
 * its phases, batch size, routing reason and latency buckets. Thread: the thread that entered
 * it; no lock, no shared write.
 */
void mg_obs_request_done(const mg_obs_request_t *r);

/**
 * Counts a request whose routing chose version `chosen_series` but that was served by
 * another (the stable) version; `replayed`: it ran there first and failed (its failure is
 * recorded with mg_obs_request_done as well). Thread: a request thread.
 */
void mg_obs_fallback(mg_obs_series_t chosen_series, bool replayed);

/** A count and the nanoseconds it took, as Triton's statistics report durations. */
typedef struct mg_obs_duration {
    uint64_t count;
    uint64_t ns;
} mg_obs_duration_t;

/** Everything counted for one series since start, summed over threads. */
typedef struct mg_obs_series_stats {
    uint64_t last_inference_ms; /* ms since the epoch of the last request done; 0: none */
    uint64_t inference_count;   /* batch elements run */
    uint64_t execution_count;   /* Runs */
    mg_obs_duration_t success;  /* requests and their total time, arrival to encoded response */
    mg_obs_duration_t fail;
    mg_obs_duration_t queue; /* successful requests: arrival to execution (decode, routing) */
    mg_obs_duration_t compute_input;  /* validation and input tensors */
    mg_obs_duration_t compute_infer;  /* ONNX Runtime Run */
    mg_obs_duration_t compute_output; /* reading outputs and encoding the response */
    uint64_t fail_by_reason[MG_OBS_FAIL_COUNT_];
    uint64_t in_flight; /* entered and not done */
    uint64_t pending;   /* entered and not executing yet */
    uint64_t fallbacks; /* chosen for this version, served by another */
    uint64_t replayed;  /* of the fallbacks, those that failed here first */
    /* Per routing reason (every request routed here, success or not). */
    uint64_t reason_count[MG_OBS_REASONS];
    uint64_t reason_ns[MG_OBS_REASONS];
    uint64_t reason_buckets[MG_OBS_REASONS][MG_OBS_LATENCY_BUCKETS]; /* not cumulative */
    /* Runs by the requests each served (mg_obs_run_request_bounds, not cumulative), all Runs */
    uint64_t run_request_buckets[MG_OBS_RUN_REQUEST_BUCKETS];
    uint64_t run_requests; /* requests served by those Runs, the histogram's sum */
} mg_obs_series_stats_t;

/** Sums series `id` over every thread into `out`. Returns 0 or MG_ENOENT. Thread: any. */
int mg_obs_series_read(mg_obs_series_t id, mg_obs_series_stats_t *out);

/** One batch size's compute phases (Triton's batch_stats). */
typedef struct mg_obs_batch_stats {
    uint64_t batch_size; /* 0: sizes beyond the MG_OBS_BATCH_SIZES first distinct ones seen */
    mg_obs_duration_t compute_input, compute_infer, compute_output;
} mg_obs_batch_stats_t;

/** Distinct batch sizes counted per thread and series. */
#define MG_OBS_BATCH_SIZES 16

/**
 * Writes series `id`'s batch sizes (summed over threads, ascending, the overflow entry first
 * when there is one) to `out` (room for `cap`) and returns how many, or MG_ENOENT.
 * Thread: any.
 */
int mg_obs_series_batches(mg_obs_series_t id, mg_obs_batch_stats_t *out, int cap);

/** A series' figures over the last window, from the sampler's snapshots. */
typedef struct mg_obs_window {
    double seconds;    /* the span the figures cover (shorter right after start) */
    uint64_t requests; /* success + fail */
    uint64_t failures;
    uint64_t fallbacks;    /* chosen for this version, served by another */
    uint64_t replayed;     /* of the fallbacks, those that failed here first (also in failures) */
    double p50_ms, p99_ms; /* of successful requests; 0 with none */
} mg_obs_window_t;

/**
 * The last window of series `id` as of the sampler's latest snapshot, and that snapshot's
 * sequence number in *seq (may be NULL). Returns 0, or MG_ENOENT (no such series or no
 * snapshot yet: all zero). Thread: any (takes the sampler's lock briefly; never the request
 * path).
 */
int mg_obs_series_window(mg_obs_series_t id, mg_obs_window_t *out, uint64_t *seq);

/** The number of snapshots taken so far (the latest one's sequence number). Thread: any. */
uint64_t mg_obs_window_seq(void);

/** Takes one snapshot now (what the sampler does each period). Thread: any; for tests. */
void mg_obs_sample_now(void);

/** The quantile `q` (0..1) of a fine histogram, in ns (the bucket's upper bound). */
uint64_t mg_obs_fine_quantile(const uint64_t *buckets, double q);

/* ---- model loads and reloads (control thread) --------------------------------------------- */

/** Outcomes of a load: built and ready, failed, or kept (same bytes, same settings). */
typedef enum {
    MG_OBS_LOAD_SUCCESS = 0,
    MG_OBS_LOAD_FAILURE,
    MG_OBS_LOAD_UNCHANGED,
    MG_OBS_LOAD_COUNT_
} mg_obs_load_outcome_t;

/** Returns "success", "failure" or "unchanged". Static. */
const char *mg_obs_load_outcome_name(mg_obs_load_outcome_t o);

/** Buckets of modelgate_model_load_duration_seconds (seconds), +Inf after. */
#define MG_OBS_LOAD_BUCKETS 14
extern const double mg_obs_load_bounds[MG_OBS_LOAD_BUCKETS];

/** Records one version load and how long it took. Thread: any (a lock; loads are rare). */
void mg_obs_model_load(const char *model, int64_t version, mg_obs_load_outcome_t outcome,
                       int64_t duration_ns);

/** Records one repository (re)load of `model` and whether it succeeded. Thread: any. */
void mg_obs_model_reload(const char *model, bool ok);

/** One load histogram, as mg_obs_loads_foreach hands it out. */
typedef struct mg_obs_load_stats {
    const char *model;
    int64_t version;
    mg_obs_load_outcome_t outcome;
    uint64_t count;
    double sum_seconds;
    uint64_t buckets[MG_OBS_LOAD_BUCKETS]; /* not cumulative */
} mg_obs_load_stats_t;

/** One model's reload counts. */
typedef struct mg_obs_reload_stats {
    const char *model;
    uint64_t ok, failed;
} mg_obs_reload_stats_t;

/**
 * Calls `load` for every load histogram and `reload` for every model reloaded, under the
 * table's lock (the callbacks must not record loads). Either may be NULL. Returns the first
 * non-zero callback result, or 0. Thread: any.
 */
int mg_obs_loads_foreach(int (*load)(void *ctx, const mg_obs_load_stats_t *s),
                         int (*reload)(void *ctx, const mg_obs_reload_stats_t *s), void *ctx);

/* ---- gauges plugged in by other modules --------------------------------------------------- */

/**
 * A collector appends Prometheus text (whole families, obs/prom.h) at each scrape; modules
 * that own state the core does not see (the breaker, lifecycle states) register one.
 * Returns 0 or MG_ENOMEM.
 */
typedef int (*mg_obs_collector_fn)(void *ctx, mg_buf_t *out);

/**
 * Registers `fn` to run at every scrape, after the built-in families. Returns 0 or MG_ENOMEM
 * (at most 16). Thread: start-up.
 */
int mg_obs_collector_add(mg_obs_collector_fn fn, void *ctx);

/** Runs every registered collector in order. Returns 0 or the first failure. Thread: any. */
int mg_obs_collectors_run(mg_buf_t *out);

#endif
