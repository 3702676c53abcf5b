/*
 * An etcd v3 client over etcd's JSON gateway (HTTP/1.1, libcurl): range reads, puts and
 * transactions with a compare on a key's mod revision, leases (grant, keep-alive, revoke) and
 * a streaming watch. Keys and values travel base64-encoded and 64-bit numbers as JSON strings,
 * as the gateway's protobuf-to-JSON mapping has it (etcd 3.4: /v3/kv/range, /v3/kv/txn,
 * /v3/kv/put, /v3/lease/grant, /v3/lease/keepalive, /v3/lease/revoke, /v3/watch).
 *
 * A client holds a list of endpoints; a request that cannot reach one moves on to the next,
 * and the one that last answered is tried first. One client is used by one thread at a time;
 * mg_etcd_cancel may be called from any thread to make every call in progress or to come
 * fail fast with MG_ECANCELED (for shutdown).
 */
#ifndef MG_CLUSTER_ETCD_H
#define MG_CLUSTER_ETCD_H

#include "core/buf.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mg_etcd mg_etcd_t;

/** Timeouts of a client; 0 takes the default. */
typedef struct mg_etcd_opts {
    const char *endpoints;   /* "http://127.0.0.1:2379[,http://...]" */
    long connect_timeout_ms; /* default 1000 */
    long request_timeout_ms; /* a unary request, connection included; default 3000 */
} mg_etcd_opts_t;

/**
 * Creates a client for the comma-separated `opts->endpoints` (http:// or https:// URLs; a
 * trailing slash is dropped). Nothing is contacted yet. Returns 0, or MG_EINVAL (no endpoint, a
 * URL that is not http(s), more than 16) / MG_ENOMEM with `err` filled. Thread: any.
 */
int mg_etcd_new(mg_etcd_t **out, const mg_etcd_opts_t *opts, mg_err_t *err);

/** Frees the client. Accepts NULL. Thread: the client's, with no call in progress. */
void mg_etcd_free(mg_etcd_t *e);

/** Makes every call in progress and every later call fail with MG_ECANCELED. Thread: any. */
void mg_etcd_cancel(mg_etcd_t *e);

/** The endpoint that last answered (or the first one). Static for the client's life. */
const char *mg_etcd_endpoint(const mg_etcd_t *e);

/** One key-value pair, as etcd returned it. Key and value are NUL-terminated copies. */
typedef struct mg_etcd_kv {
    char *key;
    size_t key_len;
    char *value; /* "" for a DELETE event */
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t lease; /* 0: none */
} mg_etcd_kv_t;

/** A range read's result: the pairs, sorted by key, and the store's revision it was read at. */
typedef struct mg_etcd_kvs {
    mg_etcd_kv_t *kvs;
    size_t n;
    int64_t revision; /* the header's: the store revision at the time of the read */
} mg_etcd_kvs_t;

/** Frees what a range read filled in; the struct is empty afterwards. Accepts an empty one. */
void mg_etcd_kvs_free(mg_etcd_kvs_t *r);

/**
 * Reads every key that starts with `prefix` (or just the key `prefix` when `exact`) in one
 * linearizable read. Returns 0 with *out filled (free with mg_etcd_kvs_free), or MG_EIO (no
 * endpoint answered, or etcd refused: its message in `err`) / MG_ECANCELED / MG_ENOMEM.
 * Thread: the client's.
 */
int mg_etcd_range(mg_etcd_t *e, const char *prefix, bool exact, mg_etcd_kvs_t *out, mg_err_t *err);

/** One put of a transaction. */
typedef struct mg_etcd_put {
    const char *key;
    const char *value;
    size_t value_len;
    int64_t lease; /* 0: none */
} mg_etcd_put_t;

/**
 * Writes the `n` puts in one transaction. With `compare_key` set, the transaction succeeds only
 * when that key's mod revision is `compare_mod_revision` (0: the key does not exist); otherwise
 * it always succeeds. Returns 0 with *succeeded and *revision (the store revision after the
 * transaction, or the current one when it did not succeed), or MG_EIO / MG_ECANCELED /
 * MG_ENOMEM with `err` filled. Thread: the client's.
 */
int mg_etcd_txn(mg_etcd_t *e, const mg_etcd_put_t *puts, size_t n, const char *compare_key,
                int64_t compare_mod_revision, bool *succeeded, int64_t *revision, mg_err_t *err);

/** Deletes the key `key`. Returns 0 (also when it did not exist) or as mg_etcd_txn. */
int mg_etcd_delete(mg_etcd_t *e, const char *key, int64_t *revision, mg_err_t *err);

/**
 * Grants a lease of `ttl_s` seconds. Returns 0 with *id, or as mg_etcd_txn. Thread: the
 * client's.
 */
int mg_etcd_lease_grant(mg_etcd_t *e, int64_t ttl_s, int64_t *id, mg_err_t *err);

/**
 * Renews lease `id` once. Returns 0, MG_ENOENT when the lease has expired or never existed
 * (grant a new one), or as mg_etcd_txn. Thread: the client's.
 */
int mg_etcd_lease_keepalive(mg_etcd_t *e, int64_t id, mg_err_t *err);

/** Revokes lease `id` (its keys go at once). Returns 0 or as mg_etcd_txn. */
int mg_etcd_lease_revoke(mg_etcd_t *e, int64_t id, mg_err_t *err);

typedef enum { MG_ETCD_PUT = 0, MG_ETCD_DELETE } mg_etcd_event_type_t;

/** One change a watch delivers. */
typedef struct mg_etcd_event {
    mg_etcd_event_type_t type;
    mg_etcd_kv_t kv; /* a DELETE carries the key and its mod revision only */
} mg_etcd_event_t;

/** One message of a watch stream. Valid for the duration of the callback. */
typedef struct mg_etcd_watch_msg {
    bool created;                  /* the watch is established */
    bool canceled;                 /* etcd ended the watch: see compact_revision and reason */
    int64_t compact_revision;      /* > 0: the start revision was compacted away */
    const char *cancel_reason;     /* "" unless canceled */
    int64_t revision;              /* the header's store revision */
    const mg_etcd_event_t *events; /* in revision order; a revision is never split */
    size_t nevents;
} mg_etcd_watch_msg_t;

/** Receives one watch message; a non-zero return ends the watch and is returned. */
typedef int (*mg_etcd_watch_fn)(void *ctx, const mg_etcd_watch_msg_t *msg);

/** Called about every 100 ms while the watch waits; a non-zero return ends it and is returned. */
typedef int (*mg_etcd_tick_fn)(void *ctx);

/**
 * Watches every key under `prefix` from `start_revision` on, with progress notifications and
 * leader loss ending the watch (the gRPC "hasleader" metadata), on the endpoint that last
 * answered. Blocks, calling `on_msg` for each message and `tick` in between, until one of them
 * returns non-zero (that value is returned), etcd closes the stream or the connection breaks
 * (MG_EIO, with why in `err`), or the client is cancelled (MG_ECANCELED). A watch that etcd
 * cancels is passed to `on_msg` like any message; the callback decides. `tick` may use this
 * client for other requests. Thread: the client's.
 */
int mg_etcd_watch(mg_etcd_t *e, const char *prefix, int64_t start_revision, mg_etcd_watch_fn on_msg,
                  mg_etcd_tick_fn tick, void *ctx, mg_err_t *err);

/**
 * Appends the end of the range of keys that start with `prefix` (the prefix with its last byte
 * incremented, as etcd's range_end wants) to `out`. Returns 0 or MG_ENOMEM. Thread: any.
 */
int mg_etcd_prefix_end(const char *prefix, mg_buf_t *out);

#endif
