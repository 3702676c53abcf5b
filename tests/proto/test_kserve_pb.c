/*
 * Unit tests for the KServe v2 protobuf codec (proto/kserve_pb.h): ModelInferRequest packed by
 * protobuf-c and decoded from one slice or split across many (raw contents in place or copied
 * once), typed contents of every datatype, every decoding error, and ModelInferResponse
 * encoding (raw and typed) read back with protobuf-c.
 */
/* cmocka.h needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto/kserve_pb.h"

#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pb_fixture {
    fixture_t f;
    mg_buf_t scratch;
    mg_kserve_pb_target_t target;
    uint8_t *msg; /* the last packed message (exact size) */
    size_t len;
    mg_str_t seg[4096];
} pb_fixture_t;

static int pb_setup(void **state)
{
    pb_fixture_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -1;
    mg_arena_init(&p->f.arena, 0);
    p->f.req.arena = &p->f.arena;
    *state = p;
    return 0;
}

static int pb_teardown(void **state)
{
    pb_fixture_t *p = *state;
    mg_arena_free(&p->f.arena);
    mg_buf_free(&p->scratch);
    free(p->msg);
    free(p);
    return 0;
}

/* Packs `m` into p->msg. */
static void pack_msg(pb_fixture_t *p, const ProtobufCMessage *m)
{
    free(p->msg);
    p->len = protobuf_c_message_get_packed_size(m);
    p->msg = malloc(p->len ? p->len : 1);
    assert_non_null(p->msg);
    protobuf_c_message_pack(m, p->msg);
}

/* Decodes p->msg[0, len) split into slices of `piece` bytes (0: one slice). */
static int decode_len(pb_fixture_t *p, size_t len, size_t piece)
{
    size_t n = 0;
    if (piece == 0)
        piece = len ? len : 1;
    for (size_t off = 0; off < len; off += piece) {
        assert_true(n < sizeof(p->seg) / sizeof(p->seg[0]));
        p->seg[n++] = (mg_str_t){(const char *)p->msg + off, len - off < piece ? len - off : piece};
    }
    mg_arena_reset(&p->f.arena);
    mg_err_clear(&p->f.err);
    memset(&p->f.req, 0, sizeof(p->f.req));
    p->f.req.arena = &p->f.arena;
    int rc = mg_kserve_pb_decode_request(p->seg, n, &p->f.req, &p->target, &p->scratch, &p->f.err);
    if (rc != 0)
        assert_int_equal(p->f.err.code, rc);
    return rc;
}

static int decode(pb_fixture_t *p, size_t piece)
{
    return decode_len(p, p->len, piece);
}

/* A request for `model` with one input; `raw` (may be NULL) goes in raw_input_contents. */
typedef struct one_input {
    Inference__ModelInferRequest req;
    Inference__ModelInferRequest__InferInputTensor in;
    Inference__ModelInferRequest__InferInputTensor *ins[1];
    Inference__InferTensorContents contents;
    ProtobufCBinaryData raw[2];
    int64_t shape[9];
} one_input_t;

static void one_input(one_input_t *o, const char *dtype, int ndim, const int64_t *shape,
                      const void *raw, size_t raw_len)
{
    inference__model_infer_request__init(&o->req);
    inference__model_infer_request__infer_input_tensor__init(&o->in);
    inference__infer_tensor_contents__init(&o->contents);
    o->req.model_name = "m";
    o->in.name = "x";
    o->in.datatype = (char *)dtype;
    memcpy(o->shape, shape, (size_t)ndim * sizeof(int64_t));
    o->in.n_shape = (size_t)ndim;
    o->in.shape = o->shape;
    o->ins[0] = &o->in;
    o->req.n_inputs = 1;
    o->req.inputs = o->ins;
    if (raw != NULL) {
        o->raw[0] = (ProtobufCBinaryData){raw_len, (uint8_t *)(uintptr_t)raw};
        o->req.n_raw_input_contents = 1;
        o->req.raw_input_contents = o->raw;
    }
}

/* ---- raw contents ----------------------------------------------------------------------- */

static void test_raw_fp32_one_slice_and_split(void **state)
{
    pb_fixture_t *p = *state;
    float px[64];
    for (int i = 0; i < 64; i++)
        px[i] = (float)i * 0.5f;
    one_input_t o;
    one_input(&o, "FP32", 2, (int64_t[]){1, 64}, px, sizeof(px));
    o.req.model_version = "2";
    o.req.id = "req-1";
    pack_msg(p, &o.req.base);
    for (size_t piece = 0; piece <= 300; piece += piece < 8 ? 1 : 37) {
        assert_int_equal(decode(p, piece), 0);
        const mg_tensor_t *t = &p->f.req.inputs[0];
        assert_int_equal(p->f.req.ninputs, 1);
        assert_true(mg_str_eq(t->name, "x"));
        assert_int_equal(t->dtype, MG_DT_FP32);
        assert_int_equal(t->ndim, 2);
        assert_int_equal(t->count, 64);
        assert_int_equal(t->nbytes, 256);
        assert_memory_equal(t->data, px, 256);
        assert_int_equal((uintptr_t)t->data % 4, 0);
        assert_true(mg_str_eq(p->target.model, "m"));
        assert_true(mg_str_eq(p->target.version, "2"));
        assert_true(mg_str_eq(p->f.req.id, "req-1"));
        assert_true(p->f.req.binary_output); /* raw outputs unless asked otherwise */
        /* In place when the entry lies in one slice and is aligned: inside the message. */
        const uint8_t *d = t->data;
        int inside = d >= p->msg && d < p->msg + p->len;
        size_t off = (size_t)(p->len - 256); /* the raw entry is last */
        if (piece == 0 && (((uintptr_t)p->msg + off) % 4) == 0)
            assert_true(inside);
        if (piece != 0 && piece < 256)
            assert_false(inside); /* spans slices: copied once */
    }
}

static void test_raw_in_place_when_aligned(void **state)
{
    pb_fixture_t *p = *state;
    int32_t v[4] = {1, -2, 3, -4};
    one_input_t o;
    one_input(&o, "INT32", 1, (int64_t[]){4}, v, sizeof(v));
    pack_msg(p, &o.req.base);
    /* Copy the message so that the raw entry (its last 16 bytes) starts 4-aligned. */
    uint8_t *buf = malloc(p->len + 8);
    assert_non_null(buf);
    size_t shift = (4 - ((uintptr_t)(buf + p->len - 16) % 4)) % 4;
    memcpy(buf + shift, p->msg, p->len);
    p->seg[0] = (mg_str_t){(const char *)buf + shift, p->len};
    memset(&p->f.req, 0, sizeof(p->f.req));
    p->f.req.arena = &p->f.arena;
    assert_int_equal(
        mg_kserve_pb_decode_request(p->seg, 1, &p->f.req, &p->target, &p->scratch, &p->f.err), 0);
    assert_ptr_equal(p->f.req.inputs[0].data, buf + shift + p->len - 16);
    /* Misaligned by one: copied, same values. */
    memmove(buf + shift + 1, buf + shift, p->len);
    p->seg[0] = (mg_str_t){(const char *)buf + shift + 1, p->len};
    assert_int_equal(
        mg_kserve_pb_decode_request(p->seg, 1, &p->f.req, &p->target, &p->scratch, &p->f.err), 0);
    assert_ptr_not_equal(p->f.req.inputs[0].data, buf + shift + 1 + p->len - 16);
    assert_memory_equal(p->f.req.inputs[0].data, v, 16);
    free(buf);
}

static void test_raw_bytes_and_bool(void **state)
{
    pb_fixture_t *p = *state;
    const char raw[] = "\x03\x00\x00\x00"
                       "abc"
                       "\x00\x00\x00\x00"
                       "\x02\x00\x00\x00"
                       "\x00z";
    one_input_t o;
    one_input(&o, "BYTES", 1, (int64_t[]){3}, raw, sizeof(raw) - 1);
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 3), 0);
    const mg_str_t *s = p->f.req.inputs[0].data;
    assert_int_equal(p->f.req.inputs[0].nbytes, 5);
    assert_int_equal(s[0].len, 3);
    assert_memory_equal(s[0].ptr, "abc", 3);
    assert_int_equal(s[1].len, 0);
    assert_memory_equal(s[2].ptr, "\0z", 2);
    /* a length prefix running past the entry */
    char bad[sizeof(raw)];
    memcpy(bad, raw, sizeof(raw));
    bad[11] = 9;
    one_input(&o, "BYTES", 1, (int64_t[]){3}, bad, sizeof(raw) - 1);
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), MG_ESHAPE);
    assert_string_equal(p->f.err.msg, "input 'x': raw_input_contents 17 does not hold 3 "
                                      "length-prefixed BYTES elements");
    one_input(&o, "BOOL", 1, (int64_t[]){3}, "\x01\x00\x02", 3);
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), MG_EDTYPE);
    assert_string_equal(p->f.err.msg, "input 'x': element 2 is not a boolean (byte 2)");
}

static void test_raw_errors(void **state)
{
    pb_fixture_t *p = *state;
    float px[64] = {0};
    one_input_t o;
    one_input(&o, "FP32", 2, (int64_t[]){1, 64}, px, 252);
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), MG_ESHAPE);
    assert_string_equal(p->f.err.msg, "input 'x': raw_input_contents 252 does not match shape "
                                      "[1,64] of FP32 (256 bytes)");
    /* two entries for one input */
    one_input(&o, "FP32", 2, (int64_t[]){1, 64}, px, 256);
    o.raw[1] = o.raw[0];
    o.req.n_raw_input_contents = 2;
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), MG_EPARSE);
    assert_non_null(strstr(p->f.err.msg, "2 entries for 1 inputs"));
    /* raw and typed at once */
    one_input(&o, "FP32", 2, (int64_t[]){1, 64}, px, 256);
    o.contents.n_fp32_contents = 64;
    o.contents.fp32_contents = px;
    o.in.contents = &o.contents;
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), MG_EPARSE);
    assert_string_equal(p->f.err.msg,
                        "input 'x': has both contents and raw_input_contents; use one of them");
}

/* ---- heads: datatype and shape ----------------------------------------------------------- */

static void test_shape_and_datatype_errors(void **state)
{
    pb_fixture_t *p = *state;
    one_input_t o;
    one_input(&o, "FP33", 1, (int64_t[]){1}, "\0\0\0\0", 4);
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), MG_EDTYPE);
    assert_string_equal(p->f.err.msg, "input 'x': unknown datatype 'FP33'");
    int64_t big[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
    one_input(&o, "FP32", 2, big, "", 0);
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), MG_ERANGE);
    assert_string_equal(p->f.err.msg,
                        "input 'x': shape [1099511627776,1099511627776] of FP32 is too large");
    /* the element count fits, its bytes do not */
    one_input(&o, "FP64", 1, (int64_t[]){(int64_t)1 << 62}, "", 0);
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), MG_ERANGE);
    one_input(&o, "FP32", 2, (int64_t[]){-1, 3}, "", 0);
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), MG_ESHAPE);
    assert_string_equal(p->f.err.msg, "input 'x': 'shape' must hold non-negative integers");
    one_input(&o, "FP32", 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, "\0\0\0\0", 4);
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), MG_ESHAPE);
    assert_non_null(strstr(p->f.err.msg, "9 dims"));
    one_input(&o, "FP32", 1, (int64_t[]){1}, "\0\0\0\0", 4);
    o.in.name = "";
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), MG_EPARSE);
    assert_string_equal(p->f.err.msg, "input #0: missing 'name'");
    o.req.n_inputs = 0;
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), MG_EPARSE);
    assert_string_equal(p->f.err.msg, "the request has no inputs");
}

/* ---- typed contents ---------------------------------------------------------------------- */

static void test_typed_every_datatype(void **state)
{
    pb_fixture_t *p = *state;
    one_input_t o;
    int32_t ints[3] = {-128, 0, 127};
    uint32_t uints[3] = {0, 255, 7};
    int64_t i64[3] = {INT64_MIN, 0, INT64_MAX};
    uint64_t u64[3] = {0, 1, UINT64_MAX};
    float f32[3] = {0.1f, -2.5f, 3e38f};
    double f64[3] = {0.1, -2.5, 1e300};
    protobuf_c_boolean bools[3] = {1, 0, 1};
    ProtobufCBinaryData bytes[3] = {
        {3, (uint8_t *)"a\0b"}, {0, (uint8_t *)""}, {2, (uint8_t *)"hi"}};

    one_input(&o, "INT8", 1, (int64_t[]){3}, NULL, 0);
    o.contents.n_int_contents = 3, o.contents.int_contents = ints, o.in.contents = &o.contents;
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 5), 0);
    assert_memory_equal(p->f.req.inputs[0].data, "\x80\x00\x7f", 3);
    o.in.datatype = "INT16";
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), 0);
    assert_int_equal(((int16_t *)p->f.req.inputs[0].data)[0], -128);
    o.in.datatype = "INT32";
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), 0);
    assert_memory_equal(p->f.req.inputs[0].data, ints, 12);

    one_input(&o, "UINT8", 1, (int64_t[]){3}, NULL, 0);
    o.contents.n_uint_contents = 3, o.contents.uint_contents = uints, o.in.contents = &o.contents;
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), 0);
    assert_memory_equal(p->f.req.inputs[0].data, "\x00\xff\x07", 3);
    o.in.datatype = "UINT16";
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), 0);
    assert_int_equal(((uint16_t *)p->f.req.inputs[0].data)[1], 255);
    o.in.datatype = "UINT32";
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), 0);
    assert_memory_equal(p->f.req.inputs[0].data, uints, 12);

    one_input(&o, "INT64", 1, (int64_t[]){3}, NULL, 0);
    o.contents.n_int64_contents = 3, o.contents.int64_contents = i64, o.in.contents = &o.contents;
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), 0);
    assert_memory_equal(p->f.req.inputs[0].data, i64, 24);

    one_input(&o, "UINT64", 1, (int64_t[]){3}, NULL, 0);
    o.contents.n_uint64_contents = 3, o.contents.uint64_contents = u64, o.in.contents = &o.contents;
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), 0);
    assert_memory_equal(p->f.req.inputs[0].data, u64, 24);

    one_input(&o, "FP32", 1, (int64_t[]){3}, NULL, 0);
    o.contents.n_fp32_contents = 3, o.contents.fp32_contents = f32, o.in.contents = &o.contents;
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), 0);
    assert_memory_equal(p->f.req.inputs[0].data, f32, 12);

    one_input(&o, "FP64", 1, (int64_t[]){3}, NULL, 0);
    o.contents.n_fp64_contents = 3, o.contents.fp64_contents = f64, o.in.contents = &o.contents;
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), 0);
    assert_memory_equal(p->f.req.inputs[0].data, f64, 24);

    one_input(&o, "BOOL", 1, (int64_t[]){3}, NULL, 0);
    o.contents.n_bool_contents = 3, o.contents.bool_contents = bools, o.in.contents = &o.contents;
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), 0);
    assert_memory_equal(p->f.req.inputs[0].data, "\x01\x00\x01", 3);

    one_input(&o, "BYTES", 1, (int64_t[]){3}, NULL, 0);
    o.contents.n_bytes_contents = 3, o.contents.bytes_contents = bytes, o.in.contents = &o.contents;
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), 0);
    const mg_str_t *s = p->f.req.inputs[0].data;
    assert_int_equal(p->f.req.inputs[0].nbytes, 5);
    assert_int_equal(s[0].len, 3);
    assert_memory_equal(s[0].ptr, "a\0b", 3);
    assert_int_equal(s[1].len, 0);
    assert_memory_equal(s[2].ptr, "hi", 2);

    /* no elements for an empty shape is fine; none for a non-empty one is not */
    one_input(&o, "FP32", 2, (int64_t[]){0, 3}, NULL, 0);
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), 0);
    assert_int_equal(p->f.req.inputs[0].count, 0);
}

static void test_typed_errors(void **state)
{
    pb_fixture_t *p = *state;
    one_input_t o;
    float f32[3] = {1, 2, 3};
    int32_t ints[3] = {1, 200, -3};
    uint32_t uints[3] = {1, 70000, 3};

    one_input(&o, "FP32", 1, (int64_t[]){4}, NULL, 0);
    o.contents.n_fp32_contents = 3, o.contents.fp32_contents = f32, o.in.contents = &o.contents;
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), MG_ESHAPE);
    assert_string_equal(p->f.err.msg,
                        "input 'x': shape [4] needs 4 elements, got 3 in fp32_contents");
    o.in.datatype = "FP64";
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), MG_EPARSE);
    assert_string_equal(p->f.err.msg, "input 'x': datatype FP64 takes fp64_contents, not "
                                      "fp32_contents");
    one_input(&o, "INT8", 1, (int64_t[]){3}, NULL, 0);
    o.contents.n_int_contents = 3, o.contents.int_contents = ints, o.in.contents = &o.contents;
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), MG_EDTYPE);
    assert_string_equal(p->f.err.msg, "input 'x': element 1 (200) is out of range for INT8");
    o.in.datatype = "INT16";
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), 0);
    one_input(&o, "UINT16", 1, (int64_t[]){3}, NULL, 0);
    o.contents.n_uint_contents = 3, o.contents.uint_contents = uints, o.in.contents = &o.contents;
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), MG_EDTYPE);
    assert_string_equal(p->f.err.msg, "input 'x': element 1 (70000) is out of range for UINT16");
    one_input(&o, "FP16", 1, (int64_t[]){3}, NULL, 0);
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 0), MG_EDTYPE);
    assert_non_null(strstr(p->f.err.msg, "raw_input_contents"));
}

/* ---- the envelope ------------------------------------------------------------------------ */

static void test_parameters_and_outputs(void **state)
{
    pb_fixture_t *p = *state;
    one_input_t o;
    one_input(&o, "FP32", 1, (int64_t[]){1}, "\0\0\0\0", 4);
    Inference__InferParameter v[5];
    Inference__ModelInferRequest__ParametersEntry e[5], *ep[5];
    const char *keys[5] = {"user_id", "n", "big", "ratio", "binary_data_output"};
    for (int i = 0; i < 5; i++) {
        inference__infer_parameter__init(&v[i]);
        inference__model_infer_request__parameters_entry__init(&e[i]);
        e[i].key = (char *)keys[i];
        e[i].value = &v[i];
        ep[i] = &e[i];
    }
    v[0].parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM;
    v[0].string_param = "alice";
    v[1].parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM;
    v[1].int64_param = -17;
    v[2].parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_UINT64_PARAM;
    v[2].uint64_param = UINT64_MAX;
    v[3].parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_DOUBLE_PARAM;
    v[3].double_param = 0.25;
    v[4].parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_BOOL_PARAM;
    v[4].bool_param = 0;
    o.req.n_parameters = 5;
    o.req.parameters = ep;
    Inference__ModelInferRequest__InferRequestedOutputTensor out, *outs[1] = {&out};
    inference__model_infer_request__infer_requested_output_tensor__init(&out);
    out.name = "y";
    o.req.n_outputs = 1;
    o.req.outputs = outs;
    pack_msg(p, &o.req.base);
    assert_int_equal(decode(p, 7), 0);
    const mg_infer_request_t *r = &p->f.req;
    assert_int_equal(r->nparams, 5);
    const mg_param_t *q = mg_infer_request_param(r, "user_id", 7);
    assert_non_null(q);
    assert_int_equal(q->kind, MG_PARAM_STRING);
    assert_true(mg_str_eq(q->text, "alice"));
    q = mg_infer_request_param(r, "n", 1);
    assert_int_equal(q->kind, MG_PARAM_INT);
    assert_int_equal(q->num_int, -17);
    assert_true(mg_str_eq(q->text, "-17"));
    q = mg_infer_request_param(r, "big", 3);
    assert_int_equal(q->kind, MG_PARAM_DOUBLE);
    assert_true(mg_str_eq(q->text, "18446744073709551615"));
    q = mg_infer_request_param(r, "ratio", 5);
    assert_int_equal(q->kind, MG_PARAM_DOUBLE);
    assert_true(mg_str_eq(q->text, "0.25"));
    assert_false(r->binary_output); /* binary_data_output false: typed outputs */
    assert_int_equal(r->noutputs, 1);
    assert_true(mg_str_eq(r->outputs[0].name, "y"));
    assert_false(r->outputs[0].binary);
}

static void test_malformed_messages(void **state)
{
    pb_fixture_t *p = *state;
    float px[64] = {0};
    one_input_t o;
    one_input(&o, "FP32", 2, (int64_t[]){1, 64}, px, 256);
    pack_msg(p, &o.req.base);
    /* every truncation fails cleanly, whatever the slicing */
    for (size_t cut = 1; cut < p->len; cut++) {
        int rc = decode_len(p, cut, cut % 7);
        assert_true(rc == MG_EPARSE || rc == MG_ESHAPE);
    }
    /* a length that runs past the end, a group, an over-long varint */
    static const uint8_t past[] = {0x3a, 0xff, 0xff, 0x03, 0x00};
    static const uint8_t group[] = {0x0b, 0x0c};
    static const uint8_t varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    /* a string whose length claims 2^63 bytes: refused before anything is allocated */
    static const uint8_t huge[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    const uint8_t *bad[] = {past, group, varint, huge};
    size_t badlen[] = {sizeof(past), sizeof(group), sizeof(varint), sizeof(huge)};
    for (int i = 0; i < 4; i++) {
        free(p->msg);
        p->msg = malloc(badlen[i]);
        memcpy(p->msg, bad[i], badlen[i]);
        p->len = badlen[i];
        assert_int_equal(decode(p, 0), MG_EPARSE);
        assert_non_null(strstr(p->f.err.msg, "ModelInferRequest"));
    }
    /* no message at all */
    p->len = 0;
    assert_int_equal(decode(p, 0), MG_EPARSE);
}

/* ---- responses --------------------------------------------------------------------------- */

static void test_encode_raw_and_typed(void **state)
{
    pb_fixture_t *p = *state;
    float probs[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    int8_t small[3] = {-1, 0, 5};
    mg_str_t strs[2] = {{"ab", 2}, {"", 0}};
    mg_tensor_t outs[3] = {
        tensor("p", MG_DT_FP32, 2, (int64_t[]){1, 4}, probs, 4),
        tensor("s", MG_DT_INT8, 1, (int64_t[]){3}, small, 3),
        tensor("b", MG_DT_BYTES, 1, (int64_t[]){2}, strs, 2),
    };
    mg_infer_response_t resp = {
        .model_name = "m", .model_version = "3", .id = {"r9", 2}, .outputs = outs, .noutputs = 3};
    for (int typed = 0; typed < 2; typed++) {
        Inference__ModelInferResponse *m;
        assert_int_equal(mg_kserve_pb_encode_response(&resp, typed, &p->f.arena, &m, &p->f.err), 0);
        pack_msg(p, &m->base);
        Inference__ModelInferResponse *back =
            inference__model_infer_response__unpack(NULL, p->len, p->msg);
        assert_non_null(back);
        assert_string_equal(back->model_name, "m");
        assert_string_equal(back->model_version, "3");
        assert_string_equal(back->id, "r9");
        assert_int_equal(back->n_outputs, 3);
        assert_string_equal(back->outputs[1]->datatype, "INT8");
        assert_int_equal(back->outputs[0]->n_shape, 2);
        assert_int_equal(back->outputs[0]->shape[1], 4);
        if (!typed) {
            assert_int_equal(back->n_raw_output_contents, 3);
            assert_memory_equal(back->raw_output_contents[0].data, probs, 16);
            assert_memory_equal(back->raw_output_contents[1].data, small, 3);
            assert_int_equal(back->raw_output_contents[2].len, 10);
            assert_memory_equal(back->raw_output_contents[2].data, "\x02\0\0\0ab\0\0\0\0", 10);
            assert_null(back->outputs[0]->contents);
        } else {
            assert_int_equal(back->n_raw_output_contents, 0);
            assert_int_equal(back->outputs[0]->contents->n_fp32_contents, 4);
            assert_memory_equal(back->outputs[0]->contents->fp32_contents, probs, 16);
            assert_int_equal(back->outputs[1]->contents->n_int_contents, 3);
            assert_int_equal(back->outputs[1]->contents->int_contents[0], -1);
            assert_int_equal(back->outputs[2]->contents->n_bytes_contents, 2);
            assert_memory_equal(back->outputs[2]->contents->bytes_contents[0].data, "ab", 2);
        }
        inference__model_infer_response__free_unpacked(back, NULL);
    }
    /* FP16 has no typed field */
    uint16_t h[1] = {0x3c00};
    outs[0] = tensor("h", MG_DT_FP16, 1, (int64_t[]){1}, h, 1);
    resp.noutputs = 1;
    Inference__ModelInferResponse *m;
    assert_int_equal(mg_kserve_pb_encode_response(&resp, true, &p->f.arena, &m, &p->f.err),
                     MG_EDTYPE);
    assert_non_null(strstr(p->f.err.msg, "FP16"));
    assert_int_equal(mg_kserve_pb_encode_response(&resp, false, &p->f.arena, &m, &p->f.err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_raw_fp32_one_slice_and_split, pb_setup, pb_teardown),
        cmocka_unit_test_setup_teardown(test_raw_in_place_when_aligned, pb_setup, pb_teardown),
        cmocka_unit_test_setup_teardown(test_raw_bytes_and_bool, pb_setup, pb_teardown),
        cmocka_unit_test_setup_teardown(test_raw_errors, pb_setup, pb_teardown),
        cmocka_unit_test_setup_teardown(test_shape_and_datatype_errors, pb_setup, pb_teardown),
        cmocka_unit_test_setup_teardown(test_typed_every_datatype, pb_setup, pb_teardown),
        cmocka_unit_test_setup_teardown(test_typed_errors, pb_setup, pb_teardown),
        cmocka_unit_test_setup_teardown(test_parameters_and_outputs, pb_setup, pb_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_messages, pb_setup, pb_teardown),
        cmocka_unit_test_setup_teardown(test_encode_raw_and_typed, pb_setup, pb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
