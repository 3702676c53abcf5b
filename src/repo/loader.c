#include "repo/loader.h"

#include "core/file.h"
#include "core/log.h"
#include "obs/metrics.h"
#include "obs/trace.h"
#include "repo/extdata.h"
#include "repo/version_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/*
 * Reasons are shown to clients (the repository index, readiness): files are named relative to
 * the repository there, and with their full path only in the log.
 */
static void strip_repo_dir(const mg_loader_t *l, char *msg)
{
    size_t n = strlen(l->repo_dir);
    char *p;
    while (n > 0 && (p = strstr(msg, l->repo_dir)) != NULL) {
        size_t cut = n + (p[n] == '/');
        memmove(p, p + cut, strlen(p + cut) + 1);
    }
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
    if (rc != 0) {
        mg_log(MG_LOG_ERROR, "repo", "cannot read config model=%s (%s)", model, ferr.msg);
        strip_repo_dir(l, ferr.msg);
        return mg_err_set(err, MG_ECONFIG, "%s", ferr.msg);
    }
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

/*
 * True when two configs build the same version: the same sessions, the same breaker settings
 * (a version's breaker is made with them) and the same admission bound and place of execution
 * (serve/admit.h reads them from the version). The traffic policy and the pins live with
 * the model (pins are checked against the recorded digests instead).
 */
static bool same_session_config(const mg_model_config_t *a, const mg_model_config_t *b)
{
    return a->max_batch_size == b->max_batch_size && a->instance_count == b->instance_count &&
           a->intra_op_threads == b->intra_op_threads && a->warmup_runs == b->warmup_runs &&
           a->batching == b->batching && a->batch_max == b->batch_max &&
           memcmp(&a->breaker, &b->breaker, sizeof(a->breaker)) == 0 &&
           a->max_inflight == b->max_inflight && a->execution == b->execution &&
           a->dynamic_batching == b->dynamic_batching && a->queue_delay_us == b->queue_delay_us &&
           a->npreferred == b->npreferred &&
           memcmp(a->preferred, b->preferred, sizeof(a->preferred)) == 0 &&
           a->ninputs == b->ninputs && a->noutputs == b->noutputs &&
           memcmp(a->inputs, b->inputs, (size_t)a->ninputs * sizeof(a->inputs[0])) == 0 &&
           memcmp(a->outputs, b->outputs, (size_t)a->noutputs * sizeof(a->outputs[0])) == 0;
}

/*
 * The rows one opportunistically joined Run may hold (0: off): the model must have a batch
 * dim (max_batch_size > 0, every input and output dynamic in its first dim) and config.json
 * must not turn batching off; unless it turns it on, a joined Run must also have answered
 * exactly as separate Runs here (some kernels round differently at other batch sizes), and a
 * Run must be cheap (a compute-bound model gains nothing from joined Runs on a CPU, and a
 * longer Run holds up the loop's other connections).
 */
static int64_t batch_rows(const mg_model_version_t *v, int64_t run_us, const mg_err_t *run_err)
{
    const mg_model_config_t *cfg = &v->config;
    if (cfg->batching == MG_BATCHING_OFF || cfg->max_batch_size <= 0 ||
        !mg_session_batchable(v->sessions[0]))
        return 0;
    int64_t rows = cfg->batch_max > 0 && cfg->batch_max < cfg->max_batch_size ? cfg->batch_max
                                                                              : cfg->max_batch_size;
    if (cfg->batching == MG_BATCHING_AUTO) {
        mg_err_t err = *run_err;
        int same = run_us < 0 ? err.code : mg_session_batch_agrees(v->sessions[0], &err);
        if (same == 1 && run_us > MG_LOADER_BATCH_RUN_MAX_US) {
            mg_log(MG_LOG_INFO, "repo",
                   "opportunistic batching off model=%s version=%s (a Run took %lld us at load, "
                   "over %d: joining Runs of a heavy model only holds its loop longer; "
                   "config.json \"batching\": {\"opportunistic\": true} turns it on)",
                   v->model_name, v->text, (long long)run_us, MG_LOADER_BATCH_RUN_MAX_US);
            return 0;
        }
        if (same != 1) {
            mg_log(MG_LOG_INFO, "repo",
                   "opportunistic batching off model=%s version=%s (%s; config.json "
                   "\"batching\": {\"opportunistic\": true} turns it on)",
                   v->model_name, v->text,
                   same == 0 ? "a joined Run answered differently from separate Runs" : err.msg);
            return 0;
        }
    }
    return rows;
}

/* The file of one load: what verification, the sandbox and the sessions all get. */
typedef struct load_file {
    char name[MG_PIN_NAME_MAX * 2]; /* relative to the version folder */
    char *bytes;
    size_t len;
    mg_file_id_t id;
    unsigned char sha256[32];
} load_file_t;

/* Everything one load holds; freed by load_free. */
typedef struct load {
    char dir[4096];
    load_file_t files[1 + MG_EXTDATA_FILES_MAX];
    size_t nfiles;
    char *sums; /* SHA256SUMS text, or NULL */
    size_t sums_len;
    mg_file_id_t sums_id;
    mg_file_id_t dir_id;
} load_t;

static void load_free(load_t *ld)
{
    for (size_t i = 0; i < ld->nfiles; i++)
        free(ld->files[i].bytes);
    free(ld->sums);
}

/*
 * Reads a whole file and records the identity of what was read: the same before and after the
 * read, or the file changed under the reader (a copy in progress) and the load fails, to be
 * tried again once it has settled (its identity then differs from the recorded one, zeroed).
 */
static int read_file_id(const char *path, size_t max, char **out, size_t *len, mg_file_id_t *id,
                        mg_err_t *err)
{
    mg_file_id_t before;
    if (mg_file_id_of(path, &before) != 0)
        memset(&before, 0, sizeof(before));
    int rc = mg_file_read(path, max, out, len, err);
    if (rc != 0)
        return rc;
    if (mg_file_id_of(path, id) != 0 || !mg_file_id_equal(&before, id)) {
        memset(id, 0, sizeof(*id));
        free(*out);
        *out = NULL;
        const char *name = strrchr(path, '/');
        return mg_err_set(err, MG_EIO,
                          "%s changed while it was being read (tried again once it "
                          "has settled)",
                          name ? name + 1 : path);
    }
    return 0;
}

/* Reads SHA256SUMS when the folder has one. */
static int read_sums(load_t *ld, mg_err_t *err)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/SHA256SUMS", ld->dir);
    memset(&ld->sums_id, 0, sizeof(ld->sums_id));
    mg_err_t ferr;
    int rc = read_file_id(path, 1 << 20, &ld->sums, &ld->sums_len, &ld->sums_id, &ferr);
    if (rc == MG_ENOENT)
        return 0;
    if (rc != 0)
        return mg_err_set(err, MG_EMODEL, "SHA256SUMS: %s", ferr.msg);
    return 0;
}

/* Verify: read model.onnx and its external data once, hash, check the paths and digests. */
static int verify(const mg_loader_t *l, load_t *ld, const mg_model_config_t *cfg, int64_t number,
                  mg_err_t *err)
{
    load_file_t *m = &ld->files[0];
    char path[4200];
    snprintf(m->name, sizeof(m->name), "model.onnx");
    snprintf(path, sizeof(path), "%s/model.onnx", ld->dir);
    ld->nfiles = 1;
    mg_err_t ferr;
    if (mg_file_id_of(ld->dir, &ld->dir_id) != 0)
        memset(&ld->dir_id, 0, sizeof(ld->dir_id));
    if (read_file_id(path, MG_MODEL_FILE_MAX, &m->bytes, &m->len, &m->id, &ferr) != 0)
        return mg_err_set(err, MG_EMODEL, "%s", ferr.msg);
    if (m->len == 0)
        return mg_err_set(err, MG_EMODEL, "model.onnx is empty");
    mg_buf_t names = {0};
    size_t n = 0;
    int rc = mg_extdata_list(m->bytes, m->len, &names, &n, err);
    const char *name = names.data;
    for (size_t i = 0; rc == 0 && i < n; i++, name += strlen(name) + 1) {
        load_file_t *f = &ld->files[ld->nfiles];
        char real[4096];
        if ((rc = mg_extdata_resolve(ld->dir, name, real, sizeof(real), err)) != 0)
            break;
        snprintf(f->name, sizeof(f->name), "%s", name);
        if (read_file_id(real, MG_MODEL_FILE_MAX, &f->bytes, &f->len, &f->id, &ferr) != 0) {
            rc = mg_err_set(err, MG_EMODEL, "external data '%s': %s", name, ferr.msg);
            break;
        }
        ld->nfiles++;
    }
    mg_buf_free(&names);
    if (rc != 0)
        return rc == MG_ENOMEM ? rc : (err->code = MG_EMODEL);
    mg_verify_file_t vf[1 + MG_EXTDATA_FILES_MAX];
    for (size_t i = 0; i < ld->nfiles; i++) {
        load_file_t *f = &ld->files[i];
        unsigned int dlen = 0;
        if (!EVP_Digest(f->bytes, f->len, f->sha256, &dlen, EVP_sha256(), NULL))
            return mg_err_set(err, MG_EMODEL, "sha-256 of %s failed", f->name);
        vf[i].name = f->name;
        memcpy(vf[i].sha256, f->sha256, 32);
    }
    if ((rc = read_sums(ld, err)) != 0)
        return rc;
    return mg_verify_files(vf, ld->nfiles, ld->sums, ld->sums_len, cfg, number,
                           l->require_checksums, err);
}

/* Records what `v` was built from, so a later reload can tell whether anything changed. */
static int record_files(mg_model_version_t *v, const load_t *ld)
{
    version_file_t *files = calloc(ld->nfiles ? ld->nfiles : 1, sizeof(*files));
    if (files == NULL)
        return MG_ENOMEM;
    for (size_t i = 0; i < ld->nfiles; i++) {
        if ((files[i].name = strdup(ld->files[i].name)) == NULL) {
            while (i-- > 0)
                free(files[i].name);
            free(files);
            return MG_ENOMEM;
        }
        files[i].id = ld->files[i].id;
        memcpy(files[i].sha256, ld->files[i].sha256, 32);
    }
    for (size_t i = 0; i < v->nfiles; i++)
        free(v->files[i].name);
    free(v->files);
    v->files = files;
    v->nfiles = ld->nfiles;
    v->sums_id = ld->sums_id;
    v->dir_id = ld->dir_id;
    return 0;
}

/* The identity now of file `name` of the version folder (zeroed when it is missing). */
static void current_id(const char *dir, const char *name, mg_file_id_t *id)
{
    char path[8400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (mg_file_id_of(path, id) != 0)
        memset(id, 0, sizeof(*id));
}

/* True when every file `v` was built from, and SHA256SUMS, still has the same identity. */
static bool unchanged_on_disk(const mg_model_version_t *v, const char *dir)
{
    if (v->nfiles == 0)
        return false;
    for (size_t i = 0; i < v->nfiles; i++) {
        mg_file_id_t now;
        current_id(dir, v->files[i].name, &now);
        if (!mg_file_id_equal(&now, &v->files[i].id))
            return false;
    }
    mg_file_id_t sums, folder;
    current_id(dir, "SHA256SUMS", &sums);
    if (mg_file_id_of(dir, &folder) != 0)
        memset(&folder, 0, sizeof(folder));
    return mg_file_id_equal(&sums, &v->sums_id) && mg_file_id_equal(&folder, &v->dir_id);
}

/* Checks `v`'s recorded digests against the current SHA256SUMS and `cfg`'s pins. */
static int reverify(const mg_loader_t *l, const mg_model_version_t *v, const char *dir,
                    const mg_model_config_t *cfg, mg_err_t *err)
{
    load_t ld;
    memset(&ld, 0, sizeof(ld));
    snprintf(ld.dir, sizeof(ld.dir), "%s", dir);
    int rc = read_sums(&ld, err);
    mg_verify_file_t vf[1 + MG_EXTDATA_FILES_MAX];
    for (size_t i = 0; rc == 0 && i < v->nfiles && i < 1 + MG_EXTDATA_FILES_MAX; i++) {
        vf[i].name = v->files[i].name;
        memcpy(vf[i].sha256, v->files[i].sha256, 32);
    }
    if (rc == 0)
        rc = mg_verify_files(vf, v->nfiles, ld.sums, ld.sums_len, cfg, v->number,
                             l->require_checksums, err);
    load_free(&ld);
    return rc;
}

/* True when `ld` read exactly the files `v` was built from, with the same digests. */
static bool same_digests(const mg_model_version_t *v, const load_t *ld)
{
    if (v->nfiles != ld->nfiles)
        return false;
    for (size_t i = 0; i < ld->nfiles; i++) {
        if (strcmp(v->files[i].name, ld->files[i].name) != 0 ||
            memcmp(v->files[i].sha256, ld->files[i].sha256, 32) != 0)
            return false;
    }
    return true;
}

/* Intra-op threads of an own pool, capped at the cores there are (never oversubscribed). */
static int capped_threads(int wanted)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    return wanted > cores ? (int)cores : wanted;
}

/* Creates and warms up the version's sessions from the loaded bytes; fills v->reason. */
static void build_sessions(const mg_loader_t *l, mg_model_version_t *v, const load_t *ld)
{
    const mg_model_config_t *cfg = &v->config;
    mg_err_t err;
    mg_err_clear(&err);
    /*
     * A small model gets a session per request thread: threads sharing one session contend
     * inside ONNX Runtime (its locks and arena) on every Run; the memory is small by
     * definition. instance_count is the floor.
     */
    bool small = ld->files[0].len <= MG_LOADER_SMALL_MODEL_BYTES;
    int nsessions = cfg->instance_count;
    if (l->loop_threads > nsessions && small)
        nsessions = l->loop_threads;
    v->sessions = calloc((size_t)nsessions, sizeof(*v->sessions));
    mg_session_file_t ext[MG_EXTDATA_FILES_MAX];
    for (size_t i = 1; i < ld->nfiles; i++)
        ext[i - 1] = (mg_session_file_t){ld->files[i].name, ld->files[i].bytes, ld->files[i].len};
    if (v->sessions == NULL) {
        mg_str_format(v->reason, sizeof(v->reason), "out of memory");
        return;
    }
    mg_session_opts_t so = {.intra_op_threads = capped_threads(cfg->intra_op_threads),
                            .inter_op_threads = 0,
                            .external = ext,
                            .nexternal = ld->nfiles - 1,
                            .no_cpu_arena = small};
    for (int i = 0; i < nsessions; i++) {
        if (mg_session_new(&v->sessions[i], ld->files[0].bytes, ld->files[0].len, &so, &err) != 0) {
            mg_str_format(v->reason, sizeof(v->reason), "%s", err.msg);
            return;
        }
        v->nsessions++;
        const mg_session_t *s = v->sessions[0];
        if (i == 0 &&
            mg_model_config_check_io(cfg, mg_session_inputs(s), mg_session_ninputs(s),
                                     mg_session_outputs(s), mg_session_noutputs(s), &err) != 0) {
            mg_str_format(v->reason, sizeof(v->reason), "%s", err.msg);
            return;
        }
        if (cfg->warmup_runs > 0 &&
            mg_session_warmup(v->sessions[i], cfg->warmup_runs, &err) != 0) {
            mg_str_format(v->reason, sizeof(v->reason), "warm-up failed: %s", err.msg);
            return;
        }
    }
    /* The quickest of five warm Runs, so a busy machine's preemption does not decide. */
    int64_t run_us = -1;
    mg_err_t run_err;
    mg_err_clear(&run_err);
    if (cfg->batching == MG_BATCHING_AUTO || cfg->execution == MG_EXECUTION_AUTO) {
        run_us = INT64_MAX;
        for (int i = 0; i < 5 && run_us >= 0; i++) {
            int64_t t0 = mg_obs_now_ns();
            if (mg_session_warmup(v->sessions[0], 1, &run_err) != 0)
                run_us = -1;
            int64_t us = (mg_obs_now_ns() - t0) / 1000;
            run_us = run_us >= 0 && us < run_us ? us : run_us;
        }
    }
    v->batch_rows = batch_rows(v, run_us, &run_err);
    v->on_pool = cfg->execution == MG_EXECUTION_POOL ||
                 (cfg->execution == MG_EXECUTION_AUTO && run_us > MG_LOADER_POOL_RUN_MIN_US);
    if (cfg->execution == MG_EXECUTION_AUTO && v->on_pool && l->pool)
        mg_log(MG_LOG_INFO, "repo",
               "execution on the pool model=%s version=%s (a Run took %lld us at load, over %d; "
               "config.json \"execution\": \"inline\" keeps it on the loops)",
               v->model_name, v->text, (long long)run_us, MG_LOADER_POOL_RUN_MIN_US);
    v->state = MG_MODEL_READY;
}

/* The labels files config.json names for outputs (in the model folder); fills v->reason. */
static int read_labels(const mg_loader_t *l, mg_model_version_t *v)
{
    for (int i = 0; i < v->config.noutputs; i++) {
        const char *file = v->config.outputs[i].label_filename;
        if (file[0] == '\0')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s/%s", l->repo_dir, v->model_name, file);
        mg_err_t err;
        if (mg_labels_read(path, &v->labels[i], &err) != 0) {
            strip_repo_dir(l, err.msg); /* messages name files in the repository, not where it is */
            mg_str_format(v->reason, sizeof(v->reason), "output '%s': label_filename: %s",
                          v->config.outputs[i].name, err.msg);
            return MG_ECONFIG;
        }
    }
    return 0;
}

/* Sandboxed validation of the loaded bytes; fills v->reason on failure. */
static int validate(const mg_loader_t *l, mg_model_version_t *v, const load_t *ld)
{
    mg_session_file_t ext[MG_EXTDATA_FILES_MAX];
    for (size_t i = 1; i < ld->nfiles; i++)
        ext[i - 1] = (mg_session_file_t){ld->files[i].name, ld->files[i].bytes, ld->files[i].len};
    mg_sandbox_job_t job = {.model = ld->files[0].bytes,
                            .len = ld->files[0].len,
                            .external = ext,
                            .nexternal = ld->nfiles - 1,
                            .warmup_runs = v->config.warmup_runs};
    mg_err_t err;
    mg_err_clear(&err);
    int rc = mg_sandbox_validate(l->sandbox, &job, &err);
    if (rc != 0) {
        strip_repo_dir(l, err.msg);
        mg_str_format(v->reason, sizeof(v->reason), "%s", err.msg);
    }
    return rc;
}

/*
 * The one place where a load's outcome and duration are known (verify + sandbox + sessions +
 * warm-up, or the decision to keep what serves): counted in
 * modelgate_model_load_duration_seconds, sent as a span when tracing, and logged.
 */
static void load_finished(const char *model, int64_t number, mg_obs_load_outcome_t outcome,
                          int64_t start_ns, const mg_model_version_t *v)
{
    int64_t end_ns = mg_obs_now_ns();
    mg_obs_model_load(model, number, outcome, end_ns - start_ns);
    /* Interned now, so requests a policy routes here are counted even if it never serves. */
    mg_obs_series_t id;
    mg_obs_series_get((mg_str_t){model, strlen(model)}, number, &id);
    long long ms = (long long)((end_ns - start_ns) / 1000000);
    if (outcome == MG_OBS_LOAD_FAILURE)
        mg_log(MG_LOG_ERROR, "repo", "load failed model=%s version=%lld ms=%lld (%s)", model,
               (long long)number, ms, v->reason);
    else if (outcome == MG_OBS_LOAD_SUCCESS)
        mg_log(MG_LOG_INFO, "repo", "version ready model=%s version=%lld instances=%d ms=%lld",
               model, (long long)number, v->nsessions, ms);
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

/* Ends a load that keeps `prev` (unchanged): accounted, the log context cleared. */
static mg_model_version_t *keep(const char *model, int64_t number, int64_t start_ns,
                                mg_model_version_t *prev)
{
    load_finished(model, number, MG_OBS_LOAD_UNCHANGED, start_ns, prev);
    mg_log_context_set(NULL);
    return prev;
}

mg_model_version_t *mg_loader_load_version(const mg_loader_t *l, const char *model, int64_t number,
                                           const mg_model_config_t *cfg, mg_model_version_t *prev,
                                           int flags)
{
    int64_t start_ns = mg_obs_now_ns();
    char vtext[24];
    snprintf(vtext, sizeof(vtext), "%lld", (long long)number);
    mg_log_context_t log = {.model = {model, strlen(model)}, .version = {vtext, strlen(vtext)}};
    mg_log_context_set(&log);
    load_t ld;
    memset(&ld, 0, sizeof(ld));
    snprintf(ld.dir, sizeof(ld.dir), "%s/%s/%lld", l->repo_dir, model, (long long)number);
    mg_err_t err;
    mg_err_clear(&err);

    /* Nothing changed on disk: keep what serves (if its digests still pass), and do not retry
       a failure with the very same files and config. */
    if (prev != NULL && same_session_config(&prev->config, cfg) &&
        unchanged_on_disk(prev, ld.dir)) {
        if (prev->state == MG_MODEL_READY && reverify(l, prev, ld.dir, cfg, &err) == 0)
            return keep(model, number, start_ns, prev);
        if (prev->state != MG_MODEL_READY && !(flags & MG_LOADER_RETRY_FAILED) &&
            memcmp(&prev->config, cfg, sizeof(*cfg)) == 0)
            return keep(model, number, start_ns, prev);
    }

    mg_model_version_t *v = mg_model_version_alloc(model, number, cfg);
    if (v == NULL) {
        mg_log_context_set(NULL);
        return NULL;
    }
    mg_err_clear(&err);
    int rc = verify(l, &ld, cfg, number, &err);
    if (rc == MG_ENOMEM) {
        load_free(&ld);
        mg_model_version_free(v);
        mg_log_context_set(NULL);
        return NULL;
    }
    if (rc == 0 && prev != NULL && prev->state == MG_MODEL_READY &&
        same_session_config(&prev->config, cfg) && same_digests(prev, &ld)) {
        /* Touched but the same bytes: the version that serves stays. */
        record_files(prev, &ld);
        load_free(&ld);
        mg_model_version_free(v);
        return keep(model, number, start_ns, prev);
    }
    if (l->loading != NULL)
        l->loading(l->loading_ctx, model, number);
    if (record_files(v, &ld) != 0) {
        load_free(&ld);
        mg_model_version_free(v);
        mg_log_context_set(NULL);
        return NULL;
    }
    if (ld.nfiles > 0)
        memcpy(v->sha256, ld.files[0].sha256, 32);
    if (rc != 0) {
        strip_repo_dir(l, err.msg);
        mg_str_format(v->reason, sizeof(v->reason), "%s", err.msg);
    } else if (read_labels(l, v) == 0 && (l->sandbox == NULL || validate(l, v, &ld) == 0)) {
        build_sessions(l, v, &ld);
    }
    load_free(&ld);
    if (v->state != MG_MODEL_READY) {
        for (int i = 0; i < v->nsessions; i++)
            mg_session_free(v->sessions[i]);
        free(v->sessions);
        v->sessions = NULL;
        v->nsessions = 0;
    }
    load_finished(model, number,
                  v->state == MG_MODEL_READY ? MG_OBS_LOAD_SUCCESS : MG_OBS_LOAD_FAILURE, start_ns,
                  v);
    mg_log_context_set(NULL);
    return v;
}
