#include "cli/serve.h"

#include "cli/options.h"
#include "cluster/cluster.h"
#include "cluster/etcd.h"
#include "cluster/fleet.h"
#include "control/state.h"
#include "core/cpu.h"
#include "core/file.h"
#include "core/log.h"
#include "infer/session.h"
#include "control/control.h"
#include "control/watch.h"
#include "net/api.h"
#include "net/grpc.h"
#include "net/auth.h"
#include "net/http.h"
#include "obs/access.h"
#include "obs/metrics.h"
#include "obs/trace.h"
#include "repo/registry.h"
#include "route/router.h"
#include "serve/pool.h"
#include "serve/ratelimit.h"
#include "serve/serve.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <urcu.h>

/* Everything `serve` can be told, from --config FILE and then the flags. */
typedef struct serve_opts {
    char repo[1024];
    char config[1024];
    mg_opt_listen_t listen;
    long long threads;
    long long max_body_bytes;
    char default_model[256];
    long long ort_threads;
    int log_level; /* mg_log_level_t */
    int log_json;
    long long drain_timeout;          /* seconds */
    mg_opt_listen_t grpc_listen;      /* not set: no gRPC listener */
    long long grpc_max_message_bytes; /* 0: --max-body-bytes */
    /* The fleet (cluster/cluster.h) and the state file (control/state.h). */
    char etcd[1024];
    char etcd_prefix[520];
    char state_dir[1024];
    char instance_id[128];
    long long etcd_lease_ttl;
    long long etcd_watch_check_ms;
    int metrics_off;   /* index in on_off */
    int metrics_names; /* index in metric_names */
    mg_opt_listen_t metrics_listen;
    char otlp_endpoint[1024];
    double trace_sample_ratio;
    char access_log[1024];
    int control_mode; /* index in control_modes */
    long long poll_secs;
    long long debounce_ms;
    mg_opt_list_t load_models;
    int require_checksums;
    int sandbox_off; /* index in sandbox_modes */
    long long sandbox_timeout_secs;
    long long sandbox_memory_mb;
    /* Request and connection limits (net/http1.h). */
    long long max_request_line, max_header_field, max_header_bytes, max_headers, max_chunks;
    long long max_pipelined, max_connections, max_client_conns;
    long long header_timeout_ms, body_timeout_ms, idle_timeout_ms;
    /* Overload and deadlines (serve/admit.h, serve/pool.h, serve/deadline.h). */
    long long exec_threads, max_inflight, max_request_timeout_ms, default_request_timeout_ms;
    long long rate_limit, rate_limit_burst;
    char rate_limit_header[128];
    /* The admin surface (net/auth.h). */
    mg_opt_listen_t admin_listen;
    char admin_token_file[1024];
} serve_opts_t;

enum { CONTROL_NONE = 0, CONTROL_POLL, CONTROL_EXPLICIT };
static const char *const control_modes[] = {"none", "poll", "explicit", NULL};
static const char *const sandbox_modes[] = {"on", "off", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const on_off[] = {"on", "off", NULL};
static const char *const metric_names[] = {"triton", "prometheus", NULL};

#define F(name) offsetof(serve_opts_t, name)
#define S(name) sizeof(((serve_opts_t *)0)->name)

/* Every option of `serve`: its flag, its --config key, its value and its help line. */
static const mg_opt_t serve_options[] = {
    {"repo", "repo", MG_OPT_STRING, F(repo), S(repo), 0, 0, NULL, "DIR", "a folder",
     "model repository: DIR/<model>/<version>/model.onnx [+ DIR/<model>/config.json]"},
    {"listen", "listen", MG_OPT_LISTEN, F(listen), 0, 0, 0, NULL, "ADDR:PORT", "ADDR:PORT",
     "address to listen on (default 127.0.0.1:8000; port 0 picks a free one)"},
    {"threads", "threads", MG_OPT_INT, F(threads), 0, 1, 256, NULL, "N", "1..256",
     "event loops, one per core by default"},
    {"config", NULL, MG_OPT_STRING, F(config), S(config), 0, 0, NULL, "FILE", "a file",
     "server config as a JSON object of the keys below; flags win"},
    {"max-body-bytes", "max_body_bytes", MG_OPT_INT, F(max_body_bytes), 0, 1, (long long)1 << 40,
     NULL, "N", "a positive byte count",
     "largest request body accepted (default 67108864, 64 MiB); larger gets 413"},
    {"default-model", "default_model", MG_OPT_STRING, F(default_model), S(default_model), 0, 0,
     NULL, "NAME", "a model name", "model for /predict requests that name none"},
    {"ort-threads", "ort_threads", MG_OPT_INT, F(ort_threads), 0, 1, 256, NULL, "N", "1..256",
     "ONNX Runtime global intra-op threads (default: one per core)"},
    {"log-level", "log_level", MG_OPT_CHOICE, F(log_level), 0, 0, 0, log_levels, "LEVEL",
     "debug, info, warn or error", "debug, info, warn or error (default info)"},
    {"log-json", NULL, MG_OPT_BOOL, F(log_json), 0, 0, 0, NULL, NULL, NULL,
     "write logs as one JSON object per line"},
    {NULL, "log_format", MG_OPT_CHOICE, F(log_json), 0, 0, 0, log_formats, NULL, "text or json",
     NULL},
    {"drain-timeout", "drain_timeout", MG_OPT_INT, F(drain_timeout), 0, 0, 3600, NULL, "SECS",
     "0..3600", "on SIGTERM/SIGINT, how long requests in flight may take to finish (default 30)"},
    {"grpc-listen", "grpc_listen", MG_OPT_LISTEN, F(grpc_listen), 0, 0, 0, NULL, "ADDR:PORT",
     "ADDR:PORT", "serve KServe v2 gRPC (GRPCInferenceService) there too (default: off)"},
    {"grpc-max-message-bytes", "grpc_max_message_bytes", MG_OPT_INT, F(grpc_max_message_bytes), 0,
     1, INT32_MAX, NULL, "N", "1..2147483647",
     "largest gRPC request message accepted (default: --max-body-bytes, capped at 2 GiB - 1)"},
    {"etcd", "etcd", MG_OPT_STRING, F(etcd), S(etcd), 0, 0, NULL, "URL[,URL...]", "etcd URLs",
     "take traffic policies, routes and the kill switch from etcd (the v3 JSON gateway)"},
    {"etcd-prefix", "etcd_prefix", MG_OPT_STRING, F(etcd_prefix), S(etcd_prefix), 0, 0, NULL,
     "PREFIX", "a key prefix", "the fleet's keys in etcd (default /modelgate/default)"},
    {"state-dir", "state_dir", MG_OPT_STRING, F(state_dir), S(state_dir), 0, 0, NULL, "DIR",
     "a folder", "keep the routing state in DIR/state.json, restored at start"},
    {"instance-id", "instance_id", MG_OPT_STRING, F(instance_id), S(instance_id), 0, 0, NULL, "ID",
     "a name", "this instance in the fleet's reports (default HOSTNAME:PORT)"},
    {"etcd-lease-ttl", "etcd_lease_ttl", MG_OPT_INT, F(etcd_lease_ttl), 0, 2, 3600, NULL, "S",
     "2..3600", "seconds an instance's report outlives it (default 10)"},
    {"etcd-watch-check-ms", "etcd_watch_check_ms", MG_OPT_INT, F(etcd_watch_check_ms), 0, 100,
     600000, NULL, "MS", "100..600000",
     "a watch silent this long is checked against etcd (default 5000)"},
    {"metrics", "metrics", MG_OPT_CHOICE, F(metrics_off), 0, 0, 0, on_off, "on|off", "on or off",
     "per-request metrics, /metrics and the canary page's figures (default on)"},
    {"metrics-names", "metrics_names", MG_OPT_CHOICE, F(metrics_names), 0, 0, 0, metric_names,
     "triton|prometheus", "triton or prometheus",
     "Triton's nv_inference_* names (default), or the same figures named the Prometheus way"},
    {"metrics-listen", "metrics_listen", MG_OPT_LISTEN, F(metrics_listen), 0, 0, 0, NULL,
     "ADDR:PORT", "ADDR:PORT", "also serve /metrics (only) on this address"},
    {"otlp-endpoint", "otlp_endpoint", MG_OPT_STRING, F(otlp_endpoint), S(otlp_endpoint), 0, 0,
     NULL, "URL", "an http:// URL",
     "export traces over OTLP/HTTP (JSON) to URL (no path: /v1/traces)"},
    {"trace-sample-ratio", "trace_sample_ratio", MG_OPT_DOUBLE, F(trace_sample_ratio), 0, 0, 1,
     NULL, "R", "a ratio 0..1",
     "share of new traces sampled (default 0.01); a traceparent's flag decides for its trace"},
    {"access-log", "access_log", MG_OPT_STRING, F(access_log), S(access_log), 0, 0, NULL, "FILE|-",
     "a file or -", "one JSON line per request to FILE (- for standard output)"},
    /* The model lifecycle. */
    {"model-control-mode", "model_control_mode", MG_OPT_CHOICE, F(control_mode), 0, 0, 0,
     control_modes, "MODE", "none, poll or explicit",
     "none (load all at start), poll (also watch the repository) or explicit (only what "
     "--load-model and the repository API load); default none"},
    {"repository-poll-secs", "repository_poll_secs", MG_OPT_INT, F(poll_secs), 0, 1, 86400, NULL,
     "N", "1..86400", "poll mode: rescan the whole repository at least every N s (default 5)"},
    {"repository-debounce-ms", "repository_debounce_ms", MG_OPT_INT, F(debounce_ms), 0, 0, 600000,
     NULL, "N", "0..600000",
     "poll mode: a version folder is loaded once unchanged for N ms (default 1000)"},
    {"load-model", "load_model", MG_OPT_LIST, F(load_models), 0, 0, 0, NULL, "NAME", "a model name",
     "explicit mode: load this model at start (repeatable)"},
    {"require-checksums", "require_checksums", MG_OPT_BOOL, F(require_checksums), 0, 0, 0, NULL,
     NULL, NULL, "refuse versions whose files SHA256SUMS or config.json 'sha256' do not cover"},
    {"sandbox", "sandbox", MG_OPT_CHOICE, F(sandbox_off), 0, 0, 0, sandbox_modes, "on|off",
     "on or off",
     "validate every version in a seccomp-filtered child first (default on; off only where "
     "seccomp is missing)"},
    {"sandbox-timeout-secs", "sandbox_timeout_secs", MG_OPT_INT, F(sandbox_timeout_secs), 0, 1,
     3600, NULL, "N", "1..3600",
     "the sandbox's wall-clock and CPU limit for creating and warming up a session (default 120)"},
    {"sandbox-memory-mb", "sandbox_memory_mb", MG_OPT_INT, F(sandbox_memory_mb), 0, 16, 1LL << 20,
     NULL, "N", "16..1048576",
     "the address space the sandbox child may add for the model (default 8192)"},
    /* Request and connection limits: README "Limits" lists each with its status. */
    {"max-request-line", "max_request_line", MG_OPT_INT, F(max_request_line), 0, 64, 1 << 20, NULL,
     "N", "64..1048576", "longest request line in bytes (default 8192); longer gets 414"},
    {"max-header-field", "max_header_field", MG_OPT_INT, F(max_header_field), 0, 64, 1 << 20, NULL,
     "N", "64..1048576", "longest header field in bytes (default 8192); longer gets 431"},
    {"max-header-bytes", "max_header_bytes", MG_OPT_INT, F(max_header_bytes), 0, 256, 16 << 20,
     NULL, "N", "256..16777216",
     "largest header section in bytes (default 65536); larger gets 431"},
    {"max-headers", "max_headers", MG_OPT_INT, F(max_headers), 0, 1, 10000, NULL, "N", "1..10000",
     "most header fields (default 100); more gets 431"},
    {"max-chunks", "max_chunks", MG_OPT_INT, F(max_chunks), 0, 1, 1 << 24, NULL, "N", "1..16777216",
     "most chunks in a chunked body (default 65536); more gets 413"},
    {"max-pipelined", "max_pipelined", MG_OPT_INT, F(max_pipelined), 0, 1, 1 << 20, NULL, "N",
     "1..1048576", "most requests answered from one burst of pipelined input (default 64); 429"},
    {"max-connections", "max_connections", MG_OPT_INT, F(max_connections), 0, 1, 1 << 24, NULL, "N",
     "1..16777216", "open connections per listener (default 10000); more get 503"},
    {"max-connections-per-client", "max_connections_per_client", MG_OPT_INT, F(max_client_conns), 0,
     1, 1 << 24, NULL, "N", "1..16777216",
     "open connections per client address (default 256); more get 429"},
    {"header-timeout-ms", "header_timeout_ms", MG_OPT_INT, F(header_timeout_ms), 0, 1, 3600000,
     NULL, "MS", "1..3600000",
     "time from a request's first byte to the end of its headers (default 10000); then 408"},
    {"body-timeout-ms", "body_timeout_ms", MG_OPT_INT, F(body_timeout_ms), 0, 1, 3600000, NULL,
     "MS", "1..3600000",
     "time from the end of the headers to the end of the body (default 60000); "
     "then 408"},
    {"keepalive-timeout-ms", "keepalive_timeout_ms", MG_OPT_INT, F(idle_timeout_ms), 0, 1, 3600000,
     NULL, "MS", "1..3600000", "idle keep-alive connections are closed after this (default 30000)"},
    /* The admin surface. */
    {"admin-listen", "admin_listen", MG_OPT_LISTEN, F(admin_listen), 0, 0, 0, NULL, "ADDR:PORT",
     "ADDR:PORT",
     "serve the admin API, repository load/unload and debug endpoints here only (not on --listen)"},
    {"admin-token-file", "admin_token_file", MG_OPT_STRING, F(admin_token_file),
     S(admin_token_file), 0, 0, NULL, "FILE", "a file",
     "bearer token the admin endpoints require (needed when they are reachable beyond loopback)"},
    /* Overload and deadlines. */
    {"exec-threads", "exec_threads", MG_OPT_INT, F(exec_threads), 0, 0, 1024, NULL, "N", "0..1024",
     "threads of the execution pool, for models with \"execution\": \"pool\" and models "
     "without \"execution\" whose Run took over 0.5 ms at load (default: one per core; 0: no pool, "
     "every Run on the loops)"},
    {"max-inflight", "max_inflight", MG_OPT_INT, F(max_inflight), 0, 0, 1000000, NULL, "N",
     "0..1000000",
     "requests in flight per model version when its config.json sets none (default 256; 0: no "
     "bound); more get 503"},
    {"max-request-timeout-ms", "max_request_timeout_ms", MG_OPT_INT, F(max_request_timeout_ms), 0,
     0, 86400000, NULL, "MS", "0..86400000",
     "cap on a request's timeout parameter or Request-Timeout (default 60000; 0: none)"},
    {"default-request-timeout-ms", "default_request_timeout_ms", MG_OPT_INT,
     F(default_request_timeout_ms), 0, 0, 86400000, NULL, "MS", "0..86400000",
     "deadline of requests that set none (default 0: none); past it 504"},
    {"rate-limit", "rate_limit", MG_OPT_INT, F(rate_limit), 0, 0, 1000000, NULL, "N", "0..1000000",
     "inference requests a second per client (default 0: no limit); over it 429"},
    {"rate-limit-burst", "rate_limit_burst", MG_OPT_INT, F(rate_limit_burst), 0, 0, 1000000, NULL,
     "N", "0..1000000", "requests a client may send at once above the rate (default: the rate)"},
    {"rate-limit-header", "rate_limit_header", MG_OPT_STRING, F(rate_limit_header),
     S(rate_limit_header), 0, 0, NULL, "NAME", "a header name",
     "the header naming the client for --rate-limit (default: the peer address)"},
    MG_OPT_END,
};

#undef F
#undef S

static const char serve_usage_head[] = "usage: modelgate serve --repo DIR [options]\n\n";

/* The defaults, then --config FILE, then the flags (which win). Returns 0, 1 (--help) or 2. */
static int read_options(int argc, char **argv, serve_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->listen.host, sizeof(o->listen.host), "127.0.0.1");
    o->listen.port = 8000;
    o->max_body_bytes = 64LL << 20;
    o->log_level = MG_LOG_INFO;
    o->drain_timeout = 30;
    snprintf(o->etcd_prefix, sizeof(o->etcd_prefix), "/modelgate/default");
    o->etcd_lease_ttl = 10;
    o->etcd_watch_check_ms = 5000;
    o->trace_sample_ratio = 0.01;
    o->poll_secs = 5;
    o->debounce_ms = 1000;
    o->sandbox_timeout_secs = 120;
    o->sandbox_memory_mb = 8192;
    mg_http1_limits_t lim;
    mg_http1_limits_default(&lim);
    o->max_request_line = (long long)lim.max_request_line;
    o->max_header_field = (long long)lim.max_header_field;
    o->max_header_bytes = (long long)lim.max_header_bytes;
    o->max_headers = (long long)lim.max_headers;
    o->max_chunks = (long long)lim.max_chunks;
    o->max_pipelined = (long long)lim.max_pipelined;
    o->max_connections = (long long)lim.max_connections;
    o->max_client_conns = (long long)lim.max_client_conns;
    o->header_timeout_ms = lim.header_timeout_ms;
    o->body_timeout_ms = lim.body_timeout_ms;
    o->idle_timeout_ms = lim.idle_timeout_ms;
    o->max_inflight = 256;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o->exec_threads = cores > 0 ? cores : 1;
    o->max_request_timeout_ms = 60000;
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 &&
            mg_opt_load_file(serve_options, argv[i + 1], o) != 0)
            return 2;
    }
    return mg_opt_parse_args(serve_options, argc, argv, o, serve_usage_head);
}

/* ---- SIGHUP ------------------------------------------------------------------------------- */

/* The settings SIGHUP applies live (by --config key); every other one needs a restart. */
static const char *const live_keys[] = {"log_level", "log_format", "drain_timeout", NULL};

static int is_live(const char *key)
{
    for (int i = 0; live_keys[i] != NULL; i++) {
        if (strcmp(live_keys[i], key) == 0)
            return 1;
    }
    return 0;
}

/* The bytes of option row `o` in an options struct. */
static size_t opt_size(const mg_opt_t *o)
{
    switch (o->kind) {
    case MG_OPT_STRING: return o->size;
    case MG_OPT_INT: return sizeof(long long);
    case MG_OPT_DOUBLE: return sizeof(double);
    case MG_OPT_LISTEN: return offsetof(mg_opt_listen_t, set);
    case MG_OPT_LIST: return sizeof(mg_opt_list_t);
    default: return sizeof(int);
    }
}

/* One SIGHUP rescan at a time: the operation and whether it is out. */
static mg_control_op_t rescan_op;
static atomic_bool rescan_out;

static void rescan_done(mg_control_op_t *op)
{
    if (op->rc != 0)
        mg_log(MG_LOG_WARN, "main", "reload: repository rescan not run (%s)", op->err.msg);
    else
        mg_log(op->count > 0 ? MG_LOG_WARN : MG_LOG_INFO, "main",
               "reload: repository rescanned models_failed=%zu", op->count);
    atomic_store(&rescan_out, false);
}

/*
 * SIGHUP: reads the options again (defaults, --config, flags) and applies what can change
 * live; says which changed settings wait for a restart; then rescans the repository through
 * the control plane (MG_CONTROL_RESCAN of the whole repository: new folders load, changed
 * versions are rebuilt, unchanged ones keep serving untouched, gone folders leave).
 */
static void reload(int argc, char **argv, serve_opts_t *cur, mg_control_t *control)
{
    serve_opts_t next;
    if (read_options(argc, argv, &next) != 0) {
        mg_log(MG_LOG_ERROR, "main",
               "reload: options not applied (the config file is invalid, "
               "see above); the running settings stay");
    } else {
        int changed = 0;
        for (const mg_opt_t *o = serve_options; o->flag != NULL || o->key != NULL; o++) {
            const char *name = o->key != NULL ? o->key : o->flag;
            if (o->key == NULL || (o->flag != NULL && strcmp(o->flag, "log-json") == 0))
                continue; /* flag-only rows are fixed by the command line; log-json is log_format */
            if (memcmp((char *)cur + o->offset, (char *)&next + o->offset, opt_size(o)) == 0)
                continue;
            changed++;
            if (is_live(name))
                mg_log(MG_LOG_INFO, "main", "reload: %s applied", name);
            else
                mg_log(MG_LOG_WARN, "main",
                       "reload: %s changed but applies only after a restart (kept as it was)",
                       name);
        }
        cur->log_level = next.log_level;
        cur->log_json = next.log_json;
        cur->drain_timeout = next.drain_timeout;
        mg_log_configure((mg_log_level_t)cur->log_level, cur->log_json);
        mg_log(MG_LOG_INFO, "main",
               "reload: options read changed=%d (live: log_level, "
               "log_format, drain_timeout)",
               changed);
    }
    if (atomic_exchange(&rescan_out, true)) {
        mg_log(MG_LOG_INFO, "main", "reload: a repository rescan is already running");
        return;
    }
    memset(&rescan_op, 0, sizeof(rescan_op));
    rescan_op.kind = MG_CONTROL_RESCAN; /* model "": the whole repository */
    rescan_op.done = rescan_done;
    if (mg_control_submit(control, &rescan_op) != 0)
        atomic_store(&rescan_out, false);
}

/* ---- the fleet and the state file --------------------------------------------------------- */

/*
 * Before anything starts (ONNX Runtime's threads included): the state file's folder (created
 * when missing) and, with --etcd, the endpoints and the prefix. Returns 0, or -1 after saying
 * why.
 */
static int fleet_check(const serve_opts_t *o, char *state_path, size_t cap)
{
    if (o->state_dir[0] != '\0') {
        if (mkdir(o->state_dir, 0700) != 0 && errno != EEXIST) {
            mg_log(MG_LOG_ERROR, "main", "cannot create --state-dir %s: %s", o->state_dir,
                   strerror(errno));
            return -1;
        }
        struct stat st;
        if (stat(o->state_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            mg_log(MG_LOG_ERROR, "main", "--state-dir %s is not a folder", o->state_dir);
            return -1;
        }
        snprintf(state_path, cap, "%s/%s", o->state_dir, MG_STATE_FILE);
    }
    if (o->etcd[0] == '\0')
        return 0;
    mg_etcd_t *probe = NULL;
    mg_etcd_opts_t eo = {.endpoints = o->etcd};
    mg_err_t err;
    if (mg_etcd_new(&probe, &eo, &err) != 0 || mg_fleet_check_prefix(o->etcd_prefix, &err) != 0) {
        mg_etcd_free(probe);
        mg_log(MG_LOG_ERROR, "main", "--etcd: %s", err.msg);
        return -1;
    }
    mg_etcd_free(probe);
    if (o->state_dir[0] == '\0')
        mg_log(MG_LOG_WARN, "main",
               "--etcd without --state-dir: a restart while etcd is unreachable serves no "
               "configuration until etcd answers");
    return 0;
}

/*
 * Before anything is served: routing changes saved to the state file, and with --etcd the
 * admin API's routing changes refused (etcd owns them).
 */
static void fleet_setup(const serve_opts_t *o, mg_control_t *control, const char *state_path)
{
    if (state_path[0] != '\0')
        mg_control_persist_with(control, mg_state_persist, (void *)state_path);
    if (o->etcd[0] != '\0')
        mg_control_managed_by(control, "etcd");
}

/*
 * Once the repository is loaded: the routing state of the last run from the state file, then,
 * with --etcd, the fleet's watch and report (which replace it as soon as etcd answers).
 */
static int fleet_join(const serve_opts_t *o, mg_control_t *control, mg_registry_t *reg,
                      const char *state_path, int port, mg_cluster_t **cluster)
{
    mg_state_restored_t restored = {.saved_at = 0};
    mg_err_t err;
    if (state_path[0] != '\0') {
        int rc = mg_state_restore(control, state_path, &restored, &err);
        if (rc == 0)
            mg_log(MG_LOG_INFO, "main",
                   "routing state restored path=%s source=%s config_revision=%llu age_s=%lld",
                   state_path, restored.source, (unsigned long long)restored.revision,
                   (long long)(time(NULL) - restored.saved_at));
        else if (rc != MG_ENOENT)
            mg_log(MG_LOG_ERROR, "main", "routing state not restored (%s)", err.msg);
        if (rc != 0)
            memset(&restored, 0, sizeof(restored));
    }
    if (o->etcd[0] == '\0')
        return 0;
    char id[256], address[200], host[128] = "localhost";
    gethostname(host, sizeof(host) - 1);
    snprintf(id, sizeof(id), "%s", o->instance_id);
    if (id[0] == '\0')
        snprintf(id, sizeof(id), "%s:%d", host, port);
    snprintf(address, sizeof(address), "%s:%d", o->listen.host, port);
    int from_etcd = strcmp(restored.source, "etcd") == 0;
    mg_cluster_opts_t co = {
        .endpoints = o->etcd,
        .prefix = o->etcd_prefix,
        .instance_id = id,
        .address = address,
        .lease_ttl_s = (int)o->etcd_lease_ttl,
        .watch_check_ms = (int)o->etcd_watch_check_ms,
        .control = control,
        .registry = reg,
        .restored_revision = from_etcd ? restored.revision : 0,
        .restored_digest = from_etcd ? restored.digest : 0,
        .restored_saved_at = restored.saved_at,
    };
    if (mg_cluster_start(cluster, &co, &err) != 0) {
        mg_log(MG_LOG_ERROR, "main", "--etcd: %s", err.msg);
        return -1;
    }
    return 0;
}

/* ---- the main thread ---------------------------------------------------------------------- */

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Waits for signals until the server has drained. SIGHUP reloads; the first SIGTERM/SIGINT
 * drains: readiness turns false at once, the listeners close, requests already received
 * finish, then this returns and the caller stops everything and exits 0. When the drain
 * deadline passes first the process exits 0 at once (a loop may be inside a Run that outlasts
 * it); a second SIGTERM/SIGINT exits 1 at once. The event loops never see a signal: they are
 * blocked in every thread but this one.
 */
static void serve_signals(const sigset_t *sigs, int argc, char **argv, serve_opts_t *o,
                          mg_serve_t *core, mg_http_server_t *http, mg_grpc_server_t *grpc,
                          mg_control_t *control)
{
    int64_t deadline = 0;
    int draining = 0;
    for (;;) {
        struct timespec tick = {0, 20 * 1000000L};
        int sig = draining ? sigtimedwait(sigs, NULL, &tick) : sigwaitinfo(sigs, NULL);
        if (sig == SIGHUP && !draining) {
            mg_log(MG_LOG_INFO, "main", "reload (signal %d)", sig);
            reload(argc, argv, o, control);
        } else if ((sig == SIGTERM || sig == SIGINT) && draining) {
            mg_log(MG_LOG_WARN, "main", "second signal %d: exiting now, connections open=%zu", sig,
                   mg_http_open_connections(http));
            _exit(1);
        } else if (sig == SIGTERM || sig == SIGINT) {
            draining = 1;
            deadline = monotonic_ms() + o->drain_timeout * 1000;
            mg_serve_drain(core);
            mg_http_drain(http);
            mg_grpc_drain(grpc, (int)o->drain_timeout * 1000);
            mg_log(MG_LOG_INFO, "main",
                   "draining (signal %d): not ready, listeners closing, connections open=%zu "
                   "drain_timeout=%llds",
                   sig, mg_http_open_connections(http), o->drain_timeout);
        } else if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            mg_log(MG_LOG_ERROR, "main", "sigwait failed (%s)", strerror(errno));
            return;
        }
        if (!draining)
            continue;
        size_t open = mg_http_open_connections(http);
        if (mg_http_drained(http) && mg_grpc_drained(grpc)) {
            mg_log(MG_LOG_INFO, "main", "drained: every connection answered and closed");
            return;
        }
        if (monotonic_ms() >= deadline) {
            /* Loops may be inside a Run that outlasts the deadline: do not wait to join them. */
            mg_log(MG_LOG_WARN, "main",
                   "drain timeout after %llds: exiting with connections open=%zu", o->drain_timeout,
                   open);
            _exit(0);
        }
    }
}

int mg_cli_serve(int argc, char **argv)
{
    serve_opts_t o;
    int prc = read_options(argc, argv, &o);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    if (o.repo[0] == '\0') {
        fprintf(stderr, "modelgate: serve needs --repo DIR (or \"repo\" in --config)\n");
        return 2;
    }
    mg_log_configure((mg_log_level_t)o.log_level, o.log_json);
    char state_path[1100] = "";
    if (fleet_check(&o, state_path, sizeof(state_path)) != 0)
        return 1;

    /* The admin surface: where it is reachable and whether it needs a token, before binding. */
    mg_auth_t admin_auth = {0};
    mg_err_t aerr;
    if (o.admin_token_file[0] != '\0' &&
        mg_auth_load(&admin_auth, o.admin_token_file, &aerr) != 0) {
        fprintf(stderr, "modelgate: %s\n", aerr.msg);
        return 2;
    }
    const mg_opt_listen_t *admin_at = o.admin_listen.set ? &o.admin_listen : &o.listen;
    /* Without --admin-listen, gRPC's repository calls are admin calls too. */
    if (!o.admin_listen.set && o.grpc_listen.set && mg_auth_is_loopback(admin_at->host))
        admin_at = &o.grpc_listen;
    if (!admin_auth.set && !mg_auth_is_loopback(admin_at->host)) {
        fprintf(stderr,
                "modelgate: the admin API would be reachable on %s:%d without a token; give "
                "--admin-token-file FILE, or --admin-listen 127.0.0.1:PORT\n",
                admin_at->host, admin_at->port);
        return 2;
    }

    /* Signals are taken by sigwait in this thread only; every other thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    int status = 1;
    mg_err_t err;
    mg_err_clear(&err);
    mg_registry_t *reg = NULL;
    mg_router_t *router = NULL;
    mg_serve_t *core = NULL;
    mg_control_t *control = NULL;
    mg_watch_t *watch = NULL;
    mg_http_server_t *http = NULL;
    mg_shm_t *shm = NULL; /* Triton's system shared-memory regions (serve/shm.h) */
    mg_grpc_server_t *grpc = NULL;
    mg_cluster_t *cluster = NULL;
    mg_pool_t *pool = NULL;
    mg_ratelimit_t *ratelimit = NULL;
    rcu_register_thread();

    mg_infer_env_opts_t eo = {
        .intra_op_threads = (int)o.ort_threads, .inter_op_threads = 1, .log_level = 3};
    if (mg_infer_env_init(&eo, &err) != 0) {
        mg_log(MG_LOG_ERROR, "main", "onnx runtime init failed (%s)", err.msg);
        goto out;
    }
    mg_log(MG_LOG_INFO, "main", "starting modelgate version=%s onnxruntime=%s repo=%s", MG_VERSION,
           mg_infer_runtime_version(), o.repo);
    /* Observability first: loads at start-up are measured and traced too. */
    mg_obs_opts_t obs = {.metrics = o.metrics_off == 0, .prometheus_names = o.metrics_names == 1};
    mg_trace_opts_t to = {.endpoint = o.otlp_endpoint, .sample_ratio = o.trace_sample_ratio};
    if (mg_obs_init(&obs, &err) != 0 ||
        (o.otlp_endpoint[0] != '\0' && mg_trace_init(&to, &err) != 0) ||
        (o.access_log[0] != '\0' && mg_access_init(o.access_log, &err) != 0)) {
        mg_log(MG_LOG_ERROR, "main", "%s", err.msg);
        goto out;
    }
    /*
     * The wall clock is the bound --sandbox-timeout-secs names; RLIMIT_CPU backs it up a second
     * later. At the same value the two raced for a single-threaded child on an idle machine
     * (its CPU time runs as fast as the clock), and a slow model was reported either way.
     */
    mg_sandbox_opts_t sandbox = {.exe = "/proc/self/exe",
                                 .timeout_ms = (int)o.sandbox_timeout_secs * 1000,
                                 .cpu_secs = (int)o.sandbox_timeout_secs + 1,
                                 .memory_mb = (int)o.sandbox_memory_mb};
    if (o.sandbox_off)
        mg_log(MG_LOG_WARN, "main",
               "SANDBOX OFF: models are validated in this process, without seccomp, memory or "
               "time limits; a hostile or broken model can crash or hang the server");
    mg_registry_opts_t ro = {.repo_dir = o.repo,
                             .require_checksums = o.require_checksums != 0,
                             .sandbox = o.sandbox_off ? NULL : &sandbox,
                             .explicit_mode = o.control_mode == CONTROL_EXPLICIT,
                             .loop_threads = mg_cpu_threads((int)o.threads),
                             .pool = o.exec_threads > 0};
    if (mg_registry_new(&reg, &ro, &err) != 0) {
        mg_log(MG_LOG_ERROR, "main", "%s", err.msg);
        goto out;
    }
    if (mg_router_new(&router) != 0) {
        mg_log(MG_LOG_ERROR, "main", "out of memory");
        goto out;
    }
    mg_serve_opts_t so = {.registry = reg,
                          .router = router,
                          .default_model = o.default_model[0] ? o.default_model : NULL,
                          .max_inflight = (int)o.max_inflight,
                          .deadline = {o.max_request_timeout_ms, o.default_request_timeout_ms}};
    if (mg_shm_new(&shm) != 0) {
        mg_log(MG_LOG_ERROR, "main", "out of memory");
        goto out;
    }
    if (mg_serve_new(&core, &so, &err) != 0 || mg_control_start(&control, reg, router, &err) != 0) {
        mg_log(MG_LOG_ERROR, "main", "%s", err.msg);
        goto out;
    }
    fleet_setup(&o, control, state_path);
    if (o.exec_threads > 0 && mg_pool_new(&pool, (int)o.exec_threads, &err) != 0) {
        mg_log(MG_LOG_ERROR, "main", "%s", err.msg);
        goto out;
    }
    for (char *p = o.rate_limit_header; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    if (o.rate_limit > 0 &&
        mg_ratelimit_new(&ratelimit, (uint32_t)o.rate_limit, (uint32_t)o.rate_limit_burst) != 0) {
        mg_log(MG_LOG_ERROR, "main", "out of memory");
        goto out;
    }
    mg_api_t api = {.serve = core,
                    .control = control,
                    .max_body_bytes = (size_t)o.max_body_bytes,
                    .pool = pool,
                    .admin_auth = admin_auth,
                    .ratelimit = ratelimit,
                    .ratelimit_header = o.rate_limit_header[0] ? o.rate_limit_header : NULL,
                    .shm = shm};
    /* The main listener, then /metrics and the admin surface on listeners of their own. */
    mg_http_listen_t listen[3] = {
        {o.listen.host, o.listen.port,
         o.admin_listen.set ? MG_SURFACE_ALL & ~MG_SURFACE_ADMIN : MG_SURFACE_ALL}};
    int nlisten = 1;
    if (o.metrics_listen.set)
        listen[nlisten++] =
            (mg_http_listen_t){o.metrics_listen.host, o.metrics_listen.port, MG_SURFACE_METRICS};
    if (o.admin_listen.set)
        listen[nlisten++] =
            (mg_http_listen_t){o.admin_listen.host, o.admin_listen.port, MG_SURFACE_ADMIN};
    mg_http_opts_t ho = {
        .listen = listen, .nlisten = nlisten, .threads = (int)o.threads, .api = &api};
    ho.limits = (mg_http1_limits_t){
        .max_request_line = (size_t)o.max_request_line,
        .max_header_field = (size_t)o.max_header_field,
        .max_header_bytes = (size_t)o.max_header_bytes,
        .max_headers = (size_t)o.max_headers,
        .max_body_bytes = (size_t)o.max_body_bytes,
        .max_chunks = (size_t)o.max_chunks,
        .max_pipelined = (size_t)o.max_pipelined,
        .max_connections = (size_t)o.max_connections,
        .max_client_conns = (size_t)o.max_client_conns,
        .header_timeout_ms = (unsigned)o.header_timeout_ms,
        .body_timeout_ms = (unsigned)o.body_timeout_ms,
        .idle_timeout_ms = (unsigned)o.idle_timeout_ms,
    };
    /* Listen first (liveness answers at once, readiness says 503 while loading), then load. */
    if (mg_http_start(&http, &ho, &err) != 0) {
        mg_log(MG_LOG_ERROR, "main", "%s", err.msg);
        goto out;
    }
    if (o.grpc_listen.set) {
        long long max = o.grpc_max_message_bytes ? o.grpc_max_message_bytes : o.max_body_bytes;
        mg_grpc_opts_t go = {.host = o.grpc_listen.host,
                             .port = o.grpc_listen.port,
                             .threads = (int)o.threads,
                             .max_message_bytes = (size_t)(max > INT32_MAX ? INT32_MAX : max),
                             .serve = core,
                             .control = control,
                             .pool = pool,
                             .shm = shm,
                             .admin_auth = admin_auth,
                             .admin_elsewhere = o.admin_listen.set};
        if (mg_grpc_start(&grpc, &go, &err) != 0) {
            mg_log(MG_LOG_ERROR, "main", "%s", err.msg);
            goto out;
        }
    }
    /* explicit: only --load-model; none and poll: every folder. */
    const char *listed[MG_OPT_LIST_MAX];
    for (int i = 0; i < o.load_models.n; i++)
        listed[i] = o.load_models.items[i];
    mg_control_op_t load_all = {.kind = MG_CONTROL_LOAD_ALL,
                                .listed_only = o.control_mode == CONTROL_EXPLICIT,
                                .models = listed,
                                .nmodels = (size_t)o.load_models.n};
    if (o.load_models.n > 0 && o.control_mode != CONTROL_EXPLICIT)
        mg_log(MG_LOG_WARN, "main", "--load-model is for --model-control-mode explicit: ignored");
    mg_control_run(control, &load_all);
    if (o.control_mode == CONTROL_POLL) {
        mg_watch_opts_t wo = {.repo_dir = o.repo,
                              .poll_secs = (int)o.poll_secs,
                              .debounce_ms = (int)o.debounce_ms,
                              .require_checksums = o.require_checksums != 0};
        if (mg_watch_start(&watch, &wo, control, &err) != 0) {
            mg_log(MG_LOG_ERROR, "main", "%s", err.msg);
            goto out;
        }
    }
    if (fleet_join(&o, control, reg, state_path, mg_http_port(http, 0), &cluster) != 0)
        goto out;
    atomic_store_explicit(&api.cluster, cluster, memory_order_release);
    if (o.metrics_listen.set)
        mg_log(MG_LOG_INFO, "main", "metrics addr=%s:%d", o.metrics_listen.host,
               mg_http_port(http, 1));
    char grpc_addr[160] = "";
    if (grpc != NULL)
        snprintf(grpc_addr, sizeof(grpc_addr), " grpc_addr=%s:%d", o.grpc_listen.host,
                 mg_grpc_port(grpc));
    char admin_addr[160] = "";
    if (o.admin_listen.set)
        snprintf(admin_addr, sizeof(admin_addr), " admin_addr=%s:%d", o.admin_listen.host,
                 mg_http_port(http, nlisten - 1));
    mg_log(MG_LOG_INFO, "main", "ready addr=%s:%d%s%s admin_token=%s", o.listen.host,
           mg_http_port(http, 0), grpc_addr, admin_addr, admin_auth.set ? "required" : "none");

    serve_signals(&sigs, argc, argv, &o, core, http, grpc, control);
    mg_log(MG_LOG_INFO, "main", "stopping");
    status = 0;
out:
    /*
     * The watcher and the fleet's watch, then changes (queued ones are cancelled and
     * answered), then the executions on the pool (their answers wait on the loops' queues),
     * then the loops.
     */
    mg_watch_stop(watch);
    mg_cluster_stop(cluster);
    mg_control_stop(control);
    mg_pool_stop(pool);
    mg_grpc_stop(grpc, (int)o.drain_timeout * 1000); /* after a drain: at once */
    mg_http_stop(http);
    mg_pool_free(pool);
    mg_ratelimit_free(ratelimit);
    mg_shm_free(shm);
    mg_serve_free(core);
    mg_router_free(router);
    mg_registry_free(reg);
    mg_access_shutdown();
    mg_trace_shutdown();
    mg_obs_shutdown();
    rcu_unregister_thread();
    mg_infer_env_deinit();
    return status;
}

int mg_cli_serve_config_check(const char *text, size_t len, mg_err_t *err)
{
    serve_opts_t o;
    memset(&o, 0, sizeof(o));
    return mg_opt_load_text(serve_options, "config", text, len, &o, err);
}

int mg_cli_check(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs("usage: modelgate check MODEL.onnx\n"
              "  loads the model with ONNX Runtime and prints its inputs and outputs;\n"
              "  exits 0 when it loads, 1 when it does not\n",
              argc == 2 ? stdout : stderr);
        return argc == 2 ? 0 : 2;
    }
    const char *path = argv[1];
    mg_err_t err;
    mg_err_clear(&err);
    char *bytes = NULL;
    size_t len = 0;
    if (mg_file_read(path, MG_MODEL_FILE_MAX, &bytes, &len, &err) != 0) {
        fprintf(stderr, "modelgate: %s\n", err.msg);
        return 1;
    }

    mg_log_configure(MG_LOG_WARN, 0);
    mg_infer_env_opts_t eo = {.intra_op_threads = 1, .inter_op_threads = 1, .log_level = 4};
    int status = 1;
    mg_session_t *s = NULL;
    if (mg_infer_env_init(&eo, &err) != 0) {
        fprintf(stderr, "modelgate: onnx runtime init failed: %s\n", err.msg);
        goto out;
    }
    if (mg_session_new(&s, bytes, len, &(mg_session_opts_t){0}, &err) != 0) {
        fprintf(stderr, "modelgate: %s: invalid model: %s\n", path, err.msg);
        goto out;
    }
    printf("model %s: ok (ONNX Runtime %s)\n", path, mg_infer_runtime_version());
    for (int outputs = 0; outputs < 2; outputs++) {
        size_t n = outputs ? mg_session_noutputs(s) : mg_session_ninputs(s);
        printf("%s:\n", outputs ? "outputs" : "inputs");
        for (size_t i = 0; i < n; i++) {
            const mg_tensor_info_t *t = outputs ? mg_session_output(s, i) : mg_session_input(s, i);
            char shape[160];
            mg_shape_format(t->shape, t->ndim, shape, sizeof(shape));
            printf("  %-24s %-6s %s\n", t->name, mg_dtype_name(t->dtype), shape);
        }
    }
    status = 0;
out:
    mg_session_free(s);
    mg_infer_env_deinit();
    free(bytes);
    return status;
}
