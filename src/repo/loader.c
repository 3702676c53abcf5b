#include "repo/loader.h"

#include "core/file.h"
#include "core/log.h"
#include "obs/metrics.h"
#include "obs/trace.h"
#include "repo/version_internal.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int mg_loader_list_models(const mg_loader_t *l, mg_buf_t *out, size_t *n)
{
    DIR *d = opendir(l->repo_dir);
    if (d == NULL)
        return MG_EIO;
    mg_buf_t names = {0};
    size_t count = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && count < MG_MODELS_MAX) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", l->repo_dir, de->d_name);
        if (!is_dir(path))
            continue;
        if ((rc = mg_buf_append(&names, de->d_name, strlen(de->d_name) + 1)) != 0)
            break;
        count++;
    }
    closedir(d);
    if (rc == 0 && count > 0) {
        /* Sort: build a pointer table over the packed names, then repack in order. */
        char **ptrs = malloc(count * sizeof(*ptrs));
        if (ptrs == NULL) {
            rc = MG_ENOMEM;
        } else {
            char *p = names.data;
            for (size_t i = 0; i < count; i++, p += strlen(p) + 1)
                ptrs[i] = p;
            qsort(ptrs, count, sizeof(*ptrs), cmp_str);
            for (size_t i = 0; i < count && rc == 0; i++)
                rc = mg_buf_append(out, ptrs[i], strlen(ptrs[i]) + 1);
            free(ptrs);
        }
    }
    mg_buf_free(&names);
    if (rc == 0)
        *n = count;
    return rc;
}

bool mg_loader_valid_name(const char *name)
{
    return name[0] != '\0' && name[0] != '.' && strlen(name) <= 255 && strchr(name, '/') == NULL;
}

int mg_loader_read_config(const mg_loader_t *l, const char *model, mg_model_config_t *cfg,
                          mg_err_t *err)
{
    mg_model_config_default(cfg);
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/%s", l->repo_dir, model);
    if (!mg_loader_valid_name(model) || !is_dir(dir))
        return mg_err_set(err, MG_ENOENT, "no model '%s' in the repository", model);
    char path[4200];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    char *text = NULL;
    size_t len = 0;
    mg_err_t ferr;
    int rc = mg_file_read(path, 1 << 20, &text, &len, &ferr);
    if (rc == MG_ENOENT)
        return 0;
    if (rc != 0)
        return mg_err_set(err, MG_ECONFIG, "%s", ferr.msg);
    rc = mg_model_config_parse(text, len, model, cfg, &ferr);
    free(text);
    if (rc != 0)
        return mg_err_set(err, MG_ECONFIG, "%s", ferr.msg);
    return 0;
}

int mg_loader_list_versions(const mg_loader_t *l, const char *model, int64_t *found, int cap)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/%s", l->repo_dir, model);
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? MG_ENOENT : MG_EIO;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < cap) {
        /* Only canonical names ("7", not "007"), so two folders never hold one version. */
        int64_t v;
        char canon[MG_VERSION_TEXT_MAX];
        if (mg_version_parse(de->d_name, strlen(de->d_name), &v) != 0 ||
            mg_version_format(v, canon) == 0 || strcmp(canon, de->d_name) != 0)
            continue;
        char path[4400];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (is_dir(path))
            found[n++] = v;
    }
    closedir(d);
    return n;
}

/* True when two configs build the same sessions (the traffic policy lives with the model). */
static bool same_session_config(const mg_model_config_t *a, const mg_model_config_t *b)
{
    mg_model_config_t x = *a, y = *b;
    x.has_traffic = y.has_traffic = false;
    memset(&x.traffic, 0, sizeof(x.traffic));
    memset(&y.traffic, 0, sizeof(y.traffic));
    return memcmp(&x, &y, sizeof(x)) == 0;
}

/* Creates and warms up the version's sessions from the model bytes; fills v->reason on failure. */
static void build_sessions(mg_model_version_t *v, const char *bytes, size_t len)
{
    const mg_model_config_t *cfg = &v->config;
    mg_err_t err;
    mg_err_clear(&err);
    v->sessions = calloc((size_t)cfg->instance_count, sizeof(*v->sessions));
    if (v->sessions == NULL) {
        mg_str_format(v->reason, sizeof(v->reason), "out of memory");
        return;
    }
    mg_session_opts_t so = {.intra_op_threads = cfg->intra_op_threads, .inter_op_threads = 0};
    for (int i = 0; i < cfg->instance_count; i++) {
        if (mg_session_new(&v->sessions[i], bytes, len, &so, &err) != 0) {
            mg_str_format(v->reason, sizeof(v->reason), "%s", err.msg);
            return;
        }
        v->nsessions++;
        if (cfg->warmup_runs > 0 &&
            mg_session_warmup(v->sessions[i], cfg->warmup_runs, &err) != 0) {
            mg_str_format(v->reason, sizeof(v->reason), "warm-up failed: %s", err.msg);
            return;
        }
    }
    v->state = MG_MODEL_READY;
}

/* Counts a load in modelgate_model_load_duration_seconds and sends its span when tracing. */
static void account_load(const char *model, int64_t number, mg_obs_load_outcome_t outcome,
                         int64_t start_ns, const mg_model_version_t *v)
{
    int64_t end_ns = mg_obs_now_ns();
    mg_obs_model_load(model, number, outcome, end_ns - start_ns);
    /* Interned now, so requests a policy routes here are counted even if it never serves. */
    mg_obs_series_t id;
    mg_obs_series_get((mg_str_t){model, strlen(model)}, number, &id);
    if (!mg_trace_enabled())
        return;
    /* A load is a root span of its own, always sent: loads are rare and worth seeing. */
    mg_span_t sp;
    memset(&sp, 0, sizeof(sp));
    mg_trace_ctx_t ctx;
    mg_trace_new(&ctx);
    memcpy(sp.trace_id, ctx.trace_id, 16);
    memcpy(sp.span_id, ctx.span_id, 8);
    snprintf(sp.name, sizeof(sp.name), "model load");
    sp.kind = MG_SPAN_INTERNAL;
    sp.start_unix_ns = mg_obs_unix_ns(start_ns);
    sp.end_unix_ns = mg_obs_unix_ns(end_ns);
    mg_span_attr_str(&sp, "modelgate.model", model, strlen(model));
    mg_span_attr_int(&sp, "modelgate.version", number);
    const char *o = mg_obs_load_outcome_name(outcome);
    mg_span_attr_str(&sp, "modelgate.load.outcome", o, strlen(o));
    if (outcome == MG_OBS_LOAD_FAILURE) {
        sp.status = MG_SPAN_ERROR;
        snprintf(sp.status_msg, sizeof(sp.status_msg), "%.120s", v != NULL ? v->reason : "");
    }
    mg_trace_submit(&sp);
}

mg_model_version_t *mg_loader_load_version(const mg_loader_t *l, const char *model, int64_t number,
                                           const mg_model_config_t *cfg,
                                           const mg_model_version_t *prev)
{
    int64_t start_ns = mg_obs_now_ns();
    char vtext[24];
    snprintf(vtext, sizeof(vtext), "%lld", (long long)number);
    mg_log_context_t log = {.model = {model, strlen(model)}, .version = {vtext, strlen(vtext)}};
    mg_log_context_set(&log);
    mg_model_version_t *v = mg_model_version_alloc(model, number, cfg);
    if (v == NULL) {
        mg_log_context_set(NULL);
        return NULL;
    }
    /* Read once, hash those bytes and build the sessions from the same buffer. */
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/%lld/model.onnx", l->repo_dir, model, (long long)number);
    char *bytes = NULL;
    size_t len = 0;
    mg_err_t err;
    mg_err_clear(&err);
    unsigned int dlen = 0;
    if (mg_file_read(path, MG_MODEL_FILE_MAX, &bytes, &len, &err) != 0) {
        mg_str_format(v->reason, sizeof(v->reason), "%s", err.msg);
    } else if (!EVP_Digest(bytes, len, v->sha256, &dlen, EVP_sha256(), NULL)) {
        mg_str_format(v->reason, sizeof(v->reason), "sha-256 of %s failed", path);
    } else if (prev != NULL && prev->state == MG_MODEL_READY &&
               memcmp(prev->sha256, v->sha256, 32) == 0 &&
               same_session_config(&prev->config, cfg)) {
        /* Unchanged: the version that is serving stays. */
        free(bytes);
        mg_model_version_free(v);
        account_load(model, number, MG_OBS_LOAD_UNCHANGED, start_ns, prev);
        mg_log_context_set(NULL);
        return (mg_model_version_t *)prev;
    } else {
        build_sessions(v, bytes, len);
    }
    free(bytes);
    if (v->state != MG_MODEL_READY) {
        for (int i = 0; i < v->nsessions; i++)
            mg_session_free(v->sessions[i]);
        free(v->sessions);
        v->sessions = NULL;
        v->nsessions = 0;
        mg_log(MG_LOG_ERROR, "repo", "load failed model=%s version=%lld (%s)", model,
               (long long)number, v->reason);
    } else {
        mg_log(MG_LOG_INFO, "repo", "version ready model=%s version=%lld instances=%d", model,
               (long long)number, v->nsessions);
    }
    account_load(model, number,
                 v->state == MG_MODEL_READY ? MG_OBS_LOAD_SUCCESS : MG_OBS_LOAD_FAILURE, start_ns,
                 v);
    mg_log_context_set(NULL);
    return v;
}
