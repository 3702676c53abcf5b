/*
 * Per-thread request accumulators, the series table, the window sampler and the load table.
 *
 * Layout: each recording thread has an obs_thread_t with NPAGES page pointers; a page holds
 * PAGE_SLOTS series slots and is allocated (64-byte aligned, so no line is shared with another
 * thread's data) by its thread the first time it records one of those series. A slot is
 * written only by its thread, with relaxed atomic load+store pairs; readers sum all threads'
 * slots with relaxed loads. Threads are listed from a head pointer published with release;
 * a thread's struct stays until mg_obs_shutdown, so its counts outlive it.
 */
#include "obs/metrics.h"

#include "obs/ticker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

typedef _Atomic uint64_t ctr_t;

#define PAGE_SLOTS 8
#define NPAGES     (MG_OBS_SERIES_MAX / PAGE_SLOTS)
#define INDEX_SIZE (MG_OBS_SERIES_MAX * 2)
#define WINDOW_MAX 600

const double mg_obs_latency_bounds[MG_OBS_LATENCY_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
static const uint64_t latency_bounds_ns[MG_OBS_LATENCY_BUCKETS] = {
    100000,   250000,    500000,    1000000,   2500000,    5000000,    10000000,   25000000,
    50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};

const double mg_obs_load_bounds[MG_OBS_LOAD_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
};

const double mg_obs_run_request_bounds[MG_OBS_RUN_REQUEST_BUCKETS] = {1, 2, 4, 8, 16, 32, 64};

typedef struct batch_entry {
    ctr_t size; /* 0: free; set once by the owner, before the counts */
    ctr_t count, input_ns, infer_ns, output_ns;
} batch_entry_t;

typedef struct slot {
    _Alignas(64) ctr_t success;
    ctr_t success_ns, fail, fail_ns;
    ctr_t fail_by[MG_OBS_FAIL_COUNT_];
    ctr_t inference_count, exec_count;
    ctr_t queue_ns, input_ns, infer_ns, output_ns;
    ctr_t entered, executing, left, left_unexecuted;
    ctr_t fallbacks, replayed;
    ctr_t last_ms;
    ctr_t reason_count[MG_OBS_REASONS], reason_ns[MG_OBS_REASONS];
    ctr_t reason_buckets[MG_OBS_REASONS][MG_OBS_LATENCY_BUCKETS];
    ctr_t fine[MG_OBS_FINE_BUCKETS];
    batch_entry_t batches[MG_OBS_BATCH_SIZES];
    batch_entry_t batch_overflow;
    ctr_t run_requests[MG_OBS_RUN_REQUEST_BUCKETS + 1], run_requests_sum; /* last: over 64 */
} slot_t;

typedef struct obs_thread {
    slot_t *_Atomic pages[NPAGES];
    struct obs_thread *next;
} obs_thread_t;

typedef struct series {
    char *model;
    size_t model_len;
    int64_t version;
} series_t;

/* One snapshot of one series for the window. */
typedef struct snap {
    uint64_t requests, failures, fallbacks, replayed;
    uint64_t fine[MG_OBS_FINE_BUCKETS];
} snap_t;

typedef struct load_entry {
    mg_obs_load_stats_t s;
} load_entry_t;

typedef struct reload_entry {
    mg_obs_reload_stats_t s;
} reload_entry_t;

#define LOADS_MAX      1024
#define COLLECTORS_MAX 16

static struct {
    atomic_bool enabled;
    bool prometheus_names;
    atomic_uint generation; /* bumped by init and shutdown: stale thread pointers re-register */
    int64_t mono_to_unix;   /* realtime - monotonic at init */

    pthread_mutex_t lock; /* interning, thread registration */
    obs_thread_t *_Atomic threads;
    series_t series[MG_OBS_SERIES_MAX];
    _Atomic uint32_t nseries;
    _Atomic uint32_t index[INDEX_SIZE]; /* 0: empty; else id + 1 */

    /* The sampler: `ring` snapshots per series, `times` per position. */
    pthread_mutex_t win_lock;
    mg_ticker_t sampler;
    int ring_len; /* window / period + 1 */
    snap_t *ring[MG_OBS_SERIES_MAX];
    int64_t *times;
    uint64_t seq; /* snapshots taken */

    pthread_mutex_t load_lock;
    load_entry_t loads[LOADS_MAX];
    int nloads;
    reload_entry_t reloads[LOADS_MAX];
    int nreloads;

    struct {
        mg_obs_collector_fn fn;
        void *ctx;
    } collectors[COLLECTORS_MAX];
    int ncollectors;
} g = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .win_lock = PTHREAD_MUTEX_INITIALIZER,
    .load_lock = PTHREAD_MUTEX_INITIALIZER,
};

static _Thread_local obs_thread_t *self;
static _Thread_local unsigned self_generation;

static inline void add(ctr_t *c, uint64_t v)
{
    /* Only this thread writes `c`: a load and a store, no read-modify-write. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

static inline uint64_t get(const ctr_t *c)
{
    return atomic_load_explicit((ctr_t *)c, memory_order_relaxed);
}

/* ---- names -------------------------------------------------------------------------------- */

const char *mg_obs_fail_name(mg_obs_fail_t f)
{
    static const char *const names[] = {"REJECTED", "CANCELED", "BACKEND", "OTHER"};
    return (unsigned)f < MG_OBS_FAIL_COUNT_ ? names[f] : "OTHER";
}

mg_obs_fail_t mg_obs_fail_of(int code)
{
    switch (code) {
    case MG_ETIMEDOUT:
    case MG_EUNAVAIL:
    case MG_EOVERLOAD:
    case MG_EBUSY: return MG_OBS_FAIL_REJECTED;
    case MG_ECANCELED: return MG_OBS_FAIL_CANCELED;
    case MG_ERUNTIME:
    case MG_ENOMEM:
    case MG_EIO: return MG_OBS_FAIL_BACKEND;
    default: return MG_OBS_FAIL_OTHER;
    }
}

const char *mg_obs_load_outcome_name(mg_obs_load_outcome_t o)
{
    static const char *const names[] = {"success", "failure", "unchanged"};
    return (unsigned)o < MG_OBS_LOAD_COUNT_ ? names[o] : "failure";
}

/* ---- clocks and buckets ------------------------------------------------------------------- */

int64_t mg_obs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t mg_obs_unix_ns(int64_t mono_ns)
{
    if (g.mono_to_unix == 0)
        return realtime_ns() - mg_obs_now_ns() + mono_ns;
    return mono_ns + g.mono_to_unix;
}

int mg_obs_fine_bucket(uint64_t ns)
{
    if (ns < 1024)
        return 0;
    int e = 63 - __builtin_clzll(ns);
    int i = 1 + (e - 10) * 4 + (int)((ns >> (e - 2)) & 3);
    return i < MG_OBS_FINE_BUCKETS ? i : MG_OBS_FINE_BUCKETS - 1;
}

uint64_t mg_obs_fine_upper(int i)
{
    if (i <= 0)
        return 1024;
    if (i >= MG_OBS_FINE_BUCKETS - 1)
        return UINT64_MAX;
    int e = 10 + (i - 1) / 4, sub = (i - 1) % 4;
    return (uint64_t)(4 + sub + 1) << (e - 2);
}

static uint64_t fine_lower(int i)
{
    if (i <= 0)
        return 0;
    int e = 10 + (i - 1) / 4, sub = (i - 1) % 4;
    return (uint64_t)(4 + sub) << (e - 2);
}

uint64_t mg_obs_fine_quantile(const uint64_t *buckets, double q)
{
    uint64_t total = 0;
    for (int i = 0; i < MG_OBS_FINE_BUCKETS; i++)
        total += buckets[i];
    if (total == 0)
        return 0;
    /* The rank of the quantile, 1-based: the smallest value with at least q of the mass. */
    uint64_t rank = (uint64_t)(q * (double)total + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < MG_OBS_FINE_BUCKETS; i++) {
        seen += buckets[i];
        if (seen >= rank) {
            if (i == MG_OBS_FINE_BUCKETS - 1)
                return fine_lower(i);
            return (fine_lower(i) + mg_obs_fine_upper(i)) / 2;
        }
    }
    return fine_lower(MG_OBS_FINE_BUCKETS - 1);
}

/* ---- threads and slots -------------------------------------------------------------------- */

static obs_thread_t *thread_self(void)
{
    unsigned gen = atomic_load_explicit(&g.generation, memory_order_acquire);
    if (self != NULL && self_generation == gen)
        return self;
    obs_thread_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    pthread_mutex_lock(&g.lock);
    t->next = atomic_load_explicit(&g.threads, memory_order_relaxed);
    atomic_store_explicit(&g.threads, t, memory_order_release);
    pthread_mutex_unlock(&g.lock);
    self = t;
    self_generation = gen;
    return t;
}

/* This thread's slot of `id`, its page allocated on first use; NULL when out of memory. */
static slot_t *slot_of(mg_obs_series_t id)
{
    if (id >= MG_OBS_SERIES_MAX)
        return NULL;
    obs_thread_t *t = thread_self();
    if (t == NULL)
        return NULL;
    slot_t *page = atomic_load_explicit(&t->pages[id / PAGE_SLOTS], memory_order_relaxed);
    if (page == NULL) {
        page = aligned_alloc(64, sizeof(slot_t) * PAGE_SLOTS);
        if (page == NULL)
            return NULL;
        memset(page, 0, sizeof(slot_t) * PAGE_SLOTS);
        atomic_store_explicit(&t->pages[id / PAGE_SLOTS], page, memory_order_release);
    }
    return &page[id % PAGE_SLOTS];
}

/* Calls fn for series `id`'s slot of every thread that has one. */
#define FOR_EACH_SLOT(id, s)                                                                       \
    for (obs_thread_t *t_ = atomic_load_explicit(&g.threads, memory_order_acquire); t_ != NULL;    \
         t_ = t_->next)                                                                            \
        for (slot_t *page_ =                                                                       \
                 atomic_load_explicit(&t_->pages[(id) / PAGE_SLOTS], memory_order_acquire),        \
                    *s = page_ ? &page_[(id) % PAGE_SLOTS] : NULL;                                 \
             s != NULL; s = NULL)

/* ---- series ------------------------------------------------------------------------------- */

static uint64_t series_hash(mg_str_t model, int64_t version)
{
    return XXH3_64bits_withSeed(model.ptr, model.len, (uint64_t)version);
}

int mg_obs_series_find(mg_str_t model, int64_t version, mg_obs_series_t *out)
{
    uint64_t h = series_hash(model, version);
    for (uint32_t k = 0; k < INDEX_SIZE; k++) {
        uint32_t e = atomic_load_explicit(&g.index[(h + k) % INDEX_SIZE], memory_order_acquire);
        if (e == 0)
            return MG_ENOENT;
        const series_t *s = &g.series[e - 1];
        if (s->version == version && s->model_len == model.len &&
            memcmp(s->model, model.ptr, model.len) == 0) {
            *out = e - 1;
            return 0;
        }
    }
    return MG_ENOENT;
}

int mg_obs_series_get(mg_str_t model, int64_t version, mg_obs_series_t *out)
{
    if (!mg_obs_enabled())
        return MG_EINVAL;
    if (mg_obs_series_find(model, version, out) == 0)
        return 0;
    pthread_mutex_lock(&g.lock);
    int rc = 0;
    if (mg_obs_series_find(model, version, out) == 0)
        goto out;
    uint32_t id = atomic_load_explicit(&g.nseries, memory_order_relaxed);
    if (id >= MG_OBS_SERIES_MAX) {
        rc = MG_ENOMEM;
        goto out;
    }
    char *copy = malloc(model.len + 1);
    if (copy == NULL) {
        rc = MG_ENOMEM;
        goto out;
    }
    memcpy(copy, model.ptr, model.len);
    copy[model.len] = '\0';
    g.series[id] = (series_t){copy, model.len, version};
    atomic_store_explicit(&g.nseries, id + 1, memory_order_release);
    uint64_t h = series_hash(model, version);
    uint32_t k = 0;
    while (atomic_load_explicit(&g.index[(h + k) % INDEX_SIZE], memory_order_relaxed) != 0)
        k++;
    atomic_store_explicit(&g.index[(h + k) % INDEX_SIZE], id + 1, memory_order_release);
    *out = id;
out:
    pthread_mutex_unlock(&g.lock);
    return rc;
}

uint32_t mg_obs_series_count(void)
{
    return atomic_load_explicit(&g.nseries, memory_order_acquire);
}

const char *mg_obs_series_model(mg_obs_series_t id)
{
    return id < mg_obs_series_count() ? g.series[id].model : "";
}

int64_t mg_obs_series_version(mg_obs_series_t id)
{
    return id < mg_obs_series_count() ? g.series[id].version : 0;
}

/* ---- recording ---------------------------------------------------------------------------- */

void mg_obs_request_enter(mg_obs_series_t series)
{
    slot_t *s = slot_of(series);
    if (s != NULL)
        add(&s->entered, 1);
}

void mg_obs_request_executing(mg_obs_series_t series)
{
    slot_t *s = slot_of(series);
    if (s != NULL)
        add(&s->executing, 1);
}

void mg_obs_fallback(mg_obs_series_t chosen_series, bool replayed)
{
    slot_t *s = slot_of(chosen_series);
    if (s == NULL)
        return;
    add(&s->fallbacks, 1);
    if (replayed)
        add(&s->replayed, 1);
}

static uint64_t span(int64_t from, int64_t to)
{
    return to > from ? (uint64_t)(to - from) : 0;
}

/* The batch entry of `size` in `s`: the first free one claims it; past the table, overflow. */
static batch_entry_t *batch_entry(slot_t *s, uint64_t size)
{
    for (int i = 0; i < MG_OBS_BATCH_SIZES; i++) {
        batch_entry_t *b = &s->batches[i];
        uint64_t have = get(&b->size);
        if (have == size)
            return b;
        if (have == 0) {
            atomic_store_explicit(&b->size, size, memory_order_release);
            return b;
        }
    }
    return &s->batch_overflow;
}

void mg_obs_request_done(const mg_obs_request_t *r)
{
    slot_t *s = slot_of(r->series);
    if (s == NULL)
        return;
    uint64_t total = span(r->start_ns, r->end_ns);
    add(&s->left, 1);
    if (r->exec_ns == 0)
        add(&s->left_unexecuted, 1);
    if (r->fail < 0) {
        add(&s->success, 1);
        add(&s->success_ns, total);
        add(&s->fine[mg_obs_fine_bucket(total)], 1);
    } else {
        add(&s->fail, 1);
        add(&s->fail_ns, total);
        add(&s->fail_by[r->fail < MG_OBS_FAIL_COUNT_ ? r->fail : MG_OBS_FAIL_OTHER], 1);
    }
    if (r->infer_ns != 0 && r->output_ns != 0) {
        add(&s->inference_count, r->items ? r->items : r->batch);
        if (!r->shared_run) {
            uint32_t n = r->run_requests ? r->run_requests : 1;
            int k = 0;
            while (k < MG_OBS_RUN_REQUEST_BUCKETS && mg_obs_run_request_bounds[k] < n)
                k++;
            add(&s->exec_count, 1);
            add(&s->run_requests[k], 1);
            add(&s->run_requests_sum, n);
        }
    }
    if (r->fail < 0 && r->exec_ns != 0) {
        uint64_t in = span(r->exec_ns, r->infer_ns), run = span(r->infer_ns, r->output_ns);
        uint64_t out = span(r->output_ns, r->end_ns);
        add(&s->queue_ns, span(r->start_ns, r->exec_ns));
        add(&s->input_ns, in);
        add(&s->infer_ns, run);
        add(&s->output_ns, out);
    }
    /* Triton's batch_stats count executions: a shared Run once, under the Run's batch size. */
    if (r->fail < 0 && r->exec_ns != 0 && !r->shared_run) {
        uint64_t in = span(r->exec_ns, r->infer_ns), run = span(r->infer_ns, r->output_ns);
        uint64_t out = span(r->output_ns, r->end_ns);
        batch_entry_t *b = batch_entry(s, r->batch ? r->batch : 1);
        add(&b->count, 1);
        add(&b->input_ns, in);
        add(&b->infer_ns, run);
        add(&b->output_ns, out);
    }
    int reason =
        r->reason >= 0 && r->reason < MG_OBS_REASONS ? r->reason : MG_POLICY_REASON_DEFAULT;
    add(&s->reason_count[reason], 1);
    add(&s->reason_ns[reason], total);
    /* Bisection over the bucket bounds: the first bound >= total, or none (+Inf only). */
    int lo = 0, hi = MG_OBS_LATENCY_BUCKETS;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (latency_bounds_ns[mid] >= total)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (lo < MG_OBS_LATENCY_BUCKETS)
        add(&s->reason_buckets[reason][lo], 1);
    atomic_store_explicit(&s->last_ms, (uint64_t)(mg_obs_unix_ns(r->end_ns) / 1000000),
                          memory_order_relaxed);
}

/* ---- reading ------------------------------------------------------------------------------ */

static void dur_add(mg_obs_duration_t *d, uint64_t count, uint64_t ns)
{
    d->count += count;
    d->ns += ns;
}

int mg_obs_series_read(mg_obs_series_t id, mg_obs_series_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (id >= mg_obs_series_count())
        return MG_ENOENT;
    uint64_t entered = 0, executing = 0, left = 0, left_unexecuted = 0;
    FOR_EACH_SLOT(id, s)
    {
        uint64_t ok = get(&s->success);
        uint64_t last = get(&s->last_ms);
        if (last > out->last_inference_ms)
            out->last_inference_ms = last;
        out->inference_count += get(&s->inference_count);
        out->execution_count += get(&s->exec_count);
        dur_add(&out->success, ok, get(&s->success_ns));
        dur_add(&out->fail, get(&s->fail), get(&s->fail_ns));
        dur_add(&out->queue, ok, get(&s->queue_ns));
        dur_add(&out->compute_input, ok, get(&s->input_ns));
        dur_add(&out->compute_infer, ok, get(&s->infer_ns));
        dur_add(&out->compute_output, ok, get(&s->output_ns));
        for (int f = 0; f < MG_OBS_FAIL_COUNT_; f++)
            out->fail_by_reason[f] += get(&s->fail_by[f]);
        entered += get(&s->entered);
        executing += get(&s->executing);
        left += get(&s->left);
        left_unexecuted += get(&s->left_unexecuted);
        out->fallbacks += get(&s->fallbacks);
        out->replayed += get(&s->replayed);
        for (int r = 0; r < MG_OBS_REASONS; r++) {
            out->reason_count[r] += get(&s->reason_count[r]);
            out->reason_ns[r] += get(&s->reason_ns[r]);
            for (int b = 0; b < MG_OBS_LATENCY_BUCKETS; b++)
                out->reason_buckets[r][b] += get(&s->reason_buckets[r][b]);
        }
        for (int b = 0; b < MG_OBS_RUN_REQUEST_BUCKETS; b++)
            out->run_request_buckets[b] += get(&s->run_requests[b]);
        out->run_requests += get(&s->run_requests_sum);
    }
    /* Per-thread counts are read one after another: clamp what a racing request skews. */
    out->in_flight = entered > left ? entered - left : 0;
    uint64_t gone = executing + left_unexecuted;
    out->pending = entered > gone ? entered - gone : 0;
    return 0;
}

static int cmp_batch(const void *a, const void *b)
{
    const mg_obs_batch_stats_t *x = a, *y = b;
    return x->batch_size < y->batch_size ? -1 : x->batch_size > y->batch_size;
}

static void batch_add(mg_obs_batch_stats_t *o, const batch_entry_t *b)
{
    uint64_t n = get(&b->count);
    dur_add(&o->compute_input, n, get(&b->input_ns));
    dur_add(&o->compute_infer, n, get(&b->infer_ns));
    dur_add(&o->compute_output, n, get(&b->output_ns));
}

int mg_obs_series_batches(mg_obs_series_t id, mg_obs_batch_stats_t *out, int cap)
{
    if (id >= mg_obs_series_count())
        return MG_ENOENT;
    /* Merge the threads' tables: at most MG_OBS_BATCH_SIZES per thread. */
    enum { MERGED_MAX = 256 };
    mg_obs_batch_stats_t merged[MERGED_MAX];
    int n = 0;
    mg_obs_batch_stats_t overflow = {0};
    FOR_EACH_SLOT(id, s)
    {
        for (int i = 0; i < MG_OBS_BATCH_SIZES; i++) {
            uint64_t size = atomic_load_explicit(&s->batches[i].size, memory_order_acquire);
            if (size == 0)
                break;
            int k = 0;
            while (k < n && merged[k].batch_size != size)
                k++;
            if (k == n) {
                if (n == MERGED_MAX) {
                    batch_add(&overflow, &s->batches[i]);
                    continue;
                }
                memset(&merged[n], 0, sizeof(merged[n]));
                merged[n++].batch_size = size;
            }
            batch_add(&merged[k], &s->batches[i]);
        }
        batch_add(&overflow, &s->batch_overflow);
    }
    qsort(merged, (size_t)n, sizeof(merged[0]), cmp_batch);
    int w = 0;
    if (overflow.compute_infer.count > 0 && w < cap)
        out[w++] = overflow;
    for (int i = 0; i < n && w < cap; i++)
        out[w++] = merged[i];
    return w;
}

/* ---- the window sampler ------------------------------------------------------------------- */

/* Sums the window figures of `id` into `out`. */
static void snap_series(mg_obs_series_t id, snap_t *out)
{
    memset(out, 0, sizeof(*out));
    FOR_EACH_SLOT(id, s)
    {
        out->requests += get(&s->success) + get(&s->fail);
        out->failures += get(&s->fail);
        out->fallbacks += get(&s->fallbacks);
        out->replayed += get(&s->replayed);
        for (int b = 0; b < MG_OBS_FINE_BUCKETS; b++)
            out->fine[b] += get(&s->fine[b]);
    }
}

void mg_obs_sample_now(void)
{
    if (!mg_obs_enabled() || g.times == NULL)
        return;
    uint32_t n = mg_obs_series_count();
    /* Sum outside the lock; only the stores into the ring are under it. */
    snap_t *fresh = malloc(sizeof(*fresh) * (n ? n : 1));
    if (fresh == NULL)
        return;
    for (uint32_t id = 0; id < n; id++)
        snap_series(id, &fresh[id]);
    int64_t now = mg_obs_now_ns();
    pthread_mutex_lock(&g.win_lock);
    int pos = (int)(g.seq % (uint64_t)g.ring_len);
    for (uint32_t id = 0; id < n; id++) {
        if (g.ring[id] == NULL) {
            /* Zero before the series existed: its counts started at zero. */
            g.ring[id] = calloc((size_t)g.ring_len, sizeof(snap_t));
            if (g.ring[id] == NULL)
                continue;
        }
        g.ring[id][pos] = fresh[id];
    }
    g.times[pos] = now;
    g.seq++;
    pthread_mutex_unlock(&g.win_lock);
    free(fresh);
}

int mg_obs_series_window(mg_obs_series_t id, mg_obs_window_t *out, uint64_t *seq)
{
    memset(out, 0, sizeof(*out));
    if (seq != NULL)
        *seq = 0;
    if (id >= mg_obs_series_count() || g.times == NULL)
        return MG_ENOENT;
    pthread_mutex_lock(&g.win_lock);
    int rc = MG_ENOENT;
    if (g.seq > 0 && g.ring[id] != NULL) {
        uint64_t last = g.seq - 1;
        uint64_t first = last >= (uint64_t)(g.ring_len - 1) ? last - (uint64_t)(g.ring_len - 1) : 0;
        const snap_t *a = &g.ring[id][first % (uint64_t)g.ring_len];
        const snap_t *b = &g.ring[id][last % (uint64_t)g.ring_len];
        out->seconds =
            (double)(g.times[last % (uint64_t)g.ring_len] - g.times[first % (uint64_t)g.ring_len]) /
            1e9;
        out->requests = b->requests - a->requests;
        out->failures = b->failures - a->failures;
        out->fallbacks = b->fallbacks - a->fallbacks;
        out->replayed = b->replayed - a->replayed;
        uint64_t delta[MG_OBS_FINE_BUCKETS];
        for (int i = 0; i < MG_OBS_FINE_BUCKETS; i++)
            delta[i] = b->fine[i] - a->fine[i];
        out->p50_ms = (double)mg_obs_fine_quantile(delta, 0.50) / 1e6;
        out->p99_ms = (double)mg_obs_fine_quantile(delta, 0.99) / 1e6;
        if (seq != NULL)
            *seq = g.seq;
        rc = 0;
    }
    pthread_mutex_unlock(&g.win_lock);
    return rc;
}

uint64_t mg_obs_window_seq(void)
{
    pthread_mutex_lock(&g.win_lock);
    uint64_t seq = g.seq;
    pthread_mutex_unlock(&g.win_lock);
    return seq;
}

static void sample_tick(void *ctx, bool last)
{
    (void)ctx;
    if (!last)
        mg_obs_sample_now();
}

/* ---- set-up ------------------------------------------------------------------------------- */

bool mg_obs_prometheus_names(void)
{
    return g.prometheus_names;
}

bool mg_obs_enabled(void)
{
    return atomic_load_explicit(&g.enabled, memory_order_relaxed);
}

int mg_obs_init(const mg_obs_opts_t *opts, mg_err_t *err)
{
    if (mg_obs_enabled() || g.times != NULL)
        return mg_err_set(err, MG_EEXIST, "metrics: already set up");
    g.mono_to_unix = realtime_ns() - mg_obs_now_ns();
    g.prometheus_names = opts->prometheus_names;
    if (!opts->metrics)
        return 0;
    int window = opts->window_seconds > 0 ? opts->window_seconds : 60;
    int period_ms = opts->sample_period_ms > 0 ? opts->sample_period_ms : 1000;
    int steps = (int)((int64_t)window * 1000 / period_ms);
    if (steps < 1 || steps > WINDOW_MAX)
        return mg_err_set(err, MG_EINVAL, "metrics: a window of %d s in %d ms steps is not 1..%d",
                          window, period_ms, WINDOW_MAX);
    g.ring_len = steps + 1;
    g.times = calloc((size_t)g.ring_len, sizeof(*g.times));
    if (g.times == NULL)
        return mg_err_set(err, MG_ENOMEM, "metrics: out of memory");
    g.seq = 0;
    atomic_fetch_add_explicit(&g.generation, 1, memory_order_release);
    atomic_store(&g.enabled, true);
    mg_obs_sample_now(); /* the window's zero point: the start */
    if (mg_ticker_start(&g.sampler, period_ms, sample_tick, NULL) != 0) {
        mg_obs_shutdown();
        return mg_err_set(err, MG_EIO, "metrics: cannot start the sampler thread");
    }
    return 0;
}

void mg_obs_shutdown(void)
{
    mg_ticker_stop(&g.sampler);
    atomic_store(&g.enabled, false);
    atomic_fetch_add_explicit(&g.generation, 1, memory_order_release);
    obs_thread_t *t = atomic_exchange(&g.threads, NULL);
    while (t != NULL) {
        obs_thread_t *next = t->next;
        for (int p = 0; p < NPAGES; p++)
            free(atomic_load_explicit(&t->pages[p], memory_order_relaxed));
        free(t);
        t = next;
    }
    uint32_t n = mg_obs_series_count();
    for (uint32_t id = 0; id < n; id++) {
        free(g.series[id].model);
        g.series[id] = (series_t){0};
        free(g.ring[id]);
        g.ring[id] = NULL;
    }
    for (int i = 0; i < INDEX_SIZE; i++)
        atomic_store_explicit(&g.index[i], 0, memory_order_relaxed);
    atomic_store(&g.nseries, 0);
    free(g.times);
    g.times = NULL;
    g.seq = 0;
    pthread_mutex_lock(&g.load_lock);
    for (int i = 0; i < g.nloads; i++)
        free((char *)g.loads[i].s.model);
    for (int i = 0; i < g.nreloads; i++)
        free((char *)g.reloads[i].s.model);
    g.nloads = g.nreloads = 0;
    pthread_mutex_unlock(&g.load_lock);
    g.ncollectors = 0;
    g.mono_to_unix = 0;
    g.prometheus_names = false;
}

/* ---- loads -------------------------------------------------------------------------------- */

void mg_obs_model_load(const char *model, int64_t version, mg_obs_load_outcome_t outcome,
                       int64_t duration_ns)
{
    if (!mg_obs_enabled())
        return;
    double secs = (double)(duration_ns > 0 ? duration_ns : 0) / 1e9;
    pthread_mutex_lock(&g.load_lock);
    int i = 0;
    while (i < g.nloads && !(g.loads[i].s.version == version && g.loads[i].s.outcome == outcome &&
                             strcmp(g.loads[i].s.model, model) == 0))
        i++;
    if (i == g.nloads) {
        char *copy = strdup(model);
        if (i == LOADS_MAX || copy == NULL) {
            free(copy);
            pthread_mutex_unlock(&g.load_lock);
            return;
        }
        memset(&g.loads[i], 0, sizeof(g.loads[i]));
        g.loads[i].s.model = copy;
        g.loads[i].s.version = version;
        g.loads[i].s.outcome = outcome;
        g.nloads++;
    }
    mg_obs_load_stats_t *s = &g.loads[i].s;
    s->count++;
    s->sum_seconds += secs;
    for (int b = 0; b < MG_OBS_LOAD_BUCKETS; b++) {
        if (secs <= mg_obs_load_bounds[b]) {
            s->buckets[b]++;
            break;
        }
    }
    pthread_mutex_unlock(&g.load_lock);
}

void mg_obs_model_reload(const char *model, bool ok)
{
    if (!mg_obs_enabled())
        return;
    pthread_mutex_lock(&g.load_lock);
    int i = 0;
    while (i < g.nreloads && strcmp(g.reloads[i].s.model, model) != 0)
        i++;
    if (i == g.nreloads) {
        char *copy = strdup(model);
        if (i == LOADS_MAX || copy == NULL) {
            free(copy);
            pthread_mutex_unlock(&g.load_lock);
            return;
        }
        g.reloads[i].s = (mg_obs_reload_stats_t){copy, 0, 0};
        g.nreloads++;
    }
    if (ok)
        g.reloads[i].s.ok++;
    else
        g.reloads[i].s.failed++;
    pthread_mutex_unlock(&g.load_lock);
}

int mg_obs_loads_foreach(int (*load)(void *ctx, const mg_obs_load_stats_t *s),
                         int (*reload)(void *ctx, const mg_obs_reload_stats_t *s), void *ctx)
{
    int rc = 0;
    pthread_mutex_lock(&g.load_lock);
    for (int i = 0; load != NULL && rc == 0 && i < g.nloads; i++)
        rc = load(ctx, &g.loads[i].s);
    for (int i = 0; reload != NULL && rc == 0 && i < g.nreloads; i++)
        rc = reload(ctx, &g.reloads[i].s);
    pthread_mutex_unlock(&g.load_lock);
    return rc;
}

/* ---- collectors --------------------------------------------------------------------------- */

int mg_obs_collector_add(mg_obs_collector_fn fn, void *ctx)
{
    if (g.ncollectors == COLLECTORS_MAX)
        return MG_ENOMEM;
    g.collectors[g.ncollectors].fn = fn;
    g.collectors[g.ncollectors].ctx = ctx;
    g.ncollectors++;
    return 0;
}

int mg_obs_collectors_run(mg_buf_t *out)
{
    for (int i = 0; i < g.ncollectors; i++) {
        int rc = g.collectors[i].fn(g.collectors[i].ctx, out);
        if (rc != 0)
            return rc;
    }
    return 0;
}
