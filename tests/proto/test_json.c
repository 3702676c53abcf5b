/*
 * Unit tests for the JSON cursor and writers (proto/json.h) and the number scanner,
 * converters and formatters (proto/numfmt.h). Inputs are copied into exact-size heap blocks
 * without a NUL, so AddressSanitizer builds catch any read past `len`.
 */
/* cmocka.h needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto/json.h"
#include "proto/numfmt.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

/* An exact-size, non-NUL-terminated copy of `s` (caller frees). */
static char *exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, s, n);
    return p;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    /* splitmix64: deterministic across runs */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* Skips one value of `s` and checks the rest is whitespace; returns 0 or MG_EPARSE. */
static int check_doc(const char *s, mg_err_t *err)
{
    size_t n = strlen(s);
    char *p = exact(s, n);
    mg_json_t j;
    mg_json_init(&j, p, n);
    int rc = mg_json_skip(&j, NULL);
    if (rc == 0)
        rc = mg_json_end(&j);
    if (rc != 0)
        mg_json_error(&j, err);
    free(p);
    return rc;
}

/* Scans a number token (exact-size copy) and returns the consumed length. */
static size_t scan(const char *s, mg_numfmt_decimal_t *d)
{
    size_t n = strlen(s);
    char *p = exact(s, n);
    size_t r = mg_numfmt_scan(p, n, d);
    /* text points into p: keep what the callers inspect, then free */
    d->text = s;
    free(p);
    return r;
}

static int to_f32(const char *s, float *f)
{
    mg_numfmt_decimal_t d;
    assert_int_equal(scan(s, &d), strlen(s));
    return mg_numfmt_to_f32(&d, f);
}

static int to_f64(const char *s, double *v)
{
    mg_numfmt_decimal_t d;
    assert_int_equal(scan(s, &d), strlen(s));
    return mg_numfmt_to_f64(&d, v);
}

static int to_f16(const char *s, uint16_t *h)
{
    mg_numfmt_decimal_t d;
    assert_int_equal(scan(s, &d), strlen(s));
    return mg_numfmt_to_f16(&d, h);
}

/* mg_numfmt_write_f32 into a NUL-terminated string. */
static void fmt32(float v, char *buf)
{
    size_t n = mg_numfmt_write_f32(buf, v);
    assert_true(n <= MG_NUMFMT_F32_MAX);
    buf[n] = '\0';
}

static void fmt64(double v, char *buf)
{
    size_t n = mg_numfmt_write_f64(buf, v);
    assert_true(n <= MG_NUMFMT_F64_MAX);
    buf[n] = '\0';
}

/* ---- the cursor ---- */

static void test_peek_kinds(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        mg_json_type_t t;
    } cases[] = {
        {"  {", MG_JSON_OBJECT},  {"\t[", MG_JSON_ARRAY},   {"\n\"x\"", MG_JSON_STRING},
        {"-1", MG_JSON_NUMBER},   {"7", MG_JSON_NUMBER},    {"true", MG_JSON_TRUE},
        {"false", MG_JSON_FALSE}, {"null", MG_JSON_NULL},   {" \r\n ", MG_JSON_END},
        {"", MG_JSON_END},        {"]", MG_JSON_INVALID},   {",", MG_JSON_INVALID},
        {"+1", MG_JSON_INVALID},  {"'a'", MG_JSON_INVALID},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].s);
        char *p = exact(cases[i].s, n);
        mg_json_t j;
        mg_json_init(&j, p, n);
        assert_int_equal(mg_json_peek(&j), cases[i].t);
        free(p);
    }
}

static void test_walk_object(void **state)
{
    (void)state;
    const char *doc = " { \"a\" : 1.5 , \"b\":[true,false,null], \"c\":{\"d\":\"e\"},\"f\":[] } ";
    size_t n = strlen(doc);
    char *p = exact(doc, n);
    mg_json_t j;
    mg_str_t key, s;
    mg_numfmt_decimal_t num;
    bool b;
    mg_json_init(&j, p, n);

    assert_int_equal(mg_json_object_begin(&j), 0);
    assert_int_equal(j.depth, 1);
    assert_int_equal(mg_json_object_next(&j, &key), 1);
    assert_true(mg_json_str_eq(key, "a"));
    assert_int_equal(mg_json_read_number(&j, &num), 0);
    assert_int_equal(num.mant, 15);
    assert_int_equal(num.exp10, -1);

    assert_int_equal(mg_json_object_next(&j, &key), 1);
    assert_true(mg_json_str_eq(key, "b"));
    assert_int_equal(mg_json_array_begin(&j), 0);
    assert_int_equal(mg_json_array_next(&j), 1);
    assert_int_equal(mg_json_read_bool(&j, &b), 0);
    assert_true(b);
    assert_int_equal(mg_json_array_next(&j), 1);
    assert_int_equal(mg_json_read_bool(&j, &b), 0);
    assert_false(b);
    assert_int_equal(mg_json_array_next(&j), 1);
    assert_int_equal(mg_json_peek(&j), MG_JSON_NULL);
    assert_int_equal(mg_json_read_null(&j), 0);
    assert_int_equal(mg_json_array_next(&j), 0);

    assert_int_equal(mg_json_object_next(&j, &key), 1);
    assert_true(mg_json_str_eq(key, "c"));
    mg_str_t span;
    assert_int_equal(mg_json_skip(&j, &span), 0);
    assert_int_equal(span.len, strlen("{\"d\":\"e\"}"));
    assert_memory_equal(span.ptr, "{\"d\":\"e\"}", span.len);

    assert_int_equal(mg_json_object_next(&j, &key), 1);
    assert_true(mg_json_str_eq(key, "f"));
    assert_int_equal(mg_json_array_begin(&j), 0);
    assert_int_equal(mg_json_array_next(&j), 0);

    assert_int_equal(mg_json_object_next(&j, NULL), 0);
    assert_int_equal(j.depth, 0);
    assert_int_equal(mg_json_end(&j), 0);

    /* reading a value of the wrong kind fails and records the offset */
    mg_json_init(&j, p, n);
    assert_int_equal(mg_json_read_string(&j, &s), MG_EPARSE);
    assert_string_equal(j.err_what, "expected a string");
    assert_int_equal(j.err_pos, 1);
    free(p);
}

static void test_empty_and_nested(void **state)
{
    (void)state;
    mg_err_t err;
    assert_int_equal(check_doc("{}", &err), 0);
    assert_int_equal(check_doc("[]", &err), 0);
    assert_int_equal(check_doc(" [ [ ] , { } , [[[]]] ] ", &err), 0);
    assert_int_equal(check_doc("{\"a\":{\"b\":{\"c\":[1,{\"d\":null}]}}}", &err), 0);
    assert_int_equal(check_doc("\"\"", &err), 0);
    assert_int_equal(check_doc("-0.0e-0", &err), 0);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    static const struct {
        const char *doc;
        const char *what;
        size_t offset;
    } cases[] = {
        {"{\"a\" 1}", "expected ':'", 5},
        {"{\"a\":1,}", "expected a member name", 7},
        {"{\"a\":1 \"b\":2}", "expected ',' or '}'", 7},
        {"{1:2}", "expected a member name", 1},
        {"[1,]", "expected a value", 3},
        {"[,1]", "expected a value", 1},
        {"[1 2]", "expected ',' or ']'", 3},
        {"[1}", "expected ',' or ']'", 2},
        {"{\"a\":1]", "expected ',' or '}'", 6},
        {"{", "unexpected end of input", 1},
        {"[1,", "unexpected end of input", 3},
        {"{\"a\":", "unexpected end of input", 5},
        {"", "unexpected end of input", 0},
        {"[01]", "invalid number", 1},
        {"[1.]", "invalid number", 1},
        {"[.5]", "expected a value", 1},
        {"[-]", "invalid number", 1},
        {"[1e]", "invalid number", 1},
        {"[1e+]", "invalid number", 1},
        {"\"abc", "unterminated string", 4},
        {"\"abc\\", "unterminated string", 5},
        {"\"a\001b\"", "control character in string", 2},
        {"\"a\nb\"", "control character in string", 2},
        {"\"\\q\"", "invalid escape", 1},
        {"\"\\x41\"", "invalid escape", 1},
        {"\"\\u12G4\"", "invalid \\u escape", 1},
        {"\"\\u12\"", "invalid \\u escape", 1},
        {"\"\\u12", "invalid \\u escape", 1},
        {"\"\\ud800\"", "unpaired surrogate", 1},
        {"\"\\udc00\"", "unpaired surrogate", 1},
        {"\"\\ud800\\u0041\"", "unpaired surrogate", 1},
        {"\"\\ud800\\ud800\"", "unpaired surrogate", 1},
        {"tru", "expected true or false", 0},
        {"nul", "expected null", 0},
        {"truex", "unexpected data after the JSON value", 4},
        {"1 2", "unexpected data after the JSON value", 2},
        {"{} {}", "unexpected data after the JSON value", 3},
        {"]", "expected a value", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mg_err_t err;
        char want[160];
        assert_int_equal(check_doc(cases[i].doc, &err), MG_EPARSE);
        assert_int_equal(err.code, MG_EPARSE);
        snprintf(want, sizeof(want), "malformed JSON at offset %zu: %s", cases[i].offset,
                 cases[i].what);
        if (strcmp(err.msg, want) != 0)
            fail_msg("doc %zu <%s>: got \"%s\", want \"%s\"", i, cases[i].doc, err.msg, want);
    }
}

static void test_first_error_wins(void **state)
{
    (void)state;
    mg_json_t j;
    mg_err_t err;
    mg_json_init(&j, "[1 2]", 5);
    assert_int_equal(mg_json_skip(&j, NULL), MG_EPARSE);
    assert_int_equal(mg_json_fail(&j, "later"), MG_EPARSE);
    assert_int_equal(mg_json_error(&j, &err), MG_EPARSE);
    assert_string_equal(err.msg, "malformed JSON at offset 3: expected ',' or ']'");
    mg_json_init(&j, "x", 1);
    assert_int_equal(mg_json_fail(&j, "custom problem"), MG_EPARSE);
    mg_json_error(&j, &err);
    assert_string_equal(err.msg, "malformed JSON at offset 0: custom problem");
}

static char *nest(int depth, char open, char close)
{
    char *s = malloc((size_t)depth * 2 + 1);
    assert_non_null(s);
    memset(s, open, (size_t)depth);
    memset(s + depth, close, (size_t)depth);
    s[depth * 2] = '\0';
    return s;
}

static void test_depth_limit(void **state)
{
    (void)state;
    mg_err_t err;
    char *ok = nest(MG_JSON_MAX_DEPTH, '[', ']');
    assert_int_equal(check_doc(ok, &err), 0);
    free(ok);

    char *deep = nest(MG_JSON_MAX_DEPTH + 1, '[', ']');
    assert_int_equal(check_doc(deep, &err), MG_EPARSE);
    assert_string_equal(err.msg, "malformed JSON at offset 64: nesting deeper than 64");
    free(deep);

    /* objects count too, and mixed nesting */
    char buf[64 * 6 + 64];
    size_t n = 0;
    for (int i = 0; i < 65; i++) {
        memcpy(buf + n, "{\"a\":", 5);
        n += 5;
    }
    memcpy(buf + n, "1", 2);
    assert_int_equal(check_doc(buf, &err), MG_EPARSE);
    assert_non_null(strstr(err.msg, "nesting deeper than 64"));

    /* a hostile million brackets: rejected quickly, no stack use */
    size_t big = 1000000;
    char *bomb = malloc(big + 1);
    memset(bomb, '[', big);
    bomb[big] = '\0';
    assert_int_equal(check_doc(bomb, &err), MG_EPARSE);
    assert_non_null(strstr(err.msg, "nesting deeper than 64"));
    free(bomb);

    /* the limit counts from the cursor's own depth: a walker inside 63 levels can open 1 */
    char *inner = nest(MG_JSON_MAX_DEPTH, '[', ']');
    mg_json_t j;
    mg_json_init(&j, inner, strlen(inner));
    for (int i = 0; i < MG_JSON_MAX_DEPTH - 1; i++) {
        assert_int_equal(mg_json_array_begin(&j), 0);
        assert_int_equal(mg_json_array_next(&j), 1);
    }
    assert_int_equal(mg_json_skip(&j, NULL), 0);
    free(inner);
}

static void test_every_prefix(void **state)
{
    (void)state;
    /* every truncation of a valid document fails cleanly (ASan: no read past len) */
    const char *doc =
        "{\"id\":\"r\\u00e9q\\ud83d\\ude00\",\"inputs\":[{\"name\":\"x\",\"shape\":[2,"
        "2],\"datatype\":\"FP32\",\"data\":[[1.5e-3,-2],[0,3E+2]]}],\"ok\":true,"
        "\"no\":false,\"nil\":null}";
    size_t n = strlen(doc);
    for (size_t cut = 0; cut < n; cut++) {
        char *p = exact(doc, cut);
        mg_json_t j;
        mg_json_init(&j, p, cut);
        int rc = mg_json_skip(&j, NULL);
        assert_int_equal(rc, MG_EPARSE);
        assert_non_null(j.err_what);
        assert_true(j.err_pos <= cut);
        free(p);
    }
    mg_err_t err;
    assert_int_equal(check_doc(doc, &err), 0);
}

static void test_strings(void **state)
{
    (void)state;
    static const struct {
        const char *json; /* the string literal, quotes included */
        const char *want;
        size_t want_len;
    } cases[] = {
        {"\"plain\"", "plain", 5},
        {"\"\"", "", 0},
        {"\"q\\\"b\\\\s\\/e\"", "q\"b\\s/e", 7},
        {"\"\\b\\f\\n\\r\\t\"", "\b\f\n\r\t", 5},
        {"\"\\u0041\\u00e9\\u20AC\"", "A\xc3\xa9\xe2\x82\xac", 6},
        {"\"\\ud83d\\ude00!\"", "\xf0\x9f\x98\x80!", 5},
        {"\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf", 4},
        {"\"a\\u0000b\"", "a\0b", 3},
        {"\"caf\xc3\xa9\"", "caf\xc3\xa9", 5},
    };
    mg_arena_t arena;
    mg_arena_init(&arena, 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].json);
        char *p = exact(cases[i].json, n);
        mg_json_t j;
        mg_str_t raw, out;
        mg_json_init(&j, p, n);
        assert_int_equal(mg_json_read_string(&j, &raw), 0);
        assert_int_equal(j.pos, n);
        assert_ptr_equal(raw.ptr, p + 1);
        assert_int_equal(raw.len, n - 2);
        assert_int_equal(mg_json_unescape(raw, &arena, &out), 0);
        assert_int_equal(out.len, cases[i].want_len);
        assert_memory_equal(out.ptr, cases[i].want, out.len);
        if (memchr(raw.ptr, '\\', raw.len) == NULL)
            assert_ptr_equal(out.ptr, raw.ptr); /* zero-copy */
        else
            assert_int_equal(out.ptr[out.len], '\0');
        if (memchr(cases[i].want, '\0', cases[i].want_len) == NULL)
            assert_true(mg_json_str_eq(raw, cases[i].want));
        free(p);
    }
    mg_arena_free(&arena);
}

/* A string's end, an escape, a control byte or a UTF-8 character at every place of it. */
static void test_strings_every_place(void **state)
{
    (void)state;
    char text[64];
    for (size_t n = 0; n <= 40; n++) {
        for (size_t at = 0; at <= n; at++) {
            for (int kind = 0; kind < 4; kind++) {
                /* "aaa...": kind 0 ends the string at `at`, 1 puts \n there, 2 a control byte,
                   3 a two-byte UTF-8 character (never special) */
                text[0] = '"';
                memset(text + 1, 'a', n);
                size_t len = 1 + n, end = n;
                if (at < n && kind == 1) {
                    memmove(text + 2 + at, text + 1 + at, n - at);
                    text[1 + at] = '\\';
                    text[2 + at] = 'n';
                    len++;
                    end++;
                } else if (at < n && kind == 2) {
                    text[1 + at] = 0x1f;
                } else if (at + 1 < n && kind == 3) {
                    text[1 + at] = (char)0xc3; /* é */
                    text[2 + at] = (char)0xa9;
                } else if (at < n && kind == 0) {
                    text[1 + at] = '"';
                    end = at;
                }
                text[len++] = '"';
                char *p = exact(text, len);
                mg_json_t j;
                mg_str_t raw;
                mg_json_init(&j, p, len);
                int rc = mg_json_read_string(&j, &raw);
                if (kind == 2 && at < n) {
                    assert_int_equal(rc, MG_EPARSE);
                    assert_string_equal(j.err_what, "control character in string");
                    assert_int_equal(j.err_pos, 1 + at);
                } else {
                    assert_int_equal(rc, 0);
                    assert_int_equal(raw.len, end);
                    assert_int_equal(j.pos, end + 2);
                }
                free(p);
            }
        }
    }
}

static void test_str_eq(void **state)
{
    (void)state;
    mg_str_t raw = MG_STR_LIT("na\\u006De");
    assert_true(mg_json_str_eq(raw, "name"));
    assert_false(mg_json_str_eq(raw, "nam"));
    assert_false(mg_json_str_eq(raw, "names"));
    assert_false(mg_json_str_eq(raw, "na\\u006De2"));
    assert_true(mg_json_str_eq(MG_STR_LIT("name"), "name"));
    assert_false(mg_json_str_eq(MG_STR_LIT("name"), "Name"));
    assert_false(mg_json_str_eq(MG_STR_LIT("nam"), "name"));
    assert_true(mg_json_str_eq(MG_STR_LIT(""), ""));
    assert_true(mg_json_str_eq(MG_STR_LIT("\\u00e9t\\u00E9"), "\xc3\xa9t\xc3\xa9"));
    assert_true(mg_json_str_eq(MG_STR_LIT("\\\""), "\""));
    assert_false(mg_json_str_eq(MG_STR_LIT("\\ud83d\\ude00"), "\xf0\x9f\x98"));
}

/* ---- number scanning and integers ---- */

static void test_scan_grammar(void **state)
{
    (void)state;
    mg_numfmt_decimal_t d;
    const char *valid[] = {"0",
                           "-0",
                           "1",
                           "-1",
                           "1.5",
                           "0.0",
                           "1e5",
                           "1E+5",
                           "1e-5",
                           "-12.34e10",
                           "123456789012345678901234567890",
                           "0.000001"};
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        assert_int_equal(scan(valid[i], &d), strlen(valid[i]));
    const char *invalid[] = {"",   "-",   "01",  "-01", "1.", ".5",   "+1",
                             "1e", "1e+", "--1", "x",   "-a", "1.e5", "00"};
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        assert_int_equal(scan(invalid[i], &d), 0);
    /* a valid prefix is taken: the caller sees what follows */
    assert_int_equal(scan("12abc", &d), 2);
    assert_int_equal(scan("0x10", &d), 1);
    assert_int_equal(scan("1.5.5", &d), 3);
    assert_int_equal(scan("7,", &d), 1);

    /* never reads at or past n, even when the buffer continues */
    assert_int_equal(mg_numfmt_scan("123", 2, &d), 2);
    assert_int_equal(d.mant, 12);
    assert_int_equal(mg_numfmt_scan("1.5", 2, &d), 0);
    assert_int_equal(mg_numfmt_scan("1e5", 2, &d), 0);
    assert_int_equal(mg_numfmt_scan("-1", 1, &d), 0);
}

static void test_scan_decompose(void **state)
{
    (void)state;
    mg_numfmt_decimal_t d;
    scan("123.456e2", &d);
    assert_int_equal(d.mant, 123456);
    assert_int_equal(d.exp10, -1);
    assert_false(d.integer);
    assert_false(d.neg);
    scan("-0.00123", &d);
    assert_int_equal(d.mant, 123);
    assert_int_equal(d.exp10, -5);
    assert_true(d.neg);
    scan("42", &d);
    assert_int_equal(d.mant, 42);
    assert_int_equal(d.exp10, 0);
    assert_true(d.integer);
    assert_false(d.long_int);
    scan("1234567890123456789012", &d); /* 22 digits: 19 kept */
    assert_int_equal(d.mant, 1234567890123456789ull);
    assert_int_equal(d.exp10, 3);
    assert_true(d.inexact);
    assert_true(d.long_int);
    scan("1000000000000000000000", &d);
    assert_false(d.inexact);
    assert_true(d.long_int);
    scan("0.12345678901234567891234", &d);
    assert_int_equal(d.mant, 1234567890123456789ull);
    assert_int_equal(d.exp10, -19);
    assert_true(d.inexact);
    scan("1e999999999999999999999", &d);
    assert_int_equal(d.exp10, 1000000);
    scan("1e-999999999999999999999", &d);
    assert_int_equal(d.exp10, -1000000);
    scan("0e99", &d);
    assert_int_equal(d.mant, 0);
    assert_int_equal(d.exp10, 0);
}

static void test_to_int(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int bits;
        int rc;
        int64_t v;
    } scases[] = {
        {"127", 8, 0, 127},
        {"-128", 8, 0, -128},
        {"128", 8, MG_ERANGE, 0},
        {"-129", 8, MG_ERANGE, 0},
        {"32767", 16, 0, 32767},
        {"-32768", 16, 0, -32768},
        {"32768", 16, MG_ERANGE, 0},
        {"2147483647", 32, 0, 2147483647},
        {"-2147483648", 32, 0, INT32_MIN},
        {"2147483648", 32, MG_ERANGE, 0},
        {"9223372036854775807", 64, 0, INT64_MAX},
        {"-9223372036854775808", 64, 0, INT64_MIN},
        {"9223372036854775808", 64, MG_ERANGE, 0},
        {"-9223372036854775809", 64, MG_ERANGE, 0},
        {"99999999999999999999", 64, MG_ERANGE, 0},
        {"-0", 8, 0, 0},
        {"1.0", 32, MG_EDTYPE, 0},
        {"1.5", 32, MG_EDTYPE, 0},
        {"1e2", 32, MG_EDTYPE, 0},
    };
    for (size_t i = 0; i < sizeof(scases) / sizeof(scases[0]); i++) {
        mg_numfmt_decimal_t d;
        int64_t v = 0;
        scan(scases[i].s, &d);
        assert_int_equal(mg_numfmt_to_int(&d, scases[i].bits, &v), scases[i].rc);
        if (scases[i].rc == 0)
            assert_true(v == scases[i].v);
    }
    static const struct {
        const char *s;
        int bits;
        int rc;
        uint64_t v;
    } ucases[] = {
        {"255", 8, 0, 255},
        {"256", 8, MG_ERANGE, 0},
        {"65535", 16, 0, 65535},
        {"65536", 16, MG_ERANGE, 0},
        {"4294967295", 32, 0, UINT32_MAX},
        {"4294967296", 32, MG_ERANGE, 0},
        {"18446744073709551615", 64, 0, UINT64_MAX},
        {"18446744073709551616", 64, MG_ERANGE, 0},
        {"10000000000000000000", 64, 0, 10000000000000000000ull},
        {"100000000000000000000", 64, MG_ERANGE, 0},
        {"-1", 8, MG_ERANGE, 0},
        {"-0", 64, 0, 0},
        {"0", 8, 0, 0},
        {"2.5", 8, MG_EDTYPE, 0},
        {"1E0", 8, MG_EDTYPE, 0},
    };
    for (size_t i = 0; i < sizeof(ucases) / sizeof(ucases[0]); i++) {
        mg_numfmt_decimal_t d;
        uint64_t v = 0;
        scan(ucases[i].s, &d);
        assert_int_equal(mg_numfmt_to_uint(&d, ucases[i].bits, &v), ucases[i].rc);
        if (ucases[i].rc == 0)
            assert_true(v == ucases[i].v);
    }
}

/* ---- decimal to binary floating point ---- */

/* A random decimal string: up to max_digits digits, maybe a point, maybe an exponent. */
static void random_decimal(char *buf, int max_digits, int max_exp)
{
    char *o = buf;
    if (rnd() & 1)
        *o++ = '-';
    int nd = 1 + (int)(rnd() % (uint64_t)max_digits);
    char digits[64];
    digits[0] = (char)('1' + rnd() % 9);
    for (int i = 1; i < nd; i++)
        digits[i] = (char)('0' + rnd() % 10);
    if (rnd() % 4 == 0) {
        /* 0.000ddd */
        *o++ = '0';
        *o++ = '.';
        for (int z = (int)(rnd() % 6); z > 0; z--)
            *o++ = '0';
        memcpy(o, digits, (size_t)nd);
        o += nd;
    } else {
        int ip = 1 + (int)(rnd() % (uint64_t)nd); /* digits before the point */
        memcpy(o, digits, (size_t)ip);
        o += ip;
        if (ip < nd) {
            *o++ = '.';
            memcpy(o, digits + ip, (size_t)(nd - ip));
            o += nd - ip;
        }
    }
    if (rnd() & 1)
        o += sprintf(o, "%s%d", (rnd() & 1) ? "e" : "E",
                     (int)(rnd() % (uint64_t)(2 * max_exp + 1)) - max_exp);
    *o = '\0';
}

static void test_to_f64(void **state)
{
    (void)state;
    static const char *fixed[] = {
        "0",
        "-0",
        "1",
        "0.1",
        "0.3",
        "1e22",
        "1e23",
        "9007199254740993",
        "2.2250738585072011e-308",
        "2.2250738585072014e-308",
        "4.9e-324",
        "2.4703282292062327e-324",
        "1.7976931348623157e308",
        "0.30000000000000004",
        "123456789012345678901234567890e-10",
        "1e-400",
        "17.5",
        "0.000000000000000000000000000000000000000000001",
        "7.2057594037927933e16",
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        double v, want = strtod(fixed[i], NULL);
        assert_int_equal(to_f64(fixed[i], &v), 0);
        if (d2u(v) != d2u(want))
            fail_msg("%s: got %.17g want %.17g", fixed[i], v, want);
    }
    double v;
    assert_int_equal(to_f64("1e309", &v), MG_ERANGE);
    assert_int_equal(to_f64("-1.8e308", &v), MG_ERANGE);
    assert_int_equal(to_f64("1e-99999999", &v), 0);
    assert_true(v == 0.0);

    /* a 1000-digit number exercises the truncated-with-sticky slow path */
    char big[1100];
    big[0] = '1';
    big[1] = '.';
    memset(big + 2, '0', 1000);
    big[900] = '5';
    strcpy(big + 1002, "e-5");
    double want = strtod(big, NULL);
    assert_int_equal(to_f64(big, &v), 0);
    assert_true(d2u(v) == d2u(want));

    /* halfway between two doubles, with and without a far non-zero digit */
    const char *half = "9007199254740993"; /* 2^53 + 1: ties to even */
    assert_int_equal(to_f64(half, &v), 0);
    assert_true(v == 9007199254740992.0);
    char nudged[900];
    snprintf(nudged, sizeof(nudged), "9007199254740993.%0800d1", 0);
    assert_int_equal(to_f64(nudged, &v), 0);
    assert_true(v == 9007199254740994.0);

    for (int i = 0; i < 200000; i++) {
        char buf[64];
        random_decimal(buf, i % 4 == 0 ? 25 : 17, i % 3 == 0 ? 330 : 30);
        double got = 0, exp = strtod(buf, NULL);
        int rc = to_f64(buf, &got);
        if (isinf(exp)) {
            assert_int_equal(rc, MG_ERANGE);
            continue;
        }
        assert_int_equal(rc, 0);
        if (d2u(got) != d2u(exp))
            fail_msg("%s: got %a want %a", buf, got, exp);
    }
    for (int i = 0; i < 100000; i++) {
        /* every double printed %.17g reads back exactly */
        double x = u2d(rnd());
        if (!isfinite(x))
            continue;
        char buf[40];
        snprintf(buf, sizeof(buf), "%.17g", x);
        if (strchr(buf, 'e') && strchr(buf, '+'))
            memmove(strchr(buf, '+'), strchr(buf, '+') + 1, strlen(strchr(buf, '+')));
        assert_int_equal(to_f64(buf, &v), 0);
        assert_true(d2u(v) == d2u(x));
    }
}

static void test_to_f32(void **state)
{
    (void)state;
    static const char *fixed[] = {
        "0",
        "-0",
        "0.1",
        "16",
        "0.0625",
        "3.4028235e38",
        "3.40282356e38",
        "1.17549435e-38",
        "1e-45",
        "1.4e-45",
        "7e-46",
        "7.006492321624085e-46",
        "0.30000001192092896",
        "1.00000005960464477539062",
        "1.000000059604644775390625",
        "1.000000059604644775390626",
        "16777217",
        "33554434",
        "33554435",
        "123456789012345678901234567890",
        "1e-60",
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        float f, want = strtof(fixed[i], NULL);
        assert_int_equal(to_f32(fixed[i], &f), 0);
        if (f2u(f) != f2u(want))
            fail_msg("%s: got %a want %a", fixed[i], (double)f, (double)want);
    }
    float f;
    assert_int_equal(to_f32("3.40282356e38", &f), 0);
    assert_true(f == FLT_MAX);
    assert_int_equal(to_f32("3.40282357e38", &f), MG_ERANGE); /* past FLT_MAX + half ulp */
    assert_int_equal(to_f32("1e39", &f), MG_ERANGE);
    assert_int_equal(to_f32("-1e39", &f), MG_ERANGE);

    /* random decimals of every length, including the 17-digit ones Python writes */
    for (int i = 0; i < 300000; i++) {
        char buf[64];
        random_decimal(buf, i % 4 == 0 ? 25 : 12, i % 3 == 0 ? 50 : 12);
        float got = 0, want = strtof(buf, NULL);
        int rc = to_f32(buf, &got);
        if (isinf(want)) {
            assert_int_equal(rc, MG_ERANGE);
            continue;
        }
        assert_int_equal(rc, 0);
        if (f2u(got) != f2u(want))
            fail_msg("%s: got %a want %a", buf, (double)got, (double)want);
    }
    /* exact half-way points between adjacent floats, and a hair either side */
    for (int i = 0; i < 100000; i++) {
        float a = u2f((uint32_t)rnd() & 0x7f7fffffu);
        float b = nextafterf(a, INFINITY);
        if (!isfinite(b))
            continue;
        double mid = ((double)a + (double)b) / 2; /* exact */
        char buf[1200];
        snprintf(buf, sizeof(buf), "%.120e", mid); /* enough digits to be exact */
        char *e = strchr(buf, 'e');
        char exppart[16];
        snprintf(exppart, sizeof(exppart), "%s", e);
        float want = strtof(buf, NULL);
        assert_int_equal(to_f32(buf, &f), 0);
        assert_true(f2u(f) == f2u(want));
        /* a hair above the midpoint */
        snprintf(e, sizeof(buf) - (size_t)(e - buf), "1%s", exppart);
        want = strtof(buf, NULL);
        assert_int_equal(to_f32(buf, &f), 0);
        assert_true(f2u(f) == f2u(b));
        assert_true(f2u(want) == f2u(b));
    }
    /* 17-significant-digit text of float values (the common client format) */
    for (int i = 0; i < 200000; i++) {
        float x = u2f((uint32_t)rnd());
        if (!isfinite(x))
            continue;
        char buf[40];
        snprintf(buf, sizeof(buf), "%.17g", (double)x);
        if (strchr(buf, 'e') && strchr(buf, '+'))
            memmove(strchr(buf, '+'), strchr(buf, '+') + 1, strlen(strchr(buf, '+')));
        assert_int_equal(to_f32(buf, &f), 0);
        assert_true(f2u(f) == f2u(x));
    }
}

/* The half nearest to x by search over all finite halves (ties to even), as a reference. */
static uint16_t ref_half(double x)
{
    if (isnan(x))
        return 0x7e00;
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    double a = fabs(x);
    if (a >= 65520.0)
        return sign | 0x7c00;
    uint16_t lo = 0, hi = 0x7bff;
    while (lo < hi) { /* largest half <= a */
        uint16_t mid = (uint16_t)((lo + hi + 1) / 2);
        if (mg_numfmt_f16_to_f32(mid) <= a)
            lo = mid;
        else
            hi = (uint16_t)(mid - 1);
    }
    double below = mg_numfmt_f16_to_f32(lo);
    if (below == a || lo == 0x7bff)
        return sign | lo;
    double above = mg_numfmt_f16_to_f32((uint16_t)(lo + 1));
    double dl = a - below, du = above - a;
    if (dl < du || (dl == du && (lo & 1) == 0))
        return sign | lo;
    return (uint16_t)(sign | (lo + 1));
}

static void test_f16_conversions(void **state)
{
    (void)state;
    assert_true(mg_numfmt_f16_to_f32(0x3c00) == 1.0f);
    assert_true(mg_numfmt_f16_to_f32(0xc000) == -2.0f);
    assert_true(mg_numfmt_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(mg_numfmt_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(mg_numfmt_f16_to_f32(0x03ff) == 1023 * 0x1p-24f);
    assert_true(mg_numfmt_f16_to_f32(0x0400) == 0x1p-14f);
    assert_true(isinf(mg_numfmt_f16_to_f32(0x7c00)));
    assert_true(isinf(mg_numfmt_f16_to_f32(0xfc00)) && mg_numfmt_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(mg_numfmt_f16_to_f32(0x7e00)));
    assert_true(signbit(mg_numfmt_f16_to_f32(0x8000)));

    assert_int_equal(mg_numfmt_f16_from_f32(1.0f), 0x3c00);
    assert_int_equal(mg_numfmt_f16_from_f32(-0.0f), 0x8000);
    assert_int_equal(mg_numfmt_f16_from_f32(65504.0f), 0x7bff);
    assert_int_equal(mg_numfmt_f16_from_f32(65519.0f), 0x7bff);
    assert_int_equal(mg_numfmt_f16_from_f32(65520.0f), 0x7c00);
    assert_int_equal(mg_numfmt_f16_from_f32(INFINITY), 0x7c00);
    assert_int_equal(mg_numfmt_f16_from_f32(-INFINITY), 0xfc00);
    assert_int_equal(mg_numfmt_f16_from_f32(NAN) & 0x7e00, 0x7e00);
    assert_int_equal(mg_numfmt_f16_from_f32(0x1p-25f), 0x0000);        /* tie -> even 0 */
    assert_int_equal(mg_numfmt_f16_from_f32(0x1.000002p-25f), 0x0001); /* just above */
    assert_int_equal(mg_numfmt_f16_from_f32(0x3p-25f), 0x0002);        /* 1.5 units: even */
    assert_int_equal(mg_numfmt_f16_from_f32(1e-10f), 0x0000);
    assert_int_equal(mg_numfmt_f16_from_f32(0x1.ff8p-15f), 0x03ff); /* largest subnormal */
    assert_int_equal(mg_numfmt_f16_from_f32(0x1.ffap-15f), 0x03ff);
    assert_int_equal(mg_numfmt_f16_from_f32(0x1.ffcp-15f), 0x0400);  /* tie: up to even */
    assert_int_equal(mg_numfmt_f16_from_f64(1.0 + 0x1p-11), 0x3c00); /* tie -> even */
    assert_int_equal(mg_numfmt_f16_from_f64(1.0 + 0x1p-11 + 0x1p-40), 0x3c01);

    /* every half survives half -> float -> half, and -> decimal text -> half */
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = mg_numfmt_f16_to_f32((uint16_t)h);
        if (isnan(f)) {
            assert_true((mg_numfmt_f16_from_f32(f) & 0x7c00) == 0x7c00);
            continue;
        }
        assert_int_equal(mg_numfmt_f16_from_f32(f), h);
        if (isinf(f))
            continue;
        char buf[48];
        uint16_t back;
        snprintf(buf, sizeof(buf), "%.17g", (double)f);
        if (strchr(buf, '+'))
            memmove(strchr(buf, '+'), strchr(buf, '+') + 1, strlen(strchr(buf, '+')));
        assert_int_equal(to_f16(buf, &back), 0);
        assert_int_equal(back, h);
        /* the midpoint to the next half rounds to even; a hair above rounds up */
        if ((h & 0x7fff) < 0x7bff) {
            double mid = ((double)f + mg_numfmt_f16_to_f32((uint16_t)(h + 1))) / 2;
            snprintf(buf, sizeof(buf), "%.30e", mid);
            assert_int_equal(to_f16(buf, &back), 0);
            assert_int_equal(back, ref_half(mid));
        }
    }
    /* random floats against the search reference */
    for (int i = 0; i < 200000; i++) {
        float f = u2f((uint32_t)rnd());
        if (i % 2)
            f = ldexpf((float)(rnd() % 100000) / 1000.0f, (int)(rnd() % 40) - 30);
        if (isnan(f))
            continue;
        assert_int_equal(mg_numfmt_f16_from_f32(f), ref_half(f));
    }
    uint16_t h;
    assert_int_equal(to_f16("65504", &h), 0);
    assert_int_equal(h, 0x7bff);
    assert_int_equal(to_f16("65519.99", &h), 0);
    assert_int_equal(h, 0x7bff);
    assert_int_equal(to_f16("65520", &h), MG_ERANGE);
    assert_int_equal(to_f16("-1e6", &h), MG_ERANGE);
    assert_int_equal(to_f16("1.5", &h), 0);
    assert_int_equal(h, 0x3e00);
    assert_int_equal(to_f16("-0.0", &h), 0);
    assert_int_equal(h, 0x8000);
    assert_int_equal(to_f16("1e-9", &h), 0);
    assert_int_equal(h, 0);
    assert_int_equal(to_f16("5.96e-8", &h), 0);
    assert_int_equal(h, 1);
}

/* ---- formatting ---- */

static void test_write_ints(void **state)
{
    (void)state;
    char buf[32], want[32];
    const uint64_t us[] = {
        0,         1, 9, 10, 99, 100, 101, 999, 1000, 65535, 4294967295ull, 10000000000000000000ull,
        UINT64_MAX};
    for (size_t i = 0; i < sizeof(us) / sizeof(us[0]); i++) {
        size_t n = mg_numfmt_write_u64(buf, us[i]);
        buf[n] = '\0';
        snprintf(want, sizeof(want), "%llu", (unsigned long long)us[i]);
        assert_string_equal(buf, want);
    }
    const int64_t ss[] = {0, -1, 1, -9, -10, 127, -128, INT32_MIN, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(ss) / sizeof(ss[0]); i++) {
        size_t n = mg_numfmt_write_i64(buf, ss[i]);
        buf[n] = '\0';
        snprintf(want, sizeof(want), "%lld", (long long)ss[i]);
        assert_string_equal(buf, want);
    }
    for (int i = 0; i < 100000; i++) {
        int64_t v = (int64_t)(rnd() >> (rnd() % 64));
        if (rnd() & 1)
            v = -v;
        size_t n = mg_numfmt_write_i64(buf, v);
        assert_true(n <= MG_NUMFMT_INT_MAX);
        buf[n] = '\0';
        snprintf(want, sizeof(want), "%lld", (long long)v);
        assert_string_equal(buf, want);
    }
}

static void test_write_f32_known(void **state)
{
    (void)state;
    static const struct {
        float v;
        const char *want;
    } cases[] = {
        {0.1f, "0.1"},
        {0.3f, "0.3"},
        {1.0f, "1.0"},
        {-1.0f, "-1.0"},
        {2.5f, "2.5"},
        {100.0f, "100.0"},
        {0.0f, "0.0"},
        {-0.0f, "-0.0"},
        {0.0625f, "0.0625"},
        {123456.0f, "123456.0"},
        {16777216.0f, "16777216.0"},
        {1e15f, "1000000000000000.0"},
        {1e16f, "1e16"},
        {1.5e17f, "1.5e17"},
        {0.0001f, "0.0001"},
        {0.00001f, "1e-5"},
        {1.5e-7f, "1.5e-7"},
        {3.4028235e38f, "3.4028235e38"},
        {1.17549435e-38f, "1.1754944e-38"},
        {1e-45f, "1e-45"},
        {0.33333334f, "0.33333334"},
        {0.2f, "0.2"},
        {1.1f, "1.1"},
        {3.14159274f, "3.1415927"},
    };
    char buf[MG_NUMFMT_F32_MAX + 1];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fmt32(cases[i].v, buf);
        if (strcmp(buf, cases[i].want) != 0)
            fail_msg("%a: got %s want %s", (double)cases[i].v, buf, cases[i].want);
    }
    fmt32(NAN, buf);
    assert_string_equal(buf, "\"NaN\"");
    fmt32(INFINITY, buf);
    assert_string_equal(buf, "\"Infinity\"");
    fmt32(-INFINITY, buf);
    assert_string_equal(buf, "\"-Infinity\"");
}

/* Significant digits in a formatted number. */
static int sig_digits(const char *s)
{
    int n = 0, pending = 0;
    bool started = false;
    for (; *s && *s != 'e'; s++) {
        if (*s < '0' || *s > '9')
            continue;
        if (*s != '0')
            started = true;
        if (!started)
            continue;
        if (*s == '0') {
            pending++;
        } else {
            n += pending + 1;
            pending = 0;
        }
    }
    return n;
}

static void check_f32_shortest(float x)
{
    char buf[MG_NUMFMT_F32_MAX + 1];
    fmt32(x, buf);
    float back = strtof(buf, NULL);
    if (f2u(back) != f2u(x))
        fail_msg("%a -> %s -> %a", (double)x, buf, (double)back);
    if (x == 0.0f)
        return;
    int n = sig_digits(buf);
    if (n < 1 || n > 9)
        fail_msg("%a -> %s has %d digits", (double)x, buf, n);
    if (n > 1) {
        /* the nearest decimal with one digit fewer must not read back */
        char shorter[48];
        snprintf(shorter, sizeof(shorter), "%.*e", n - 2, (double)x);
        if (f2u(strtof(shorter, NULL)) == f2u(x))
            fail_msg("%a -> %s, but %s is shorter", (double)x, buf, shorter);
    }
}

static void test_write_f32_roundtrip(void **state)
{
    (void)state;
    for (int i = 0; i < 1000000; i++) {
        float x = u2f((uint32_t)rnd());
        if (isfinite(x))
            check_f32_shortest(x);
    }
    /* every power of two (the lopsided rounding intervals), subnormals, and nearby values */
    for (int e = -149; e <= 127; e++) {
        float p = ldexpf(1.0f, e);
        check_f32_shortest(p);
        check_f32_shortest(nextafterf(p, 0));
        check_f32_shortest(nextafterf(p, INFINITY));
    }
    for (uint32_t u = 1; u < 5000; u++)
        check_f32_shortest(u2f(u));
    check_f32_shortest(FLT_MAX);
    check_f32_shortest(-FLT_MAX);
    /* small integers and simple fractions stay short */
    for (int i = -1000; i <= 1000; i++) {
        check_f32_shortest((float)i);
        check_f32_shortest((float)i / 16.0f);
        check_f32_shortest((float)i / 10.0f);
    }
}

static void test_write_f64(void **state)
{
    (void)state;
    char buf[MG_NUMFMT_F64_MAX + 1];
    fmt64(0.1, buf);
    assert_string_equal(buf, "0.1");
    fmt64(1.0, buf);
    assert_string_equal(buf, "1.0");
    fmt64(-0.0, buf);
    assert_string_equal(buf, "-0.0");
    fmt64(0.0, buf);
    assert_string_equal(buf, "0.0");
    fmt64(0.30000000000000004, buf);
    assert_string_equal(buf, "0.30000000000000004");
    fmt64(1e300, buf);
    assert_string_equal(buf, "1e+300");
    fmt64(NAN, buf);
    assert_string_equal(buf, "\"NaN\"");
    fmt64(-INFINITY, buf);
    assert_string_equal(buf, "\"-Infinity\"");
    for (int i = 0; i < 200000; i++) {
        double x = u2d(rnd());
        if (!isfinite(x))
            continue;
        fmt64(x, buf);
        assert_true(d2u(strtod(buf, NULL)) == d2u(x));
        /* valid JSON number */
        mg_numfmt_decimal_t d;
        assert_int_equal(mg_numfmt_scan(buf, strlen(buf), &d), strlen(buf));
    }
    fmt64(DBL_MAX, buf);
    assert_true(strtod(buf, NULL) == DBL_MAX);
    fmt64(4.9e-324, buf);
    assert_true(strtod(buf, NULL) == 4.9e-324);
}

static void test_formatted_is_json(void **state)
{
    (void)state;
    /* everything write_f32 emits is a valid JSON number (or string) that scans fully */
    for (int i = 0; i < 100000; i++) {
        float x = u2f((uint32_t)rnd());
        char buf[MG_NUMFMT_F32_MAX + 1];
        fmt32(x, buf);
        size_t n = strlen(buf);
        mg_err_t err;
        if (isfinite(x)) {
            mg_numfmt_decimal_t d;
            assert_int_equal(mg_numfmt_scan(buf, n, &d), n);
            float back;
            assert_int_equal(mg_numfmt_to_f32(&d, &back), 0);
            assert_true(f2u(back) == f2u(x));
        } else {
            assert_int_equal(check_doc(buf, &err), 0);
        }
    }
}

/* ---- small writers ---- */

static void test_put_helpers(void **state)
{
    (void)state;
    mg_buf_t out = {0};
    assert_int_equal(mg_json_put_float(&out, 0.1f), 0);
    assert_int_equal(mg_buf_append(&out, ",", 1), 0);
    assert_int_equal(mg_json_put_float(&out, -INFINITY), 0);
    assert_int_equal(mg_buf_append(&out, ",", 1), 0);
    assert_int_equal(mg_json_put_double(&out, 0.1), 0);
    assert_int_equal(mg_buf_append(&out, ",", 1), 0);
    assert_int_equal(mg_json_put_double(&out, 2.0), 0);
    assert_int_equal(mg_buf_append(&out, ",", 1), 0);
    assert_int_equal(mg_json_put_double(&out, NAN), 0);
    const char *want = "0.1,\"-Infinity\",0.1,2.0,\"NaN\"";
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, out.len);

    mg_buf_reset(&out);
    assert_int_equal(mg_json_put_error(&out, "input 'x': bad \"value\"\n"), 0);
    want = "{\"error\":\"input 'x': bad \\\"value\\\"\\n\"}";
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, out.len);
    mg_buf_reset(&out);
    assert_int_equal(mg_json_put_error(&out, ""), 0);
    assert_int_equal(out.len, strlen("{\"error\":\"\"}"));

    mg_buf_reset(&out);
    assert_int_equal(mg_json_put_u64(&out, UINT64_MAX), 0);
    assert_int_equal(mg_json_put_str(&out, "a\"b"), 0);
    assert_int_equal(mg_json_put_str(&out, NULL), 0);
    want = "18446744073709551615\"a\\\"b\"\"\"";
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, out.len);
    mg_buf_free(&out);
}

/*
 * mg_numfmt_f32_plain, the FP32 fast path of the tensor decoder: wherever it takes a token,
 * its float has the same bits as mg_numfmt_scan + mg_numfmt_to_f32 (correct rounding); it
 * leaves everything else to them, and never reads past the end it is given.
 */
static void test_f32_plain(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t taken; /* 0: left to the general scanner */
    } cases[] = {
        {"0", 1},
        {"-0", 2},
        {"0.0", 3},
        {"-0.0", 4},
        {"16.0", 4},
        {"7", 1},
        {"0.1", 3},
        {"3.14159", 7},
        {"16777216", 8},
        {"1677721.6", 9},
        {"0.0000000001", 12},
        {"-123.456", 8},
        {"16777217", 0},
        {"1677721.7", 0},
        {"0.00000000001", 0},
        {"1e5", 0},
        {"1.5E3", 0},
        {"01", 0},
        {"-", 0},
        {"1.", 0},
        {".5", 0},
        {"+1", 0},
        {"", 0},
        {"-a", 0},
        {"12,", 2},
        {"0.5]", 3},
        {"4 ", 1},
        {"99999999", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *t = cases[i].text;
        size_t n = strlen(t);
        /* followed by the ']' the decoder guarantees, and nothing: a read past it is caught */
        char text[40];
        snprintf(text, sizeof(text), "%s]", t);
        char *p = exact(text, n + 1);
        float got = 0;
        size_t k = mg_numfmt_f32_plain(p, &got);
        free(p);
        if (k != cases[i].taken)
            fail_msg("'%s': took %zu bytes, want %zu", t, k, cases[i].taken);
        if (k == 0)
            continue;
        char tok[32];
        snprintf(tok, sizeof(tok), "%.*s", (int)k, t);
        float want;
        assert_int_equal(to_f32(tok, &want), 0);
        if (memcmp(&got, &want, sizeof(got)) != 0)
            fail_msg("'%s': %a, the general path gives %a", tok, (double)got, (double)want);
    }
    /* Random tokens of every shape the fast path takes: the same bits as the general path. */
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t m = (uint32_t)(x % (1u << 24 | 1u));
        int frac = (int)((x >> 32) % 11), neg = (int)((x >> 40) & 1);
        char tok[40], digits[16];
        int nd = snprintf(digits, sizeof(digits), "%0*u", frac + 1, m);
        if (frac == 0)
            snprintf(tok, sizeof(tok), "%s%s", neg ? "-" : "", digits);
        else
            snprintf(tok, sizeof(tok), "%s%.*s.%s", neg ? "-" : "", nd - frac, digits,
                     digits + nd - frac);
        float got, want;
        if (mg_numfmt_f32_plain(tok, &got) != strlen(tok))
            fail_msg("'%s' was not taken", tok);
        assert_int_equal(to_f32(tok, &want), 0);
        if (memcmp(&got, &want, sizeof(got)) != 0)
            fail_msg("'%s': %a, the general path gives %a", tok, (double)got, (double)want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peek_kinds),
        cmocka_unit_test(test_walk_object),
        cmocka_unit_test(test_empty_and_nested),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_first_error_wins),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_strings_every_place),
        cmocka_unit_test(test_str_eq),
        cmocka_unit_test(test_scan_grammar),
        cmocka_unit_test(test_scan_decompose),
        cmocka_unit_test(test_to_int),
        cmocka_unit_test(test_to_f64),
        cmocka_unit_test(test_to_f32),
        cmocka_unit_test(test_f16_conversions),
        cmocka_unit_test(test_write_ints),
        cmocka_unit_test(test_write_f32_known),
        cmocka_unit_test(test_write_f32_roundtrip),
        cmocka_unit_test(test_write_f64),
        cmocka_unit_test(test_formatted_is_json),
        cmocka_unit_test(test_put_helpers),
        cmocka_unit_test(test_f32_plain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
