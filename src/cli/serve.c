#include "cli/serve.h"

#include "core/file.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "infer/session.h"
#include "control/control.h"
#include "net/api.h"
#include "net/http.h"
#include "repo/registry.h"
#include "route/router.h"
#include "serve/serve.h"

#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <urcu.h>

/* Everything `serve` can be told, from --config FILE and then the flags. */
typedef struct serve_opts {
    char repo[1024];
    char host[128];
    int port;
    int threads;
    long long max_body_bytes;
    char default_model[256];
    int ort_threads;
    mg_log_level_t log_level;
    int log_json;
} serve_opts_t;

static void serve_usage(FILE *f)
{
    fputs("usage: modelgate serve --repo DIR [options]\n"
          "\n"
          "  --repo DIR             model repository: DIR/<model>/<version>/model.onnx [+ "
          "DIR/<model>/config.json]\n"
          "  --listen ADDR:PORT     address to listen on (default 127.0.0.1:8000; port 0 picks a "
          "free one)\n"
          "  --threads N            event loops, one per core by default\n"
          "  --config FILE          server config as JSON: "
          "{\"repo\",\"listen\",\"threads\",\"max_body_bytes\",\n"
          "                         "
          "\"default_model\",\"ort_threads\",\"log_level\",\"log_format\"}; flags win\n"
          "  --max-body-bytes N     largest request body accepted (default 67108864, 64 MiB); "
          "larger gets 413\n"
          "  --default-model NAME   model for /predict requests that name none\n"
          "  --ort-threads N        ONNX Runtime global intra-op threads (default: one per core)\n"
          "  --log-level LEVEL      debug, info, warn or error (default info)\n"
          "  --log-json             write logs as one JSON object per line\n",
          f);
}

/* Parses "host:port", "[v6]:port" or ":port". Returns 0 or -1. */
static int parse_listen(const char *s, serve_opts_t *o)
{
    const char *colon;
    const char *host = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - s);
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535 || hlen >= sizeof(o->host))
        return -1;
    if (hlen == 0) {
        snprintf(o->host, sizeof(o->host), "0.0.0.0");
    } else {
        memcpy(o->host, host, hlen);
        o->host[hlen] = '\0';
    }
    o->port = (int)port;
    return 0;
}

static int parse_int(const char *s, long long min, long long max, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Reads --config FILE into `o`. Returns 0 or -1 after printing why. */
static int load_config_file(const char *path, serve_opts_t *o)
{
    static const char *const known[] = {"repo",           "listen",        "threads",
                                        "max_body_bytes", "default_model", "ort_threads",
                                        "log_level",      "log_format"};
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        fprintf(stderr, "modelgate: %s: line %d: %s\n", path, jerr.line, jerr.text);
        return -1;
    }
    int rc = -1;
    const char *key;
    json_t *v;
    if (!json_is_object(root)) {
        fprintf(stderr, "modelgate: %s: must be a JSON object\n", path);
        goto out;
    }
    const char *unknown = mg_jsonx_unknown_field(root, known, sizeof(known) / sizeof(known[0]));
    if (unknown != NULL) {
        fprintf(stderr, "modelgate: %s: unknown field '%s'\n", path, unknown);
        goto out;
    }
    json_object_foreach(root, key, v)
    {
        int is_str = json_is_string(v);
        const char *sv = is_str ? json_string_value(v) : "";
        long long iv = json_is_integer(v) ? json_integer_value(v) : -1;
        int ok = 1;
        if (strcmp(key, "repo") == 0)
            ok = is_str && snprintf(o->repo, sizeof(o->repo), "%s", sv) < (int)sizeof(o->repo);
        else if (strcmp(key, "listen") == 0)
            ok = is_str && parse_listen(sv, o) == 0;
        else if (strcmp(key, "threads") == 0)
            ok = iv >= 0 && iv <= 256 && ((o->threads = (int)iv), 1);
        else if (strcmp(key, "ort_threads") == 0)
            ok = iv >= 0 && iv <= 256 && ((o->ort_threads = (int)iv), 1);
        else if (strcmp(key, "max_body_bytes") == 0)
            ok = iv >= 1 && ((o->max_body_bytes = iv), 1);
        else if (strcmp(key, "default_model") == 0)
            ok = is_str && snprintf(o->default_model, sizeof(o->default_model), "%s", sv) <
                               (int)sizeof(o->default_model);
        else if (strcmp(key, "log_level") == 0)
            ok = is_str && mg_log_level_parse(sv, &o->log_level) == 0;
        else if (strcmp(key, "log_format") == 0)
            ok = is_str && (strcmp(sv, "json") == 0 || strcmp(sv, "text") == 0) &&
                 ((o->log_json = sv[0] == 'j'), 1);
        if (!ok) {
            fprintf(stderr, "modelgate: %s: invalid value for '%s'\n", path, key);
            goto out;
        }
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int mg_cli_serve(int argc, char **argv)
{
    serve_opts_t o;
    memset(&o, 0, sizeof(o));
    snprintf(o.host, sizeof(o.host), "127.0.0.1");
    o.port = 8000;
    o.max_body_bytes = 64LL << 20;
    o.log_level = MG_LOG_INFO;

    enum { OPT_MAX_BODY = 256, OPT_DEFAULT_MODEL, OPT_ORT_THREADS, OPT_LOG_LEVEL, OPT_LOG_JSON };
    static const struct option longopts[] = {
        {"repo", required_argument, NULL, 'r'},
        {"listen", required_argument, NULL, 'l'},
        {"threads", required_argument, NULL, 't'},
        {"config", required_argument, NULL, 'c'},
        {"max-body-bytes", required_argument, NULL, OPT_MAX_BODY},
        {"default-model", required_argument, NULL, OPT_DEFAULT_MODEL},
        {"ort-threads", required_argument, NULL, OPT_ORT_THREADS},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"log-json", no_argument, NULL, OPT_LOG_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };

    /* The config file first, so flags given on the command line override it. */
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && load_config_file(argv[i + 1], &o) != 0)
            return 2;
    }
    optind = 1;
    int c;
    long long n;
    while ((c = getopt_long(argc, argv, "r:l:t:c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r': snprintf(o.repo, sizeof(o.repo), "%s", optarg); break;
        case 'l':
            if (parse_listen(optarg, &o) != 0) {
                fprintf(stderr, "modelgate: --listen wants ADDR:PORT, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 't':
            if (parse_int(optarg, 1, 256, &n) != 0) {
                fprintf(stderr, "modelgate: --threads wants 1..256, got '%s'\n", optarg);
                return 2;
            }
            o.threads = (int)n;
            break;
        case 'c': break; /* read above */
        case OPT_MAX_BODY:
            if (parse_int(optarg, 1, (long long)1 << 40, &n) != 0) {
                fprintf(stderr,
                        "modelgate: --max-body-bytes wants a positive byte count, got '%s'\n",
                        optarg);
                return 2;
            }
            o.max_body_bytes = n;
            break;
        case OPT_DEFAULT_MODEL:
            snprintf(o.default_model, sizeof(o.default_model), "%s", optarg);
            break;
        case OPT_ORT_THREADS:
            if (parse_int(optarg, 1, 256, &n) != 0) {
                fprintf(stderr, "modelgate: --ort-threads wants 1..256, got '%s'\n", optarg);
                return 2;
            }
            o.ort_threads = (int)n;
            break;
        case OPT_LOG_LEVEL:
            if (mg_log_level_parse(optarg, &o.log_level) != 0) {
                fprintf(stderr,
                        "modelgate: --log-level wants debug, info, warn or error, got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case OPT_LOG_JSON: o.log_json = 1; break;
        case 'h': serve_usage(stdout); return 0;
        default: serve_usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "modelgate: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (o.repo[0] == '\0') {
        fprintf(stderr, "modelgate: serve needs --repo DIR (or \"repo\" in --config)\n");
        return 2;
    }
    mg_log_configure(o.log_level, o.log_json);

    /* Signals are taken by sigwait in this thread only; every other thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int status = 1;
    mg_err_t err;
    mg_err_clear(&err);
    mg_registry_t *reg = NULL;
    mg_router_t *router = NULL;
    mg_serve_t *core = NULL;
    mg_control_t *control = NULL;
    mg_http_server_t *http = NULL;
    rcu_register_thread();

    mg_infer_env_opts_t eo = {
        .intra_op_threads = o.ort_threads, .inter_op_threads = 1, .log_level = 3};
    if (mg_infer_env_init(&eo, &err) != 0) {
        mg_log(MG_LOG_ERROR, "main", "onnx runtime init failed (%s)", err.msg);
        goto out;
    }
    mg_log(MG_LOG_INFO, "main", "starting modelgate version=%s onnxruntime=%s repo=%s", MG_VERSION,
           mg_infer_runtime_version(), o.repo);
    mg_registry_opts_t ro = {.repo_dir = o.repo};
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
                          .default_model = o.default_model[0] ? o.default_model : NULL};
    if (mg_serve_new(&core, &so, &err) != 0 || mg_control_start(&control, reg, router, &err) != 0) {
        mg_log(MG_LOG_ERROR, "main", "%s", err.msg);
        goto out;
    }
    mg_api_t api = {.serve = core, .control = control, .max_body_bytes = (size_t)o.max_body_bytes};
    mg_http_opts_t ho = {.host = o.host,
                         .port = o.port,
                         .threads = o.threads,
                         .max_body_bytes = (size_t)o.max_body_bytes,
                         .api = &api};
    /* Listen first (liveness answers at once, readiness says 503 while loading), then load. */
    if (mg_http_start(&http, &ho, &err) != 0) {
        mg_log(MG_LOG_ERROR, "main", "%s", err.msg);
        goto out;
    }
    mg_control_op_t load_all = {.kind = MG_CONTROL_LOAD_ALL};
    mg_control_run(control, &load_all);
    mg_log(MG_LOG_INFO, "main", "ready addr=%s:%d", o.host, mg_http_port(http));

    int sig = 0;
    sigwait(&sigs, &sig);
    mg_log(MG_LOG_INFO, "main", "stopping (signal %d)", sig);
    status = 0;
out:
    /* Changes first (queued ones are cancelled and answered), then the loops. */
    mg_control_stop(control);
    mg_http_stop(http);
    mg_serve_free(core);
    mg_router_free(router);
    mg_registry_free(reg);
    rcu_unregister_thread();
    mg_infer_env_deinit();
    return status;
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
