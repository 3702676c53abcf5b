/*
 * The repository watcher: inotify + periodic rescans, debounced per version folder, turned
 * into MG_CONTROL_RESCAN operations (see watch.h).
 */
#include "control/watch.h"

#include "core/buf.h"
#include "core/log.h"
#include "core/version.h"
#include "repo/loader.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define WATCH_MASK                                                                                 \
    (IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_MODIFY |            \
     IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

/* After an inotify event, how long to let more arrive before scanning. */
#define COALESCE_MS 100

/* How deep and how wide a version folder's signature looks. */
#define SIG_DEPTH_MAX   4
#define SIG_ENTRIES_MAX 4096

typedef struct seen_version {
    int64_t number;
    uint64_t sig;       /* what it holds now */
    int64_t changed_ms; /* when `sig` last changed */
    bool present;       /* found in the latest scan */
} seen_version_t;

typedef struct seen_model {
    char name[256];
    uint64_t config_sig;
    seen_version_t *versions;
    int nversions;
    uint64_t submitted; /* hash of the view last submitted (0: none) */
    bool present;
} seen_model_t;

struct mg_watch {
    mg_watch_opts_t o;
    char *repo_dir;
    mg_control_t *control;
    int ino;    /* inotify */
    int stopfd; /* eventfd */
    pthread_t tid;
    seen_model_t *models;
    size_t nmodels;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    return XXH3_64bits_withSeed(p, n, h);
}

static uint64_t stat_sig(uint64_t h, const struct stat *st)
{
    int64_t f[6] = {(int64_t)st->st_ino,          (int64_t)st->st_size, (int64_t)st->st_mtim.tv_sec,
                    (int64_t)st->st_mtim.tv_nsec, (int64_t)st->st_mode, (int64_t)st->st_dev};
    return mix(h, f, sizeof(f));
}

/* Hash of a folder's contents: every entry's name and stat, recursively (bounded). */
static uint64_t dir_sig(const char *dir, int depth, int *budget, uint64_t h)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return mix(h, "?", 1);
    /* Entries in name order, so the hash does not depend on readdir's order. */
    mg_buf_t names = {0};
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && *budget > 0) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (mg_buf_append(&names, de->d_name, strlen(de->d_name) + 1) != 0)
            break;
        n++;
        (*budget)--;
    }
    closedir(d);
    char **sorted = n ? malloc(n * sizeof(*sorted)) : NULL;
    if (n && sorted == NULL) {
        mg_buf_free(&names);
        return mix(h, "!", 1);
    }
    char *p = names.data;
    for (size_t i = 0; i < n; i++, p += strlen(p) + 1)
        sorted[i] = p;
    for (size_t i = 1; i < n; i++) { /* insertion sort: folders are small */
        char *x = sorted[i];
        size_t k = i;
        while (k > 0 && strcmp(sorted[k - 1], x) > 0) {
            sorted[k] = sorted[k - 1];
            k--;
        }
        sorted[k] = x;
    }
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, sorted[i]);
        struct stat st;
        h = mix(h, sorted[i], strlen(sorted[i]) + 1);
        if (lstat(path, &st) != 0)
            continue;
        h = stat_sig(h, &st);
        if (S_ISLNK(st.st_mode) && stat(path, &st) == 0) /* follow: the target's changes count */
            h = stat_sig(h, &st);
        if (S_ISDIR(st.st_mode) && depth < SIG_DEPTH_MAX)
            h = dir_sig(path, depth + 1, budget, h);
    }
    free(sorted);
    mg_buf_free(&names);
    return h;
}

static uint64_t file_sig(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 1;
    return stat_sig(2, &st);
}

static seen_model_t *find_model(mg_watch_t *w, const char *name, bool add)
{
    for (size_t i = 0; i < w->nmodels; i++) {
        if (strcmp(w->models[i].name, name) == 0)
            return &w->models[i];
    }
    if (!add)
        return NULL;
    seen_model_t *m = realloc(w->models, (w->nmodels + 1) * sizeof(*m));
    if (m == NULL)
        return NULL;
    w->models = m;
    m = &w->models[w->nmodels++];
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    return m;
}

static seen_version_t *find_version(seen_model_t *m, int64_t number, bool add)
{
    for (int i = 0; i < m->nversions; i++) {
        if (m->versions[i].number == number)
            return &m->versions[i];
    }
    if (!add)
        return NULL;
    seen_version_t *v = realloc(m->versions, (size_t)(m->nversions + 1) * sizeof(*v));
    if (v == NULL)
        return NULL;
    m->versions = v;
    v = &m->versions[m->nversions++];
    memset(v, 0, sizeof(*v));
    v->number = number;
    return v;
}

/* True when checksums are required and version `v` has neither SHA256SUMS nor a pin yet. */
static bool waits_for_checksums(mg_watch_t *w, const char *model, const mg_model_config_t *cfg,
                                int64_t number)
{
    if (!w->o.require_checksums)
        return false;
    for (int i = 0; i < cfg->npins; i++) {
        if (cfg->pins[i].version == number)
            return false;
    }
    char path[4600];
    snprintf(path, sizeof(path), "%s/%s/%lld/SHA256SUMS", w->repo_dir, model, (long long)number);
    struct stat st;
    return stat(path, &st) != 0;
}

/* Submits a rescan of `m` with its settled versions and waits for it. */
static void submit(mg_watch_t *w, seen_model_t *m, const int64_t *settled, int n, bool gone)
{
    mg_control_op_t op;
    memset(&op, 0, sizeof(op));
    op.kind = MG_CONTROL_RESCAN;
    snprintf(op.model, sizeof(op.model), "%s", m->name);
    op.settled = settled;
    op.nsettled = n;
    mg_log(MG_LOG_DEBUG, "watch", "rescan model=%s settled=%d%s", m->name, n,
           gone ? " (folder gone)" : "");
    int rc = mg_control_run(w->control, &op);
    if (rc != 0 && rc != MG_ECANCELED)
        mg_log(MG_LOG_WARN, "watch", "rescan model=%s: %s", m->name, op.err.msg);
}

/*
 * One scan: refreshes what every model folder holds, submits the models whose settled view
 * changed. With `seed`, the views are recorded as submitted (start-up loaded them). Returns
 * the earliest time a pending version settles (INT64_MAX: none).
 */
static int64_t scan(mg_watch_t *w, bool seed)
{
    int64_t now = now_ms(), next = INT64_MAX;
    mg_loader_t loader = {.repo_dir = w->repo_dir};
    mg_buf_t names = {0};
    size_t n = 0;
    if (mg_loader_list_models(&loader, &names, &n) != 0) {
        mg_log(MG_LOG_WARN, "watch", "cannot list repository dir=%s", w->repo_dir);
        return next;
    }
    inotify_add_watch(w->ino, w->repo_dir, WATCH_MASK | IN_ONLYDIR);
    for (size_t i = 0; i < w->nmodels; i++)
        w->models[i].present = false;
    const char *name = names.data;
    for (size_t i = 0; i < n; i++, name += strlen(name) + 1) {
        seen_model_t *m = find_model(w, name, true);
        if (m == NULL)
            continue;
        m->present = true;
        char dir[4400], path[4600];
        snprintf(dir, sizeof(dir), "%s/%s", w->repo_dir, name);
        inotify_add_watch(w->ino, dir, WATCH_MASK | IN_ONLYDIR);
        snprintf(path, sizeof(path), "%s/config.json", dir);
        m->config_sig = file_sig(path);
        mg_model_config_t cfg;
        mg_err_t cerr;
        if (mg_loader_read_config(&loader, name, &cfg, &cerr) != 0)
            mg_model_config_default(&cfg);

        int64_t found[MG_VERSIONS_MAX], settled[MG_VERSIONS_MAX];
        int nf = mg_loader_list_versions(&loader, name, found, MG_VERSIONS_MAX);
        if (nf < 0)
            nf = 0;
        for (int k = 0; k < m->nversions; k++)
            m->versions[k].present = false;
        int ns = 0;
        uint64_t view = mix(3, &m->config_sig, sizeof(m->config_sig));
        for (int k = 0; k < nf; k++) {
            seen_version_t *v = find_version(m, found[k], true);
            if (v == NULL)
                continue;
            v->present = true;
            char vdir[4600];
            snprintf(vdir, sizeof(vdir), "%s/%lld", dir, (long long)found[k]);
            inotify_add_watch(w->ino, vdir, WATCH_MASK | IN_ONLYDIR);
            int budget = SIG_ENTRIES_MAX;
            uint64_t sig = dir_sig(vdir, 0, &budget, 4);
            if (sig != v->sig) {
                v->sig = sig;
                v->changed_ms = seed ? now - w->o.debounce_ms : now;
            }
            int64_t due = v->changed_ms + w->o.debounce_ms;
            if (due > now) {
                next = due < next ? due : next;
                continue;
            }
            if (waits_for_checksums(w, name, &cfg, found[k]))
                continue; /* the next event (SHA256SUMS arriving) or poll looks again */
            settled[ns++] = found[k];
            view = mix(view, &found[k], sizeof(found[k]));
            view = mix(view, &v->sig, sizeof(v->sig));
        }
        /* Forget versions whose folder is gone (their absence is in the view). */
        int keep = 0;
        for (int k = 0; k < m->nversions; k++) {
            if (m->versions[k].present)
                m->versions[keep++] = m->versions[k];
        }
        m->nversions = keep;
        if (view == 0)
            view = 1;
        if (seed)
            m->submitted = view;
        else if (view != m->submitted) {
            m->submitted = view;
            submit(w, m, settled, ns, false);
        }
    }
    mg_buf_free(&names);
    /* Model folders that disappeared: submitted once, so the model leaves, then forgotten. */
    size_t keep = 0;
    for (size_t i = 0; i < w->nmodels; i++) {
        seen_model_t *m = &w->models[i];
        if (!m->present && !seed) {
            submit(w, m, NULL, 0, true);
            free(m->versions);
            continue;
        }
        w->models[keep++] = *m;
    }
    w->nmodels = keep;
    return next;
}

/* Reads and drops every pending inotify event; returns true when there was one. */
static bool drain_events(int fd)
{
    bool any = false;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r <= 0)
            return any;
        any = true;
    }
}

static void *watch_main(void *arg)
{
    mg_watch_t *w = arg;
    int64_t next_poll = now_ms() + (int64_t)w->o.poll_secs * 1000;
    int64_t next_settle = INT64_MAX, scan_at = INT64_MAX;
    for (;;) {
        int64_t now = now_ms();
        int64_t due = next_poll;
        if (next_settle < due)
            due = next_settle;
        if (scan_at < due)
            due = scan_at;
        int timeout = due <= now ? 0 : (int)(due - now > 60000 ? 60000 : due - now);
        struct pollfd p[2] = {{.fd = w->ino, .events = POLLIN},
                              {.fd = w->stopfd, .events = POLLIN}};
        int rc = poll(p, 2, timeout);
        if (rc < 0 && errno != EINTR)
            break;
        if (p[1].revents & POLLIN)
            break;
        now = now_ms();
        if ((p[0].revents & POLLIN) && drain_events(w->ino) && scan_at == INT64_MAX)
            scan_at = now + COALESCE_MS;
        if (now >= next_poll || now >= next_settle || now >= scan_at) {
            next_settle = scan(w, false);
            scan_at = INT64_MAX;
            next_poll = now_ms() + (int64_t)w->o.poll_secs * 1000;
        }
    }
    return NULL;
}

/* Closes and frees what a started watcher holds (its thread is not running). */
static void watch_free(mg_watch_t *w)
{
    close(w->ino);
    close(w->stopfd);
    for (size_t i = 0; i < w->nmodels; i++)
        free(w->models[i].versions);
    free(w->models);
    free(w->repo_dir);
    free(w);
}

int mg_watch_start(mg_watch_t **out, const mg_watch_opts_t *opts, mg_control_t *control,
                   mg_err_t *err)
{
    mg_watch_t *w = calloc(1, sizeof(*w));
    if (w == NULL || (w->repo_dir = strdup(opts->repo_dir)) == NULL) {
        free(w);
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    }
    w->o = *opts;
    w->o.repo_dir = w->repo_dir;
    if (w->o.poll_secs < 1)
        w->o.poll_secs = 1;
    if (w->o.debounce_ms < 0)
        w->o.debounce_ms = 0;
    w->control = control;
    w->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->ino < 0 || w->stopfd < 0) {
        int e = errno;
        if (w->ino >= 0)
            close(w->ino);
        if (w->stopfd >= 0)
            close(w->stopfd);
        free(w->repo_dir);
        free(w);
        return mg_err_set(err, MG_EIO, "repository watcher: %s", strerror(e));
    }
    scan(w, true);
    if (pthread_create(&w->tid, NULL, watch_main, w) != 0) {
        watch_free(w);
        return mg_err_set(err, MG_EIO, "cannot start the repository watcher");
    }
    mg_log(MG_LOG_INFO, "watch", "watching repository dir=%s poll_secs=%d debounce_ms=%d",
           w->repo_dir, w->o.poll_secs, w->o.debounce_ms);
    *out = w;
    return 0;
}

void mg_watch_stop(mg_watch_t *w)
{
    if (w == NULL)
        return;
    uint64_t one = 1;
    if (write(w->stopfd, &one, sizeof(one)) < 0) {
        /* the eventfd cannot be full: one write */
    }
    pthread_join(w->tid, NULL);
    watch_free(w);
}
