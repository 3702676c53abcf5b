#include "cluster/etcd.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ENDPOINTS_MAX 16

struct mg_etcd {
    char *endpoints[ENDPOINTS_MAX];
    int nendpoints;
    int current; /* the endpoint that last answered */
    long connect_timeout_ms;
    long request_timeout_ms;
    CURL *unary; /* kept, so its connection is reused */
    atomic_bool cancelled;
};

/* ---- base64 (keys and values), 64-bit numbers as JSON strings ----------------------------- */

static int b64_put(mg_buf_t *out, const char *p, size_t n)
{
    size_t need = 4 * ((n + 2) / 3) + 1;
    if (mg_buf_reserve(out, need) != 0)
        return MG_ENOMEM;
    int k =
        EVP_EncodeBlock((unsigned char *)out->data + out->len, (const unsigned char *)p, (int)n);
    out->len += (size_t)k;
    return 0;
}

/* Decodes base64 text into a malloc'd, NUL-terminated copy. Returns 0, MG_EINVAL or MG_ENOMEM. */
static int b64_get(const char *s, char **out, size_t *len)
{
    size_t n = strlen(s);
    char *d = malloc(n / 4 * 3 + 4);
    if (d == NULL)
        return MG_ENOMEM;
    int k = n ? EVP_DecodeBlock((unsigned char *)d, (const unsigned char *)s, (int)n) : 0;
    if (k < 0 || n % 4 != 0) {
        free(d);
        return MG_EINVAL;
    }
    /* EVP_DecodeBlock counts the padding as data bytes. */
    for (size_t i = n; i > 0 && s[i - 1] == '='; i--)
        k--;
    d[k] = '\0';
    *out = d;
    *len = (size_t)k;
    return 0;
}

/* A 64-bit number the gateway sends as a string (or, in places, a JSON number); 0 when absent. */
static int64_t num_of(json_t *v)
{
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    return 0;
}

static void kv_clear(mg_etcd_kv_t *kv)
{
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof(*kv));
}

/* Fills `kv` from the gateway's {"key","value","mod_revision",...}. */
static int kv_from_json(json_t *j, mg_etcd_kv_t *kv)
{
    memset(kv, 0, sizeof(*kv));
    const char *k = json_string_value(json_object_get(j, "key"));
    const char *v = json_string_value(json_object_get(j, "value"));
    int rc = b64_get(k ? k : "", &kv->key, &kv->key_len);
    if (rc == 0)
        rc = b64_get(v ? v : "", &kv->value, &kv->value_len);
    if (rc != 0) {
        kv_clear(kv);
        return rc;
    }
    kv->create_revision = num_of(json_object_get(j, "create_revision"));
    kv->mod_revision = num_of(json_object_get(j, "mod_revision"));
    kv->lease = num_of(json_object_get(j, "lease"));
    return 0;
}

void mg_etcd_kvs_free(mg_etcd_kvs_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        kv_clear(&r->kvs[i]);
    free(r->kvs);
    memset(r, 0, sizeof(*r));
}

int mg_etcd_prefix_end(const char *prefix, mg_buf_t *out)
{
    size_t n = strlen(prefix);
    /* The shortest key greater than every key with the prefix: drop trailing 0xff bytes, then
     * increment the last one. An all-0xff (or empty) prefix means "to the end": "\0". */
    while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
        n--;
    if (n == 0)
        return mg_buf_append(out, "", 1) == 0 ? 0 : MG_ENOMEM;
    if (mg_buf_append(out, prefix, n) != 0)
        return MG_ENOMEM;
    out->data[out->len - 1] = (char)((unsigned char)out->data[out->len - 1] + 1);
    return 0;
}

/* ---- the client ---------------------------------------------------------------------------- */

int mg_etcd_new(mg_etcd_t **out, const mg_etcd_opts_t *opts, mg_err_t *err)
{
    mg_etcd_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    e->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 1000;
    e->request_timeout_ms = opts->request_timeout_ms > 0 ? opts->request_timeout_ms : 3000;
    atomic_init(&e->cancelled, false);
    const char *p = opts->endpoints != NULL ? opts->endpoints : "";
    int rc = 0;
    while (*p != '\0' && rc == 0) {
        size_t n = strcspn(p, ",");
        while (n > 0 && (p[n - 1] == '/' || p[n - 1] == ' '))
            n--;
        while (n > 0 && *p == ' ') {
            p++;
            n--;
        }
        if (n > 0) {
            if (e->nendpoints == ENDPOINTS_MAX)
                rc = mg_err_set(err, MG_EINVAL, "more than %d etcd endpoints", ENDPOINTS_MAX);
            else if (strncmp(p, "http://", 7) != 0 && strncmp(p, "https://", 8) != 0)
                rc = mg_err_set(err, MG_EINVAL,
                                "etcd endpoint '%.*s' is not an http:// or https:// URL",
                                mg_err_quote_len(n), p);
            else if ((e->endpoints[e->nendpoints++] = strndup(p, n)) == NULL)
                rc = mg_err_set(err, MG_ENOMEM, "out of memory");
        }
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    if (rc == 0 && e->nendpoints == 0)
        rc = mg_err_set(err, MG_EINVAL, "no etcd endpoint given");
    if (rc == 0 && (e->unary = curl_easy_init()) == NULL)
        rc = mg_err_set(err, MG_ENOMEM, "out of memory");
    if (rc != 0) {
        mg_etcd_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void mg_etcd_free(mg_etcd_t *e)
{
    if (e == NULL)
        return;
    for (int i = 0; i < e->nendpoints; i++)
        free(e->endpoints[i]);
    if (e->unary != NULL)
        curl_easy_cleanup(e->unary);
    free(e);
}

void mg_etcd_cancel(mg_etcd_t *e)
{
    atomic_store(&e->cancelled, true);
}

const char *mg_etcd_endpoint(const mg_etcd_t *e)
{
    return e->endpoints[e->current];
}

static size_t collect(char *data, size_t size, size_t n, void *userdata)
{
    return mg_buf_append(userdata, data, size * n) == 0 ? size * n : 0;
}

/* libcurl's progress callback: a non-zero return aborts the transfer. */
static int check_cancel(void *p, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    mg_etcd_t *e = p;
    return atomic_load(&e->cancelled) ? 1 : 0;
}

/* Options every transfer shares. `hdrs` is the caller's. */
static void setup(mg_etcd_t *e, CURL *c, const char *url, const mg_buf_t *body, mg_buf_t *resp,
                  struct curl_slist *hdrs, char *errbuf)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, e->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, check_cancel);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, e);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
}

/* etcd's {"error": "...", "message": "...", "code": N} as a message; `body` is NUL-terminated. */
static int etcd_refused(long status, const mg_buf_t *body, mg_err_t *err)
{
    json_t *j = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "message"));
    if (msg == NULL)
        msg = json_string_value(json_object_get(j, "error"));
    mg_err_set(err, MG_EIO, "etcd refused (%ld): %s", status,
               msg ? msg : (body->len ? body->data : "no reason given"));
    json_decref(j);
    return MG_EIO;
}

/*
 * POSTs `body` to `path` on the endpoint that last answered, then on each other one in turn
 * until one answers. Returns 0 with the parsed JSON answer of a 200 in *out, or MG_EIO (none
 * answered, or etcd refused) / MG_ECANCELED / MG_ENOMEM with `err` filled.
 */
static int unary(mg_etcd_t *e, const char *path, const mg_buf_t *body, json_t **out, mg_err_t *err)
{
    mg_buf_t resp = {0};
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    int rc = MG_EIO, decided = 0; /* decided: an answer or a failure other than "unreachable" */
    char why[CURL_ERROR_SIZE + 300] = "no endpoint";
    for (int k = 0; k < e->nendpoints; k++) {
        if (atomic_load(&e->cancelled)) {
            rc = mg_err_set(err, MG_ECANCELED, "etcd client stopped");
            decided = 1;
            break;
        }
        int ep = (e->current + k) % e->nendpoints;
        char url[1200], errbuf[CURL_ERROR_SIZE] = "";
        snprintf(url, sizeof(url), "%s%s", e->endpoints[ep], path);
        mg_buf_reset(&resp);
        curl_easy_reset(e->unary);
        setup(e, e->unary, url, body, &resp, hdrs, errbuf);
        curl_easy_setopt(e->unary, CURLOPT_TIMEOUT_MS, e->request_timeout_ms);
        CURLcode cc = curl_easy_perform(e->unary);
        if (cc == CURLE_ABORTED_BY_CALLBACK) {
            rc = mg_err_set(err, MG_ECANCELED, "etcd client stopped");
            decided = 1;
            break;
        }
        if (cc != CURLE_OK) {
            snprintf(why, sizeof(why), "%s: %s", e->endpoints[ep],
                     errbuf[0] ? errbuf : curl_easy_strerror(cc));
            continue;
        }
        long status = 0;
        curl_easy_getinfo(e->unary, CURLINFO_RESPONSE_CODE, &status);
        if (mg_buf_append(&resp, "", 1) != 0) {
            rc = mg_err_set(err, MG_ENOMEM, "out of memory");
            decided = 1;
            break;
        }
        resp.len--;
        if (status >= 500 && k + 1 < e->nendpoints) {
            /* This member cannot serve (no leader, overloaded): another one may. */
            mg_err_t why_err;
            etcd_refused(status, &resp, &why_err);
            snprintf(why, sizeof(why), "%s: %s", e->endpoints[ep], why_err.msg);
            continue;
        }
        e->current = ep;
        if (status != 200) {
            rc = etcd_refused(status, &resp, err);
            decided = 1;
            break;
        }
        json_error_t jerr;
        if ((*out = json_loadb(resp.data, resp.len, 0, &jerr)) == NULL) {
            rc =
                mg_err_set(err, MG_EIO, "etcd answered %s with invalid JSON (%s)", path, jerr.text);
            decided = 1;
            break;
        }
        rc = 0;
        decided = 1;
        break;
    }
    if (!decided)
        mg_err_set(err, MG_EIO, "cannot reach etcd (%s)", why);
    curl_slist_free_all(hdrs);
    mg_buf_free(&resp);
    return rc;
}

/* Starts a request body: {"key":"<b64>". */
static int put_key(mg_buf_t *b, const char *name, const char *s, size_t n)
{
    int rc = mg_buf_printf(b, "\"%s\":\"", name);
    rc = rc ? rc : b64_put(b, s, n);
    rc = rc ? rc : mg_buf_puts(b, "\"");
    return rc ? MG_ENOMEM : 0;
}

/* `"key":..,"range_end":..` for a prefix (or one key). */
static int put_range(mg_buf_t *b, const char *prefix, bool exact)
{
    int rc = put_key(b, "key", prefix, strlen(prefix));
    if (rc == 0 && !exact) {
        mg_buf_t end = {0};
        rc = mg_etcd_prefix_end(prefix, &end);
        rc = rc ? rc : mg_buf_puts(b, ",");
        rc = rc ? rc : put_key(b, "range_end", end.data, end.len);
        mg_buf_free(&end);
    }
    return rc;
}

static int64_t header_revision(json_t *j)
{
    return num_of(json_object_get(json_object_get(j, "header"), "revision"));
}

/*
 * Sends the body built in `b` (`built` is what building it returned: 0 or MG_ENOMEM) and frees
 * it. Returns as `unary`.
 */
static int post(mg_etcd_t *e, const char *path, mg_buf_t *b, int built, json_t **out, mg_err_t *err)
{
    int rc = built != 0 ? mg_err_set(err, MG_ENOMEM, "out of memory") : unary(e, path, b, out, err);
    mg_buf_free(b);
    return rc;
}

/* {"key": ..[, "range_end": ..]} */
static int range_body(mg_buf_t *b, const char *prefix, bool exact)
{
    int rc = mg_buf_puts(b, "{");
    rc = rc ? rc : put_range(b, prefix, exact);
    rc = rc ? rc : mg_buf_puts(b, "}");
    return rc ? MG_ENOMEM : 0;
}

int mg_etcd_range(mg_etcd_t *e, const char *prefix, bool exact, mg_etcd_kvs_t *out, mg_err_t *err)
{
    mg_buf_t b = {0};
    json_t *j = NULL;
    int rc = post(e, "/v3/kv/range", &b, range_body(&b, prefix, exact), &j, err);
    if (rc != 0)
        return rc;
    mg_etcd_kvs_t r = {0};
    json_t *kvs = json_object_get(j, "kvs");
    r.revision = header_revision(j);
    size_t n = json_array_size(kvs);
    if (n > 0 && (r.kvs = calloc(n, sizeof(*r.kvs))) == NULL)
        rc = mg_err_set(err, MG_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if ((rc = kv_from_json(json_array_get(kvs, i), &r.kvs[i])) != 0)
            mg_err_set(err, rc, "etcd sent a key or value that is not base64");
        else
            r.n++;
    }
    json_decref(j);
    if (rc != 0) {
        mg_etcd_kvs_free(&r);
        return rc;
    }
    *out = r;
    return 0;
}

int mg_etcd_txn(mg_etcd_t *e, const mg_etcd_put_t *puts, size_t n, const char *compare_key,
                int64_t compare_mod_revision, bool *succeeded, int64_t *revision, mg_err_t *err)
{
    mg_buf_t b = {0};
    int rc = mg_buf_puts(&b, "{\"compare\":[");
    if (rc == 0 && compare_key != NULL) {
        rc = mg_buf_puts(&b, "{");
        rc = rc ? rc : put_key(&b, "key", compare_key, strlen(compare_key));
        rc = rc ? rc
                : mg_buf_printf(
                      &b, ",\"target\":\"MOD\",\"result\":\"EQUAL\",\"mod_revision\":\"%lld\"}",
                      (long long)compare_mod_revision);
    }
    rc = rc ? rc : mg_buf_puts(&b, "],\"success\":[");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = mg_buf_puts(&b, i ? ",{\"request_put\":{" : "{\"request_put\":{");
        rc = rc ? rc : put_key(&b, "key", puts[i].key, strlen(puts[i].key));
        rc = rc ? rc : mg_buf_puts(&b, ",");
        rc = rc ? rc : put_key(&b, "value", puts[i].value, puts[i].value_len);
        if (rc == 0 && puts[i].lease != 0)
            rc = mg_buf_printf(&b, ",\"lease\":\"%lld\"", (long long)puts[i].lease);
        rc = rc ? rc : mg_buf_puts(&b, "}}");
    }
    rc = rc ? rc : mg_buf_puts(&b, "]}");
    json_t *j = NULL;
    if ((rc = post(e, "/v3/kv/txn", &b, rc ? MG_ENOMEM : 0, &j, err)) != 0)
        return rc;
    /* proto3 JSON leaves false out: a failed compare has no "succeeded". */
    if (succeeded != NULL)
        *succeeded = json_is_true(json_object_get(j, "succeeded"));
    if (revision != NULL)
        *revision = header_revision(j);
    json_decref(j);
    return 0;
}

int mg_etcd_delete(mg_etcd_t *e, const char *key, int64_t *revision, mg_err_t *err)
{
    mg_buf_t b = {0};
    json_t *j = NULL;
    int rc = post(e, "/v3/kv/deleterange", &b, range_body(&b, key, true), &j, err);
    if (rc == 0 && revision != NULL)
        *revision = header_revision(j);
    json_decref(j);
    return rc;
}

/* A lease call with body {"ID": id} or {"TTL": ttl}; returns the answer in *out. */
static int lease_call(mg_etcd_t *e, const char *path, const char *field, int64_t value,
                      json_t **out, mg_err_t *err)
{
    mg_buf_t b = {0};
    int built = mg_buf_printf(&b, "{\"%s\":\"%lld\"}", field, (long long)value);
    return post(e, path, &b, built ? MG_ENOMEM : 0, out, err);
}

int mg_etcd_lease_grant(mg_etcd_t *e, int64_t ttl_s, int64_t *id, mg_err_t *err)
{
    json_t *j = NULL;
    int rc = lease_call(e, "/v3/lease/grant", "TTL", ttl_s, &j, err);
    if (rc != 0)
        return rc;
    *id = num_of(json_object_get(j, "ID"));
    const char *why = json_string_value(json_object_get(j, "error"));
    if (*id == 0)
        rc = mg_err_set(err, MG_EIO, "etcd granted no lease (%s)", why ? why : "no reason given");
    json_decref(j);
    return rc;
}

int mg_etcd_lease_keepalive(mg_etcd_t *e, int64_t id, mg_err_t *err)
{
    json_t *j = NULL;
    int rc = lease_call(e, "/v3/lease/keepalive", "ID", id, &j, err);
    if (rc != 0)
        return rc;
    /* A stream of one answer: {"result": {"ID", "TTL"}}; no TTL (0) means the lease is gone. */
    json_t *res = json_object_get(j, "result");
    if (num_of(json_object_get(res != NULL ? res : j, "TTL")) <= 0)
        rc = mg_err_set(err, MG_ENOENT, "lease %lld has expired", (long long)id);
    json_decref(j);
    return rc;
}

int mg_etcd_lease_revoke(mg_etcd_t *e, int64_t id, mg_err_t *err)
{
    json_t *j = NULL;
    int rc = lease_call(e, "/v3/lease/revoke", "ID", id, &j, err);
    json_decref(j);
    return rc;
}

/* ---- the watch ----------------------------------------------------------------------------- */

typedef struct watch_stream {
    mg_buf_t pending; /* bytes received and not yet split into lines */
} watch_stream_t;

/* Frees the events of a message. */
static void events_free(mg_etcd_event_t *ev, size_t n)
{
    for (size_t i = 0; i < n; i++)
        kv_clear(&ev[i].kv);
    free(ev);
}

/* Parses one line of the stream and hands it to `on_msg`. Returns its value, or MG_EIO. */
static int watch_line(const char *line, size_t len, mg_etcd_watch_fn on_msg, void *ctx,
                      mg_err_t *err)
{
    json_error_t jerr;
    json_t *j = json_loadb(line, len, 0, &jerr);
    if (j == NULL)
        return mg_err_set(err, MG_EIO, "etcd sent a watch message that is not JSON (%s)",
                          jerr.text);
    json_t *res = json_object_get(j, "result");
    if (res == NULL) {
        json_t *e = json_object_get(j, "error");
        const char *msg = json_string_value(json_object_get(e, "message"));
        mg_err_set(err, MG_EIO, "etcd ended the watch: %s", msg ? msg : "no reason given");
        json_decref(j);
        return MG_EIO;
    }
    mg_etcd_watch_msg_t m = {
        .created = json_is_true(json_object_get(res, "created")),
        .canceled = json_is_true(json_object_get(res, "canceled")),
        .compact_revision = num_of(json_object_get(res, "compact_revision")),
        .cancel_reason = json_string_value(json_object_get(res, "cancel_reason")),
        .revision = header_revision(res),
    };
    if (m.cancel_reason == NULL)
        m.cancel_reason = "";
    json_t *events = json_object_get(res, "events");
    size_t n = json_array_size(events);
    mg_etcd_event_t *ev = n ? calloc(n, sizeof(*ev)) : NULL;
    int rc = 0;
    if (n > 0 && ev == NULL)
        rc = mg_err_set(err, MG_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *x = json_array_get(events, i);
        const char *type = json_string_value(json_object_get(x, "type"));
        ev[i].type = type != NULL && strcmp(type, "DELETE") == 0 ? MG_ETCD_DELETE : MG_ETCD_PUT;
        if ((rc = kv_from_json(json_object_get(x, "kv"), &ev[i].kv)) != 0)
            mg_err_set(err, MG_EIO, "etcd sent a key or value that is not base64");
        else
            m.nevents = i + 1;
    }
    m.events = ev;
    if (rc == 0)
        rc = on_msg(ctx, &m);
    events_free(ev, m.nevents);
    json_decref(j);
    return rc;
}

/* Hands every complete line received so far to `on_msg`. Returns 0 or the first non-zero. */
static int watch_drain(watch_stream_t *s, mg_etcd_watch_fn on_msg, void *ctx, mg_err_t *err)
{
    size_t start = 0;
    int rc = 0;
    if (s->pending.len == 0)
        return 0;
    while (rc == 0) {
        char *nl = memchr(s->pending.data + start, '\n', s->pending.len - start);
        if (nl == NULL)
            break;
        size_t len = (size_t)(nl - (s->pending.data + start));
        if (len > 0)
            rc = watch_line(s->pending.data + start, len, on_msg, ctx, err);
        start += len + 1;
    }
    memmove(s->pending.data, s->pending.data + start, s->pending.len - start);
    s->pending.len -= start;
    return rc;
}

int mg_etcd_watch(mg_etcd_t *e, const char *prefix, int64_t start_revision, mg_etcd_watch_fn on_msg,
                  mg_etcd_tick_fn tick, void *ctx, mg_err_t *err)
{
    mg_buf_t body = {0};
    int rc = mg_buf_puts(&body, "{\"create_request\":{");
    rc = rc ? rc : put_range(&body, prefix, false);
    rc = rc ? rc
            : mg_buf_printf(&body, ",\"start_revision\":\"%lld\",\"progress_notify\":true}}",
                            (long long)start_revision);
    if (rc != 0) {
        mg_buf_free(&body);
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    }
    CURL *c = curl_easy_init();
    CURLM *m = curl_multi_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    /* Leader loss ends the watch instead of leaving it silent (grpc-gateway forwards it). */
    hdrs = curl_slist_append(hdrs, "Grpc-Metadata-hasleader: true");
    watch_stream_t s = {{0}};
    char url[1200], errbuf[CURL_ERROR_SIZE] = "";
    snprintf(url, sizeof(url), "%s/v3/watch", e->endpoints[e->current]);
    if (c == NULL || m == NULL || hdrs == NULL) {
        rc = mg_err_set(err, MG_ENOMEM, "out of memory");
        goto out;
    }
    setup(e, c, url, &body, &s.pending, hdrs, errbuf);
    curl_multi_add_handle(m, c);
    for (;;) {
        int running = 0;
        CURLMcode mc = curl_multi_perform(m, &running);
        if (mc != CURLM_OK) {
            rc = mg_err_set(err, MG_EIO, "watch on %s failed: %s", e->endpoints[e->current],
                            curl_multi_strerror(mc));
            break;
        }
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (status != 0 && status != 200) {
            if (running == 0) {
                mg_buf_append(&s.pending, "", 1);
                s.pending.len--;
                rc = etcd_refused(status, &s.pending, err);
                break;
            }
        } else if ((rc = watch_drain(&s, on_msg, ctx, err)) != 0) {
            break;
        }
        if (running == 0) {
            CURLMsg *msg;
            int left;
            CURLcode cc = CURLE_OK;
            while ((msg = curl_multi_info_read(m, &left)) != NULL) {
                if (msg->msg == CURLMSG_DONE)
                    cc = msg->data.result;
            }
            if (cc == CURLE_ABORTED_BY_CALLBACK || atomic_load(&e->cancelled))
                rc = mg_err_set(err, MG_ECANCELED, "etcd client stopped");
            else
                rc = mg_err_set(err, MG_EIO, "watch on %s ended: %s", e->endpoints[e->current],
                                cc != CURLE_OK ? (errbuf[0] ? errbuf : curl_easy_strerror(cc))
                                               : "etcd closed the stream");
            /* The next attempt starts on another endpoint. */
            if (e->nendpoints > 1 && rc == MG_EIO)
                e->current = (e->current + 1) % e->nendpoints;
            break;
        }
        if (atomic_load(&e->cancelled)) {
            rc = mg_err_set(err, MG_ECANCELED, "etcd client stopped");
            break;
        }
        if (tick != NULL && (rc = tick(ctx)) != 0)
            break;
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    curl_multi_remove_handle(m, c);
out:
    if (c != NULL)
        curl_easy_cleanup(c);
    if (m != NULL)
        curl_multi_cleanup(m);
    curl_slist_free_all(hdrs);
    mg_buf_free(&s.pending);
    mg_buf_free(&body);
    return rc;
}
