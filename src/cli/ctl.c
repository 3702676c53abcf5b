#include "cli/ctl.h"

#include "core/buf.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SERVER "http://127.0.0.1:8000"

static void ctl_usage(FILE *f)
{
    fputs("usage: modelgate ctl [--server URL] traffic MODEL [V=W ...] [--stable V]\n"
          "       modelgate ctl [--server URL] routes [FILE]\n"
          "\n"
          "  traffic MODEL            print the model's live traffic policy\n"
          "  traffic MODEL 1=90 2=10  set the weights (other fields of the policy are kept; the "
          "stable\n"
          "                           version stays, or is the heaviest version when it has no "
          "weight)\n"
          "  routes                   print the live route table\n"
          "  routes FILE              replace the route table with FILE (JSON)\n"
          "\n"
          "  --server URL   the modelgate to talk to (default $MODELGATE_SERVER or " DEFAULT_SERVER
          ")\n",
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

static int ctl_traffic(const char *server, int argc, char **argv)
{
    if (argc < 1) {
        ctl_usage(stderr);
        return 2;
    }
    const char *model = argv[0];
    const char *stable = NULL;
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

    /* Build the new policy: the live one with the weights replaced. */
    json_t *weights = json_object();
    const char *heaviest = NULL;
    long long heaviest_w = -1;
    for (int i = 1; i < argc; i++) {
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
            json_decref(cur);
            return 2;
        }
        *eq = '\0';
        json_object_set_new(weights, argv[i], json_integer(w));
        if (w > heaviest_w) {
            heaviest_w = w;
            heaviest = argv[i];
        }
    }
    json_t *next = json_deep_copy(cur);
    json_object_set_new(next, "weights", weights);
    const char *old_stable = json_string_value(json_object_get(cur, "stable"));
    if (stable == NULL)
        stable = old_stable != NULL && json_object_get(weights, old_stable) != NULL ? old_stable
                                                                                    : heaviest;
    if (stable != NULL)
        json_object_set_new(next, "stable", json_string(stable));
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

int mg_cli_ctl(int argc, char **argv)
{
    const char *server = getenv("MODELGATE_SERVER");
    if (server == NULL || server[0] == '\0')
        server = DEFAULT_SERVER;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--server") == 0 && i + 1 < argc) {
            server = argv[++i];
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
    /* Drop a trailing slash so paths join cleanly. */
    char base[1024];
    snprintf(base, sizeof(base), "%s", server);
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        base[--blen] = '\0';
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc;
    if (strcmp(argv[i], "traffic") == 0) {
        rc = ctl_traffic(base, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "routes") == 0 && argc - i - 1 <= 1) {
        rc = ctl_routes(base, argc - i - 1, argv + i + 1);
    } else {
        fprintf(stderr, "modelgate ctl: unknown subcommand '%s'\n", argv[i]);
        ctl_usage(stderr);
        rc = 2;
    }
    curl_global_cleanup();
    return rc;
}
