#include "route/breaker.h"

#include "core/jsonx.h"

#include <jansson.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STRIPES     16
#define BUCKETS     10 /* the window is 10 buckets of window_ms / 10 */
#define COUNT_BITS  20
#define COUNT_MAX   ((UINT64_C(1) << COUNT_BITS) - 1)
#define EPOCH_SHIFT (2 * COUNT_BITS)
#define EPOCH_MASK  ((UINT64_C(1) << 24) - 1)

/*
 * Internal states on top of the public three: a transition first claims the state word with a
 * CAS to OPENING or CLOSING, sets the fields that go with the new state, then stores the new
 * state with release order, so a thread that sees OPEN also sees its ejection deadline.
 */
enum { OPENING = 3, CLOSING = 4 };

/* One thread's counts: BUCKETS words of (epoch:24, successes:20, failures:20), own cache lines. */
typedef struct stripe {
    alignas(64) _Atomic uint64_t bucket[BUCKETS];
} stripe_t;

struct mg_breaker {
    mg_breaker_config_t cfg; /* immutable */
    int64_t bucket_ns;
    /* Read by every request; written only on failures and transitions. */
    alignas(64) atomic_int state;
    atomic_int streak; /* server-side failures in a row */
    /* Written on transitions only. */
    alignas(64) _Atomic int64_t open_until_ns;
    _Atomic int64_t half_open_since_ns;
    _Atomic int64_t closed_since_ns;
    _Atomic int64_t ejection_ms;
    _Atomic uint64_t trips;
    _Atomic uint64_t floor_epoch; /* the window counts buckets from this epoch on (set on close) */
    atomic_int probes_granted;
    atomic_int probes_ok;
    atomic_int consecutive_trips;
    atomic_int last_trip;
    stripe_t stripes[STRIPES];
};

/* ---- settings ----------------------------------------------------------------------------- */

void mg_breaker_config_default(mg_breaker_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->consecutive_failures = 5;
    cfg->failure_ratio = 0.5;
    cfg->window_ms = 10000;
    cfg->min_requests = 20;
    cfg->ejection_ms = 5000;
    cfg->max_ejection_ms = 60000;
    cfg->probes = 3;
}

static int get_int(json_t *obj, const char *key, int64_t min, int64_t max, int32_t *out,
                   mg_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return mg_err_set(err, MG_EINVAL, "'%s' must be an integer from %lld to %lld", key,
                          (long long)min, (long long)max);
    *out = (int32_t)json_integer_value(v);
    return 0;
}

int mg_breaker_config_parse(const char *json, size_t len, mg_breaker_config_t *out, mg_err_t *err)
{
    static const char *const known[] = {
        "consecutive_failures", "failure_ratio",   "window_ms", "min_requests",
        "ejection_ms",          "max_ejection_ms", "probes"};
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (root == NULL)
        return mg_err_set(err, MG_EINVAL, "line %d column %d: %s", jerr.line, jerr.column,
                          jerr.text);
    mg_breaker_config_t c;
    mg_breaker_config_default(&c);
    int rc = MG_EINVAL;
    const char *unknown;
    json_t *v;
    if (!json_is_object(root)) {
        mg_err_set(err, MG_EINVAL, "must be an object such as {\"consecutive_failures\": 5}");
        goto out;
    }
    if ((unknown = mg_jsonx_unknown_field(root, known, sizeof(known) / sizeof(known[0]))) != NULL) {
        mg_err_set(err, MG_EINVAL, "unknown field '%s'", unknown);
        goto out;
    }
    if (get_int(root, "consecutive_failures", 0, 1000000, &c.consecutive_failures, err) != 0 ||
        get_int(root, "window_ms", 100, 3600000, &c.window_ms, err) != 0 ||
        get_int(root, "min_requests", 1, 1000000, &c.min_requests, err) != 0 ||
        get_int(root, "ejection_ms", 1, 3600000, &c.ejection_ms, err) != 0 ||
        get_int(root, "probes", 1, 1000, &c.probes, err) != 0)
        goto out;
    /* The cap defaults to the larger of its default and the ejection asked for. */
    if (c.max_ejection_ms < c.ejection_ms)
        c.max_ejection_ms = c.ejection_ms;
    if (get_int(root, "max_ejection_ms", c.ejection_ms, 86400000, &c.max_ejection_ms, err) != 0)
        goto out;
    if ((v = json_object_get(root, "failure_ratio")) != NULL) {
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1) {
            mg_err_set(err, MG_EINVAL, "'failure_ratio' must be a number from 0 to 1");
            goto out;
        }
        c.failure_ratio = json_number_value(v);
    }
    *out = c;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

const char *mg_breaker_state_name(mg_breaker_state_t s)
{
    static const char *const names[] = {"closed", "open", "half-open"};
    return (unsigned)s < 3 ? names[s] : "closed";
}

const char *mg_breaker_trip_name(mg_breaker_trip_t t)
{
    static const char *const names[] = {"none", "consecutive-failures", "failure-ratio",
                                        "probe-failed", "load-failed"};
    return (unsigned)t < 5 ? names[t] : "none";
}

/* ---- the breaker -------------------------------------------------------------------------- */

int64_t mg_breaker_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t epoch_of(const mg_breaker_t *b, int64_t now_ns)
{
    return (uint64_t)(now_ns / b->bucket_ns) & EPOCH_MASK;
}

int mg_breaker_new(mg_breaker_t **out, const mg_breaker_config_t *cfg)
{
    mg_breaker_t *b = aligned_alloc(64, sizeof(*b));
    if (b == NULL)
        return MG_ENOMEM;
    memset(b, 0, sizeof(*b));
    b->cfg = *cfg;
    b->bucket_ns = (int64_t)cfg->window_ms * 1000000 / BUCKETS;
    if (b->bucket_ns <= 0)
        b->bucket_ns = 1;
    int64_t now = mg_breaker_now();
    atomic_init(&b->state, MG_BREAKER_CLOSED);
    atomic_init(&b->streak, 0);
    atomic_init(&b->open_until_ns, 0);
    atomic_init(&b->half_open_since_ns, 0);
    atomic_init(&b->closed_since_ns, now);
    atomic_init(&b->ejection_ms, 0);
    atomic_init(&b->trips, 0);
    atomic_init(&b->floor_epoch, epoch_of(b, now));
    atomic_init(&b->probes_granted, 0);
    atomic_init(&b->probes_ok, 0);
    atomic_init(&b->consecutive_trips, 0);
    atomic_init(&b->last_trip, MG_BREAKER_TRIP_NONE);
    for (int s = 0; s < STRIPES; s++)
        for (int i = 0; i < BUCKETS; i++)
            atomic_init(&b->stripes[s].bucket[i], 0);
    *out = b;
    return 0;
}

void mg_breaker_free(mg_breaker_t *b)
{
    free(b);
}

const mg_breaker_config_t *mg_breaker_config(const mg_breaker_t *b)
{
    return &b->cfg;
}

/* The calling thread's stripe: handed out round robin on a thread's first record. */
static stripe_t *my_stripe(mg_breaker_t *b)
{
    static atomic_uint next;
    static _Thread_local unsigned mine = UINT32_MAX;
    if (mine == UINT32_MAX)
        mine = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed) % STRIPES;
    return &b->stripes[mine];
}

/* Adds one outcome to the current bucket of this thread's stripe (saturating). */
static void count(mg_breaker_t *b, bool failure, int64_t now_ns)
{
    uint64_t epoch = epoch_of(b, now_ns);
    _Atomic uint64_t *slot = &my_stripe(b)->bucket[epoch % BUCKETS];
    uint64_t cur = atomic_load_explicit(slot, memory_order_relaxed);
    for (;;) {
        uint64_t ok = 0, fail = 0;
        if ((cur >> EPOCH_SHIFT) == epoch) {
            ok = (cur >> COUNT_BITS) & COUNT_MAX;
            fail = cur & COUNT_MAX;
        }
        if (failure)
            fail += fail < COUNT_MAX;
        else
            ok += ok < COUNT_MAX;
        uint64_t next = epoch << EPOCH_SHIFT | ok << COUNT_BITS | fail;
        if (atomic_compare_exchange_weak_explicit(slot, &cur, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            return;
    }
}

/* Sums the buckets of every stripe inside the window and not before the floor. */
static void window_sum(const mg_breaker_t *b, int64_t now_ns, uint64_t *total, uint64_t *failures)
{
    uint64_t epoch = epoch_of(b, now_ns);
    uint64_t floor = atomic_load_explicit(&b->floor_epoch, memory_order_relaxed);
    bool use_floor = ((epoch - floor) & EPOCH_MASK) < BUCKETS;
    uint64_t ok = 0, fail = 0;
    for (int s = 0; s < STRIPES; s++) {
        for (int i = 0; i < BUCKETS; i++) {
            uint64_t v = atomic_load_explicit(&b->stripes[s].bucket[i], memory_order_relaxed);
            uint64_t e = v >> EPOCH_SHIFT;
            if (v == 0 || ((epoch - e) & EPOCH_MASK) >= BUCKETS)
                continue;
            if (use_floor && ((e - floor) & EPOCH_MASK) >= BUCKETS)
                continue;
            ok += (v >> COUNT_BITS) & COUNT_MAX;
            fail += v & COUNT_MAX;
        }
    }
    *total = ok + fail;
    *failures = fail;
}

/* Opens the breaker from state `from` (CLOSED or HALF_OPEN); one caller wins. */
static mg_breaker_event_t trip(mg_breaker_t *b, int from, mg_breaker_trip_t why, int64_t now_ns)
{
    int expected = from;
    if (!atomic_compare_exchange_strong_explicit(&b->state, &expected, OPENING,
                                                 memory_order_acq_rel, memory_order_relaxed))
        return MG_BREAKER_EVENT_NONE;
    const mg_breaker_config_t *c = &b->cfg;
    int k = atomic_load_explicit(&b->consecutive_trips, memory_order_relaxed);
    /* Closed for a whole maximum ejection since the last trip: the doubling starts over. */
    if (from == MG_BREAKER_CLOSED &&
        now_ns - atomic_load_explicit(&b->closed_since_ns, memory_order_relaxed) >=
            (int64_t)c->max_ejection_ms * 1000000)
        k = 0;
    k++;
    int64_t ejection = c->ejection_ms;
    for (int i = 1; i < k && ejection < c->max_ejection_ms; i++)
        ejection *= 2;
    if (ejection > c->max_ejection_ms)
        ejection = c->max_ejection_ms;
    int64_t until = now_ns + ejection * 1000000;
    atomic_store_explicit(&b->consecutive_trips, k, memory_order_relaxed);
    atomic_store_explicit(&b->ejection_ms, ejection, memory_order_relaxed);
    atomic_store_explicit(&b->open_until_ns, until, memory_order_relaxed);
    atomic_store_explicit(&b->half_open_since_ns, until, memory_order_relaxed);
    atomic_store_explicit(&b->probes_granted, 0, memory_order_relaxed);
    atomic_store_explicit(&b->probes_ok, 0, memory_order_relaxed);
    atomic_store_explicit(&b->last_trip, why, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->trips, 1, memory_order_relaxed);
    atomic_store_explicit(&b->state, MG_BREAKER_OPEN, memory_order_release);
    return MG_BREAKER_EVENT_OPENED;
}

/* Closes a half-open breaker once enough probes succeeded; one caller wins. */
static mg_breaker_event_t close_breaker(mg_breaker_t *b, int64_t now_ns)
{
    int expected = MG_BREAKER_HALF_OPEN;
    if (!atomic_compare_exchange_strong_explicit(&b->state, &expected, CLOSING,
                                                 memory_order_acq_rel, memory_order_relaxed))
        return MG_BREAKER_EVENT_NONE;
    /* Failures from before the trip must not count against the version again. */
    atomic_store_explicit(&b->floor_epoch, (epoch_of(b, now_ns) + 1) & EPOCH_MASK,
                          memory_order_relaxed);
    atomic_store_explicit(&b->streak, 0, memory_order_relaxed);
    atomic_store_explicit(&b->closed_since_ns, now_ns, memory_order_relaxed);
    atomic_store_explicit(&b->state, MG_BREAKER_CLOSED, memory_order_release);
    return MG_BREAKER_EVENT_CLOSED;
}

mg_breaker_decision_t mg_breaker_allow(mg_breaker_t *b, int64_t now_ns)
{
    int s = atomic_load_explicit(&b->state, memory_order_acquire);
    if (s == MG_BREAKER_CLOSED || s == CLOSING)
        return MG_BREAKER_ALLOW;
    if (s == OPENING)
        return MG_BREAKER_DENY;
    if (now_ns == 0)
        now_ns = mg_breaker_now();
    if (s == MG_BREAKER_OPEN) {
        if (now_ns < atomic_load_explicit(&b->open_until_ns, memory_order_relaxed))
            return MG_BREAKER_DENY;
        /* The ejection is over: whoever gets here first turns it half-open. */
        int expected = MG_BREAKER_OPEN;
        atomic_compare_exchange_strong_explicit(&b->state, &expected, MG_BREAKER_HALF_OPEN,
                                                memory_order_acq_rel, memory_order_acquire);
        if (expected != MG_BREAKER_OPEN && expected != MG_BREAKER_HALF_OPEN)
            return expected == OPENING ? MG_BREAKER_DENY : MG_BREAKER_ALLOW;
    }
    /* Half-open: the first `probes` callers go through. */
    int probes = b->cfg.probes;
    if (atomic_load_explicit(&b->probes_granted, memory_order_relaxed) < probes &&
        atomic_fetch_add_explicit(&b->probes_granted, 1, memory_order_relaxed) < probes)
        return MG_BREAKER_PROBE;
    /* Probes that never reported (client errors, cancelled requests): grant new ones. */
    int64_t since = atomic_load_explicit(&b->half_open_since_ns, memory_order_relaxed);
    if (now_ns - since > (int64_t)b->cfg.ejection_ms * 1000000 &&
        atomic_compare_exchange_strong_explicit(&b->half_open_since_ns, &since, now_ns,
                                                memory_order_relaxed, memory_order_relaxed)) {
        atomic_store_explicit(&b->probes_granted, 1, memory_order_relaxed);
        return MG_BREAKER_PROBE;
    }
    return MG_BREAKER_DENY;
}

mg_breaker_event_t mg_breaker_record(mg_breaker_t *b, mg_breaker_outcome_t outcome, bool may_open,
                                     int64_t now_ns)
{
    bool failure = outcome == MG_BREAKER_FAILURE;
    count(b, failure, now_ns);
    int s = atomic_load_explicit(&b->state, memory_order_acquire);
    if (!failure) {
        /* Read first: in the healthy steady state the streak is 0 and the line stays shared. */
        if (atomic_load_explicit(&b->streak, memory_order_relaxed) != 0)
            atomic_store_explicit(&b->streak, 0, memory_order_relaxed);
        if (s == MG_BREAKER_HALF_OPEN &&
            atomic_fetch_add_explicit(&b->probes_ok, 1, memory_order_relaxed) + 1 >= b->cfg.probes)
            return close_breaker(b, now_ns);
        return MG_BREAKER_EVENT_NONE;
    }
    int streak = atomic_fetch_add_explicit(&b->streak, 1, memory_order_relaxed) + 1;
    if (!may_open)
        return MG_BREAKER_EVENT_NONE;
    if (s == MG_BREAKER_HALF_OPEN)
        return trip(b, MG_BREAKER_HALF_OPEN, MG_BREAKER_TRIP_PROBE, now_ns);
    if (s != MG_BREAKER_CLOSED)
        return MG_BREAKER_EVENT_NONE;
    const mg_breaker_config_t *c = &b->cfg;
    if (c->consecutive_failures > 0 && streak >= c->consecutive_failures)
        return trip(b, MG_BREAKER_CLOSED, MG_BREAKER_TRIP_CONSECUTIVE, now_ns);
    if (c->failure_ratio > 0) {
        uint64_t total, failures;
        window_sum(b, now_ns, &total, &failures);
        if (total >= (uint64_t)c->min_requests && (double)failures >= c->failure_ratio * total)
            return trip(b, MG_BREAKER_CLOSED, MG_BREAKER_TRIP_RATIO, now_ns);
    }
    return MG_BREAKER_EVENT_NONE;
}

void mg_breaker_read(const mg_breaker_t *b, int64_t now_ns, mg_breaker_status_t *out)
{
    memset(out, 0, sizeof(*out));
    int s = atomic_load_explicit(&b->state, memory_order_acquire);
    out->state = s == OPENING   ? MG_BREAKER_OPEN
                 : s == CLOSING ? MG_BREAKER_CLOSED
                                : (mg_breaker_state_t)s;
    out->last_trip = (mg_breaker_trip_t)atomic_load_explicit(&b->last_trip, memory_order_relaxed);
    out->trips = atomic_load_explicit(&b->trips, memory_order_relaxed);
    out->consecutive_trips = atomic_load_explicit(&b->consecutive_trips, memory_order_relaxed);
    out->consecutive_failures = atomic_load_explicit(&b->streak, memory_order_relaxed);
    out->ejection_ms = atomic_load_explicit(&b->ejection_ms, memory_order_relaxed);
    if (out->state == MG_BREAKER_OPEN) {
        int64_t left = atomic_load_explicit(&b->open_until_ns, memory_order_relaxed) - now_ns;
        out->reopen_in_ms = left > 0 ? (left + 999999) / 1000000 : 0;
    }
    window_sum(b, now_ns, &out->window_requests, &out->window_failures);
}
