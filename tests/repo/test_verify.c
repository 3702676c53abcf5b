/*
 * Verification of a version's files: sha256sum's format (text and binary mode, "./" names,
 * backslash escapes, CRLF, malformed lines), config.json pins, --require-checksums, and file
 * identities.
 */
#include "repo/verify.h"
#include "support/support.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void digest_of(unsigned char d[32], unsigned char fill)
{
    memset(d, fill, 32);
}

static void expect(int rc, const mg_err_t *err, const char *sub)
{
    if (sub == NULL) {
        if (rc != 0)
            fail_msg("want 0, got %d (%s)", rc, err->msg);
        return;
    }
    if (rc != MG_EMODEL || strstr(err->msg, sub) == NULL)
        fail_msg("want MG_EMODEL containing '%s', got %d (%s)", sub, rc, err->msg);
}

static void test_sha256sums(void **state)
{
    (void)state;
    mg_verify_file_t f[2] = {{"model.onnx", {0}}, {"data/w.bin", {0}}};
    digest_of(f[0].sha256, 0xab);
    digest_of(f[1].sha256, 0x01);
    char ab[65], one[65];
    mg_sha256_hex(f[0].sha256, ab);
    mg_sha256_hex(f[1].sha256, one);
    mg_model_config_t cfg;
    mg_model_config_default(&cfg);
    mg_err_t err;
    char sums[512];

    snprintf(sums, sizeof(sums), "%s  model.onnx\n%s *./data/w.bin\n", ab, one);
    expect(mg_verify_files(f, 2, sums, strlen(sums), &cfg, 1, true, &err), &err, NULL);
    /* Upper-case hex and CRLF line ends are sha256sum's too. */
    snprintf(sums, sizeof(sums),
             "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB  "
             "model.onnx\r\n%s  data/w.bin\r\n",
             one);
    expect(mg_verify_files(f, 2, sums, strlen(sums), &cfg, 1, false, &err), &err, NULL);
    /* Escaped names (a line starting with a backslash). */
    mg_verify_file_t odd = {"a\\b", {0}};
    digest_of(odd.sha256, 0xab);
    snprintf(sums, sizeof(sums), "\\%s  a\\\\b\n", ab);
    expect(mg_verify_files(&odd, 1, sums, strlen(sums), &cfg, 1, true, &err), &err, NULL);

    snprintf(sums, sizeof(sums), "%s  model.onnx\n", one);
    expect(mg_verify_files(f, 1, sums, strlen(sums), &cfg, 1, false, &err), &err,
           "checksum mismatch for 'model.onnx': expected 0101010101010101..., got abababababababab"
           "... (SHA256SUMS)");
    snprintf(sums, sizeof(sums), "%s  model.onnx\n", ab);
    expect(mg_verify_files(f, 2, sums, strlen(sums), &cfg, 1, false, &err), &err,
           "SHA256SUMS does not list 'data/w.bin'");
    expect(mg_verify_files(f, 1, "nonsense\n", 9, &cfg, 1, false, &err), &err,
           "SHA256SUMS line 1 is not");
    snprintf(sums, sizeof(sums), "\n%sX model.onnx\n", ab);
    expect(mg_verify_files(f, 1, sums, strlen(sums), &cfg, 1, false, &err), &err,
           "SHA256SUMS line 2 is not");
}

static void test_pins_and_require(void **state)
{
    (void)state;
    mg_verify_file_t f = {"model.onnx", {0}};
    digest_of(f.sha256, 0xab);
    mg_model_config_t cfg;
    mg_err_t err;
    char hex[65], json[400];
    mg_sha256_hex(f.sha256, hex);

    mg_model_config_default(&cfg);
    expect(mg_verify_files(&f, 1, NULL, 0, &cfg, 1, false, &err), &err, NULL);
    expect(mg_verify_files(&f, 1, NULL, 0, &cfg, 1, true, &err), &err,
           "no checksum for 'model.onnx' (--require-checksums");

    snprintf(json, sizeof(json), "{\"sha256\": {\"1\": \"%s\", \"2\": {\"model.onnx\": \"%s\"}}}",
             hex, "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd");
    assert_int_equal(mg_model_config_parse(json, strlen(json), "m", &cfg, &err), 0);
    assert_int_equal(cfg.npins, 2);
    expect(mg_verify_files(&f, 1, NULL, 0, &cfg, 1, true, &err), &err, NULL);
    expect(mg_verify_files(&f, 1, NULL, 0, &cfg, 2, false, &err), &err,
           "expected cdcdcdcdcdcdcdcd..., got abababababababab... (config.json 'sha256')");
    /* Version 3 has no pin. */
    expect(mg_verify_files(&f, 1, NULL, 0, &cfg, 3, true, &err), &err, "no checksum for");

    snprintf(json, sizeof(json), "{\"sha256\": {\"1\": {\"weights.bin\": \"%s\"}}}", hex);
    assert_int_equal(mg_model_config_parse(json, strlen(json), "m", &cfg, &err), 0);
    expect(mg_verify_files(&f, 1, NULL, 0, &cfg, 1, false, &err), &err,
           "pins 'weights.bin' for version 1, a file the model does not load");

    static const char *const bad[] = {
        "{\"sha256\": [1]}",
        "{\"sha256\": {\"x\": \"00\"}}",
        "{\"sha256\": {\"1\": \"00\"}}",
        "{\"sha256\": {\"1\": {}}}",
        "{\"sha256\": {\"1\": {\"model.onnx\": 5}}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(mg_model_config_parse(bad[i], strlen(bad[i]), "m", &cfg, &err),
                         MG_ECONFIG);
        assert_non_null(strstr(err.msg, "'sha256"));
    }
}

static void test_file_ids(void **state)
{
    (void)state;
    char dir[256], path[300];
    assert_int_equal(mg_test_tmpdir("mg-verify-", dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/f", dir);
    mg_test_sh("echo one > %s", path);
    mg_file_id_t a, b, c;
    assert_int_equal(mg_file_id_of(path, &a), 0);
    assert_int_equal(mg_file_id_of(path, &b), 0);
    assert_true(mg_file_id_equal(&a, &b));
    /* Same size, the mtime put back: the ctime still tells. */
    mg_test_sh("touch -r %s %s.ref && echo two > %s && touch -r %s.ref %s", path, path, path, path,
               path);
    assert_int_equal(mg_file_id_of(path, &c), 0);
    assert_false(mg_file_id_equal(&a, &c));
    snprintf(path, sizeof(path), "%s/missing", dir);
    assert_int_equal(mg_file_id_of(path, &c), MG_ENOENT);
    mg_test_sh("rm -rf %s", dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256sums),
        cmocka_unit_test(test_pins_and_require),
        cmocka_unit_test(test_file_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
