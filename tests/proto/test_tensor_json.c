/*
 * Unit tests for tensor values <-> JSON (proto/tensor_json.h): decoding data arrays, flat or
 * nested, with and without a shape, from a whole buffer or a cursor, and encoding tensors as
 * flat arrays. Inputs are copied into exact-size heap blocks so sanitizer builds catch reads
 * past the end.
 */
/* cmocka.h needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto/json.h"
#include "proto/tensor_json.h"

#include "fixture.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- mg_tensor_json_decode ---- */

static int decode_data(fixture_t *f, const char *json, mg_tensor_t *t)
{
    size_t n = strlen(json);
    keep_body(f, json, n);
    mg_err_clear(&f->err);
    int rc = mg_tensor_json_decode(f->body, n, t, &f->arena, "input 'in'", &f->err);
    if (rc != 0)
        assert_int_equal(f->err.code, rc);
    return rc;
}

static void test_decode_data(void **state)
{
    fixture_t *f = *state;
    mg_tensor_t t;

    memset(&t, 0, sizeof(t));
    t.dtype = MG_DT_FP32;
    assert_int_equal(decode_data(f, " [[1,2,3],[4,5,6]] ", &t), 0);
    assert_int_equal(t.ndim, 2);
    assert_int_equal(t.shape[0], 2);
    assert_int_equal(t.shape[1], 3);
    assert_int_equal(t.count, 6);
    assert_int_equal(t.nbytes, 24);
    for (int i = 0; i < 6; i++)
        assert_true(f32_at(&t, (size_t)i) == (float)(i + 1));

    memset(&t, 0, sizeof(t));
    t.dtype = MG_DT_INT64;
    assert_int_equal(decode_data(f, "[]", &t), 0);
    assert_int_equal(t.ndim, 1);
    assert_int_equal(t.shape[0], 0);
    assert_int_equal(t.count, 0);

    memset(&t, 0, sizeof(t));
    t.dtype = MG_DT_INT64;
    assert_int_equal(decode_data(f, "[[],[]]", &t), 0);
    assert_int_equal(t.ndim, 2);
    assert_int_equal(t.shape[0], 2);
    assert_int_equal(t.shape[1], 0);

    memset(&t, 0, sizeof(t));
    t.dtype = MG_DT_BYTES;
    assert_int_equal(decode_data(f, "[[\"a\"],[\"\\u0062c\"]]", &t), 0);
    assert_int_equal(t.ndim, 2);
    assert_int_equal(t.count, 2);
    assert_int_equal(((mg_str_t *)t.data)[1].len, 2);
    assert_memory_equal(((mg_str_t *)t.data)[1].ptr, "bc", 2);

    /* ragged arrays in every shape */
    const char *ragged[] = {"[[1],[2,3]]", "[[1],2]",  "[1,[2]]",   "[[[1]],[2]]",
                            "[[],[1]]",    "[[1],[]]", "[[[]],[]]", "[[],[[]]]"};
    for (size_t i = 0; i < sizeof(ragged) / sizeof(ragged[0]); i++) {
        memset(&t, 0, sizeof(t));
        t.dtype = MG_DT_FP32;
        assert_int_equal(decode_data(f, ragged[i], &t), MG_ESHAPE);
        assert_non_null(strstr(f->err.msg, "input 'in': ragged nested array"));
    }
    memset(&t, 0, sizeof(t));
    t.dtype = MG_DT_FP32;
    assert_int_equal(decode_data(f, "[[[[[[[[[1]]]]]]]]]", &t), MG_ESHAPE);
    assert_string_equal(f->err.msg, "input 'in': data nests deeper than 8 dims");

    /* with a shape: only the count must match */
    memset(&t, 0, sizeof(t));
    t.dtype = MG_DT_UINT8;
    t.ndim = 2;
    t.shape[0] = 2;
    t.shape[1] = 2;
    assert_int_equal(decode_data(f, "[1,2,[3,4]]", &t), 0);
    assert_int_equal(t.ndim, 2);
    assert_int_equal(t.count, 4);
    assert_int_equal(decode_data(f, "[1,2,3]", &t), MG_ESHAPE);
    assert_string_equal(f->err.msg, "input 'in': shape [2,2] needs 4 elements, got 3");
    t.shape[1] = -2;
    assert_int_equal(decode_data(f, "[1]", &t), MG_ESHAPE);
    t.shape[1] = 2;

    memset(&t, 0, sizeof(t));
    t.dtype = MG_DT_FP32;
    assert_int_equal(decode_data(f, "[1] x", &t), MG_EPARSE);
    assert_non_null(strstr(f->err.msg, "unexpected data after the JSON value"));
    assert_int_equal(decode_data(f, "{\"a\":1}", &t), MG_EPARSE);
    assert_int_equal(decode_data(f, "", &t), MG_EPARSE);
    assert_int_equal(decode_data(f, "[1,", &t), MG_EPARSE);
    assert_int_equal(decode_data(f, "[true]", &t), MG_EDTYPE);
    assert_string_equal(f->err.msg, "input 'in': element 0 is not a number");
    t.dtype = MG_DT_INVALID;
    assert_int_equal(decode_data(f, "[1]", &t), MG_EDTYPE);

    /* NULL `what` gives a generic prefix */
    memset(&t, 0, sizeof(t));
    t.dtype = MG_DT_BOOL;
    assert_int_equal(mg_tensor_json_decode("[2]", 3, &t, &f->arena, NULL, &f->err), MG_EDTYPE);
    assert_string_equal(f->err.msg, "data: element 0 is not a boolean");
}

/* ---- mg_tensor_json_read ---- */

static void test_read_at_cursor(void **state)
{
    fixture_t *f = *state;
    const char *doc = "{\"data\": [[1, 2], [3, 4]], \"next\": true}";
    mg_json_t j;
    mg_str_t key;
    mg_tensor_t t;
    memset(&t, 0, sizeof(t));
    t.dtype = MG_DT_INT32;
    t.ndim = 2;
    t.shape[0] = 2;
    t.shape[1] = 2;
    mg_json_init(&j, doc, strlen(doc));
    assert_int_equal(mg_json_object_begin(&j), 0);
    assert_int_equal(mg_json_object_next(&j, &key), 1);
    assert_int_equal(mg_tensor_json_read(&j, &t, 4, &f->arena, "input 'x'", &f->err), 0);
    assert_int_equal(t.count, 4);
    assert_int_equal(t.nbytes, 16);
    assert_int_equal(((const int32_t *)t.data)[3], 4);
    /* the cursor is after the array: the walk goes on */
    assert_int_equal(mg_json_object_next(&j, &key), 1);
    assert_true(mg_json_str_eq(key, "next"));

    /* messages carry `what`; a count the input cannot hold is not allocated */
    mg_json_init(&j, "[1,2,3]", 7);
    assert_int_equal(mg_tensor_json_read(&j, &t, 4, &f->arena, "input 'x'", &f->err), MG_ESHAPE);
    assert_string_equal(f->err.msg, "input 'x': shape [2,2] needs 4 elements, got 3");
    t.ndim = 1;
    t.shape[0] = (int64_t)1 << 40;
    mg_json_init(&j, "[1]", 3);
    assert_int_equal(mg_tensor_json_read(&j, &t, (size_t)1 << 40, &f->arena, "x", &f->err),
                     MG_ESHAPE);
    assert_string_equal(f->err.msg, "x: shape [1099511627776] needs 1099511627776 elements, got 1");
    mg_json_init(&j, "{}", 2);
    assert_int_equal(mg_tensor_json_read(&j, &t, 1, &f->arena, "x", &f->err), MG_EPARSE);
}

/* ---- encoding ---- */

/* Encodes `t` into f->out and compares with `want`. */
static void expect_encoded(fixture_t *f, const mg_tensor_t *t, const char *want)
{
    mg_buf_reset(&f->out);
    assert_int_equal(mg_tensor_json_encode(&f->out, t), 0);
    if (f->out.len != strlen(want) || memcmp(f->out.data, want, f->out.len) != 0)
        fail_msg("got  %.*s\nwant %s", (int)f->out.len, f->out.data, want);
}

static void test_encode(void **state)
{
    fixture_t *f = *state;
    float probs[4] = {0.1f, 1.0f, -2.5f, NAN};
    unsigned char flags[2] = {1, 0};
    uint16_t halves[2] = {0x3e00, 0xfc00};
    double dbl[2] = {0.1, 1e300};
    int64_t ints[2] = {-3, 9000000000LL};
    mg_str_t strs[2] = {MG_STR_LIT("a\"b"), MG_STR_LIT("\n")};
    int64_t s22[2] = {2, 2}, s2[1] = {2};
    /* flat whatever the shape */
    expect_encoded(f, &(mg_tensor_t){.dtype = MG_DT_FP32}, "[]");
    mg_tensor_t t = tensor("p", MG_DT_FP32, 2, s22, probs, 4);
    expect_encoded(f, &t, "[0.1,1.0,-2.5,\"NaN\"]");
    t = tensor("b", MG_DT_BOOL, 1, s2, flags, 2);
    expect_encoded(f, &t, "[true,false]");
    t = tensor("h", MG_DT_FP16, 1, s2, halves, 2);
    expect_encoded(f, &t, "[1.5,\"-Infinity\"]");
    t = tensor("d", MG_DT_FP64, 1, s2, dbl, 2);
    expect_encoded(f, &t, "[0.1,1e+300]");
    t = tensor("i", MG_DT_INT64, 1, s2, ints, 2);
    expect_encoded(f, &t, "[-3,9000000000]");
    t = tensor("s", MG_DT_BYTES, 1, s2, strs, 2);
    expect_encoded(f, &t, "[\"a\\\"b\",\"\\n\"]");
    t = tensor("x", MG_DT_INVALID, 1, s2, ints, 2);
    assert_int_equal(mg_tensor_json_encode(&f->out, &t), MG_EINVAL);

    /* one element, as the array writes it */
    mg_buf_reset(&f->out);
    t = tensor("i", MG_DT_INT64, 1, s2, ints, 2);
    assert_int_equal(mg_tensor_json_encode_element(&f->out, &t, 1), 0);
    t = tensor("s", MG_DT_BYTES, 1, s2, strs, 2);
    assert_int_equal(mg_tensor_json_encode_element(&f->out, &t, 0), 0);
    t = tensor("b", MG_DT_BOOL, 1, s2, flags, 2);
    assert_int_equal(mg_tensor_json_encode_element(&f->out, &t, 1), 0);
    t = tensor("p", MG_DT_FP32, 2, s22, probs, 4);
    assert_int_equal(mg_tensor_json_encode_element(&f->out, &t, 3), 0);
    const char *want = "9000000000\"a\\\"b\"false\"NaN\"";
    assert_int_equal(f->out.len, strlen(want));
    assert_memory_equal(f->out.data, want, f->out.len);
    t = tensor("x", MG_DT_INVALID, 1, s2, ints, 2);
    assert_int_equal(mg_tensor_json_encode_element(&f->out, &t, 0), MG_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_decode_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_at_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
