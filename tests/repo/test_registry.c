#include "repo/registry.h"

#include "core/log.h"
#include "infer/session.h"
#include "support/support.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/rcu.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static char tmp[256];
static char gen[300];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    if (mg_test_tmpdir("mg-registry-", tmp, sizeof(tmp)) != 0)
        return -1;
    snprintf(gen, sizeof(gen), "%s/gen", tmp);
    mg_test_sh("%s %s/scripts/gen_test_models.py %s >/dev/null", mg_test_python(),
               mg_test_source_dir(), gen);
    /* repo: m (versions 1, 2, 3 of identity FP32; config: all, default 2), solo (one version). */
    mg_test_sh("mkdir -p %s/repo/m/1 %s/repo/m/2 %s/repo/m/3 %s/repo/solo/1 %s/repo/m/notaversion",
               tmp, tmp, tmp, tmp, tmp);
    for (int v = 1; v <= 3; v++)
        mg_test_sh("cp %s/identity_FP32.onnx %s/repo/m/%d/model.onnx", gen, tmp, v);
    mg_test_sh("cp %s/identity_INT64.onnx %s/repo/solo/1/model.onnx", gen, tmp);
    char path[400];
    snprintf(path, sizeof(path), "%s/repo/m/config.json", tmp);
    write_file(path,
               "{\"version_policy\":{\"all\":{}},\"default_version\":2,\"warmup\":{\"runs\":1}}");
    mg_log_configure(MG_LOG_ERROR, 0);
    mg_infer_env_opts_t eo = {.intra_op_threads = 1, .inter_op_threads = 1, .log_level = 3};
    mg_err_t err;
    if (mg_infer_env_init(&eo, &err) != 0)
        return -1;
    rcu_register_thread();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rcu_unregister_thread();
    mg_infer_env_deinit();
    mg_test_sh("rm -rf %s", tmp);
    return 0;
}

static mg_registry_t *new_registry(void)
{
    char repo[300];
    snprintf(repo, sizeof(repo), "%s/repo", tmp);
    mg_registry_t *r = NULL;
    mg_err_t err;
    mg_registry_opts_t o = {.repo_dir = repo};
    assert_int_equal(mg_registry_new(&r, &o, &err), 0);
    return r;
}

static void test_missing_repository(void **state)
{
    (void)state;
    mg_registry_t *r = NULL;
    mg_err_t err;
    mg_registry_opts_t o = {.repo_dir = "/nonexistent/repo"};
    assert_int_equal(mg_registry_new(&r, &o, &err), MG_ENOENT);
    assert_null(r);
    assert_non_null(strstr(err.msg, "/nonexistent/repo"));
}

static void test_load_all_and_acquire(void **state)
{
    (void)state;
    mg_registry_t *r = new_registry();
    assert_false(mg_registry_all_ready(r));
    assert_int_equal(mg_registry_load_all(r), 0);
    assert_true(mg_registry_all_ready(r));

    mg_model_version_t *v = NULL;
    mg_err_t err;
    assert_int_equal(mg_registry_acquire(r, mg_test_str("m"), 0, &v, &err), 0);
    assert_int_equal(mg_model_version_number(v), 2); /* the configured default, not the highest */
    assert_string_equal(mg_model_version_model(v), "m");
    assert_int_equal(mg_model_version_state(v), MG_MODEL_READY);
    mg_model_version_unpin(v);
    assert_int_equal(mg_registry_acquire(r, mg_test_str("m"), 3, &v, &err), 0);
    assert_string_equal(mg_model_version_text(v), "3");
    mg_model_version_unpin(v);
    assert_int_equal(mg_registry_acquire(r, mg_test_str("solo"), 0, &v, &err), 0);
    assert_int_equal(mg_model_version_number(v), 1);
    mg_model_version_unpin(v);

    assert_int_equal(mg_registry_acquire(r, mg_test_str("nope"), 0, &v, &err), MG_ENOMODEL);
    assert_null(v);
    assert_string_equal(err.msg, "Request for unknown model: 'nope' is not found");
    assert_int_equal(mg_registry_acquire(r, mg_test_str("m"), 9, &v, &err), MG_ENOVERSION);
    assert_string_equal(err.msg, "unknown version '9' of model 'm'");

    rcu_read_lock();
    const mg_registry_snapshot_t *s = mg_registry_snapshot(r);
    assert_int_equal(mg_registry_snapshot_count(s), 2);
    assert_string_equal(mg_model_entry_name(mg_registry_snapshot_model(s, 0)), "m");
    assert_int_equal(mg_model_entry_nversions(mg_registry_snapshot_model(s, 0)), 3);
    mg_rcu_read_unlock();

    mg_buf_t names = {0};
    size_t n = 0;
    assert_int_equal(mg_loader_list_models(mg_registry_loader(r), &names, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(names.data, "m");
    assert_string_equal(names.data + 2, "solo");
    mg_buf_free(&names);
    mg_registry_free(r);
}

static void test_unload_drains_pinned_version(void **state)
{
    (void)state;
    mg_registry_t *r = new_registry();
    mg_registry_load_all(r);
    mg_model_version_t *v = NULL;
    mg_err_t err;
    assert_int_equal(mg_registry_acquire(r, mg_test_str("solo"), 0, &v, &err), 0);
    assert_int_equal(mg_registry_unload(r, "solo", &err), 0);
    /* Still pinned: the version drains, and its session must still run after the unload. */
    assert_int_equal(mg_model_version_pins(v), 1);
    assert_int_equal(mg_registry_reap(r), 1);
    assert_non_null(mg_model_version_session(v));
    mg_model_version_t *w = NULL;
    assert_int_equal(mg_registry_acquire(r, mg_test_str("solo"), 0, &w, &err), MG_EUNAVAIL);
    assert_non_null(strstr(err.msg, "unloaded"));
    mg_model_version_unpin(v); /* the last pin: the next reap frees it */
    assert_int_equal(mg_registry_reap(r), 0);
    assert_int_equal(mg_registry_unload(r, "ghost", &err), MG_ENOMODEL);
    assert_true(
        mg_registry_all_ready(r)); /* unloaded on purpose does not make the server unready */
    assert_int_equal(mg_registry_load(r, "solo", &err), 0);
    assert_int_equal(mg_registry_acquire(r, mg_test_str("solo"), 0, &w, &err), 0);
    mg_model_version_unpin(w);
    mg_registry_free(r);
}

static void test_reload_keeps_unchanged_and_replaces_changed(void **state)
{
    (void)state;
    mg_registry_t *r = new_registry();
    mg_registry_load_all(r);
    mg_err_t err;
    mg_model_version_t *v1 = NULL, *v3 = NULL;
    assert_int_equal(mg_registry_acquire(r, mg_test_str("m"), 1, &v1, &err), 0);
    assert_int_equal(mg_registry_acquire(r, mg_test_str("m"), 3, &v3, &err), 0);
    /* Change version 3's bytes; version 1 is untouched. */
    mg_test_sh("cp %s/identity_FP64.onnx %s/repo/m/3/model.onnx", gen, tmp);
    assert_int_equal(mg_registry_load(r, "m", &err), 0);
    mg_model_version_t *n1 = NULL, *n3 = NULL;
    assert_int_equal(mg_registry_acquire(r, mg_test_str("m"), 1, &n1, &err), 0);
    assert_int_equal(mg_registry_acquire(r, mg_test_str("m"), 3, &n3, &err), 0);
    assert_ptr_equal(n1, v1);
    assert_ptr_not_equal(n3, v3);
    assert_int_equal(mg_registry_reap(r), 1); /* the old version 3 drains while pinned */
    assert_int_equal(mg_session_input(mg_model_version_session(n3), 0)->dtype, MG_DT_FP64);
    assert_int_equal(mg_session_input(mg_model_version_session(v3), 0)->dtype, MG_DT_FP32);
    mg_model_version_unpin(v1);
    mg_model_version_unpin(v3);
    mg_model_version_unpin(n1);
    mg_model_version_unpin(n3);
    assert_int_equal(mg_registry_reap(r), 0);
    mg_test_sh("cp %s/identity_FP32.onnx %s/repo/m/3/model.onnx", gen, tmp);
    mg_registry_free(r);
}

static void test_failures_are_reported_and_keep_serving(void **state)
{
    (void)state;
    mg_test_sh("mkdir -p %s/repo/bad/1 && echo garbage > %s/repo/bad/1/model.onnx", tmp, tmp);
    mg_registry_t *r = new_registry();
    assert_int_equal(mg_registry_load_all(r), 1);
    assert_false(mg_registry_all_ready(r));
    mg_model_version_t *v = NULL;
    mg_err_t err;
    assert_int_equal(mg_registry_acquire(r, mg_test_str("bad"), 0, &v, &err), MG_EUNAVAIL);
    assert_int_equal(mg_registry_acquire(r, mg_test_str("bad"), 1, &v, &err), MG_EUNAVAIL);
    assert_int_equal(mg_registry_acquire(r, mg_test_str("m"), 0, &v, &err), 0);
    mg_model_version_unpin(v);
    rcu_read_lock();
    const mg_model_entry_t *e =
        mg_registry_snapshot_find(mg_registry_snapshot(r), mg_test_str("bad"));
    assert_non_null(e);
    assert_int_equal(mg_model_entry_state(e), MG_MODEL_UNAVAILABLE);
    assert_int_equal(mg_model_version_state(mg_model_entry_version(e, 0)), MG_MODEL_FAILED);
    assert_true(strlen(mg_model_version_reason(mg_model_entry_version(e, 0))) > 0);
    mg_rcu_read_unlock();

    /* A reload that fails leaves the serving versions in place. */
    char path[400];
    snprintf(path, sizeof(path), "%s/repo/m/config.json", tmp);
    write_file(path, "{\"instance_count\": \"two\"}");
    assert_int_equal(mg_registry_load(r, "m", &err), MG_ECONFIG);
    assert_non_null(strstr(err.msg, "instance_count"));
    assert_int_equal(mg_registry_acquire(r, mg_test_str("m"), 2, &v, &err), 0);
    mg_model_version_unpin(v);
    write_file(path,
               "{\"version_policy\":{\"all\":{}},\"default_version\":2,\"warmup\":{\"runs\":1}}");
    assert_int_equal(mg_registry_load(r, "nosuch", &err), MG_ENOMODEL);
    assert_int_equal(mg_registry_load(r, "../m", &err), MG_ENOMODEL);
    mg_test_sh("rm -rf %s/repo/bad", tmp);
    mg_registry_free(r);
}

/* The index rows of `model` as "version:STATE" joined by spaces, into `out`. */
typedef struct rows {
    const char *model;
    char text[512];
} rows_t;

static int collect(void *ctx, const mg_registry_row_t *row)
{
    rows_t *r = ctx;
    if (strcmp(row->name, r->model) != 0)
        return 0;
    size_t n = strlen(r->text);
    snprintf(r->text + n, sizeof(r->text) - n, "%s%s:%s", n ? " " : "",
             row->version ? row->version : "-", row->known ? mg_model_state_name(row->state) : "?");
    return 0;
}

static const char *index_of(mg_registry_t *r, rows_t *rows, const char *model)
{
    memset(rows, 0, sizeof(*rows));
    rows->model = model;
    assert_int_equal(mg_registry_index(r, false, collect, rows), 0);
    return rows->text;
}

/* The version object the registry lists for model `m`, version `v` (not pinned). */
static const mg_model_version_t *listed(mg_registry_t *r, const char *m, int64_t v)
{
    rcu_read_lock();
    const mg_model_entry_t *e = mg_registry_snapshot_find(mg_registry_snapshot(r), mg_test_str(m));
    const mg_model_version_t *found = e ? mg_model_entry_find_version(e, v) : NULL;
    mg_rcu_read_unlock();
    return found;
}

static void test_failed_version_never_displaces_the_serving_one(void **state)
{
    (void)state;
    mg_test_sh("mkdir -p %s/repo/f/1 && cp %s/identity_FP32.onnx %s/repo/f/1/model.onnx", tmp, gen,
               tmp);
    mg_registry_t *r = new_registry();
    mg_err_t err;
    rows_t rows;
    assert_int_equal(mg_registry_load(r, "f", &err), 0);
    const mg_model_version_t *v1 = listed(r, "f", 1);
    /* Unchanged on disk: the same version, nothing read. */
    assert_int_equal(mg_registry_rescan(r, "f", NULL, 0, &err), 0);
    assert_ptr_equal(listed(r, "f", 1), v1);
    /* Touched, same bytes: still the same version. */
    mg_test_sh("touch %s/repo/f/1/model.onnx", tmp);
    assert_int_equal(mg_registry_load(r, "f", &err), 0);
    assert_ptr_equal(listed(r, "f", 1), v1);

    /* Version 2 is garbage: refused, version 1 keeps serving, the index says why. */
    mg_test_sh("mkdir -p %s/repo/f/2 && echo garbage > %s/repo/f/2/model.onnx", tmp, tmp);
    assert_int_equal(mg_registry_load(r, "f", &err), MG_EMODEL);
    assert_non_null(
        strstr(err.msg, "version 2 of 'f' failed (version 1 serves): model.onnx is not"));
    mg_model_version_t *v = NULL;
    assert_int_equal(mg_registry_acquire(r, mg_test_str("f"), 0, &v, &err), 0);
    assert_int_equal(mg_model_version_number(v), 1);
    mg_model_version_unpin(v);
    assert_string_equal(index_of(r, &rows, "f"), "1:READY 2:FAILED");
    /* A rescan does not try the same failure again; a load does. */
    const mg_model_version_t *f2 = listed(r, "f", 2);
    assert_int_equal(mg_registry_rescan(r, "f", NULL, 0, &err), MG_EMODEL);
    assert_ptr_equal(listed(r, "f", 2), f2);
    assert_int_equal(mg_registry_load(r, "f", &err), MG_EMODEL);
    assert_ptr_not_equal(listed(r, "f", 2), f2);

    /* Fixed: version 2 goes live, version 1 is unloaded (its folder is still there). */
    mg_test_sh("cp %s/identity_FP32.onnx %s/repo/f/2/model.onnx", gen, tmp);
    assert_int_equal(mg_registry_rescan(r, "f", NULL, 0, &err), 0);
    assert_string_equal(index_of(r, &rows, "f"), "2:READY 1:UNLOADED");

    /* A version folder the watcher has not seen settle is not read. */
    mg_test_sh("mkdir -p %s/repo/f/3 && cp %s/identity_FP32.onnx %s/repo/f/3/model.onnx", tmp, gen,
               tmp);
    int64_t settled[] = {1, 2};
    assert_int_equal(mg_registry_rescan(r, "f", settled, 2, &err), 0);
    assert_null(listed(r, "f", 3));
    int64_t all3[] = {1, 2, 3};
    assert_int_equal(mg_registry_rescan(r, "f", all3, 3, &err), 0);
    assert_non_null(listed(r, "f", 3));
    /* Version 3 in flux (not settled): kept as it is, not retired. */
    const mg_model_version_t *v3 = listed(r, "f", 3);
    assert_int_equal(mg_registry_rescan(r, "f", settled, 2, &err), 0);
    assert_ptr_equal(listed(r, "f", 3), v3);

    /* The model folder gone: the model leaves. */
    mg_test_sh("rm -rf %s/repo/f", tmp);
    assert_int_equal(mg_registry_rescan(r, "f", NULL, 0, &err), 0);
    assert_int_equal(mg_registry_acquire(r, mg_test_str("f"), 0, &v, &err), MG_ENOMODEL);
    mg_registry_free(r);
}

static void test_load_list_and_rescan_all(void **state)
{
    (void)state;
    mg_registry_t *r = new_registry();
    const char *names[] = {"solo", "nosuch"};
    assert_false(mg_registry_all_ready(r));
    assert_int_equal(mg_registry_load_list(r, names, 2), 1);
    assert_true(mg_registry_all_ready(r));
    rows_t rows;
    assert_string_equal(index_of(r, &rows, "m"), "-:?"); /* a folder never loaded */
    assert_string_equal(index_of(r, &rows, "solo"), "1:READY");
    assert_int_equal(mg_registry_rescan_all(r), 0);
    assert_string_equal(index_of(r, &rows, "m"), "1:READY 2:READY 3:READY");
    mg_err_t err;
    assert_int_equal(mg_registry_unload(r, "solo", &err), 0);
    assert_string_equal(index_of(r, &rows, "solo"), "1:UNLOADED");
    mg_registry_free(r);
}

/* Readers acquire and release in a loop while the writer reloads and unloads. */
static atomic_bool stop_readers;
static atomic_long reader_ok;

static void *reader(void *arg)
{
    mg_registry_t *r = arg;
    rcu_register_thread();
    while (!atomic_load(&stop_readers)) {
        mg_model_version_t *v = NULL;
        mg_err_t err;
        if (mg_registry_acquire(r, mg_test_str("m"), 0, &v, &err) == 0) {
            assert_non_null(mg_model_version_session(v));
            mg_model_version_unpin(v);
            atomic_fetch_add(&reader_ok, 1);
        }
        /* The index walks the snapshot and the board of LOADING/DRAINING rows. */
        rows_t rows = {.model = "solo"};
        mg_registry_index(r, false, collect, &rows);
    }
    rcu_unregister_thread();
    return NULL;
}

static void test_concurrent_readers_and_writer(void **state)
{
    (void)state;
    mg_registry_t *r = new_registry();
    mg_registry_load_all(r);
    pthread_t t[3];
    atomic_store(&stop_readers, false);
    atomic_store(&reader_ok, 0);
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, reader, r);
    mg_err_t err;
    for (int i = 0; i < 10; i++) {
        /* On a busy machine, make sure the readers are really reading while we write. */
        long seen = atomic_load(&reader_ok);
        while (atomic_load(&reader_ok) < seen + 3)
            sched_yield();
        assert_int_equal(mg_registry_load(r, "m", &err), 0);
        assert_int_equal(mg_registry_unload(r, "solo", &err), 0);
        assert_int_equal(mg_registry_load(r, "solo", &err), 0);
        assert_int_equal(mg_registry_rescan(r, "m", NULL, 0, &err), 0);
        assert_int_equal(mg_registry_rescan_all(r), 0);
    }
    atomic_store(&stop_readers, true);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    assert_true(atomic_load(&reader_ok) > 0);
    mg_registry_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_repository),
        cmocka_unit_test(test_load_all_and_acquire),
        cmocka_unit_test(test_unload_drains_pinned_version),
        cmocka_unit_test(test_reload_keeps_unchanged_and_replaces_changed),
        cmocka_unit_test(test_failures_are_reported_and_keep_serving),
        cmocka_unit_test(test_failed_version_never_displaces_the_serving_one),
        cmocka_unit_test(test_load_list_and_rescan_all),
        cmocka_unit_test(test_concurrent_readers_and_writer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
