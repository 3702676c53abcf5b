/*
 * The operator reports: /metrics, /v2/admin/stats, /debug/memory, /debug/config.
 *
 * The registry's and router's state is copied out of one RCU read section first (a small
 * list of models and versions), then written without holding the section, so a slow scrape
 * never holds up a publication's grace period.
 */
#include "serve/report.h"

#include "core/rcu.h"
#include "infer/session.h"
#include "obs/access.h"
#include "obs/prom.h"
#include "obs/trace.h"
#include "route/breaker.h"
#include "serve/info.h"

#include <dirent.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- what the registry and router say, copied out ----------------------------------------- */

typedef struct vrow {
    int64_t number;
    char text[24];
    mg_model_state_t state;
    char reason[256];
    bool has_breaker; /* false: the version left between the two reads */
    mg_breaker_status_t breaker;
} vrow_t;

typedef struct mrow {
    char name[256];
    int64_t default_version; /* 0: none ready */
    mg_policy_t policy;
    mg_pick_source_t source;
    int nv;
    vrow_t *v;
} mrow_t;

typedef struct view {
    mrow_t *m;
    size_t n;
    uint64_t revision;
    size_t rules;
} view_t;

static void view_free(view_t *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->m[i].v);
    free(w->m);
    memset(w, 0, sizeof(*w));
}

/* Copies one breaker row into the view's row of the same version. */
static int take_breaker(void *ctx, const mg_info_breaker_row_t *row)
{
    view_t *w = ctx;
    for (size_t i = 0; i < w->n; i++) {
        if (strcmp(w->m[i].name, row->model) != 0)
            continue;
        for (int k = 0; k < w->m[i].nv; k++) {
            if (strcmp(w->m[i].v[k].text, row->version) == 0) {
                w->m[i].v[k].has_breaker = true;
                w->m[i].v[k].breaker = row->status;
            }
        }
    }
    return 0;
}

static int view_take(mg_serve_t *s, view_t *w)
{
    memset(w, 0, sizeof(*w));
    mg_registry_t *reg = mg_serve_registry(s);
    mg_router_t *router = mg_serve_router(s);
    w->revision = mg_router_revision(router);
    w->rules = mg_router_table_count(router);
    int rc = 0;
    rcu_read_lock();
    const mg_registry_snapshot_t *snap = mg_registry_snapshot(reg);
    size_t n = mg_registry_snapshot_count(snap);
    w->m = calloc(n ? n : 1, sizeof(*w->m));
    if (w->m == NULL)
        rc = MG_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const mg_model_entry_t *e = mg_registry_snapshot_model(snap, i);
        mrow_t *m = &w->m[w->n++];
        snprintf(m->name, sizeof(m->name), "%s", mg_model_entry_name(e));
        const mg_model_version_t *d = mg_model_entry_default(e);
        m->default_version = d != NULL ? mg_model_version_number(d) : 0;
        const mg_policy_t *p =
            mg_pick_policy(reg, router, (mg_str_t){m->name, strlen(m->name)}, NULL, &m->source);
        if (p != NULL)
            m->policy = *p;
        int nv = mg_model_entry_nversions(e);
        m->v = calloc(nv > 0 ? (size_t)nv : 1, sizeof(*m->v));
        if (m->v == NULL) {
            rc = MG_ENOMEM;
            break;
        }
        for (int k = 0; k < nv; k++) {
            const mg_model_version_t *v = mg_model_entry_version(e, k);
            vrow_t *r = &m->v[m->nv++];
            r->number = mg_model_version_number(v);
            snprintf(r->text, sizeof(r->text), "%s", mg_model_version_text(v));
            r->state = mg_model_version_state(v);
            snprintf(r->reason, sizeof(r->reason), "%s", mg_model_version_reason(v));
        }
    }
    mg_rcu_read_unlock();
    /* The breakers as serve/info reads them (a version that cannot serve reads open). */
    mg_err_t err;
    if (rc == 0)
        rc = mg_info_breakers(s, (mg_str_t){"", 0}, take_breaker, w, &err);
    if (rc != 0)
        view_free(w);
    return rc;
}

/*
 * The states modelgate_model_version_state lists for each version, by their lifecycle names
 * (repo/version.h): a version reads 1 for the one it is in.
 */
static const mg_model_state_t states[] = {
    MG_MODEL_LOADING, MG_MODEL_READY, MG_MODEL_DRAINING, MG_MODEL_UNLOADED, MG_MODEL_FAILED,
};

#define NSTATES (sizeof(states) / sizeof(states[0]))

/* ---- the process -------------------------------------------------------------------------- */

typedef struct proc_figures {
    uint64_t rss, peak_rss, vsize;
    uint64_t open_fds, max_fds;
    double cpu_seconds;
} proc_figures_t;

/* Reads "Key:  123 kB" from /proc/self/status. */
static uint64_t status_kb(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p != NULL ? strtoull(p + strlen(key), NULL, 10) * 1024 : 0;
}

static void proc_read(proc_figures_t *f)
{
    memset(f, 0, sizeof(*f));
    FILE *st = fopen("/proc/self/status", "r");
    if (st != NULL) {
        char text[4096];
        size_t n = fread(text, 1, sizeof(text) - 1, st);
        text[n] = '\0';
        fclose(st);
        f->rss = status_kb(text, "VmRSS:");
        f->peak_rss = status_kb(text, "VmHWM:");
        f->vsize = status_kb(text, "VmSize:");
    }
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            f->open_fds += de->d_name[0] != '.';
        closedir(d);
        f->open_fds--; /* the listing's own descriptor */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        f->max_fds = rl.rlim_cur;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        f->cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- /metrics ----------------------------------------------------------------------------- */

/* One series' labels: model, version (and room for two more). */
typedef struct series_labels {
    char version[24];
    mg_prom_label_t l[4];
} series_labels_t;

static void labels_of(mg_obs_series_t id, series_labels_t *sl)
{
    snprintf(sl->version, sizeof(sl->version), "%lld", (long long)mg_obs_series_version(id));
    sl->l[0] = (mg_prom_label_t){"model", mg_obs_series_model(id)};
    sl->l[1] = (mg_prom_label_t){"version", sl->version};
}

#define STAT(field) offsetof(mg_obs_series_stats_t, field)
#define NONE        SIZE_MAX

/*
 * The per-series families with one value each. Triton's first, with Triton's names, types
 * and help (integer microseconds); with --metrics-names prometheus the same figures under
 * names that follow Prometheus's conventions (_total counters, seconds), which promtool's
 * lint accepts and Triton's spelling cannot pass.
 */
static const struct {
    const char *name, *prom_name, *type, *help;
    size_t value, plus; /* offsets of the uint64_t figure in mg_obs_series_stats_t, and of one
                           to add to it (NONE) */
    bool ns; /* a duration in ns: Triton's in integer us, the Prometheus name's in seconds */
} simple_families[] = {
    {"nv_inference_request_success", "modelgate_inference_request_success_total", "counter",
     "Number of successful inference requests, all batch sizes", STAT(success.count), NONE, false},
    {"nv_inference_count", "modelgate_inferences_total", "counter",
     "Number of inferences performed (does not include cached requests)", STAT(inference_count),
     NONE, false},
    {"nv_inference_exec_count", "modelgate_inference_executions_total", "counter",
     "Number of model executions performed (does not include cached requests)",
     STAT(execution_count), NONE, false},
    {"nv_inference_request_duration_us", "modelgate_inference_request_duration_seconds_total",
     "counter", "Cumulative inference request duration in microseconds (includes cached requests)",
     STAT(success.ns), STAT(fail.ns), true},
    {"nv_inference_queue_duration_us", "modelgate_inference_queue_duration_seconds_total",
     "counter", "Cumulative inference queuing duration in microseconds (includes cached requests)",
     STAT(queue.ns), NONE, true},
    {"nv_inference_compute_input_duration_us",
     "modelgate_inference_compute_input_duration_seconds_total", "counter",
     "Cumulative compute input duration in microseconds (does not include cached requests)",
     STAT(compute_input.ns), NONE, true},
    {"nv_inference_compute_infer_duration_us",
     "modelgate_inference_compute_infer_duration_seconds_total", "counter",
     "Cumulative compute inference duration in microseconds (does not include cached requests)",
     STAT(compute_infer.ns), NONE, true},
    {"nv_inference_compute_output_duration_us",
     "modelgate_inference_compute_output_duration_seconds_total", "counter",
     "Cumulative inference compute output duration in microseconds (does not include cached "
     "requests)",
     STAT(compute_output.ns), NONE, true},
    {"nv_inference_pending_request_count", "modelgate_inference_pending_requests", "gauge",
     "Instantaneous number of pending requests awaiting execution per-model.", STAT(pending), NONE,
     false},
    {"modelgate_requests_in_flight", "modelgate_requests_in_flight", "gauge",
     "Requests routed to the version and not answered yet", STAT(in_flight), NONE, false},
    {"modelgate_fallbacks_total", "modelgate_fallbacks_total", "counter",
     "Requests routed to this version that its model's stable version served instead",
     STAT(fallbacks), NONE, false},
};

#define NSIMPLE (sizeof(simple_families) / sizeof(simple_families[0]))

static int write_load(void *ctx, const mg_obs_load_stats_t *s)
{
    mg_buf_t *out = ctx;
    char version[24];
    snprintf(version, sizeof(version), "%lld", (long long)s->version);
    mg_prom_label_t l[4] = {{"model", s->model},
                            {"version", version},
                            {"outcome", mg_obs_load_outcome_name(s->outcome)}};
    return mg_prom_histogram(out, "modelgate_model_load_duration_seconds", l, 3, mg_obs_load_bounds,
                             s->buckets, MG_OBS_LOAD_BUCKETS, s->count, s->sum_seconds);
}

static int write_reload(void *ctx, const mg_obs_reload_stats_t *s)
{
    mg_buf_t *out = ctx;
    mg_prom_label_t l[2] = {{"model", s->model}, {"outcome", "success"}};
    int rc = mg_prom_u64(out, "modelgate_model_reloads_total", l, 2, s->ok);
    l[1].value = "failure";
    return rc ? rc : mg_prom_u64(out, "modelgate_model_reloads_total", l, 2, s->failed);
}

static int metrics_requests(mg_buf_t *out)
{
    uint32_t n = mg_obs_series_count();
    mg_obs_series_stats_t *st = calloc(n ? n : 1, sizeof(*st));
    if (st == NULL)
        return MG_ENOMEM;
    for (uint32_t id = 0; id < n; id++)
        mg_obs_series_read(id, &st[id]);
    int rc = 0;
    series_labels_t sl;
    bool prom = mg_obs_prometheus_names();
    const char *failure =
        prom ? "modelgate_inference_request_failure_total" : "nv_inference_request_failure";
    for (size_t f = 0; rc == 0 && f < NSIMPLE; f++) {
        const char *name = prom ? simple_families[f].prom_name : simple_families[f].name;
        const char *help = simple_families[f].help;
        if (prom && simple_families[f].ns)
            help = "Cumulative time in seconds (Triton's figure of the same name in microseconds)";
        rc = mg_prom_family(out, name, simple_families[f].type, help);
        for (uint32_t id = 0; rc == 0 && id < n; id++) {
            labels_of(id, &sl);
            const char *base = (const char *)&st[id];
            uint64_t v = *(const uint64_t *)(base + simple_families[f].value);
            if (simple_families[f].plus != NONE)
                v += *(const uint64_t *)(base + simple_families[f].plus);
            if (!simple_families[f].ns)
                rc = mg_prom_u64(out, name, sl.l, 2, v);
            else if (prom)
                rc = mg_prom_double(out, name, sl.l, 2, (double)v / 1e9);
            else
                rc = mg_prom_u64(out, name, sl.l, 2, v / 1000);
        }
        if (f == 0 && rc == 0) {
            /* Failures right after successes, as Triton lists them. */
            rc = mg_prom_family(out, failure, "counter",
                                "Number of failed inference requests, all batch sizes");
            for (uint32_t id = 0; rc == 0 && id < n; id++) {
                labels_of(id, &sl);
                for (int r = 0; rc == 0 && r < MG_OBS_FAIL_COUNT_; r++) {
                    sl.l[2] = (mg_prom_label_t){"reason", mg_obs_fail_name((mg_obs_fail_t)r)};
                    rc = mg_prom_u64(out, failure, sl.l, 3, st[id].fail_by_reason[r]);
                }
            }
        }
    }
    if (rc == 0)
        rc = mg_prom_family(out, "modelgate_request_duration_seconds", "histogram",
                            "Time from a request's arrival to its encoded answer, by the "
                            "version that served it and why it was routed there");
    for (uint32_t id = 0; rc == 0 && id < n; id++) {
        labels_of(id, &sl);
        for (int r = 0; rc == 0 && r < MG_OBS_REASONS; r++) {
            if (st[id].reason_count[r] == 0)
                continue;
            sl.l[2] = (mg_prom_label_t){"route_reason", mg_policy_reason_name(r)};
            rc = mg_prom_histogram(out, "modelgate_request_duration_seconds", sl.l, 3,
                                   mg_obs_latency_bounds, st[id].reason_buckets[r],
                                   MG_OBS_LATENCY_BUCKETS, st[id].reason_count[r],
                                   (double)st[id].reason_ns[r] / 1e9);
        }
    }
    if (rc == 0)
        rc = mg_prom_family(out, "modelgate_batch_requests", "histogram",
                            "ONNX Runtime Runs by the requests each served (opportunistic "
                            "batching joins the requests one event-loop wake decoded)");
    for (uint32_t id = 0; rc == 0 && id < n; id++) {
        if (st[id].execution_count == 0)
            continue;
        labels_of(id, &sl);
        rc = mg_prom_histogram(out, "modelgate_batch_requests", sl.l, 2, mg_obs_run_request_bounds,
                               st[id].run_request_buckets, MG_OBS_RUN_REQUEST_BUCKETS,
                               st[id].execution_count, (double)st[id].run_requests);
    }
    if (rc == 0)
        rc =
            mg_prom_family(out, "modelgate_route_decisions_total", "counter",
                           "Requests routed to a version, by the rule of precedence that chose it");
    for (uint32_t id = 0; rc == 0 && id < n; id++) {
        labels_of(id, &sl);
        for (int r = 0; rc == 0 && r < MG_OBS_REASONS; r++) {
            if (st[id].reason_count[r] == 0)
                continue;
            sl.l[2] = (mg_prom_label_t){"reason", mg_policy_reason_name(r)};
            rc = mg_prom_u64(out, "modelgate_route_decisions_total", sl.l, 3,
                             st[id].reason_count[r]);
        }
    }
    free(st);
    return rc;
}

/* modelgate_breaker_state's values: ordered by how much traffic the version gets. */
static uint64_t breaker_gauge(mg_breaker_state_t st)
{
    return st == MG_BREAKER_CLOSED ? 0 : st == MG_BREAKER_HALF_OPEN ? 1 : 2;
}

static int metrics_state(mg_serve_t *s, mg_buf_t *out)
{
    view_t w;
    int rc = view_take(s, &w);
    if (rc != 0)
        return rc;
    rc = mg_prom_family(out, "modelgate_model_version_state", "gauge",
                        "1 for the state each version of each model is in, 0 for the others");
    for (size_t i = 0; rc == 0 && i < w.n; i++) {
        for (int k = 0; rc == 0 && k < w.m[i].nv; k++) {
            for (size_t st = 0; rc == 0 && st < NSTATES; st++) {
                mg_prom_label_t l[3] = {{"model", w.m[i].name},
                                        {"version", w.m[i].v[k].text},
                                        {"state", mg_model_state_name(states[st])}};
                rc = mg_prom_u64(out, "modelgate_model_version_state", l, 3,
                                 w.m[i].v[k].state == states[st]);
            }
        }
    }
    if (rc == 0)
        rc = mg_prom_family(out, "modelgate_breaker_state", "gauge",
                            "Circuit breaker of the version: 0 closed, 1 half-open, 2 open (a "
                            "version that cannot serve reads open)");
    for (size_t i = 0; rc == 0 && i < w.n; i++) {
        for (int k = 0; rc == 0 && k < w.m[i].nv; k++) {
            const vrow_t *v = &w.m[i].v[k];
            mg_prom_label_t l[2] = {{"model", w.m[i].name}, {"version", v->text}};
            if (v->has_breaker)
                rc = mg_prom_u64(out, "modelgate_breaker_state", l, 2,
                                 breaker_gauge(v->breaker.state));
        }
    }
    if (rc == 0)
        rc = mg_prom_family(out, "modelgate_breaker_trips_total", "counter",
                            "Times the version's circuit breaker opened");
    for (size_t i = 0; rc == 0 && i < w.n; i++) {
        for (int k = 0; rc == 0 && k < w.m[i].nv; k++) {
            const vrow_t *v = &w.m[i].v[k];
            mg_prom_label_t l[2] = {{"model", w.m[i].name}, {"version", v->text}};
            if (v->has_breaker)
                rc = mg_prom_u64(out, "modelgate_breaker_trips_total", l, 2, v->breaker.trips);
        }
    }
    if (rc == 0)
        rc = mg_prom_scalar(out, "modelgate_routing_revision", "gauge",
                            "Revision of the live route table and traffic policy snapshot",
                            (double)w.revision);
    if (rc == 0)
        rc = mg_prom_scalar(out, "modelgate_route_rules", "gauge", "Rules in the live route table",
                            (double)w.rules);
    view_free(&w);
    return rc;
}

static int metrics_loads(mg_buf_t *out)
{
    int rc = mg_prom_family(out, "modelgate_model_load_duration_seconds", "histogram",
                            "Time to read, verify, build and warm up one model version, by outcome "
                            "(success, failure, unchanged: same bytes and settings, kept)");
    if (rc == 0)
        rc = mg_obs_loads_foreach(write_load, NULL, out);
    if (rc == 0)
        rc = mg_prom_family(out, "modelgate_model_reloads_total", "counter",
                            "Repository loads of an existing model, by outcome");
    return rc ? rc : mg_obs_loads_foreach(NULL, write_reload, out);
}

static int metrics_exporters(mg_buf_t *out)
{
    mg_trace_stats_t ts;
    mg_trace_stats(&ts);
    int rc = mg_prom_scalar(out, "modelgate_trace_spans_exported_total", "counter",
                            "Spans the OTLP collector accepted", (double)ts.exported);
    if (rc == 0)
        rc = mg_prom_family(out, "modelgate_trace_spans_dropped_total", "counter",
                            "Spans dropped: the export queue was full, or the collector failed or "
                            "was unreachable");
    mg_prom_label_t l[1] = {{"reason", "queue_full"}};
    if (rc == 0)
        rc = mg_prom_u64(out, "modelgate_trace_spans_dropped_total", l, 1, ts.dropped_queue_full);
    l[0].value = "export_failed";
    if (rc == 0)
        rc =
            mg_prom_u64(out, "modelgate_trace_spans_dropped_total", l, 1, ts.dropped_export_failed);
    if (rc == 0)
        rc = mg_prom_family(out, "modelgate_access_log_lines_total", "counter",
                            "Access log lines written, and dropped because the writer fell behind");
    l[0] = (mg_prom_label_t){"outcome", "written"};
    if (rc == 0)
        rc = mg_prom_u64(out, "modelgate_access_log_lines_total", l, 1, mg_access_written());
    l[0].value = "dropped";
    return rc ? rc
              : mg_prom_u64(out, "modelgate_access_log_lines_total", l, 1, mg_access_dropped());
}

static int metrics_process(mg_buf_t *out)
{
    proc_figures_t f;
    proc_read(&f);
    /* Prometheus's standard process metrics, by their standard names and help. */
    const struct {
        const char *name, *type, *help;
        double value;
    } figures[] = {
        {"process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", (double)f.rss},
        {"process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", (double)f.vsize},
        {"process_open_fds", "gauge", "Number of open file descriptors.", (double)f.open_fds},
        {"process_max_fds", "gauge", "Maximum number of open file descriptors.", (double)f.max_fds},
        {"process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
         f.cpu_seconds},
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(figures) / sizeof(figures[0]); i++)
        rc = mg_prom_scalar(out, figures[i].name, figures[i].type, figures[i].help,
                            figures[i].value);
    if (rc == 0)
        rc = mg_prom_family(out, "modelgate_build_info", "gauge",
                            "Always 1; the labels name the build");
    mg_prom_label_t l[2] = {{"version", MG_VERSION}, {"onnxruntime", mg_infer_runtime_version()}};
    return rc ? rc : mg_prom_u64(out, "modelgate_build_info", l, 2, 1);
}

int mg_report_metrics(mg_serve_t *s, mg_buf_t *out)
{
    int rc = metrics_requests(out);
    if (rc == 0)
        rc = metrics_state(s, out);
    if (rc == 0)
        rc = metrics_loads(out);
    if (rc == 0)
        rc = metrics_exporters(out);
    if (rc == 0)
        rc = metrics_process(out);
    return rc ? rc : mg_obs_collectors_run(out);
}

/* ---- /v2/admin/stats ---------------------------------------------------------------------- */

static uint32_t policy_weight(const mg_policy_t *p, int64_t version, uint64_t *total)
{
    uint32_t w = 0;
    *total = 0;
    for (int i = 0; i < p->nversions; i++) {
        *total += p->weights[i];
        if (p->versions[i] == version)
            w = p->weights[i];
    }
    return w;
}

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0.0;
}

static int stats_version(mg_buf_t *out, const mrow_t *m, const vrow_t *v, uint64_t window_total)
{
    mg_obs_series_t id;
    mg_obs_series_stats_t st;
    mg_obs_window_t win;
    memset(&st, 0, sizeof(st));
    memset(&win, 0, sizeof(win));
    if (mg_obs_series_find((mg_str_t){m->name, strlen(m->name)}, v->number, &id) == 0) {
        mg_obs_series_read(id, &st);
        mg_obs_series_window(id, &win, NULL);
    }
    uint64_t total = 0;
    uint32_t weight = 0;
    double weight_share;
    bool in_policy = m->source != MG_PICK_NONE;
    if (in_policy) {
        weight = policy_weight(&m->policy, v->number, &total);
        weight_share = ratio(weight, total);
    } else {
        /* No policy: the default version takes all the traffic. */
        weight_share = v->number == m->default_version ? 1.0 : 0.0;
    }
    int rc = mg_buf_printf(out, "{\"version\":\"%s\",\"state\":\"%s\",\"reason\":", v->text,
                           mg_model_state_name(v->state));
    if (rc == 0)
        rc = mg_buf_json_string(out, v->reason, strlen(v->reason));
    if (rc == 0 && in_policy)
        rc = mg_buf_printf(out, ",\"weight\":%u", weight);
    else if (rc == 0)
        rc = mg_buf_puts(out, ",\"weight\":null");
    /* Chosen for it: what it answered (right or wrong, replays aside) and what others did. */
    uint64_t routed = win.requests - win.replayed + win.fallbacks;
    if (rc == 0)
        rc = mg_buf_printf(
            out,
            ",\"weight_share\":%.4f,\"stable\":%s,\"default\":%s,"
            "\"window\":{\"seconds\":%.1f,\"requests\":%llu,\"share\":%.4f,\"rate\":%.2f,"
            "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"errors\":%llu,\"error_rate\":%.4f,"
            "\"fallbacks\":%llu,\"fallback_rate\":%.4f},"
            "\"total\":{\"success\":%llu,\"failure\":%llu,\"fallbacks\":%llu,\"in_flight\":%llu},"
            "\"breaker\":",
            weight_share, in_policy && m->policy.stable == v->number ? "true" : "false",
            v->number == m->default_version ? "true" : "false", win.seconds,
            (unsigned long long)win.requests, ratio(win.requests, window_total),
            win.seconds > 0 ? (double)win.requests / win.seconds : 0.0, win.p50_ms, win.p99_ms,
            (unsigned long long)win.failures, ratio(win.failures, win.requests),
            (unsigned long long)win.fallbacks, ratio(win.fallbacks, routed),
            (unsigned long long)st.success.count, (unsigned long long)st.fail.count,
            (unsigned long long)st.fallbacks, (unsigned long long)st.in_flight);
    if (rc == 0 && !v->has_breaker)
        rc = mg_buf_puts(out, "null}");
    else if (rc == 0)
        rc = mg_buf_printf(out,
                           "{\"state\":\"%s\",\"trips\":%llu,\"last_trip\":\"%s\","
                           "\"reopen_in_ms\":%lld,\"failure_streak\":%d}}",
                           mg_breaker_state_name(v->breaker.state),
                           (unsigned long long)v->breaker.trips,
                           mg_breaker_trip_name(v->breaker.last_trip),
                           (long long)v->breaker.reopen_in_ms, v->breaker.consecutive_failures);
    return rc;
}

/* The stats of one view, with the window snapshot `seq` named. */
static int stats_write(const view_t *w, uint64_t seq, mg_buf_t *out)
{
    int rc = mg_buf_printf(out,
                           "{\"server\":\"modelgate\",\"version\":\"%s\",\"time_ms\":%lld,"
                           "\"metrics\":%s,\"sample\":%llu,\"revision\":%llu,\"models\":[",
                           MG_VERSION, (long long)(mg_obs_unix_ns(mg_obs_now_ns()) / 1000000),
                           mg_obs_enabled() ? "true" : "false", (unsigned long long)seq,
                           (unsigned long long)w->revision);
    for (size_t i = 0; rc == 0 && i < w->n; i++) {
        const mrow_t *m = &w->m[i];
        /* The model's requests over the window, for each version's observed share. */
        uint64_t window_total = 0;
        for (int k = 0; k < m->nv; k++) {
            mg_obs_series_t id;
            mg_obs_window_t win;
            if (mg_obs_series_find((mg_str_t){m->name, strlen(m->name)}, m->v[k].number, &id) ==
                    0 &&
                mg_obs_series_window(id, &win, NULL) == 0)
                window_total += win.requests;
        }
        rc = mg_buf_printf(out, "%s{\"name\":", i ? "," : "");
        if (rc == 0)
            rc = mg_buf_json_string(out, m->name, strlen(m->name));
        if (rc == 0)
            rc = mg_buf_printf(out, ",\"policy_source\":\"%s\",\"default_version\":",
                               mg_pick_source_name(m->source));
        if (rc == 0)
            rc = m->default_version ? mg_buf_printf(out, "\"%lld\"", (long long)m->default_version)
                                    : mg_buf_puts(out, "null");
        if (rc == 0 && m->source != MG_PICK_NONE)
            rc = mg_buf_printf(out, ",\"stable\":\"%lld\"", (long long)m->policy.stable);
        if (rc == 0)
            rc = mg_buf_printf(out, ",\"window_requests\":%llu,\"versions\":[",
                               (unsigned long long)window_total);
        for (int k = 0; rc == 0 && k < m->nv; k++) {
            if (k > 0)
                rc = mg_buf_puts(out, ",");
            if (rc == 0)
                rc = stats_version(out, m, &m->v[k], window_total);
        }
        if (rc == 0)
            rc = mg_buf_puts(out, "]}");
    }
    return rc ? rc : mg_buf_puts(out, "]}");
}

int mg_report_stats(mg_serve_t *s, mg_buf_t *out)
{
    view_t w;
    int rc = view_take(s, &w);
    if (rc != 0)
        return rc;
    /*
     * Every version's window from the same snapshot: should the sampler take one meanwhile,
     * write them again (it takes one a second; a few tries always find a quiet moment).
     */
    size_t start = out->len;
    for (int attempt = 0; attempt < 5; attempt++) {
        out->len = start;
        uint64_t seq = mg_obs_window_seq();
        rc = stats_write(&w, seq, out);
        if (rc != 0 || mg_obs_window_seq() == seq)
            break;
    }
    view_free(&w);
    return rc;
}

/* ---- /debug/memory ------------------------------------------------------------------------ */

typedef struct stat_writer {
    mg_buf_t *out;
    int first;
} stat_writer_t;

static int write_stat(void *ctx, const char *key, const char *value)
{
    stat_writer_t *w = ctx;
    int rc = mg_buf_puts(w->out, w->first ? "" : ",");
    w->first = 0;
    if (rc == 0)
        rc = mg_buf_json_string(w->out, key, strlen(key));
    if (rc == 0)
        rc = mg_buf_puts(w->out, ":");
    /* Numbers stay numbers; anything else is a string. */
    char *end;
    strtoll(value, &end, 10);
    if (rc == 0 && value[0] != '\0' && *end == '\0')
        return mg_buf_puts(w->out, value);
    return rc ? rc : mg_buf_json_string(w->out, value, strlen(value));
}

int mg_report_memory(mg_serve_t *s, mg_buf_t *out)
{
    proc_figures_t f;
    proc_read(&f);
    struct mallinfo2 mi = mallinfo2();
    int rc = mg_buf_printf(
        out,
        "{\"rss_bytes\":%llu,\"rss_peak_bytes\":%llu,\"virtual_bytes\":%llu,"
        "\"malloc\":{\"arena_bytes\":%zu,\"mmap_bytes\":%zu,\"in_use_bytes\":%zu,"
        "\"free_bytes\":%zu,\"releasable_bytes\":%zu},\"versions\":[",
        (unsigned long long)f.rss, (unsigned long long)f.peak_rss, (unsigned long long)f.vsize,
        mi.arena, mi.hblkhd, mi.uordblks + mi.hblkhd, mi.fordblks, mi.keepcost);
    int first = 1;
    rcu_read_lock();
    const mg_registry_snapshot_t *snap = mg_registry_snapshot(mg_serve_registry(s));
    for (size_t i = 0; rc == 0 && i < mg_registry_snapshot_count(snap); i++) {
        const mg_model_entry_t *e = mg_registry_snapshot_model(snap, i);
        for (int k = 0; rc == 0 && k < mg_model_entry_nversions(e); k++) {
            const mg_model_version_t *v = mg_model_entry_version(e, k);
            if (mg_model_version_state(v) != MG_MODEL_READY)
                continue;
            const char *name = mg_model_entry_name(e);
            rc = mg_buf_printf(out, "%s{\"model\":", first ? "" : ",");
            first = 0;
            if (rc == 0)
                rc = mg_buf_json_string(out, name, strlen(name));
            if (rc == 0)
                rc = mg_buf_printf(out, ",\"version\":\"%s\",\"instances\":[",
                                   mg_model_version_text(v));
            const mg_session_t *ses;
            for (int n = 0; rc == 0 && (ses = mg_model_version_instance(v, n)) != NULL; n++) {
                rc = mg_buf_puts(out, n ? ",{" : "{");
                stat_writer_t sw = {out, 1};
                mg_err_t err;
                int mrc = rc == 0 ? mg_session_memory(ses, write_stat, &sw, &err) : rc;
                if (mrc == MG_ERUNTIME) {
                    /* What this runtime cannot say, said as such. */
                    rc = mg_buf_puts(out, sw.first ? "\"error\":" : ",\"error\":");
                    if (rc == 0)
                        rc = mg_buf_json_string(out, err.msg, strlen(err.msg));
                } else if (mrc != 0) {
                    rc = mrc;
                }
                if (rc == 0)
                    rc = mg_buf_puts(out, "}");
            }
            if (rc == 0)
                rc = mg_buf_puts(out, "]}");
        }
    }
    mg_rcu_read_unlock();
    return rc ? rc : mg_buf_puts(out, "]}");
}

/* ---- /debug/config ------------------------------------------------------------------------ */

int mg_report_config(mg_serve_t *s, mg_buf_t *out)
{
    view_t w;
    int rc = view_take(s, &w);
    if (rc != 0)
        return rc;
    rc = mg_buf_printf(out, "{\"revision\":%llu,\"route_table\":", (unsigned long long)w.revision);
    if (rc == 0)
        rc = mg_router_table_json(mg_serve_router(s), out);
    if (rc == 0)
        rc = mg_buf_puts(out, ",\"policies\":[");
    for (size_t i = 0; rc == 0 && i < w.n; i++) {
        rc = mg_buf_printf(out, "%s{\"model\":", i ? "," : "");
        if (rc == 0)
            rc = mg_buf_json_string(out, w.m[i].name, strlen(w.m[i].name));
        if (rc == 0)
            rc = mg_buf_printf(
                out, ",\"source\":\"%s\",\"policy\":", mg_pick_source_name(w.m[i].source));
        if (rc == 0)
            rc = w.m[i].source == MG_PICK_NONE ? mg_buf_puts(out, "null")
                                               : mg_policy_to_json(&w.m[i].policy, out);
        if (rc == 0)
            rc = mg_buf_puts(out, "}");
    }
    if (rc == 0)
        rc = mg_buf_puts(out, "]}");
    view_free(&w);
    return rc;
}
