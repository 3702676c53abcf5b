/*
 * The circuit breaker of one model version: closed, open or half-open.
 *
 * Closed: every request may go to the version; it opens on `consecutive_failures` server-side
 * failures in a row, or when server-side failures reach `failure_ratio` of the requests of the
 * last `window_ms` once at least `min_requests` were seen. Open: the version is ejected (the
 * caller sends its traffic elsewhere) for an ejection time that doubles with each trip in a
 * row (`ejection_ms`, 2x, 4x, ... up to `max_ejection_ms`; back to `ejection_ms` once the
 * breaker stayed closed for `max_ejection_ms`). Half-open: after the ejection, `probes`
 * requests are let through; that many successes close it, one failure opens it again.
 * Client errors are never recorded; the caller says which outcomes are server-side.
 *
 * The per-request cost in the closed state: mg_breaker_allow reads the state word (a shared
 * line nobody writes while closed); mg_breaker_record adds one count to the calling thread's
 * own stripe (16 stripes of 64-byte lines, one per thread until there are more than 16
 * threads) and reads the failure streak, which is written only on a failure and on the first
 * success after one. No lock anywhere. The sliding window is 10 buckets per stripe, each one
 * 64-bit word (bucket epoch, successes, failures), summed over the stripes only on a failure.
 * Per-thread stripes rather than one shared counter: a shared counter would move its cache line
 * between cores on every request; stripes rather than a thread registry: threads need no
 * set-up (gRPC and future pools take a stripe on their first request).
 *
 * The breaker knows nothing about models or policies: the request core decides which version
 * is stable (never ejected) and logs the transitions mg_breaker_record reports.
 */
#ifndef MG_ROUTE_BREAKER_H
#define MG_ROUTE_BREAKER_H

#include "core/err.h"

#include <stdbool.h>
#include <stdint.h>

/**
 * Settings (config.json "breaker", every field optional):
 *   {"consecutive_failures": 5,   0..1000000, 0: off
 *    "failure_ratio": 0.5,        0..1, 0: off
 *    "window_ms": 10000,          100..3600000
 *    "min_requests": 20,          1..1000000
 *    "ejection_ms": 5000,         1..3600000
 *    "max_ejection_ms": 60000,    ejection_ms..86400000
 *    "probes": 3}                 1..1000
 * Plain data without padding, so configs compare with memcmp.
 */
typedef struct mg_breaker_config {
    double failure_ratio;
    int32_t consecutive_failures;
    int32_t window_ms;
    int32_t min_requests;
    int32_t ejection_ms;
    int32_t max_ejection_ms;
    int32_t probes;
} mg_breaker_config_t;

/** Fills `cfg` with the defaults above. Thread: any. */
void mg_breaker_config_default(mg_breaker_config_t *cfg);

/**
 * Parses the JSON object above into `cfg` (starting from the defaults). Unknown fields, values
 * of the wrong type or out of range are refused, naming the field ("'probes' must be an integer
 * from 1 to 1000"); messages carry no prefix. Returns 0, or MG_EINVAL with `err` filled and
 * `cfg` untouched. Thread: any.
 */
int mg_breaker_config_parse(const char *json, size_t len, mg_breaker_config_t *cfg, mg_err_t *err);

typedef enum {
    MG_BREAKER_CLOSED = 0,
    MG_BREAKER_OPEN,
    MG_BREAKER_HALF_OPEN,
} mg_breaker_state_t;

/** Returns "closed", "open" or "half-open". Static. Thread: any. */
const char *mg_breaker_state_name(mg_breaker_state_t s);

/** Why a breaker last opened. */
typedef enum {
    MG_BREAKER_TRIP_NONE = 0,
    MG_BREAKER_TRIP_CONSECUTIVE, /* consecutive_failures in a row */
    MG_BREAKER_TRIP_RATIO,       /* failure_ratio over the window */
    MG_BREAKER_TRIP_PROBE,       /* a half-open probe failed */
    MG_BREAKER_TRIP_LOAD,        /* the version failed to load (reported by callers, see below) */
} mg_breaker_trip_t;

/** Returns "none", "consecutive-failures", "failure-ratio", "probe-failed", "load-failed". */
const char *mg_breaker_trip_name(mg_breaker_trip_t t);

typedef struct mg_breaker mg_breaker_t;

/**
 * Creates a closed breaker with `cfg` (copied; it never changes afterwards). Returns 0 or
 * MG_ENOMEM. Ownership: the caller frees it with mg_breaker_free. Thread: any.
 */
int mg_breaker_new(mg_breaker_t **out, const mg_breaker_config_t *cfg);

/** Frees the breaker; no thread may use it any more. Accepts NULL. */
void mg_breaker_free(mg_breaker_t *b);

/** The settings the breaker was made with. Thread: any. */
const mg_breaker_config_t *mg_breaker_config(const mg_breaker_t *b);

/** CLOCK_MONOTONIC_COARSE in nanoseconds: the clock the callers pass as `now_ns`. Thread: any. */
int64_t mg_breaker_now(void);

/** What mg_breaker_allow decided. */
typedef enum {
    MG_BREAKER_DENY = 0, /* ejected: send the request elsewhere */
    MG_BREAKER_ALLOW,    /* closed */
    MG_BREAKER_PROBE,    /* half-open, and this request is one of the probes */
} mg_breaker_decision_t;

/**
 * May a request go to this version now? Closed: ALLOW. Open: DENY until the ejection time
 * is over, then the breaker turns half-open and the first `probes` callers get PROBE (the
 * rest DENY; if probes granted get no recorded outcome within `ejection_ms`, new ones are
 * granted). `now_ns` 0: the breaker reads mg_breaker_now() itself, and only when it is not
 * closed (a closed breaker costs one load). Lock-free. Thread: any.
 */
mg_breaker_decision_t mg_breaker_allow(mg_breaker_t *b, int64_t now_ns);

/** A request's outcome as the breaker counts it; client errors are not recorded at all. */
typedef enum {
    MG_BREAKER_SUCCESS = 0,
    MG_BREAKER_FAILURE, /* server-side */
} mg_breaker_outcome_t;

/** A state change a record caused, for the caller to log. */
typedef enum {
    MG_BREAKER_EVENT_NONE = 0,
    MG_BREAKER_EVENT_OPENED,
    MG_BREAKER_EVENT_CLOSED,
} mg_breaker_event_t;

/**
 * Records one request that ran on the version. With `may_open` false (the version served as
 * the stable one, which is never ejected) the outcome is counted but cannot open the breaker.
 * Returns the transition this record caused, at most one caller seeing each. Lock-free; in the
 * closed state a success writes only the calling thread's stripe. Thread: any.
 */
mg_breaker_event_t mg_breaker_record(mg_breaker_t *b, mg_breaker_outcome_t outcome, bool may_open,
                                     int64_t now_ns);

/** What the observability side reads. */
typedef struct mg_breaker_status {
    mg_breaker_state_t state;
    mg_breaker_trip_t last_trip; /* why it last opened (NONE: never) */
    uint64_t trips;              /* times it opened */
    int consecutive_trips;       /* trips in a row without staying closed (ejection doubling) */
    int consecutive_failures;    /* the current server-side failure streak */
    int64_t ejection_ms;         /* the current (or last) ejection time */
    int64_t reopen_in_ms;        /* open: time left until probes are let through; else 0 */
    uint64_t window_requests;    /* recorded outcomes in the sliding window */
    uint64_t window_failures;    /* of which server-side failures */
} mg_breaker_status_t;

/**
 * Reads the breaker's state and counters into `out`. The fields are read one by one without a
 * lock, so under concurrent traffic they may be a moment apart. Thread: any.
 */
void mg_breaker_read(const mg_breaker_t *b, int64_t now_ns, mg_breaker_status_t *out);

#endif
