#include "repo/registry.h"

#include "core/log.h"
#include "core/rcu.h"
#include "core/snapshot.h"
#include "repo/version_internal.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A version the index shows without the entry listing it (UNLOADED), plain data. */
typedef struct gone_row {
    int64_t number;
    char text[MG_VERSION_TEXT_MAX];
    char reason[128];
} gone_row_t;

/* LOADING and DRAINING rows: what the control thread is doing now, under `board_lock`. */
typedef struct board_row {
    char model[256];
    char text[MG_VERSION_TEXT_MAX];
    mg_model_state_t state;
    char reason[128];
} board_row_t;

struct mg_model_entry {
    char *name;
    mg_model_state_t state; /* READY when at least one version is READY */
    char reason[256];       /* why the model is unavailable */
    mg_model_config_t config;
    mg_model_version_t **versions; /* ascending by number */
    int nversions;
    mg_model_version_t *default_version; /* READY default, or NULL */
    bool unloaded;                       /* taken out on purpose (repository API) */
    gone_row_t *gone;                    /* versions taken out whose folders are still there */
    int ngone;
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
    bool explicit_mode;
    mg_sandbox_t *sandbox;      /* NULL: off */
    pthread_mutex_t board_lock; /* guards board, nboard (written by the writer, read by index) */
    board_row_t *board;
    size_t nboard, board_cap;
};

/* ---- the board: LOADING and DRAINING rows ------------------------------------------------- */

static void board_add(mg_registry_t *r, const char *model, const char *text, mg_model_state_t state,
                      const char *reason)
{
    pthread_mutex_lock(&r->board_lock);
    if (r->nboard == r->board_cap) {
        size_t cap = r->board_cap ? 2 * r->board_cap : 16;
        board_row_t *b = realloc(r->board, cap * sizeof(*b));
        if (b == NULL) { /* the index misses a row: nothing else depends on it */
            pthread_mutex_unlock(&r->board_lock);
            return;
        }
        r->board = b;
        r->board_cap = cap;
    }
    board_row_t *row = &r->board[r->nboard++];
    snprintf(row->model, sizeof(row->model), "%s", model);
    snprintf(row->text, sizeof(row->text), "%s", text);
    row->state = state;
    snprintf(row->reason, sizeof(row->reason), "%s", reason);
    pthread_mutex_unlock(&r->board_lock);
}

/* Drops the rows in `state` (of `model`, or of every model when NULL). */
static void board_drop(mg_registry_t *r, const char *model, mg_model_state_t state)
{
    pthread_mutex_lock(&r->board_lock);
    size_t k = 0;
    for (size_t i = 0; i < r->nboard; i++) {
        board_row_t *row = &r->board[i];
        if (row->state == state && (model == NULL || strcmp(row->model, model) == 0))
            continue;
        r->board[k++] = *row;
    }
    r->nboard = k;
    pthread_mutex_unlock(&r->board_lock);
}

/* The loader's callback: version `number` of `model` is being built. */
static void on_loading(void *ctx, const char *model, int64_t number)
{
    char text[MG_VERSION_TEXT_MAX];
    mg_version_format(number, text);
    board_add(ctx, model, text, MG_MODEL_LOADING, "verifying, validating and warming up");
}

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
    int draining = 0, freed = 0;
    mg_model_version_t **link = &r->retired;
    board_drop(r, NULL, MG_MODEL_DRAINING);
    while (*link != NULL) {
        mg_model_version_t *v = *link;
        if (mg_model_version_pins(v) > 0) {
            draining++;
            board_add(r, v->model_name, v->text, MG_MODEL_DRAINING,
                      "left the registry; requests in flight finish on it");
            link = &v->next_retired;
            continue;
        }
        *link = v->next_retired;
        if (v->state == MG_MODEL_READY) {
            mg_log(MG_LOG_INFO, "repo", "version released model=%s version=%s", v->model_name,
                   v->text);
            freed++;
        }
        mg_model_version_free(v);
    }
    /* Sessions free many large blocks at once: hand the pages back to the system. */
    if (freed > 0)
        malloc_trim(0);
    return draining;
}

/* ---- snapshots ---------------------------------------------------------------------------- */

static void entry_clear(mg_registry_t *r, mg_model_entry_t *e)
{
    for (int i = 0; i < e->nversions; i++)
        version_drop(r, e->versions[i]);
    free(e->versions);
    free(e->gone);
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
    dst->gone = e->ngone ? calloc((size_t)e->ngone, sizeof(*dst->gone)) : NULL;
    if (dst->name == NULL || (e->nversions && dst->versions == NULL) ||
        (e->ngone && dst->gone == NULL)) {
        free(dst->name);
        free(dst->versions);
        free(dst->gone);
        memset(dst, 0, sizeof(*dst));
        return MG_ENOMEM;
    }
    if (e->ngone)
        memcpy(dst->gone, e->gone, (size_t)e->ngone * sizeof(*dst->gone));
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

/* A snapshot equal to `old` without model `name`. */
static int snapshot_without(mg_registry_t *r, const mg_registry_snapshot_t *old, const char *name,
                            mg_registry_snapshot_t **out)
{
    mg_registry_snapshot_t *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->models = calloc(old->nmodels + 1, sizeof(*s->models))) == NULL) {
        free(s);
        return MG_ENOMEM;
    }
    for (size_t i = 0; i < old->nmodels; i++) {
        if (strcmp(old->models[i].name, name) == 0)
            continue;
        if (entry_copy(&s->models[s->nmodels], &old->models[i]) != 0) {
            snapshot_free(s, r);
            return MG_ENOMEM;
        }
        s->nmodels++;
    }
    *out = s;
    return 0;
}

/* ---- loading ------------------------------------------------------------------------------ */

/* Under `latest N`, how many failed versions above the serving ones are tried before giving up. */
#define FALLBACK_FAILURES_MAX 4

static int cmp_version_asc(const void *a, const void *b)
{
    int64_t x = (*(mg_model_version_t *const *)a)->number,
            y = (*(mg_model_version_t *const *)b)->number;
    return (x > y) - (x < y);
}

static int cmp_i64_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
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

static bool has_number(const int64_t *list, int n, int64_t v)
{
    for (int i = 0; i < n; i++) {
        if (list[i] == v)
            return true;
    }
    return false;
}

static bool version_dir_exists(mg_registry_t *r, const char *model, const char *text)
{
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s/%s", r->repo_dir, model, text);
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Adds an UNLOADED row for version `number` unless `e` lists it or has a row for it. */
static int add_gone(mg_model_entry_t *e, int64_t number, const char *text, const char *reason)
{
    if (mg_model_entry_find_version(e, number) != NULL)
        return 0;
    for (int i = 0; i < e->ngone; i++) {
        if (e->gone[i].number == number)
            return 0;
    }
    gone_row_t *g = realloc(e->gone, (size_t)(e->ngone + 1) * sizeof(*g));
    if (g == NULL)
        return MG_ENOMEM;
    e->gone = g;
    g = &e->gone[e->ngone++];
    g->number = number;
    snprintf(g->text, sizeof(g->text), "%s", text);
    snprintf(g->reason, sizeof(g->reason), "%s", reason);
    return 0;
}

/* The UNLOADED rows of `e`: what `prev` listed or showed as gone, still on disk, not listed now. */
static int carry_gone(mg_registry_t *r, const mg_model_entry_t *prev, mg_model_entry_t *e,
                      const char *why)
{
    if (prev == NULL)
        return 0;
    int rc = 0;
    for (int i = 0; rc == 0 && i < prev->nversions; i++) {
        const mg_model_version_t *v = prev->versions[i];
        if (v->state == MG_MODEL_READY && version_dir_exists(r, e->name, v->text))
            rc = add_gone(e, v->number, v->text, why);
    }
    for (int i = 0; rc == 0 && i < prev->ngone; i++) {
        if (version_dir_exists(r, e->name, prev->gone[i].text))
            rc = add_gone(e, prev->gone[i].number, prev->gone[i].text, prev->gone[i].reason);
    }
    return rc;
}

/* Lists `v` in `e` (which has room). */
static void entry_list(mg_model_entry_t *e, mg_model_version_t *v)
{
    version_hold(e->versions[e->nversions++] = v);
}

/*
 * Builds the entry for model `name` from disk into `e` (which then owns its versions; on a
 * failure it still holds what the index should show). `prev` is the entry that serves now;
 * `settled` (n; NULL: all) the version folders that may be read (the others keep prev's).
 * Returns 0 with *partial filled when a version failed while others serve; MG_ENOMODEL (no
 * folder: e->name is NULL), MG_ECONFIG, MG_EMODEL or MG_ENOMEM.
 */
static int build_entry(mg_registry_t *r, const char *name, const mg_model_entry_t *prev,
                       const int64_t *settled, int nsettled, int flags, mg_model_entry_t *e,
                       mg_err_t *partial, mg_err_t *err)
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

    /* The versions to consider: on disk and settled, or on disk and already in the registry
       (a folder in flux keeps what it had, as it was). */
    int64_t found[MG_VERSIONS_MAX], considered[MG_VERSIONS_MAX];
    int n = mg_loader_list_versions(&r->loader, name, found, MG_VERSIONS_MAX);
    int m = 0;
    for (int i = 0; i < n; i++) {
        bool ok = settled == NULL || has_number(settled, nsettled, found[i]);
        if (!ok && prev != NULL && mg_model_entry_find_version(prev, found[i]) != NULL)
            ok = true;
        if (ok)
            considered[m++] = found[i];
    }
    qsort(considered, (size_t)m, sizeof(considered[0]), cmp_i64_desc);
    if (m > 0 && (e->versions = calloc((size_t)m, sizeof(*e->versions))) == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");

    /* Build in descending order; under `latest N`, a version that fails does not count. */
    const mg_model_config_t *cfg = &e->config;
    int ready = 0, failures = 0;
    const mg_model_version_t *failed = NULL; /* the highest that failed */
    for (int i = 0; i < m; i++) {
        int64_t num = considered[i];
        if (cfg->policy == MG_VERSION_POLICY_SPECIFIC) {
            bool want = false;
            for (int k = 0; k < cfg->nspecific; k++)
                want |= cfg->specific[k] == num;
            if (!want)
                continue;
        }
        if (cfg->policy == MG_VERSION_POLICY_LATEST &&
            (ready == cfg->latest_n || failures == FALLBACK_FAILURES_MAX))
            break;
        mg_model_version_t *old =
            prev ? (mg_model_version_t *)mg_model_entry_find_version(prev, num) : NULL;
        mg_model_version_t *v;
        if (settled != NULL && !has_number(settled, nsettled, num))
            v = old; /* in flux: kept as it is */
        else
            v = mg_loader_load_version(&r->loader, name, num, cfg, old, flags);
        if (v == NULL)
            return mg_err_set(err, MG_ENOMEM, "out of memory");
        entry_list(e, v);
        if (v->state == MG_MODEL_READY) {
            ready++;
        } else if (failures++ == 0) {
            failed = v;
        }
    }
    if (e->nversions > 1)
        qsort(e->versions, (size_t)e->nversions, sizeof(*e->versions), cmp_version_asc);
    if (cfg->has_traffic) {
        /* The policy may name only versions the registry lists. */
        int64_t listed[MG_VERSIONS_MAX];
        for (int i = 0; i < e->nversions; i++)
            listed[i] = e->versions[i]->number;
        mg_err_t perr;
        if (mg_policy_check_versions(&cfg->traffic, listed, e->nversions, &perr) != 0) {
            mg_str_format(e->reason, sizeof(e->reason), "config.json: 'traffic': %s", perr.msg);
            for (int i = 0; i < e->nversions; i++)
                version_drop(r, e->versions[i]);
            e->nversions = 0;
            e->state = MG_MODEL_UNAVAILABLE;
            mg_log(MG_LOG_ERROR, "repo", "load failed model=%s (%s)", name, e->reason);
            return mg_err_set(err, MG_ECONFIG, "model '%s': %s", name, e->reason);
        }
    }
    if (carry_gone(r, prev, e, "no longer selected by the version policy") != 0)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    entry_finish(e);
    if (e->state != MG_MODEL_READY)
        return mg_err_set(err, MG_EMODEL, "failed to load '%s': %s", name, e->reason);
    if (e->config.default_version != 0 && e->default_version == NULL)
        mg_log(MG_LOG_WARN, "repo", "default version not ready model=%s version=%lld", name,
               (long long)e->config.default_version);
    if (failed != NULL)
        mg_err_set(partial, MG_EMODEL, "version %s of '%s' failed (version %s serves): %s",
                   failed->text, name, e->default_version ? e->default_version->text : "-",
                   failed->reason);
    return 0;
}

/* Builds and publishes the entry for `name`. */
static int load_one(mg_registry_t *r, const char *name, const int64_t *settled, int nsettled,
                    int flags, mg_err_t *err)
{
    mg_model_entry_t e;
    mg_err_t partial;
    mg_err_clear(&partial);
    /* The writer is the only one to change the live snapshot: no read section needed. */
    const mg_model_entry_t *prev =
        mg_registry_snapshot_find(writer_live(r), (mg_str_t){name, strlen(name)});
    int rc = build_entry(r, name, prev, settled, nsettled, flags, &e, &partial, err);
    if (e.name == NULL) { /* no such folder, or no memory for the name */
        entry_clear(r, &e);
        board_drop(r, name, MG_MODEL_LOADING);
        mg_registry_reap(r);
        return rc;
    }
    if (rc != 0 && prev != NULL && prev->state == MG_MODEL_READY &&
        (rc != MG_EMODEL || e.nversions > 0)) {
        /* A failed reload never takes down what is serving (only a model emptied on disk
           leaves). */
        mg_log(MG_LOG_WARN, "repo", "reload failed, previous versions keep serving model=%s (%s)",
               name, err->msg);
        entry_clear(r, &e);
        board_drop(r, name, MG_MODEL_LOADING);
        mg_registry_reap(r);
        return rc;
    }
    mg_registry_snapshot_t *s;
    if (snapshot_with(r, writer_live(r), &e, &s) != 0) {
        board_drop(r, name, MG_MODEL_LOADING);
        mg_registry_reap(r);
        return mg_err_set(err, MG_ENOMEM, "out of memory publishing model '%s'", name);
    }
    publish(r, s);
    board_drop(r, name, MG_MODEL_LOADING);
    if (rc == 0 && partial.code != 0) {
        mg_log(MG_LOG_WARN, "repo", "not live model=%s (%s)", name, partial.msg);
        return mg_err_set(err, partial.code, "%s", partial.msg);
    }
    return rc;
}

/* Takes model `name` out of the registry (its folder is gone); its versions drain. */
static int remove_model(mg_registry_t *r, const char *name, mg_err_t *err)
{
    if (mg_registry_snapshot_find(writer_live(r), (mg_str_t){name, strlen(name)}) == NULL)
        return 0;
    mg_registry_snapshot_t *s;
    if (snapshot_without(r, writer_live(r), name, &s) != 0)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    publish(r, s);
    mg_log(MG_LOG_INFO, "repo", "model removed from the repository model=%s", name);
    return 0;
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
    r->loader.require_checksums = opts->require_checksums;
    r->loader.loop_threads = opts->loop_threads;
    r->loader.pool = opts->pool;
    if (opts->sandbox != NULL && mg_sandbox_new(&r->sandbox, opts->sandbox, err) != 0) {
        free(r->repo_dir);
        free(r);
        free(empty);
        return err->code;
    }
    r->loader.sandbox = r->sandbox;
    r->loader.loading = on_loading;
    r->loader.loading_ctx = r;
    r->explicit_mode = opts->explicit_mode;
    pthread_mutex_init(&r->board_lock, NULL);
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
    pthread_mutex_destroy(&r->board_lock);
    mg_sandbox_free(r->sandbox);
    free(r->board);
    free(r->repo_dir);
    free(r);
}

const mg_loader_t *mg_registry_loader(const mg_registry_t *r)
{
    return &r->loader;
}

/* Loads the model folders of the repository (NULL names) or the `n` names given. */
static int load_many(mg_registry_t *r, const char *const *names, size_t n, int flags)
{
    mg_buf_t listed = {0};
    int failed = 0;
    if (names == NULL) {
        if (mg_loader_list_models(&r->loader, &listed, &n) != 0) {
            mg_log(MG_LOG_ERROR, "repo", "cannot list repository dir=%s", r->repo_dir);
            atomic_store(&r->loaded, true);
            return 1;
        }
    }
    const char *p = listed.data;
    for (size_t i = 0; i < n; i++) {
        const char *name = names ? names[i] : p;
        if (names == NULL)
            p += strlen(p) + 1;
        mg_err_t err;
        mg_err_clear(&err);
        if (!mg_loader_valid_name(name)) {
            mg_log(MG_LOG_ERROR, "repo", "no model '%s' in the repository", name);
            failed++;
        } else if (load_one(r, name, NULL, 0, flags, &err) != 0) {
            if (err.code == MG_ENOMODEL)
                mg_log(MG_LOG_ERROR, "repo", "%s", err.msg);
            failed++;
        }
    }
    mg_buf_free(&listed);
    atomic_store(&r->loaded, true);
    mg_log(MG_LOG_INFO, "repo", "repository loaded dir=%s models=%zu failed=%d", r->repo_dir, n,
           failed);
    return failed;
}

int mg_registry_load_all(mg_registry_t *r)
{
    return load_many(r, NULL, 0, MG_LOADER_RETRY_FAILED);
}

int mg_registry_load_list(mg_registry_t *r, const char *const *names, size_t n)
{
    return load_many(r, names, n, MG_LOADER_RETRY_FAILED);
}

/*
 * Finds `name` in the repository's own listing (kept in `names`, which the caller frees) and
 * sets *listed to the listing's copy. A name from a request is only compared with the listing
 * and the listed name is what goes on: request bytes are never joined into a path.
 * Returns 0, MG_ENOMODEL (not listed) or the listing's failure.
 */
static int listed_name(mg_registry_t *r, const char *name, mg_buf_t *names, const char **listed)
{
    size_t n = 0;
    if (!mg_loader_valid_name(name))
        return MG_ENOMODEL;
    int rc = mg_loader_list_models(&r->loader, names, &n);
    if (rc != 0)
        return rc;
    const char *p = names->data;
    for (size_t i = 0; i < n; i++, p += strlen(p) + 1) {
        if (strcmp(p, name) == 0) {
            *listed = p;
            return 0;
        }
    }
    return MG_ENOMODEL;
}

static int no_model(mg_err_t *err, const char *name)
{
    return mg_err_set(err, MG_ENOMODEL, "no model '%.*s' in the repository",
                      mg_err_quote_len(strlen(name)), name);
}

int mg_registry_load(mg_registry_t *r, const char *name, mg_err_t *err)
{
    mg_err_t local;
    if (err == NULL)
        err = &local;
    mg_buf_t names = {0};
    const char *listed = NULL;
    int rc = listed_name(r, name, &names, &listed);
    if (rc == 0)
        rc = load_one(r, listed, NULL, 0, MG_LOADER_RETRY_FAILED, err);
    else if (rc == MG_ENOMODEL)
        no_model(err, name);
    else
        mg_err_set(err, rc, "cannot list the repository");
    mg_buf_free(&names);
    return rc;
}

/* A rescan of a model the listing names (`listed`), or that it no longer names (NULL). */
static int rescan_listed(mg_registry_t *r, const char *name, const char *listed,
                         const int64_t *settled, int n, mg_err_t *err)
{
    int rc = listed != NULL ? load_one(r, listed, settled, n, 0, err) : MG_ENOMODEL;
    if (rc == MG_ENOMODEL)
        return remove_model(r, name, err);
    return rc;
}

int mg_registry_rescan(mg_registry_t *r, const char *name, const int64_t *settled, int n,
                       mg_err_t *err)
{
    mg_err_t local;
    if (err == NULL)
        err = &local;
    if (!mg_loader_valid_name(name))
        return no_model(err, name);
    mg_buf_t names = {0};
    const char *listed = NULL;
    int rc = listed_name(r, name, &names, &listed);
    if (rc == 0 || rc == MG_ENOMODEL)
        rc = rescan_listed(r, name, listed, settled, n, err);
    else
        mg_err_set(err, rc, "cannot list the repository");
    mg_buf_free(&names);
    return rc;
}

int mg_registry_rescan_all(mg_registry_t *r)
{
    int failed = 0;
    mg_buf_t names = {0};
    size_t n = 0;
    if (mg_loader_list_models(&r->loader, &names, &n) != 0) {
        mg_log(MG_LOG_ERROR, "repo", "cannot list repository dir=%s", r->repo_dir);
        return 1;
    }
    /* Models whose folder is gone leave first. */
    const mg_registry_snapshot_t *cur = writer_live(r);
    for (size_t i = cur->nmodels; i-- > 0;) {
        const char *name = cur->models[i].name;
        bool on_disk = false;
        const char *p = names.data;
        for (size_t k = 0; k < n && !on_disk; k++, p += strlen(p) + 1)
            on_disk = strcmp(p, name) == 0;
        if (!on_disk) {
            char copy[256];
            snprintf(copy, sizeof(copy), "%s", name);
            mg_err_t err;
            remove_model(r, copy, &err);
            cur = writer_live(r);
        }
    }
    const char *p = names.data;
    for (size_t i = 0; i < n; i++, p += strlen(p) + 1) {
        const mg_model_entry_t *e =
            mg_registry_snapshot_find(writer_live(r), (mg_str_t){p, strlen(p)});
        if (r->explicit_mode && (e == NULL || e->unloaded))
            continue;
        mg_err_t err;
        mg_err_clear(&err);
        if (rescan_listed(r, p, p, NULL, 0, &err) != 0)
            failed++;
    }
    mg_buf_free(&names);
    return failed;
}

int mg_registry_unload(mg_registry_t *r, const char *name, mg_err_t *err)
{
    const mg_model_entry_t *cur =
        mg_registry_snapshot_find(writer_live(r), (mg_str_t){name, strlen(name)});
    if (cur == NULL)
        return mg_err_set(err, MG_ENOMODEL, MG_UNKNOWN_MODEL_FMT, mg_err_quote_len(strlen(name)),
                          name);
    mg_model_entry_t e;
    memset(&e, 0, sizeof(e));
    e.config = cur->config;
    e.state = MG_MODEL_UNAVAILABLE;
    e.unloaded = true;
    snprintf(e.reason, sizeof(e.reason), "unloaded");
    if ((e.name = strdup(name)) == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    for (int i = 0; i < cur->nversions; i++) {
        const mg_model_version_t *v = cur->versions[i];
        if (add_gone(&e, v->number, v->text, "unloaded") != 0) {
            entry_clear(r, &e);
            return mg_err_set(err, MG_ENOMEM, "out of memory");
        }
    }
    mg_registry_snapshot_t *s;
    if (snapshot_with(r, writer_live(r), &e, &s) != 0)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    publish(r, s);
    mg_log(MG_LOG_INFO, "repo", "model unloaded model=%s", name);
    return 0;
}

/* Index rows of one entry: listed versions, gone rows, board rows (under board_lock). */
static int index_entry(mg_registry_t *r, const mg_model_entry_t *e, bool ready_only,
                       mg_registry_row_fn fn, void *ctx)
{
    int rc = 0, rows = 0;
    for (int k = 0; rc == 0 && k < e->nversions; k++) {
        const mg_model_version_t *v = e->versions[k];
        if (ready_only && v->state != MG_MODEL_READY)
            continue;
        mg_registry_row_t row = {e->name, v->text, v->state, v->reason, true};
        rc = fn(ctx, &row);
        rows++;
    }
    if (ready_only)
        return rc;
    for (int k = 0; rc == 0 && k < e->ngone; k++) {
        bool draining = false;
        for (size_t b = 0; b < r->nboard && !draining; b++)
            draining = r->board[b].state == MG_MODEL_DRAINING &&
                       strcmp(r->board[b].model, e->name) == 0 &&
                       strcmp(r->board[b].text, e->gone[k].text) == 0;
        if (draining) /* the DRAINING row says more */
            continue;
        mg_registry_row_t row = {e->name, e->gone[k].text, MG_MODEL_UNLOADED, e->gone[k].reason,
                                 true};
        rc = fn(ctx, &row);
        rows++;
    }
    for (size_t b = 0; rc == 0 && b < r->nboard; b++) {
        if (strcmp(r->board[b].model, e->name) != 0)
            continue;
        mg_registry_row_t row = {e->name, r->board[b].text, r->board[b].state, r->board[b].reason,
                                 true};
        rc = fn(ctx, &row);
        rows++;
    }
    if (rc == 0 && rows == 0) {
        mg_registry_row_t row = {e->name, NULL, e->unloaded ? MG_MODEL_UNLOADED : e->state,
                                 e->reason, true};
        rc = fn(ctx, &row);
    }
    return rc;
}

int mg_registry_index(mg_registry_t *r, bool ready_only, mg_registry_row_fn fn, void *ctx)
{
    mg_buf_t names = {0};
    size_t nnames = 0;
    if (mg_loader_list_models(&r->loader, &names, &nnames) != 0) {
        mg_buf_free(&names);
        return MG_EIO;
    }
    int rc = 0;
    rcu_read_lock();
    pthread_mutex_lock(&r->board_lock);
    const mg_registry_snapshot_t *snap = mg_snapshot_read(&r->live);
    for (size_t i = 0; rc == 0 && i < snap->nmodels; i++)
        rc = index_entry(r, &snap->models[i], ready_only, fn, ctx);
    /* Folders never loaded: the rows of a first load in progress, or just the name. */
    const char *n = names.data;
    for (size_t i = 0; rc == 0 && i < nnames && !ready_only; i++, n += strlen(n) + 1) {
        if (mg_registry_snapshot_find(snap, (mg_str_t){n, strlen(n)}) != NULL)
            continue;
        int rows = 0;
        for (size_t b = 0; rc == 0 && b < r->nboard; b++) {
            if (strcmp(r->board[b].model, n) != 0)
                continue;
            mg_registry_row_t row = {n, r->board[b].text, r->board[b].state, r->board[b].reason,
                                     true};
            rc = fn(ctx, &row);
            rows++;
        }
        if (rc == 0 && rows == 0) {
            mg_registry_row_t row = {n, NULL, MG_MODEL_UNAVAILABLE, "", false};
            rc = fn(ctx, &row);
        }
    }
    pthread_mutex_unlock(&r->board_lock);
    mg_rcu_read_unlock();
    mg_buf_free(&names);
    return rc;
}

const char *mg_registry_repo_dir(const mg_registry_t *r)
{
    return r->repo_dir;
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
        rc = mg_err_set(err, MG_ENOMODEL, MG_UNKNOWN_MODEL_FMT, mg_err_quote_len(model.len),
                        model.ptr);
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
