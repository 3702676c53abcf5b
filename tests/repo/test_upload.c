/* repo/upload: load bodies decoded, files staged and swapped in, put back when the load fails. */
#include "repo/upload.h"

#include "core/file.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static void test_parse(void **state)
{
    (void)state;
    mg_upload_t u;
    mg_err_t err;
    assert_int_equal(mg_upload_parse("", 0, &u, &err), 0);
    assert_false(mg_upload_any(&u));
    const char *body = "{\"parameters\":{\"config\":\"{}\",\"file:1/model.onnx\":\"aGVsbG8=\","
                       "\"file:labels.txt\":\"YQ\"}}";
    assert_int_equal(mg_upload_parse(body, strlen(body), &u, &err), 0);
    assert_true(mg_upload_any(&u));
    assert_string_equal(u.config, "{}");
    assert_int_equal(u.nfiles, 2);
    assert_string_equal(u.files[0].path, "1/model.onnx");
    assert_int_equal(u.files[0].len, 5);
    assert_memory_equal(u.files[0].bytes, "hello", 5);
    assert_int_equal(u.files[1].len, 1);
    mg_upload_deinit(&u);
    static const char *const bad[] = {
        "{\"parameters\":{\"file:1/model.onnx\":\"YQ\"}}",
        "{\"parameters\":{\"config\":\"{}\",\"file:/etc/passwd\":\"YQ\"}}",
        "{\"parameters\":{\"config\":\"{}\",\"file:1/../../x\":\"YQ\"}}",
        "{\"parameters\":{\"config\":\"{}\",\"file:1/2/x\":\"YQ\"}}",
        "{\"parameters\":{\"config\":\"{}\",\"file:1/x\":\"Y\"}}",
        "{\"parameters\":{\"config\":\"{}\",\"file:1/x\":\"Y*==\"}}",
        "{\"other\":{}}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (mg_upload_parse(bad[i], strlen(bad[i]), &u, &err) == 0)
            fail_msg("case %zu was accepted", i);
        assert_null(u.config);
    }
}

static int load_rc;

static int fake_load(void *ctx, mg_err_t *err)
{
    (void)ctx;
    return load_rc == 0 ? 0 : mg_err_set(err, load_rc, "refused");
}

static char *read_text(const char *path)
{
    char *s;
    size_t n;
    mg_err_t err;
    return mg_file_read(path, 1 << 20, &s, &n, &err) == 0 ? s : NULL;
}

static void test_apply_and_put_back(void **state)
{
    (void)state;
    char repo[] = "/tmp/mg-upload-XXXXXX", path[512];
    assert_non_null(mkdtemp(repo));
    mg_err_t err;
    mg_upload_t u;
    const char *body = "{\"parameters\":{\"config\":\"{\\\"max_batch_size\\\":2}\","
                       "\"file:1/model.onnx\":\"b25l\"}}";
    assert_int_equal(mg_upload_parse(body, strlen(body), &u, &err), 0);

    /* A new model whose load fails: nothing stays. */
    load_rc = MG_EINVAL;
    assert_int_equal(mg_upload_apply(repo, "m", &u, fake_load, NULL, &err), MG_EINVAL);
    snprintf(path, sizeof(path), "%s/m", repo);
    assert_int_not_equal(access(path, F_OK), 0);
    /* It loads: the folder is there. */
    load_rc = 0;
    assert_int_equal(mg_upload_apply(repo, "m", &u, fake_load, NULL, &err), 0);
    snprintf(path, sizeof(path), "%s/m/1/model.onnx", repo);
    char *s = read_text(path);
    assert_string_equal(s, "one");
    free(s);
    mg_upload_deinit(&u);

    /* A replacement that fails: the folder as it was. */
    body = "{\"parameters\":{\"config\":\"{}\",\"file:2/model.onnx\":\"dHdv\"}}";
    assert_int_equal(mg_upload_parse(body, strlen(body), &u, &err), 0);
    load_rc = MG_EINVAL;
    assert_int_equal(mg_upload_apply(repo, "m", &u, fake_load, NULL, &err), MG_EINVAL);
    s = read_text(path);
    assert_string_equal(s, "one");
    free(s);
    snprintf(path, sizeof(path), "%s/m/2", repo);
    assert_int_not_equal(access(path, F_OK), 0);
    mg_upload_deinit(&u);

    /* A config alone: replaced, and put back when the load fails. */
    body = "{\"parameters\":{\"config\":\"{\\\"max_batch_size\\\":9}\"}}";
    assert_int_equal(mg_upload_parse(body, strlen(body), &u, &err), 0);
    assert_int_equal(mg_upload_apply(repo, "m", &u, fake_load, NULL, &err), MG_EINVAL);
    snprintf(path, sizeof(path), "%s/m/config.json", repo);
    s = read_text(path);
    assert_string_equal(s, "{\"max_batch_size\":2}");
    free(s);
    load_rc = 0;
    assert_int_equal(mg_upload_apply(repo, "m", &u, fake_load, NULL, &err), 0);
    s = read_text(path);
    assert_string_equal(s, "{\"max_batch_size\":9}");
    free(s);
    /* A config that does not parse: nothing written, the load never called. */
    mg_upload_deinit(&u);
    body = "{\"parameters\":{\"config\":\"{\\\"instance_count\\\":0}\"}}";
    assert_int_equal(mg_upload_parse(body, strlen(body), &u, &err), 0);
    load_rc = MG_EIO;
    assert_int_equal(mg_upload_apply(repo, "m", &u, fake_load, NULL, &err), MG_ECONFIG);
    mg_upload_deinit(&u);

    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", repo);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_apply_and_put_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
