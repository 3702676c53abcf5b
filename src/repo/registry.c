#include "repo/registry.h"

#include "core/log.h"
#include "core/rcu.h"
#include "core/snapshot.h"
#include "repo/version_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct mg_model_entry {
    char *name;
    mg_model_state_t state; /* READY when at least one version is READY */
    char reason[256];       /* why the model is unavailable */
    mg_model_config_t config;
    mg_model_version_t **versions; /* ascending by number */
    int nversions;
    mg_model_version_t *default_version; /* READY default, or NULL */
    bool unloaded;                       /* taken out on purpose (repository API) */
};

struct mg_registry_snapshot {
    mg_model_entry_t *models; /* sorted by name */
    size_t nmodels;
};

struct mg_registry {
    mg_loader_t loader;
    char *repo_dir;
    mg_snapshot_t live;
    mg_model_version_t *retired; /* left every snapshot; freed once unpinned (writer only) */
    atomic_bool loaded;
};

/* ---- version ownership (writer only) ------------------------------------------------------ */

/* An entry now lists `v`. */
static void version_hold(mg_model_version_t *v)
{
    v->entry_refs++;
}

/* An entry stops listing `v`; the last one retires it to the draining list. */
static void version_drop(mg_registry_t *r, mg_model_version_t *v)
{
    if (--v->entry_refs > 0)
        return;
    v->next_retired = r->retired;
    r->retired = v;
}

int mg_registry_reap(mg_registry_t *r)
{
    int draining = 0;
    mg_model_version_t **link = &r->retired;
    while (*link != NULL) {
        mg_model_version_t *v = *link;
        if (mg_model_version_pins(v) > 0) {
            draining++;
            link = &v->next_retired;
            continue;
        }
        *link = v->next_retired;
        if (v->state == MG_MODEL_READY)
            mg_log(MG_LOG_INFO, "repo", "version released model=%s version=%s", v->model_name,
                   v->text);
        mg_model_version_free(v);
    }
    return draining;
}

/* ---- snapshots ---------------------------------------------------------------------------- */

static void entry_clear(mg_registry_t *r, mg_model_entry_t *e)
{
    for (int i = 0; i < e->nversions; i++)
        version_drop(r, e->versions[i]);
    free(e->versions);
    free(e->name);
    memset(e, 0, sizeof(*e));
}

static void snapshot_free(void *p, void *ctx)
{
    mg_registry_snapshot_t *s = p;
    for (size_t i = 0; i < s->nmodels; i++)
        entry_clear(ctx, &s->models[i]);
    free(s->models);
    free(s);
}

/* Copies `e` into `dst`; the copy lists the same versions. */
static int entry_copy(mg_model_entry_t *dst, const mg_model_entry_t *e)
{
    *dst = *e;
    dst->name = strdup(e->name);
    dst->versions = e->nversions ? calloc((size_t)e->nversions, sizeof(*dst->versions)) : NULL;
    if (dst->name == NULL || (e->nversions && dst->versions == NULL)) {
        free(dst->name);
        free(dst->versions);
        memset(dst, 0, sizeof(*dst));
        return MG_ENOMEM;
    }
    for (int i = 0; i < e->nversions; i++)
        version_hold(dst->versions[i] = e->versions[i]);
    return 0;
}

/*
 * Builds a snapshot equal to `old` with the model named `repl->name` replaced by `repl`
 * (or added). Takes `repl` (its contents move into the new snapshot), also on failure.
 */
static int snapshot_with(mg_registry_t *r, const mg_registry_snapshot_t *old,
                         mg_model_entry_t *repl, mg_registry_snapshot_t **out)
{
    size_t n = old->nmodels;
    mg_registry_snapshot_t *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->models = calloc(n + 1, sizeof(*s->models))) == NULL) {
        free(s);
        entry_clear(r, repl);
        return MG_ENOMEM;
    }
    size_t k = 0;
    int placed = 0;
    const char *name = repl->name;
    for (size_t i = 0; i <= n; i++) {
        int c = i == n ? 1 : strcmp(old->models[i].name, name);
        if (!placed && c >= 0) {
            s->models[k++] = *repl;
            memset(repl, 0, sizeof(*repl));
            placed = 1;
            if (c == 0)
                continue;
        }
        if (i == n)
            break;
        if (entry_copy(&s->models[k], &old->models[i]) != 0) {
            s->nmodels = k;
            snapshot_free(s, r);
            return MG_ENOMEM;
        }
        k++;
    }
    s->nmodels = k;
    *out = s;
    return 0;
}

/* Publishes `s`, frees the previous snapshot after a grace period, reaps what drained. */
static void publish(mg_registry_t *r, mg_registry_snapshot_t *s)
{
    mg_snapshot_publish(&r->live, s);
    mg_registry_reap(r);
}

static const mg_registry_snapshot_t *writer_live(mg_registry_t *r)
{
    return mg_snapshot_current(&r->live);
}

/* ---- loading ------------------------------------------------------------------------------ */

static int cmp_version_asc(const void *a, const void *b)
{
    int64_t x = (*(mg_model_version_t *const *)a)->number,
            y = (*(mg_model_version_t *const *)b)->number;
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
        if (e->config.default_version == 0 || e->config.default_version == v->number) {
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
            mg_str_format(e->reason, sizeof(e->reason),
                          "no version folder selected by the version policy");
        else
            mg_str_format(e->reason, sizeof(e->reason), "version %s: %s",
                          e->versions[e->nversions - 1]->text,
                          e->versions[e->nversions - 1]->reason);
    }
}

/*
 * Builds the entry for model `name` from disk into `e` (which then owns its versions; on a
 * failure it still holds what the index should show). `prev` is the entry that serves now.
 * Returns 0, MG_ENOMODEL (no folder: e->name is NULL), MG_ECONFIG, MG_EMODEL or MG_ENOMEM.
 */
static int build_entry(mg_registry_t *r, const char *name, const mg_model_entry_t *prev,
                       mg_model_entry_t *e, mg_err_t *err)
{
    memset(e, 0, sizeof(*e));
    mg_err_t cerr;
    int rc = mg_loader_read_config(&r->loader, name, &e->config, &cerr);
    if (rc == MG_ENOENT)
        return mg_err_set(err, MG_ENOMODEL, "no model '%s' in the repository", name);
    if ((e->name = strdup(name)) == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    if (rc != 0) {
        mg_str_format(e->reason, sizeof(e->reason), "%s", cerr.msg);
        e->state = MG_MODEL_UNAVAILABLE;
        mg_log(MG_LOG_ERROR, "repo", "load failed model=%s (%s)", name, e->reason);
        return mg_err_set(err, MG_ECONFIG, "model '%s': %s", name, cerr.msg);
    }

    int64_t found[MG_VERSIONS_MAX], selected[MG_VERSIONS_MAX];
    int n = mg_loader_list_versions(&r->loader, name, found, MG_VERSIONS_MAX);
    if (n < 0)
        n = 0;
    int m = mg_model_config_select(&e->config, found, n, selected);
    if (m > 0 && (e->versions = calloc((size_t)m, sizeof(*e->versions))) == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    for (int i = 0; i < m; i++) {
        const mg_model_version_t *old =
            prev ? mg_model_entry_find_version(prev, selected[i]) : NULL;
        mg_model_version_t *v =
            mg_loader_load_version(&r->loader, name, selected[i], &e->config, old);
        if (v == NULL)
            return mg_err_set(err, MG_ENOMEM, "out of memory");
        version_hold(e->versions[e->nversions++] = v);
    }
    qsort(e->versions, (size_t)e->nversions, sizeof(*e->versions), cmp_version_asc);
    if (e->config.has_traffic) {
        /* The policy may name only versions the version policy selected. */
        mg_err_t perr;
        if (mg_policy_check_versions(&e->config.traffic, selected, m, &perr) != 0) {
            mg_str_format(e->reason, sizeof(e->reason), "config.json: 'traffic': %s", perr.msg);
            for (int i = 0; i < e->nversions; i++)
                version_drop(r, e->versions[i]);
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

/* Builds and publishes the entry for `name`. */
static int load_one(mg_registry_t *r, const char *name, mg_err_t *err)
{
    mg_model_entry_t e;
    /* The writer is the only one to change the live snapshot: no read section needed. */
    const mg_model_entry_t *prev =
        mg_registry_snapshot_find(writer_live(r), (mg_str_t){name, strlen(name)});
    int rc = build_entry(r, name, prev, &e, err);
    if (e.name == NULL) { /* no such folder, or no memory for the name */
        entry_clear(r, &e);
        mg_registry_reap(r);
        return rc;
    }
    if (rc != 0 && prev != NULL && prev->state == MG_MODEL_READY) {
        /* A failed reload never takes down what is serving. */
        mg_log(MG_LOG_WARN, "repo", "reload failed, previous versions keep serving model=%s (%s)",
               name, err->msg);
        entry_clear(r, &e);
        mg_registry_reap(r);
        return rc;
    }
    mg_registry_snapshot_t *s;
    if (snapshot_with(r, writer_live(r), &e, &s) != 0) {
        mg_registry_reap(r);
        return mg_err_set(err, MG_ENOMEM, "out of memory publishing model '%s'", name);
    }
    publish(r, s);
    return rc;
}

/* ---- public ------------------------------------------------------------------------------- */

int mg_registry_new(mg_registry_t **out, const mg_registry_opts_t *opts, mg_err_t *err)
{
    struct stat st;
    if (opts->repo_dir == NULL || stat(opts->repo_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return mg_err_set(err, MG_ENOENT, "model repository '%s' is not a folder",
                          opts->repo_dir ? opts->repo_dir : "");
    mg_registry_t *r = calloc(1, sizeof(*r));
    mg_registry_snapshot_t *empty = calloc(1, sizeof(*empty));
    if (r == NULL || empty == NULL || (r->repo_dir = strdup(opts->repo_dir)) == NULL) {
        free(r);
        free(empty);
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    }
    r->loader.repo_dir = r->repo_dir;
    mg_snapshot_init(&r->live, empty, snapshot_free, r);
    atomic_init(&r->loaded, false);
    *out = r;
    return 0;
}

void mg_registry_free(mg_registry_t *r)
{
    if (r == NULL)
        return;
    mg_snapshot_deinit(&r->live);
    int left = mg_registry_reap(r);
    if (left > 0)
        mg_log(MG_LOG_ERROR, "repo", "registry freed with %d versions still pinned", left);
    free(r->repo_dir);
    free(r);
}

const mg_loader_t *mg_registry_loader(const mg_registry_t *r)
{
    return &r->loader;
}

int mg_registry_load_all(mg_registry_t *r)
{
    mg_buf_t names = {0};
    size_t n = 0;
    int failed = 0;
    if (mg_loader_list_models(&r->loader, &names, &n) != 0) {
        mg_log(MG_LOG_ERROR, "repo", "cannot list repository dir=%s", r->repo_dir);
        atomic_store(&r->loaded, true);
        return 1;
    }
    const char *p = names.data;
    for (size_t i = 0; i < n; i++, p += strlen(p) + 1) {
        mg_err_t err;
        mg_err_clear(&err);
        if (load_one(r, p, &err) != 0)
            failed++;
    }
    mg_buf_free(&names);
    atomic_store(&r->loaded, true);
    mg_log(MG_LOG_INFO, "repo", "repository loaded dir=%s models=%zu failed=%d", r->repo_dir, n,
           failed);
    return failed;
}

int mg_registry_load(mg_registry_t *r, const char *name, mg_err_t *err)
{
    mg_err_t local;
    if (err == NULL)
        err = &local;
    if (!mg_loader_valid_name(name))
        return mg_err_set(err, MG_ENOMODEL, "no model '%s' in the repository", name);
    return load_one(r, name, err);
}

int mg_registry_unload(mg_registry_t *r, const char *name, mg_err_t *err)
{
    const mg_model_entry_t *cur =
        mg_registry_snapshot_find(writer_live(r), (mg_str_t){name, strlen(name)});
    if (cur == NULL)
        return mg_err_set(err, MG_ENOMODEL, "unknown model '%s'", name);
    mg_model_entry_t e;
    memset(&e, 0, sizeof(e));
    e.config = cur->config;
    e.state = MG_MODEL_UNAVAILABLE;
    e.unloaded = true;
    snprintf(e.reason, sizeof(e.reason), "unloaded");
    mg_registry_snapshot_t *s;
    if ((e.name = strdup(name)) == NULL || snapshot_with(r, writer_live(r), &e, &s) != 0) {
        free(e.name);
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    }
    publish(r, s);
    mg_log(MG_LOG_INFO, "repo", "model unloaded model=%s", name);
    return 0;
}

const mg_registry_snapshot_t *mg_registry_snapshot(mg_registry_t *r)
{
    return mg_snapshot_read(&r->live);
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

int mg_registry_acquire(mg_registry_t *r, mg_str_t model, int64_t version, mg_model_version_t **out,
                        mg_err_t *err)
{
    int rc = 0;
    rcu_read_lock();
    const mg_model_entry_t *e = mg_registry_snapshot_find(mg_snapshot_read(&r->live), model);
    mg_model_version_t *v = NULL;
    if (e == NULL) {
        rc = mg_err_set(err, MG_ENOMODEL, "unknown model '%.*s'", (int)model.len, model.ptr);
    } else if (version <= 0) {
        v = e->default_version;
        if (v == NULL)
            rc = mg_err_set(err, MG_EUNAVAIL, "model '%s' is not ready (%s)", e->name,
                            e->reason[0] ? e->reason : "its default version is not loaded");
    } else {
        const mg_model_version_t *found = mg_model_entry_find_version(e, version);
        if (found == NULL)
            rc = mg_err_set(err, MG_ENOVERSION, "unknown version '%lld' of model '%s'",
                            (long long)version, e->name);
        else if (found->state != MG_MODEL_READY)
            rc = mg_err_set(err, MG_EUNAVAIL, "version %s of model '%s' is not ready (%s)",
                            found->text, e->name, found->reason);
        else
            v = (mg_model_version_t *)found;
    }
    /* Pinned inside the read section: the grace period orders this before any reap. */
    if (v != NULL)
        atomic_fetch_add_explicit(&v->live->pins, 1, memory_order_relaxed);
    mg_rcu_read_unlock();
    *out = v;
    return rc;
}

int mg_registry_model_versions(mg_registry_t *r, mg_str_t model, int64_t *out, int cap)
{
    int n = MG_ENOMODEL;
    rcu_read_lock();
    const mg_model_entry_t *e = mg_registry_snapshot_find(mg_snapshot_read(&r->live), model);
    if (e != NULL) {
        n = 0;
        for (int i = 0; i < e->nversions && n < cap; i++)
            out[n++] = e->versions[i]->number;
    }
    mg_rcu_read_unlock();
    return n;
}

bool mg_registry_all_ready(mg_registry_t *r)
{
    if (!atomic_load(&r->loaded))
        return false;
    bool ok = true;
    rcu_read_lock();
    const mg_registry_snapshot_t *s = mg_snapshot_read(&r->live);
    for (size_t i = 0; i < s->nmodels; i++) {
        if (mg_model_entry_failed(&s->models[i]))
            ok = false;
    }
    mg_rcu_read_unlock();
    return ok;
}

/* ---- entries ------------------------------------------------------------------------------ */

const char *mg_model_entry_name(const mg_model_entry_t *e)
{
    return e->name;
}

mg_model_state_t mg_model_entry_state(const mg_model_entry_t *e)
{
    return e->state;
}

const char *mg_model_entry_reason(const mg_model_entry_t *e)
{
    return e->reason;
}

bool mg_model_entry_unloaded(const mg_model_entry_t *e)
{
    return e->unloaded;
}

bool mg_model_entry_failed(const mg_model_entry_t *e)
{
    return e->state != MG_MODEL_READY && !e->unloaded;
}

const mg_model_config_t *mg_model_entry_config(const mg_model_entry_t *e)
{
    return &e->config;
}

const mg_policy_t *mg_model_entry_policy(const mg_model_entry_t *e)
{
    return e->config.has_traffic ? &e->config.traffic : NULL;
}

int mg_model_entry_nversions(const mg_model_entry_t *e)
{
    return e->nversions;
}

const mg_model_version_t *mg_model_entry_version(const mg_model_entry_t *e, int i)
{
    return i >= 0 && i < e->nversions ? e->versions[i] : NULL;
}

const mg_model_version_t *mg_model_entry_find_version(const mg_model_entry_t *e, int64_t number)
{
    for (int i = 0; i < e->nversions; i++) {
        if (e->versions[i]->number == number)
            return e->versions[i];
    }
    return NULL;
}

const mg_model_version_t *mg_model_entry_default(const mg_model_entry_t *e)
{
    return e->default_version;
}
