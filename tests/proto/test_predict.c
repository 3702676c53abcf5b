/*
 * Unit tests for the simple /predict API (proto/predict.h): splitting bodies, binding their
 * data to a model's one input, and the answer with prediction and confidence. Bodies are
 * copied into exact-size heap blocks so sanitizer builds catch reads past the end.
 */
/* cmocka.h needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto/predict.h"
#include "proto/tensor_json.h"

#include "fixture.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- decoding ---- */

static int predict_decode(fixture_t *f, const char *json, mg_predict_request_t *p)
{
    size_t n = strlen(json);
    keep_body(f, json, n);
    mg_err_clear(&f->err);
    int rc = mg_predict_decode(f->body, n, p, &f->err);
    if (rc != 0)
        assert_int_equal(f->err.code, rc);
    return rc;
}

static void test_predict_decode(void **state)
{
    fixture_t *f = *state;
    mg_predict_request_t p;
    assert_int_equal(predict_decode(f, "{\"data\":[[1,2],[3,4]]}", &p), 0);
    assert_int_equal(p.model.len, 0);
    assert_int_equal(p.version.len, 0);
    assert_int_equal(p.data.len, strlen("[[1,2],[3,4]]"));
    assert_memory_equal(p.data.ptr, "[[1,2],[3,4]]", p.data.len);
    mg_tensor_t t;
    memset(&t, 0, sizeof(t));
    t.dtype = MG_DT_FP32;
    assert_int_equal(mg_tensor_json_decode(p.data.ptr, p.data.len, &t, &f->arena, "data", &f->err),
                     0);
    assert_int_equal(t.ndim, 2);
    assert_int_equal(t.count, 4);

    assert_int_equal(predict_decode(f,
                                    " {\"model\":\"digits\",\"x\":{\"y\":[]},\"version\":"
                                    "\"2\",\"data\":[0.5]} ",
                                    &p),
                     0);
    assert_true(mg_str_eq(p.model, "digits"));
    assert_true(mg_str_eq(p.version, "2"));
    assert_true(mg_str_eq(p.data, "[0.5]"));
    assert_int_equal(predict_decode(f, "{\"version\":3,\"data\":[]}", &p), 0);
    assert_true(mg_str_eq(p.version, "3"));

    assert_int_equal(predict_decode(f, "{\"model\":\"m\"}", &p), MG_EPARSE);
    assert_string_equal(f->err.msg, "missing 'data' array");
    assert_int_equal(predict_decode(f, "{\"data\":5}", &p), MG_EPARSE);
    assert_string_equal(f->err.msg, "missing 'data' array");
    assert_int_equal(predict_decode(f, "{\"data\":{\"a\":1}}", &p), MG_EPARSE);
    assert_int_equal(predict_decode(f, "[1,2]", &p), MG_EPARSE);
    assert_non_null(strstr(f->err.msg, "malformed JSON at offset 0: expected '{'"));
    assert_int_equal(predict_decode(f, "{\"data\":[1,]}", &p), MG_EPARSE);
    assert_int_equal(predict_decode(f, "{\"data\":[1]}}", &p), MG_EPARSE);
    assert_int_equal(predict_decode(f, "{\"model\":5,\"data\":[1]}", &p), MG_EPARSE);
    assert_string_equal(f->err.msg, "'model' must be a string");
    assert_int_equal(predict_decode(f, "{\"model\":\"a\\u0062\",\"data\":[1]}", &p), MG_EPARSE);
    assert_string_equal(f->err.msg, "'model' must not contain escapes");
    assert_int_equal(predict_decode(f, "", &p), MG_EPARSE);
}

/* ---- binding to the model ---- */

/* Decodes `json` as a /predict body and binds it to `inputs`, into a fresh f->req. */
static int bind(fixture_t *f, const char *json, const mg_tensor_info_t *inputs, size_t ninputs)
{
    mg_predict_request_t p;
    assert_int_equal(predict_decode(f, json, &p), 0);
    mg_arena_reset(&f->arena);
    memset(&f->req, 0, sizeof(f->req));
    f->req.arena = &f->arena;
    int rc = mg_predict_bind(&p, inputs, ninputs, "digits", &f->req, &f->err);
    if (rc != 0)
        assert_int_equal(f->err.code, rc);
    return rc;
}

static void test_predict_bind(void **state)
{
    fixture_t *f = *state;
    mg_tensor_info_t in[2] = {
        {.name = "input", .dtype = MG_DT_FP32, .ndim = 2, .shape = {-1, 3}},
        {.name = "mask", .dtype = MG_DT_BOOL, .ndim = 1, .shape = {3}},
    };

    /* one input: a batch as given, named and typed after the model's input */
    assert_int_equal(bind(f, "{\"data\":[[1,2,3],[4,5,6]]}", in, 1), 0);
    assert_int_equal(f->req.ninputs, 1);
    const mg_tensor_t *t = &f->req.inputs[0];
    assert_true(mg_str_eq(t->name, "input"));
    assert_int_equal(t->dtype, MG_DT_FP32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->count, 6);
    assert_true(f32_at(t, 5) == 6.0f);

    /* one example without its batch dim becomes a batch of one */
    assert_int_equal(bind(f, "{\"data\":[1,2,3]}", in, 1), 0);
    t = &f->req.inputs[0];
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 1);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->count, 3);
    /* ...but only when it is exactly one dim short */
    assert_int_equal(bind(f, "{\"data\":[[[1]]]}", in, 1), 0);
    assert_int_equal(f->req.inputs[0].ndim, 3);
    assert_int_equal(f->req.inputs[0].shape[0], 1);
    assert_int_equal(bind(f, "{\"data\":[true,false,true]}", &in[1], 1), 0);
    assert_int_equal(f->req.inputs[0].ndim, 1);
    assert_int_equal(f->req.inputs[0].shape[0], 3);

    /* a model with another number of inputs; nothing is bound */
    assert_int_equal(bind(f, "{\"data\":[1,2,3]}", in, 2), MG_EINVAL);
    assert_string_equal(f->err.msg, "/predict needs a model with one input; 'digits' has 2, use "
                                    "/v2/models/digits/infer");
    assert_null(f->req.inputs);
    assert_int_equal(f->req.ninputs, 0);
    assert_int_equal(bind(f, "{\"data\":[1]}", in, 0), MG_EINVAL);
    assert_string_equal(f->err.msg, "/predict needs a model with one input; 'digits' has 0, use "
                                    "/v2/models/digits/infer");

    /* data that does not fit the input's datatype: the decoder's error */
    assert_int_equal(bind(f, "{\"data\":[1,2,3]}", &in[1], 1), MG_EDTYPE);
    assert_string_equal(f->err.msg, "data: element 0 is not a boolean");
    assert_null(f->req.inputs);
    assert_int_equal(bind(f, "{\"data\":[[1],[2,3]]}", in, 1), MG_ESHAPE);
    assert_string_equal(f->err.msg, "data: ragged nested array (element 3)");
}

/* ---- encoding ---- */

static void encode_predict(fixture_t *f, mg_tensor_t *outs, size_t n, const char *want)
{
    mg_infer_response_t resp = {
        .model_name = "digits", .model_version = "2", .outputs = outs, .noutputs = n};
    mg_buf_reset(&f->out);
    assert_int_equal(mg_predict_encode_response(&resp, &f->out), 0);
    if (f->out.len != strlen(want) || memcmp(f->out.data, want, f->out.len) != 0)
        fail_msg("got  %.*s\nwant %s", (int)f->out.len, f->out.data, want);
}

static void test_predict_encode(void **state)
{
    fixture_t *f = *state;
    float p1[4] = {0.1f, 0.7f, 0.2f, 0.0f};
    int64_t s14[2] = {1, 4};
    mg_tensor_t one = tensor("probabilities", MG_DT_FP32, 2, s14, p1, 4);
    encode_predict(f, &one, 1,
                   "{\"model\":\"digits\",\"version\":\"2\",\"prediction\":1,\"confidence\":0.7,"
                   "\"outputs\":{\"probabilities\":[0.1,0.7,0.2,0.0]}}");

    /* rank 1: one row */
    int64_t s4[1] = {4};
    mg_tensor_t flat = tensor("p", MG_DT_FP32, 1, s4, p1, 4);
    encode_predict(f, &flat, 1,
                   "{\"model\":\"digits\",\"version\":\"2\",\"prediction\":1,\"confidence\":0.7,"
                   "\"outputs\":{\"p\":[0.1,0.7,0.2,0.0]}}");

    /* a batch: arrays, one per row; NaN never wins */
    float p3[6] = {0.9f, 0.1f, NAN, 0.5f, 0.25f, 0.75f};
    int64_t s32[2] = {3, 2};
    mg_tensor_t batch = tensor("p", MG_DT_FP32, 2, s32, p3, 6);
    encode_predict(f, &batch, 1,
                   "{\"model\":\"digits\",\"version\":\"2\",\"prediction\":[0,1,1],"
                   "\"confidence\":[0.9,0.5,0.75],\"outputs\":{\"p\":[0.9,0.1,\"NaN\",0.5,0.25,"
                   "0.75]}}");

    /* FP64 and FP16 scores */
    double d[3] = {0.25, 0.5, 0.125};
    int64_t s13[2] = {1, 3};
    mg_tensor_t dt = tensor("p", MG_DT_FP64, 2, s13, d, 3);
    encode_predict(f, &dt, 1,
                   "{\"model\":\"digits\",\"version\":\"2\",\"prediction\":1,\"confidence\":0.5,"
                   "\"outputs\":{\"p\":[0.25,0.5,0.125]}}");
    uint16_t h[3] = {0x3800, 0x3c00, 0x3400};
    mg_tensor_t ht = tensor("p", MG_DT_FP16, 2, s13, h, 3);
    encode_predict(f, &ht, 1,
                   "{\"model\":\"digits\",\"version\":\"2\",\"prediction\":1,\"confidence\":1.0,"
                   "\"outputs\":{\"p\":[0.5,1.0,0.25]}}");

    /* a label output with probabilities beside it */
    int64_t lab[1] = {7};
    float probs[3] = {0.2f, 0.3f, 0.5f};
    int64_t s1[1] = {1};
    mg_tensor_t cls[2] = {tensor("label", MG_DT_INT64, 1, s1, lab, 1),
                          tensor("probabilities", MG_DT_FP32, 2, s13, probs, 3)};
    encode_predict(f, cls, 2,
                   "{\"model\":\"digits\",\"version\":\"2\",\"prediction\":7,\"confidence\":0.5,"
                   "\"outputs\":{\"label\":[7],\"probabilities\":[0.2,0.3,0.5]}}");

    /* a batch of labels, more labels than probability rows */
    int64_t labs[3] = {1, 0, 2};
    float probs2[4] = {0.4f, 0.6f, 0.9f, 0.1f};
    int64_t s3[1] = {3}, s22[2] = {2, 2};
    mg_tensor_t cls2[2] = {tensor("label", MG_DT_INT64, 1, s3, labs, 3),
                           tensor("probabilities", MG_DT_FP32, 2, s22, probs2, 4)};
    encode_predict(f, cls2, 2,
                   "{\"model\":\"digits\",\"version\":\"2\",\"prediction\":[1,0,2],"
                   "\"confidence\":[0.6,0.9,null],\"outputs\":{\"label\":[1,0,2],"
                   "\"probabilities\":[0.4,0.6,0.9,0.1]}}");

    /* a label alone; string labels; a bool label */
    encode_predict(f, cls, 1,
                   "{\"model\":\"digits\",\"version\":\"2\",\"prediction\":7,\"confidence\":null,"
                   "\"outputs\":{\"label\":[7]}}");
    mg_str_t names[1] = {MG_STR_LIT("cat")};
    mg_tensor_t str[2] = {tensor("label", MG_DT_BYTES, 1, s1, names, 1),
                          tensor("probabilities", MG_DT_FP32, 2, s13, probs, 3)};
    encode_predict(f, str, 2,
                   "{\"model\":\"digits\",\"version\":\"2\",\"prediction\":\"cat\","
                   "\"confidence\":0.5,\"outputs\":{\"label\":[\"cat\"],\"probabilities\":[0.2,"
                   "0.3,0.5]}}");
    unsigned char yes[1] = {1};
    mg_tensor_t bl = tensor("ok", MG_DT_BOOL, 1, s1, yes, 1);
    encode_predict(f, &bl, 1,
                   "{\"model\":\"digits\",\"version\":\"2\",\"prediction\":true,"
                   "\"confidence\":null,\"outputs\":{\"ok\":[true]}}");

    /* nothing to predict from */
    encode_predict(f, NULL, 0,
                   "{\"model\":\"digits\",\"version\":\"2\",\"prediction\":null,"
                   "\"confidence\":null,\"outputs\":{}}");
    int64_t s10[2] = {1, 0};
    mg_tensor_t empty = tensor("p", MG_DT_FP32, 2, s10, p1, 0);
    encode_predict(f, &empty, 1,
                   "{\"model\":\"digits\",\"version\":\"2\",\"prediction\":null,"
                   "\"confidence\":null,\"outputs\":{\"p\":[]}}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_predict_decode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_predict_bind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_predict_encode, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
