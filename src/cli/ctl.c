#include "cli/ctl.h"

#include "cluster/etcd.h"
#include "cluster/fleet.h"
#include "control/control.h"
#include "core/buf.h"
#include "route/policy.h"
#include "route/table.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SERVER "http://127.0.0.1:8000"
#define DEFAULT_PREFIX "/modelgate/default"

/* "Authorization: Bearer <token>" when a token was given, else empty. */
static char auth_header[4200];

static void ctl_usage(FILE *f)
{
    fputs(
        "usage: modelgate ctl [--server URL] [--token-file FILE] traffic MODEL [V=W ...] "
        "[--stable V]\n"
        "       modelgate ctl [--server URL] [--token-file FILE] routes [FILE]\n"
        "       modelgate ctl [--server URL] [--token-file FILE] kill-switch [on|off]\n"
        "       modelgate ctl --etcd URL[,URL...] [--etcd-prefix P] [--if-revision N] "
        "traffic|routes|kill-switch ...\n"
        "       modelgate ctl --etcd URL[,URL...] [--etcd-prefix P] status\n"
        "\n"
        "  traffic MODEL            print the model's traffic policy\n"
        "  traffic MODEL 1=90 2=10  set the weights (other fields of the policy are kept; the "
        "stable\n"
        "                           version stays, or is the heaviest version when it has no "
        "weight)\n"
        "  routes                   print the route table\n"
        "  routes FILE              replace the route table with FILE (JSON; - for stdin)\n"
        "  kill-switch [on|off]     print or set the kill switch (on: every model's traffic to "
        "its\n"
        "                           stable version)\n"
        "  status                   the fleet's configuration in etcd and which instances "
        "converged\n"
        "\n"
        "  --server URL      the modelgate to talk to (default $MODELGATE_SERVER or " DEFAULT_SERVER
        "; its admin listener when serve has --admin-listen)\n"
        "  --token-file FILE the admin token (default: $MODELGATE_TOKEN, if set)\n"
        "  --etcd URL        change the whole fleet through etcd instead (default "
        "$MODELGATE_ETCD);\n"
        "                    changes are validated here, then written in one transaction\n"
        "  --etcd-prefix P   the fleet's keys (default $MODELGATE_ETCD_PREFIX or " DEFAULT_PREFIX
        ")\n"
        "  --if-revision N   write only if the key's mod revision is still N (0: the key does "
        "not\n"
        "                    exist), so two operators cannot overwrite each other unknowingly\n",
        f);
}

static size_t collect(char *data, size_t size, size_t n, void *userdata)
{
    mg_buf_t *b = userdata;
    return mg_buf_append(b, data, size * n) == 0 ? size * n : 0;
}

/* One HTTP exchange. Returns the status (0 when the server could not be reached, with why in
 * `body`). */
static long http_call(const char *method, const char *url, const char *body, size_t len,
                      mg_buf_t *resp)
{
    CURL *c = curl_easy_init();
    if (c == NULL)
        return 0;
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (auth_header[0] != '\0')
        hdrs = curl_slist_append(hdrs, auth_header);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    } else {
        mg_buf_reset(resp);
        mg_buf_puts(resp, errbuf[0] ? errbuf : "request failed");
    }
    mg_buf_append(resp, "", 1);
    resp->len--;
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return status;
}

/*
 * One admin API call that must answer 200. Returns 0 with the body in `resp`; otherwise prints
 * why (unreachable, or the server's {"error": ...} or raw body), frees `resp` and returns 1.
 */
static int admin_call(const char *what, const char *method, const char *url, const char *body,
                      size_t len, mg_buf_t *resp)
{
    long status = http_call(method, url, body, len, resp);
    if (status == 200)
        return 0;
    if (status == 0) {
        fprintf(stderr, "modelgate ctl: %s: cannot reach the server: %s\n", what, resp->data);
    } else {
        json_t *j = json_loadb(resp->data, resp->len, 0, NULL);
        const char *msg = json_string_value(json_object_get(j, "error"));
        fprintf(stderr, "modelgate ctl: %s: the server refused (%ld): %s\n", what, status,
                msg ? msg : resp->data);
        json_decref(j);
    }
    mg_buf_free(resp);
    return 1;
}

/* Formats a policy's weights as "1=90 2=10 (stable 1)". */
static void describe_policy(json_t *p, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    json_t *w = json_object_get(p, "weights");
    const char *k;
    json_t *v;
    if (!json_is_object(w) || json_object_size(w) == 0) {
        snprintf(out, cap, "(no policy: the default version takes all traffic)");
        return;
    }
    json_object_foreach(w, k, v)
    {
        int n = snprintf(out + len, cap - len, "%s%s=%lld", len ? " " : "", k,
                         (long long)json_integer_value(v));
        if (n < 0 || (size_t)n >= cap - len)
            return;
        len += (size_t)n;
    }
    const char *stable = json_string_value(json_object_get(p, "stable"));
    if (stable != NULL)
        snprintf(out + len, cap - len, " (stable %s)", stable);
}

/*
 * The policy `cur` with its weights replaced by the VERSION=WEIGHT arguments (and --stable V):
 * other fields are kept; the stable version stays when it keeps a weight, else the heaviest
 * version becomes stable. Returns 0 with *out (the caller's), or 2 after printing why.
 */
static int policy_with_weights(json_t *cur, int argc, char **argv, json_t **out)
{
    const char *stable = NULL;
    json_t *weights = json_object();
    const char *heaviest = NULL;
    long long heaviest_w = -1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--stable") == 0 && i + 1 < argc) {
            stable = argv[++i];
            continue;
        }
        char *eq = strchr(argv[i], '=');
        char *end = NULL;
        long long w = eq ? strtoll(eq + 1, &end, 10) : -1;
        if (eq == NULL || eq == argv[i] || end == eq + 1 || *end != '\0') {
            fprintf(stderr, "modelgate ctl: traffic: '%s' is not VERSION=WEIGHT\n", argv[i]);
            json_decref(weights);
            return 2;
        }
        *eq = '\0';
        json_object_set_new(weights, argv[i], json_integer(w));
        if (w > heaviest_w) {
            heaviest_w = w;
            heaviest = argv[i];
        }
    }
    json_t *next = json_is_object(cur) ? json_deep_copy(cur) : json_object();
    json_object_set_new(next, "weights", weights);
    const char *old_stable = json_string_value(json_object_get(cur, "stable"));
    if (stable == NULL)
        stable = old_stable != NULL && json_object_get(weights, old_stable) != NULL ? old_stable
                                                                                    : heaviest;
    if (stable != NULL)
        json_object_set_new(next, "stable", json_string(stable));
    *out = next;
    return 0;
}

static int ctl_traffic(const char *server, int argc, char **argv)
{
    if (argc < 1) {
        ctl_usage(stderr);
        return 2;
    }
    const char *model = argv[0];
    char url[2048];
    snprintf(url, sizeof(url), "%s/v2/admin/models/%s/traffic", server, model);
    mg_buf_t resp = {0};
    if (admin_call("traffic", "GET", url, NULL, 0, &resp) != 0)
        return 1;
    json_t *cur = json_loadb(resp.data, resp.len, 0, NULL);
    mg_buf_free(&resp);
    if (cur == NULL) {
        fprintf(stderr, "modelgate ctl: traffic: the server answered with invalid JSON\n");
        return 1;
    }
    char before[512];
    describe_policy(cur, before, sizeof(before));
    if (argc == 1) {
        char *text = json_dumps(cur, JSON_INDENT(2) | JSON_SORT_KEYS);
        printf("%s: %s\n%s\n", model, before, text ? text : "{}");
        free(text);
        json_decref(cur);
        return 0;
    }

    json_t *next = NULL;
    int brc = policy_with_weights(cur, argc - 1, argv + 1, &next);
    if (brc != 0) {
        json_decref(cur);
        return brc;
    }
    char *body = json_dumps(next, JSON_COMPACT);
    mg_buf_t put = {0};
    int failed = admin_call("traffic", "PUT", url, body, strlen(body), &put);
    free(body);
    json_decref(next);
    json_decref(cur);
    if (failed)
        return 1;
    json_t *now = json_loadb(put.data, put.len, 0, NULL);
    char after[512];
    describe_policy(now, after, sizeof(after));
    printf("%s: %s -> %s\n", model, before, after);
    json_decref(now);
    mg_buf_free(&put);
    return 0;
}

static int read_all(const char *path, mg_buf_t *out)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL)
        return -1;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (mg_buf_append(out, chunk, n) != 0)
            break;
    }
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    return bad ? -1 : 0;
}

static int ctl_routes(const char *server, int argc, char **argv)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s/v2/admin/routes", server);
    mg_buf_t resp = {0};
    if (admin_call("routes", "GET", url, NULL, 0, &resp) != 0)
        return 1;
    json_t *cur = json_loadb(resp.data, resp.len, 0, NULL);
    size_t before = json_array_size(json_object_get(cur, "routes"));
    json_decref(cur);
    if (argc == 0) {
        fwrite(resp.data, 1, resp.len, stdout);
        putchar('\n');
        mg_buf_free(&resp);
        return 0;
    }
    mg_buf_free(&resp);
    mg_buf_t file = {0};
    if (read_all(argv[0], &file) != 0) {
        fprintf(stderr, "modelgate ctl: routes: cannot read %s\n", argv[0]);
        mg_buf_free(&file);
        return 1;
    }
    int failed = admin_call("routes", "PUT", url, file.data ? file.data : "", file.len, &resp);
    mg_buf_free(&file);
    if (failed)
        return 1;
    json_t *now = json_loadb(resp.data, resp.len, 0, NULL);
    printf("routes: %zu -> %lld rules (revision %lld)\n", before,
           (long long)json_integer_value(json_object_get(now, "routes")),
           (long long)json_integer_value(json_object_get(now, "revision")));
    json_decref(now);
    mg_buf_free(&resp);
    return 0;
}

static int ctl_kill_switch_http(const char *server, int argc, char **argv)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s/v2/admin/kill-switch", server);
    mg_buf_t resp = {0};
    int failed;
    if (argc == 0) {
        failed = admin_call("kill-switch", "GET", url, NULL, 0, &resp);
    } else {
        const char *body =
            strcmp(argv[0], "on") == 0 ? "{\"enabled\":true}" : "{\"enabled\":false}";
        failed = admin_call("kill-switch", "PUT", url, body, strlen(body), &resp);
    }
    if (failed)
        return 1;
    json_t *now = json_loadb(resp.data, resp.len, 0, NULL);
    printf("kill switch: %s\n", json_is_true(json_object_get(now, "enabled")) ? "on" : "off");
    json_decref(now);
    mg_buf_free(&resp);
    return 0;
}

/* ---- the fleet's configuration in etcd (--etcd) -------------------------------------------- */

typedef struct etcd_ctl {
    mg_etcd_t *etcd;
    const char *prefix;
    long long if_revision; /* -1: no compare */
} etcd_ctl_t;

/* Reads one key. Returns 0 with *found, its value in `value` and *mod_revision; 1 on failure. */
static int etcd_get(etcd_ctl_t *x, const char *what, const char *key, int *found, mg_buf_t *value,
                    int64_t *mod_revision)
{
    mg_etcd_kvs_t kvs = {0};
    mg_err_t err;
    if (mg_etcd_range(x->etcd, key, true, &kvs, &err) != 0) {
        fprintf(stderr, "modelgate ctl: %s: %s\n", what, err.msg);
        return 1;
    }
    *found = kvs.n > 0;
    *mod_revision = kvs.n > 0 ? kvs.kvs[0].mod_revision : 0;
    if (kvs.n > 0)
        mg_buf_append(value, kvs.kvs[0].value, kvs.kvs[0].value_len + 1);
    if (value->len > 0)
        value->len--;
    mg_etcd_kvs_free(&kvs);
    return 0;
}

/*
 * Writes `value` to `key` in one transaction; with --if-revision only when the key's mod
 * revision is still that one. Returns 0 with the new store revision in *revision, or 1 after
 * printing why.
 */
static int etcd_write(etcd_ctl_t *x, const char *what, const char *key, const char *value,
                      size_t len, int64_t *revision)
{
    mg_etcd_put_t put = {key, value, len, 0};
    bool ok = false;
    mg_err_t err;
    if (mg_etcd_txn(x->etcd, &put, 1, x->if_revision >= 0 ? key : NULL, x->if_revision, &ok,
                    revision, &err) != 0) {
        fprintf(stderr, "modelgate ctl: %s: %s\n", what, err.msg);
        return 1;
    }
    if (!ok) {
        int found = 0;
        int64_t now = 0;
        mg_buf_t cur = {0};
        etcd_get(x, what, key, &found, &cur, &now);
        mg_buf_free(&cur);
        fprintf(stderr,
                "modelgate ctl: %s: not written: %s changed since revision %lld (its mod "
                "revision is now %lld); read it again and retry\n",
                what, key, x->if_revision, (long long)now);
        return 1;
    }
    return 0;
}

/* Reads the token's first line (surrounding whitespace dropped) into auth_header. */
static int set_token(const char *token, size_t len)
{
    while (len > 0 && (*token == ' ' || *token == '\t' || *token == '\n' || *token == '\r')) {
        token++;
        len--;
    }
    size_t n = 0;
    while (n < len && token[n] != '\n' && token[n] != '\r')
        n++;
    while (n > 0 && (token[n - 1] == ' ' || token[n - 1] == '\t'))
        n--;
    if (n == 0 || n + 32 > sizeof(auth_header))
        return -1;
    snprintf(auth_header, sizeof(auth_header), "Authorization: Bearer %.*s", (int)n, token);
    return 0;
}

static int read_token_file(const char *path)
{
    char buf[4100];
    FILE *f = fopen(path, "rb");
    size_t n = f != NULL ? fread(buf, 1, sizeof(buf), f) : 0;
    if (f != NULL)
        fclose(f);
    if (f == NULL || set_token(buf, n) != 0) {
        fprintf(stderr, "modelgate ctl: cannot read a token from %s\n", path);
        return -1;
    }
    return 0;
}

static char *fleet_key(etcd_ctl_t *x, const char *suffix, const char *name)
{
    mg_buf_t b = {0};
    if (mg_fleet_key(&b, x->prefix, suffix, name) != 0) {
        mg_buf_free(&b);
        return NULL;
    }
    return b.data;
}

static int etcd_traffic(etcd_ctl_t *x, int argc, char **argv)
{
    if (argc < 1) {
        ctl_usage(stderr);
        return 2;
    }
    const char *model = argv[0];
    char *key = fleet_key(x, MG_FLEET_TRAFFIC, model);
    mg_buf_t value = {0};
    int found = 0, rc = 1;
    int64_t mod = 0;
    json_t *cur = NULL, *next = NULL;
    char *body = NULL;
    if (key == NULL || etcd_get(x, "traffic", key, &found, &value, &mod) != 0)
        goto out;
    cur = found ? json_loadb(value.data, value.len, 0, NULL) : json_object();
    char before[512];
    describe_policy(cur, before, sizeof(before));
    if (argc == 1) {
        if (found)
            printf("%s: %s (key %s, mod revision %lld)\n%.*s\n", model, before, key, (long long)mod,
                   (int)value.len, value.data);
        else
            printf("%s: no policy in etcd (key %s)\n", model, key);
        rc = 0;
        goto out;
    }
    if ((rc = policy_with_weights(cur, argc - 1, argv + 1, &next)) != 0)
        goto out;
    rc = 1;
    body = json_dumps(next, JSON_COMPACT);
    mg_policy_t p;
    mg_err_t err;
    if (mg_policy_parse(body, strlen(body), &p, &err) != 0) {
        fprintf(stderr, "modelgate ctl: traffic: policy of '%s' refused: %s\n", model, err.msg);
        goto out;
    }
    int64_t revision = 0;
    if (etcd_write(x, "traffic", key, body, strlen(body), &revision) != 0)
        goto out;
    char after[512];
    describe_policy(next, after, sizeof(after));
    printf("%s: %s -> %s (revision %lld)\n", model, before, after, (long long)revision);
    fflush(stdout); /* the moment of the write's answer, for whoever reads the line */
    rc = 0;
out:
    free(body);
    json_decref(next);
    json_decref(cur);
    mg_buf_free(&value);
    free(key);
    return rc;
}

static int etcd_routes(etcd_ctl_t *x, int argc, char **argv)
{
    char *key = fleet_key(x, MG_FLEET_ROUTES, NULL);
    mg_buf_t value = {0}, file = {0};
    int found = 0, rc = 1;
    int64_t mod = 0;
    mg_route_table_t *t = NULL;
    if (key == NULL || etcd_get(x, "routes", key, &found, &value, &mod) != 0)
        goto out;
    size_t before = 0;
    if (found && mg_route_table_parse(value.data, value.len, &t, NULL) == 0)
        before = mg_route_table_count(t);
    mg_route_table_free(t);
    t = NULL;
    if (argc == 0) {
        if (found)
            printf("%.*s\n", (int)value.len, value.data);
        else
            printf("{\"routes\":[]}\n");
        rc = 0;
        goto out;
    }
    if (read_all(argv[0], &file) != 0) {
        fprintf(stderr, "modelgate ctl: routes: cannot read %s\n", argv[0]);
        goto out;
    }
    mg_err_t err;
    if (mg_route_table_parse(file.data ? file.data : "", file.len, &t, &err) != 0) {
        fprintf(stderr, "modelgate ctl: routes: route table refused: %s\n", err.msg);
        goto out;
    }
    int64_t revision = 0;
    if (etcd_write(x, "routes", key, file.data ? file.data : "", file.len, &revision) != 0)
        goto out;
    printf("routes: %zu -> %zu rules (revision %lld)\n", before, mg_route_table_count(t),
           (long long)revision);
    rc = 0;
out:
    mg_route_table_free(t);
    mg_buf_free(&file);
    mg_buf_free(&value);
    free(key);
    return rc;
}

static int etcd_kill_switch(etcd_ctl_t *x, int argc, char **argv)
{
    char *key = fleet_key(x, MG_FLEET_KILL_SWITCH, NULL);
    mg_buf_t value = {0};
    int found = 0, rc = 1, on = 0;
    int64_t mod = 0;
    if (key == NULL || etcd_get(x, "kill-switch", key, &found, &value, &mod) != 0)
        goto out;
    if (found)
        mg_control_kill_switch_parse(value.data, value.len, &on, NULL);
    if (argc == 0) {
        printf("kill switch: %s (key %s%s)\n", on ? "on" : "off", key, found ? "" : ", not set");
        rc = 0;
        goto out;
    }
    const char *body = strcmp(argv[0], "on") == 0 ? "{\"enabled\":true}" : "{\"enabled\":false}";
    int64_t revision = 0;
    if (etcd_write(x, "kill-switch", key, body, strlen(body), &revision) != 0)
        goto out;
    printf("kill switch: %s -> %s (revision %lld)\n", on ? "on" : "off", argv[0],
           (long long)revision);
    rc = 0;
out:
    mg_buf_free(&value);
    free(key);
    return rc;
}

/* One instance's line of `status`: converged, rejected (why) or behind. */
static void print_instance(json_t *r, uint64_t digest)
{
    const char *id = json_string_value(json_object_get(r, "id"));
    const char *addr = json_string_value(json_object_get(r, "address"));
    const char *applied = json_string_value(json_object_get(r, "applied_digest"));
    const char *seen = json_string_value(json_object_get(r, "seen_digest"));
    const char *watch = json_string_value(json_object_get(r, "watch"));
    json_t *last = json_array_get(json_object_get(r, "rejections"), 0);
    char state[700];
    if (applied != NULL && strtoull(applied, NULL, 16) == digest) {
        snprintf(state, sizeof(state), "converged");
    } else if (seen != NULL && strtoull(seen, NULL, 16) == digest && last != NULL) {
        snprintf(state, sizeof(state), "rejected revision %lld: %s: %s",
                 (long long)json_integer_value(json_object_get(last, "revision")),
                 json_string_value(json_object_get(last, "key")),
                 json_string_value(json_object_get(last, "reason")));
    } else {
        snprintf(state, sizeof(state), "behind (seen revision %lld, watch %s)",
                 (long long)json_integer_value(json_object_get(r, "seen_revision")),
                 watch ? watch : "?");
    }
    printf("  %-24s %-22s %-8lld %s\n", id ? id : "?", addr ? addr : "?",
           (long long)json_integer_value(json_object_get(r, "applied_revision")), state);
}

static int etcd_status(etcd_ctl_t *x)
{
    char *config = fleet_key(x, MG_FLEET_CONFIG, NULL);
    char *instances = fleet_key(x, MG_FLEET_INSTANCES, NULL);
    mg_etcd_kvs_t cfg = {0}, inst = {0};
    mg_fleet_view_t view = {0};
    mg_err_t err;
    int rc = 1;
    if (config == NULL || instances == NULL ||
        mg_etcd_range(x->etcd, config, false, &cfg, &err) != 0 ||
        mg_etcd_range(x->etcd, instances, false, &inst, &err) != 0) {
        fprintf(stderr, "modelgate ctl: status: %s\n", config ? err.msg : "out of memory");
        goto out;
    }
    int64_t latest = 0;
    for (size_t i = 0; i < cfg.n; i++)
        latest = cfg.kvs[i].mod_revision > latest ? cfg.kvs[i].mod_revision : latest;
    printf("configuration under %s: %zu keys, last changed at revision %lld (store revision "
           "%lld)\n",
           config, cfg.n, (long long)latest, (long long)cfg.revision);
    for (size_t i = 0; i < cfg.n; i++)
        printf("  %-48s mod revision %lld\n", cfg.kvs[i].key, (long long)cfg.kvs[i].mod_revision);
    mg_fleet_view_reset(&view, &cfg);
    uint64_t digest = mg_fleet_view_digest(&view);
    printf("instances: %zu\n", inst.n);
    if (inst.n > 0)
        printf("  %-24s %-22s %-8s %s\n", "ID", "ADDRESS", "APPLIED", "STATE");
    for (size_t i = 0; i < inst.n; i++) {
        json_t *r = json_loadb(inst.kvs[i].value, inst.kvs[i].value_len, 0, NULL);
        if (r != NULL)
            print_instance(r, digest);
        else
            printf("  %s: not a report\n", inst.kvs[i].key);
        json_decref(r);
    }
    rc = 0;
out:
    mg_fleet_view_free(&view);
    mg_etcd_kvs_free(&cfg);
    mg_etcd_kvs_free(&inst);
    free(config);
    free(instances);
    return rc;
}

static int ctl_etcd(const char *endpoints, const char *prefix, long long if_revision, int argc,
                    char **argv)
{
    mg_err_t err;
    if (mg_fleet_check_prefix(prefix, &err) != 0) {
        fprintf(stderr, "modelgate ctl: --etcd-prefix: %s\n", err.msg);
        return 2;
    }
    etcd_ctl_t x = {.prefix = prefix, .if_revision = if_revision};
    mg_etcd_opts_t eo = {.endpoints = endpoints, .request_timeout_ms = 10000};
    if (mg_etcd_new(&x.etcd, &eo, &err) != 0) {
        fprintf(stderr, "modelgate ctl: --etcd: %s\n", err.msg);
        return 2;
    }
    const char *cmd = argv[0];
    int rc;
    if (strcmp(cmd, "traffic") == 0)
        rc = etcd_traffic(&x, argc - 1, argv + 1);
    else if (strcmp(cmd, "routes") == 0)
        rc = etcd_routes(&x, argc - 1, argv + 1);
    else if (strcmp(cmd, "kill-switch") == 0)
        rc = etcd_kill_switch(&x, argc - 1, argv + 1);
    else
        rc = etcd_status(&x);
    mg_etcd_free(x.etcd);
    return rc;
}

/* Valid subcommand and argument count? */
static int known_command(const char *cmd, int nargs)
{
    if (strcmp(cmd, "traffic") == 0)
        return nargs >= 1;
    if (strcmp(cmd, "routes") == 0)
        return nargs <= 1;
    if (strcmp(cmd, "status") == 0)
        return nargs == 0;
    return 0;
}

int mg_cli_ctl(int argc, char **argv)
{
    const char *server = getenv("MODELGATE_SERVER");
    if (server == NULL || server[0] == '\0')
        server = DEFAULT_SERVER;
    const char *etcd = getenv("MODELGATE_ETCD");
    const char *prefix = getenv("MODELGATE_ETCD_PREFIX");
    if (prefix == NULL || prefix[0] == '\0')
        prefix = DEFAULT_PREFIX;
    long long if_revision = -1;
    /* --if-revision N may come anywhere; it only means something with --etcd. */
    int n = 1;
    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--if-revision") == 0 && k + 1 < argc) {
            char *end = NULL;
            if_revision = strtoll(argv[k + 1], &end, 10);
            if (*end != '\0' || if_revision < 0) {
                fprintf(stderr, "modelgate ctl: --if-revision wants a revision number, got '%s'\n",
                        argv[k + 1]);
                return 2;
            }
            k++;
            continue;
        }
        argv[n++] = argv[k];
    }
    argc = n;
    const char *env_token = getenv("MODELGATE_TOKEN");
    auth_header[0] = '\0';
    if (env_token != NULL && env_token[0] != '\0' && set_token(env_token, strlen(env_token)) != 0) {
        fprintf(stderr, "modelgate ctl: MODELGATE_TOKEN is not a usable token\n");
        return 2;
    }
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--server") == 0 && i + 1 < argc) {
            server = argv[++i];
        } else if (strcmp(argv[i], "--etcd") == 0 && i + 1 < argc) {
            etcd = argv[++i];
        } else if (strcmp(argv[i], "--etcd-prefix") == 0 && i + 1 < argc) {
            prefix = argv[++i];
        } else if (strcmp(argv[i], "--token-file") == 0 && i + 1 < argc) {
            if (read_token_file(argv[++i]) != 0)
                return 2;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            ctl_usage(stdout);
            return 0;
        } else {
            break;
        }
    }
    if (i >= argc) {
        ctl_usage(stderr);
        return 2;
    }
    const char *cmd = argv[i];
    int nargs = argc - i - 1;
    int kill = strcmp(cmd, "kill-switch") == 0;
    if (kill && (nargs > 1 || (nargs == 1 && strcmp(argv[i + 1], "on") != 0 &&
                               strcmp(argv[i + 1], "off") != 0))) {
        fprintf(stderr, "modelgate ctl: kill-switch takes on or off\n");
        return 2;
    }
    if (!kill && !known_command(cmd, nargs)) {
        fprintf(stderr, "modelgate ctl: unknown subcommand '%s'\n", cmd);
        ctl_usage(stderr);
        return 2;
    }
    int with_etcd = etcd != NULL && etcd[0] != '\0';
    if (!with_etcd && (strcmp(cmd, "status") == 0 || if_revision >= 0)) {
        fprintf(stderr, "modelgate ctl: %s needs --etcd URL\n",
                if_revision >= 0 ? "--if-revision" : "status");
        return 2;
    }
    /* Drop a trailing slash so paths join cleanly. */
    char base[1024];
    snprintf(base, sizeof(base), "%s", server);
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        base[--blen] = '\0';
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc;
    if (with_etcd)
        rc = ctl_etcd(etcd, prefix, if_revision, argc - i, argv + i);
    else if (strcmp(cmd, "traffic") == 0)
        rc = ctl_traffic(base, nargs, argv + i + 1);
    else if (kill)
        rc = ctl_kill_switch_http(base, nargs, argv + i + 1);
    else
        rc = ctl_routes(base, nargs, argv + i + 1);
    curl_global_cleanup();
    return rc;
}
