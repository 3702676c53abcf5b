/*
 * The runtime layer against real ONNX Runtime sessions: metadata, Run for every datatype,
 * output selection, validation messages, refused models, warmup and concurrent Runs.
 * The models are generated at start by scripts/gen_test_models.py into a temporary folder.
 */
#include "core/buf.h"
#include "core/err.h"
#include "infer/session.h"
#include "support/support.h"

#include <ftw.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first. */
#include <cmocka.h>

static char models_dir[256];

/* ---- helpers ---- */

/* Builds a session from models_dir/`file`; returns the code and leaves `err` filled. */
static int try_load(const char *file, const mg_session_opts_t *opts, mg_session_t **s,
                    mg_err_t *err)
{
    char path[512];
    size_t len;
    snprintf(path, sizeof(path), "%s/%s", models_dir, file);
    void *bytes = mg_test_read_file(path, &len);
    int rc = mg_session_new(s, bytes, len, opts, err);
    free(bytes); /* the session must not need the caller's bytes */
    return rc;
}

static mg_session_t *load(const char *file, const mg_session_opts_t *opts)
{
    mg_session_t *s = NULL;
    mg_err_t err = {0};
    int rc = try_load(file, opts, &s, &err);
    if (rc != 0)
        fail_msg("loading %s: %d %s", file, rc, err.msg);
    return s;
}

static void expect_err(int rc, const mg_err_t *err, int code, const char *sub)
{
    if (rc != code || err->code != code || strstr(err->msg, sub) == NULL)
        fail_msg("got %d (%s), want %d containing \"%s\"", rc, err->msg, code, sub);
}

/* A tensor over `data` with `ndim` dims from `shape`; count and nbytes follow the shape. */
static mg_tensor_t mk(const char *name, mg_dtype_t dt, void *data, int ndim, const int64_t *shape)
{
    mg_tensor_t t = {.name = mg_test_str(name), .dtype = dt, .ndim = ndim, .data = data};
    memcpy(t.shape, shape, (size_t)ndim * sizeof(int64_t));
    assert_int_equal(mg_shape_count(t.shape, ndim, mg_dtype_size(dt), &t.count), 0);
    t.nbytes = t.count * mg_dtype_size(dt);
    return t;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    (void)state;
    int rc = mg_test_tmpdir("mg_test_session.", models_dir, sizeof(models_dir));
    if (rc != 0) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(-rc));
        return -1;
    }
    char cmd[1536];
    snprintf(cmd, sizeof(cmd), "'%s' '%s/scripts/gen_test_models.py' '%s'", mg_test_python(),
             mg_test_source_dir(), models_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "failed: %s\n", cmd);
        nftw(models_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        return -1;
    }
    mg_err_t err = {0};
    mg_infer_env_opts_t opts = {.intra_op_threads = 2, .inter_op_threads = 1};
    if (mg_infer_env_init(&opts, &err) != 0) {
        fprintf(stderr, "env init: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    mg_infer_env_deinit();
    if (models_dir[0] != '\0')
        nftw(models_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- environment ---- */

static void test_env(void **state)
{
    (void)state;
    const char *v = mg_infer_runtime_version();
    assert_non_null(v);
    assert_true(strncmp(v, "1.", 2) == 0);

    mg_err_t err = {0};
    expect_err(mg_infer_env_init(NULL, &err), &err, MG_EEXIST, "already");
}

/* Releasing and re-creating the environment works, and sessions need it. */
static void test_env_reinit(void **state)
{
    (void)state;
    mg_err_t err = {0};
    mg_infer_env_deinit();
    mg_session_t *s = (mg_session_t *)&err; /* must stay untouched */
    expect_err(try_load("add_fp32.onnx", NULL, &s, &err), &err, MG_EINVAL, "not initialised");
    assert_ptr_equal(s, (mg_session_t *)&err);

    mg_infer_env_opts_t bad = {.log_level = 5};
    expect_err(mg_infer_env_init(&bad, &err), &err, MG_EINVAL, "log level");
    mg_infer_env_opts_t neg = {.intra_op_threads = -1};
    expect_err(mg_infer_env_init(&neg, &err), &err, MG_EINVAL, "negative");

    mg_infer_env_opts_t opts = {.intra_op_threads = 2, .inter_op_threads = 1, .log_level = 3};
    assert_int_equal(mg_infer_env_init(&opts, &err), 0);
    s = load("add_fp32.onnx", NULL);
    mg_session_free(s);
}

/* ---- metadata ---- */

static void test_metadata_identity(void **state)
{
    (void)state;
    for (int dt = 1; dt < MG_DT_COUNT_; dt++) {
        char file[64];
        snprintf(file, sizeof(file), "identity_%s.onnx", mg_dtype_name((mg_dtype_t)dt));
        mg_session_t *s = load(file, NULL);
        assert_int_equal(mg_session_ninputs(s), 1);
        assert_int_equal(mg_session_noutputs(s), 1);
        const mg_tensor_info_t *in = mg_session_input(s, 0);
        const mg_tensor_info_t *out = mg_session_output(s, 0);
        assert_string_equal(in->name, "x");
        assert_string_equal(out->name, "y");
        assert_int_equal(in->dtype, dt);
        assert_int_equal(out->dtype, dt);
        assert_int_equal(in->ndim, 2);
        assert_int_equal(in->shape[0], -1); /* symbolic "N" */
        assert_int_equal(in->shape[1], 3);
        assert_int_equal(out->ndim, 2);
        assert_int_equal(out->shape[0], -1);
        assert_int_equal(out->shape[1], 3);
        assert_null(mg_session_input(s, 1));
        assert_null(mg_session_output(s, 1));
        assert_ptr_equal(mg_session_find_input(s, MG_STR_LIT("x")), in);
        assert_null(mg_session_find_input(s, MG_STR_LIT("y")));
        assert_null(mg_session_find_input(s, MG_STR_LIT("xx")));
        assert_null(mg_session_find_input(s, MG_STR_LIT("")));
        mg_session_free(s);
    }
}

static void test_metadata_add(void **state)
{
    (void)state;
    mg_session_t *s = load("add_fp32.onnx", NULL);
    assert_int_equal(mg_session_ninputs(s), 2);
    assert_int_equal(mg_session_noutputs(s), 2);
    const char *ins[] = {"a", "b"}, *outs[] = {"sum", "diff"};
    for (size_t i = 0; i < 2; i++) {
        const mg_tensor_info_t *in = mg_session_input(s, i), *out = mg_session_output(s, i);
        assert_string_equal(in->name, ins[i]);
        assert_string_equal(out->name, outs[i]);
        for (int k = 0; k < 2; k++) {
            const mg_tensor_info_t *t = k ? out : in;
            assert_int_equal(t->dtype, MG_DT_FP32);
            assert_int_equal(t->ndim, 2);
            assert_int_equal(t->shape[0], 2);
            assert_int_equal(t->shape[1], 2);
        }
    }
    assert_ptr_equal(mg_session_find_input(s, MG_STR_LIT("b")), mg_session_input(s, 1));
    mg_session_free(s);
}

/* ---- run ---- */

/* Six elements per datatype, chosen at the edges of each type's range. */
static void fill_values(mg_dtype_t dt, void *p)
{
    switch (dt) {
    case MG_DT_BOOL: memcpy(p, (uint8_t[]){1, 0, 1, 1, 0, 0}, 6); break;
    case MG_DT_UINT8: memcpy(p, (uint8_t[]){0, 1, 127, 128, 254, 255}, 6); break;
    case MG_DT_UINT16: memcpy(p, (uint16_t[]){0, 1, 0x7fff, 0x8000, 0xfffe, 0xffff}, 12); break;
    case MG_DT_UINT32:
        memcpy(p, (uint32_t[]){0, 1, 0x7fffffff, 0x80000000u, 0xfffffffeu, UINT32_MAX}, 24);
        break;
    case MG_DT_UINT64:
        memcpy(p, (uint64_t[]){0, 1, INT64_MAX, (uint64_t)1 << 63, UINT64_MAX - 1, UINT64_MAX}, 48);
        break;
    case MG_DT_INT8: memcpy(p, (int8_t[]){INT8_MIN, -1, 0, 1, 100, INT8_MAX}, 6); break;
    case MG_DT_INT16: memcpy(p, (int16_t[]){INT16_MIN, -1, 0, 1, 12345, INT16_MAX}, 12); break;
    case MG_DT_INT32: memcpy(p, (int32_t[]){INT32_MIN, -1, 0, 1, 123456789, INT32_MAX}, 24); break;
    case MG_DT_INT64:
        memcpy(p, (int64_t[]){INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX}, 48);
        break;
    case MG_DT_FP16: /* +0, -0, 1, max, smallest subnormal, -inf */
        memcpy(p, (uint16_t[]){0x0000, 0x8000, 0x3c00, 0x7bff, 0x0001, 0xfc00}, 12);
        break;
    case MG_DT_FP32: /* +0, -0, 1, max, smallest subnormal, a NaN with payload */
        memcpy(p, (uint32_t[]){0, 0x80000000u, 0x3f800000, 0x7f7fffff, 1, 0x7fc00001}, 24);
        break;
    case MG_DT_FP64:
        memcpy(p,
               (uint64_t[]){0, (uint64_t)1 << 63, 0x3ff0000000000000, 0x7fefffffffffffff, 1,
                            0xfff0000000000000},
               48);
        break;
    default: fail();
    }
}

static void test_run_identity_fixed(void **state)
{
    (void)state;
    mg_arena_t arena;
    mg_arena_init(&arena, 0);
    for (int dt = 1; dt < MG_DT_COUNT_; dt++) {
        if (dt == MG_DT_BYTES)
            continue;
        char file[64];
        snprintf(file, sizeof(file), "identity_%s.onnx", mg_dtype_name((mg_dtype_t)dt));
        mg_session_t *s = load(file, NULL);
        _Alignas(8) unsigned char data[48];
        fill_values((mg_dtype_t)dt, data);
        mg_tensor_t x = mk("x", (mg_dtype_t)dt, data, 2, (int64_t[]){2, 3});
        mg_infer_request_t req = {.inputs = &x, .ninputs = 1, .arena = &arena};
        mg_infer_response_t resp = {0};
        mg_err_t err = {0};

        assert_int_equal(mg_session_validate(s, &req, &err), 0);
        int rc = mg_session_run(s, &req, &resp, &err);
        if (rc != 0)
            fail_msg("%s: %s", file, err.msg);
        assert_int_equal(resp.noutputs, 1);
        const mg_tensor_t *y = &resp.outputs[0];
        assert_true(mg_str_eq(y->name, "y"));
        assert_int_equal(y->dtype, dt);
        assert_int_equal(y->ndim, 2);
        assert_int_equal(y->shape[0], 2);
        assert_int_equal(y->shape[1], 3);
        assert_int_equal(y->count, 6);
        assert_int_equal(y->nbytes, 6 * mg_dtype_size((mg_dtype_t)dt));
        if (memcmp(y->data, data, y->nbytes) != 0)
            fail_msg("%s: output differs from input", file);
        assert_false(resp.binary[0]);
        assert_non_null(resp.owner);
        mg_session_response_release(&resp);
        assert_null(resp.owner);
        assert_int_equal(resp.noutputs, 0);

        /* An empty batch is a valid request. */
        x = mk("x", (mg_dtype_t)dt, NULL, 2, (int64_t[]){0, 3});
        assert_int_equal(mg_session_run(s, &req, &resp, &err), 0);
        assert_int_equal(resp.outputs[0].count, 0);
        assert_int_equal(resp.outputs[0].shape[0], 0);
        mg_session_response_release(&resp);

        mg_arena_reset(&arena);
        mg_session_free(s);
    }
    mg_arena_free(&arena);
}

static void test_run_identity_misaligned(void **state)
{
    (void)state;
    mg_arena_t arena;
    mg_arena_init(&arena, 0);
    mg_session_t *s = load("identity_INT64.onnx", NULL);
    _Alignas(8) unsigned char buf[8 + 48 + 1];
    int64_t v[6] = {INT64_MIN, -2, -1, 0, 1, INT64_MAX};
    memcpy(buf + 1, v, sizeof(v)); /* off by one byte */
    mg_tensor_t x = mk("x", MG_DT_INT64, buf + 1, 2, (int64_t[]){2, 3});
    mg_infer_request_t req = {.inputs = &x, .ninputs = 1, .arena = &arena};
    mg_infer_response_t resp = {0};
    mg_err_t err = {0};
    assert_int_equal(mg_session_run(s, &req, &resp, &err), 0);
    assert_memory_equal(resp.outputs[0].data, v, sizeof(v));
    mg_session_response_release(&resp);
    mg_session_free(s);
    mg_arena_free(&arena);
}

static void test_run_identity_bytes(void **state)
{
    (void)state;
    mg_arena_t arena;
    mg_arena_init(&arena, 0);
    mg_session_t *s = load("identity_BYTES.onnx", NULL);
    char big[300];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 7);
    mg_str_t in[6] = {
        {"", 0}, {"a\0b", 3}, {"hello", 5}, {"\xff\xfe\0", 3}, {"\0", 1}, {big, sizeof(big)},
    };
    mg_tensor_t x = mk("x", MG_DT_BYTES, in, 2, (int64_t[]){2, 3});
    mg_infer_request_t req = {.inputs = &x, .ninputs = 1, .arena = &arena, .binary_output = true};
    mg_infer_response_t resp = {0};
    mg_err_t err = {0};
    int rc = mg_session_run(s, &req, &resp, &err);
    if (rc != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(resp.noutputs, 1);
    const mg_tensor_t *y = &resp.outputs[0];
    assert_int_equal(y->dtype, MG_DT_BYTES);
    assert_int_equal(y->count, 6);
    assert_int_equal(y->shape[0], 2);
    assert_int_equal(y->shape[1], 3);
    assert_true(resp.binary[0]);
    const mg_str_t *out = y->data;
    size_t total = 0;
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(out[i].len, in[i].len);
        if (in[i].len != 0)
            assert_memory_equal(out[i].ptr, in[i].ptr, in[i].len);
        total += in[i].len;
    }
    assert_int_equal(y->nbytes, total);
    mg_session_response_release(&resp);

    /* An empty batch of strings. */
    x = mk("x", MG_DT_BYTES, NULL, 2, (int64_t[]){0, 3});
    assert_int_equal(mg_session_run(s, &req, &resp, &err), 0);
    assert_int_equal(resp.outputs[0].count, 0);
    mg_session_response_release(&resp);

    mg_session_free(s);
    mg_arena_free(&arena);
}

/* ---- joined Runs ---- */

/* Compares two responses' outputs element for element, bytes included. */
static void expect_same_outputs(const mg_infer_response_t *a, const mg_infer_response_t *b)
{
    assert_int_equal(a->noutputs, b->noutputs);
    for (size_t k = 0; k < a->noutputs; k++) {
        const mg_tensor_t *x = &a->outputs[k], *y = &b->outputs[k];
        assert_int_equal(x->dtype, y->dtype);
        assert_int_equal(x->ndim, y->ndim);
        assert_memory_equal(x->shape, y->shape, (size_t)x->ndim * sizeof(x->shape[0]));
        assert_int_equal(x->count, y->count);
        assert_int_equal(x->nbytes, y->nbytes);
        assert_int_equal(a->binary[k], b->binary[k]);
        if (x->dtype == MG_DT_BYTES) {
            const mg_str_t *ex = x->data, *ey = y->data;
            for (size_t e = 0; e < x->count; e++) {
                assert_int_equal(ex[e].len, ey[e].len);
                if (ex[e].len != 0)
                    assert_memory_equal(ex[e].ptr, ey[e].ptr, ex[e].len);
            }
        } else if (x->nbytes != 0) {
            assert_memory_equal(x->data, y->data, x->nbytes);
        }
    }
}

/*
 * Every datatype: three requests of 1, 2 and 1 rows, run alone and joined in one Run, answer
 * alike; each joined response has its own rows, and the shared outputs outlive the arenas
 * of the requests until released.
 */
static void test_run_batch(void **state)
{
    (void)state;
    static const mg_dtype_t types[] = {
        MG_DT_BOOL,  MG_DT_UINT8, MG_DT_UINT16, MG_DT_UINT32, MG_DT_UINT64, MG_DT_INT8, MG_DT_INT16,
        MG_DT_INT32, MG_DT_INT64, MG_DT_FP16,   MG_DT_FP32,   MG_DT_FP64,   MG_DT_BYTES};
    for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
        mg_dtype_t dt = types[ti];
        char file[64];
        snprintf(file, sizeof(file), "identity_%s.onnx", mg_dtype_name(dt));
        mg_session_t *s = load(file, NULL);
        assert_true(mg_session_batchable(s));
        mg_err_t err = {0};
        int agree = mg_session_batch_agrees(s, &err);
        if (agree != 1)
            fail_msg("%s: joined Runs answer differently (%d %s)", file, agree, err.msg);

        mg_arena_t arenas[3], joint;
        mg_arena_init(&joint, 0);
        unsigned char data[3][64];
        mg_str_t strs[3][6];
        mg_tensor_t x[3];
        mg_infer_request_t reqs[3];
        const mg_infer_request_t *ptrs[3];
        mg_infer_response_t alone[3] = {{0}}, joined[3] = {{0}};
        static const int64_t rows[3] = {1, 2, 1};
        for (int i = 0; i < 3; i++) {
            mg_arena_init(&arenas[i], 0);
            int64_t shape[2] = {rows[i], 3};
            if (dt == MG_DT_BYTES) {
                static const char *const w[] = {"", "a\0b", "hello", "\xff", "zz", "q"};
                for (int e = 0; e < 6; e++)
                    strs[i][e] = (mg_str_t){w[(e + i) % 6], strlen(w[(e + i) % 6]) + (e == 1)};
                x[i] = mk("x", dt, strs[i], 2, shape);
                x[i].nbytes = 0;
            } else {
                unsigned char six[48];
                fill_values(dt, six);
                size_t esize = mg_dtype_size(dt);
                for (int e = 0; e < 6; e++) /* a different order per request */
                    memcpy(data[i] + (size_t)e * esize, six + (size_t)((e + 2 * i) % 6) * esize,
                           esize);
                x[i] = mk("x", dt, data[i], 2, shape);
            }
            reqs[i] = (mg_infer_request_t){
                .inputs = &x[i], .ninputs = 1, .arena = &arenas[i], .binary_output = i == 1};
            ptrs[i] = &reqs[i];
            int rc = mg_session_run(s, &reqs[i], &alone[i], &err);
            if (rc != 0)
                fail_msg("%s alone: %s", file, err.msg);
        }
        assert_true(mg_session_batch_compatible(&reqs[0], &reqs[1]));
        void *owner = NULL;
        int rc = mg_session_run_batch(s, ptrs, 3, &joint, joined, &owner, NULL, &err);
        if (rc != 0)
            fail_msg("%s joined: %s", file, err.msg);
        assert_non_null(owner);
        for (int i = 0; i < 3; i++) {
            assert_null(joined[i].owner);
            assert_int_equal(joined[i].outputs[0].shape[0], rows[i]);
            expect_same_outputs(&alone[i], &joined[i]);
            mg_session_response_release(&alone[i]);
            mg_session_response_release(&joined[i]); /* owns nothing: the batch does */
        }
        mg_session_owner_release(owner);
        for (int i = 0; i < 3; i++)
            mg_arena_free(&arenas[i]);
        mg_arena_free(&joint);
        mg_session_free(s);
    }
}

/* What may not share a Run, and models that cannot be joined at all. */
static void test_batch_compatible(void **state)
{
    (void)state;
    float a[6] = {0}, b[12] = {0};
    mg_tensor_t x = mk("x", MG_DT_FP32, a, 2, (int64_t[]){2, 3});
    mg_tensor_t y = mk("x", MG_DT_FP32, b, 2, (int64_t[]){2, 6});
    mg_tensor_t z = mk("y", MG_DT_FP32, a, 2, (int64_t[]){2, 3});
    mg_tensor_t w = mk("x", MG_DT_INT32, a, 2, (int64_t[]){2, 3});
    mg_tensor_t e = mk("x", MG_DT_FP32, a, 2, (int64_t[]){0, 3});
    mg_infer_request_t rx = {.inputs = &x, .ninputs = 1}, ry = {.inputs = &y, .ninputs = 1};
    mg_infer_request_t rz = {.inputs = &z, .ninputs = 1}, rw = {.inputs = &w, .ninputs = 1};
    mg_infer_request_t re = {.inputs = &e, .ninputs = 1};
    assert_true(mg_session_batch_compatible(&rx, &rx));
    assert_false(mg_session_batch_compatible(&rx, &ry)); /* another non-batch dim */
    assert_false(mg_session_batch_compatible(&rx, &rz)); /* another input */
    assert_false(mg_session_batch_compatible(&rx, &rw)); /* another datatype */
    assert_false(mg_session_batch_compatible(&rx, &re)); /* no rows */
    mg_output_spec_t out = {.name = mg_test_str("y")};
    mg_infer_request_t ro = {.inputs = &x, .ninputs = 1, .outputs = &out, .noutputs = 1};
    assert_false(mg_session_batch_compatible(&rx, &ro)); /* other requested outputs */

    mg_session_t *s = load("add_fp32.onnx", NULL); /* every dim fixed: nothing to join along */
    assert_false(mg_session_batchable(s));
    mg_err_t err = {0};
    assert_true(mg_session_batch_agrees(s, &err) < 0);
    mg_session_free(s);
    s = load("add_dyn_fp32.onnx", NULL); /* two inputs joined alike */
    assert_true(mg_session_batchable(s));
    assert_int_equal(mg_session_batch_agrees(s, &err), 1);
    mg_session_free(s);
}

static void check_add(const mg_tensor_t *t, const char *name, const float *a, const float *b,
                      float sign)
{
    assert_true(mg_str_eq(t->name, name));
    assert_int_equal(t->dtype, MG_DT_FP32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->count, 4);
    assert_int_equal(t->nbytes, 16);
    const float *v = t->data;
    for (int i = 0; i < 4; i++) {
        float want = a[i] + sign * b[i];
        if (v[i] != want)
            fail_msg("%s[%d] = %g, want %g", name, i, (double)v[i], (double)want);
    }
}

static void test_output_selection(void **state)
{
    (void)state;
    mg_arena_t arena;
    mg_arena_init(&arena, 0);
    mg_session_t *s = load("add_fp32.onnx", NULL);
    float a[4] = {1, 2, 3, 4}, b[4] = {10, 20, 30, 40.5f};
    /* Request order b, a: inputs are matched by name. */
    mg_tensor_t in[2] = {mk("b", MG_DT_FP32, b, 2, (int64_t[]){2, 2}),
                         mk("a", MG_DT_FP32, a, 2, (int64_t[]){2, 2})};
    mg_infer_request_t req = {.inputs = in, .ninputs = 2, .arena = &arena, .binary_output = true};
    mg_infer_response_t resp = {0};
    mg_err_t err = {0};

    /* None requested: all, model order, request-level binary default. */
    assert_int_equal(mg_session_run(s, &req, &resp, &err), 0);
    assert_int_equal(resp.noutputs, 2);
    check_add(&resp.outputs[0], "sum", a, b, 1);
    check_add(&resp.outputs[1], "diff", a, b, -1);
    assert_true(resp.binary[0] && resp.binary[1]);
    mg_session_response_release(&resp);

    /* One requested. */
    mg_output_spec_t one[1] = {{MG_STR_LIT("diff"), false, 0}};
    req.outputs = one;
    req.noutputs = 1;
    assert_int_equal(mg_session_run(s, &req, &resp, &err), 0);
    assert_int_equal(resp.noutputs, 1);
    check_add(&resp.outputs[0], "diff", a, b, -1);
    assert_false(resp.binary[0]);
    mg_session_response_release(&resp);

    /* Both, in request order, each with its own flag. */
    mg_output_spec_t two[2] = {{MG_STR_LIT("diff"), true, 0}, {MG_STR_LIT("sum"), false, 0}};
    req.outputs = two;
    req.noutputs = 2;
    req.binary_output = false;
    assert_int_equal(mg_session_run(s, &req, &resp, &err), 0);
    assert_int_equal(resp.noutputs, 2);
    check_add(&resp.outputs[0], "diff", a, b, -1);
    check_add(&resp.outputs[1], "sum", a, b, 1);
    assert_true(resp.binary[0]);
    assert_false(resp.binary[1]);
    mg_session_response_release(&resp);

    mg_session_free(s);
    mg_arena_free(&arena);
}

/* ---- validation ---- */

typedef struct vcase {
    const char *what;
    mg_tensor_t in[3];
    size_t nin;
    mg_output_spec_t out[2];
    size_t nout;
    int code;
    const char *msg;
} vcase_t;

static void test_validation_errors(void **state)
{
    (void)state;
    static float f[8];
    static int64_t i64[8];
    mg_session_t *add = load("add_fp32.onnx", NULL);
    mg_session_t *id = load("identity_FP32.onnx", NULL);
    const int64_t s22[] = {2, 2};
    mg_tensor_t a = mk("a", MG_DT_FP32, f, 2, s22), b = mk("b", MG_DT_FP32, f, 2, s22);
    mg_tensor_t foo = mk("foo", MG_DT_FP32, f, 2, s22);
    mg_tensor_t a_i64 = mk("a", MG_DT_INT64, i64, 2, s22);
    mg_tensor_t a_rank3 = mk("a", MG_DT_FP32, f, 3, (int64_t[]){1, 1, 4});
    mg_tensor_t a_dim = mk("a", MG_DT_FP32, f, 2, (int64_t[]){2, 3});
    mg_tensor_t a_count = a, a_bytes = a, a_nodata = a;
    a_count.count = 3;
    a_bytes.nbytes = 15;
    a_nodata.data = NULL;
    mg_tensor_t x_dim = mk("x", MG_DT_FP32, f, 2, (int64_t[]){1, 4});
    mg_tensor_t x_neg = mk("x", MG_DT_FP32, f, 2, (int64_t[]){1, 3});
    x_neg.shape[0] = -1;
    mg_tensor_t x_ok = mk("x", MG_DT_FP32, f, 2, (int64_t[]){2, 3});
    mg_tensor_t x_huge = mk("x", MG_DT_FP32, f, 2, (int64_t[]){1, 3});
    x_huge.shape[0] = INT64_MAX;

    const vcase_t add_cases[] = {
        {.what = "missing", .in = {a}, .nin = 1, .code = MG_ENOENT, .msg = "missing input 'b'"},
        {.what = "none", .nin = 0, .code = MG_ENOENT, .msg = "missing input 'a'"},
        {.what = "unknown",
         .in = {a, b, foo},
         .nin = 3,
         .code = MG_ENOENT,
         .msg = "unknown input 'foo'"},
        {.what = "twice",
         .in = {a, a},
         .nin = 2,
         .code = MG_EINVAL,
         .msg = "input 'a' given twice"},
        {.what = "dtype",
         .in = {a_i64, b},
         .nin = 2,
         .code = MG_EDTYPE,
         .msg = "input 'a': expected datatype FP32, got INT64"},
        {.what = "rank",
         .in = {a_rank3, b},
         .nin = 2,
         .code = MG_ESHAPE,
         .msg = "input 'a': expected 2 dims, got 3 (shape [1,1,4])"},
        {.what = "dim",
         .in = {b, a_dim},
         .nin = 2,
         .code = MG_ESHAPE,
         .msg = "input 'a': dim 1 must be 2, got 3 (shape [2,3])"},
        {.what = "count",
         .in = {a_count, b},
         .nin = 2,
         .code = MG_ESHAPE,
         .msg = "input 'a': shape [2,2] needs 4 elements, got 3"},
        {.what = "nbytes",
         .in = {a_bytes, b},
         .nin = 2,
         .code = MG_ESHAPE,
         .msg = "need 16 bytes, got 15"},
        {.what = "no data",
         .in = {a_nodata, b},
         .nin = 2,
         .code = MG_EINVAL,
         .msg = "input 'a': no data"},
        {.what = "unknown output",
         .in = {a, b},
         .nin = 2,
         .out = {{MG_STR_LIT("sum"), false, 0}, {MG_STR_LIT("foo"), false, 0}},
         .nout = 2,
         .code = MG_ENOENT,
         .msg = "unknown output 'foo'"},
        {.what = "output twice",
         .in = {a, b},
         .nin = 2,
         .out = {{MG_STR_LIT("sum"), false, 0}, {MG_STR_LIT("sum"), true, 0}},
         .nout = 2,
         .code = MG_EINVAL,
         .msg = "output 'sum' requested twice"},
    };
    const vcase_t id_cases[] = {
        {.what = "dim",
         .in = {x_dim},
         .nin = 1,
         .code = MG_ESHAPE,
         .msg = "input 'x': dim 1 must be 3, got 4 (shape [1,4])"},
        {.what = "negative",
         .in = {x_neg},
         .nin = 1,
         .code = MG_ESHAPE,
         .msg = "input 'x': dim 0 is negative"},
        {.what = "overflow", .in = {x_huge}, .nin = 1, .code = MG_ERANGE, .msg = "too large"},
        {.what = "dynamic ok", .in = {x_ok}, .nin = 1, .code = 0, .msg = ""},
    };
    struct {
        mg_session_t *s;
        const vcase_t *cases;
        size_t n;
    } sets[] = {{add, add_cases, sizeof(add_cases) / sizeof(add_cases[0])},
                {id, id_cases, sizeof(id_cases) / sizeof(id_cases[0])}};

    mg_arena_t arena;
    mg_arena_init(&arena, 0);
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < sets[k].n; i++) {
            vcase_t c = sets[k].cases[i];
            mg_infer_request_t req = {.inputs = c.nin ? c.in : NULL,
                                      .ninputs = c.nin,
                                      .outputs = c.nout ? c.out : NULL,
                                      .noutputs = c.nout,
                                      .arena = &arena};
            mg_err_t err = {0};
            int rc = mg_session_validate(sets[k].s, &req, &err);
            if (rc != c.code || (c.code != 0 && strstr(err.msg, c.msg) == NULL))
                fail_msg("validate %s: got %d (%s), want %d \"%s\"", c.what, rc, err.msg, c.code,
                         c.msg);

            /* Run checks the same way and leaves the response alone. */
            mg_infer_response_t resp = {0};
            mg_err_t err2 = {0};
            rc = mg_session_run(sets[k].s, &req, &resp, &err2);
            assert_int_equal(rc, c.code);
            if (c.code != 0) {
                assert_string_equal(err2.msg, err.msg);
                assert_null(resp.outputs);
                assert_null(resp.owner);
            }
            mg_session_response_release(&resp);
            mg_arena_reset(&arena);
        }
    }
    mg_arena_free(&arena);
    mg_session_free(add);
    mg_session_free(id);
}

/* A batch mismatch between two symbolic inputs passes metadata checks; ORT refuses it. */
static void test_runtime_error(void **state)
{
    (void)state;
    mg_session_t *s = load("add_dyn_fp32.onnx", NULL);
    const mg_tensor_info_t *a_info = mg_session_input(s, 0);
    assert_int_equal(a_info->shape[0], -1);
    static float a[6], b[12];
    mg_tensor_t in[2] = {mk("a", MG_DT_FP32, a, 2, (int64_t[]){2, 3}),
                         mk("b", MG_DT_FP32, b, 2, (int64_t[]){4, 3})};
    mg_arena_t arena;
    mg_arena_init(&arena, 0);
    mg_infer_request_t req = {.inputs = in, .ninputs = 2, .arena = &arena};
    mg_infer_response_t resp = {0};
    mg_err_t err = {0};
    assert_int_equal(mg_session_validate(s, &req, &err), 0);
    int rc = mg_session_run(s, &req, &resp, &err);
    expect_err(rc, &err, MG_ERUNTIME, "onnxruntime: ");
    /* ORT's reason is kept, its source location and stack trace are not. */
    assert_non_null(strstr(err.msg, "Add"));
    assert_null(strstr(err.msg, "was false"));
    assert_null(strstr(err.msg, "Stacktrace"));
    assert_null(resp.owner);
    assert_int_equal(resp.noutputs, 0);

    /* The same session still serves good requests afterwards. */
    in[1] = mk("b", MG_DT_FP32, b, 2, (int64_t[]){2, 3});
    assert_int_equal(mg_session_run(s, &req, &resp, &err), 0);
    assert_int_equal(resp.outputs[0].count, 6);
    mg_session_response_release(&resp);

    mg_arena_free(&arena);
    mg_session_free(s);
}

/* ---- refused models ---- */

static void test_bad_models(void **state)
{
    (void)state;
    mg_session_t *s = (mg_session_t *)state; /* a sentinel that must stay untouched */
    mg_err_t err = {0};
    expect_err(try_load("bad.onnx", NULL, &s, &err), &err, MG_EMODEL, "model: ");
    assert_ptr_equal(s, (mg_session_t *)state);

    expect_err(mg_session_new(&s, "", 0, NULL, &err), &err, MG_EMODEL, "empty");
    expect_err(try_load("bf16.onnx", NULL, &s, &err), &err, MG_EMODEL,
               "input 'x' has element type BFLOAT16");
    expect_err(try_load("seq.onnx", NULL, &s, &err), &err, MG_EMODEL, "input 's' is a sequence");
    expect_err(try_load("rank9.onnx", NULL, &s, &err), &err, MG_EMODEL, "input 'x' has 9 dims");
    mg_session_opts_t neg = {.intra_op_threads = -2};
    expect_err(try_load("add_fp32.onnx", &neg, &s, &err), &err, MG_EINVAL, "negative");
    assert_ptr_equal(s, (mg_session_t *)state);
    mg_session_free(NULL);
}

/* ---- warmup ---- */

static void test_warmup(void **state)
{
    (void)state;
    static const char *const files[] = {"identity_FP32.onnx", "identity_BYTES.onnx",
                                        "identity_BOOL.onnx", "add_fp32.onnx", "add_dyn_fp32.onnx"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        mg_session_t *s = load(files[i], NULL);
        mg_err_t err = {0};
        int rc = mg_session_warmup(s, 3, &err);
        if (rc != 0)
            fail_msg("%s: %s", files[i], err.msg);
        assert_int_equal(mg_session_warmup(s, 0, &err), 0);
        mg_session_free(s);
    }
}

/* ---- threads ---- */

typedef struct worker {
    mg_session_t *s;
    int id;
    int iterations;
    int failures;
    char msg[320];
} worker_t;

static void *run_worker(void *arg)
{
    worker_t *w = arg;
    mg_arena_t arena;
    mg_arena_init(&arena, 0);
    for (int it = 0; it < w->iterations && w->failures == 0; it++) {
        float a[4], b[4];
        for (int i = 0; i < 4; i++) {
            a[i] = (float)(w->id * 100000 + it * 4 + i);
            b[i] = (float)(w->id - i);
        }
        mg_tensor_t in[2] = {mk("a", MG_DT_FP32, a, 2, (int64_t[]){2, 2}),
                             mk("b", MG_DT_FP32, b, 2, (int64_t[]){2, 2})};
        mg_output_spec_t outs[2] = {{MG_STR_LIT("diff"), true, 0}, {MG_STR_LIT("sum"), false, 0}};
        mg_infer_request_t req = {.inputs = in,
                                  .ninputs = 2,
                                  .outputs = outs,
                                  .noutputs = (size_t)(it % 3 == 0 ? 0 : 2),
                                  .arena = &arena};
        mg_infer_response_t resp = {0};
        mg_err_t err = {0};
        if (mg_session_run(w->s, &req, &resp, &err) != 0) {
            snprintf(w->msg, sizeof(w->msg), "run: %s", err.msg);
            w->failures++;
            break;
        }
        const float *sum = resp.outputs[req.noutputs ? 1 : 0].data;
        const float *diff = resp.outputs[req.noutputs ? 0 : 1].data;
        for (int i = 0; i < 4; i++) {
            if (sum[i] != a[i] + b[i] || diff[i] != a[i] - b[i]) {
                snprintf(w->msg, sizeof(w->msg), "thread %d iteration %d: wrong result", w->id, it);
                w->failures++;
            }
        }
        mg_session_response_release(&resp);
        mg_arena_reset(&arena);
    }
    mg_arena_free(&arena);
    return NULL;
}

static void run_threads(mg_session_t *s)
{
    enum { NTHREADS = 4 };
    pthread_t th[NTHREADS];
    worker_t w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (worker_t){.s = s, .id = i + 1, .iterations = 300};
        assert_int_equal(pthread_create(&th[i], NULL, run_worker, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < NTHREADS; i++) {
        if (w[i].failures != 0)
            fail_msg("%s", w[i].msg);
    }
}

static void test_threads_shared_pool(void **state)
{
    (void)state;
    mg_session_t *s = load("add_fp32.onnx", NULL);
    run_threads(s);
    mg_session_free(s);
}

static void test_threads_own_pool(void **state)
{
    (void)state;
    mg_session_opts_t opts = {.intra_op_threads = 2};
    mg_session_t *s = load("add_fp32.onnx", &opts);
    mg_err_t err = {0};
    assert_int_equal(mg_session_warmup(s, 2, &err), 0);
    run_threads(s);
    mg_session_free(s);
}

/* ---- deadlines ---- */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct slow_run {
    mg_session_t *s;
    size_t rows;
    int64_t timeout_ns; /* 0: no deadline */
    int rc;
    int64_t took_ns;
    char msg[256];
} slow_run_t;

static void *slow_thread(void *arg)
{
    slow_run_t *r = arg;
    mg_arena_t arena;
    mg_arena_init(&arena, 0);
    float *x = calloc(r->rows * 512, sizeof(float));
    mg_tensor_t in = {.name = mg_test_str("x"),
                      .dtype = MG_DT_FP32,
                      .ndim = 2,
                      .shape = {(int64_t)r->rows, 512},
                      .data = x,
                      .count = r->rows * 512,
                      .nbytes = r->rows * 512 * 4};
    int64_t t0 = mono_ns();
    mg_infer_request_t req = {.inputs = &in,
                              .ninputs = 1,
                              .arena = &arena,
                              .deadline_ns = r->timeout_ns ? t0 + r->timeout_ns : 0};
    mg_infer_response_t resp = {0};
    mg_err_t err = {0};
    r->rc = mg_session_run(r->s, &req, &resp, &err);
    r->took_ns = mono_ns() - t0;
    snprintf(r->msg, sizeof(r->msg), "%s", err.msg);
    mg_session_response_release(&resp);
    mg_arena_free(&arena);
    free(x);
    return NULL;
}

/*
 * A Run past its deadline is stopped by the watchdog and reports MG_ETIMEDOUT; Runs next to
 * it, on the same session, are not touched; the session runs again after; a deadline already
 * past never starts a Run.
 */
static void test_deadline(void **state)
{
    (void)state;
    mg_session_t *s = load("slow_fp32.onnx", NULL);
    slow_run_t full = {.s = s, .rows = 2048};
    slow_thread(&full);
    assert_int_equal(full.rc, 0);

    slow_run_t runs[3] = {{.s = s, .rows = 2048, .timeout_ns = full.took_ns / 10},
                          {.s = s, .rows = 2048, .timeout_ns = full.took_ns / 5},
                          {.s = s, .rows = 2048}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, slow_thread, &runs[i]), 0);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(runs[i].rc, MG_ETIMEDOUT);
        assert_non_null(strstr(runs[i].msg, "the run was stopped"));
        /* Stopped well before a whole Run (three run at once here, so a whole one is slower). */
        assert_true(runs[i].took_ns < full.took_ns);
    }
    assert_int_equal(runs[2].rc, 0);

    slow_run_t again = {.s = s, .rows = 16, .timeout_ns = (int64_t)60 * 1000000000};
    slow_thread(&again);
    assert_int_equal(again.rc, 0);
    slow_run_t past = {.s = s, .rows = 16, .timeout_ns = -1};
    slow_thread(&past);
    assert_int_equal(past.rc, MG_ETIMEDOUT);
    assert_non_null(strstr(past.msg, "before the model ran"));
    mg_session_free(s);
}

/* ---- release ---- */

static void test_release(void **state)
{
    (void)state;
    mg_infer_response_t resp = {0};
    mg_session_response_release(&resp);
    mg_session_response_release(NULL);

    /* A response released twice, and one never read: nothing leaks (LSan checks at exit). */
    mg_session_t *s = load("identity_FP64.onnx", NULL);
    mg_arena_t arena;
    mg_arena_init(&arena, 0);
    double x[3] = {1, 2, 3};
    mg_tensor_t in = mk("x", MG_DT_FP64, x, 2, (int64_t[]){1, 3});
    mg_infer_request_t req = {.inputs = &in, .ninputs = 1, .arena = &arena};
    mg_err_t err = {0};
    for (int i = 0; i < 50; i++) {
        assert_int_equal(mg_session_run(s, &req, &resp, &err), 0);
        mg_session_response_release(&resp);
        mg_session_response_release(&resp);
        mg_arena_reset(&arena);
    }
    mg_arena_free(&arena);
    mg_session_free(s);
}

/*
 * Reused Run values: a thread's next Run with the same rows writes into the values of its
 * previous one, but never into those of an answer still held; an answer may outlive the
 * thread that ran it.
 */
static void run_fp32(mg_session_t *s, float *x, int64_t rows, mg_arena_t *a,
                     mg_infer_response_t *resp)
{
    mg_tensor_t in = mk("x", MG_DT_FP32, x, 2, (int64_t[]){rows, 3});
    mg_tensor_t *t = mg_arena_alloc(a, sizeof(*t));
    assert_non_null(t);
    *t = in;
    mg_infer_request_t req = {.inputs = t, .ninputs = 1, .arena = a};
    mg_err_t err = {0};
    if (mg_session_run(s, &req, resp, &err) != 0)
        fail_msg("%s", err.msg);
}

static void expect_fp32(const mg_infer_response_t *resp, const float *want, size_t n)
{
    assert_int_equal(resp->noutputs, 1);
    assert_int_equal(resp->outputs[0].count, n);
    const float *got = resp->outputs[0].data;
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
            fail_msg("output element %zu is %g, not %g", i, got[i], want[i]);
    }
}

typedef struct {
    mg_session_t *s;
    mg_infer_response_t resp;
    mg_arena_t arena;
    float x[3];
} reuse_thread_t;

static void *reuse_thread(void *arg)
{
    reuse_thread_t *t = arg;
    run_fp32(t->s, t->x, 1, &t->arena, &t->resp);
    return NULL; /* exits holding nothing but the answer it hands back */
}

static void test_reuse_held(void **state)
{
    (void)state;
    mg_session_t *s = load("identity_FP32.onnx", NULL);
    mg_arena_t arena;
    mg_arena_init(&arena, 0);
    float a[3] = {1, 2, 3}, b[3] = {4, 5, 6}, c[3] = {7, 8, 9}, d[6] = {1, 1, 2, 2, 3, 3};
    mg_infer_response_t ra = {0}, rb = {0}, rc = {0}, rd = {0};

    run_fp32(s, a, 1, &arena, &ra);
    const void *first = ra.outputs[0].data;
    run_fp32(s, b, 1, &arena, &rb); /* ra is held: rb has values of its own */
    assert_ptr_not_equal(rb.outputs[0].data, first);
    expect_fp32(&ra, a, 3);
    expect_fp32(&rb, b, 3);
    run_fp32(s, d, 2, &arena, &rd); /* other rows: another entry */
    expect_fp32(&rd, d, 6);
    expect_fp32(&ra, a, 3);

    mg_session_response_release(&ra);
    run_fp32(s, c, 1, &arena, &rc); /* ra's values again, rb's untouched */
    assert_ptr_equal(rc.outputs[0].data, first);
    expect_fp32(&rc, c, 3);
    expect_fp32(&rb, b, 3);
    expect_fp32(&rd, d, 6);
    mg_session_response_release(&rb);
    mg_session_response_release(&rc);
    mg_session_response_release(&rd);

    /* An answer released after the thread that ran it has exited (LSan checks the entry). */
    reuse_thread_t t = {.s = s, .x = {3, 2, 1}};
    mg_arena_init(&t.arena, 0);
    pthread_t tid;
    assert_int_equal(pthread_create(&tid, NULL, reuse_thread, &t), 0);
    assert_int_equal(pthread_join(tid, NULL), 0);
    expect_fp32(&t.resp, t.x, 3);
    mg_session_response_release(&t.resp);
    mg_arena_free(&t.arena);

    mg_arena_free(&arena);
    mg_session_free(s);
}

/* Outputs whose length depends on the data: a Run the entry's outputs do not fit still answers. */
static void test_reuse_misfit(void **state)
{
    (void)state;
    mg_session_t *s = load("positive_fp32.onnx", NULL);
    mg_arena_t arena;
    mg_arena_init(&arena, 0);
    float xs[3][3] = {{1, 2, 3}, {1, -2, 3}, {-1, 5, 6}};
    float want[3][3] = {{1, 2, 3}, {1, 3}, {5, 6}};
    size_t n[3] = {3, 2, 2};
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 3; i++) {
            mg_tensor_t in = mk("x", MG_DT_FP32, xs[i], 1, (int64_t[]){3});
            mg_infer_request_t req = {.inputs = &in, .ninputs = 1, .arena = &arena};
            mg_infer_response_t resp = {0};
            mg_err_t err = {0};
            if (mg_session_run(s, &req, &resp, &err) != 0)
                fail_msg("round %d, run %d: %s", round, i, err.msg);
            expect_fp32(&resp, want[i], n[i]);
            mg_session_response_release(&resp);
            mg_arena_reset(&arena);
        }
    }
    mg_arena_free(&arena);
    mg_session_free(s);
}

/* Resident set size of this process, from /proc/self/status. */
static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    }
    if (f != NULL)
        fclose(f);
    return kib;
}

/*
 * ONNX Runtime's own growth over session create/release cycles (ONNX Runtime issues #25325,
 * #26831 report RSS growth there): a model (the digits MLP, or $MG_CYCLE_MODEL) created, warmed
 * up and released 200 times, with malloc_trim after each release as the registry does (unless
 * $MG_CYCLE_NO_TRIM is set). Prints the figure; the bound is checked without sanitizers (ASan
 * keeps freed memory in quarantine).
 */
static void test_create_release_cycles(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof(path), "%s/models/digits/2/model.onnx", mg_test_source_dir());
    const char *model = getenv("MG_CYCLE_MODEL") ? getenv("MG_CYCLE_MODEL") : path;
    bool trim = getenv("MG_CYCLE_NO_TRIM") == NULL;
    size_t len;
    char *bytes = mg_test_read_file(model, &len);
    mg_err_t err;
    long start = 0;
    for (int i = 0; i < 220; i++) {
        if (i == 20) /* after the one-time allocations */
            start = rss_kib();
        mg_session_t *s = NULL;
        mg_session_opts_t own = {.intra_op_threads = i % 2 ? 1 : 0};
        if (mg_session_new(&s, bytes, len, &own, &err) != 0)
            fail_msg("%s", err.msg);
        assert_int_equal(mg_session_warmup(s, 1, &err), 0);
        mg_session_free(s);
        if (trim)
            malloc_trim(0);
    }
    long end = rss_kib();
    free(bytes);
    print_message("onnx runtime: 200 session create/warm-up/release cycles%s: RSS %+.2f MiB "
                  "(%.1f -> %.1f MiB)\n",
                  trim ? "" : " (no malloc_trim)", (double)(end - start) / 1024,
                  (double)start / 1024, (double)end / 1024);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    assert_true(end - start <= 16 * 1024);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_metadata_identity),
        cmocka_unit_test(test_metadata_add),
        cmocka_unit_test(test_run_identity_fixed),
        cmocka_unit_test(test_run_identity_misaligned),
        cmocka_unit_test(test_run_identity_bytes),
        cmocka_unit_test(test_run_batch),
        cmocka_unit_test(test_batch_compatible),
        cmocka_unit_test(test_output_selection),
        cmocka_unit_test(test_validation_errors),
        cmocka_unit_test(test_runtime_error),
        cmocka_unit_test(test_bad_models),
        cmocka_unit_test(test_warmup),
        cmocka_unit_test(test_threads_shared_pool),
        cmocka_unit_test(test_threads_own_pool),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_release),
        cmocka_unit_test(test_reuse_held),
        cmocka_unit_test(test_reuse_misfit),
        cmocka_unit_test(test_create_release_cycles),
        cmocka_unit_test(test_env_reinit),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
