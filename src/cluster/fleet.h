/*
 * The fleet's configuration as it lives in etcd: the key layout under the prefix P
 * (--etcd-prefix), the view of those keys an instance keeps (filled by a range read, kept up to
 * date by watch events), the view's digest, and the routing configuration built from it for
 * the control plane (control/control.h, MG_CONTROL_APPLY_FLEET).
 *
 *   P/config/traffic/<model>   the model's traffic policy: the JSON that
 *                              PUT /v2/admin/models/<model>/traffic takes (route/policy.h)
 *   P/config/routes            the route table: the JSON PUT /v2/admin/routes takes
 *   P/config/kill-switch       {"enabled": true|false}: every model's traffic to its stable
 *                              version
 *   P/instances/<id>           each instance's report, under its lease (cluster/cluster.h)
 *
 * Any other key under P/config/ makes the configuration invalid, so a typo never passes.
 */
#ifndef MG_CLUSTER_FLEET_H
#define MG_CLUSTER_FLEET_H

#include "cluster/etcd.h"
#include "control/control.h"
#include "core/buf.h"
#include "core/err.h"

#include <stddef.h>
#include <stdint.h>

#define MG_FLEET_CONFIG      "/config/"
#define MG_FLEET_TRAFFIC     "/config/traffic/"
#define MG_FLEET_ROUTES      "/config/routes"
#define MG_FLEET_KILL_SWITCH "/config/kill-switch"
#define MG_FLEET_INSTANCES   "/instances/"

/**
 * Appends the prefix `prefix` (without its trailing slashes) followed by `suffix` (one of the
 * MG_FLEET_* above) and then `name` (may be NULL) to `out`, NUL-terminated (the NUL not counted
 * in out->len). Returns 0 or MG_ENOMEM. Thread: any.
 */
int mg_fleet_key(mg_buf_t *out, const char *prefix, const char *suffix, const char *name);

/**
 * Checks a prefix given by an operator: it starts with '/', is at most 512 bytes and has no
 * control characters. Returns 0 or MG_EINVAL with `err` saying why. Thread: any.
 */
int mg_fleet_check_prefix(const char *prefix, mg_err_t *err);

/** One key of the configuration, as last seen. */
typedef struct mg_fleet_entry {
    char *key; /* the whole key */
    char *value;
    size_t value_len;
    int64_t mod_revision;
} mg_fleet_entry_t;

/** The keys under P/config/ at one revision, sorted by key. Zero-initialise to start empty. */
typedef struct mg_fleet_view {
    mg_fleet_entry_t *entries;
    size_t n, cap;
    int64_t revision; /* the store revision the view is at */
} mg_fleet_view_t;

/** Frees the view; it is empty afterwards. */
void mg_fleet_view_free(mg_fleet_view_t *v);

/**
 * Replaces the view with the pairs of a range read (their strings are moved into the view;
 * `kvs` is left empty) at revision kvs->revision. Returns 0 or MG_ENOMEM (the view is then
 * empty). Thread: the view's owner.
 */
int mg_fleet_view_reset(mg_fleet_view_t *v, mg_etcd_kvs_t *kvs);

/**
 * Applies one watch event (a put replaces or adds the key, a delete removes it) and moves the
 * view's revision to the event's. Returns 0 or MG_ENOMEM (the view is then unchanged). Thread:
 * the view's owner.
 */
int mg_fleet_view_apply(mg_fleet_view_t *v, const mg_etcd_event_t *ev);

/**
 * The digest of the view's content: XXH3-64 over each key and its mod revision, in key order.
 * Two views hold the same configuration exactly when their digests match (what `ctl status`
 * compares with each instance's report). An empty view's digest is that of no keys, not 0.
 */
uint64_t mg_fleet_view_digest(const mg_fleet_view_t *v);

/** A routing configuration built from a view, pointing into it. */
typedef struct mg_fleet_config {
    mg_control_fleet_t fleet;
    mg_control_policy_text_t *policies;
    const char **policy_keys; /* the key of policies[i] */
    const char *routes_key;   /* NULL: no route table key (an empty table) */
    const char *kill_key;     /* NULL: no kill-switch key (off) */
} mg_fleet_config_t;

/**
 * Builds the configuration of the view for prefix `prefix`: one policy per traffic key, the
 * route table, the kill switch (parsed here: mg_control_kill_switch_parse), revision and digest
 * from the view. The policies and the table are validated when the control plane applies it.
 * Returns 0, or MG_EINVAL (an unknown key under P/config/, a traffic key without a model name,
 * an invalid kill switch) with `err` naming the key and why and *bad_key pointing at it, or
 * MG_ENOMEM. Ownership: *out points into `v`; free it with mg_fleet_config_free before the view
 * changes. Thread: the view's owner.
 */
int mg_fleet_config_build(const mg_fleet_view_t *v, const char *prefix, mg_fleet_config_t *out,
                          const char **bad_key, mg_err_t *err);

/** Frees what mg_fleet_config_build allocated. Accepts a zeroed struct. */
void mg_fleet_config_free(mg_fleet_config_t *c);

#endif
