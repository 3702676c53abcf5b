#include "repo/registry.h"

#include "core/file.h"
#include "core/log.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/rcu.h"

#define MG_MODELS_MAX 4096

struct mg_registry_snapshot {
    mg_model_entry_t *models; /* sorted by name */
    size_t nmodels;
};

struct mg_registry {
    char *repo_dir;
    _Atomic(mg_registry_snapshot_t *)
        live;                   /* C11 atomic for publication; liburcu for grace periods */
    pthread_mutex_t write_lock; /* serialises writers */
    atomic_bool loaded;
};

/* Formats a reason or path into a fixed buffer; long text is cut, which is fine for messages. */
static void fmt_into(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fmt_into(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

/* ---- versions ---------------------------------------------------------------------------- */

static void version_destroy(mg_model_version_t *v)
{
    for (int i = 0; i < v->nsessions; i++)
        mg_session_free(v->sessions[i]);
    free(v->sessions);
    free((char *)v->model_name);
    free(v);
}

void mg_model_version_ref(mg_model_version_t *v)
{
    atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
}

void mg_model_version_unref(mg_model_version_t *v)
{
    if (v == NULL)
        return;
    if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1) {
        mg_log(MG_LOG_INFO, "repo", "version released model=%s version=%lld", v->model_name,
               (long long)v->version);
        version_destroy(v);
    }
}

mg_session_t *mg_model_version_session(mg_model_version_t *v)
{
    unsigned i = atomic_fetch_add_explicit(&v->next_instance, 1, memory_order_relaxed);
    return v->sessions[i % (unsigned)v->nsessions];
}

/* ---- snapshots --------------------------------------------------------------------------- */

static void entry_clear(mg_model_entry_t *e)
{
    for (int i = 0; i < e->nversions; i++)
        mg_model_version_unref(e->versions[i]);
    free(e->versions);
    free(e->name);
    memset(e, 0, sizeof(*e));
}

static void snapshot_free(mg_registry_snapshot_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nmodels; i++)
        entry_clear(&s->models[i]);
    free(s->models);
    free(s);
}

/* Copies `e` into `dst`, taking a reference on each version. */
static int entry_copy(mg_model_entry_t *dst, const mg_model_entry_t *e)
{
    *dst = *e;
    dst->name = strdup(e->name);
    dst->versions = e->nversions ? calloc((size_t)e->nversions, sizeof(*dst->versions)) : NULL;
    if (dst->name == NULL || (e->nversions && dst->versions == NULL)) {
        free(dst->name);
        free(dst->versions);
        return MG_ENOMEM;
    }
    for (int i = 0; i < e->nversions; i++) {
        dst->versions[i] = e->versions[i];
        mg_model_version_ref(e->versions[i]);
    }
    return 0;
}

/*
 * Builds a snapshot equal to `old` with the model named `repl->name` replaced by `repl`
 * (or added). Takes `repl` (its contents move into the new snapshot).
 */
static int snapshot_with(const mg_registry_snapshot_t *old, mg_model_entry_t *repl,
                         mg_registry_snapshot_t **out)
{
    size_t n = old ? old->nmodels : 0;
    mg_registry_snapshot_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return MG_ENOMEM;
    s->models = calloc(n + 1, sizeof(*s->models));
    if (s->models == NULL) {
        free(s);
        return MG_ENOMEM;
    }
    size_t k = 0;
    int placed = 0;
    for (size_t i = 0; i < n; i++) {
        int c = strcmp(old->models[i].name, repl->name);
        if (!placed && c >= 0) {
            s->models[k++] = *repl;
            placed = 1;
            if (c == 0)
                continue;
        }
        if (entry_copy(&s->models[k], &old->models[i]) != 0) {
            s->nmodels = k;
            if (placed)
                memset(repl, 0, sizeof(*repl)); /* now owned by s */
            snapshot_free(s);
            return MG_ENOMEM;
        }
        k++;
    }
    if (!placed)
        s->models[k++] = *repl;
    memset(repl, 0, sizeof(*repl));
    s->nmodels = k;
    *out = s;
    return 0;
}

/* The live snapshot as the writer (lock held) or the last user sees it. */
static mg_registry_snapshot_t *writer_live(mg_registry_t *r)
{
    return atomic_load_explicit(&r->live, memory_order_relaxed);
}

/* Publishes `s` and frees the previous snapshot after a grace period. Writer lock held. */
static void publish(mg_registry_t *r, mg_registry_snapshot_t *s)
{
    mg_registry_snapshot_t *old = atomic_exchange_explicit(&r->live, s, memory_order_acq_rel);
    if (old != NULL) {
        mg_rcu_synchronize();
        snapshot_free(old);
    }
}

/* ---- loading ----------------------------------------------------------------------------- */

/* Lists the numeric version folders of a model, up to `cap`. Returns the count or MG_E*. */
static int list_versions(const char *dir, int64_t *found, int cap)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? MG_ENOENT : MG_EIO;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < cap) {
        const char *s = de->d_name;
        if (*s < '1' || *s > '9' || strlen(s) > 18)
            continue;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (*end != '\0')
            continue;
        char path[4096];
        struct stat st;
        fmt_into(path, sizeof(path), "%s/%s", dir, s);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            found[n++] = v;
    }
    closedir(d);
    return n;
}

static const mg_model_version_t *find_version(const mg_model_entry_t *e, int64_t version)
{
    for (int i = 0; e != NULL && i < e->nversions; i++) {
        if (e->versions[i]->version == version)
            return e->versions[i];
    }
    return NULL;
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

/* Loads one version, reusing `prev` when its bytes and config are unchanged. Never NULL but on
 * ENOMEM. */
static mg_model_version_t *load_version(const char *repo, const char *model, int64_t version,
                                        const mg_model_config_t *cfg,
                                        const mg_model_version_t *prev)
{
    mg_model_version_t *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return NULL;
    atomic_init(&v->refs, 1);
    atomic_init(&v->next_instance, 0);
    v->model_name = strdup(model);
    if (v->model_name == NULL) {
        free(v);
        return NULL;
    }
    v->version = version;
    snprintf(v->version_str, sizeof(v->version_str), "%lld", (long long)version);
    v->config = *cfg;
    v->state = MG_MODEL_UNAVAILABLE;

    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/%lld/model.onnx", repo, model, (long long)version);
    char *bytes = NULL;
    size_t len = 0;
    mg_err_t err;
    mg_err_clear(&err);
    if (mg_file_read(path, MG_MODEL_FILE_MAX, &bytes, &len, &err) != 0) {
        fmt_into(v->reason, sizeof(v->reason), "%s", err.msg);
        goto done;
    }
    unsigned int dlen = 0;
    if (!EVP_Digest(bytes, len, v->sha256, &dlen, EVP_sha256(), NULL)) {
        fmt_into(v->reason, sizeof(v->reason), "sha-256 of %s failed", path);
        goto done;
    }
    if (prev != NULL && prev->state == MG_MODEL_READY && memcmp(prev->sha256, v->sha256, 32) == 0 &&
        same_session_config(&prev->config, cfg)) {
        /* Unchanged: hand back the version that is serving, with one more reference. */
        free(bytes);
        free((char *)v->model_name);
        free(v);
        mg_model_version_ref((mg_model_version_t *)prev);
        return (mg_model_version_t *)prev;
    }
    v->sessions = calloc((size_t)cfg->instance_count, sizeof(*v->sessions));
    if (v->sessions == NULL) {
        fmt_into(v->reason, sizeof(v->reason), "out of memory");
        goto done;
    }
    mg_session_opts_t so = {.intra_op_threads = cfg->intra_op_threads, .inter_op_threads = 0};
    for (int i = 0; i < cfg->instance_count; i++) {
        if (mg_session_new(&v->sessions[i], bytes, len, &so, &err) != 0) {
            fmt_into(v->reason, sizeof(v->reason), "%s", err.msg);
            goto done;
        }
        v->nsessions++;
        if (cfg->warmup_runs > 0 &&
            mg_session_warmup(v->sessions[i], cfg->warmup_runs, &err) != 0) {
            fmt_into(v->reason, sizeof(v->reason), "warm-up failed: %s", err.msg);
            goto done;
        }
    }
    v->state = MG_MODEL_READY;
done:
    free(bytes);
    if (v->state != MG_MODEL_READY) {
        for (int i = 0; i < v->nsessions; i++)
            mg_session_free(v->sessions[i]);
        free(v->sessions);
        v->sessions = NULL;
        v->nsessions = 0;
        mg_log(MG_LOG_ERROR, "repo", "load failed model=%s version=%lld (%s)", model,
               (long long)version, v->reason);
    } else {
        mg_log(MG_LOG_INFO, "repo", "version ready model=%s version=%lld instances=%d", model,
               (long long)version, v->nsessions);
    }
    return v;
}

static int cmp_version_asc(const void *a, const void *b)
{
    int64_t x = (*(mg_model_version_t *const *)a)->version,
            y = (*(mg_model_version_t *const *)b)->version;
    return (x > y) - (x < y);
}

/* Chooses the default version of `e` and its model state. */
static void entry_finish(mg_model_entry_t *e)
{
    e->default_version = NULL;
    for (int i = e->nversions - 1; i >= 0; i--) {
        mg_model_version_t *v = e->versions[i];
        if (v->state != MG_MODEL_READY)
            continue;
        if (e->config.default_version == 0 || e->config.default_version == v->version) {
            e->default_version = v;
            break;
        }
    }
    int any_ready = 0;
    for (int i = 0; i < e->nversions; i++)
        any_ready |= e->versions[i]->state == MG_MODEL_READY;
    e->state = any_ready ? MG_MODEL_READY : MG_MODEL_UNAVAILABLE;
    if (!any_ready && e->reason[0] == '\0') {
        if (e->nversions == 0)
            fmt_into(e->reason, sizeof(e->reason),
                     "no version folder selected by the version policy");
        else
            fmt_into(e->reason, sizeof(e->reason), "version %s: %s",
                     e->versions[e->nversions - 1]->version_str,
                     e->versions[e->nversions - 1]->reason);
    }
}

/* Builds the entry for model `name` from disk. Writer lock held. */
static int build_entry(mg_registry_t *r, const char *name, const mg_model_entry_t *prev,
                       mg_model_entry_t *e, mg_err_t *err)
{
    memset(e, 0, sizeof(*e));
    e->name = strdup(name);
    if (e->name == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    mg_model_config_default(&e->config);

    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/%s", r->repo_dir, name);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        free(e->name);
        e->name = NULL;
        return mg_err_set(err, MG_ENOENT, "no model '%s' in the repository", name);
    }

    char path[4200];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    char *text = NULL;
    size_t len = 0;
    mg_err_t ferr;
    int rc = mg_file_read(path, 1 << 20, &text, &len, &ferr);
    if (rc == 0) {
        rc = mg_model_config_parse(text, len, name, &e->config, &ferr);
        free(text);
        if (rc != 0) {
            fmt_into(e->reason, sizeof(e->reason), "%s", ferr.msg);
            e->state = MG_MODEL_UNAVAILABLE;
            mg_log(MG_LOG_ERROR, "repo", "load failed model=%s (%s)", name, e->reason);
            return mg_err_set(err, MG_ECONFIG, "model '%s': %s", name, ferr.msg);
        }
    } else if (rc != MG_ENOENT) {
        fmt_into(e->reason, sizeof(e->reason), "%s", ferr.msg);
        return mg_err_set(err, MG_ECONFIG, "model '%s': %s", name, ferr.msg);
    }

    int64_t found[256], selected[256];
    int n = list_versions(dir, found, 256);
    if (n < 0)
        n = 0;
    int m = mg_model_config_select(&e->config, found, n, selected);
    if (m > 0) {
        e->versions = calloc((size_t)m, sizeof(*e->versions));
        if (e->versions == NULL)
            return mg_err_set(err, MG_ENOMEM, "out of memory");
    }
    for (int i = 0; i < m; i++) {
        mg_model_version_t *v = load_version(r->repo_dir, name, selected[i], &e->config,
                                             find_version(prev, selected[i]));
        if (v == NULL)
            return mg_err_set(err, MG_ENOMEM, "out of memory");
        e->versions[e->nversions++] = v;
    }
    qsort(e->versions, (size_t)e->nversions, sizeof(*e->versions), cmp_version_asc);
    if (e->config.has_traffic) {
        /* The policy may name only versions the version policy selected. */
        mg_err_t perr;
        if (mg_policy_check_versions(&e->config.traffic, selected, m, &perr) != 0) {
            fmt_into(e->reason, sizeof(e->reason), "config.json: 'traffic': %s", perr.msg);
            for (int i = 0; i < e->nversions; i++)
                mg_model_version_unref(e->versions[i]);
            e->nversions = 0;
            e->state = MG_MODEL_UNAVAILABLE;
            mg_log(MG_LOG_ERROR, "repo", "load failed model=%s (%s)", name, e->reason);
            return mg_err_set(err, MG_ECONFIG, "model '%s': %s", name, e->reason);
        }
    }
    entry_finish(e);
    if (e->state != MG_MODEL_READY)
        return mg_err_set(err, MG_EMODEL, "failed to load '%s': %s", name, e->reason);
    if (e->config.default_version != 0 && e->default_version == NULL)
        mg_log(MG_LOG_WARN, "repo", "default version not ready model=%s version=%lld", name,
               (long long)e->config.default_version);
    return 0;
}

/* Builds and publishes the entry for `name`. Writer lock held. */
static int load_locked(mg_registry_t *r, const char *name, mg_err_t *err)
{
    mg_model_entry_t e;
    /* The writer lock keeps r->live and its versions in place: no read section needed. */
    const mg_model_entry_t *prev =
        mg_registry_snapshot_find(writer_live(r), (mg_str_t){name, strlen(name)});
    int rc = build_entry(r, name, prev, &e, err);
    if (e.name == NULL) /* no such folder, or no memory for the name */
        return rc;
    if (rc != 0 && prev != NULL && prev->state == MG_MODEL_READY) {
        /* A failed reload never takes down what is serving. */
        mg_log(MG_LOG_WARN, "repo", "reload failed, previous versions keep serving model=%s (%s)",
               name, err->msg);
        entry_clear(&e);
        return rc;
    }
    mg_registry_snapshot_t *s;
    int prc = snapshot_with(writer_live(r), &e, &s);
    if (prc != 0) {
        entry_clear(&e);
        return mg_err_set(err, prc, "out of memory publishing model '%s'", name);
    }
    publish(r, s);
    return rc;
}

/* ---- public ------------------------------------------------------------------------------ */

int mg_registry_new(mg_registry_t **out, const mg_registry_opts_t *opts, mg_err_t *err)
{
    struct stat st;
    if (opts->repo_dir == NULL || stat(opts->repo_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return mg_err_set(err, MG_ENOENT, "model repository '%s' is not a folder",
                          opts->repo_dir ? opts->repo_dir : "");
    mg_registry_t *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->repo_dir = strdup(opts->repo_dir)) == NULL) {
        free(r);
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    }
    mg_registry_snapshot_t *empty = calloc(1, sizeof(*empty));
    atomic_init(&r->live, empty);
    if (empty == NULL) {
        free(r->repo_dir);
        free(r);
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&r->write_lock, NULL);
    atomic_init(&r->loaded, false);
    *out = r;
    return 0;
}

void mg_registry_free(mg_registry_t *r)
{
    if (r == NULL)
        return;
    snapshot_free(writer_live(r));
    pthread_mutex_destroy(&r->write_lock);
    free(r->repo_dir);
    free(r);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int mg_registry_list_repository(mg_registry_t *r, mg_buf_t *out, size_t *n)
{
    DIR *d = opendir(r->repo_dir);
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
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", r->repo_dir, de->d_name);
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
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

int mg_registry_load_all(mg_registry_t *r)
{
    mg_buf_t names = {0};
    size_t n = 0;
    int failed = 0;
    if (mg_registry_list_repository(r, &names, &n) != 0) {
        mg_log(MG_LOG_ERROR, "repo", "cannot list repository dir=%s", r->repo_dir);
        atomic_store(&r->loaded, true);
        return 1;
    }
    const char *p = names.data;
    for (size_t i = 0; i < n; i++, p += strlen(p) + 1) {
        mg_err_t err;
        mg_err_clear(&err);
        pthread_mutex_lock(&r->write_lock);
        if (load_locked(r, p, &err) != 0)
            failed++;
        pthread_mutex_unlock(&r->write_lock);
    }
    mg_buf_free(&names);
    atomic_store(&r->loaded, true);
    mg_log(MG_LOG_INFO, "repo", "repository loaded dir=%s models=%zu failed=%d", r->repo_dir, n,
           failed);
    return failed;
}

static int valid_model_name(const char *name)
{
    if (name[0] == '\0' || name[0] == '.' || strlen(name) > 255)
        return 0;
    return strchr(name, '/') == NULL;
}

int mg_registry_load(mg_registry_t *r, const char *name, mg_err_t *err)
{
    mg_err_t local;
    if (err == NULL)
        err = &local;
    if (!valid_model_name(name))
        return mg_err_set(err, MG_ENOENT, "no model '%s' in the repository", name);
    pthread_mutex_lock(&r->write_lock);
    int rc = load_locked(r, name, err);
    pthread_mutex_unlock(&r->write_lock);
    return rc;
}

int mg_registry_unload(mg_registry_t *r, const char *name, mg_err_t *err)
{
    pthread_mutex_lock(&r->write_lock);
    const mg_model_entry_t *cur =
        mg_registry_snapshot_find(writer_live(r), (mg_str_t){name, strlen(name)});
    int rc = 0;
    if (cur == NULL) {
        rc = mg_err_set(err, MG_ENOENT, "unknown model '%s'", name);
    } else {
        mg_model_entry_t e;
        memset(&e, 0, sizeof(e));
        e.name = strdup(name);
        e.config = cur->config;
        e.state = MG_MODEL_UNAVAILABLE;
        e.unloaded = true;
        snprintf(e.reason, sizeof(e.reason), "unloaded");
        mg_registry_snapshot_t *s;
        if (e.name == NULL || snapshot_with(writer_live(r), &e, &s) != 0) {
            free(e.name);
            rc = mg_err_set(err, MG_ENOMEM, "out of memory");
        } else {
            publish(r, s);
            mg_log(MG_LOG_INFO, "repo", "model unloaded model=%s", name);
        }
    }
    pthread_mutex_unlock(&r->write_lock);
    return rc;
}

const mg_registry_snapshot_t *mg_registry_snapshot(mg_registry_t *r)
{
    return atomic_load_explicit(&r->live, memory_order_acquire);
}

size_t mg_registry_snapshot_count(const mg_registry_snapshot_t *s)
{
    return s ? s->nmodels : 0;
}

const mg_model_entry_t *mg_registry_snapshot_model(const mg_registry_snapshot_t *s, size_t i)
{
    return &s->models[i];
}

const mg_model_entry_t *mg_registry_snapshot_find(const mg_registry_snapshot_t *s, mg_str_t name)
{
    if (s == NULL)
        return NULL;
    /* Binary search: models are sorted by name. */
    size_t lo = 0, hi = s->nmodels;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = mg_str_cmp(s->models[mid].name, name);
        if (c == 0)
            return &s->models[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int mg_registry_acquire(mg_registry_t *r, mg_str_t model, mg_str_t version,
                        mg_model_version_t **out, mg_err_t *err)
{
    int rc = 0;
    rcu_read_lock();
    const mg_model_entry_t *e =
        mg_registry_snapshot_find(atomic_load_explicit(&r->live, memory_order_acquire), model);
    mg_model_version_t *v = NULL;
    if (e == NULL) {
        rc = mg_err_set(err, MG_ENOENT, "unknown model '%.*s'", (int)model.len, model.ptr);
    } else if (version.len == 0) {
        v = e->default_version;
        if (v == NULL)
            rc = mg_err_set(err, MG_EUNAVAIL, "model '%s' is not ready (%s)", e->name,
                            e->reason[0] ? e->reason : "its default version is not loaded");
    } else {
        int64_t want = 0;
        size_t i = 0;
        for (; i < version.len && i < 18 && version.ptr[i] >= '0' && version.ptr[i] <= '9'; i++)
            want = want * 10 + (version.ptr[i] - '0');
        const mg_model_version_t *found = i == version.len ? find_version(e, want) : NULL;
        if (found == NULL)
            rc = mg_err_set(err, MG_ENOENT, "unknown version '%.*s' of model '%s'",
                            (int)version.len, version.ptr, e->name);
        else if (found->state != MG_MODEL_READY)
            rc = mg_err_set(err, MG_EUNAVAIL, "version %s of model '%s' is not ready (%s)",
                            found->version_str, e->name, found->reason);
        else
            v = (mg_model_version_t *)found;
    }
    if (v != NULL)
        mg_model_version_ref(v);
    mg_rcu_read_unlock();
    *out = v;
    return rc;
}

bool mg_registry_all_ready(mg_registry_t *r)
{
    if (!atomic_load(&r->loaded))
        return false;
    bool ok = true;
    rcu_read_lock();
    const mg_registry_snapshot_t *s = atomic_load_explicit(&r->live, memory_order_acquire);
    for (size_t i = 0; i < s->nmodels; i++) {
        if (mg_model_entry_failed(&s->models[i]))
            ok = false;
    }
    mg_rcu_read_unlock();
    return ok;
}
