/*
 * Unit tests for the KServe v2 codec (proto/kserve.h): request decoding (JSON tensors and
 * the binary extension) and response encoding. Bodies are copied into exact-size heap blocks
 * so sanitizer builds catch reads past the end.
 */
/* cmocka.h needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto/json.h"
#include "proto/kserve.h"
#include "proto/tensor_json.h"

#include "fixture.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixtures ---- */

/* Decodes `len` bytes of `body` (copied to an exact-size block) with `header_len`. */
static int decode_n(fixture_t *f, const char *body, size_t len, size_t header_len)
{
    keep_body(f, body, len);
    mg_arena_reset(&f->arena);
    mg_err_clear(&f->err);
    f->req.arena = &f->arena;
    int rc = mg_kserve_decode_request(f->body, len, header_len, &f->req, &f->err);
    if (rc != 0)
        assert_int_equal(f->err.code, rc);
    return rc;
}

static int decode(fixture_t *f, const char *json)
{
    return decode_n(f, json, strlen(json), MG_KSERVE_NO_BINARY);
}

/* Asserts a failed decode with `code` and a message containing `want`. */
static void expect_fail(fixture_t *f, const char *json, int code, const char *want)
{
    int rc = decode(f, json);
    if (rc != code || strstr(f->err.msg, want) == NULL)
        fail_msg("decoding %s\n  got rc %d \"%s\"\n  want rc %d containing \"%s\"", json, rc,
                 f->err.msg, code, want);
}

/* The digits request: 64 pixel values 0..16 as floats, as the Python client writes them. */
static size_t digits_request(char *buf, size_t cap, float *values)
{
    size_t n = (size_t)snprintf(buf, cap,
                                "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,64],"
                                "\"datatype\":\"FP32\",\"data\":[");
    for (int i = 0; i < 64; i++) {
        values[i] = (float)((i * 7) % 17);
        n += (size_t)snprintf(buf + n, cap - n, "%s%.1f", i ? "," : "", (double)values[i]);
    }
    n += (size_t)snprintf(buf + n, cap - n, "]}]}");
    return n;
}

/* ---- decoding: the happy paths ---- */

static void test_decode_digits(void **state)
{
    fixture_t *f = *state;
    char body[2048];
    float want[64];
    size_t n = digits_request(body, sizeof(body), want);
    assert_int_equal(decode_n(f, body, n, MG_KSERVE_NO_BINARY), 0);
    assert_int_equal(f->req.ninputs, 1);
    const mg_tensor_t *t = &f->req.inputs[0];
    assert_true(mg_str_eq(t->name, "input"));
    assert_int_equal(t->dtype, MG_DT_FP32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 1);
    assert_int_equal(t->shape[1], 64);
    assert_int_equal(t->count, 64);
    assert_int_equal(t->nbytes, 256);
    for (int i = 0; i < 64; i++)
        assert_true(f32_at(t, (size_t)i) == want[i]);
    assert_int_equal(f->req.id.len, 0);
    assert_null(f->req.outputs);
    assert_int_equal(f->req.noutputs, 0);
    assert_false(f->req.binary_output);
    /* the name points into the body: zero-copy */
    assert_true(t->name.ptr >= f->body && t->name.ptr < f->body + n);
}

static void test_decode_member_order(void **state)
{
    fixture_t *f = *state;
    /* data before shape and datatype, name last, unknown members everywhere */
    const char *json = "{\"extra\":{\"a\":[1,{\"b\":null}]},\"inputs\":[{\"data\":[[1.5,2],[3,"
                       "-4e0]],\"unknown\":\"x\",\"shape\":[2,2],\"datatype\":\"FP32\","
                       "\"name\":\"late\"}],\"id\":\"q\\\"1\"}";
    assert_int_equal(decode(f, json), 0);
    const mg_tensor_t *t = &f->req.inputs[0];
    assert_true(mg_str_eq(t->name, "late"));
    assert_int_equal(t->count, 4);
    assert_true(f32_at(t, 0) == 1.5f);
    assert_true(f32_at(t, 1) == 2.0f);
    assert_true(f32_at(t, 2) == 3.0f);
    assert_true(f32_at(t, 3) == -4.0f);
    assert_int_equal(f->req.id.len, 3);
    assert_memory_equal(f->req.id.ptr, "q\"1", 3);

    /* nesting is flattened whatever its structure; only the count must match */
    assert_int_equal(decode(f, "{\"inputs\":[{\"name\":\"x\",\"shape\":[2,3],\"datatype\":"
                               "\"INT32\",\"data\":[[1,2],[3,4],[5,[6]]]}]}"),
                     0);
    int32_t v[6];
    memcpy(v, f->req.inputs[0].data, sizeof(v));
    for (int i = 0; i < 6; i++)
        assert_int_equal(v[i], i + 1);

    /* whitespace everywhere */
    assert_int_equal(decode(f, " \n{ \"inputs\" : [ { \"name\" : \"x\" , \"shape\" : [ 1 ] ,"
                               " \"datatype\" : \"BOOL\" , \"data\" : [ true ] } ] } \r\n"),
                     0);
    assert_int_equal(((unsigned char *)f->req.inputs[0].data)[0], 1);
}

static void test_decode_all_dtypes(void **state)
{
    fixture_t *f = *state;
    const char *json =
        "{\"inputs\":["
        "{\"name\":\"b\",\"shape\":[3],\"datatype\":\"BOOL\",\"data\":[true,false,true]},"
        "{\"name\":\"u8\",\"shape\":[2],\"datatype\":\"UINT8\",\"data\":[0,255]},"
        "{\"name\":\"u16\",\"shape\":[2],\"datatype\":\"UINT16\",\"data\":[0,65535]},"
        "{\"name\":\"u32\",\"shape\":[2],\"datatype\":\"UINT32\",\"data\":[1,4294967295]},"
        "{\"name\":\"u64\",\"shape\":[2],\"datatype\":\"UINT64\",\"data\":[-0,"
        "18446744073709551615]},"
        "{\"name\":\"i8\",\"shape\":[2],\"datatype\":\"INT8\",\"data\":[-128,127]},"
        "{\"name\":\"i16\",\"shape\":[2],\"datatype\":\"INT16\",\"data\":[-32768,32767]},"
        "{\"name\":\"i32\",\"shape\":[2],\"datatype\":\"INT32\",\"data\":[-2147483648,7]},"
        "{\"name\":\"i64\",\"shape\":[2],\"datatype\":\"INT64\",\"data\":[-9223372036854775808,"
        "9223372036854775807]},"
        "{\"name\":\"f16\",\"shape\":[4],\"datatype\":\"FP16\",\"data\":[1.5,-2,65504,\"NaN\"]},"
        "{\"name\":\"f32\",\"shape\":[5],\"datatype\":\"FP32\",\"data\":[0.1,1e-3,\"Infinity\","
        "\"-Infinity\",\"NaN\"]},"
        "{\"name\":\"f64\",\"shape\":[3],\"datatype\":\"FP64\",\"data\":[0.1,1e300,"
        "\"-Infinity\"]},"
        "{\"name\":\"s\",\"shape\":[3],\"datatype\":\"BYTES\",\"data\":[\"plain\",\"a\\nb\\u00e9\","
        "\"\"]}"
        "]}";
    assert_int_equal(decode(f, json), 0);
    assert_int_equal(f->req.ninputs, 13);
    const mg_tensor_t *in = f->req.inputs;

    const unsigned char *b = in[0].data;
    assert_int_equal(in[0].dtype, MG_DT_BOOL);
    assert_int_equal(in[0].nbytes, 3);
    assert_true(b[0] == 1 && b[1] == 0 && b[2] == 1);

    const uint8_t *u8 = in[1].data;
    assert_true(u8[0] == 0 && u8[1] == 255);
    uint16_t u16[2];
    memcpy(u16, in[2].data, 4);
    assert_true(u16[0] == 0 && u16[1] == 65535);
    uint32_t u32[2];
    memcpy(u32, in[3].data, 8);
    assert_true(u32[0] == 1 && u32[1] == UINT32_MAX);
    uint64_t u64[2];
    memcpy(u64, in[4].data, 16);
    assert_true(u64[0] == 0 && u64[1] == UINT64_MAX);
    assert_int_equal(in[4].nbytes, 16);
    const int8_t *i8 = in[5].data;
    assert_true(i8[0] == -128 && i8[1] == 127);
    int16_t i16[2];
    memcpy(i16, in[6].data, 4);
    assert_true(i16[0] == -32768 && i16[1] == 32767);
    int32_t i32[2];
    memcpy(i32, in[7].data, 8);
    assert_true(i32[0] == INT32_MIN && i32[1] == 7);
    int64_t i64[2];
    memcpy(i64, in[8].data, 16);
    assert_true(i64[0] == INT64_MIN && i64[1] == INT64_MAX);

    uint16_t h[4];
    memcpy(h, in[9].data, 8);
    assert_int_equal(h[0], 0x3e00);
    assert_int_equal(h[1], 0xc000);
    assert_int_equal(h[2], 0x7bff);
    assert_int_equal(h[3] & 0x7c00, 0x7c00);
    assert_true((h[3] & 0x3ff) != 0);
    assert_int_equal(in[9].nbytes, 8);

    assert_true(f32_at(&in[10], 0) == 0.1f);
    assert_true(f32_at(&in[10], 1) == 1e-3f);
    assert_true(isinf(f32_at(&in[10], 2)) && f32_at(&in[10], 2) > 0);
    assert_true(isinf(f32_at(&in[10], 3)) && f32_at(&in[10], 3) < 0);
    assert_true(isnan(f32_at(&in[10], 4)));

    double d[3];
    memcpy(d, in[11].data, 24);
    assert_true(d[0] == 0.1 && d[1] == 1e300 && isinf(d[2]) && d[2] < 0);

    const mg_str_t *s = in[12].data;
    assert_int_equal(in[12].dtype, MG_DT_BYTES);
    assert_int_equal(in[12].count, 3);
    assert_int_equal(s[0].len, 5);
    assert_memory_equal(s[0].ptr, "plain", 5);
    assert_true(s[0].ptr > f->body); /* no escapes: points into the body */
    assert_int_equal(s[1].len, 5);
    assert_memory_equal(s[1].ptr, "a\nb\xc3\xa9", 5);
    assert_int_equal(s[2].len, 0);
    assert_int_equal(in[12].nbytes, 10); /* BYTES: the sum of element lengths */
}

static void test_decode_outputs(void **state)
{
    fixture_t *f = *state;
    const char *in =
        "\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]";
    char json[512];

    /* outputs before the request parameters: the default still applies */
    snprintf(json, sizeof(json),
             "{\"outputs\":[{\"name\":\"a\",\"parameters\":{\"binary_data\":false}},{\"name\":"
             "\"b\",\"parameters\":{\"other\":1}},{\"name\":\"c\\u0021\"}],%s,\"parameters\":"
             "{\"binary_data_output\":true,\"sequence_id\":7}}",
             in);
    assert_int_equal(decode(f, json), 0);
    assert_true(f->req.binary_output);
    assert_int_equal(f->req.noutputs, 3);
    assert_true(mg_str_eq(f->req.outputs[0].name, "a"));
    assert_false(f->req.outputs[0].binary);
    assert_true(mg_str_eq(f->req.outputs[1].name, "b"));
    assert_true(f->req.outputs[1].binary);
    assert_true(mg_str_eq(f->req.outputs[2].name, "c!"));
    assert_true(f->req.outputs[2].binary);

    snprintf(json, sizeof(json),
             "{%s,\"outputs\":[{\"name\":\"a\",\"parameters\":{\"binary_data\":true}},"
             "{\"name\":\"b\"}]}",
             in);
    assert_int_equal(decode(f, json), 0);
    assert_false(f->req.binary_output);
    assert_true(f->req.outputs[0].binary);
    assert_false(f->req.outputs[1].binary);

    /* many outputs (the arrays grow in the arena) */
    size_t n = (size_t)snprintf(json, sizeof(json), "{%s,\"outputs\":[", in);
    for (int i = 0; i < 20; i++)
        n += (size_t)snprintf(json + n, sizeof(json) - n, "%s{\"name\":\"o%d\"}", i ? "," : "", i);
    snprintf(json + n, sizeof(json) - n, "]}");
    assert_int_equal(decode(f, json), 0);
    assert_int_equal(f->req.noutputs, 20);
    assert_true(mg_str_eq(f->req.outputs[19].name, "o19"));

    snprintf(json, sizeof(json), "{%s,\"outputs\":[{\"parameters\":{}}]}", in);
    expect_fail(f, json, MG_EPARSE, "output #0: missing 'name'");
    snprintf(json, sizeof(json),
             "{%s,\"outputs\":[{\"name\":\"a\",\"parameters\":{\"binary_data\":1}}]}", in);
    expect_fail(f, json, MG_EPARSE, "output 'a': 'binary_data' must be a boolean");
    snprintf(json, sizeof(json), "{%s,\"outputs\":{}}", in);
    expect_fail(f, json, MG_EPARSE, "'outputs' must be an array");
    snprintf(json, sizeof(json), "{%s,\"outputs\":[1]}", in);
    expect_fail(f, json, MG_EPARSE, "output #0: must be an object");
    snprintf(json, sizeof(json), "{%s,\"outputs\":[{\"name\":2}]}", in);
    expect_fail(f, json, MG_EPARSE, "output #0: 'name' must be a string");
    snprintf(json, sizeof(json), "{%s,\"parameters\":{\"binary_data_output\":\"yes\"}}", in);
    expect_fail(f, json, MG_EPARSE, "'binary_data_output' must be a boolean");
    snprintf(json, sizeof(json), "{%s,\"parameters\":[]}", in);
    expect_fail(f, json, MG_EPARSE, "'parameters' must be an object");
}

/* Request-level parameters: scalars kept in order with their text, other kinds skipped. */
static void test_decode_request_params(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(
        decode(f, "{\"inputs\":[],\"parameters\":{\"user_id\":\"a\\u0062c\",\"n\":42,"
                  "\"x\":-1.5e2,\"big\":18446744073709551616,\"on\":true,\"o\":{\"k\":1},"
                  "\"z\":null,\"l\":[1],\"k\\u0065y\":false,\"binary_data_output\":true}}"),
        0);
    assert_true(f->req.binary_output);
    assert_int_equal(f->req.nparams, 6);
    const mg_param_t *p = mg_infer_request_param(&f->req, "user_id", 7);
    assert_non_null(p);
    assert_int_equal(p->kind, MG_PARAM_STRING);
    assert_int_equal(p->text.len, 3);
    assert_memory_equal(p->text.ptr, "abc", 3);
    p = mg_infer_request_param(&f->req, "n", 1);
    assert_int_equal(p->kind, MG_PARAM_INT);
    assert_int_equal(p->num_int, 42);
    assert_memory_equal(p->text.ptr, "42", 2);
    p = mg_infer_request_param(&f->req, "x", 1);
    assert_int_equal(p->kind, MG_PARAM_DOUBLE);
    assert_true(p->num == -150.0);
    assert_int_equal(p->text.len, 6);
    p = mg_infer_request_param(&f->req, "big", 3);
    assert_int_equal(p->kind, MG_PARAM_DOUBLE);
    p = mg_infer_request_param(&f->req, "on", 2);
    assert_int_equal(p->kind, MG_PARAM_BOOL);
    assert_true(p->flag);
    assert_memory_equal(p->text.ptr, "true", 4);
    p = mg_infer_request_param(&f->req, "key", 3); /* an escaped key is matched unescaped */
    assert_non_null(p);
    assert_false(p->flag);
    assert_null(mg_infer_request_param(&f->req, "o", 1));
    assert_null(mg_infer_request_param(&f->req, "z", 1));
    assert_null(mg_infer_request_param(&f->req, "binary_data_output", 18));
    /* Decoding again starts from an empty list. */
    assert_int_equal(decode(f, "{\"inputs\":[]}"), 0);
    assert_int_equal(f->req.nparams, 0);
}

static void test_decode_many_inputs(void **state)
{
    fixture_t *f = *state;
    char json[8192];
    size_t n = (size_t)snprintf(json, sizeof(json), "{\"inputs\":[");
    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(json + n, sizeof(json) - n,
                              "%s{\"name\":\"in%d\",\"shape\":[],\"datatype\":\"INT64\","
                              "\"data\":[%d]}",
                              i ? "," : "", i, i * 1000);
    snprintf(json + n, sizeof(json) - n, "]}");
    assert_int_equal(decode(f, json), 0);
    assert_int_equal(f->req.ninputs, 50);
    for (int i = 0; i < 50; i++) {
        const mg_tensor_t *t = &f->req.inputs[i];
        char name[16];
        snprintf(name, sizeof(name), "in%d", i);
        assert_true(mg_str_eq(t->name, name));
        assert_int_equal(t->ndim, 0); /* a scalar */
        assert_int_equal(t->count, 1);
        int64_t v;
        memcpy(&v, t->data, 8);
        assert_int_equal(v, i * 1000);
    }
    /* an empty inputs array and empty tensors are fine */
    assert_int_equal(decode(f, "{\"inputs\":[]}"), 0);
    assert_int_equal(f->req.ninputs, 0);
    assert_int_equal(decode(f, "{\"inputs\":[{\"name\":\"e\",\"shape\":[0,3],\"datatype\":"
                               "\"FP32\",\"data\":[]}]}"),
                     0);
    assert_int_equal(f->req.inputs[0].count, 0);
    assert_int_equal(f->req.inputs[0].nbytes, 0);
}

/* ---- decoding: errors ---- */

static void test_decode_errors_framing(void **state)
{
    fixture_t *f = *state;
    expect_fail(f, "", MG_EPARSE, "malformed JSON at offset 0: unexpected end of input");
    expect_fail(f, "[]", MG_EPARSE, "malformed JSON at offset 0: expected '{'");
    expect_fail(f, "{\"inputs\" []}", MG_EPARSE, "malformed JSON at offset 10: expected ':'");
    expect_fail(f, "{}", MG_EPARSE, "missing 'inputs' array");
    expect_fail(f, "{\"inputs\":{}}", MG_EPARSE, "'inputs' must be an array");
    expect_fail(f, "{\"inputs\":[]} x", MG_EPARSE,
                "malformed JSON at offset 14: unexpected data after the JSON value");
    expect_fail(f, "{\"inputs\":[],\"inputs\":[]}", MG_EPARSE, "duplicate 'inputs'");
    expect_fail(f, "{\"inputs\":[],\"id\":5}", MG_EPARSE, "'id' must be a string");
    expect_fail(f, "{\"inputs\":[7]}", MG_EPARSE, "input #0: must be an object");
    const char *trailing = "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\","
                           "\"data\":[1,]}]}";
    char want[96];
    snprintf(want, sizeof(want), "malformed JSON at offset %zu: expected a value",
             (size_t)(strstr(trailing, ",]") - trailing) + 1);
    expect_fail(f, trailing, MG_EPARSE, want);
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":"
                "[1}]}",
                MG_EPARSE, "expected ',' or ']'");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":"
                "[1]",
                MG_EPARSE, "unexpected end of input");
    expect_fail(f, "{\"inputs\":[{\"name\":\"x\\q\"}]}", MG_EPARSE, "invalid escape");
}

static void test_decode_errors_members(void **state)
{
    fixture_t *f = *state;
    expect_fail(f, "{\"inputs\":[{\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}", MG_EPARSE,
                "input #0: missing 'name'");
    expect_fail(f, "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"data\":[1]}]}", MG_EPARSE,
                "input 'x': missing 'datatype'");
    expect_fail(f, "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"data\":[1]}]}", MG_EPARSE,
                "input 'x': missing 'shape'");
    expect_fail(f, "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\"}]}", MG_EPARSE,
                "input 'x': needs 'data' or parameters.binary_data_size");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1],"
                "\"parameters\":{\"binary_data_size\":4}}]}",
                MG_EPARSE, "input 'x': has both 'data' and 'binary_data_size'");
    expect_fail(f, "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":1}]}",
                MG_EPARSE, "input 'x': 'data' must be an array");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1],"
                "\"data\":[2]}]}",
                MG_EPARSE, "input 'x': duplicate 'data'");
    expect_fail(f, "{\"inputs\":[{\"name\":\"x\",\"name\":\"y\"}]}", MG_EPARSE,
                "input 'x': duplicate 'name'");
    expect_fail(f, "{\"inputs\":[{\"name\":1}]}", MG_EPARSE, "input #0: 'name' must be a string");
    expect_fail(f, "{\"inputs\":[{\"name\":\"x\",\"datatype\":32}]}", MG_EPARSE,
                "input 'x': 'datatype' must be a string");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"parameters\":"
                "{\"binary_data_size\":-4}}]}",
                MG_EPARSE, "input 'x': 'binary_data_size' must be a non-negative integer");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"parameters\":"
                "{\"binary_data_size\":\"4\"}}]}",
                MG_EPARSE, "'binary_data_size' must be a non-negative integer");
    expect_fail(f, "{\"inputs\":[{\"name\":\"x\",\"parameters\":7}]}", MG_EPARSE,
                "input 'x': 'parameters' must be an object");
    /* the second input is named by position when its name never came */
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"a\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]},"
                "{\"datatype\":\"FP33\"}]}",
                MG_EDTYPE, "input #1: unknown datatype 'FP33'");
}

static void test_decode_errors_dtype(void **state)
{
    fixture_t *f = *state;
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"input\",\"shape\":[1],\"datatype\":\"FP33\","
                "\"data\":[1]}]}",
                MG_EDTYPE, "input 'input': unknown datatype 'FP33'");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"input\",\"shape\":[1],\"datatype\":\"fp32\","
                "\"data\":[1]}]}",
                MG_EDTYPE, "unknown datatype 'fp32'");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[4],\"datatype\":\"BOOL\",\"data\":"
                "[true,false,true,1]}]}",
                MG_EDTYPE, "input 'x': element 3 is not a boolean");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"UINT8\",\"data\":"
                "[1,300]}]}",
                MG_EDTYPE, "input 'x': element 1 (300) is out of range for UINT8");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"UINT32\",\"data\":"
                "[-1]}]}",
                MG_EDTYPE, "input 'x': element 0 (-1) is out of range for UINT32");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"INT8\",\"data\":"
                "[-129]}]}",
                MG_EDTYPE, "element 0 (-129) is out of range for INT8");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"INT64\",\"data\":"
                "[9223372036854775808]}]}",
                MG_EDTYPE, "element 0 (9223372036854775808) is out of range for INT64");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"INT32\",\"data\":"
                "[1,1.5]}]}",
                MG_EDTYPE, "input 'x': element 1 (1.5) is not an integer");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"INT32\",\"data\":"
                "[1e2]}]}",
                MG_EDTYPE, "element 0 (1e2) is not an integer");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"INT16\",\"data\":"
                "[\"1\"]}]}",
                MG_EDTYPE, "element 0 is not an integer");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":"
                "[1,\"abc\"]}]}",
                MG_EDTYPE, "input 'x': element 1 is not a number");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":"
                "[\"nan\"]}]}",
                MG_EDTYPE, "element 0 is not a number");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP64\",\"data\":"
                "[true]}]}",
                MG_EDTYPE, "element 0 is not a number");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":"
                "[null]}]}",
                MG_EDTYPE, "element 0 is not a number");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":"
                "[1e39]}]}",
                MG_EDTYPE, "element 0 (1e39) is out of range for FP32");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP16\",\"data\":"
                "[70000]}]}",
                MG_EDTYPE, "element 0 (70000) is out of range for FP16");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP64\",\"data\":"
                "[1e999]}]}",
                MG_EDTYPE, "element 0 (1e999) is out of range for FP64");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"BYTES\",\"data\":"
                "[\"a\",2]}]}",
                MG_EDTYPE, "input 'x': element 1 is not a string");
    /* the datatype check also applies to deferred data */
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"data\":[true,2],\"shape\":[2],\"datatype\":"
                "\"BOOL\"}]}",
                MG_EDTYPE, "input 'x': element 1 is not a boolean");
}

static void test_decode_errors_shape(void **state)
{
    fixture_t *f = *state;
    char json[2048];
    size_t n = (size_t)snprintf(json, sizeof(json),
                                "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,64],\"datatype\":"
                                "\"FP32\",\"data\":[");
    for (int i = 0; i < 63; i++)
        n += (size_t)snprintf(json + n, sizeof(json) - n, "%s%d.0", i ? "," : "", i);
    snprintf(json + n, sizeof(json) - n, "]}]}");
    expect_fail(f, json, MG_ESHAPE, "input 'input': shape [1,64] needs 64 elements, got 63");

    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":"
                "[1,2,3]}]}",
                MG_ESHAPE, "input 'x': shape [2] needs 2 elements, got 3");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"data\":[1,2,3],\"shape\":[2],\"datatype\":"
                "\"FP32\"}]}",
                MG_ESHAPE, "input 'x': shape [2] needs 2 elements, got 3");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,-1],\"datatype\":\"FP32\",\"data\":"
                "[1]}]}",
                MG_ESHAPE, "input 'x': 'shape' must be an array of non-negative integers");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1.5],\"datatype\":\"FP32\",\"data\":"
                "[1]}]}",
                MG_ESHAPE, "'shape' must be an array of non-negative integers");
    expect_fail(f, "{\"inputs\":[{\"name\":\"x\",\"shape\":[\"1\"],\"datatype\":\"FP32\"}]}",
                MG_ESHAPE, "'shape' must be an array of non-negative integers");
    expect_fail(f, "{\"inputs\":[{\"name\":\"x\",\"shape\":4,\"datatype\":\"FP32\"}]}", MG_ESHAPE,
                "'shape' must be an array of non-negative integers");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1,1,1,1,1,1,1,1],\"datatype\":"
                "\"FP32\"}]}",
                MG_ESHAPE, "input 'x': shape has more than 8 dims");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[4294967296,4294967296],\"datatype\":"
                "\"FP32\",\"data\":[1]}]}",
                MG_ERANGE, "input 'x': shape [4294967296,4294967296] is too large");
    expect_fail(f, "{\"inputs\":[{\"name\":\"x\",\"shape\":[99999999999999999999]}]}", MG_ERANGE,
                "shape dim 99999999999999999999 is too large");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[2305843009213693952],\"datatype\":"
                "\"FP64\",\"data\":[1]}]}",
                MG_ERANGE, "input 'x': shape [2305843009213693952] of FP64 is too large");
    /* a huge shape with tiny data is a mismatch, not a huge allocation */
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1000000000000],\"datatype\":\"FP32\","
                "\"data\":[1,2]}]}",
                MG_ESHAPE, "shape [1000000000000] needs 1000000000000 elements, got 2");
    expect_fail(f,
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[100000000],\"datatype\":\"BYTES\","
                "\"data\":[\"a\"]}]}",
                MG_ESHAPE, "needs 100000000 elements, got 1");

    /* nesting bombs inside data stop at the cursor's depth limit */
    n = (size_t)snprintf(json, sizeof(json),
                         "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\","
                         "\"data\":");
    for (int i = 0; i < 100; i++)
        json[n++] = '[';
    json[n++] = '1';
    for (int i = 0; i < 100; i++)
        json[n++] = ']';
    snprintf(json + n, sizeof(json) - n, "}]}");
    expect_fail(f, json, MG_EPARSE, "nesting deeper than 64");
}

/* ---- the binary extension ---- */

/* Builds JSON + binary parts into an aligned block at offset `skew`; returns the body. */
static char *binary_body(char *block, size_t skew, const char *json, const void *bin,
                         size_t bin_len, size_t *len)
{
    char *body = block + skew;
    size_t jl = strlen(json);
    memcpy(body, json, jl);
    memcpy(body + jl, bin, bin_len);
    *len = jl + bin_len;
    return body;
}

static void test_binary_zero_copy_and_copy(void **state)
{
    fixture_t *f = *state;
    float vals[5] = {1.5f, -2.0f, 0.25f, 1e-20f, 3.0f};
    const char *json = "{\"inputs\":[{\"name\":\"a\",\"shape\":[5],\"datatype\":\"FP32\","
                       "\"parameters\":{\"binary_data_size\":20}}]}";
    size_t jl = strlen(json);
    char *block = aligned_alloc(64, 512);
    assert_non_null(block);
    for (size_t skew = 0; skew < 8; skew++) {
        size_t len;
        char *body = binary_body(block, skew, json, vals, sizeof(vals), &len);
        mg_arena_reset(&f->arena);
        assert_int_equal(mg_kserve_decode_request(body, len, jl, &f->req, &f->err), 0);
        const mg_tensor_t *t = &f->req.inputs[0];
        assert_int_equal(t->count, 5);
        assert_int_equal(t->nbytes, 20);
        assert_memory_equal(t->data, vals, 20);
        bool aligned = ((uintptr_t)(body + jl) % 4) == 0;
        if (aligned)
            assert_ptr_equal(t->data, body + jl); /* zero-copy */
        else
            assert_true((char *)t->data < body || (char *)t->data >= body + len); /* copied */
        assert_int_equal((uintptr_t)t->data % 4, 0);
    }
    free(block);
}

static void test_binary_mixed(void **state)
{
    fixture_t *f = *state;
    int64_t ints[2] = {-7, (int64_t)1 << 40};
    uint16_t halves[3] = {0x3c00, 0xc000, 0x7bff};
    unsigned char bools[2] = {1, 0};
    unsigned char bin[64];
    size_t bl = 0;
    memcpy(bin + bl, ints, 16);
    bl += 16;
    memcpy(bin + bl, halves, 6);
    bl += 6;
    memcpy(bin + bl, bools, 2);
    bl += 2;
    const char *json = "{\"inputs\":[{\"name\":\"i\",\"shape\":[2],\"datatype\":\"INT64\","
                       "\"parameters\":{\"binary_data_size\":16}},{\"name\":\"j\",\"shape\":[2],"
                       "\"datatype\":\"UINT8\",\"data\":[9,8]},{\"name\":\"h\",\"shape\":[3],"
                       "\"datatype\":\"FP16\",\"parameters\":{\"binary_data_size\":6}},{\"name\":"
                       "\"b\",\"shape\":[2],\"datatype\":\"BOOL\",\"parameters\":"
                       "{\"binary_data_size\":2}}]}";
    size_t jl = strlen(json);
    char whole[1024];
    memcpy(whole, json, jl);
    memcpy(whole + jl, bin, bl);
    assert_int_equal(decode_n(f, whole, jl + bl, jl), 0);
    assert_int_equal(f->req.ninputs, 4);
    assert_memory_equal(f->req.inputs[0].data, ints, 16);
    assert_int_equal(f->req.inputs[0].count, 2);
    const uint8_t *u8 = f->req.inputs[1].data;
    assert_true(u8[0] == 9 && u8[1] == 8);
    assert_memory_equal(f->req.inputs[2].data, halves, 6);
    assert_memory_equal(f->req.inputs[3].data, bools, 2);
    assert_int_equal(f->req.inputs[3].nbytes, 2);

    /* a BOOL byte that is not 0/1 */
    whole[jl + bl - 1] = 2;
    assert_int_equal(decode_n(f, whole, jl + bl, jl), MG_EDTYPE);
    assert_string_equal(f->err.msg, "input 'b': element 1 is not a boolean (byte 2)");
}

static void test_binary_bytes(void **state)
{
    fixture_t *f = *state;
    const char *json = "{\"inputs\":[{\"name\":\"s\",\"shape\":[3],\"datatype\":\"BYTES\","
                       "\"parameters\":{\"binary_data_size\":19}}]}";
    size_t jl = strlen(json);
    char whole[512];
    memcpy(whole, json, jl);
    unsigned char bin[19] = {3, 0, 0, 0, 'a', 'b', 'c', 0, 0, 0, 0, 4, 0, 0, 0, 'x', 0, 'y', 'z'};
    memcpy(whole + jl, bin, 19);
    assert_int_equal(decode_n(f, whole, jl + 19, jl), 0);
    const mg_tensor_t *t = &f->req.inputs[0];
    const mg_str_t *s = t->data;
    assert_int_equal(t->count, 3);
    assert_int_equal(t->nbytes, 7);
    assert_int_equal(s[0].len, 3);
    assert_memory_equal(s[0].ptr, "abc", 3);
    assert_ptr_equal(s[0].ptr, f->body + jl + 4); /* points into the body */
    assert_int_equal(s[1].len, 0);
    assert_int_equal(s[2].len, 4);
    assert_memory_equal(s[2].ptr, "x\0yz", 4);

    /* a length that runs past binary_data_size */
    bin[11] = 5;
    memcpy(whole + jl, bin, 19);
    assert_int_equal(decode_n(f, whole, jl + 19, jl), MG_ESHAPE);
    assert_string_equal(f->err.msg, "input 's': binary_data_size 19 does not hold 3 "
                                    "length-prefixed BYTES elements");
    /* bytes left over after the elements */
    bin[11] = 3;
    memcpy(whole + jl, bin, 19);
    assert_int_equal(decode_n(f, whole, jl + 19, jl), MG_ESHAPE);
    /* a huge count with a small size is refused before allocating */
    const char *many = "{\"inputs\":[{\"name\":\"s\",\"shape\":[1000000000],\"datatype\":"
                       "\"BYTES\",\"parameters\":{\"binary_data_size\":8}}]}";
    jl = strlen(many);
    memcpy(whole, many, jl);
    memset(whole + jl, 0, 8);
    assert_int_equal(decode_n(f, whole, jl + 8, jl), MG_ESHAPE);
    assert_non_null(strstr(f->err.msg, "does not hold 1000000000 length-prefixed"));
    /* a huge length prefix never reads past the body */
    const char *one = "{\"inputs\":[{\"name\":\"s\",\"shape\":[1],\"datatype\":\"BYTES\","
                      "\"parameters\":{\"binary_data_size\":6}}]}";
    jl = strlen(one);
    memcpy(whole, one, jl);
    memcpy(whole + jl,
           "\xff\xff\xff\xff"
           "ab",
           6);
    assert_int_equal(decode_n(f, whole, jl + 6, jl), MG_ESHAPE);
}

static void test_binary_errors(void **state)
{
    fixture_t *f = *state;
    char whole[512];
    const char *json = "{\"inputs\":[{\"name\":\"x\",\"shape\":[5],\"datatype\":\"FP32\","
                       "\"parameters\":{\"binary_data_size\":100}}]}";
    size_t jl = strlen(json);
    memcpy(whole, json, jl);
    memset(whole + jl, 0, 100);
    assert_int_equal(decode_n(f, whole, jl + 100, jl), MG_ESHAPE);
    assert_string_equal(
        f->err.msg, "input 'x': binary_data_size 100 does not match shape [5] of FP32 (20 bytes)");

    json = "{\"inputs\":[{\"name\":\"x\",\"shape\":[5],\"datatype\":\"FP32\",\"parameters\":"
           "{\"binary_data_size\":20}}]}";
    jl = strlen(json);
    memcpy(whole, json, jl);
    memset(whole + jl, 0, 21);
    assert_int_equal(decode_n(f, whole, jl + 19, jl), MG_EPARSE);
    assert_string_equal(f->err.msg,
                        "binary inputs need 20 bytes but the body carries 19 after the header");
    assert_int_equal(decode_n(f, whole, jl + 21, jl), MG_EPARSE);
    assert_string_equal(f->err.msg,
                        "binary inputs need 20 bytes but the body carries 21 after the header");
    assert_int_equal(decode_n(f, whole, jl + 20, jl), 0);

    /* header length past the body */
    assert_int_equal(decode_n(f, whole, jl, jl + 1), MG_EPARSE);
    assert_non_null(strstr(f->err.msg, "exceeds the body"));
    /* header length that cuts the JSON */
    assert_int_equal(decode_n(f, whole, jl + 20, jl - 1), MG_EPARSE);
    assert_non_null(strstr(f->err.msg, "malformed JSON"));
    /* header length 0 */
    assert_int_equal(decode_n(f, whole, jl + 20, 0), MG_EPARSE);
    /* binary_data_size without the binary extension */
    assert_int_equal(decode_n(f, whole, jl, MG_KSERVE_NO_BINARY), MG_EPARSE);
    assert_non_null(strstr(f->err.msg, "input 'x': binary_data_size given but the request has "
                                       "no binary part"));

    /* sizes whose sum overflows are refused, never trusted */
    json = "{\"inputs\":[{\"name\":\"a\",\"shape\":[0],\"datatype\":\"BYTES\",\"parameters\":"
           "{\"binary_data_size\":18446744073709551615}},{\"name\":\"b\",\"shape\":[0],"
           "\"datatype\":\"BYTES\",\"parameters\":{\"binary_data_size\":2}}]}";
    jl = strlen(json);
    memcpy(whole, json, jl);
    assert_int_equal(decode_n(f, whole, jl + 1, jl), MG_EPARSE);
    assert_non_null(strstr(f->err.msg, "binary inputs need"));

    /* the binary extension with only JSON inputs: nothing may follow */
    json = "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}";
    jl = strlen(json);
    memcpy(whole, json, jl);
    assert_int_equal(decode_n(f, whole, jl, jl), 0);
    assert_int_equal(decode_n(f, whole, jl + 3, jl), MG_EPARSE);
    assert_string_equal(f->err.msg,
                        "binary inputs need 0 bytes but the body carries 3 after the header");
}

/* ---- encoding responses ---- */

static void test_encode_json(void **state)
{
    fixture_t *f = *state;
    float probs[4] = {0.1f, 1.0f, -2.5f, NAN};
    int64_t labels[2] = {-3, 9000000000LL};
    unsigned char flags[2] = {1, 0};
    uint16_t halves[2] = {0x3e00, 0xfc00};
    double dbl[2] = {0.1, 1e300};
    uint8_t bytes[3] = {0, 128, 255};
    int8_t sbytes[2] = {-128, 127};
    mg_str_t strs[2] = {MG_STR_LIT("a\"b"), MG_STR_LIT("\n")};
    int64_t s14[2] = {1, 4}, s2[1] = {2}, s3[1] = {3};
    mg_tensor_t outs[8] = {
        tensor("probabilities", MG_DT_FP32, 2, s14, probs, 4),
        tensor("label", MG_DT_INT64, 1, s2, labels, 2),
        tensor("flag", MG_DT_BOOL, 1, s2, flags, 2),
        tensor("half", MG_DT_FP16, 1, s2, halves, 2),
        tensor("dbl", MG_DT_FP64, 1, s2, dbl, 2),
        tensor("u8", MG_DT_UINT8, 1, s3, bytes, 3),
        tensor("i8", MG_DT_INT8, 1, s2, sbytes, 2),
        tensor("str", MG_DT_BYTES, 1, s2, strs, 2),
    };
    bool binary[8] = {0};
    mg_infer_response_t resp = {.model_name = "digits",
                                .model_version = "2",
                                .outputs = outs,
                                .binary = binary,
                                .noutputs = 8};
    size_t hl = 0;
    assert_int_equal(mg_kserve_encode_response(&resp, &f->out, &hl), 0);
    assert_true(hl == MG_KSERVE_NO_BINARY);
    const char *want =
        "{\"model_name\":\"digits\",\"model_version\":\"2\",\"outputs\":["
        "{\"name\":\"probabilities\",\"datatype\":\"FP32\",\"shape\":[1,4],\"data\":[0.1,1.0,"
        "-2.5,\"NaN\"]},"
        "{\"name\":\"label\",\"datatype\":\"INT64\",\"shape\":[2],\"data\":[-3,9000000000]},"
        "{\"name\":\"flag\",\"datatype\":\"BOOL\",\"shape\":[2],\"data\":[true,false]},"
        "{\"name\":\"half\",\"datatype\":\"FP16\",\"shape\":[2],\"data\":[1.5,\"-Infinity\"]},"
        "{\"name\":\"dbl\",\"datatype\":\"FP64\",\"shape\":[2],\"data\":[0.1,1e+300]},"
        "{\"name\":\"u8\",\"datatype\":\"UINT8\",\"shape\":[3],\"data\":[0,128,255]},"
        "{\"name\":\"i8\",\"datatype\":\"INT8\",\"shape\":[2],\"data\":[-128,127]},"
        "{\"name\":\"str\",\"datatype\":\"BYTES\",\"shape\":[2],\"data\":[\"a\\\"b\",\"\\n\"]}"
        "]}";
    assert_int_equal(f->out.len, strlen(want));
    assert_memory_equal(f->out.data, want, f->out.len);

    /* appending after existing bytes; id echoed (escaped); empty outputs; NULL names */
    mg_buf_reset(&f->out);
    mg_buf_puts(&f->out, "HDR");
    mg_infer_response_t r2 = {
        .model_name = "m\"", .model_version = NULL, .id = MG_STR_LIT("req\\1"), .noutputs = 0};
    assert_int_equal(mg_kserve_encode_response(&r2, &f->out, &hl), 0);
    const char *want2 = "HDR{\"model_name\":\"m\\\"\",\"model_version\":\"\",\"id\":"
                        "\"req\\\\1\",\"outputs\":[]}";
    assert_int_equal(f->out.len, strlen(want2));
    assert_memory_equal(f->out.data, want2, f->out.len);
    assert_true(hl == MG_KSERVE_NO_BINARY);

    /* uint64, int16/32, uint16/32 edges */
    uint64_t u64[1] = {UINT64_MAX};
    int16_t i16[1] = {-32768};
    uint32_t u32[1] = {UINT32_MAX};
    int64_t s1[1] = {1};
    mg_tensor_t o3[3] = {tensor("a", MG_DT_UINT64, 1, s1, u64, 1),
                         tensor("b", MG_DT_INT16, 1, s1, i16, 1),
                         tensor("c", MG_DT_UINT32, 0, NULL, u32, 1)};
    mg_infer_response_t r3 = {
        .model_name = "m", .model_version = "1", .outputs = o3, .noutputs = 3};
    mg_buf_reset(&f->out);
    assert_int_equal(mg_kserve_encode_response(&r3, &f->out, &hl), 0);
    mg_buf_append(&f->out, "", 1);
    assert_non_null(strstr(f->out.data, "\"data\":[18446744073709551615]"));
    assert_non_null(strstr(f->out.data, "\"data\":[-32768]"));
    assert_non_null(strstr(f->out.data, "\"shape\":[],\"data\":[4294967295]"));
}

static void test_encode_binary(void **state)
{
    fixture_t *f = *state;
    float probs[3] = {0.5f, 0.25f, 0.125f};
    int64_t lab[1] = {7};
    mg_str_t strs[2] = {MG_STR_LIT("hey"), MG_STR_LIT("")};
    int64_t s3[1] = {3}, s1[1] = {1}, s2[1] = {2};
    mg_tensor_t outs[3] = {
        tensor("p", MG_DT_FP32, 1, s3, probs, 3),
        tensor("l", MG_DT_INT64, 1, s1, lab, 1),
        tensor("s", MG_DT_BYTES, 1, s2, strs, 2),
    };
    bool binary[3] = {true, false, true};
    mg_infer_response_t resp = {
        .model_name = "m", .model_version = "1", .outputs = outs, .binary = binary, .noutputs = 3};
    size_t hl = 0;
    assert_int_equal(mg_kserve_encode_response(&resp, &f->out, &hl), 0);
    const char *want_json =
        "{\"model_name\":\"m\",\"model_version\":\"1\",\"outputs\":["
        "{\"name\":\"p\",\"datatype\":\"FP32\",\"shape\":[3],\"parameters\":{\"binary_data_size\":"
        "12}},"
        "{\"name\":\"l\",\"datatype\":\"INT64\",\"shape\":[1],\"data\":[7]},"
        "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[2],\"parameters\":{\"binary_data_size\":"
        "11}}]}";
    assert_int_equal(hl, strlen(want_json));
    assert_memory_equal(f->out.data, want_json, hl);
    assert_int_equal(f->out.len, hl + 12 + 11);
    assert_memory_equal(f->out.data + hl, probs, 12);
    assert_memory_equal(f->out.data + hl + 12, "\x03\0\0\0hey\0\0\0\0", 11);

    /* what we encode, we decode: feed the outputs back as binary inputs */
    mg_buf_t req = {0};
    const char *hdr = "{\"inputs\":[{\"name\":\"p\",\"shape\":[3],\"datatype\":\"FP32\","
                      "\"parameters\":{\"binary_data_size\":12}},{\"name\":\"s\",\"shape\":[2],"
                      "\"datatype\":\"BYTES\",\"parameters\":{\"binary_data_size\":11}}]}";
    mg_buf_puts(&req, hdr);
    mg_buf_append(&req, f->out.data + hl, 23);
    assert_int_equal(decode_n(f, req.data, req.len, strlen(hdr)), 0);
    assert_true(f32_at(&f->req.inputs[0], 2) == 0.125f);
    const mg_str_t *s = f->req.inputs[1].data;
    assert_int_equal(s[0].len, 3);
    assert_memory_equal(s[0].ptr, "hey", 3);
    assert_int_equal(s[1].len, 0);
    mg_buf_free(&req);
}

static void test_encode_float_roundtrip(void **state)
{
    fixture_t *f = *state;
    /* random floats out through the encoder and back through the decoder, bit-exact */
    enum { N = 4096 };
    float *vals = malloc(N * sizeof(float));
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        uint32_t u;
        do {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            u = (uint32_t)x;
        } while ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffff) != 0); /* no NaN payloads */
        memcpy(&vals[i], &u, 4);
    }
    int64_t shape[1] = {N};
    mg_tensor_t out = tensor("v", MG_DT_FP32, 1, shape, vals, N);
    mg_infer_response_t resp = {
        .model_name = "m", .model_version = "1", .outputs = &out, .noutputs = 1};
    size_t hl;
    mg_buf_reset(&f->out);
    assert_int_equal(mg_kserve_encode_response(&resp, &f->out, &hl), 0);
    /* pull the data array out with the cursor and decode it */
    mg_buf_append(&f->out, "", 1);
    const char *data = strstr(f->out.data, "\"data\":") + 7;
    mg_json_t j;
    mg_str_t span;
    mg_json_init(&j, data, strlen(data));
    assert_int_equal(mg_json_skip(&j, &span), 0);
    mg_tensor_t back;
    memset(&back, 0, sizeof(back));
    back.dtype = MG_DT_FP32;
    assert_int_equal(mg_tensor_json_decode(span.ptr, span.len, &back, &f->arena, "v", &f->err), 0);
    assert_int_equal(back.count, N);
    assert_memory_equal(back.data, vals, N * sizeof(float));
    free(vals);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_decode_digits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_member_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_all_dtypes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_outputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_request_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_many_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_errors_framing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_errors_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_errors_dtype, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_errors_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_zero_copy_and_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_mixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_binary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_float_roundtrip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
