/*
 * An instance's part in a fleet configured through etcd (cluster/fleet.h has the key layout).
 *
 * The watch thread is a source of change like the admin API: it reads the whole configuration
 * prefix at one revision R, builds the routing configuration and submits it to the control
 * plane as ONE operation (MG_CONTROL_APPLY_FLEET: every policy, the route table and the kill
 * switch in one router publication), then watches from R+1. Events are applied in revision
 * order and never back in time; the events etcd delivers together (a transaction's always
 * are) become one configuration. A configuration that does not validate is rejected whole:
 * logged with its key and why, counted, reported, and the previous one keeps serving. When the
 * watch's start revision has been compacted away, etcd cancels the watch, or the watch stays
 * silent longer than the check interval while etcd holds something it did not deliver (or does
 * not answer at all), the thread reads everything again and watches anew: no silent gap.
 * Losing etcd costs nothing but freshness: the thread retries with exponential backoff and
 * jitter (100 ms doubling to 2 s) across the endpoints, and the instance keeps serving.
 *
 * The reporter thread keeps a lease (TTL configurable, renewed every TTL/3) and writes the
 * instance's report under PREFIX/instances/<id> with it: id, address, applied and seen
 * revisions and digests, the last rejections with their reasons, and each model version's
 * state; `modelgate ctl --etcd URL status` compares them with etcd's configuration. A stopped
 * instance revokes its lease; a dead one disappears when the lease expires.
 */
#ifndef MG_CLUSTER_CLUSTER_H
#define MG_CLUSTER_CLUSTER_H

#include "control/control.h"
#include "core/buf.h"
#include "core/err.h"
#include "repo/registry.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct mg_cluster mg_cluster_t;

/** What an instance joins with. Strings are copied. */
typedef struct mg_cluster_opts {
    const char *endpoints;   /* "http://127.0.0.1:2379[,...]" */
    const char *prefix;      /* "/modelgate/prod" */
    const char *instance_id; /* unique in the fleet */
    const char *address;     /* where the instance serves, for the report */
    int lease_ttl_s;         /* the report's lease; 0: 10 s */
    int watch_check_ms;      /* the silence after which the watch is checked; 0: 5000 */
    mg_control_t *control;   /* where configurations go; outlives the cluster */
    mg_registry_t *registry; /* read for the report; outlives the cluster */
    /* What the state file restored before start (0s: nothing). */
    uint64_t restored_revision;
    uint64_t restored_digest;
    int64_t restored_saved_at; /* Unix seconds */
} mg_cluster_opts_t;

/**
 * Starts the watch and reporter threads; nothing is contacted before they run, so this
 * succeeds while etcd is unreachable. Returns 0, or MG_EINVAL (bad endpoints or prefix) /
 * MG_ENOMEM / MG_EIO (no thread) with `err` filled. Thread: start-up.
 */
int mg_cluster_start(mg_cluster_t **out, const mg_cluster_opts_t *opts, mg_err_t *err);

/**
 * Stops both threads (calls in progress are cancelled), revokes the lease when etcd answers
 * within a second, and frees the cluster. Stop it before the control plane. Accepts NULL.
 * Thread: start-up / shutdown.
 */
void mg_cluster_stop(mg_cluster_t *c);

/** A consistent copy of where the instance stands. */
typedef struct mg_cluster_status {
    bool watching;             /* the watch is established */
    const char *source;        /* what serves: "etcd", "state file" or "none" (static) */
    uint64_t applied_revision; /* of the configuration that serves */
    uint64_t applied_digest;
    uint64_t seen_revision; /* the latest revision read or watched */
    uint64_t seen_digest;
    double stale_seconds;    /* mg_cluster_config_stale_seconds */
    uint64_t rejected_total; /* configurations rejected */
    uint64_t rereads;        /* full reads after the first (compaction, cancel, silence) */
    uint64_t last_rejected_revision;
    char last_rejection[320]; /* "key K: why", empty when none */
    char last_error[256];     /* why etcd is unreachable, empty while watching */
} mg_cluster_status_t;

/** Fills `out`. Thread: any. */
void mg_cluster_status(mg_cluster_t *c, mg_cluster_status_t *out);

/**
 * How stale the configuration in force may be, in seconds: 0 while the watch is established;
 * otherwise the time since the instance last knew it was current (the watch was lost then), or,
 * when it started from the state file and has not reached etcd since, since the file was
 * written. Thread: any (a metrics exporter reads it).
 */
double mg_cluster_config_stale_seconds(mg_cluster_t *c);

/**
 * Appends the status as a JSON object, for readiness details:
 * {"source":"etcd","watching":true,"revision":42,"stale_seconds":0,"rejected_total":0,...}.
 * Returns 0 or MG_ENOMEM. Thread: any.
 */
int mg_cluster_status_json(mg_cluster_t *c, mg_buf_t *out);

#endif
