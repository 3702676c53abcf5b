/*
 * The KServe v2 envelope (proto/kserve.h): request members walked with the JSON cursor, each
 * input's data handed to proto/tensor_json.h or bound from the binary part, and responses
 * written with their binary outputs after the JSON.
 */
#include "proto/kserve.h"

#include "proto/json.h"
#include "proto/kserve_shm.h"
#include "proto/numfmt.h"
#include "proto/tensor_json.h"
#include "proto/tensor_raw.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- messages ---- */

/* Whom a message is about: an input or output, by name once it was read, else by position. */
typedef struct label {
    const char *kind; /* "input" or "output" */
    mg_str_t name;    /* .ptr NULL until the name member was read */
    size_t index;
} label_t;

/* Room for the longest label text: a kind, a quoted name and its quotes. */
#define LABEL_MAX (MG_ERR_QUOTE_MAX + 16)

/* The message prefix for `l`: "input 'x'", or "input #2" before the name is known. */
static const char *label_text(const label_t *l, char *buf, size_t cap)
{
    if (l->name.ptr != NULL)
        snprintf(buf, cap, "%s '%.*s'", l->kind, mg_err_quote_len(l->name.len), l->name.ptr);
    else
        snprintf(buf, cap, "%s #%zu", l->kind, l->index);
    return buf;
}

static int lfail(mg_err_t *err, int code, const label_t *l, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int lfail(mg_err_t *err, int code, const label_t *l, const char *fmt, ...)
{
    char msg[200], who[LABEL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return mg_err_set(err, code, "%s: %s", label_text(l, who, sizeof(who)), msg);
}

/* ---- decoding requests ---- */

/* Per-input facts needed after the JSON is read. */
typedef struct input_extra {
    bool binary;
    uint64_t binary_size;
    mg_shm_ref_t shm;  /* shared_memory_* parameters */
    unsigned shm_seen; /* MG_KSERVE_SHM_* bits */
} input_extra_t;

/* Doubles an arena array of `*cap` items of `size` bytes when `n` reached it. */
static int grow(mg_arena_t *arena, void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 4;
    size_t bytes;
    if (mg_mul_size(ncap, size, &bytes) != 0)
        return MG_ENOMEM;
    void *p = mg_arena_alloc(arena, bytes);
    if (p == NULL)
        return MG_ENOMEM;
    if (n != 0)
        memcpy(p, *arr, n * size);
    *arr = p;
    *cap = ncap;
    return 0;
}

static int oom(mg_err_t *err)
{
    return mg_err_set(err, MG_ENOMEM, "out of memory decoding the request");
}

/*
 * Decodes the data array at the cursor, `want` elements; messages name the input. The label
 * is formatted only on failure: the request path must not pay a snprintf per input.
 */
static int read_data(mg_json_t *j, mg_tensor_t *t, size_t want, mg_arena_t *arena, const label_t *l,
                     mg_err_t *err)
{
    int rc = mg_tensor_json_read(j, t, want, arena, "", err);
    if (rc != 0 && err != NULL) {
        char who[LABEL_MAX], msg[sizeof(err->msg)];
        memcpy(msg, err->msg, sizeof(msg));
        mg_err_set(err, rc, "%s: %s", label_text(l, who, sizeof(who)), msg);
    }
    return rc;
}

/* Reads a string member value into *out, unescaped (zero-copy when it has no escapes). */
static int read_str(mg_json_t *j, mg_arena_t *arena, mg_str_t *out, mg_err_t *err)
{
    mg_str_t raw;
    if (mg_json_read_string(j, &raw) != 0)
        return mg_json_error(j, err);
    if (mg_json_unescape(raw, arena, out) != 0)
        return oom(err);
    return 0;
}

static int parse_shape(mg_json_t *j, mg_tensor_t *t, const label_t *l, mg_err_t *err)
{
    static const char bad[] = "'shape' must be an array of non-negative integers";
    int rc;
    if (mg_json_peek(j) != MG_JSON_ARRAY)
        return lfail(err, MG_ESHAPE, l, "%s", bad);
    if (mg_json_array_begin(j) != 0)
        return mg_json_error(j, err);
    t->ndim = 0;
    while ((rc = mg_json_array_next(j)) > 0) {
        mg_json_type_t ty = mg_json_peek(j);
        if (ty == MG_JSON_INVALID || ty == MG_JSON_END) {
            mg_json_fail(j, "expected a value");
            return mg_json_error(j, err);
        }
        if (ty != MG_JSON_NUMBER)
            return lfail(err, MG_ESHAPE, l, "%s", bad);
        mg_numfmt_decimal_t num;
        if (mg_json_read_number(j, &num) != 0)
            return mg_json_error(j, err);
        int64_t v;
        rc = mg_numfmt_to_int(&num, 64, &v);
        if (rc == MG_ERANGE && !num.neg)
            return lfail(err, MG_ERANGE, l, "shape dim %.*s is too large",
                         mg_err_quote_len(num.len), num.text);
        if (rc != 0 || v < 0)
            return lfail(err, MG_ESHAPE, l, "%s", bad);
        if (t->ndim == MG_TENSOR_MAX_DIMS)
            return lfail(err, MG_ESHAPE, l, "shape has more than %d dims", MG_TENSOR_MAX_DIMS);
        t->shape[t->ndim++] = v;
    }
    if (rc < 0)
        return mg_json_error(j, err);
    return 0;
}

/*
 * One shared_memory_* parameter at the cursor (key `key`) into `ref`: returns 1 when `key` is
 * one, 0 when not, or a negative code.
 */
static int parse_shm_param(mg_json_t *j, mg_str_t key, mg_shm_ref_t *ref, unsigned *seen,
                           mg_arena_t *arena, const label_t *l, mg_err_t *err)
{
    uint64_t *num = NULL;
    const char *what = NULL;
    unsigned bit = 0;
    if (mg_json_str_eq(key, "shared_memory_region")) {
        if (mg_json_peek(j) != MG_JSON_STRING)
            return lfail(err, MG_EPARSE, l, "'shared_memory_region' must be a string");
        int rc = read_str(j, arena, &ref->region, err);
        if (rc == 0 && ref->region.len == 0)
            return lfail(err, MG_EPARSE, l, "'shared_memory_region' must not be empty");
        *seen |= MG_KSERVE_SHM_REGION;
        return rc == 0 ? 1 : rc;
    }
    if (mg_json_str_eq(key, "shared_memory_byte_size")) {
        num = &ref->byte_size;
        what = "shared_memory_byte_size";
        bit = MG_KSERVE_SHM_SIZE;
    } else if (mg_json_str_eq(key, "shared_memory_offset")) {
        num = &ref->offset;
        what = "shared_memory_offset";
        bit = MG_KSERVE_SHM_OFFSET;
    } else {
        return 0;
    }
    mg_numfmt_decimal_t d;
    if (mg_json_peek(j) != MG_JSON_NUMBER)
        return lfail(err, MG_EPARSE, l, "'%s' must be a non-negative integer", what);
    if (mg_json_read_number(j, &d) != 0)
        return mg_json_error(j, err);
    if (mg_numfmt_to_uint(&d, 64, num) != 0)
        return lfail(err, MG_EPARSE, l, "'%s' must be a non-negative integer", what);
    *seen |= bit;
    return 1;
}

/* Both region and byte size, or neither (then no offset either). */
static int check_shm(unsigned seen, const label_t *l, mg_err_t *err)
{
    return mg_kserve_shm_complete(seen) ? 0 : lfail(err, MG_EPARSE, l, MG_KSERVE_SHM_INCOMPLETE);
}

/* The input's "parameters" object: binary_data_size and shared_memory_* are the ones used. */
static int parse_input_params(mg_json_t *j, input_extra_t *x, bool *seen_size, const label_t *l,
                              mg_arena_t *arena, mg_err_t *err)
{
    int rc;
    mg_str_t key;
    if (mg_json_peek(j) != MG_JSON_OBJECT)
        return lfail(err, MG_EPARSE, l, "'parameters' must be an object");
    if (mg_json_object_begin(j) != 0)
        return mg_json_error(j, err);
    while ((rc = mg_json_object_next(j, &key)) > 0) {
        if (mg_json_str_eq(key, "binary_data_size")) {
            mg_numfmt_decimal_t num;
            if (mg_json_peek(j) != MG_JSON_NUMBER)
                return lfail(err, MG_EPARSE, l,
                             "'binary_data_size' must be a non-negative integer");
            if (mg_json_read_number(j, &num) != 0)
                return mg_json_error(j, err);
            if (mg_numfmt_to_uint(&num, 64, &x->binary_size) != 0)
                return lfail(err, MG_EPARSE, l,
                             "'binary_data_size' must be a non-negative integer");
            *seen_size = true;
        } else if ((rc = parse_shm_param(j, key, &x->shm, &x->shm_seen, arena, l, err)) != 0) {
            if (rc < 0)
                return rc;
        } else if (mg_json_skip(j, NULL) != 0) {
            return mg_json_error(j, err);
        }
    }
    if (rc < 0)
        return mg_json_error(j, err);
    return 0;
}

enum {
    SEEN_NAME = 1,
    SEEN_DTYPE = 2,
    SEEN_SHAPE = 4,
    SEEN_DATA = 8,
    SEEN_PARAMS = 16,
};

static int dup_member(const label_t *l, const char *name, mg_err_t *err)
{
    return lfail(err, MG_EPARSE, l, "duplicate '%s'", name);
}

/* The storage `want` elements of t's datatype take, or MG_ERANGE when it overflows. */
static int tensor_bytes(const mg_tensor_t *t, size_t want, size_t *bytes, const label_t *l,
                        mg_err_t *err)
{
    if (mg_mul_size(want, mg_dtype_storage_size(t->dtype), bytes) == 0)
        return 0;
    char shape[128];
    mg_shape_format(t->shape, t->ndim, shape, sizeof(shape));
    return lfail(err, MG_ERANGE, l, "shape %s of %s is too large", shape, mg_dtype_name(t->dtype));
}

/*
 * One element of "inputs". Data is decoded straight away when datatype and shape came
 * first (the usual order), otherwise its span is kept and decoded once the object is read.
 */
static int parse_input(mg_json_t *j, mg_tensor_t *t, input_extra_t *x, size_t index,
                       bool has_binary, mg_arena_t *arena, mg_err_t *err)
{
    label_t l = {.kind = "input", .index = index};
    unsigned seen = 0;
    size_t want = 0; /* elements in the shape */
    bool decoded = false;
    mg_json_t data_at = {0}; /* the cursor at "data" when it came too early */
    bool seen_size = false;
    mg_str_t key;
    int rc;

    memset(t, 0, sizeof(*t));
    memset(x, 0, sizeof(*x));
    if (mg_json_peek(j) != MG_JSON_OBJECT)
        return lfail(err, MG_EPARSE, &l, "must be an object");
    if (mg_json_object_begin(j) != 0)
        return mg_json_error(j, err);
    while ((rc = mg_json_object_next(j, &key)) > 0) {
        if (mg_json_str_eq(key, "name")) {
            if (seen & SEEN_NAME)
                return dup_member(&l, "name", err);
            if (mg_json_peek(j) != MG_JSON_STRING)
                return lfail(err, MG_EPARSE, &l, "'name' must be a string");
            if ((rc = read_str(j, arena, &t->name, err)) != 0)
                return rc;
            l.name = t->name;
            seen |= SEEN_NAME;
        } else if (mg_json_str_eq(key, "datatype")) {
            mg_str_t s;
            if (seen & SEEN_DTYPE)
                return dup_member(&l, "datatype", err);
            if (mg_json_peek(j) != MG_JSON_STRING)
                return lfail(err, MG_EPARSE, &l, "'datatype' must be a string");
            if ((rc = read_str(j, arena, &s, err)) != 0)
                return rc;
            t->dtype = mg_dtype_parse(s.ptr, s.len);
            if (t->dtype == MG_DT_INVALID)
                return lfail(err, MG_EDTYPE, &l, "unknown datatype '%.*s'", mg_err_quote_len(s.len),
                             s.ptr);
            seen |= SEEN_DTYPE;
        } else if (mg_json_str_eq(key, "shape")) {
            if (seen & SEEN_SHAPE)
                return dup_member(&l, "shape", err);
            if ((rc = parse_shape(j, t, &l, err)) != 0)
                return rc;
            if (mg_shape_count(t->shape, t->ndim, 0, &want) != 0) {
                char shape[128];
                mg_shape_format(t->shape, t->ndim, shape, sizeof(shape));
                return lfail(err, MG_ERANGE, &l, "shape %s is too large", shape);
            }
            seen |= SEEN_SHAPE;
        } else if (mg_json_str_eq(key, "parameters")) {
            if (seen & SEEN_PARAMS)
                return dup_member(&l, "parameters", err);
            if ((rc = parse_input_params(j, x, &seen_size, &l, arena, err)) != 0)
                return rc;
            seen |= SEEN_PARAMS;
        } else if (mg_json_str_eq(key, "data")) {
            if (seen & SEEN_DATA)
                return dup_member(&l, "data", err);
            if (mg_json_peek(j) != MG_JSON_ARRAY)
                return lfail(err, MG_EPARSE, &l, "'data' must be an array");
            seen |= SEEN_DATA;
            if ((seen & SEEN_DTYPE) && (seen & SEEN_SHAPE)) {
                size_t bytes;
                if ((rc = tensor_bytes(t, want, &bytes, &l, err)) != 0 ||
                    (rc = read_data(j, t, want, arena, &l, err)) != 0)
                    return rc;
                decoded = true;
            } else {
                data_at = *j;
                if (mg_json_skip(j, NULL) != 0)
                    return mg_json_error(j, err);
            }
        } else if (mg_json_skip(j, NULL) != 0) {
            return mg_json_error(j, err);
        }
    }
    if (rc < 0)
        return mg_json_error(j, err);

    if (!(seen & SEEN_NAME))
        return lfail(err, MG_EPARSE, &l, "missing 'name'");
    if (!(seen & SEEN_DTYPE))
        return lfail(err, MG_EPARSE, &l, "missing 'datatype'");
    if (!(seen & SEEN_SHAPE))
        return lfail(err, MG_EPARSE, &l, "missing 'shape'");
    if ((seen & SEEN_DATA) && seen_size)
        return lfail(err, MG_EPARSE, &l, "has both 'data' and 'binary_data_size'");
    if ((rc = check_shm(x->shm_seen, &l, err)) != 0)
        return rc;
    if (x->shm_seen != 0 && ((seen & SEEN_DATA) || seen_size))
        return lfail(err, MG_EPARSE, &l, "has both shared memory and %s: give one",
                     seen_size ? "'binary_data_size'" : "'data'");
    if (x->shm_seen != 0) {
        size_t bytes;
        if ((rc = tensor_bytes(t, want, &bytes, &l, err)) != 0)
            return rc;
        t->count = want; /* the bytes are bound from the region (serve/shm.h) */
        return 0;
    }
    if (!(seen & SEEN_DATA) && !seen_size)
        return lfail(err, MG_EPARSE, &l, "needs 'data' or parameters.binary_data_size");
    size_t bytes;
    if ((rc = tensor_bytes(t, want, &bytes, &l, err)) != 0)
        return rc;
    if ((seen & SEEN_DATA) && !decoded) {
        /* data came before datatype or shape: decode it from its saved position */
        if ((rc = read_data(&data_at, t, want, arena, &l, err)) != 0)
            return rc;
    }
    if (seen_size) {
        if (!has_binary)
            return lfail(err, MG_EPARSE, &l,
                         "binary_data_size given but the request has no binary part "
                         "(Inference-Header-Content-Length)");
        t->count = want;
        x->binary = true;
    }
    return 0;
}

static int parse_inputs(mg_json_t *j, mg_infer_request_t *req, input_extra_t **extra,
                        bool has_binary, mg_err_t *err)
{
    int rc;
    size_t cap = 0, xcap = 0;
    if (mg_json_peek(j) != MG_JSON_ARRAY)
        return mg_err_set(err, MG_EPARSE, "'inputs' must be an array");
    if (mg_json_array_begin(j) != 0)
        return mg_json_error(j, err);
    while ((rc = mg_json_array_next(j)) > 0) {
        size_t n = req->ninputs;
        if (grow(req->arena, (void **)&req->inputs, &cap, n, sizeof(mg_tensor_t)) != 0 ||
            grow(req->arena, (void **)extra, &xcap, n, sizeof(input_extra_t)) != 0)
            return oom(err);
        rc = parse_input(j, &req->inputs[n], &(*extra)[n], n, has_binary, req->arena, err);
        if (rc != 0)
            return rc;
        req->ninputs = n + 1;
    }
    if (rc < 0)
        return mg_json_error(j, err);
    return 0;
}

/* One element of "outputs"; *explicit_binary is -1 when parameters.binary_data is absent. */
static int parse_output(mg_json_t *j, mg_output_spec_t *o, signed char *explicit_binary,
                        mg_shm_ref_t *shm, size_t index, mg_arena_t *arena, mg_err_t *err)
{
    unsigned shm_seen = 0;
    memset(shm, 0, sizeof(*shm));
    label_t l = {.kind = "output", .index = index};
    bool named = false;
    mg_str_t key;
    int rc;
    o->name = (mg_str_t){"", 0};
    o->binary = false;
    o->classification = 0;
    *explicit_binary = -1;
    if (mg_json_peek(j) != MG_JSON_OBJECT)
        return lfail(err, MG_EPARSE, &l, "must be an object");
    if (mg_json_object_begin(j) != 0)
        return mg_json_error(j, err);
    while ((rc = mg_json_object_next(j, &key)) > 0) {
        if (mg_json_str_eq(key, "name")) {
            if (named)
                return dup_member(&l, "name", err);
            if (mg_json_peek(j) != MG_JSON_STRING)
                return lfail(err, MG_EPARSE, &l, "'name' must be a string");
            if ((rc = read_str(j, arena, &o->name, err)) != 0)
                return rc;
            l.name = o->name;
            named = true;
        } else if (mg_json_str_eq(key, "parameters")) {
            mg_str_t pk;
            if (mg_json_peek(j) != MG_JSON_OBJECT)
                return lfail(err, MG_EPARSE, &l, "'parameters' must be an object");
            if (mg_json_object_begin(j) != 0)
                return mg_json_error(j, err);
            while ((rc = mg_json_object_next(j, &pk)) > 0) {
                if (mg_json_str_eq(pk, "binary_data")) {
                    bool b;
                    mg_json_type_t t = mg_json_peek(j);
                    if (t != MG_JSON_TRUE && t != MG_JSON_FALSE)
                        return lfail(err, MG_EPARSE, &l, "'binary_data' must be a boolean");
                    if (mg_json_read_bool(j, &b) != 0)
                        return mg_json_error(j, err);
                    *explicit_binary = b ? 1 : 0;
                } else if (mg_json_str_eq(pk, "classification")) {
                    static const char bad[] = "'classification' must be a positive integer "
                                              "(the number of classes to return)";
                    mg_numfmt_decimal_t num;
                    uint64_t k = 0;
                    if (mg_json_peek(j) != MG_JSON_NUMBER)
                        return lfail(err, MG_EPARSE, &l, "%s", bad);
                    if (mg_json_read_number(j, &num) != 0)
                        return mg_json_error(j, err);
                    if (mg_numfmt_to_uint(&num, 32, &k) != 0 || k == 0)
                        return lfail(err, MG_EPARSE, &l, "%s", bad);
                    o->classification = (uint32_t)k;
                } else if ((rc = parse_shm_param(j, pk, shm, &shm_seen, arena, &l, err)) != 0) {
                    if (rc < 0)
                        return rc;
                } else if (mg_json_skip(j, NULL) != 0) {
                    return mg_json_error(j, err);
                }
            }
            if (rc < 0)
                return mg_json_error(j, err);
        } else if (mg_json_skip(j, NULL) != 0) {
            return mg_json_error(j, err);
        }
    }
    if (rc < 0)
        return mg_json_error(j, err);
    if (!named)
        return lfail(err, MG_EPARSE, &l, "missing 'name'");
    return check_shm(shm_seen, &l, err);
}

static int parse_outputs(mg_json_t *j, mg_infer_request_t *req, signed char **explicit_binary,
                         mg_shm_ref_t **shm, mg_err_t *err)
{
    int rc;
    size_t cap = 0, xcap = 0, scap = 0;
    if (mg_json_peek(j) != MG_JSON_ARRAY)
        return mg_err_set(err, MG_EPARSE, "'outputs' must be an array");
    if (mg_json_array_begin(j) != 0)
        return mg_json_error(j, err);
    while ((rc = mg_json_array_next(j)) > 0) {
        size_t n = req->noutputs;
        if (grow(req->arena, (void **)&req->outputs, &cap, n, sizeof(mg_output_spec_t)) != 0 ||
            grow(req->arena, (void **)explicit_binary, &xcap, n, 1) != 0 ||
            grow(req->arena, (void **)shm, &scap, n, sizeof(mg_shm_ref_t)) != 0)
            return oom(err);
        rc = parse_output(j, &req->outputs[n], &(*explicit_binary)[n], &(*shm)[n], n, req->arena,
                          err);
        if (rc != 0)
            return rc;
        req->noutputs = n + 1;
    }
    if (rc < 0)
        return mg_json_error(j, err);
    return 0;
}

/*
 * Reads one request-level parameter value into `p`: strings, numbers and booleans; returns 1
 * when `p` was filled, 0 when the value is of another kind (skipped: the protocol defines no
 * meaning for it), or a negative MG_E* code.
 */
static int read_param_value(mg_json_t *j, mg_arena_t *arena, mg_param_t *p, mg_err_t *err)
{
    mg_json_type_t t = mg_json_peek(j);
    size_t start = j->pos;
    switch (t) {
    case MG_JSON_STRING:
        p->kind = MG_PARAM_STRING;
        int rc = read_str(j, arena, &p->text, err);
        return rc == 0 ? 1 : rc;
    case MG_JSON_NUMBER: {
        mg_numfmt_decimal_t d;
        if (mg_json_read_number(j, &d) != 0)
            return mg_json_error(j, err);
        p->text = (mg_str_t){d.text, d.len};
        mg_numfmt_to_f64(&d, &p->num);
        p->kind = d.integer && mg_numfmt_to_int(&d, 64, &p->num_int) == 0 ? MG_PARAM_INT
                                                                          : MG_PARAM_DOUBLE;
        return 1;
    }
    case MG_JSON_TRUE:
    case MG_JSON_FALSE:
        if (mg_json_read_bool(j, &p->flag) != 0)
            return mg_json_error(j, err);
        p->kind = MG_PARAM_BOOL;
        p->text = (mg_str_t){j->base + start, j->pos - start};
        return 1;
    default:
        if (mg_json_skip(j, NULL) != 0)
            return mg_json_error(j, err);
        return 0;
    }
}

static int parse_request_params(mg_json_t *j, mg_infer_request_t *req, mg_err_t *err)
{
    int rc;
    mg_str_t key;
    size_t cap = 0;
    if (mg_json_peek(j) != MG_JSON_OBJECT)
        return mg_err_set(err, MG_EPARSE, "'parameters' must be an object");
    if (mg_json_object_begin(j) != 0)
        return mg_json_error(j, err);
    while ((rc = mg_json_object_next(j, &key)) > 0) {
        if (mg_json_str_eq(key, "binary_data_output")) {
            mg_json_type_t t = mg_json_peek(j);
            if (t != MG_JSON_TRUE && t != MG_JSON_FALSE)
                return mg_err_set(err, MG_EPARSE, "'binary_data_output' must be a boolean");
            if (mg_json_read_bool(j, &req->binary_output) != 0)
                return mg_json_error(j, err);
            continue;
        }
        mg_param_t p;
        memset(&p, 0, sizeof(p));
        if (mg_json_unescape(key, req->arena, &p.key) != 0)
            return oom(err);
        if ((rc = read_param_value(j, req->arena, &p, err)) < 0)
            return rc;
        if (rc == 0)
            continue;
        if (grow(req->arena, (void **)&req->params, &cap, req->nparams, sizeof(p)) != 0)
            return oom(err);
        req->params[req->nparams++] = p;
    }
    if (rc < 0)
        return mg_json_error(j, err);
    return 0;
}

/* Points each binary input at its bytes after the JSON, copying when misaligned. */
static int bind_binary(const char *body, size_t len, size_t header_len, mg_infer_request_t *req,
                       const input_extra_t *extra, mg_err_t *err)
{
    uint64_t need = 0;
    for (size_t i = 0; i < req->ninputs; i++) {
        if (extra[i].binary && __builtin_add_overflow(need, extra[i].binary_size, &need))
            need = UINT64_MAX;
    }
    size_t avail = len - header_len;
    if (need != avail)
        return mg_err_set(err, MG_EPARSE,
                          "binary inputs need %llu bytes but the body carries %zu after the header",
                          (unsigned long long)need, avail);
    size_t off = header_len;
    for (size_t i = 0; i < req->ninputs; i++) {
        if (!extra[i].binary)
            continue;
        const char *p = body + off;
        size_t size = (size_t)extra[i].binary_size;
        off += size;
        int rc = mg_tensor_raw_bind(&req->inputs[i], p, size, req->arena, "binary_data_size", err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int mg_kserve_decode_request(const char *body, size_t len, size_t header_len,
                             mg_infer_request_t *req, mg_err_t *err)
{
    mg_json_t j;
    mg_str_t key;
    input_extra_t *extra = NULL;
    signed char *explicit_binary = NULL;
    mg_shm_ref_t *shm_outputs = NULL;
    bool has_binary = header_len != MG_KSERVE_NO_BINARY;
    bool seen_inputs = false, seen_outputs = false, seen_id = false, seen_params = false;
    int rc;

    mg_infer_request_clear(req);

    if (has_binary && header_len > len)
        return mg_err_set(err, MG_EPARSE,
                          "Inference-Header-Content-Length %zu exceeds the body (%zu bytes)",
                          header_len, len);
    mg_json_init(&j, body, has_binary ? header_len : len);
    if (mg_json_object_begin(&j) != 0)
        return mg_json_error(&j, err);
    while ((rc = mg_json_object_next(&j, &key)) > 0) {
        if (mg_json_str_eq(key, "inputs")) {
            if (seen_inputs)
                return mg_err_set(err, MG_EPARSE, "duplicate 'inputs'");
            seen_inputs = true;
            if ((rc = parse_inputs(&j, req, &extra, has_binary, err)) != 0)
                return rc;
        } else if (mg_json_str_eq(key, "outputs")) {
            if (seen_outputs)
                return mg_err_set(err, MG_EPARSE, "duplicate 'outputs'");
            seen_outputs = true;
            if ((rc = parse_outputs(&j, req, &explicit_binary, &shm_outputs, err)) != 0)
                return rc;
        } else if (mg_json_str_eq(key, "id")) {
            if (seen_id)
                return mg_err_set(err, MG_EPARSE, "duplicate 'id'");
            seen_id = true;
            if (mg_json_peek(&j) != MG_JSON_STRING)
                return mg_err_set(err, MG_EPARSE, "'id' must be a string");
            if ((rc = read_str(&j, req->arena, &req->id, err)) != 0)
                return rc;
        } else if (mg_json_str_eq(key, "parameters")) {
            if (seen_params)
                return mg_err_set(err, MG_EPARSE, "duplicate 'parameters'");
            seen_params = true;
            if ((rc = parse_request_params(&j, req, err)) != 0)
                return rc;
        } else if (mg_json_skip(&j, NULL) != 0) {
            return mg_json_error(&j, err);
        }
    }
    if (rc < 0 || mg_json_end(&j) != 0)
        return mg_json_error(&j, err);
    if (!seen_inputs)
        return mg_err_set(err, MG_EPARSE, "missing 'inputs' array");

    /* outputs without their own binary_data follow the request-wide default */
    for (size_t i = 0; i < req->noutputs; i++) {
        req->outputs[i].binary = explicit_binary[i] < 0 ? req->binary_output : explicit_binary[i];
        if (shm_outputs[i].region.len > 0)
            req->shm_outputs = shm_outputs;
    }
    /* inputs in shared memory: their regions, bound by serve/shm.h */
    for (size_t i = 0; i < req->ninputs && req->shm_inputs == NULL; i++) {
        if (extra[i].shm_seen == 0)
            continue;
        req->shm_inputs = mg_arena_alloc(req->arena, req->ninputs * sizeof(mg_shm_ref_t));
        if (req->shm_inputs == NULL)
            return oom(err);
        for (size_t k = 0; k < req->ninputs; k++)
            req->shm_inputs[k] = extra[k].shm_seen ? extra[k].shm : (mg_shm_ref_t){{"", 0}, 0, 0};
    }

    if (has_binary)
        return bind_binary(body, len, header_len, req, extra, err);
    return 0;
}

/* ---- encoding ---- */

static int put_shape(mg_buf_t *out, const mg_tensor_t *t)
{
    char tmp[MG_TENSOR_MAX_DIMS * (MG_NUMFMT_INT_MAX + 1) + 2];
    char *o = tmp;
    int ndim = t->ndim < 0 ? 0 : t->ndim > MG_TENSOR_MAX_DIMS ? MG_TENSOR_MAX_DIMS : t->ndim;
    *o++ = '[';
    for (int i = 0; i < ndim; i++) {
        if (i)
            *o++ = ',';
        o += mg_numfmt_write_i64(o, t->shape[i]);
    }
    *o++ = ']';
    return mg_buf_append(out, tmp, (size_t)(o - tmp));
}

/* Appends t's elements raw (proto/tensor_raw.h). */
static int put_binary(mg_buf_t *out, const mg_tensor_t *t)
{
    uint64_t size;
    int rc = mg_tensor_raw_size(t, &size);
    if (rc != 0)
        return rc;
    if (size > SIZE_MAX || mg_buf_reserve(out, (size_t)size) != 0)
        return MG_ENOMEM;
    mg_tensor_raw_write(t, out->data + out->len);
    out->len += (size_t)size;
    return 0;
}

int mg_kserve_encode_response(const mg_infer_response_t *resp, mg_buf_t *out, size_t *header_len)
{
    size_t start = out->len;
    bool any_binary = false;
    int rc;

    MG_JSON_PUTS(out, "{\"model_name\":");
    MG_JSON_PUT(mg_json_put_str(out, resp->model_name));
    MG_JSON_PUTS(out, ",\"model_version\":");
    MG_JSON_PUT(mg_json_put_str(out, resp->model_version));
    if (resp->id.len != 0) {
        MG_JSON_PUTS(out, ",\"id\":");
        MG_JSON_PUT(mg_buf_json_string(out, resp->id.ptr, resp->id.len));
    }
    MG_JSON_PUTS(out, ",\"outputs\":[");
    for (size_t i = 0; i < resp->noutputs; i++) {
        const mg_tensor_t *t = &resp->outputs[i];
        bool binary = resp->binary != NULL && resp->binary[i];
        const mg_shm_ref_t *shm =
            resp->shm != NULL && resp->shm[i].region.len > 0 ? &resp->shm[i] : NULL;
        if (i)
            MG_JSON_PUTS(out, ",");
        MG_JSON_PUTS(out, "{\"name\":");
        MG_JSON_PUT(mg_buf_json_string(out, t->name.ptr, t->name.len));
        MG_JSON_PUTS(out, ",\"datatype\":");
        MG_JSON_PUT(mg_json_put_str(out, mg_dtype_name(t->dtype)));
        MG_JSON_PUTS(out, ",\"shape\":");
        MG_JSON_PUT(put_shape(out, t));
        if (shm != NULL) {
            uint64_t size;
            MG_JSON_PUT(mg_tensor_raw_size(t, &size));
            MG_JSON_PUTS(out, ",\"parameters\":{\"shared_memory_region\":");
            MG_JSON_PUT(mg_buf_json_string(out, shm->region.ptr, shm->region.len));
            MG_JSON_PUTS(out, ",\"shared_memory_byte_size\":");
            MG_JSON_PUT(mg_json_put_u64(out, size));
            if (shm->offset != 0) {
                MG_JSON_PUTS(out, ",\"shared_memory_offset\":");
                MG_JSON_PUT(mg_json_put_u64(out, shm->offset));
            }
            MG_JSON_PUTS(out, "}}");
        } else if (binary) {
            uint64_t size;
            MG_JSON_PUT(mg_tensor_raw_size(t, &size));
            MG_JSON_PUTS(out, ",\"parameters\":{\"binary_data_size\":");
            MG_JSON_PUT(mg_json_put_u64(out, size));
            MG_JSON_PUTS(out, "}}");
            any_binary = true;
        } else {
            MG_JSON_PUTS(out, ",\"data\":");
            MG_JSON_PUT(mg_tensor_json_encode(out, t));
            MG_JSON_PUTS(out, "}");
        }
    }
    MG_JSON_PUTS(out, "]}");
    size_t json_len = out->len - start;
    if (any_binary) {
        for (size_t i = 0; i < resp->noutputs; i++) {
            if (resp->binary[i] && (resp->shm == NULL || resp->shm[i].region.len == 0))
                MG_JSON_PUT(put_binary(out, &resp->outputs[i]));
        }
    }
    *header_len = any_binary ? json_len : MG_KSERVE_NO_BINARY;
    return 0;
fail:
    out->len = start;
    return rc;
}
