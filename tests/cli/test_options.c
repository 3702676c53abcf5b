/*
 * The option table parser: flags and --config keys of every kind, bounds, precedence of flags
 * over the file, and the refusals with their messages' subject.
 */
#include "cli/options.h"
#include "support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

typedef struct opts {
    char name[16];
    char config[256];
    long long n;
    int on;
    int color;
    mg_opt_listen_t listen;
    mg_opt_list_t models;
} opts_t;

static const char *const colors[] = {"red", "green", NULL};

static const mg_opt_t table[] = {
    {"name", "name", MG_OPT_STRING, offsetof(opts_t, name), 16, 0, 0, NULL, "S", "a name", "h"},
    {"config", NULL, MG_OPT_STRING, offsetof(opts_t, config), 256, 0, 0, NULL, "F", "a file", "h"},
    {"n", "n", MG_OPT_INT, offsetof(opts_t, n), 0, 1, 10, NULL, "N", "1..10", "h"},
    {"on", NULL, MG_OPT_BOOL, offsetof(opts_t, on), 0, 0, 0, NULL, NULL, NULL, "h"},
    {NULL, "on", MG_OPT_BOOL, offsetof(opts_t, on), 0, 0, 0, NULL, NULL, NULL, NULL},
    {"color", "color", MG_OPT_CHOICE, offsetof(opts_t, color), 0, 0, 0, colors, "C", "red or green",
     "h"},
    {"listen", "listen", MG_OPT_LISTEN, offsetof(opts_t, listen), 0, 0, 0, NULL, "A", "ADDR:PORT",
     "h"},
    {"load-model", "load_models", MG_OPT_LIST, offsetof(opts_t, models), 0, 0, 0, NULL, "M",
     "a model name", "h"},
    MG_OPT_END,
};

static int parse(opts_t *o, int argc, const char **argv)
{
    return mg_opt_parse_args(table, argc, (char **)argv, o, "usage\n");
}

static void test_flags(void **state)
{
    (void)state;
    opts_t o;
    memset(&o, 0, sizeof(o));
    const char *argv[] = {
        "x",     "--name",   "abc",     "--n",          "7", "--on",         "--color",
        "green", "--listen", "[::1]:9", "--load-model", "a", "--load-model", "b"};
    assert_int_equal(parse(&o, 14, argv), 0);
    assert_string_equal(o.name, "abc");
    assert_int_equal(o.n, 7);
    assert_int_equal(o.on, 1);
    assert_int_equal(o.color, 1);
    assert_string_equal(o.listen.host, "::1");
    assert_int_equal(o.listen.port, 9);
    assert_int_equal(o.models.n, 2);
    assert_string_equal(o.models.items[1], "b");

    const char *bad_n[] = {"x", "--n", "11"};
    assert_int_equal(parse(&o, 3, bad_n), 2);
    const char *bad_color[] = {"x", "--color", "blue"};
    assert_int_equal(parse(&o, 3, bad_color), 2);
    const char *long_name[] = {"x", "--name", "a-name-of-more-than-16-bytes"};
    assert_int_equal(parse(&o, 3, long_name), 2);
    const char *positional[] = {"x", "stray"};
    assert_int_equal(parse(&o, 2, positional), 2);
    const char *unknown[] = {"x", "--nope"};
    assert_int_equal(parse(&o, 2, unknown), 2);
}

static void test_file_then_flags(void **state)
{
    (void)state;
    char dir[256], path[300];
    assert_int_equal(mg_test_tmpdir("mg-options-", dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/c.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"name\":\"file\",\"n\":3,\"on\":true,\"color\":\"red\",\"listen\":\":80\","
          "\"load_models\":[\"m1\",\"m2\"]}",
          f);
    fclose(f);
    opts_t o;
    memset(&o, 0, sizeof(o));
    assert_int_equal(mg_opt_load_file(table, path, &o), 0);
    assert_string_equal(o.name, "file");
    assert_int_equal(o.n, 3);
    assert_int_equal(o.on, 1);
    assert_string_equal(o.listen.host, "0.0.0.0");
    assert_int_equal(o.models.n, 2);
    const char *argv[] = {"x", "--config", path, "--n", "9"};
    assert_int_equal(parse(&o, 5, argv), 0);
    assert_int_equal(o.n, 9); /* the flag wins */
    assert_string_equal(o.name, "file");

    const char *bad[] = {
        "{\"n\":\"3\"}",         "{\"n\":0}", "{\"on\":1}", "{\"color\":\"blue\"}", "{\"nope\":1}",
        "{\"load_models\":[1]}", "[1]",       "{\"n\":"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f = fopen(path, "w");
        fputs(bad[i], f);
        fclose(f);
        assert_int_equal(mg_opt_load_file(table, path, &o), -1);
    }
    mg_test_sh("rm -rf %s", dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_file_then_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
