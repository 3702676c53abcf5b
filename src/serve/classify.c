/* The classification extension (serve/classify.h). */
#include "serve/classify.h"

#include "proto/numfmt.h"

#include <stdlib.h>
#include <string.h>

/* Element `i` of a numeric tensor as a double, for ordering. */
static double value_at(const mg_tensor_t *t, size_t i)
{
    const unsigned char *p = (const unsigned char *)t->data + i * mg_dtype_size(t->dtype);
    union {
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
        int8_t i8;
        int16_t i16;
        int32_t i32;
        int64_t i64;
        float f32;
        double f64;
    } u;
    memcpy(&u, p, mg_dtype_size(t->dtype));
    switch (t->dtype) {
    case MG_DT_BOOL:
    case MG_DT_UINT8: return u.u8;
    case MG_DT_UINT16: return u.u16;
    case MG_DT_UINT32: return u.u32;
    case MG_DT_UINT64: return (double)u.u64;
    case MG_DT_INT8: return u.i8;
    case MG_DT_INT16: return u.i16;
    case MG_DT_INT32: return u.i32;
    case MG_DT_INT64: return (double)u.i64;
    case MG_DT_FP16: return mg_numfmt_f16_to_f32(u.u16);
    case MG_DT_FP32: return u.f32;
    default: return u.f64;
    }
}

/* Element `i` as text, as the JSON encoding writes it (non-finite values unquoted). */
static size_t value_text(const mg_tensor_t *t, size_t i, char *out)
{
    const unsigned char *p = (const unsigned char *)t->data + i * mg_dtype_size(t->dtype);
    size_t n;
    float f;
    double d;
    int64_t s;
    uint64_t u;
    switch (t->dtype) {
    case MG_DT_FP16:
    case MG_DT_FP32:
        f = (float)value_at(t, i);
        n = mg_numfmt_write_f32(out, f);
        break;
    case MG_DT_FP64:
        memcpy(&d, p, sizeof(d));
        n = mg_numfmt_write_f64(out, d);
        break;
    case MG_DT_UINT64:
        memcpy(&u, p, sizeof(u));
        n = mg_numfmt_write_u64(out, u);
        break;
    case MG_DT_INT64:
        memcpy(&s, p, sizeof(s));
        n = mg_numfmt_write_i64(out, s);
        break;
    default: n = mg_numfmt_write_i64(out, (int64_t)value_at(t, i)); break;
    }
    if (n >= 2 && out[0] == '"') { /* "NaN", "Infinity": the bare word */
        memmove(out, out + 1, n - 2);
        n -= 2;
    }
    return n;
}

/* Descending by value, then ascending by index; NaN last. */
static int by_value(const void *a, const void *b, void *ctx)
{
    const double *vals = ctx;
    size_t i = *(const size_t *)a, k = *(const size_t *)b;
    double x = vals[i], y = vals[k];
    bool xn = x != x, yn = y != y;
    if (xn != yn)
        return xn ? 1 : -1;
    if (!xn && x != y)
        return x > y ? -1 : 1;
    return i < k ? -1 : i > k;
}

static int classify_one(mg_tensor_t *t, uint32_t want, int64_t max_batch, const mg_labels_t *labels,
                        mg_arena_t *arena, mg_err_t *err)
{
    if (t->dtype == MG_DT_BYTES || mg_dtype_size(t->dtype) == 0)
        return mg_err_set(err, MG_EINVAL,
                          "output '%.*s': classification needs a numeric output, it is %s",
                          mg_err_quote_len(t->name.len), t->name.ptr, mg_dtype_name(t->dtype));
    bool batched = max_batch > 0 && t->ndim >= 1;
    size_t rows = batched ? (size_t)t->shape[0] : 1;
    size_t classes = rows > 0 ? t->count / rows : 0;
    size_t k = want < classes ? want : classes;
    size_t nout = rows * k;
    mg_str_t *strs = mg_arena_alloc(arena, (nout ? nout : 1) * sizeof(*strs));
    double *vals = mg_arena_alloc(arena, (classes ? classes : 1) * sizeof(*vals));
    size_t *idx = mg_arena_alloc(arena, (classes ? classes : 1) * sizeof(*idx));
    if (strs == NULL || vals == NULL || idx == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory classifying output '%.*s'",
                          mg_err_quote_len(t->name.len), t->name.ptr);
    size_t nbytes = 0;
    for (size_t r = 0; r < rows; r++) {
        size_t base = r * classes;
        for (size_t c = 0; c < classes; c++) {
            vals[c] = value_at(t, base + c);
            idx[c] = c;
        }
        qsort_r(idx, classes, sizeof(*idx), by_value, vals);
        for (size_t j = 0; j < k; j++) {
            char num[MG_NUMFMT_F64_MAX + 24];
            size_t c = idx[j];
            size_t n = value_text(t, base + c, num);
            num[n++] = ':';
            n += mg_numfmt_write_u64(num + n, c);
            const mg_str_t *label = labels != NULL && c < labels->n ? &labels->lines[c] : NULL;
            size_t len = n + (label ? 1 + label->len : 0);
            char *s = mg_arena_alloc(arena, len ? len : 1);
            if (s == NULL)
                return mg_err_set(err, MG_ENOMEM, "out of memory classifying output '%.*s'",
                                  mg_err_quote_len(t->name.len), t->name.ptr);
            memcpy(s, num, n);
            if (label != NULL) {
                s[n] = ':';
                memcpy(s + n + 1, label->ptr, label->len);
            }
            strs[r * k + j] = (mg_str_t){s, len};
            nbytes += len;
        }
    }
    t->dtype = MG_DT_BYTES;
    t->ndim = batched ? 2 : 1;
    t->shape[0] = batched ? (int64_t)rows : (int64_t)k;
    t->shape[1] = (int64_t)k;
    t->count = nout;
    t->data = strs;
    t->nbytes = nbytes;
    return 0;
}

int mg_classify_apply(const mg_model_version_t *v, const mg_infer_request_t *req,
                      mg_infer_response_t *resp, mg_err_t *err)
{
    int64_t max_batch = mg_model_version_config(v)->max_batch_size;
    for (size_t i = 0; i < req->noutputs; i++) {
        const mg_output_spec_t *o = &req->outputs[i];
        if (o->classification == 0)
            continue;
        for (size_t k = 0; k < resp->noutputs; k++) {
            mg_tensor_t *t = &resp->outputs[k];
            if (t->name.len != o->name.len || memcmp(t->name.ptr, o->name.ptr, t->name.len) != 0)
                continue;
            int rc = classify_one(t, o->classification, max_batch,
                                  mg_model_version_labels(v, o->name), req->arena, err);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}
