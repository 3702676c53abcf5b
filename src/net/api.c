#include "net/api.h"

#include "core/log.h"
#include "net/encoding.h"
#include "obs/access.h"
#include "obs/prom.h"
#include "obs/ui.h"
#include "proto/json.h"
#include "proto/kserve.h"
#include "proto/kserve_config.h"
#include "proto/kserve_info.h"
#include "proto/kserve_shm.h"
#include "proto/kserve_stats.h"
#include "proto/predict.h"
#include "serve/batch.h"
#include "serve/dynamic.h"
#include "serve/info.h"
#include "serve/report.h"
#include "serve/stats.h"
#include "serve/status.h"

#ifdef MG_FAULTS
#include "core/version.h"
#include "serve/fault.h"
#endif

#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

typedef struct endpoint endpoint_t;

/*
 * The request headers the core and this file ask for, found in one pass over the request's
 * headers (h2o keeps names lower-case); any other name (a sticky key, a route rule's header)
 * is looked up in the request itself.
 */
enum {
    HDR_MODEL_VERSION,
    HDR_AB_GROUP,
    HDR_STAGE,
    HDR_TRACE_ID,
    HDR_TRACEPARENT,
    HDR_TRACESTATE,
    HDR_ROUTE_EXPLAIN,
    HDR_BINARY_LENGTH,
    NHDRS
};

static const mg_str_t known_headers[NHDRS] = {
    [HDR_MODEL_VERSION] = {"x-model-version", 15},
    [HDR_AB_GROUP] = {"x-ab-group", 10},
    [HDR_STAGE] = {"x-stage", 7},
    [HDR_TRACE_ID] = {"x-trace-id", 10},
    [HDR_TRACEPARENT] = {"traceparent", 11},
    [HDR_TRACESTATE] = {"tracestate", 10},
    [HDR_ROUTE_EXPLAIN] = {"x-route-explain", 15},
    [HDR_BINARY_LENGTH] = {"inference-header-content-length", 31},
};

typedef struct header_view {
    h2o_req_t *req;
    unsigned present; /* bit i: known_headers[i] is there, its first value in value[i] */
    mg_str_t value[NHDRS];
} header_view_t;

/*
 * An inference call held until the end of the loop's wake, to share a Run (serve/batch.h):
 * everything the call points to lives here until it is answered.
 */
typedef struct held_call {
    struct mg_api_loop *loop;
    h2o_req_t *req;
    mg_arena_t arena; /* the call's decoded tensors */
    mg_infer_request_t ireq;
    header_view_t headers;
    mg_route_rule_t rule; /* the matched route rule, its strings in `arena` */
    mg_serve_call_t call;
    mg_serve_result_t res;
} held_call_t;

/* Calls one loop holds per wake at most; more in one wake run alone. */
#define HELD_MAX 64

struct mg_api_loop {
    const mg_api_t *api;
    const endpoint_t *endpoint; /* per request: the row that answers it, NULL for table routes */
    int64_t received_ns;        /* per request: when the handler got it, for queue time */
    mg_arena_t arena;           /* per request: decoded tensors, copies of route rules */
    mg_buf_t out;               /* per request: the response body */
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t receiver; /* completed control operations */
    h2o_multithread_receiver_t ran;      /* executions the pool completed */
    size_t pending;                      /* control operations and pool executions out */
    header_view_t headers;               /* per request: the headers looked up */
    /* Opportunistic batching: calls held until the end of the wake that decoded them. */
    h2o_loop_t *loop;
    mg_batch_t *batch;
    held_call_t *held;      /* HELD_MAX slots; the first mg_batch_count(batch) are in use */
    h2o_timeout_t wake_end; /* a zero timeout: runs after the wake's sockets are read */
    h2o_timeout_entry_t wake_end_entry;
};

/* ---- responses ---------------------------------------------------------------------------- */

/* The inference call whose answer this thread is sending, for its access log line. */
static _Thread_local const mg_serve_result_t *answering;

/* One access log line for the answer being sent (formatted here, written off this thread). */
static void log_access(h2o_req_t *req, int status, size_t len)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    const struct timeval *begin = &req->timestamps.request_begin_at;
    int64_t begin_ns = (int64_t)begin->tv_sec * 1000000000 + (int64_t)begin->tv_usec * 1000;
    int64_t now_ns = (int64_t)now.tv_sec * 1000000000 + (int64_t)now.tv_usec * 1000;
    mg_access_entry_t e = {
        .unix_ns = begin->tv_sec != 0 ? begin_ns : now_ns,
        .method = {req->method.base, req->method.len},
        .path = {req->path.base, req->path.len},
        .status = status,
        .latency_ns = begin->tv_sec != 0 ? now_ns - begin_ns : 0,
        .bytes_in = req->entity.len,
        .bytes_out = len,
    };
    const mg_serve_result_t *res = answering;
    if (res != NULL) {
        e.model = res->model;
        e.version = res->obs.log.version;
        e.route_reason = res->obs.log.route_reason;
        e.trace_id = res->obs.log.trace_id;
    }
    mg_access_log(&e);
}

/*
 * The response headers this server adds, as h2o tokens of our own (h2o's token table has none
 * of them): adding one costs no name lookup, no copy of the name and no allocation for it.
 * Flags are zero: none is special to HTTP/1 or HTTP/2.
 */
#define TOKEN(name)                                                                                \
    {                                                                                              \
        .buf = { H2O_STRLIT(name) }                                                                \
    }
static const h2o_token_t header_tokens[] = {
    TOKEN("x-model-version"), TOKEN("x-route-reason"),     TOKEN("x-fallback-reason"),
    TOKEN("x-trace-id"),      TOKEN("x-ab-group"),         TOKEN("traceparent"),
    TOKEN("tracestate"),      TOKEN("x-route-explain"),    TOKEN("inference-header-content-length"),
    TOKEN("x-policy-source"), TOKEN("x-routing-revision"), TOKEN("x-config-revision"),
    TOKEN("x-kill-switch"),
};
#undef TOKEN

#define NHEADER_TOKENS (sizeof(header_tokens) / sizeof(header_tokens[0]))

/* The token named `name` (`len` bytes): ours, h2o's, or NULL. Lengths are compared first. */
static const h2o_token_t *header_token(const char *name, size_t len)
{
    for (size_t i = 0; i < NHEADER_TOKENS; i++) {
        const h2o_iovec_t *t = &header_tokens[i].buf;
        if (t->len == len && memcmp(t->base, name, len) == 0)
            return &header_tokens[i];
    }
    return h2o_lookup_token(name, len);
}

/*
 * Adds a response header without copying its value: h2o serialises the headers when the
 * answer is sent (send_body), so `value` must stay valid until then. Every caller sends before
 * its values go (the request's headers, the call's result, a static string, a local buffer).
 */
static void add_header_n(h2o_req_t *req, const char *name, size_t name_len, const char *value,
                         size_t len)
{
    const h2o_token_t *token = header_token(name, name_len);
    if (token != NULL)
        h2o_add_header(&req->pool, &req->res.headers, token, NULL, value, len);
    else
        h2o_add_header_by_str(&req->pool, &req->res.headers, name, name_len, 0, NULL, value, len);
}

#define add_header(req, name, value, len) add_header_n((req), (name), strlen(name), (value), (len))

/* add_header for a value that does not outlive the caller: copied into the request's pool. */
static void add_header_copy(h2o_req_t *req, const char *name, const char *value, size_t len)
{
    h2o_iovec_t v = h2o_strdup(&req->pool, value, len);
    add_header(req, name, v.base, v.len);
}

/* A request header's first value, by its lower-case name (h2o keeps names in lower case). */
static int request_header(h2o_req_t *req, const char *lname, size_t len, mg_str_t *value)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, lname, len, -1);
    if (i < 0)
        return 0;
    *value = (mg_str_t){req->headers.entries[i].value.base, req->headers.entries[i].value.len};
    return 1;
}

/*
 * The answer in the coding Accept-Encoding asks for (gzip or deflate), in the request pool, when
 * it is at least MG_ENCODING_MIN_BYTES and compressing makes it smaller; else `body` itself.
 */
static const char *encode_answer(h2o_req_t *req, const char *body, size_t *len)
{
    mg_str_t accept;
    if (*len < MG_ENCODING_MIN_BYTES || !request_header(req, "accept-encoding", 15, &accept))
        return body;
    mg_encoding_t enc = mg_encoding_accept(accept.ptr, accept.len);
    if (enc == MG_ENCODING_IDENTITY)
        return body;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL,
                   H2O_STRLIT("accept-encoding"));
    size_t cap = mg_encoding_bound(*len), n;
    char *z = h2o_mem_alloc_pool(&req->pool, cap);
    if (mg_encoding_compress(enc, body, *len, z, cap, &n) != 0 || n >= *len)
        return body;
    const char *name = mg_encoding_name(enc);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_ENCODING, NULL, name,
                   strlen(name));
    *len = n;
    return z;
}

/*
 * Sends `body` (copied into the request pool) with `status` and `content_type`, compressed
 * when the client accepts it (net/encoding.h).
 */
static int send_body(h2o_req_t *req, int status, const char *content_type, const char *body,
                     size_t len)
{
    body = encode_answer(req, body, &len);
    req->res.status = status;
    req->res.reason = mg_status_phrase(status);
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                   strlen(content_type));
    if (mg_access_enabled())
        log_access(req, status, len);
    h2o_send_inline(req, body, len);
    return 0;
}

static int send_json(h2o_req_t *req, int status, const mg_buf_t *b)
{
    return send_body(req, status, "application/json", b->data, b->len);
}

/* Answers a failure with {"error": msg} and the status serve/status.h gives `code`. */
static int send_error(h2o_req_t *req, mg_buf_t *out, int code, const char *msg)
{
    int status = mg_status_http(code);
    mg_buf_reset(out);
    if (mg_json_put_error(out, msg) != 0)
        return send_body(req, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
    if (status >= 500 || mg_log_enabled(MG_LOG_DEBUG))
        mg_log(status >= 500 ? MG_LOG_WARN : MG_LOG_DEBUG, "http",
               "request failed status=%d path=%.*s (%s)", status, (int)req->path.len,
               req->path.base, msg);
    return send_json(req, status, out);
}

/* Formats the message and sends it as an error. */
static int send_errorf(h2o_req_t *req, mg_buf_t *out, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int send_errorf(h2o_req_t *req, mg_buf_t *out, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return send_error(req, out, code, msg);
}

static int method_is(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

/* 405 unless the method is one of `allow` ("GET", "POST", "GET, PUT"). Returns 1 when allowed. */
static int method_ok(h2o_req_t *req, mg_buf_t *out, const char *allow)
{
    const char *p = allow;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (h2o_memis(req->method.base, req->method.len, p, n))
            return 1;
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    add_header(req, "allow", allow, strlen(allow));
    send_errorf(req, out, MG_EMETHOD, "method %.*s not allowed on %.*s; use %s",
                (int)req->method.len, req->method.base, (int)req->path_normalized.len,
                req->path_normalized.base, allow);
    return 0;
}

/*
 * The index of `name` among known_headers, or -1: the length and one distinguishing byte pick
 * the candidate, one memcmp confirms it.
 */
static int known_header(const char *name, size_t len)
{
    int k;
    switch (len) {
    case 7: k = HDR_STAGE; break;
    case 10:
        k = name[0] == 't' ? HDR_TRACESTATE : name[2] == 'a' ? HDR_AB_GROUP : HDR_TRACE_ID;
        break;
    case 11: k = HDR_TRACEPARENT; break;
    case 15: k = name[2] == 'm' ? HDR_MODEL_VERSION : HDR_ROUTE_EXPLAIN; break;
    case 31: k = HDR_BINARY_LENGTH; break;
    default: return -1;
    }
    return memcmp(known_headers[k].ptr, name, len) == 0 ? k : -1;
}

/* Reads the request's headers once, keeping the first value of each known one. */
static void header_view_init(header_view_t *hv, h2o_req_t *req)
{
    hv->req = req;
    hv->present = 0;
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        int k = known_header(h->name->base, h->name->len);
        if (k >= 0 && (hv->present & (1u << k)) == 0) {
            hv->present |= 1u << k;
            hv->value[k] = (mg_str_t){h->value.base, h->value.len};
        }
    }
}

/* mg_meta_t over a header_view_t: known names from the view, others from the request. */
static int find_header(void *ctx, const char *lname, size_t len, mg_str_t *value)
{
    const header_view_t *hv = ctx;
    int k = known_header(lname, len);
    if (k >= 0) {
        if ((hv->present & (1u << k)) == 0)
            return 0;
        *value = hv->value[k];
        return 1;
    }
    ssize_t i = h2o_find_header_by_str(&hv->req->headers, lname, len, -1);
    if (i < 0)
        return 0;
    h2o_iovec_t v = hv->req->headers.entries[i].value;
    *value = (mg_str_t){v.base, v.len};
    return 1;
}

static mg_str_t body_of(h2o_req_t *req)
{
    return (mg_str_t){req->entity.base ? req->entity.base : "", req->entity.len};
}

/* ---- control operations, answered when they complete ------------------------------------- */

/*
 * Lives in a request's pool, for work that answers it later (a control operation, a Run on the
 * pool): its dispose, on the loop when the request is freed, clears the work's pointer to the
 * request, so an answer that arrives after the client went away is dropped.
 */
typedef struct req_watch {
    h2o_req_t **req; /* the work's pointer; NULL once the work answered */
} req_watch_t;

static void req_watch_dispose(void *p)
{
    req_watch_t *w = p;
    if (w->req != NULL)
        *w->req = NULL;
}

/* Watches `req` for work whose pointer to it is `*slot` (set to `req`). */
static req_watch_t *req_watch(h2o_req_t *req, h2o_req_t **slot)
{
    req_watch_t *w = h2o_mem_alloc_shared(&req->pool, sizeof(*w), req_watch_dispose);
    w->req = slot;
    *slot = req;
    return w;
}

typedef struct control_job control_job_t;
typedef int (*job_answer_fn)(mg_api_loop_t *l, h2o_req_t *req, control_job_t *job);

struct control_job {
    h2o_multithread_message_t msg; /* first: the receiver hands back this pointer */
    mg_control_op_t op;
    mg_api_loop_t *loop;
    h2o_req_t *req;       /* NULL once the request is gone (the client closed) */
    req_watch_t *watch;   /* in req->pool: clears `req` when the request goes */
    job_answer_fn answer; /* sends the response, on the loop */
    char body[];          /* the request body, copied: the operation outlives the request */
};

/* Control thread: hand the finished operation back to the loop that submitted it. */
static void job_done(mg_control_op_t *op)
{
    control_job_t *job = (control_job_t *)((char *)op - offsetof(control_job_t, op));
    h2o_multithread_send_message(&job->loop->receiver, &job->msg);
}

/* Loop thread: answer every finished operation whose request is still there. */
static void on_jobs(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    mg_api_loop_t *l = (mg_api_loop_t *)((char *)receiver - offsetof(mg_api_loop_t, receiver));
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        control_job_t *job = (control_job_t *)m;
        if (job->req != NULL) {
            job->watch->req = NULL;
            mg_arena_reset(&l->arena);
            if (job->op.rc != 0)
                send_error(job->req, &l->out, job->op.rc, job->op.err.msg);
            else
                job->answer(l, job->req, job);
        }
        free(job);
        l->pending--;
    }
}

/*
 * Submits an operation for `req` with its body copied; `answer` sends the response once it
 * succeeded (failures are answered with their status). Returns 0 as handlers do.
 */
static int submit_job(mg_api_loop_t *l, h2o_req_t *req, mg_control_kind_t kind, mg_str_t model,
                      int with_body, job_answer_fn answer)
{
    mg_str_t body = with_body ? body_of(req) : (mg_str_t){"", 0};
    if (model.len >= sizeof(((mg_control_op_t *)0)->model))
        return send_error(req, &l->out, MG_EINVAL, "model name too long");
    control_job_t *job = malloc(sizeof(*job) + body.len + 1);
    if (job == NULL)
        return send_error(req, &l->out, MG_ENOMEM, "out of memory");
    memset(job, 0, sizeof(*job));
    memcpy(job->body, body.ptr, body.len);
    job->body[body.len] = '\0';
    memcpy(job->op.model, model.ptr, model.len);
    job->op.kind = kind;
    job->op.body = job->body;
    job->op.body_len = body.len;
    job->op.done = job_done;
    job->loop = l;
    job->watch = req_watch(req, &job->req);
    job->answer = answer;
    if (mg_control_submit(l->api->control, &job->op) != 0) {
        job->watch->req = NULL;
        free(job);
        return send_error(req, &l->out, MG_ECANCELED, "the server is shutting down");
    }
    l->pending++;
    return 0;
}

/* ---- health and metadata ------------------------------------------------------------------ */

static int handle_server_metadata(mg_api_loop_t *l, h2o_req_t *req)
{
    mg_info_server_t info;
    mg_info_server(&info);
    mg_buf_reset(&l->out);
    if (mg_kserve_info_server(&l->out, info.name, info.version, info.extensions,
                              info.nextensions) != 0)
        return send_error(req, &l->out, MG_ENOMEM, "out of memory");
    return send_json(req, 200, &l->out);
}

static int handle_live(mg_api_loop_t *l, h2o_req_t *req, int simple)
{
    mg_buf_reset(&l->out);
    mg_buf_puts(&l->out, simple ? "{\"status\":\"ok\"}" : "{\"live\":true}");
    return send_json(req, 200, &l->out);
}

/* With --etcd, readiness says where the routing configuration stands: ,"config":{...}. */
static void put_fleet_status(mg_api_loop_t *l, mg_buf_t *b)
{
    mg_cluster_t *cluster = atomic_load_explicit(&l->api->cluster, memory_order_acquire);
    if (cluster == NULL)
        return;
    b->len--; /* the closing brace */
    mg_buf_puts(b, ",\"config\":");
    mg_cluster_status_json(cluster, b);
    mg_buf_puts(b, "}");
}

static int handle_ready(mg_api_loop_t *l, h2o_req_t *req, int simple)
{
    mg_buf_t *b = &l->out;
    mg_buf_reset(b);
    mg_buf_t why = {0};
    if (mg_info_ready(l->api->serve, &why)) {
        mg_buf_puts(b, simple ? "{\"status\":\"ready\"}" : "{\"ready\":true}");
        put_fleet_status(l, b);
        return send_json(req, 200, b);
    }
    /* Name what is not ready, so an operator sees the reason in the probe's output. */
    mg_buf_puts(b, simple ? "{\"status\":\"not ready\",\"ready\":false,\"error\":"
                          : "{\"ready\":false,\"error\":");
    mg_buf_json_string(b, why.data ? why.data : "", why.len);
    mg_buf_puts(b, "}");
    put_fleet_status(l, b);
    mg_buf_free(&why);
    return send_json(req, 503, b);
}

/* GET /v2/models/{m}[/versions/{v}] */
static int handle_model_metadata(mg_api_loop_t *l, h2o_req_t *req, mg_str_t model, mg_str_t version)
{
    mg_buf_t *b = &l->out;
    mg_err_t err;
    mg_info_model_t m;
    int rc = mg_info_model(l->api->serve, model, version, &m, &err);
    if (rc != 0)
        return send_error(req, b, rc, err.msg);
    mg_kserve_info_tensors_t tensors = {m.inputs, m.ninputs, m.outputs, m.noutputs};
    mg_buf_reset(b);
    rc = mg_kserve_info_model(b, m.name, m.versions, m.nversions, m.platform, m.max_batch_size,
                              &tensors);
    mg_info_model_done(&m);
    if (rc != 0)
        return send_error(req, b, MG_ENOMEM, "out of memory");
    return send_json(req, 200, b);
}

/* GET /v2/models/{m}[/versions/{v}]/config */
static int handle_model_config(mg_api_loop_t *l, h2o_req_t *req, mg_str_t model, mg_str_t version)
{
    mg_buf_t *b = &l->out;
    mg_err_t err;
    mg_info_model_t m;
    int rc = mg_info_model(l->api->serve, model, version, &m, &err);
    if (rc != 0)
        return send_error(req, b, rc, err.msg);
    mg_kserve_info_tensors_t tensors = {m.inputs, m.ninputs, m.outputs, m.noutputs};
    mg_buf_reset(b);
    rc = mg_kserve_config(b, m.name, mg_model_version_config(m.version), &tensors);
    mg_info_model_done(&m);
    if (rc != 0)
        return send_error(req, b, MG_ENOMEM, "out of memory");
    return send_json(req, 200, b);
}

/* GET /v2/models/{m}[/versions/{v}]/ready */
static int handle_model_ready(mg_api_loop_t *l, h2o_req_t *req, mg_str_t model, mg_str_t version)
{
    mg_buf_t *b = &l->out;
    mg_err_t err;
    mg_model_version_t *v;
    int rc = mg_info_acquire(l->api->serve, model, version, &v, &err);
    mg_buf_reset(b);
    if (rc == MG_EUNAVAIL) {
        mg_buf_puts(b, "{\"name\":");
        mg_buf_json_string(b, model.ptr, model.len);
        mg_buf_puts(b, ",\"ready\":false,\"error\":");
        mg_buf_json_string(b, err.msg, strlen(err.msg));
        mg_buf_puts(b, "}");
        return send_json(req, 503, b);
    }
    if (rc != 0)
        return send_error(req, b, rc, err.msg);
    const char *name = mg_model_version_model(v);
    mg_buf_puts(b, "{\"name\":");
    mg_buf_json_string(b, name, strlen(name));
    mg_buf_printf(b, ",\"version\":\"%s\",\"ready\":true}", mg_model_version_text(v));
    mg_model_version_unpin(v);
    return send_json(req, 200, b);
}

/* ---- the statistics extension ------------------------------------------------------------ */

typedef struct stats_writer {
    mg_buf_t *out;
    int first;
} stats_writer_t;

static int write_stats_row(void *ctx, const mg_stats_row_t *row)
{
    stats_writer_t *w = ctx;
    int rc = mg_kserve_stats_row(w->out, w->first, row->model, row->version, &row->figures,
                                 row->batches, row->nbatches);
    w->first = 0;
    return rc;
}

/* GET /v2/models[/{m}[/versions/{v}]]/stats */
static int handle_stats(mg_api_loop_t *l, h2o_req_t *req, mg_str_t model, mg_str_t version)
{
    mg_buf_t *b = &l->out;
    mg_err_t err = {0};
    stats_writer_t w = {b, 1};
    mg_buf_reset(b);
    int rc = mg_kserve_stats_begin(b);
    if (rc == 0)
        rc = mg_stats_collect(l->api->serve, model, version, write_stats_row, &w, &err);
    if (rc == 0)
        rc = mg_kserve_stats_end(b);
    if (rc != 0)
        return send_error(req, b, rc, rc == MG_ENOMEM ? "out of memory" : err.msg);
    return send_json(req, 200, b);
}

/* ---- the system shared-memory extension --------------------------------------------------- */

typedef struct shm_writer {
    mg_buf_t *out;
    int first;
} shm_writer_t;

static int write_shm_row(void *ctx, const mg_shm_status_t *st)
{
    shm_writer_t *w = ctx;
    int rc =
        mg_kserve_shm_status_row(w->out, w->first, st->name, st->key, st->offset, st->byte_size);
    w->first = 0;
    return rc;
}

/* GET /v2/systemsharedmemory[/region/{r}]/status */
static int handle_shm_status(mg_api_loop_t *l, h2o_req_t *req, mg_str_t region)
{
    mg_buf_t *b = &l->out;
    mg_err_t err = {0};
    shm_writer_t w = {b, 1};
    mg_buf_reset(b);
    int rc = mg_buf_puts(b, "[");
    if (rc == 0)
        rc = mg_shm_status(l->api->shm, region, write_shm_row, &w, &err);
    if (rc == 0)
        rc = mg_buf_puts(b, "]");
    if (rc != 0)
        return send_error(req, b, rc == MG_ENOENT ? MG_EINVAL : rc,
                          rc == MG_ENOMEM ? "out of memory" : err.msg);
    return send_json(req, 200, b);
}

/* POST /v2/systemsharedmemory/region/{r}/register */
static int handle_shm_register(mg_api_loop_t *l, h2o_req_t *req, mg_str_t region)
{
    mg_err_t err = {0};
    char key[MG_KSERVE_SHM_KEY_MAX];
    uint64_t offset, size;
    mg_str_t body = body_of(req);
    int rc = mg_kserve_shm_decode_register(body.ptr, body.len, key, &offset, &size, &err);
    if (rc == 0)
        rc = mg_shm_register(l->api->shm, region, key, offset, size, &err);
    if (rc != 0) /* a missing object is the client's mistake: 400, as Triton answers */
        return send_error(req, &l->out, rc == MG_ENOENT ? MG_EINVAL : rc, err.msg);
    mg_buf_reset(&l->out);
    mg_buf_puts(&l->out, "{}");
    return send_json(req, 200, &l->out);
}

/* POST /v2/systemsharedmemory[/region/{r}]/unregister */
static int handle_shm_unregister(mg_api_loop_t *l, h2o_req_t *req, mg_str_t region)
{
    mg_err_t err = {0};
    int rc = mg_shm_unregister(l->api->shm, region, &err);
    if (rc != 0)
        return send_error(req, &l->out, MG_EINVAL, err.msg);
    mg_buf_reset(&l->out);
    mg_buf_puts(&l->out, "{}");
    return send_json(req, 200, &l->out);
}

/* ---- inference ---------------------------------------------------------------------------- */

/* Reads Inference-Header-Content-Length. Returns 0 (absent: MG_KSERVE_NO_BINARY) or MG_EPARSE. */
static int binary_header_len(const header_view_t *hv, size_t *out)
{
    *out = MG_KSERVE_NO_BINARY;
    if ((hv->present & (1u << HDR_BINARY_LENGTH)) == 0)
        return 0;
    mg_str_t v = {hv->value[HDR_BINARY_LENGTH].ptr, hv->value[HDR_BINARY_LENGTH].len};
    size_t n = 0;
    if (v.len == 0 || v.len > 19)
        return MG_EPARSE;
    for (size_t k = 0; k < v.len; k++) {
        if (v.ptr[k] < '0' || v.ptr[k] > '9')
            return MG_EPARSE;
        n = n * 10 + (size_t)(v.ptr[k] - '0');
    }
    *out = n;
    return 0;
}

typedef enum { ENCODE_KSERVE, ENCODE_PREDICT } encoding_t;

static void describe_call(const mg_api_loop_t *l, h2o_req_t *req, mg_serve_call_t *call);

/* Ends a call: the core's part (mg_serve_done) and the shared-memory regions it held. */
static void end_call(const mg_serve_call_t *call, mg_serve_result_t *res)
{
    mg_serve_done(res);
    mg_shm_release(call->req->shm_hold);
}

/*
 * Sends the answer of a finished call in `enc` (a failure with the core's headers for
 * failures: Retry-After) and ends the call (mg_serve_done). `res` stays in place until this
 * returns: header values point into it. Returns 0 as handlers do.
 */
static int respond(mg_api_loop_t *l, h2o_req_t *req, const mg_serve_call_t *call,
                   mg_serve_result_t *res, encoding_t enc)
{
    mg_buf_t *b = &l->out;
    answering = res;
    if (res->rc == 0)
        res->rc = mg_shm_write_outputs(l->api->shm, call->req, &res->resp, call->req->shm_hold,
                                       &res->err);
    if (res->rc != 0) {
        mg_serve_header_t hdrs[MG_SERVE_HEADERS_MAX];
        size_t n = mg_serve_error_headers(res, hdrs);
        for (size_t i = 0; i < n; i++)
            add_header(req, hdrs[i].name, hdrs[i].value.ptr, hdrs[i].value.len);
        send_error(req, b, res->rc, res->err.msg);
        end_call(call, res);
        answering = NULL;
        return 0;
    }
    mg_buf_reset(b);
    size_t header_len = MG_KSERVE_NO_BINARY;
    int rc = enc == ENCODE_KSERVE ? mg_kserve_encode_response(&res->resp, b, &header_len)
                                  : mg_predict_encode_response(&res->resp, b);
    if (rc != 0) {
        end_call(call, res);
        send_error(req, b, MG_ENOMEM, "out of memory encoding the response");
        answering = NULL;
        return 0;
    }
    mg_serve_header_t hdrs[MG_SERVE_HEADERS_MAX];
    char explain[MG_SERVE_EXPLAIN_MAX];
    size_t n = mg_serve_headers(call, res, hdrs, explain);
    for (size_t i = 0; i < n; i++)
        add_header(req, hdrs[i].name, hdrs[i].value.ptr, hdrs[i].value.len);
    end_call(call, res);
    if (header_len != MG_KSERVE_NO_BINARY) {
        char num[24];
        int k = snprintf(num, sizeof(num), "%zu", header_len);
        add_header(req, "inference-header-content-length", num, (size_t)k);
        send_body(req, 200, "application/octet-stream", b->data, b->len);
    } else {
        send_json(req, 200, b);
    }
    answering = NULL;
    return 0;
}

/*
 * A call whose model runs on the execution pool. It takes the arena its decoded request lives
 * in (the loop's or a held slot's, which starts a fresh one) and copies of what the call points to on
 * the handler's stack; the request body and headers stay in the h2o request, which lives
 * until the answer is sent (or the connection closes: `req` is then NULL and the result is
 * only released).
 */
typedef struct pool_call {
    h2o_multithread_message_t msg; /* first: the receiver hands back this pointer */
    mg_pooled_t pooled;
    mg_api_loop_t *loop;
    h2o_req_t *req;
    req_watch_t *watch;
    encoding_t enc;
    mg_arena_t arena;
    mg_infer_request_t ireq;
    mg_predict_request_t predict;
    header_view_t headers; /* the call's metadata: the loop's view is the next request's */
    mg_route_rule_t rule;  /* the call's route rule, when it has one (strings in `arena`) */
    mg_serve_call_t call;
    mg_serve_result_t res;
} pool_call_t;

/* Pool thread: the call ran (alone, or in a dynamic batch); hand it back to its loop. */
static void pool_call_ran(mg_pooled_t *p)
{
    pool_call_t *pc = (pool_call_t *)((char *)p - offsetof(pool_call_t, pooled));
    mg_log_context_set(NULL);
    h2o_multithread_send_message(&pc->loop->ran, &pc->msg);
}

/* Loop thread: answer every execution the pool finished whose request is still there. */
static void on_ran(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    mg_api_loop_t *l = (mg_api_loop_t *)((char *)receiver - offsetof(mg_api_loop_t, ran));
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        pool_call_t *pc = (pool_call_t *)m;
        if (pc->req != NULL) {
            pc->watch->req = NULL;
            respond(l, pc->req, &pc->call, &pc->res, pc->enc);
        } else {
            end_call(&pc->call, &pc->res);
        }
        mg_pooled_release(&pc->pooled);
        mg_arena_free(&pc->arena);
        free(pc);
        l->pending--;
    }
}

/*
 * Hands an admitted call to the pool, with `arena` (where its request was decoded: taken over,
 * left empty). Returns 0 as handlers do.
 */
static int run_on_pool(mg_api_loop_t *l, h2o_req_t *req, const mg_serve_call_t *call,
                       mg_serve_result_t *res, encoding_t enc, mg_arena_t *arena)
{
    pool_call_t *pc = calloc(1, sizeof(*pc));
    if (pc == NULL) {
        res->rc = MG_ENOMEM;
        mg_err_set(&res->err, MG_ENOMEM, "out of memory");
        return respond(l, req, call, res, enc);
    }
    pc->loop = l;
    pc->watch = req_watch(req, &pc->req);
    pc->enc = enc;
    pc->arena = *arena;
    mg_arena_init(arena, 0);
    pc->ireq = *call->req;
    pc->ireq.arena = &pc->arena;
    pc->call = *call;
    pc->call.req = &pc->ireq;
    pc->headers = *(const header_view_t *)call->meta.ctx; /* api.c's calls use find_header */
    pc->call.meta.ctx = &pc->headers;
    if (call->rule != NULL) {
        pc->rule = *call->rule;
        pc->call.rule = &pc->rule;
    }
    if (call->bind_ctx != NULL) {
        pc->predict = *(const mg_predict_request_t *)call->bind_ctx;
        pc->call.bind_ctx = &pc->predict;
    }
    mg_serve_move(&pc->res, res, &pc->call);
    pc->pooled.serve = l->api->serve;
    pc->pooled.call = &pc->call;
    pc->pooled.res = &pc->res;
    pc->pooled.ran = pool_call_ran;
    if (mg_pooled_submit(l->api->pool, &pc->pooled) != 0) {
        pc->watch->req = NULL;
        pc->res.rc = MG_ECANCELED;
        mg_err_set(&pc->res.err, MG_ECANCELED, "the server is shutting down");
        respond(l, req, &pc->call, &pc->res, enc);
        mg_arena_free(&pc->arena);
        free(pc);
        return 0;
    }
    l->pending++;
    return 0;
}

/* Runs the call through the request core (here, or on the pool) and answers in `enc`. */
static int serve_and_respond(mg_api_loop_t *l, h2o_req_t *req, const mg_serve_call_t *call,
                             encoding_t enc)
{
    mg_serve_result_t res;
    if (mg_serve_begin(l->api->serve, call, &res) == 0) {
        if (mg_batch_place(NULL, l->api->pool != NULL, call, &res, NULL) == MG_PLACE_POOL)
            return run_on_pool(l, req, call, &res, enc, call->req->arena);
        mg_serve_run(l->api->serve, call, &res);
    }
    return respond(l, req, call, &res, enc);
}

/*
 * The per-client rate limit of inference requests: the key is the configured header's value,
 * or the peer address. Answers 429 with Retry-After and returns 0 when over it.
 */
static int rate_ok(mg_api_loop_t *l, h2o_req_t *req)
{
    if (l->api->ratelimit == NULL)
        return 1;
    struct sockaddr_storage ss;
    mg_str_t key = {"", 0};
    if (l->api->ratelimit_header != NULL) {
        find_header(&l->headers, l->api->ratelimit_header, strlen(l->api->ratelimit_header), &key);
    } else {
        socklen_t n = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
        if (n > 0 && ss.ss_family == AF_INET)
            key = (mg_str_t){(const char *)&((struct sockaddr_in *)&ss)->sin_addr, 4};
        else if (n > 0 && ss.ss_family == AF_INET6)
            key = (mg_str_t){(const char *)&((struct sockaddr_in6 *)&ss)->sin6_addr, 16};
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    unsigned retry = 1;
    mg_err_t err;
    if (mg_ratelimit_take(l->api->ratelimit, key, now_ms, &retry, &err) == 0)
        return 1;
    char num[16];
    int k = snprintf(num, sizeof(num), "%u", retry);
    add_header(req, "retry-after", num, (size_t)k);
    send_error(req, &l->out, err.code, err.msg);
    return 0;
}

/* Answers a held call once the wake's batches have run (mg_batch_answer_fn). */
static void answer_held(void *ctx, mg_serve_result_t *res)
{
    held_call_t *h = ctx;
    respond(h->loop, h->req, &h->call, res, ENCODE_KSERVE);
}

/*
 * The end of a wake: h2o runs zero timeouts after it has read every socket the poll returned,
 * so every call this wake decoded is held by now; run them, joined where they can be, and
 * answer each. The writes' completions run in the same turn of the loop.
 */
static void on_wake_end(h2o_timeout_entry_t *entry)
{
    mg_api_loop_t *l = (mg_api_loop_t *)((char *)entry - offsetof(mg_api_loop_t, wake_end_entry));
    mg_batch_flush(l->batch, l->api->serve, answer_held);
}

/*
 * Routes a decoded call held in `h` and either holds it for the end of the wake (its version
 * batches) or runs and answers it now.
 */
static int serve_or_hold(mg_api_loop_t *l, held_call_t *h)
{
    mg_serve_t *s = l->api->serve;
    if (mg_serve_begin(s, &h->call, &h->res) != 0)
        return respond(l, h->req, &h->call, &h->res, ENCODE_KSERVE);
    switch (mg_batch_place(l->batch, l->api->pool != NULL, &h->call, &h->res, h)) {
    case MG_PLACE_POOL: return run_on_pool(l, h->req, &h->call, &h->res, ENCODE_KSERVE, &h->arena);
    case MG_PLACE_HELD:
        if (!h2o_timeout_is_linked(&l->wake_end_entry))
            h2o_timeout_link(l->loop, &l->wake_end, &l->wake_end_entry);
        return 0;
    case MG_PLACE_NOW: break;
    }
    mg_serve_run(s, &h->call, &h->res);
    return respond(l, h->req, &h->call, &h->res, ENCODE_KSERVE);
}

/* POST /v2/models/{m}[/versions/{v}]/infer, or a route-table URL with api "infer". */
static int handle_infer(mg_api_loop_t *l, h2o_req_t *req, mg_str_t model, mg_str_t version,
                        const mg_route_rule_t *rule)
{
    mg_err_t err;
    if (!rate_ok(l, req))
        return 0;
    size_t header_len;
    if (binary_header_len(&l->headers, &header_len) != 0)
        return send_error(req, &l->out, MG_EPARSE,
                          "Inference-Header-Content-Length must be a decimal byte count");
    /* A free slot holds the call, so it can wait for the end of the wake; else it runs now. */
    size_t nheld = mg_batch_count(l->batch);
    held_call_t *h = nheld < HELD_MAX ? &l->held[nheld] : NULL;
    mg_infer_request_t local;
    mg_infer_request_t *ireq = h != NULL ? &h->ireq : &local;
    memset(ireq, 0, sizeof(*ireq));
    if (h != NULL) {
        if (rule == NULL)
            mg_arena_reset(&h->arena);
        else /* handle_table_route copied the rule's strings into this slot's arena */
            h->rule = *rule, rule = &h->rule;
        h->req = req;
        h->headers = l->headers;
    }
    ireq->arena = h != NULL ? &h->arena : &l->arena;
    mg_str_t body = body_of(req);
    int rc = mg_kserve_decode_request(body.ptr, body.len, header_len, ireq, &err);
    if (rc == 0)
        rc = mg_shm_hold(l->api->shm, ireq, &err);
    if (rc != 0)
        return send_error(req, &l->out, rc, err.msg);
    mg_serve_call_t call = {
        .model = model,
        .url_version = version,
        .rule = rule,
        .meta = {find_header, h != NULL ? &h->headers : &l->headers},
        .req = ireq,
    };
    describe_call(l, req, &call);
    if (h == NULL)
        return serve_and_respond(l, req, &call, ENCODE_KSERVE);
    h->call = call;
    return serve_or_hold(l, h);
}

/* /predict: the body's data becomes the model's one input once the version is known. */
static int bind_predict(void *ctx, const mg_session_t *meta, const char *model,
                        mg_infer_request_t *req, mg_err_t *err)
{
    return mg_predict_bind(ctx, mg_session_inputs(meta), mg_session_ninputs(meta), model, req, err);
}

/* POST /predict: {"data": [...], "model"?: "...", "version"?: "..."}, or a "predict" rule. */
static int handle_predict(mg_api_loop_t *l, h2o_req_t *req, const mg_route_rule_t *rule)
{
    mg_err_t err;
    if (!rate_ok(l, req))
        return 0;
    mg_predict_request_t p;
    mg_str_t body = body_of(req);
    int rc = mg_predict_decode(body.ptr, body.len, &p, &err);
    if (rc != 0)
        return send_error(req, &l->out, rc, err.msg);
    mg_infer_request_t ireq;
    memset(&ireq, 0, sizeof(ireq));
    ireq.arena = &l->arena;
    mg_serve_call_t call = {
        .body_model = p.model,
        .url_version = p.version,
        .rule = rule,
        .meta = {find_header, &l->headers},
        .req = &ireq,
        .bind = bind_predict,
        .bind_ctx = &p,
    };
    describe_call(l, req, &call);
    return serve_and_respond(l, req, &call, ENCODE_PREDICT);
}

/* ---- the repository extension ------------------------------------------------------------- */

typedef struct index_writer {
    mg_buf_t *out;
    int first;
} index_writer_t;

static int write_index_row(void *ctx, const mg_info_index_row_t *row)
{
    index_writer_t *w = ctx;
    int rc = mg_kserve_info_index_row(w->out, w->first, row->name, row->version, row->state,
                                      row->modelgate_state, row->reason);
    w->first = 0;
    return rc;
}

/* POST /v2/repository/index */
static int handle_repo_index(mg_api_loop_t *l, h2o_req_t *req)
{
    mg_buf_t *b = &l->out;
    int ready_only = 0;
    if (req->entity.len > 0) {
        /* {"ready": true} lists only ready models; anything else must still be a JSON object. */
        const char *p = req->entity.base, *end = p + req->entity.len;
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
            p++;
        if (p == end || *p != '{')
            return send_error(
                req, b, MG_EPARSE,
                "repository index body must be a JSON object such as {\"ready\": true}");
        ready_only = memmem(req->entity.base, req->entity.len, "true", 4) != NULL &&
                     memmem(req->entity.base, req->entity.len, "\"ready\"", 7) != NULL;
    }
    mg_buf_reset(b);
    index_writer_t w = {b, 1};
    int rc = mg_buf_puts(b, "[");
    if (rc == 0)
        rc = mg_info_index(l->api->serve, ready_only, write_index_row, &w);
    if (rc == MG_EIO)
        return send_error(req, b, MG_EIO, "cannot list the model repository");
    if (rc != 0 || mg_buf_puts(b, "]") != 0)
        return send_error(req, b, MG_ENOMEM, "out of memory");
    return send_json(req, 200, b);
}

static int answer_empty(mg_api_loop_t *l, h2o_req_t *req, control_job_t *job)
{
    (void)job;
    mg_buf_reset(&l->out);
    mg_buf_puts(&l->out, "{}");
    return send_json(req, 200, &l->out);
}

/* ---- the admin API ------------------------------------------------------------------------ */

/* The traffic policy in force for `model`, with X-Policy-Source. */
static int send_traffic(mg_api_loop_t *l, h2o_req_t *req, mg_str_t model)
{
    mg_buf_t *b = &l->out;
    mg_err_t err;
    mg_policy_t cur;
    mg_pick_source_t source = MG_PICK_NONE;
    int rc = mg_info_traffic(l->api->serve, model, &cur, &source, &err);
    if (rc != 0)
        return send_error(req, b, rc, err.msg);
    mg_buf_reset(b);
    rc = source == MG_PICK_NONE ? mg_buf_puts(b, "{}") : mg_policy_to_json(&cur, b);
    if (rc != 0)
        return send_error(req, b, MG_ENOMEM, "out of memory");
    const char *name = mg_pick_source_name(source);
    add_header(req, "x-policy-source", name, strlen(name));
    return send_json(req, 200, b);
}

static int answer_traffic(mg_api_loop_t *l, h2o_req_t *req, control_job_t *job)
{
    return send_traffic(l, req, (mg_str_t){job->op.model, strlen(job->op.model)});
}

/* GET|PUT /v2/admin/models/{m}/traffic */
static int handle_traffic(mg_api_loop_t *l, h2o_req_t *req, mg_str_t model)
{
    if (method_is(req, "PUT"))
        return submit_job(l, req, MG_CONTROL_SET_POLICY, model, 1, answer_traffic);
    return send_traffic(l, req, model);
}

static int answer_routes(mg_api_loop_t *l, h2o_req_t *req, control_job_t *job)
{
    mg_buf_reset(&l->out);
    mg_buf_printf(&l->out, "{\"routes\":%zu,\"revision\":%llu}", job->op.count,
                  (unsigned long long)job->op.revision);
    return send_json(req, 200, &l->out);
}

/* The live routing snapshot's revisions and kill switch, as response headers. */
static void add_routing_headers(mg_api_loop_t *l, h2o_req_t *req)
{
    mg_router_info_t info;
    mg_router_info(mg_serve_router(l->api->serve), &info);
    char num[24];
    int k = snprintf(num, sizeof(num), "%llu", (unsigned long long)info.revision);
    add_header_copy(req, "x-routing-revision", num, (size_t)k);
    k = snprintf(num, sizeof(num), "%llu", (unsigned long long)info.config_revision);
    add_header_copy(req, "x-config-revision", num, (size_t)k);
    add_header(req, "x-kill-switch", info.kill_switch ? "on" : "off", info.kill_switch ? 2 : 3);
}

/* GET|PUT /v2/admin/routes */
static int handle_routes(mg_api_loop_t *l, h2o_req_t *req)
{
    if (method_is(req, "PUT"))
        return submit_job(l, req, MG_CONTROL_SET_ROUTES, (mg_str_t){"", 0}, 1, answer_routes);
    mg_buf_reset(&l->out);
    if (mg_router_table_json(mg_serve_router(l->api->serve), &l->out) != 0)
        return send_error(req, &l->out, MG_ENOMEM, "out of memory");
    add_routing_headers(l, req);
    return send_json(req, 200, &l->out);
}

typedef struct breaker_writer {
    mg_buf_t *out;
    int first;
} breaker_writer_t;

static int write_breaker_row(void *ctx, const mg_info_breaker_row_t *row)
{
    breaker_writer_t *w = ctx;
    const mg_breaker_status_t *st = &row->status;
    int rc = mg_buf_printf(
        w->out,
        "%s{\"version\":\"%s\",\"ready\":%s,\"state\":\"%s\",\"trips\":%llu,"
        "\"last_trip\":\"%s\",\"consecutive_failures\":%d,\"window_requests\":%llu,"
        "\"window_failures\":%llu,\"ejection_ms\":%lld,\"reopen_in_ms\":%lld}",
        w->first ? "" : ",", row->version, row->ready ? "true" : "false",
        mg_breaker_state_name(st->state), (unsigned long long)st->trips,
        mg_breaker_trip_name(st->last_trip), st->consecutive_failures,
        (unsigned long long)st->window_requests, (unsigned long long)st->window_failures,
        (long long)st->ejection_ms, (long long)st->reopen_in_ms);
    w->first = 0;
    return rc;
}

/* GET /v2/admin/models/{m}/breakers: the circuit breaker of every version of the model. */
static int handle_breakers(mg_api_loop_t *l, h2o_req_t *req, mg_str_t model)
{
    mg_buf_t *b = &l->out;
    mg_err_t err;
    mg_buf_reset(b);
    mg_buf_puts(b, "{\"model\":");
    mg_buf_json_string(b, model.ptr, model.len);
    mg_buf_puts(b, ",\"versions\":[");
    breaker_writer_t w = {b, 1};
    int rc = mg_info_breakers(l->api->serve, model, write_breaker_row, &w, &err);
    if (rc == MG_ENOMODEL)
        return send_error(req, b, rc, err.msg);
    if (rc != 0 || mg_buf_puts(b, "]}") != 0)
        return send_error(req, b, MG_ENOMEM, "out of memory");
    return send_json(req, 200, b);
}

#ifdef MG_FAULTS
/* PUT /v2/admin/models/{m}/versions/{v}/fault (test builds only, see serve/fault.h). */
static int handle_fault(mg_api_loop_t *l, h2o_req_t *req, mg_str_t model, mg_str_t version)
{
    int64_t number;
    mg_err_t err;
    if (mg_version_parse(version.ptr, version.len, &number) != 0)
        return send_error(req, &l->out, MG_EINVAL, "fault: the version must be a number");
    mg_str_t body = body_of(req);
    int rc = mg_fault_set_json(model.ptr, model.len, number, body.ptr, body.len, &err);
    if (rc != 0)
        return send_error(req, &l->out, rc, err.msg);
    mg_buf_reset(&l->out);
    mg_buf_puts(&l->out, "{}");
    return send_json(req, 200, &l->out);
}
#endif
/* {"enabled": bool}, as the kill switch is set, with the routing headers. */
static int send_kill_switch(mg_api_loop_t *l, h2o_req_t *req)
{
    mg_router_info_t info;
    mg_router_info(mg_serve_router(l->api->serve), &info);
    mg_buf_reset(&l->out);
    mg_buf_puts(&l->out, info.kill_switch ? "{\"enabled\":true}" : "{\"enabled\":false}");
    add_routing_headers(l, req);
    return send_json(req, 200, &l->out);
}

static int answer_kill_switch(mg_api_loop_t *l, h2o_req_t *req, control_job_t *job)
{
    (void)job;
    return send_kill_switch(l, req);
}

/* GET|PUT /v2/admin/kill-switch */
static int handle_kill_switch(mg_api_loop_t *l, h2o_req_t *req)
{
    if (method_is(req, "PUT"))
        return submit_job(l, req, MG_CONTROL_SET_KILL_SWITCH, (mg_str_t){"", 0}, 1,
                          answer_kill_switch);
    return send_kill_switch(l, req);
}

/* An operator URL from the route table. Returns 1 when a rule matched (and answered). */
static int handle_table_route(mg_api_loop_t *l, h2o_req_t *req)
{
    h2o_iovec_t host = req->authority;
    for (size_t i = 0; i < host.len; i++) {
        if (host.base[i] == ':' && host.base[0] != '[') {
            host.len = i;
            break;
        }
    }
    mg_meta_t meta = {find_header, &l->headers};
    mg_route_rule_t rule;
    /* The rule's strings go where the call will live: the next free held slot, if any. */
    size_t nheld = mg_batch_count(l->batch);
    mg_arena_t *arena = nheld < HELD_MAX ? &l->held[nheld].arena : &l->arena;
    if (arena != &l->arena)
        mg_arena_reset(arena);
    int rc = mg_serve_match(l->api->serve, (mg_str_t){host.base, host.len},
                            (mg_str_t){req->path_normalized.base, req->path_normalized.len}, &meta,
                            arena, &rule);
    if (rc == 0)
        return 0;
    if (rc < 0) {
        send_error(req, &l->out, MG_ENOMEM, "out of memory");
        return 1;
    }
    if (!method_ok(req, &l->out, "POST"))
        return 1;
    if (rule.api == MG_ROUTE_API_PREDICT)
        handle_predict(l, req, &rule);
    else
        handle_infer(l, req, (mg_str_t){"", 0}, (mg_str_t){"", 0}, &rule);
    return 1;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

/* An endpoint's handler; `cap` holds the path segments its pattern captures, in order. */
typedef int (*endpoint_fn)(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap);

#define SEGMENTS_MAX 8

struct endpoint {
    const char *path;  /* "/v2/models/{}/ready": "{}" captures one segment */
    const char *allow; /* the methods it answers: "GET", "POST", "GET, PUT" */
    unsigned surface;  /* MG_SURFACE_*: which listeners serve it */
    bool open;         /* answered without the admin token: static content holding no data */
    endpoint_fn fn;
    /* Filled once from `path`. */
    mg_str_t seg[SEGMENTS_MAX]; /* {NULL, 0}: a capture */
    int nseg;
    mg_str_t methods[4]; /* `allow` split, so a request's method is compared by length */
    int nmethods;
    char operation[64]; /* "POST /v2/models/{}/infer": the server span's name */
    size_t operation_len;
};

/* What the core records about the call besides what it decodes: arrival, name, path. */
static void describe_call(const mg_api_loop_t *l, h2o_req_t *req, mg_serve_call_t *call)
{
    call->received_ns = l->received_ns;
    call->operation = l->endpoint != NULL
                          ? (mg_str_t){l->endpoint->operation, l->endpoint->operation_len}
                          : (mg_str_t){"POST (route table)", 18};
    call->target = (mg_str_t){req->path_normalized.base, req->path_normalized.len};
}

static int ep_server_metadata(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    (void)cap;
    return handle_server_metadata(l, req);
}

static int ep_live(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    (void)cap;
    return handle_live(l, req, 0);
}

static int ep_ready(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    (void)cap;
    return handle_ready(l, req, 0);
}

static int ep_healthz(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    (void)cap;
    return handle_live(l, req, 1);
}

static int ep_readyz(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    (void)cap;
    return handle_ready(l, req, 1);
}

static const mg_str_t no_version = {"", 0};

static int ep_model(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    return handle_model_metadata(l, req, cap[0], no_version);
}

static int ep_model_version(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    return handle_model_metadata(l, req, cap[0], cap[1]);
}

static int ep_stats_all(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    (void)cap;
    return handle_stats(l, req, no_version, no_version);
}

static int ep_model_stats(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    return handle_stats(l, req, cap[0], no_version);
}

static int ep_model_version_stats(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    return handle_stats(l, req, cap[0], cap[1]);
}

static int ep_model_config(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    return handle_model_config(l, req, cap[0], no_version);
}

static int ep_model_version_config(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    return handle_model_config(l, req, cap[0], cap[1]);
}

static int ep_shm_status_all(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    (void)cap;
    return handle_shm_status(l, req, no_version);
}

static int ep_shm_status(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    return handle_shm_status(l, req, cap[0]);
}

static int ep_shm_register(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    return handle_shm_register(l, req, cap[0]);
}

static int ep_shm_unregister_all(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    (void)cap;
    return handle_shm_unregister(l, req, no_version);
}

static int ep_shm_unregister(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    return handle_shm_unregister(l, req, cap[0]);
}

static int ep_model_ready(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    return handle_model_ready(l, req, cap[0], no_version);
}

static int ep_model_version_ready(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    return handle_model_ready(l, req, cap[0], cap[1]);
}

static int ep_infer(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    return handle_infer(l, req, cap[0], no_version, NULL);
}

static int ep_infer_version(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    return handle_infer(l, req, cap[0], cap[1], NULL);
}

static int ep_predict(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    (void)cap;
    return handle_predict(l, req, NULL);
}

static int ep_repo_index(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    (void)cap;
    return handle_repo_index(l, req);
}

static int ep_repo_load(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    return submit_job(l, req, MG_CONTROL_LOAD, cap[0], 1, answer_empty);
}

static int ep_repo_unload(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    return submit_job(l, req, MG_CONTROL_UNLOAD, cap[0], 0, answer_empty);
}

static int ep_traffic(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    return handle_traffic(l, req, cap[0]);
}

static int ep_routes(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    (void)cap;
    return handle_routes(l, req);
}

static int ep_breakers(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    return handle_breakers(l, req, cap[0]);
}

#ifdef MG_FAULTS
static int ep_fault(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    return handle_fault(l, req, cap[0], cap[1]);
}
#endif

static int ep_kill_switch(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    (void)cap;
    return handle_kill_switch(l, req);
}

/* GET /metrics: the Prometheus exposition. */
static int ep_metrics(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    (void)cap;
    if (!mg_obs_enabled())
        return send_error(req, &l->out, MG_ENOENDPOINT, "metrics are off (--metrics off)");
    mg_buf_reset(&l->out);
    if (mg_report_metrics(l->api->serve, &l->out) != 0)
        return send_error(req, &l->out, MG_ENOMEM, "out of memory");
    return send_body(req, 200, MG_PROM_CONTENT_TYPE, l->out.data, l->out.len);
}

/* GET /v2/admin/stats, /debug/memory, /debug/config: JSON reports. */
static int send_report(mg_api_loop_t *l, h2o_req_t *req, int (*report)(mg_serve_t *, mg_buf_t *))
{
    mg_buf_reset(&l->out);
    if (report(l->api->serve, &l->out) != 0)
        return send_error(req, &l->out, MG_ENOMEM, "out of memory");
    add_header(req, "cache-control", "no-store", 8);
    return send_json(req, 200, &l->out);
}

static int ep_stats(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    (void)cap;
    return send_report(l, req, mg_report_stats);
}

static int ep_debug_memory(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    (void)cap;
    return send_report(l, req, mg_report_memory);
}

static int ep_debug_config(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    (void)cap;
    return send_report(l, req, mg_report_config);
}

/* GET /ui: the canary page, one self-contained HTML file built into the binary. */
static int ep_ui(mg_api_loop_t *l, h2o_req_t *req, const mg_str_t *cap)
{
    (void)l;
    (void)cap;
    add_header(req, "cache-control", "no-cache", 8);
    return send_body(req, 200, "text/html; charset=utf-8", (const char *)mg_ui_html,
                     mg_ui_html_len);
}

#define INFERENCE MG_SURFACE_INFERENCE
#define ADMIN     MG_SURFACE_ADMIN
#define METRICS   MG_SURFACE_METRICS
#define EP(p, a, s, f)                                                                             \
    {                                                                                              \
        .path = (p), .allow = (a), .surface = (s), .fn = (f)                                       \
    }
#define EP_OPEN(p, a, s, f)                                                                        \
    {                                                                                              \
        .path = (p), .allow = (a), .surface = (s), .open = true, .fn = (f)                         \
    }

/* Every endpoint. A path is matched against the rows in order; the first match answers. */
static endpoint_t endpoints[] = {
    EP("/v2", "GET", INFERENCE, ep_server_metadata),
    EP("/v2/health/live", "GET", INFERENCE, ep_live),
    EP("/v2/health/ready", "GET", INFERENCE, ep_ready),
    EP("/v2/models/stats", "GET", INFERENCE, ep_stats_all), /* before the model named so */
    EP("/v2/models/{}", "GET", INFERENCE, ep_model),
    EP("/v2/models/{}/stats", "GET", INFERENCE, ep_model_stats),
    EP("/v2/models/{}/config", "GET", INFERENCE, ep_model_config),
    EP("/v2/models/{}/ready", "GET", INFERENCE, ep_model_ready),
    EP("/v2/models/{}/infer", "POST", INFERENCE, ep_infer),
    EP("/v2/models/{}/versions/{}", "GET", INFERENCE, ep_model_version),
    EP("/v2/models/{}/versions/{}/ready", "GET", INFERENCE, ep_model_version_ready),
    EP("/v2/models/{}/versions/{}/infer", "POST", INFERENCE, ep_infer_version),
    EP("/v2/models/{}/versions/{}/stats", "GET", INFERENCE, ep_model_version_stats),
    EP("/v2/models/{}/versions/{}/config", "GET", INFERENCE, ep_model_version_config),
    EP("/v2/repository/index", "POST", INFERENCE, ep_repo_index),
    EP("/v2/systemsharedmemory/status", "GET", INFERENCE, ep_shm_status_all),
    EP("/v2/systemsharedmemory/region/{}/status", "GET", INFERENCE, ep_shm_status),
    EP("/v2/systemsharedmemory/region/{}/register", "POST", ADMIN, ep_shm_register),
    EP("/v2/systemsharedmemory/unregister", "POST", ADMIN, ep_shm_unregister_all),
    EP("/v2/systemsharedmemory/region/{}/unregister", "POST", ADMIN, ep_shm_unregister),
    EP("/v2/repository/models/{}/load", "POST", ADMIN, ep_repo_load),
    EP("/v2/repository/models/{}/unload", "POST", ADMIN, ep_repo_unload),
    EP("/v2/admin/models/{}/traffic", "GET, PUT", ADMIN, ep_traffic),
    EP("/v2/admin/routes", "GET, PUT", ADMIN, ep_routes),
    EP("/v2/admin/models/{}/breakers", "GET", ADMIN, ep_breakers),
#ifdef MG_FAULTS
    EP("/v2/admin/models/{}/versions/{}/fault", "PUT", ADMIN, ep_fault),
#endif
    EP("/v2/admin/kill-switch", "GET, PUT", ADMIN, ep_kill_switch),
    EP("/predict", "POST", INFERENCE, ep_predict),
    EP("/healthz", "GET", INFERENCE, ep_healthz),
    EP("/readyz", "GET", INFERENCE, ep_readyz),
    EP("/metrics", "GET", METRICS, ep_metrics),
    EP("/v2/admin/stats", "GET", ADMIN, ep_stats),
    /* The page holds no data: it asks for the token and sends it with its calls. */
    EP_OPEN("/ui", "GET", ADMIN, ep_ui),
    EP("/debug/memory", "GET", ADMIN, ep_debug_memory),
    EP("/debug/config", "GET", ADMIN, ep_debug_config),
};

#undef INFERENCE
#undef ADMIN
#undef METRICS
#undef EP

#define NENDPOINTS (sizeof(endpoints) / sizeof(endpoints[0]))

/* Splits "/a/b/c" into segments; returns the count, or -1 when there are more than `cap`. */
static int split_path(const char *p, size_t len, mg_str_t *seg, int cap)
{
    int n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && p[i] == '/')
            i++;
        if (i >= len)
            break;
        size_t start = i;
        while (i < len && p[i] != '/')
            i++;
        if (n == cap)
            return -1;
        seg[n++] = (mg_str_t){p + start, i - start};
    }
    return n;
}

static pthread_once_t endpoints_once = PTHREAD_ONCE_INIT;

/* Splits every pattern once; "{}" becomes a capture. */
static void compile_endpoints(void)
{
    for (size_t i = 0; i < NENDPOINTS; i++) {
        endpoint_t *e = &endpoints[i];
        e->nseg = split_path(e->path, strlen(e->path), e->seg, SEGMENTS_MAX);
        snprintf(e->operation, sizeof(e->operation), "%.*s %s", (int)strcspn(e->allow, ","),
                 e->allow, e->path);
        e->operation_len = strlen(e->operation);
        for (const char *p = e->allow; *p && e->nmethods < 4;) {
            size_t n = strcspn(p, ",");
            e->methods[e->nmethods++] = (mg_str_t){p, n};
            p += n;
            while (*p == ',' || *p == ' ')
                p++;
        }
        for (int k = 0; k < e->nseg; k++) {
            if (e->seg[k].len == 2 && memcmp(e->seg[k].ptr, "{}", 2) == 0)
                e->seg[k] = (mg_str_t){NULL, 0};
        }
    }
}

/* Matches `seg` against `e`, filling `cap`. */
static int endpoint_match(const endpoint_t *e, const mg_str_t *seg, int n, mg_str_t *cap)
{
    if (e->nseg != n)
        return 0;
    int ncap = 0;
    for (int k = 0; k < n; k++) {
        if (e->seg[k].ptr == NULL)
            cap[ncap++] = seg[k];
        else if (e->seg[k].len != seg[k].len || memcmp(e->seg[k].ptr, seg[k].ptr, seg[k].len) != 0)
            return 0;
    }
    return 1;
}

void mg_api_surface_names(unsigned surfaces, char *out, size_t cap)
{
    static const char *const names[] = {"inference", "admin", "metrics"};
    size_t n = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < 3; i++) {
        if (surfaces & (1u << i))
            n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", n ? "," : "", names[i]);
    }
    if (n == 0)
        snprintf(out, cap, "nothing");
}

/* The admin surface's token check; answers 401 or 403 and returns 0 when it fails. */
static int admin_authorized(mg_api_loop_t *l, h2o_req_t *req)
{
    mg_str_t cred = {"", 0};
    find_header(&l->headers, "authorization", 13, &cred);
    int rc = mg_auth_check(&l->api->admin_auth, cred);
    if (rc == 0)
        return 1;
    if (rc == MG_EUNAUTHORIZED) {
        add_header(req, "www-authenticate", MG_AUTH_CHALLENGE, strlen(MG_AUTH_CHALLENGE));
        send_error(req, &l->out, rc, "the admin API needs \"Authorization: Bearer <token>\"");
    } else {
        send_error(req, &l->out, rc, "the admin token is not valid");
    }
    return 0;
}

static void free_inflated(void *p)
{
    free(*(char **)p);
}

/*
 * A body sent with Content-Encoding gzip or deflate is inflated, bounded by the body limit,
 * and handed to the endpoint in its place (the request pool frees it). Answers 413, 415 or 400
 * and returns 0 when it cannot be.
 */
static int inflate_body(mg_api_loop_t *l, h2o_req_t *req)
{
    mg_str_t coding;
    if (!request_header(req, "content-encoding", 16, &coding))
        return 1;
    mg_encoding_t enc;
    mg_err_t err;
    char *plain = NULL;
    size_t n = 0;
    mg_str_t body = body_of(req);
    int rc = mg_encoding_parse(coding.ptr, coding.len, &enc, &err);
    if (rc == 0 && enc == MG_ENCODING_IDENTITY)
        return 1;
    if (rc == 0)
        rc = mg_encoding_inflate(enc, body.ptr, body.len, l->api->max_body_bytes, &plain, &n, &err);
    if (rc != 0) {
        send_error(req, &l->out, rc, err.msg);
        return 0;
    }
    char **slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), free_inflated);
    *slot = plain;
    req->entity = h2o_iovec_init(plain, n);
    return 1;
}

int mg_api_handle(mg_api_loop_t *l, h2o_req_t *req, unsigned surfaces)
{
    mg_str_t seg[SEGMENTS_MAX], cap[SEGMENTS_MAX];
    int n = split_path(req->path_normalized.base, req->path_normalized.len, seg, SEGMENTS_MAX);
    mg_arena_reset(&l->arena);
    header_view_init(&l->headers, req);
    for (size_t i = 0; n >= 0 && i < NENDPOINTS; i++) {
        const endpoint_t *e = &endpoints[i];
        if ((e->surface & surfaces) == 0 || !endpoint_match(e, seg, n, cap))
            continue;
        if (e->surface == MG_SURFACE_ADMIN && !e->open && !admin_authorized(l, req))
            return 0;
        l->endpoint = e;
        l->received_ns = mg_obs_enabled() || mg_trace_enabled() ? mg_obs_now_ns() : 0;
        for (int m = 0; m < e->nmethods; m++) {
            if (h2o_memis(req->method.base, req->method.len, e->methods[m].ptr, e->methods[m].len))
                return inflate_body(l, req) ? e->fn(l, req, cap) : 0;
        }
        if (!method_ok(req, &l->out, e->allow) || !inflate_body(l, req))
            return 0;
        return e->fn(l, req, cap);
    }
    l->endpoint = NULL;
    l->received_ns = mg_obs_enabled() || mg_trace_enabled() ? mg_obs_now_ns() : 0;
    if ((surfaces & MG_SURFACE_INFERENCE) && !inflate_body(l, req))
        return 0;
    if ((surfaces & MG_SURFACE_INFERENCE) && handle_table_route(l, req))
        return 0;
    return send_errorf(req, &l->out, MG_ENOENDPOINT, "no endpoint %.*s %.*s", (int)req->method.len,
                       req->method.base,
                       (int)(req->path_normalized.len > 200 ? 200 : req->path_normalized.len),
                       req->path_normalized.base);
}

/* ---- per-loop state ----------------------------------------------------------------------- */

int mg_api_loop_new(mg_api_loop_t **out, const mg_api_t *api, h2o_loop_t *loop)
{
    pthread_once(&endpoints_once, compile_endpoints);
    mg_api_loop_t *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return MG_ENOMEM;
    l->api = api;
    mg_arena_init(&l->arena, 0);
    l->held = calloc(HELD_MAX, sizeof(*l->held));
    if (l->held == NULL || mg_batch_new(&l->batch, HELD_MAX) != 0) {
        free(l->held);
        mg_arena_free(&l->arena);
        free(l);
        return MG_ENOMEM;
    }
    for (size_t i = 0; i < HELD_MAX; i++) {
        l->held[i].loop = l;
        mg_arena_init(&l->held[i].arena, 0);
    }
    l->loop = loop;
    h2o_timeout_init(loop, &l->wake_end, 0);
    l->wake_end_entry.cb = on_wake_end;
    l->queue = h2o_multithread_create_queue(loop);
    h2o_multithread_register_receiver(l->queue, &l->receiver, on_jobs);
    h2o_multithread_register_receiver(l->queue, &l->ran, on_ran);
    *out = l;
    return 0;
}

void mg_api_loop_free(mg_api_loop_t *l)
{
    if (l == NULL)
        return;
    h2o_multithread_unregister_receiver(l->queue, &l->receiver);
    h2o_multithread_unregister_receiver(l->queue, &l->ran);
    h2o_multithread_destroy_queue(l->queue);
    /* Calls are held only within one turn of the loop, so none is left here. */
    if (h2o_timeout_is_linked(&l->wake_end_entry))
        h2o_timeout_unlink(&l->wake_end_entry);
    h2o_timeout_dispose(l->loop, &l->wake_end);
    mg_batch_free(l->batch);
    for (size_t i = 0; i < HELD_MAX; i++)
        mg_arena_free(&l->held[i].arena);
    free(l->held);
    mg_arena_free(&l->arena);
    mg_buf_free(&l->out);
    free(l);
}

size_t mg_api_loop_pending(const mg_api_loop_t *l)
{
    return l->pending;
}
