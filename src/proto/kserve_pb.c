/*
 * The KServe v2 protobuf codec (proto/kserve_pb.h). A ModelInferRequest is walked once at the
 * top level over the received slices: raw_input_contents (field 7) are kept as pointers into
 * the slices, every other field is copied into a scratch buffer that protobuf-c then unpacks
 * into the request arena. So the bulk of a request is never copied when it arrives in one
 * slice, and at most once otherwise.
 */
#include "proto/kserve_pb.h"

#include "proto/kserve_shm.h"
#include "proto/numfmt.h"
#include "proto/tensor_raw.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Field numbers of ModelInferRequest (src/proto/grpc_service.proto). */
#define FIELD_RAW_INPUT_CONTENTS 7

/* ---- the arena allocator ------------------------------------------------------------------ */

static void *arena_alloc(void *data, size_t size)
{
    return mg_arena_alloc(data, size ? size : 1);
}

static void arena_free(void *data, void *p)
{
    (void)data;
    (void)p;
}

void mg_kserve_pb_allocator(ProtobufCAllocator *a, mg_arena_t *arena)
{
    a->alloc = arena_alloc;
    a->free = arena_free;
    a->allocator_data = arena;
}

/* ---- the top-level walk over the slices --------------------------------------------------- */

typedef struct cursor {
    const mg_str_t *seg;
    size_t nseg;
    size_t i;    /* current segment */
    size_t off;  /* offset in it */
    size_t left; /* bytes not yet consumed, in all segments */
} cursor_t;

/* Skips to the next non-empty segment when the current one is used up. */
static void cur_settle(cursor_t *c)
{
    while (c->i < c->nseg && c->off >= c->seg[c->i].len) {
        c->i++;
        c->off = 0;
    }
}

static bool cur_eof(cursor_t *c)
{
    cur_settle(c);
    return c->i >= c->nseg;
}

static int cur_byte(cursor_t *c, uint8_t *b)
{
    if (cur_eof(c))
        return -1;
    *b = (uint8_t)c->seg[c->i].ptr[c->off++];
    c->left--;
    return 0;
}

static int cur_varint(cursor_t *c, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        uint8_t b;
        if (cur_byte(c, &b) != 0)
            return -1;
        r |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *v = r;
            return 0;
        }
    }
    return -1; /* more than 10 bytes */
}

/* Copies `n` bytes to dst (may be NULL: skip). Returns -1 when the message ends first. */
static int cur_copy(cursor_t *c, char *dst, uint64_t n)
{
    if (n > c->left)
        return -1;
    c->left -= (size_t)n;
    while (n > 0) {
        if (cur_eof(c))
            return -1;
        size_t avail = c->seg[c->i].len - c->off;
        size_t k = n < avail ? (size_t)n : avail;
        if (dst != NULL) {
            memcpy(dst, c->seg[c->i].ptr + c->off, k);
            dst += k;
        }
        c->off += k;
        n -= k;
    }
    return 0;
}

/* Returns the next `n` bytes in place when they lie in one segment (and advances), else NULL. */
static const char *cur_span(cursor_t *c, uint64_t n)
{
    cur_settle(c);
    if (c->i >= c->nseg || c->seg[c->i].len - c->off < n)
        return NULL;
    const char *p = c->seg[c->i].ptr + c->off;
    c->off += (size_t)n;
    c->left -= (size_t)n;
    return p;
}

static size_t put_varint(char *dst, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        dst[n++] = (char)(v | 0x80);
        v >>= 7;
    }
    dst[n++] = (char)v;
    return n;
}

static int append_varint(mg_buf_t *b, uint64_t v)
{
    char tmp[10];
    return mg_buf_append(b, tmp, put_varint(tmp, v));
}

static int truncated(mg_err_t *err)
{
    return mg_err_set(err, MG_EPARSE, "malformed ModelInferRequest: truncated or invalid field");
}

/*
 * Splits the message: raw_input_contents entries into `raw` (pointers into the slices, or
 * copies into the arena for entries that span slices), everything else re-encoded into
 * `rest` for protobuf-c.
 */
static int split_message(cursor_t *c, mg_arena_t *arena, mg_buf_t *rest, mg_str_t **raw,
                         size_t *nraw, mg_err_t *err)
{
    size_t cap = 0;
    *raw = NULL;
    *nraw = 0;
    while (!cur_eof(c)) {
        uint64_t tag, v, len;
        if (cur_varint(c, &tag) != 0 || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX / 8)
            return truncated(err);
        unsigned wire = (unsigned)(tag & 7);
        if ((tag >> 3) == FIELD_RAW_INPUT_CONTENTS && wire == 2) {
            if (cur_varint(c, &len) != 0 || len > c->left)
                return truncated(err);
            const char *p = cur_span(c, len);
            if (p == NULL) {
                /* Spans slices (or runs past the end): one copy, 64-byte aligned. */
                char *copy = mg_arena_alloc(arena, len ? (size_t)len : 1);
                if (copy == NULL)
                    return mg_err_set(err, MG_ENOMEM, "out of memory");
                if (cur_copy(c, copy, len) != 0)
                    return truncated(err);
                p = copy;
            }
            if (*nraw == cap) {
                size_t ncap = cap ? cap * 2 : 8;
                mg_str_t *n = mg_arena_alloc(arena, ncap * sizeof(*n));
                if (n == NULL)
                    return mg_err_set(err, MG_ENOMEM, "out of memory");
                if (*nraw)
                    memcpy(n, *raw, *nraw * sizeof(*n));
                *raw = n;
                cap = ncap;
            }
            (*raw)[(*nraw)++] = (mg_str_t){p, (size_t)len};
            continue;
        }
        int rc = append_varint(rest, tag);
        switch (wire) {
        case 0:
            if (cur_varint(c, &v) != 0)
                return truncated(err);
            rc |= append_varint(rest, v);
            break;
        case 1:
        case 5:
            len = wire == 1 ? 8 : 4;
            if (len > c->left)
                return truncated(err);
            rc |= mg_buf_reserve(rest, (size_t)len);
            if (rc == 0 && cur_copy(c, rest->data + rest->len, len) != 0)
                return truncated(err);
            if (rc == 0)
                rest->len += (size_t)len;
            break;
        case 2:
            if (cur_varint(c, &len) != 0 || len > c->left)
                return truncated(err);
            rc |= append_varint(rest, len);
            rc |= rc == 0 ? mg_buf_reserve(rest, (size_t)len) : 0;
            if (rc == 0 && cur_copy(c, rest->data + rest->len, len) != 0)
                return truncated(err);
            if (rc == 0)
                rest->len += (size_t)len;
            break;
        default: /* groups (3, 4) are not proto3; 6 and 7 do not exist */ return truncated(err);
        }
        if (rc != 0)
            return mg_err_set(err, MG_ENOMEM, "out of memory");
    }
    return 0;
}

/* ---- inputs ------------------------------------------------------------------------------- */

static int ifail(mg_err_t *err, int code, const mg_tensor_t *t, size_t index, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* "input 'x': ..." (or "input #2: ..." without a name), like the HTTP codec. */
static int ifail(mg_err_t *err, int code, const mg_tensor_t *t, size_t index, const char *fmt, ...)
{
    char msg[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (t->name.len > 0)
        return mg_err_set(err, code, "input '%.*s': %s", mg_err_quote_len(t->name.len), t->name.ptr,
                          msg);
    return mg_err_set(err, code, "input #%zu: %s", index, msg);
}

/* The typed contents fields, by the name a message uses. */
typedef enum {
    C_BOOL = 0,
    C_INT,
    C_INT64,
    C_UINT,
    C_UINT64,
    C_FP32,
    C_FP64,
    C_BYTES,
    C_NONE, /* FP16: raw only */
} contents_field_t;

static const char *const field_names[] = {
    "bool_contents",   "int_contents",  "int64_contents", "uint_contents",
    "uint64_contents", "fp32_contents", "fp64_contents",  "bytes_contents",
};

static contents_field_t field_of(mg_dtype_t dt)
{
    switch (dt) {
    case MG_DT_BOOL: return C_BOOL;
    case MG_DT_INT8:
    case MG_DT_INT16:
    case MG_DT_INT32: return C_INT;
    case MG_DT_INT64: return C_INT64;
    case MG_DT_UINT8:
    case MG_DT_UINT16:
    case MG_DT_UINT32: return C_UINT;
    case MG_DT_UINT64: return C_UINT64;
    case MG_DT_FP32: return C_FP32;
    case MG_DT_FP64: return C_FP64;
    case MG_DT_BYTES: return C_BYTES;
    default: return C_NONE;
    }
}

static size_t field_count(const Inference__InferTensorContents *c, contents_field_t f)
{
    switch (f) {
    case C_BOOL: return c->n_bool_contents;
    case C_INT: return c->n_int_contents;
    case C_INT64: return c->n_int64_contents;
    case C_UINT: return c->n_uint_contents;
    case C_UINT64: return c->n_uint64_contents;
    case C_FP32: return c->n_fp32_contents;
    case C_FP64: return c->n_fp64_contents;
    case C_BYTES: return c->n_bytes_contents;
    default: return 0;
    }
}

/* Fills t's data from its typed contents; t's datatype, shape and count are set. */
static int bind_typed(mg_tensor_t *t, size_t index, const Inference__InferTensorContents *c,
                      mg_arena_t *arena, mg_err_t *err)
{
    contents_field_t want = field_of(t->dtype);
    if (want == C_NONE)
        return ifail(err, MG_EDTYPE, t, index,
                     "%s has no typed contents field; send it in raw_input_contents",
                     mg_dtype_name(t->dtype));
    for (contents_field_t f = C_BOOL; f < C_NONE; f++) {
        if (f != want && field_count(c, f) > 0)
            return ifail(err, MG_EPARSE, t, index, "datatype %s takes %s, not %s",
                         mg_dtype_name(t->dtype), field_names[want], field_names[f]);
    }
    size_t got = field_count(c, want);
    if (got != t->count) {
        char shape[128];
        mg_shape_format(t->shape, t->ndim, shape, sizeof(shape));
        return ifail(err, MG_ESHAPE, t, index, "shape %s needs %zu elements, got %zu in %s", shape,
                     t->count, got, field_names[want]);
    }
    size_t n = t->count, esz = mg_dtype_storage_size(t->dtype);
    t->nbytes = n * esz;
    switch (want) {
    case C_INT64: t->data = c->int64_contents; return 0;
    case C_UINT64: t->data = c->uint64_contents; return 0;
    case C_FP32: t->data = c->fp32_contents; return 0;
    case C_FP64: t->data = c->fp64_contents; return 0;
    default: break;
    }
    if ((want == C_INT && t->dtype == MG_DT_INT32) ||
        (want == C_UINT && t->dtype == MG_DT_UINT32)) {
        t->data = want == C_INT ? (void *)c->int_contents : (void *)c->uint_contents;
        return 0;
    }
    /* Narrower storage than the field: convert, each element checked. */
    void *data = mg_arena_alloc(arena, n > 0 ? n * esz : 1);
    if (data == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    t->data = data;
    if (t->dtype == MG_DT_BYTES)
        t->nbytes = 0; /* the sum of the element lengths, as the JSON codec counts */
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case MG_DT_BOOL: ((uint8_t *)data)[i] = c->bool_contents[i] ? 1 : 0; break;
        case MG_DT_INT8:
        case MG_DT_INT16: {
            int32_t v = c->int_contents[i];
            int32_t lim = t->dtype == MG_DT_INT8 ? 127 : 32767;
            if (v > lim || v < -lim - 1)
                return ifail(err, MG_EDTYPE, t, index, "element %zu (%d) is out of range for %s", i,
                             (int)v, mg_dtype_name(t->dtype));
            if (t->dtype == MG_DT_INT8)
                ((int8_t *)data)[i] = (int8_t)v;
            else
                ((int16_t *)data)[i] = (int16_t)v;
            break;
        }
        case MG_DT_UINT8:
        case MG_DT_UINT16: {
            uint32_t v = c->uint_contents[i];
            if (v > (t->dtype == MG_DT_UINT8 ? 255u : 65535u))
                return ifail(err, MG_EDTYPE, t, index, "element %zu (%u) is out of range for %s", i,
                             (unsigned)v, mg_dtype_name(t->dtype));
            if (t->dtype == MG_DT_UINT8)
                ((uint8_t *)data)[i] = (uint8_t)v;
            else
                ((uint16_t *)data)[i] = (uint16_t)v;
            break;
        }
        case MG_DT_BYTES: {
            mg_str_t *s = data;
            s[i] = (mg_str_t){(const char *)c->bytes_contents[i].data, c->bytes_contents[i].len};
            t->nbytes += s[i].len;
            break;
        }
        default: break;
        }
    }
    return 0;
}

/* One input's name, datatype and shape. */
static int decode_input_head(const Inference__ModelInferRequest__InferInputTensor *in, size_t index,
                             mg_tensor_t *t, mg_err_t *err)
{
    memset(t, 0, sizeof(*t));
    t->name = (mg_str_t){in->name, strlen(in->name)};
    if (t->name.len == 0)
        return ifail(err, MG_EPARSE, t, index, "missing 'name'");
    size_t dl = strlen(in->datatype);
    t->dtype = mg_dtype_parse(in->datatype, dl);
    if (t->dtype == MG_DT_INVALID)
        return ifail(err, MG_EDTYPE, t, index, "unknown datatype '%.*s'", mg_err_quote_len(dl),
                     in->datatype);
    if (in->n_shape > MG_TENSOR_MAX_DIMS)
        return ifail(err, MG_ESHAPE, t, index, "shape has %zu dims; at most %d are supported",
                     in->n_shape, MG_TENSOR_MAX_DIMS);
    t->ndim = (int)in->n_shape;
    for (size_t k = 0; k < in->n_shape; k++) {
        if (in->shape[k] < 0)
            return ifail(err, MG_ESHAPE, t, index, "'shape' must hold non-negative integers");
        t->shape[k] = in->shape[k];
    }
    size_t bytes;
    if (mg_shape_count(t->shape, t->ndim, 0, &t->count) != 0 ||
        mg_mul_size(t->count, mg_dtype_storage_size(t->dtype), &bytes) != 0) {
        char shape[128];
        mg_shape_format(t->shape, t->ndim, shape, sizeof(shape));
        return ifail(err, MG_ERANGE, t, index, "shape %s of %s is too large", shape,
                     mg_dtype_name(t->dtype));
    }
    return 0;
}

/* ---- parameters --------------------------------------------------------------------------- */

/* The tensor a parameter belongs to, named in messages only: "input 'x'", "output 'y'". */
typedef struct tensor_label {
    const char *kind;
    mg_str_t name;
} tensor_label_t;

#define LABEL(l) (l)->kind, mg_err_quote_len((l)->name.len), (l)->name.ptr

/*
 * One parameter of a tensor, `key` = `v`, into `ref` when it is one of Triton's
 * shared_memory_region (a string), shared_memory_byte_size and shared_memory_offset
 * (non-negative integers). Returns 0 or MG_EPARSE with "<kind> '<name>': ..." in `err`.
 */
static int shm_param(const char *key, const Inference__InferParameter *v, mg_shm_ref_t *ref,
                     unsigned *seen, const tensor_label_t *l, mg_err_t *err)
{
    int choice = v != NULL ? (int)v->parameter_choice_case : 0;
    if (strcmp(key, "shared_memory_region") == 0) {
        if (choice != INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM ||
            v->string_param[0] == '\0')
            return mg_err_set(err, MG_EPARSE,
                              "%s '%.*s': 'shared_memory_region' must be a non-empty string",
                              LABEL(l));
        ref->region = (mg_str_t){v->string_param, strlen(v->string_param)};
        *seen |= MG_KSERVE_SHM_REGION;
        return 0;
    }
    uint64_t *num = strcmp(key, "shared_memory_byte_size") == 0 ? &ref->byte_size
                    : strcmp(key, "shared_memory_offset") == 0  ? &ref->offset
                                                                : NULL;
    if (num == NULL)
        return 0;
    if (choice == INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM && v->int64_param >= 0)
        *num = (uint64_t)v->int64_param;
    else if (choice == INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_UINT64_PARAM)
        *num = v->uint64_param;
    else
        return mg_err_set(err, MG_EPARSE, "%s '%.*s': '%s' must be a non-negative integer",
                          LABEL(l), key);
    *seen |= num == &ref->byte_size ? MG_KSERVE_SHM_SIZE : MG_KSERVE_SHM_OFFSET;
    return 0;
}

/* Both region and byte size, or none of the shared_memory_* parameters. */
static int shm_check(unsigned seen, const tensor_label_t *l, mg_err_t *err)
{
    if (mg_kserve_shm_complete(seen))
        return 0;
    return mg_err_set(err, MG_EPARSE, "%s '%.*s': " MG_KSERVE_SHM_INCOMPLETE, LABEL(l));
}

/* The shared-memory reference of input `in`, decoded as `t` (region empty: none). */
static int input_shm(const Inference__ModelInferRequest__InferInputTensor *in, const mg_tensor_t *t,
                     mg_shm_ref_t *ref, mg_err_t *err)
{
    const tensor_label_t l = {"input", t->name};
    unsigned seen = 0;
    *ref = (mg_shm_ref_t){{"", 0}, 0, 0};
    for (size_t k = 0; k < in->n_parameters; k++) {
        int rc = shm_param(in->parameters[k]->key, in->parameters[k]->value, ref, &seen, &l, err);
        if (rc != 0)
            return rc;
    }
    return shm_check(seen, &l, err);
}

static int decode_params(const Inference__ModelInferRequest *m, mg_infer_request_t *req,
                         mg_err_t *err)
{
    req->params =
        m->n_parameters ? mg_arena_alloc(req->arena, m->n_parameters * sizeof(mg_param_t)) : NULL;
    if (m->n_parameters && req->params == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    for (size_t i = 0; i < m->n_parameters; i++) {
        const Inference__ModelInferRequest__ParametersEntry *e = m->parameters[i];
        const Inference__InferParameter *v = e->value;
        mg_param_t p;
        memset(&p, 0, sizeof(p));
        p.key = (mg_str_t){e->key, strlen(e->key)};
        char num[MG_NUMFMT_F64_MAX + 1];
        size_t n = 0;
        if (v == NULL)
            continue;
        switch (v->parameter_choice_case) {
        case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_BOOL_PARAM:
            p.kind = MG_PARAM_BOOL;
            p.flag = v->bool_param != 0;
            p.text = p.flag ? MG_STR_LIT("true") : MG_STR_LIT("false");
            if (mg_str_eq(p.key, "binary_data_output"))
                req->binary_output = p.flag;
            break;
        case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM:
            p.kind = MG_PARAM_INT;
            p.num_int = v->int64_param;
            p.num = (double)v->int64_param;
            n = mg_numfmt_write_i64(num, v->int64_param);
            break;
        case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_UINT64_PARAM:
            /* As over JSON: an integer that fits int64 is an INT, a larger one a DOUBLE. */
            p.kind = v->uint64_param <= INT64_MAX ? MG_PARAM_INT : MG_PARAM_DOUBLE;
            p.num_int = v->uint64_param <= INT64_MAX ? (int64_t)v->uint64_param : 0;
            p.num = (double)v->uint64_param;
            n = mg_numfmt_write_u64(num, v->uint64_param);
            break;
        case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_DOUBLE_PARAM:
            p.kind = MG_PARAM_DOUBLE;
            p.num = v->double_param;
            n = mg_numfmt_write_f64(num, v->double_param);
            break;
        case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM:
            p.kind = MG_PARAM_STRING;
            p.text = (mg_str_t){v->string_param, strlen(v->string_param)};
            break;
        default: continue; /* no value set */
        }
        if (n > 0) {
            char *t = mg_arena_strndup(req->arena, num, n);
            if (t == NULL)
                return mg_err_set(err, MG_ENOMEM, "out of memory");
            p.text = (mg_str_t){t, n};
        }
        req->params[req->nparams++] = p;
    }
    return 0;
}

/* ---- the request -------------------------------------------------------------------------- */

int mg_kserve_pb_decode_request(const mg_str_t *seg, size_t nseg, mg_infer_request_t *req,
                                mg_kserve_pb_target_t *target, mg_buf_t *scratch, mg_err_t *err)
{
    mg_infer_request_clear(req);
    req->binary_output = true; /* raw_output_contents unless asked otherwise */
    *target = (mg_kserve_pb_target_t){{"", 0}, {"", 0}};

    cursor_t c = {seg, nseg, 0, 0, 0};
    for (size_t i = 0; i < nseg; i++)
        c.left += seg[i].len;
    mg_str_t *raw;
    size_t nraw;
    mg_buf_reset(scratch);
    int rc = split_message(&c, req->arena, scratch, &raw, &nraw, err);
    if (rc != 0)
        return rc;
    ProtobufCAllocator alloc;
    mg_kserve_pb_allocator(&alloc, req->arena);
    Inference__ModelInferRequest *m = inference__model_infer_request__unpack(
        &alloc, scratch->len, (const uint8_t *)(scratch->data ? scratch->data : ""));
    if (m == NULL)
        return mg_err_set(err, MG_EPARSE, "malformed ModelInferRequest: protobuf decoding failed");

    target->model = (mg_str_t){m->model_name, strlen(m->model_name)};
    target->version = (mg_str_t){m->model_version, strlen(m->model_version)};
    req->id = (mg_str_t){m->id, strlen(m->id)};
    if ((rc = decode_params(m, req, err)) != 0)
        return rc;

    if (m->n_inputs == 0)
        return mg_err_set(err, MG_EPARSE, "the request has no inputs");
    req->inputs = mg_arena_alloc(req->arena, m->n_inputs * sizeof(mg_tensor_t));
    mg_shm_ref_t *shm = mg_arena_alloc(req->arena, m->n_inputs * sizeof(mg_shm_ref_t));
    if (req->inputs == NULL || shm == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    /* Inputs in shared memory have no raw_input_contents entry: the others have one each. */
    size_t nshm = 0;
    for (size_t i = 0; i < m->n_inputs; i++) {
        if ((rc = decode_input_head(m->inputs[i], i, &req->inputs[i], err)) != 0 ||
            (rc = input_shm(m->inputs[i], &req->inputs[i], &shm[i], err)) != 0)
            return rc;
        nshm += shm[i].region.len > 0;
    }
    if (nraw > 0 && nraw != m->n_inputs - nshm)
        return mg_err_set(err, MG_EPARSE,
                          "raw_input_contents has %zu entries for %zu inputs%s; give one per "
                          "input, in input order",
                          nraw, m->n_inputs - nshm, nshm > 0 ? " not in shared memory" : "");
    if (nshm > 0)
        req->shm_inputs = shm;
    for (size_t i = 0, r = 0; i < m->n_inputs; i++) {
        const Inference__ModelInferRequest__InferInputTensor *in = m->inputs[i];
        mg_tensor_t *t = &req->inputs[i];
        req->ninputs = i + 1;
        if (shm[i].region.len > 0) {
            if (in->contents != NULL)
                return ifail(err, MG_EPARSE, t, i, "has both shared memory and contents: give one");
            continue; /* its bytes are bound from the region (serve/shm.h) */
        }
        if (nraw > 0) {
            if (in->contents != NULL)
                return ifail(err, MG_EPARSE, t, i,
                             "has both contents and raw_input_contents; use one of them");
            rc = mg_tensor_raw_bind(t, raw[r].ptr, raw[r].len, req->arena, "raw_input_contents",
                                    err);
            r++;
        } else {
            static const Inference__InferTensorContents empty =
                INFERENCE__INFER_TENSOR_CONTENTS__INIT;
            rc = bind_typed(t, i, in->contents ? in->contents : &empty, req->arena, err);
        }
        if (rc != 0)
            return rc;
    }

    if (m->n_outputs > 0) {
        req->outputs = mg_arena_alloc(req->arena, m->n_outputs * sizeof(mg_output_spec_t));
        mg_shm_ref_t *oshm = mg_arena_alloc(req->arena, m->n_outputs * sizeof(mg_shm_ref_t));
        if (req->outputs == NULL || oshm == NULL)
            return mg_err_set(err, MG_ENOMEM, "out of memory");
        for (size_t i = 0; i < m->n_outputs; i++) {
            const char *name = m->outputs[i]->name;
            if (name[0] == '\0')
                return mg_err_set(err, MG_EPARSE, "output #%zu: missing 'name'", i);
            req->outputs[i] = (mg_output_spec_t){{name, strlen(name)}, req->binary_output, 0};
            const tensor_label_t l = {"output", req->outputs[i].name};
            unsigned seen = 0;
            oshm[i] = (mg_shm_ref_t){{"", 0}, 0, 0};
            for (size_t k = 0; k < m->outputs[i]->n_parameters; k++) {
                const Inference__ModelInferRequest__InferRequestedOutputTensor__ParametersEntry *e =
                    m->outputs[i]->parameters[k];
                if ((rc = shm_param(e->key, e->value, &oshm[i], &seen, &l, err)) != 0)
                    return rc;
                if (strcmp(e->key, "classification") != 0)
                    continue;
                const Inference__InferParameter *p = e->value;
                int64_t n = p == NULL ? 0
                            : p->parameter_choice_case ==
                                    INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM
                                ? p->int64_param
                            : p->parameter_choice_case ==
                                    INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_UINT64_PARAM
                                ? (p->uint64_param > INT64_MAX ? 0 : (int64_t)p->uint64_param)
                                : 0;
                if (n <= 0 || n > UINT32_MAX)
                    return mg_err_set(err, MG_EPARSE,
                                      "output '%s': 'classification' must be a positive int64 "
                                      "(the number of classes to return)",
                                      name);
                req->outputs[i].classification = (uint32_t)n;
            }
            if ((rc = shm_check(seen, &l, err)) != 0)
                return rc;
            if (oshm[i].region.len > 0)
                req->shm_outputs = oshm;
        }
        req->noutputs = m->n_outputs;
    }
    return 0;
}

/* ---- the response ------------------------------------------------------------------------- */

static char *dup_str(mg_arena_t *a, mg_str_t s)
{
    return mg_arena_strndup(a, s.ptr ? s.ptr : "", s.len);
}

/* Points (or widens) t's elements into its typed contents field. */
static int encode_typed(const mg_tensor_t *t, Inference__InferTensorContents *c, mg_arena_t *a,
                        mg_err_t *err)
{
    size_t n = t->count;
    void *data = t->data;
    switch (t->dtype) {
    case MG_DT_INT32: c->n_int_contents = n, c->int_contents = data; return 0;
    case MG_DT_INT64: c->n_int64_contents = n, c->int64_contents = data; return 0;
    case MG_DT_UINT32: c->n_uint_contents = n, c->uint_contents = data; return 0;
    case MG_DT_UINT64: c->n_uint64_contents = n, c->uint64_contents = data; return 0;
    case MG_DT_FP32: c->n_fp32_contents = n, c->fp32_contents = data; return 0;
    case MG_DT_FP64: c->n_fp64_contents = n, c->fp64_contents = data; return 0;
    case MG_DT_FP16:
        return mg_err_set(err, MG_EDTYPE,
                          "output '%.*s': FP16 has no typed contents field; ask for "
                          "raw_output_contents (leave binary_data_output unset)",
                          mg_err_quote_len(t->name.len), t->name.ptr);
    default: break;
    }
    size_t esz = t->dtype == MG_DT_BYTES  ? sizeof(ProtobufCBinaryData)
                 : t->dtype == MG_DT_BOOL ? sizeof(protobuf_c_boolean)
                                          : sizeof(uint32_t);
    void *out = mg_arena_alloc(a, n > 0 ? n * esz : 1);
    if (out == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case MG_DT_BOOL: ((protobuf_c_boolean *)out)[i] = ((const uint8_t *)data)[i] != 0; break;
        case MG_DT_INT8: ((int32_t *)out)[i] = ((const int8_t *)data)[i]; break;
        case MG_DT_INT16: ((int32_t *)out)[i] = ((const int16_t *)data)[i]; break;
        case MG_DT_UINT8: ((uint32_t *)out)[i] = ((const uint8_t *)data)[i]; break;
        case MG_DT_UINT16: ((uint32_t *)out)[i] = ((const uint16_t *)data)[i]; break;
        case MG_DT_BYTES: {
            const mg_str_t *s = data;
            ((ProtobufCBinaryData *)out)[i] =
                (ProtobufCBinaryData){s[i].len, (uint8_t *)(uintptr_t)s[i].ptr};
            break;
        }
        default:
            return mg_err_set(err, MG_EDTYPE, "output '%.*s': datatype %s cannot be encoded",
                              mg_err_quote_len(t->name.len), t->name.ptr, mg_dtype_name(t->dtype));
        }
    }
    switch (t->dtype) {
    case MG_DT_BOOL: c->n_bool_contents = n, c->bool_contents = out; break;
    case MG_DT_INT8:
    case MG_DT_INT16: c->n_int_contents = n, c->int_contents = out; break;
    case MG_DT_UINT8:
    case MG_DT_UINT16: c->n_uint_contents = n, c->uint_contents = out; break;
    default: c->n_bytes_contents = n, c->bytes_contents = out; break;
    }
    return 0;
}

/* t's elements as one raw_output_contents entry: in place, or laid out (BYTES). */
static int encode_raw(const mg_tensor_t *t, ProtobufCBinaryData *out, mg_arena_t *a, mg_err_t *err)
{
    uint64_t size;
    int rc = mg_tensor_raw_size(t, &size);
    if (rc != 0)
        return mg_err_set(err, rc == MG_ERANGE ? MG_ERANGE : MG_EDTYPE, "output '%.*s': %s",
                          mg_err_quote_len(t->name.len), t->name.ptr,
                          rc == MG_ERANGE ? "a BYTES element of 4 GiB or more"
                                          : "datatype cannot be encoded");
    if (t->dtype != MG_DT_BYTES) {
        *out = (ProtobufCBinaryData){(size_t)size, t->data};
        return 0;
    }
    char *p = size <= SIZE_MAX ? mg_arena_alloc(a, size ? (size_t)size : 1) : NULL;
    if (p == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    mg_tensor_raw_write(t, p);
    *out = (ProtobufCBinaryData){(size_t)size, (uint8_t *)p};
    return 0;
}

/*
 * Output `o` written to shared memory at `ref`: no contents (an empty raw_output_contents
 * entry keeps the others' places) and the region in its parameters, as the request named it.
 */
static int encode_shm(Inference__ModelInferResponse__InferOutputTensor *o, const mg_shm_ref_t *ref,
                      mg_arena_t *arena, mg_err_t *err)
{
    enum { N = 3 };
    Inference__ModelInferResponse__InferOutputTensor__ParametersEntry **pe =
        mg_arena_alloc(arena, N * sizeof(*pe));
    Inference__ModelInferResponse__InferOutputTensor__ParametersEntry *e =
        mg_arena_alloc(arena, N * sizeof(*e));
    Inference__InferParameter *v = mg_arena_alloc(arena, N * sizeof(*v));
    char *region = dup_str(arena, ref->region);
    if (pe == NULL || e == NULL || v == NULL || region == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    static const char *const keys[N] = {"shared_memory_region", "shared_memory_byte_size",
                                        "shared_memory_offset"};
    for (int k = 0; k < N; k++) {
        inference__model_infer_response__infer_output_tensor__parameters_entry__init(&e[k]);
        inference__infer_parameter__init(&v[k]);
        e[k].key = (char *)(uintptr_t)keys[k];
        e[k].value = &v[k];
        pe[k] = &e[k];
    }
    v[0].parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM;
    v[0].string_param = region;
    v[1].parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM;
    v[1].int64_param = (int64_t)ref->byte_size;
    v[2].parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM;
    v[2].int64_param = (int64_t)ref->offset;
    o->n_parameters = ref->offset != 0 ? N : N - 1;
    o->parameters = pe;
    return 0;
}

int mg_kserve_pb_encode_response(const mg_infer_response_t *resp, bool typed, mg_arena_t *arena,
                                 Inference__ModelInferResponse **out, mg_err_t *err)
{
    Inference__ModelInferResponse *m = mg_arena_alloc(arena, sizeof(*m));
    size_t n = resp->noutputs;
    Inference__ModelInferResponse__InferOutputTensor **outs =
        mg_arena_alloc(arena, (n ? n : 1) * sizeof(*outs));
    Inference__ModelInferResponse__InferOutputTensor *tensors =
        mg_arena_alloc(arena, (n ? n : 1) * sizeof(*tensors));
    ProtobufCBinaryData *raw = typed ? NULL : mg_arena_alloc(arena, (n ? n : 1) * sizeof(*raw));
    Inference__InferTensorContents *contents =
        typed ? mg_arena_alloc(arena, (n ? n : 1) * sizeof(*contents)) : NULL;
    if (m == NULL || outs == NULL || tensors == NULL || (typed ? contents == NULL : raw == NULL))
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    inference__model_infer_response__init(m);
    m->model_name = dup_str(arena, (mg_str_t){resp->model_name ? resp->model_name : "",
                                              resp->model_name ? strlen(resp->model_name) : 0});
    m->model_version =
        dup_str(arena, (mg_str_t){resp->model_version ? resp->model_version : "",
                                  resp->model_version ? strlen(resp->model_version) : 0});
    m->id = dup_str(arena, resp->id);
    if (m->model_name == NULL || m->model_version == NULL || m->id == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const mg_tensor_t *t = &resp->outputs[i];
        Inference__ModelInferResponse__InferOutputTensor *o = &tensors[i];
        inference__model_infer_response__infer_output_tensor__init(o);
        o->name = dup_str(arena, t->name);
        o->datatype = (char *)(uintptr_t)mg_dtype_name(t->dtype);
        o->n_shape = (size_t)(t->ndim > 0 ? t->ndim : 0);
        o->shape = (int64_t *)(uintptr_t)t->shape;
        if (o->name == NULL)
            return mg_err_set(err, MG_ENOMEM, "out of memory");
        int rc;
        if (resp->shm != NULL && resp->shm[i].region.len > 0) {
            rc = encode_shm(o, &resp->shm[i], arena, err);
            if (!typed)
                raw[i] = (ProtobufCBinaryData){0, NULL};
        } else if (typed) {
            inference__infer_tensor_contents__init(&contents[i]);
            rc = encode_typed(t, &contents[i], arena, err);
            o->contents = &contents[i];
        } else {
            rc = encode_raw(t, &raw[i], arena, err);
        }
        if (rc != 0)
            return rc;
        outs[i] = o;
    }
    m->n_outputs = n;
    m->outputs = outs;
    if (!typed) {
        m->n_raw_output_contents = n;
        m->raw_output_contents = raw;
    }
    *out = m;
    return 0;
}
