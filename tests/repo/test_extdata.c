/*
 * External-data references read from ONNX protobuf bytes (real models written by
 * scripts/gen_lifecycle_models.py, plus hand-made wire bytes for nesting and malformed input)
 * and the path rules for the files they name.
 */
#include "repo/extdata.h"
#include "support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static char tmp[256];

static int setup(void **state)
{
    (void)state;
    if (mg_test_tmpdir("mg-extdata-", tmp, sizeof(tmp)) != 0)
        return -1;
    mg_test_sh("%s %s/scripts/gen_lifecycle_models.py %s/gen >/dev/null", mg_test_python(),
               mg_test_source_dir(), tmp);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_sh("rm -rf %s", tmp);
    return 0;
}

/* Lists the references of gen/`file`; returns the code, names packed into `names`. */
static int list_file(const char *file, mg_buf_t *names, size_t *n, mg_err_t *err)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/gen/%s", tmp, file);
    size_t len;
    char *bytes = mg_test_read_file(path, &len);
    /* An exact-size copy, so ASan catches any read past the end. */
    char *exact = malloc(len);
    memcpy(exact, bytes, len);
    int rc = mg_extdata_list(exact, len, names, n, err);
    free(exact);
    free(bytes);
    return rc;
}

static void test_lists_locations(void **state)
{
    (void)state;
    mg_buf_t names = {0};
    size_t n = 99;
    mg_err_t err;
    assert_int_equal(list_file("add.onnx", &names, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(list_file("ext/model.onnx", &names, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(names.data, "weights.bin");
    mg_buf_reset(&names);
    assert_int_equal(list_file("ext_escape/model.onnx", &names, &n, &err), 0);
    assert_string_equal(names.data, "../escape.bin");
    mg_buf_reset(&names);
    assert_int_equal(list_file("slow.onnx", &names, &n, &err), 0); /* a Loop body: walked */
    assert_int_equal(n, 0);
    mg_buf_free(&names);
}

/* Appends a varint. */
static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t k = 0;
    do {
        p[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return k;
}

/* A length-delimited field `number` holding `len` bytes of `payload`. */
static size_t put_field(uint8_t *p, uint32_t number, const void *payload, size_t len)
{
    size_t k = put_varint(p, (uint64_t)number << 3 | 2);
    k += put_varint(p + k, len);
    memcpy(p + k, payload, len);
    return k + len;
}

/* A TensorProto with data_location EXTERNAL and location `loc`. */
static size_t external_tensor(uint8_t *p, const char *loc)
{
    uint8_t entry[256], key[64];
    size_t ek = put_field(key, 1, "location", 8);
    memcpy(entry, key, ek);
    ek += put_field(entry + ek, 2, loc, strlen(loc));
    size_t k = put_field(p, 13, entry, ek);
    k += put_varint(p + k, 14 << 3 | 0);
    k += put_varint(p + k, 1);
    return k;
}

static void test_nested_graphs_and_duplicates(void **state)
{
    (void)state;
    /* Model{graph{node{attribute{g{initializer: a.bin}}}, initializer: b.bin, a.bin again}} */
    uint8_t t1[300], t2[300], g_inner[400], attr[500], node[600], graph[1200], model[1400];
    size_t n1 = external_tensor(t1, "a.bin"), n2 = external_tensor(t2, "b.bin");
    size_t gi = put_field(g_inner, 5, t1, n1);
    size_t at = put_field(attr, 6, g_inner, gi);
    size_t nd = put_field(node, 5, attr, at);
    size_t gr = put_field(graph, 1, node, nd);
    gr += put_field(graph + gr, 5, t2, n2);
    gr += put_field(graph + gr, 5, t1, n1);
    size_t md = put_field(model, 7, graph, gr);
    mg_buf_t names = {0};
    size_t n = 0;
    mg_err_t err;
    assert_int_equal(mg_extdata_list(model, md, &names, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(names.data, "a.bin");
    assert_string_equal(names.data + 6, "b.bin");
    /* Every truncation fails cleanly or lists fewer, never reads past the end. */
    for (size_t cut = 0; cut < md; cut++) {
        uint8_t *exact = malloc(cut ? cut : 1);
        memcpy(exact, model, cut);
        mg_buf_reset(&names);
        int rc = mg_extdata_list(exact, cut, &names, &n, &err);
        assert_true(rc == 0 || (rc == MG_EMODEL && strstr(err.msg, "malformed protobuf")));
        free(exact);
    }
    mg_buf_free(&names);
}

static void test_malformed(void **state)
{
    (void)state;
    mg_buf_t names = {0};
    size_t n;
    mg_err_t err;
    static const uint8_t group[] = {0x0b}; /* field 1, wire type 3 */
    assert_int_equal(mg_extdata_list(group, sizeof(group), &names, &n, &err), MG_EMODEL);
    assert_non_null(strstr(err.msg, "unknown wire type"));
    static const uint8_t toolong[] = {0x3a, 0x10, 0x00}; /* graph, 16 bytes, 1 there */
    assert_int_equal(mg_extdata_list(toolong, sizeof(toolong), &names, &n, &err), MG_EMODEL);
    assert_non_null(strstr(err.msg, "truncated?"));
    /* Nesting deeper than 64: graph{node{attribute{g{node{...}}}}} */
    uint8_t *a = calloc(1, 4096), *b = calloc(1, 4096);
    size_t len = 0;
    for (int i = 0; i < 40; i++) {
        size_t k = put_field(b, 6, a, len); /* attribute.g */
        k = put_field(a, 5, b, k);          /* node.attribute */
        len = put_field(b, 1, a, k);        /* graph.node */
        memcpy(a, b, len);
    }
    size_t md = put_field(b, 7, a, len);
    assert_int_equal(mg_extdata_list(b, md, &names, &n, &err), MG_EMODEL);
    assert_non_null(strstr(err.msg, "nested deeper than 64"));
    /* An external tensor without a location. */
    uint8_t t[16];
    size_t k = put_varint(t, 14 << 3 | 0);
    k += put_varint(t + k, 1);
    uint8_t g[32], m[48];
    size_t gl = put_field(g, 5, t, k);
    size_t ml = put_field(m, 7, g, gl);
    assert_int_equal(mg_extdata_list(m, ml, &names, &n, &err), MG_EMODEL);
    assert_non_null(strstr(err.msg, "names no 'location'"));
    free(a);
    free(b);
    mg_buf_free(&names);
}

static void test_resolve(void **state)
{
    (void)state;
    char v[400], out[4096];
    snprintf(v, sizeof(v), "%s/repo/m/1", tmp);
    mg_test_sh("mkdir -p %s/sub %s/subdir && touch %s/a.bin %s/sub/b.bin %s/../../outside.bin", v,
               v, v, v, v);
    mg_test_sh("ln -sf ../../outside.bin %s/out.bin && ln -sf a.bin %s/in.bin", v, v);
    mg_err_t err;
    assert_int_equal(mg_extdata_resolve(v, "a.bin", out, sizeof(out), &err), 0);
    assert_non_null(strstr(out, "/repo/m/1/a.bin"));
    assert_int_equal(mg_extdata_resolve(v, "sub/b.bin", out, sizeof(out), &err), 0);
    assert_int_equal(mg_extdata_resolve(v, "./sub//b.bin", out, sizeof(out), &err), 0);
    assert_int_equal(mg_extdata_resolve(v, "in.bin", out, sizeof(out), &err), 0);
    static const struct {
        const char *loc, *why;
    } bad[] = {
        {"../outside.bin", "'..' is not allowed"},
        {"sub/../../x", "'..' is not allowed"},
        {"/etc/passwd", "absolute paths are not allowed"},
        {"out.bin", "resolves outside the version folder"},
        {"missing.bin", "no such file"},
        {"subdir", "not a regular file"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mg_err_clear(&err);
        assert_int_equal(mg_extdata_resolve(v, bad[i].loc, out, sizeof(out), &err), MG_EMODEL);
        if (strstr(err.msg, bad[i].why) == NULL)
            fail_msg("%s: got '%s', want '%s'", bad[i].loc, err.msg, bad[i].why);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lists_locations),
        cmocka_unit_test(test_nested_graphs_and_duplicates),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_resolve),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
