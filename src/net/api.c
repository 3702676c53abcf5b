#include "net/api.h"

#include "core/log.h"
#include "infer/session.h"
#include "proto/json.h"
#include "proto/kserve.h"
#include "proto/predict.h"
#include "serve/execute.h"
#include "serve/route.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "core/rcu.h"

#define MG_SERVER_NAME "modelgate"

void mg_api_scratch_init(mg_api_scratch_t *s)
{
    mg_arena_init(&s->arena, 0);
    memset(&s->out, 0, sizeof(s->out));
}

void mg_api_scratch_deinit(mg_api_scratch_t *s)
{
    mg_arena_free(&s->arena);
    mg_buf_free(&s->out);
}

/* ---- responses --------------------------------------------------------------------------- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

/* Adds a response header; the value is copied (h2o keeps only the pointer until it sends). */
static void add_header(h2o_req_t *req, const char *name, const char *value, size_t len)
{
    h2o_iovec_t v = h2o_strdup(&req->pool, value, len);
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, NULL, v.base,
                          v.len);
}

/* Sends `body` (copied into the request pool) with `status` and `content_type`. */
static int send_body(h2o_req_t *req, int status, const char *content_type, const char *body,
                     size_t len)
{
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                   strlen(content_type));
    h2o_send_inline(req, body, len);
    return 0;
}

static int send_json(h2o_req_t *req, int status, const mg_buf_t *b)
{
    return send_body(req, status, "application/json", b->data, b->len);
}

static int send_error(h2o_req_t *req, mg_buf_t *out, int status, const char *msg)
{
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
static int send_errorf(h2o_req_t *req, mg_buf_t *out, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int send_errorf(h2o_req_t *req, mg_buf_t *out, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return send_error(req, out, status, msg);
}

/* Status for a failure to find a model or version. */
static int lookup_status(int code)
{
    switch (code) {
    case MG_ENOENT: return 404;
    case MG_EUNAVAIL: return 503;
    default: return 500;
    }
}

/* Status for a failure to decode, validate or run a request. */
static int request_status(int code)
{
    switch (code) {
    case MG_ETOOBIG: return 413;
    case MG_EUNAVAIL: return 503;
    case MG_ENOMEM: return 500;
    case MG_ERUNTIME: return 500;
    default: return 400;
    }
}

static int send_method_not_allowed(h2o_req_t *req, mg_buf_t *out, const char *allow)
{
    add_header(req, "allow", allow, strlen(allow));
    return send_errorf(req, out, 405, "method %.*s not allowed on %.*s; use %s",
                       (int)req->method.len, req->method.base, (int)req->path_normalized.len,
                       req->path_normalized.base, allow);
}

/* h2o keeps request header names in lower case. */
static int find_header(void *ctx, const char *lname, size_t len, mg_str_t *value)
{
    h2o_req_t *req = ctx;
    ssize_t i = h2o_find_header_by_str(&req->headers, lname, len, -1);
    if (i < 0)
        return 0;
    *value = (mg_str_t){req->headers.entries[i].value.base, req->headers.entries[i].value.len};
    return 1;
}

static mg_str_t header_value(h2o_req_t *req, const char *lname)
{
    mg_str_t v = {"", 0};
    find_header(req, lname, strlen(lname), &v);
    return v;
}

/*
 * Routes the request and pins the version. On failure the error response is sent and
 * *v stays NULL. `rule` is the matched route rule or NULL.
 */
static int route_request(const mg_api_t *api, mg_api_scratch_t *sc, h2o_req_t *req, mg_str_t model,
                         mg_str_t url_version, const mg_route_rule_t *rule,
                         const mg_infer_request_t *ireq, mg_route_result_t *res)
{
    mg_policy_input_t in;
    memset(&in, 0, sizeof(in));
    in.url_version = url_version;
    in.header_version = header_value(req, "x-model-version");
    in.ab_group = header_value(req, "x-ab-group");
    in.stage = header_value(req, "x-stage");
    mg_route_source_t src = {.headers = {find_header, req}, .req = ireq};
    mg_err_t err;
    int rc = mg_serve_route(api->registry, api->router, model, rule ? rule->traffic : NULL, &in,
                            &src, res, &err);
    if (rc != 0) {
        send_error(req, &sc->out, rc == MG_EINVAL ? 400 : lookup_status(rc), err.msg);
        return rc;
    }
    return 0;
}

/* X-Model-Version, X-Route-Reason, echoes of X-Trace-ID and X-AB-Group, and on request
 * X-Route-Explain. */
static void add_route_headers(h2o_req_t *req, const mg_route_result_t *res,
                              const mg_route_rule_t *rule)
{
    const mg_model_version_t *v = res->version;
    const char *reason = mg_policy_reason_name(res->reason);
    add_header(req, "x-model-version", v->version_str, strlen(v->version_str));
    add_header(req, "x-route-reason", reason, strlen(reason));
    static const char *const echo[] = {"x-trace-id", "x-ab-group"};
    for (int i = 0; i < 2; i++) {
        mg_str_t e = header_value(req, echo[i]);
        if (e.len > 0)
            add_header(req, echo[i], e.ptr, e.len);
    }
    mg_str_t explain = header_value(req, "x-route-explain");
    if (explain.len == 1 && explain.ptr[0] == '1') {
        char text[400];
        int n = snprintf(text, sizeof(text), "rule=%s policy=%s reason=%s version=%s chosen=%lld",
                         rule ? rule->name : "-", mg_policy_source_name(res->source), reason,
                         v->version_str, (long long)res->chosen);
        if (res->rule >= 0 && n > 0 && (size_t)n < sizeof(text))
            snprintf(text + n, sizeof(text) - (size_t)n, " header-rule=%d", res->rule);
        add_header(req, "x-route-explain", text, strlen(text));
    }
    if (mg_log_enabled(MG_LOG_DEBUG))
        mg_log(MG_LOG_DEBUG, "http",
               "routed model=%s version=%s reason=%s policy=%s rule=%s trace=%.*s", v->model_name,
               v->version_str, reason, mg_policy_source_name(res->source), rule ? rule->name : "-",
               (int)header_value(req, "x-trace-id").len, header_value(req, "x-trace-id").ptr);
}

/* ---- path parsing ------------------------------------------------------------------------ */

/* Splits "/a/b/c" into segments; returns the count, or -1 when there are more than `cap`. */
static int split_path(h2o_iovec_t path, mg_str_t *seg, int cap)
{
    int n = 0;
    size_t i = 0;
    while (i < path.len) {
        while (i < path.len && path.base[i] == '/')
            i++;
        if (i >= path.len)
            break;
        size_t start = i;
        while (i < path.len && path.base[i] != '/')
            i++;
        if (n == cap)
            return -1;
        seg[n++] = (mg_str_t){path.base + start, i - start};
    }
    return n;
}

static int method_is(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

/* ---- JSON pieces ------------------------------------------------------------------------- */

static int put_tensor_infos(mg_buf_t *b, const mg_session_t *s, int outputs)
{
    size_t n = outputs ? mg_session_noutputs(s) : mg_session_ninputs(s);
    int rc = mg_buf_puts(b, "[");
    for (size_t i = 0; i < n && rc == 0; i++) {
        const mg_tensor_info_t *t = outputs ? mg_session_output(s, i) : mg_session_input(s, i);
        rc |= mg_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        rc |= mg_buf_json_string(b, t->name, strlen(t->name));
        rc |= mg_buf_printf(b, ",\"datatype\":\"%s\",\"shape\":[", mg_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            rc |= mg_buf_printf(b, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        rc |= mg_buf_puts(b, "]}");
    }
    rc |= mg_buf_puts(b, "]");
    return rc;
}

/* ---- endpoints --------------------------------------------------------------------------- */

static int handle_server_metadata(mg_api_scratch_t *sc, h2o_req_t *req)
{
    mg_buf_t *b = &sc->out;
    mg_buf_reset(b);
    mg_buf_printf(b,
                  "{\"name\":\"%s\",\"version\":\"%s\",\"extensions\":[\"binary_tensor_data\","
                  "\"model_repository\"]}",
                  MG_SERVER_NAME, MG_VERSION);
    return send_json(req, 200, b);
}

static int handle_live(mg_api_scratch_t *sc, h2o_req_t *req, int simple)
{
    mg_buf_reset(&sc->out);
    mg_buf_puts(&sc->out, simple ? "{\"status\":\"ok\"}" : "{\"live\":true}");
    return send_json(req, 200, &sc->out);
}

static int handle_ready(const mg_api_t *api, mg_api_scratch_t *sc, h2o_req_t *req, int simple)
{
    mg_buf_t *b = &sc->out;
    mg_buf_reset(b);
    if (mg_registry_all_ready(api->registry)) {
        mg_buf_puts(b, simple ? "{\"status\":\"ready\"}" : "{\"ready\":true}");
        return send_json(req, 200, b);
    }
    /* Name what is not ready, so an operator sees the reason in the probe's output. */
    mg_buf_t why = {0};
    rcu_read_lock();
    const mg_registry_snapshot_t *s = mg_registry_snapshot(api->registry);
    for (size_t i = 0; i < mg_registry_snapshot_count(s); i++) {
        const mg_model_entry_t *e = mg_registry_snapshot_model(s, i);
        if (mg_model_entry_failed(e))
            mg_buf_printf(&why, "%smodel '%s' is not ready (%s)", why.len ? "; " : "", e->name,
                          e->reason);
    }
    mg_rcu_read_unlock();
    mg_buf_puts(b, simple ? "{\"status\":\"not ready\",\"ready\":false,\"error\":"
                          : "{\"ready\":false,\"error\":");
    const char *msg = why.len ? why.data : "models are still loading";
    mg_buf_json_string(b, msg, why.len ? why.len : strlen(msg));
    mg_buf_puts(b, "}");
    mg_buf_free(&why);
    return send_json(req, 503, b);
}

/* GET /v2/models/{m}[/versions/{v}] and .../ready */
static int handle_model_get(const mg_api_t *api, mg_api_scratch_t *sc, h2o_req_t *req,
                            mg_str_t model, mg_str_t version, int ready)
{
    mg_buf_t *b = &sc->out;
    mg_err_t err;
    mg_model_version_t *v;
    int rc = mg_registry_acquire(api->registry, model, version, &v, &err);
    mg_buf_reset(b);
    if (ready) {
        if (rc == MG_EUNAVAIL) {
            mg_buf_puts(b, "{\"name\":");
            mg_buf_json_string(b, model.ptr, model.len);
            mg_buf_puts(b, ",\"ready\":false,\"error\":");
            mg_buf_json_string(b, err.msg, strlen(err.msg));
            mg_buf_puts(b, "}");
            return send_json(req, 503, b);
        }
        if (rc != 0)
            return send_error(req, b, lookup_status(rc), err.msg);
        mg_buf_puts(b, "{\"name\":");
        mg_buf_json_string(b, v->model_name, strlen(v->model_name));
        mg_buf_printf(b, ",\"version\":\"%s\",\"ready\":true}", v->version_str);
        mg_model_version_unref(v);
        return send_json(req, 200, b);
    }
    if (rc != 0)
        return send_error(req, b, lookup_status(rc), err.msg);

    mg_session_t *s = v->sessions[0];
    mg_buf_puts(b, "{\"name\":");
    mg_buf_json_string(b, v->model_name, strlen(v->model_name));
    mg_buf_puts(b, ",\"versions\":[");
    if (version.len) {
        mg_buf_printf(b, "\"%s\"", v->version_str);
    } else {
        /* Every READY version of the model, ascending. */
        int first = 1;
        rcu_read_lock();
        const mg_model_entry_t *e =
            mg_registry_snapshot_find(mg_registry_snapshot(api->registry), model);
        for (int i = 0; e != NULL && i < e->nversions; i++) {
            if (e->versions[i]->state == MG_MODEL_READY) {
                mg_buf_printf(b, first ? "\"%s\"" : ",\"%s\"", e->versions[i]->version_str);
                first = 0;
            }
        }
        mg_rcu_read_unlock();
    }
    mg_buf_printf(b, "],\"platform\":\"onnxruntime_onnx\",\"max_batch_size\":%lld,\"inputs\":",
                  (long long)v->config.max_batch_size);
    put_tensor_infos(b, s, 0);
    mg_buf_puts(b, ",\"outputs\":");
    int erc = put_tensor_infos(b, s, 1);
    mg_buf_puts(b, "}");
    mg_model_version_unref(v);
    if (erc != 0)
        return send_error(req, b, 500, "out of memory");
    return send_json(req, 200, b);
}

/* Reads Inference-Header-Content-Length. Returns 0 (absent: MG_KSERVE_NO_BINARY) or MG_EPARSE. */
static int binary_header_len(h2o_req_t *req, size_t *out)
{
    static const char name[] = "inference-header-content-length";
    ssize_t i = h2o_find_header_by_str(&req->headers, name, sizeof(name) - 1, -1);
    *out = MG_KSERVE_NO_BINARY;
    if (i < 0)
        return 0;
    h2o_iovec_t v = req->headers.entries[i].value;
    size_t n = 0;
    if (v.len == 0 || v.len > 19)
        return MG_EPARSE;
    for (size_t k = 0; k < v.len; k++) {
        if (v.base[k] < '0' || v.base[k] > '9')
            return MG_EPARSE;
        n = n * 10 + (size_t)(v.base[k] - '0');
    }
    *out = n;
    return 0;
}

/* POST /v2/models/{m}[/versions/{v}]/infer, or a route-table URL with api "infer". */
static int handle_infer(const mg_api_t *api, mg_api_scratch_t *sc, h2o_req_t *req, mg_str_t model,
                        mg_str_t version, const mg_route_rule_t *rule)
{
    mg_buf_t *b = &sc->out;
    mg_err_t err;
    size_t header_len;
    if (binary_header_len(req, &header_len) != 0)
        return send_error(req, b, 400,
                          "Inference-Header-Content-Length must be a decimal byte count");

    mg_infer_request_t ireq;
    memset(&ireq, 0, sizeof(ireq));
    ireq.arena = &sc->arena;
    const char *body = req->entity.base ? req->entity.base : "";
    int rc = mg_kserve_decode_request(body, req->entity.len, header_len, &ireq, &err);
    if (rc != 0)
        return send_error(req, b, request_status(rc), err.msg);

    mg_route_result_t res;
    if (route_request(api, sc, req, model, version, rule, &ireq, &res) != 0)
        return 0;
    mg_model_version_t *v = res.version;
    mg_infer_response_t resp;
    rc = mg_execute(v, &ireq, &resp, &err);
    if (rc != 0) {
        send_error(req, b, request_status(rc), err.msg);
        mg_model_version_unref(v);
        return 0;
    }
    mg_buf_reset(b);
    size_t out_header_len;
    rc = mg_kserve_encode_response(&resp, b, &out_header_len);
    mg_execute_release(&resp);
    if (rc != 0) {
        mg_model_version_unref(v);
        return send_error(req, b, 500, "out of memory encoding the response");
    }
    add_route_headers(req, &res, rule);
    mg_model_version_unref(v);
    if (out_header_len != MG_KSERVE_NO_BINARY) {
        char num[24];
        int n = snprintf(num, sizeof(num), "%zu", out_header_len);
        add_header(req, "inference-header-content-length", num, (size_t)n);
        return send_body(req, 200, "application/octet-stream", b->data, b->len);
    }
    return send_json(req, 200, b);
}

/* POST /predict: {"data": [...], "model"?: "...", "version"?: "..."} */
static int handle_predict(const mg_api_t *api, mg_api_scratch_t *sc, h2o_req_t *req,
                          const mg_route_rule_t *rule)
{
    mg_buf_t *b = &sc->out;
    mg_err_t err;
    mg_predict_request_t p;
    const char *body = req->entity.base ? req->entity.base : "";
    int rc = mg_predict_decode(body, req->entity.len, &p, &err);
    if (rc != 0)
        return send_error(req, b, request_status(rc), err.msg);

    /* A route rule names the model; otherwise the body may. */
    mg_str_t model = rule != NULL ? (mg_str_t){rule->model, strlen(rule->model)} : p.model;
    if (model.len == 0 && api->default_model != NULL)
        model = (mg_str_t){api->default_model, strlen(api->default_model)};
    if (model.len == 0) {
        rcu_read_lock();
        const mg_registry_snapshot_t *s = mg_registry_snapshot(api->registry);
        if (mg_registry_snapshot_count(s) == 1) {
            /* The name lives as long as the snapshot; copy it for use after the read section. */
            const char *name = mg_registry_snapshot_model(s, 0)->name;
            char *copy = mg_arena_strndup(&sc->arena, name, strlen(name));
            if (copy != NULL)
                model = (mg_str_t){copy, strlen(copy)};
        }
        mg_rcu_read_unlock();
        if (model.len == 0)
            return send_error(
                req, b, 400,
                "no \"model\" given and no default model configured (--default-model)");
    }

    mg_route_result_t res;
    if (route_request(api, sc, req, model, p.version, rule, NULL, &res) != 0)
        return 0;
    mg_model_version_t *v = res.version;
    mg_session_t *s = v->sessions[0];
    mg_infer_request_t ireq;
    memset(&ireq, 0, sizeof(ireq));
    ireq.arena = &sc->arena;
    mg_infer_response_t resp;
    memset(&resp, 0, sizeof(resp));
    rc = mg_predict_bind(&p, mg_session_inputs(s), mg_session_ninputs(s), v->model_name, &ireq,
                         &err);
    if (rc == 0)
        rc = mg_execute(v, &ireq, &resp, &err);
    if (rc != 0) {
        send_error(req, b, request_status(rc), err.msg);
        mg_model_version_unref(v);
        return 0;
    }
    mg_buf_reset(b);
    rc = mg_predict_encode_response(&resp, b);
    mg_execute_release(&resp);
    add_route_headers(req, &res, rule);
    mg_model_version_unref(v);
    if (rc != 0)
        return send_error(req, b, 500, "out of memory encoding the response");
    return send_json(req, 200, b);
}

/* POST /v2/repository/index */
static int handle_repo_index(const mg_api_t *api, mg_api_scratch_t *sc, h2o_req_t *req)
{
    mg_buf_t *b = &sc->out;
    int ready_only = 0;
    if (req->entity.len > 0) {
        /* {"ready": true} lists only ready models; anything else must still be a JSON object. */
        const char *p = req->entity.base, *end = p + req->entity.len;
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
            p++;
        if (p == end || *p != '{')
            return send_error(
                req, b, 400,
                "repository index body must be a JSON object such as {\"ready\": true}");
        ready_only = memmem(req->entity.base, req->entity.len, "true", 4) != NULL &&
                     memmem(req->entity.base, req->entity.len, "\"ready\"", 7) != NULL;
    }
    mg_buf_t names = {0};
    size_t nnames = 0;
    if (mg_registry_list_repository(api->registry, &names, &nnames) != 0)
        return send_error(req, b, 500, "cannot list the model repository");
    mg_buf_reset(b);
    mg_buf_puts(b, "[");
    int first = 1;
    rcu_read_lock();
    const mg_registry_snapshot_t *s = mg_registry_snapshot(api->registry);
    /* Models the registry knows, one row per version, then folders never loaded. */
    for (size_t i = 0; i < mg_registry_snapshot_count(s); i++) {
        const mg_model_entry_t *e = mg_registry_snapshot_model(s, i);
        if (e->nversions == 0 && !ready_only) {
            mg_buf_puts(b, first ? "{\"name\":" : ",{\"name\":");
            mg_buf_json_string(b, e->name, strlen(e->name));
            mg_buf_puts(b, ",\"state\":\"UNAVAILABLE\",\"reason\":");
            mg_buf_json_string(b, e->reason, strlen(e->reason));
            mg_buf_puts(b, "}");
            first = 0;
        }
        for (int k = 0; k < e->nversions; k++) {
            const mg_model_version_t *v = e->versions[k];
            int ok = v->state == MG_MODEL_READY;
            if (ready_only && !ok)
                continue;
            mg_buf_puts(b, first ? "{\"name\":" : ",{\"name\":");
            mg_buf_json_string(b, e->name, strlen(e->name));
            mg_buf_printf(b, ",\"version\":\"%s\",\"state\":\"%s\",\"reason\":", v->version_str,
                          ok ? "READY" : "UNAVAILABLE");
            mg_buf_json_string(b, v->reason, strlen(v->reason));
            mg_buf_puts(b, "}");
            first = 0;
        }
    }
    const char *n = names.data;
    for (size_t i = 0; i < nnames && !ready_only; i++, n += strlen(n) + 1) {
        if (mg_registry_snapshot_find(s, (mg_str_t){n, strlen(n)}) != NULL)
            continue;
        mg_buf_puts(b, first ? "{\"name\":" : ",{\"name\":");
        mg_buf_json_string(b, n, strlen(n));
        mg_buf_puts(b, "}");
        first = 0;
    }
    mg_rcu_read_unlock();
    mg_buf_free(&names);
    if (mg_buf_puts(b, "]") != 0)
        return send_error(req, b, 500, "out of memory");
    return send_json(req, 200, b);
}

/* POST /v2/repository/models/{m}/load|unload */
static int handle_repo_change(const mg_api_t *api, mg_api_scratch_t *sc, h2o_req_t *req,
                              mg_str_t model, int load)
{
    mg_buf_t *b = &sc->out;
    char name[256];
    if (model.len >= sizeof(name))
        return send_error(req, b, 400, "model name too long");
    memcpy(name, model.ptr, model.len);
    name[model.len] = '\0';
    mg_err_t err;
    mg_err_clear(&err);
    int rc = load ? mg_registry_load(api->registry, name, &err)
                  : mg_registry_unload(api->registry, name, &err);
    if (rc != 0)
        return send_error(req, b, rc == MG_ENOENT ? 404 : 400, err.msg);
    mg_log(MG_LOG_INFO, "http", "repository %s model=%s", load ? "load" : "unload", name);
    mg_buf_reset(b);
    mg_buf_puts(b, "{}");
    return send_json(req, 200, b);
}

#define GET_ONLY(call) (method_is(req, "GET") ? (call) : send_method_not_allowed(req, out, "GET"))
#define POST_ONLY(call)                                                                            \
    (method_is(req, "POST") ? (call) : send_method_not_allowed(req, out, "POST"))
#define GET_OR_PUT(call)                                                                           \
    (method_is(req, "GET") || method_is(req, "PUT")                                                \
         ? (call)                                                                                  \
         : send_method_not_allowed(req, out, "GET, PUT"))

/* ---- admin API ------------------------------------------------------------------------- */

/* Collects the versions the registry lists for `model` (any state). Returns the count or -1. */
static int model_versions(const mg_api_t *api, mg_str_t model, int64_t *out, int cap)
{
    int n = -1;
    rcu_read_lock();
    const mg_model_entry_t *e =
        mg_registry_snapshot_find(mg_registry_snapshot(api->registry), model);
    if (e != NULL) {
        n = 0;
        for (int i = 0; i < e->nversions && n < cap; i++)
            out[n++] = e->versions[i]->version;
    }
    mg_rcu_read_unlock();
    return n;
}

/* GET|PUT /v2/admin/models/{m}/traffic */
static int handle_traffic(const mg_api_t *api, mg_api_scratch_t *sc, h2o_req_t *req, mg_str_t model)
{
    mg_buf_t *b = &sc->out;
    mg_err_t err;
    char name[256];
    if (model.len >= sizeof(name))
        return send_error(req, b, 400, "model name too long");
    memcpy(name, model.ptr, model.len);
    name[model.len] = '\0';
    int64_t versions[256];
    int nversions = model_versions(api, model, versions, 256);
    if (nversions < 0) {
        return send_errorf(req, b, 404, "unknown model '%s'", name);
    }
    if (method_is(req, "PUT")) {
        mg_policy_t p;
        const char *body = req->entity.base ? req->entity.base : "";
        if (mg_policy_parse(body, req->entity.len, &p, &err) != 0 ||
            mg_policy_check_versions(&p, versions, nversions, &err) != 0) {
            return send_errorf(req, b, 400, "traffic policy of '%s' rejected: %s", name, err.msg);
        }
        if (mg_router_set_policy(api->router, name, &p, &err) != 0)
            return send_error(req, b, 500, err.msg);
        mg_log(MG_LOG_INFO, "route", "traffic policy set model=%s revision=%llu", name,
               (unsigned long long)mg_router_revision(api->router));
    }
    /* The effective policy: the admin one, else config.json's. */
    mg_policy_t cur;
    const char *source = "none";
    rcu_read_lock();
    const mg_policy_t *p = mg_router_policy(api->router, model);
    if (p != NULL) {
        cur = *p;
        source = "admin";
    } else {
        const mg_model_entry_t *e =
            mg_registry_snapshot_find(mg_registry_snapshot(api->registry), model);
        if (e != NULL && e->config.has_traffic) {
            cur = e->config.traffic;
            source = "config";
        }
    }
    mg_rcu_read_unlock();
    mg_buf_reset(b);
    int rc = strcmp(source, "none") == 0 ? mg_buf_puts(b, "{}") : mg_policy_to_json(&cur, b);
    if (rc != 0)
        return send_error(req, b, 500, "out of memory");
    add_header(req, "x-policy-source", source, strlen(source));
    return send_json(req, 200, b);
}

/* GET|PUT /v2/admin/routes */
static int handle_routes(const mg_api_t *api, mg_api_scratch_t *sc, h2o_req_t *req)
{
    mg_buf_t *b = &sc->out;
    mg_err_t err;
    if (method_is(req, "PUT")) {
        mg_route_table_t *t = NULL;
        const char *body = req->entity.base ? req->entity.base : "";
        if (mg_route_table_parse(body, req->entity.len, &t, &err) != 0) {
            return send_errorf(req, b, 400, "route table rejected: %s", err.msg);
        }
        /* Every rule must name a model the registry knows, and its override only its versions. */
        for (size_t i = 0; i < mg_route_table_count(t); i++) {
            const mg_route_rule_t *r = mg_route_table_rule(t, i);
            int64_t versions[256];
            int n = model_versions(api, (mg_str_t){r->model, strlen(r->model)}, versions, 256);
            if (n < 0) {
                send_errorf(req, b, 400, "route table rejected: route '%s': unknown model '%s'",
                            r->name, r->model);
                mg_route_table_free(t);
                return 0;
            }
            if (r->traffic != NULL &&
                mg_policy_check_versions(r->traffic, versions, n, &err) != 0) {
                send_errorf(req, b, 400, "route table rejected: route '%s': traffic: %s", r->name,
                            err.msg);
                mg_route_table_free(t);
                return 0;
            }
        }
        size_t n = mg_route_table_count(t);
        if (mg_router_set_table(api->router, t, &err) != 0)
            return send_error(req, b, 500, err.msg);
        mg_log(MG_LOG_INFO, "route", "route table set rules=%zu revision=%llu", n,
               (unsigned long long)mg_router_revision(api->router));
        mg_buf_reset(b);
        mg_buf_printf(b, "{\"routes\":%zu,\"revision\":%llu}", n,
                      (unsigned long long)mg_router_revision(api->router));
        return send_json(req, 200, b);
    }
    mg_buf_reset(b);
    if (mg_router_table_json(api->router, b) != 0)
        return send_error(req, b, 500, "out of memory");
    return send_json(req, 200, b);
}

/* An operator URL from the route table. Returns 1 when a rule matched (and answered). */
static int handle_table_route(const mg_api_t *api, mg_api_scratch_t *sc, h2o_req_t *req)
{
    h2o_iovec_t host = req->authority;
    for (size_t i = 0; i < host.len; i++) {
        if (host.base[i] == ':' && host.base[0] != '[') {
            host.len = i;
            break;
        }
    }
    mg_route_request_t rr = {
        .host = {host.base, host.len},
        .path = {req->path_normalized.base, req->path_normalized.len},
        .headers = {find_header, req},
    };
    /*
     * The rule belongs to the snapshot: copy what the request needs into the arena and leave
     * the read section before running the model, so a long Run never holds up a writer.
     */
    mg_route_rule_t copy;
    int matched = 0, copied = 1;
    rcu_read_lock();
    const mg_route_rule_t *rule = mg_router_match(api->router, &rr);
    if (rule != NULL) {
        matched = 1;
        copy = *rule;
        copy.name = mg_arena_strndup(&sc->arena, rule->name, strlen(rule->name));
        copy.model = mg_arena_strndup(&sc->arena, rule->model, strlen(rule->model));
        if (rule->traffic != NULL) {
            mg_policy_t *p = mg_arena_alloc(&sc->arena, sizeof(*p));
            if (p != NULL)
                *p = *rule->traffic;
            copy.traffic = p;
        }
        copied = copy.name != NULL && copy.model != NULL &&
                 (rule->traffic == NULL || copy.traffic != NULL);
    }
    mg_rcu_read_unlock();
    if (!matched)
        return 0;
    mg_buf_t *out = &sc->out;
    if (!copied) {
        send_error(req, out, 500, "out of memory");
        return 1;
    }
    mg_str_t model = {copy.model, strlen(copy.model)};
    if (copy.api == MG_ROUTE_API_PREDICT)
        POST_ONLY(handle_predict(api, sc, req, &copy));
    else
        POST_ONLY(handle_infer(api, sc, req, model, (mg_str_t){"", 0}, &copy));
    return 1;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

int mg_api_handle(const mg_api_t *api, mg_api_scratch_t *sc, h2o_req_t *req)
{
    mg_buf_t *out = &sc->out;
    mg_str_t seg[8];
    int n = split_path(req->path_normalized, seg, 8);
    mg_str_t none = {"", 0};
    mg_arena_reset(&sc->arena);

    if (n >= 1 && mg_str_eq(seg[0], "v2")) {
        if (n == 1)
            return GET_ONLY(handle_server_metadata(sc, req));
        if (n == 3 && mg_str_eq(seg[1], "health") && mg_str_eq(seg[2], "live"))
            return GET_ONLY(handle_live(sc, req, 0));
        if (n == 3 && mg_str_eq(seg[1], "health") && mg_str_eq(seg[2], "ready"))
            return GET_ONLY(handle_ready(api, sc, req, 0));
        if (n >= 3 && mg_str_eq(seg[1], "models")) {
            mg_str_t model = seg[2], version = none;
            int rest = 3;
            if (n >= 5 && mg_str_eq(seg[3], "versions")) {
                version = seg[4];
                rest = 5;
            }
            if (n == rest)
                return GET_ONLY(handle_model_get(api, sc, req, model, version, 0));
            if (n == rest + 1 && mg_str_eq(seg[rest], "ready"))
                return GET_ONLY(handle_model_get(api, sc, req, model, version, 1));
            if (n == rest + 1 && mg_str_eq(seg[rest], "infer"))
                return POST_ONLY(handle_infer(api, sc, req, model, version, NULL));
        }
        if (n == 5 && mg_str_eq(seg[1], "admin") && mg_str_eq(seg[2], "models") &&
            mg_str_eq(seg[4], "traffic"))
            return GET_OR_PUT(handle_traffic(api, sc, req, seg[3]));
        if (n == 3 && mg_str_eq(seg[1], "admin") && mg_str_eq(seg[2], "routes"))
            return GET_OR_PUT(handle_routes(api, sc, req));
        if (n == 3 && mg_str_eq(seg[1], "repository") && mg_str_eq(seg[2], "index"))
            return POST_ONLY(handle_repo_index(api, sc, req));
        if (n == 5 && mg_str_eq(seg[1], "repository") && mg_str_eq(seg[2], "models")) {
            if (mg_str_eq(seg[4], "load"))
                return POST_ONLY(handle_repo_change(api, sc, req, seg[3], 1));
            if (mg_str_eq(seg[4], "unload"))
                return POST_ONLY(handle_repo_change(api, sc, req, seg[3], 0));
        }
    } else if (n == 1 && mg_str_eq(seg[0], "predict")) {
        return POST_ONLY(handle_predict(api, sc, req, NULL));
    } else if (n == 1 && mg_str_eq(seg[0], "healthz")) {
        return GET_ONLY(handle_live(sc, req, 1));
    } else if (n == 1 && mg_str_eq(seg[0], "readyz")) {
        return GET_ONLY(handle_ready(api, sc, req, 1));
    }
    if (handle_table_route(api, sc, req))
        return 0;
    return send_errorf(req, out, 404, "no endpoint %.*s %.*s", (int)req->method.len,
                       req->method.base,
                       (int)(req->path_normalized.len > 200 ? 200 : req->path_normalized.len),
                       req->path_normalized.base);
}
