#include "cluster/cluster.h"

#include "cluster/etcd.h"
#include "cluster/fleet.h"
#include "core/log.h"
#include "core/rcu.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   2000
#define REJECTIONS_KEPT  8
#define RESTART_WATCH    1 /* a watch callback's "read everything again" */

typedef struct rejection {
    uint64_t revision;
    char key[256];
    char reason[300];
} rejection_t;

struct mg_cluster {
    /* Set at start, read-only afterwards. */
    char *prefix;
    char *config_prefix; /* PREFIX/config/ */
    char *report_key;    /* PREFIX/instances/<id> */
    char *id;
    char *address;
    int lease_ttl_s;
    int watch_check_ms;
    mg_control_t *control;
    mg_registry_t *registry;
    int64_t started_at;
    mg_etcd_t *watch_etcd;  /* the watch thread's */
    mg_etcd_t *report_etcd; /* the reporter's */
    pthread_t watch_tid, report_tid;
    int watch_started, report_started;
    atomic_bool stopping;

    /* The watch thread's own. */
    mg_fleet_view_t view;
    int64_t last_msg_ns; /* CLOCK_MONOTONIC of the watch's last message or check */
    int watch_restarts;

    /* Shared: guarded by `lock`; `wake` wakes sleeping threads (stop, a new report). */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    mg_cluster_status_t st;
    double confirmed_at;      /* Unix time the configuration was last known current */
    uint64_t rejected_digest; /* the content last rejected, not retried until it changes */
    rejection_t rejections[REJECTIONS_KEPT]; /* newest first */
    int nrejections;
    int report_dirty;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits up to `ms` or until stopping (or woken). Returns non-zero when stopping. */
static int nap(mg_cluster_t *c, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->lock);
    if (!atomic_load(&c->stopping))
        pthread_cond_timedwait(&c->wake, &c->lock, &ts);
    pthread_mutex_unlock(&c->lock);
    return atomic_load(&c->stopping);
}

/* The next wait of an exponential backoff with jitter: [d/2, d) of the doubled delay. */
static long backoff_next(long *delay_ms, unsigned *seed)
{
    long d = *delay_ms;
    *delay_ms = d * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d * 2;
    return d / 2 + (long)(rand_r(seed) % (unsigned)(d / 2 + 1));
}

static void mark_report(mg_cluster_t *c)
{
    c->report_dirty = 1;
    pthread_cond_broadcast(&c->wake);
}

/* ---- applying a configuration (watch thread) ----------------------------------------------- */

static void set_watching(mg_cluster_t *c, bool on, const char *why)
{
    pthread_mutex_lock(&c->lock);
    if (c->st.watching != on) {
        c->st.watching = on;
        mark_report(c);
    }
    if (on) {
        c->confirmed_at = wall_now();
        c->st.last_error[0] = '\0';
    } else if (why != NULL) {
        mg_str_format(c->st.last_error, sizeof(c->st.last_error), "%s", why);
    }
    pthread_mutex_unlock(&c->lock);
}

static void reject(mg_cluster_t *c, uint64_t digest, const char *key, const char *why)
{
    uint64_t revision = (uint64_t)c->view.revision;
    pthread_mutex_lock(&c->lock);
    int again = c->rejected_digest == digest && c->nrejections > 0 &&
                strcmp(c->rejections[0].reason, why) == 0;
    pthread_mutex_unlock(&c->lock);
    if (again) /* a retry that failed for the same reason: already logged, counted, reported */
        return;
    mg_log(MG_LOG_ERROR, "cluster", "configuration rejected revision=%llu key=%s (%s)",
           (unsigned long long)revision, key ? key : "-", why);
    pthread_mutex_lock(&c->lock);
    c->st.rejected_total++;
    c->st.last_rejected_revision = revision;
    mg_str_format(c->st.last_rejection, sizeof(c->st.last_rejection), "key %s: %s", key ? key : "-",
                  why);
    c->rejected_digest = digest;
    memmove(&c->rejections[1], &c->rejections[0], (REJECTIONS_KEPT - 1) * sizeof(c->rejections[0]));
    rejection_t *r = &c->rejections[0];
    r->revision = revision;
    mg_str_format(r->key, sizeof(r->key), "%s", key ? key : "");
    mg_str_format(r->reason, sizeof(r->reason), "%s", why);
    if (c->nrejections < REJECTIONS_KEPT)
        c->nrejections++;
    mark_report(c);
    pthread_mutex_unlock(&c->lock);
}

/*
 * The view changed (a read or events): unless it holds what already serves (or what was
 * rejected last, unless `retry`), build its configuration and have the control plane apply it.
 */
static void consider(mg_cluster_t *c, bool retry)
{
    uint64_t digest = mg_fleet_view_digest(&c->view);
    pthread_mutex_lock(&c->lock);
    c->st.seen_revision = (uint64_t)c->view.revision;
    c->st.seen_digest = digest;
    bool same = c->st.applied_digest == digest && c->st.applied_revision != 0;
    bool known_bad = c->rejected_digest == digest && c->st.rejected_total > 0;
    if (same && c->st.source != NULL && strcmp(c->st.source, "etcd") != 0)
        c->st.source = "etcd"; /* what the state file restored is etcd's current content */
    mark_report(c);
    pthread_mutex_unlock(&c->lock);
    if (same || (known_bad && !retry))
        return;

    mg_fleet_config_t cfg;
    const char *bad_key = NULL;
    mg_err_t err;
    if (mg_fleet_config_build(&c->view, c->prefix, &cfg, &bad_key, &err) != 0) {
        reject(c, digest, bad_key, err.msg);
        return;
    }
    mg_control_op_t op = {.kind = MG_CONTROL_APPLY_FLEET, .fleet = &cfg.fleet};
    int64_t t0 = mono_ns();
    int rc = mg_control_run(c->control, &op);
    if (rc == MG_ECANCELED) {
        mg_fleet_config_free(&cfg);
        return;
    }
    if (rc != 0) {
        long i = cfg.fleet.rejected;
        const char *key = i >= 0                         ? cfg.policy_keys[i]
                          : i == MG_CONTROL_FLEET_ROUTES ? cfg.routes_key
                                                         : NULL;
        reject(c, digest, key, op.err.msg);
        mg_fleet_config_free(&cfg);
        return;
    }
    mg_log(MG_LOG_INFO, "cluster",
           "configuration applied config_revision=%lld policies=%zu rules=%zu kill_switch=%s "
           "router_revision=%llu apply_ms=%.2f",
           (long long)c->view.revision, cfg.fleet.npolicies, op.count,
           cfg.fleet.kill_switch ? "on" : "off", (unsigned long long)op.revision,
           (double)(mono_ns() - t0) / 1e6);
    mg_fleet_config_free(&cfg);
    pthread_mutex_lock(&c->lock);
    c->st.applied_revision = (uint64_t)c->view.revision;
    c->st.applied_digest = digest;
    c->st.source = "etcd";
    c->rejected_digest = 0;
    mark_report(c);
    pthread_mutex_unlock(&c->lock);
}

/* One consistent read of the whole configuration, then `consider`. */
static int full_read(mg_cluster_t *c, mg_err_t *err)
{
    mg_etcd_kvs_t kvs = {0};
    int rc = mg_etcd_range(c->watch_etcd, c->config_prefix, false, &kvs, err);
    if (rc != 0)
        return rc;
    if ((rc = mg_fleet_view_reset(&c->view, &kvs)) != 0)
        return mg_err_set(err, rc, "out of memory");
    consider(c, false);
    return 0;
}

static int on_watch_msg(void *ctx, const mg_etcd_watch_msg_t *m)
{
    mg_cluster_t *c = ctx;
    c->last_msg_ns = mono_ns();
    if (m->canceled) {
        if (m->compact_revision > 0)
            mg_log(MG_LOG_WARN, "cluster",
                   "watch compacted watch_revision=%lld compact_revision=%lld (reading the "
                   "whole configuration again)",
                   (long long)c->view.revision + 1, (long long)m->compact_revision);
        else
            mg_log(MG_LOG_WARN, "cluster", "watch cancelled by etcd (%s; reading again)",
                   m->cancel_reason[0] ? m->cancel_reason : "no reason given");
        return RESTART_WATCH;
    }
    if (m->created) {
        set_watching(c, true, NULL);
        mg_log(MG_LOG_INFO, "cluster", "watching endpoint=%s from_revision=%lld",
               mg_etcd_endpoint(c->watch_etcd), (long long)c->view.revision + 1);
        return 0;
    }
    set_watching(c, true, NULL);
    int changed = 0;
    int64_t seen = c->view.revision;
    for (size_t i = 0; i < m->nevents; i++) {
        const mg_etcd_event_t *ev = &m->events[i];
        /* Never back in time: what the view had seen already is skipped (the events of one
         * transaction share a revision, so compare with the view as it was before them). */
        if (ev->kv.mod_revision <= seen)
            continue;
        if (mg_fleet_view_apply(&c->view, ev) != 0) {
            mg_log(MG_LOG_ERROR, "cluster", "out of memory applying a watch event");
            return RESTART_WATCH;
        }
        changed = 1;
    }
    if (changed)
        consider(c, false);
    return 0;
}

/*
 * Between watch messages: a watch silent for longer than the check interval is checked with a
 * read. etcd unreachable: the watch is given up; etcd holds content the watch did not deliver:
 * everything is read again.
 */
static int on_watch_tick(void *ctx)
{
    mg_cluster_t *c = ctx;
    if (atomic_load(&c->stopping))
        return MG_ECANCELED;
    if (mono_ns() - c->last_msg_ns < (int64_t)c->watch_check_ms * 1000000)
        return 0;
    mg_etcd_kvs_t kvs = {0};
    mg_err_t err;
    if (mg_etcd_range(c->watch_etcd, c->config_prefix, false, &kvs, &err) != 0) {
        mg_log(MG_LOG_WARN, "cluster", "watch silent and etcd does not answer (%s)", err.msg);
        set_watching(c, false, err.msg);
        return MG_EIO;
    }
    mg_fleet_view_t probe = {0};
    int rc = mg_fleet_view_reset(&probe, &kvs);
    uint64_t got = mg_fleet_view_digest(&probe);
    /* A difference is a missed event, or an etcd that lost its data and started over. */
    int missed = rc == 0 && got != mg_fleet_view_digest(&c->view);
    mg_fleet_view_free(&probe);
    c->last_msg_ns = mono_ns();
    if (rc != 0 || missed) {
        mg_log(MG_LOG_WARN, "cluster",
               "watch silent while etcd changed watch_revision=%lld (reading again)",
               (long long)c->view.revision);
        return RESTART_WATCH;
    }
    set_watching(c, true, NULL);
    /* A rejected configuration may have become valid (a model loaded since): try it again. */
    pthread_mutex_lock(&c->lock);
    bool pending = c->rejected_digest != 0 && c->rejected_digest == c->st.seen_digest;
    pthread_mutex_unlock(&c->lock);
    if (pending)
        consider(c, true);
    return 0;
}

/*
 * Read everything, then watch from the revision after it. A watch that breaks resumes from the
 * revision after the last one seen (etcd replays what was missed), without a new read; a
 * compacted start revision, a cancelled watch or a silent one that missed something makes
 * the next round read everything again.
 */
static void *watch_main(void *arg)
{
    mg_cluster_t *c = arg;
    unsigned seed = (unsigned)mono_ns() ^ (unsigned)getpid();
    long delay = BACKOFF_FIRST_MS;
    int reads = 0, need_read = 1;
    while (!atomic_load(&c->stopping)) {
        mg_err_t err;
        mg_err_clear(&err);
        int rc = 0;
        if (need_read) {
            rc = full_read(c, &err);
            if (rc == MG_ECANCELED)
                break;
            if (rc == 0 && reads++ > 0) {
                pthread_mutex_lock(&c->lock);
                c->st.rereads++;
                pthread_mutex_unlock(&c->lock);
            }
            need_read = rc != 0;
        }
        if (rc == 0) {
            c->last_msg_ns = mono_ns();
            rc = mg_etcd_watch(c->watch_etcd, c->config_prefix, c->view.revision + 1, on_watch_msg,
                               on_watch_tick, c, &err);
            if (rc == MG_ECANCELED || atomic_load(&c->stopping))
                break;
            if (rc == RESTART_WATCH) {
                need_read = 1;
                delay = BACKOFF_FIRST_MS;
                continue;
            }
        }
        int was = c->st.watching; /* only this thread writes it */
        set_watching(c, false, err.msg);
        if (was)
            delay = BACKOFF_FIRST_MS;
        long wait = backoff_next(&delay, &seed);
        mg_log(MG_LOG_WARN, "cluster", "etcd unreachable retry_ms=%ld (%s)", wait, err.msg);
        if (nap(c, wait))
            break;
    }
    return NULL;
}

/* ---- reporting (reporter thread) ----------------------------------------------------------- */

/* The report's JSON; with `stamp` the fields that change with time are included. */
static int build_report(mg_cluster_t *c, mg_buf_t *b, bool stamp)
{
    mg_buf_reset(b);
    pthread_mutex_lock(&c->lock);
    mg_cluster_status_t st = c->st;
    rejection_t rej[REJECTIONS_KEPT];
    int nrej = c->nrejections;
    memcpy(rej, c->rejections, sizeof(rej));
    double confirmed = c->confirmed_at;
    pthread_mutex_unlock(&c->lock);

    int rc = mg_buf_puts(b, "{\"id\":");
    rc = rc ? rc : mg_buf_json_string(b, c->id, strlen(c->id));
    rc = rc ? rc : mg_buf_puts(b, ",\"address\":");
    rc = rc ? rc : mg_buf_json_string(b, c->address, strlen(c->address));
    rc = rc ? rc
            : mg_buf_printf(
                  b,
                  ",\"pid\":%d,\"started_at\":%lld,\"source\":\"%s\",\"watch\":\"%s\","
                  "\"applied_revision\":%llu,\"applied_digest\":\"%016llx\","
                  "\"seen_revision\":%llu,\"seen_digest\":\"%016llx\","
                  "\"rejected_total\":%llu,\"rejections\":[",
                  (int)getpid(), (long long)c->started_at, st.source, st.watching ? "live" : "down",
                  (unsigned long long)st.applied_revision, (unsigned long long)st.applied_digest,
                  (unsigned long long)st.seen_revision, (unsigned long long)st.seen_digest,
                  (unsigned long long)st.rejected_total);
    for (int i = 0; rc == 0 && i < nrej; i++) {
        rc = mg_buf_printf(b, "%s{\"revision\":%llu,\"key\":", i ? "," : "",
                           (unsigned long long)rej[i].revision);
        rc = rc ? rc : mg_buf_json_string(b, rej[i].key, strlen(rej[i].key));
        rc = rc ? rc : mg_buf_puts(b, ",\"reason\":");
        rc = rc ? rc : mg_buf_json_string(b, rej[i].reason, strlen(rej[i].reason));
        rc = rc ? rc : mg_buf_puts(b, "}");
    }
    rc = rc ? rc : mg_buf_puts(b, "],\"versions\":[");
    rcu_read_lock();
    const mg_registry_snapshot_t *snap = mg_registry_snapshot(c->registry);
    int first = 1;
    for (size_t i = 0; rc == 0 && i < mg_registry_snapshot_count(snap); i++) {
        const mg_model_entry_t *e = mg_registry_snapshot_model(snap, i);
        const char *name = mg_model_entry_name(e);
        for (int k = 0; rc == 0 && k < mg_model_entry_nversions(e); k++) {
            const mg_model_version_t *v = mg_model_entry_version(e, k);
            rc = mg_buf_puts(b, first ? "{\"model\":" : ",{\"model\":");
            first = 0;
            rc = rc ? rc : mg_buf_json_string(b, name, strlen(name));
            rc = rc ? rc
                    : mg_buf_printf(
                          b, ",\"version\":\"%s\",\"state\":\"%s\"}", mg_model_version_text(v),
                          mg_model_version_state(v) == MG_MODEL_READY ? "READY" : "UNAVAILABLE");
        }
    }
    mg_rcu_read_unlock();
    rc = rc ? rc : mg_buf_puts(b, "]");
    if (rc == 0 && stamp) {
        double stale = st.watching ? 0 : wall_now() - confirmed;
        rc = mg_buf_printf(b, ",\"updated_at\":%lld,\"stale_seconds\":%.1f", (long long)time(NULL),
                           stale < 0 ? 0 : stale);
    }
    rc = rc ? rc : mg_buf_puts(b, "}");
    return rc ? MG_ENOMEM : 0;
}

static void *report_main(void *arg)
{
    mg_cluster_t *c = arg;
    rcu_register_thread();
    unsigned seed = (unsigned)mono_ns() ^ (unsigned)getpid() ^ 0x5bd1e995u;
    long delay = BACKOFF_FIRST_MS;
    int64_t lease = 0;
    int64_t renew_ns = 0;
    mg_buf_t last = {0}, now = {0}, stamped = {0};
    long renew_ms = (long)c->lease_ttl_s * 1000 / 3;
    while (!atomic_load(&c->stopping)) {
        mg_err_t err;
        if (lease == 0) {
            if (mg_etcd_lease_grant(c->report_etcd, c->lease_ttl_s, &lease, &err) != 0) {
                lease = 0;
                if (nap(c, backoff_next(&delay, &seed)))
                    break;
                continue;
            }
            mg_buf_reset(&last); /* a new lease: write the report again */
            renew_ns = mono_ns() + (int64_t)renew_ms * 1000000;
        }
        pthread_mutex_lock(&c->lock);
        c->report_dirty = 0;
        pthread_mutex_unlock(&c->lock);
        if (build_report(c, &now, false) == 0 &&
            (now.len != last.len || memcmp(now.data, last.data, now.len) != 0) &&
            build_report(c, &stamped, true) == 0) {
            mg_etcd_put_t put = {c->report_key, stamped.data, stamped.len, lease};
            bool ok = false;
            if (mg_etcd_txn(c->report_etcd, &put, 1, NULL, 0, &ok, NULL, &err) != 0) {
                /* A lease that expired meanwhile is refused: take a new one. */
                if (strstr(err.msg, "lease not found") != NULL)
                    lease = 0;
                if (nap(c, backoff_next(&delay, &seed)))
                    break;
                continue;
            }
            mg_buf_reset(&last);
            mg_buf_append(&last, now.data, now.len);
        }
        delay = BACKOFF_FIRST_MS;
        /* Sleep until the renewal is due or something changed. */
        pthread_mutex_lock(&c->lock);
        while (!c->report_dirty && !atomic_load(&c->stopping) && mono_ns() < renew_ns) {
            int64_t left = renew_ns - mono_ns();
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t until = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + left;
            ts.tv_sec = (time_t)(until / 1000000000);
            ts.tv_nsec = (long)(until % 1000000000);
            pthread_cond_timedwait(&c->wake, &c->lock, &ts);
        }
        pthread_mutex_unlock(&c->lock);
        if (atomic_load(&c->stopping) || mono_ns() < renew_ns)
            continue;
        int rc = mg_etcd_lease_keepalive(c->report_etcd, lease, &err);
        if (rc == MG_ENOENT) {
            mg_log(MG_LOG_WARN, "cluster", "lease expired lease=%lld (taking a new one)",
                   (long long)lease);
            lease = 0;
        } else if (rc != 0) {
            renew_ns = mono_ns() + 1000000000LL; /* try again in a second */
        } else {
            renew_ns = mono_ns() + (int64_t)renew_ms * 1000000;
        }
    }
    mg_buf_free(&last);
    mg_buf_free(&now);
    mg_buf_free(&stamped);
    rcu_unregister_thread();
    return (void *)(intptr_t)lease;
}

/* ---- life cycle and status ----------------------------------------------------------------- */

static char *join(const char *prefix, const char *suffix, const char *name)
{
    mg_buf_t b = {0};
    if (mg_fleet_key(&b, prefix, suffix, name) != 0) {
        mg_buf_free(&b);
        return NULL;
    }
    return b.data;
}

static void cluster_free(mg_cluster_t *c)
{
    mg_etcd_free(c->watch_etcd);
    mg_etcd_free(c->report_etcd);
    mg_fleet_view_free(&c->view);
    free(c->prefix);
    free(c->config_prefix);
    free(c->report_key);
    free(c->id);
    free(c->address);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
    curl_global_cleanup();
}

int mg_cluster_start(mg_cluster_t **out, const mg_cluster_opts_t *o, mg_err_t *err)
{
    int rc = mg_fleet_check_prefix(o->prefix ? o->prefix : "", err);
    if (rc != 0)
        return rc;
    if (o->instance_id == NULL || o->instance_id[0] == '\0' || strchr(o->instance_id, '/'))
        return mg_err_set(err, MG_EINVAL, "instance id must be non-empty and without '/'");
    mg_cluster_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    /* libcurl's global state, before any thread of ours uses it (reference-counted). */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    atomic_init(&c->stopping, false);
    c->lease_ttl_s = o->lease_ttl_s > 0 ? o->lease_ttl_s : 10;
    c->watch_check_ms = o->watch_check_ms > 0 ? o->watch_check_ms : 5000;
    c->control = o->control;
    c->registry = o->registry;
    c->started_at = (int64_t)time(NULL);
    c->st.source = o->restored_revision != 0 || o->restored_digest != 0 ? "state file" : "none";
    c->st.applied_revision = o->restored_revision;
    c->st.applied_digest = o->restored_digest;
    c->confirmed_at = o->restored_saved_at > 0 ? (double)o->restored_saved_at : wall_now();
    c->prefix = strdup(o->prefix);
    c->config_prefix = join(o->prefix, MG_FLEET_CONFIG, NULL);
    c->report_key = join(o->prefix, MG_FLEET_INSTANCES, o->instance_id);
    c->id = strdup(o->instance_id);
    c->address = strdup(o->address ? o->address : "");
    if (c->prefix == NULL || c->config_prefix == NULL || c->report_key == NULL || c->id == NULL ||
        c->address == NULL) {
        cluster_free(c);
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    }
    mg_etcd_opts_t eo = {.endpoints = o->endpoints};
    if ((rc = mg_etcd_new(&c->watch_etcd, &eo, err)) != 0 ||
        (rc = mg_etcd_new(&c->report_etcd, &eo, err)) != 0) {
        cluster_free(c);
        return rc;
    }
    c->watch_started = pthread_create(&c->watch_tid, NULL, watch_main, c) == 0;
    c->report_started =
        c->watch_started && pthread_create(&c->report_tid, NULL, report_main, c) == 0;
    if (!c->report_started) {
        mg_cluster_stop(c);
        return mg_err_set(err, MG_EIO, "cannot start the cluster threads");
    }
    mg_log(MG_LOG_INFO, "cluster", "joining endpoints=%s prefix=%s id=%s lease_ttl_s=%d",
           o->endpoints, c->prefix, c->id, c->lease_ttl_s);
    *out = c;
    return 0;
}

void mg_cluster_stop(mg_cluster_t *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    atomic_store(&c->stopping, true);
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->lock);
    mg_etcd_cancel(c->watch_etcd);
    mg_etcd_cancel(c->report_etcd);
    if (c->watch_started)
        pthread_join(c->watch_tid, NULL);
    void *lease = NULL;
    if (c->report_started)
        pthread_join(c->report_tid, &lease);
    if ((intptr_t)lease != 0) {
        /* Leave at once rather than when the lease expires; a fresh client, not cancelled. */
        mg_etcd_t *e = NULL;
        mg_etcd_opts_t eo = {.endpoints = mg_etcd_endpoint(c->report_etcd),
                             .connect_timeout_ms = 500,
                             .request_timeout_ms = 1000};
        mg_err_t err;
        if (mg_etcd_new(&e, &eo, &err) == 0)
            mg_etcd_lease_revoke(e, (int64_t)(intptr_t)lease, &err);
        mg_etcd_free(e);
    }
    cluster_free(c);
}

void mg_cluster_status(mg_cluster_t *c, mg_cluster_status_t *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->st;
    double stale = c->st.watching ? 0 : wall_now() - c->confirmed_at;
    pthread_mutex_unlock(&c->lock);
    out->stale_seconds = stale < 0 ? 0 : stale;
}

double mg_cluster_config_stale_seconds(mg_cluster_t *c)
{
    mg_cluster_status_t st;
    mg_cluster_status(c, &st);
    return st.stale_seconds;
}

int mg_cluster_status_json(mg_cluster_t *c, mg_buf_t *out)
{
    mg_cluster_status_t st;
    mg_cluster_status(c, &st);
    int rc =
        mg_buf_printf(out,
                      "{\"source\":\"%s\",\"watching\":%s,\"revision\":%llu,"
                      "\"seen_revision\":%llu,\"stale_seconds\":%.1f,\"rejected_total\":%llu",
                      st.source, st.watching ? "true" : "false",
                      (unsigned long long)st.applied_revision, (unsigned long long)st.seen_revision,
                      st.stale_seconds, (unsigned long long)st.rejected_total);
    if (rc == 0 && st.last_rejection[0] != '\0') {
        rc = mg_buf_printf(out, ",\"last_rejected_revision\":%llu,\"last_rejection\":",
                           (unsigned long long)st.last_rejected_revision);
        rc = rc ? rc : mg_buf_json_string(out, st.last_rejection, strlen(st.last_rejection));
    }
    if (rc == 0 && st.last_error[0] != '\0') {
        rc = mg_buf_puts(out, ",\"etcd_error\":");
        rc = rc ? rc : mg_buf_json_string(out, st.last_error, strlen(st.last_error));
    }
    rc = rc ? rc : mg_buf_puts(out, "}");
    return rc ? MG_ENOMEM : 0;
}
