/*
 * Tensor element values <-> JSON (proto/tensor_json.h): a decoder that walks a data array,
 * nested or flat, straight into tensor storage, with a fast path for flat numeric arrays,
 * and an encoder that formats a fixed-size tensor in one reserved pass.
 */
#include "proto/tensor_json.h"

#include "proto/numfmt.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- messages ---- */

static int fail(mg_err_t *err, int code, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fills `err` with "<what>: <message>" (just the message when `what` is "") and returns `code`. */
static int fail(mg_err_t *err, int code, const char *what, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (what[0] == '\0')
        return mg_err_set(err, code, "%s", msg);
    return mg_err_set(err, code, "%s: %s", what, msg);
}

/* ---- decoding ---- */

/* Bits of an integer datatype, negative for signed ones; 0 for the others. */
static int int_bits(mg_dtype_t dt)
{
    switch (dt) {
    case MG_DT_UINT8: return 8;
    case MG_DT_UINT16: return 16;
    case MG_DT_UINT32: return 32;
    case MG_DT_UINT64: return 64;
    case MG_DT_INT8: return -8;
    case MG_DT_INT16: return -16;
    case MG_DT_INT32: return -32;
    case MG_DT_INT64: return -64;
    default: return 0;
    }
}

/* State of one walk over a (possibly nested) JSON data array. */
typedef struct decoder {
    mg_json_t *j;
    mg_dtype_t dtype;
    size_t esz;         /* slot size */
    unsigned char *dst; /* `cap` slots; elements past cap are checked and counted only */
    size_t cap;
    size_t count;
    size_t str_bytes; /* BYTES: sum of element lengths */
    mg_arena_t *arena;
    const char *what; /* message prefix */
    mg_err_t *err;
    /* shape inference, for mg_tensor_json_decode without a shape */
    bool infer;
    int leaf_level; /* nesting level of the scalars, 0 until the first one */
    int max_level;
    int64_t dims[MG_TENSOR_MAX_DIMS];
    int64_t run[MG_TENSOR_MAX_DIMS];
} decoder_t;

static int json_err(decoder_t *d)
{
    return mg_json_error(d->j, d->err);
}

/* The non-finite spellings accepted for FP inputs. */
static bool nonfinite_value(mg_str_t raw, double *v)
{
    if (mg_json_str_eq(raw, "NaN"))
        *v = NAN;
    else if (mg_json_str_eq(raw, "Infinity"))
        *v = INFINITY;
    else if (mg_json_str_eq(raw, "-Infinity"))
        *v = -INFINITY;
    else
        return false;
    return true;
}

/*
 * Converts a scanned number to an element of `dt` at `slot` (NULL: check only). Returns 0,
 * MG_EDTYPE (not an integer, for an integer datatype) or MG_ERANGE (out of range).
 */
static inline int store_number(mg_dtype_t dt, const mg_numfmt_decimal_t *num, void *slot)
{
    int rc;
    switch (dt) {
    case MG_DT_FP32: {
        float f;
        if ((rc = mg_numfmt_to_f32(num, &f)) == 0 && slot != NULL)
            memcpy(slot, &f, sizeof(f));
        return rc;
    }
    case MG_DT_FP64: {
        double v;
        if ((rc = mg_numfmt_to_f64(num, &v)) == 0 && slot != NULL)
            memcpy(slot, &v, sizeof(v));
        return rc;
    }
    case MG_DT_FP16: {
        uint16_t h;
        if ((rc = mg_numfmt_to_f16(num, &h)) == 0 && slot != NULL)
            memcpy(slot, &h, sizeof(h));
        return rc;
    }
    default: {
        int bits = int_bits(dt);
        uint64_t u = 0;
        if (bits > 0) {
            rc = mg_numfmt_to_uint(num, bits, &u);
        } else {
            int64_t v = 0;
            rc = mg_numfmt_to_int(num, -bits, &v);
            u = (uint64_t)v;
        }
        /* little-endian host: the low bytes of the 64-bit value are the element */
        if (rc == 0 && slot != NULL)
            memcpy(slot, &u, (size_t)(bits > 0 ? bits : -bits) / 8);
        return rc;
    }
    }
}

static int decode_number(decoder_t *d, mg_json_type_t t, size_t idx, void *slot)
{
    bool fp = mg_dtype_is_float(d->dtype);
    if (t == MG_JSON_STRING && fp) {
        mg_str_t raw;
        double v;
        if (mg_json_read_string(d->j, &raw) != 0)
            return json_err(d);
        if (!nonfinite_value(raw, &v))
            return fail(d->err, MG_EDTYPE, d->what,
                        "element %zu is not a number (only \"NaN\", \"Infinity\" and "
                        "\"-Infinity\" may be strings)",
                        idx);
        if (slot == NULL)
            return 0;
        if (d->dtype == MG_DT_FP32) {
            float f = (float)v;
            memcpy(slot, &f, sizeof(f));
        } else if (d->dtype == MG_DT_FP64) {
            memcpy(slot, &v, sizeof(v));
        } else {
            uint16_t h = mg_numfmt_f16_from_f64(v);
            memcpy(slot, &h, sizeof(h));
        }
        return 0;
    }
    if (t != MG_JSON_NUMBER)
        return fail(d->err, MG_EDTYPE, d->what, "element %zu is not %s", idx,
                    fp ? "a number" : "an integer");
    mg_numfmt_decimal_t num;
    if (mg_json_read_number(d->j, &num) != 0)
        return json_err(d);
    int rc = store_number(d->dtype, &num, slot);
    if (rc == MG_EDTYPE)
        return fail(d->err, MG_EDTYPE, d->what, "element %zu (%.*s) is not an integer", idx,
                    mg_err_quote_len(num.len), num.text);
    if (rc != 0)
        return fail(d->err, MG_EDTYPE, d->what, "element %zu (%.*s) is out of range for %s", idx,
                    mg_err_quote_len(num.len), num.text, mg_dtype_name(d->dtype));
    return 0;
}

static int decode_leaf(decoder_t *d, mg_json_type_t t)
{
    size_t idx = d->count;
    void *slot = idx < d->cap ? d->dst + idx * d->esz : NULL;
    int rc;
    switch (d->dtype) {
    case MG_DT_BOOL: {
        bool v;
        if (t != MG_JSON_TRUE && t != MG_JSON_FALSE)
            return fail(d->err, MG_EDTYPE, d->what, "element %zu is not a boolean", idx);
        if (mg_json_read_bool(d->j, &v) != 0)
            return json_err(d);
        if (slot != NULL)
            *(unsigned char *)slot = v ? 1 : 0;
        rc = 0;
        break;
    }
    case MG_DT_BYTES: {
        mg_str_t raw, s;
        if (t != MG_JSON_STRING)
            return fail(d->err, MG_EDTYPE, d->what, "element %zu is not a string", idx);
        if (mg_json_read_string(d->j, &raw) != 0)
            return json_err(d);
        rc = 0;
        if (slot != NULL) {
            if (mg_json_unescape(raw, d->arena, &s) != 0)
                return mg_err_set(d->err, MG_ENOMEM, "out of memory decoding the request");
            memcpy(slot, &s, sizeof(s));
            d->str_bytes += s.len;
        }
        break;
    }
    default: rc = decode_number(d, t, idx, slot); break;
    }
    if (rc != 0)
        return rc;
    d->count++;
    return 0;
}

static int ragged(decoder_t *d)
{
    return fail(d->err, MG_ESHAPE, d->what, "ragged nested array (element %zu)", d->count);
}

static inline bool is_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/*
 * The hot case, a flat array of plain numbers for a numeric datatype, in one tight loop
 * over the bytes. Returns true when it consumed the whole array; false (cursor untouched)
 * on anything else (nesting, strings, bad syntax, a value out of range), for the general
 * walk to redo and, if need be, report.
 */
static bool decode_flat(decoder_t *d)
{
    mg_json_t *j = d->j;
    const char *s = j->base;
    size_t len = j->len;
    size_t i = j->pos;
    size_t count = 0;
    if (i >= len || s[i] != '[' || j->depth >= MG_JSON_MAX_DEPTH)
        return false;
    /*
     * A flat array of numbers holds no ']' before its own: every scan below stops at that
     * byte at the latest (it is no digit, sign, point, white space or comma), so none
     * tests the length. Anything else found before it sends the array to the general walk.
     */
    const char *close = memchr(s + i, ']', len - i);
    if (close == NULL)
        return false;
    size_t end = (size_t)(close - s);
    i++;
    while (is_ws(s[i]))
        i++;
    if (s[i] == ']') {
        i++;
    } else {
        for (;;) {
            void *slot = count < d->cap ? d->dst + count * d->esz : NULL;
            float f;
            size_t k = d->dtype == MG_DT_FP32 ? mg_numfmt_f32_plain(s + i, &f) : 0;
            if (k != 0) {
                if (slot != NULL)
                    memcpy(slot, &f, sizeof(f));
            } else {
                mg_numfmt_decimal_t num;
                if ((k = mg_numfmt_scan(s + i, end - i, &num)) == 0 ||
                    store_number(d->dtype, &num, slot))
                    return false;
            }
            i += k;
            count++;
            if (s[i] == ',') { /* "1,2": the common case, one test */
                i++;
            } else {
                while (is_ws(s[i]))
                    i++;
                char c = s[i++];
                if (c == ']')
                    break;
                if (c != ',')
                    return false;
            }
            /* JSON's white space is all below '!': one test when there is none */
            while ((unsigned char)s[i] <= ' ' && is_ws(s[i]))
                i++;
        }
    }
    j->pos = i;
    d->count = count;
    /* what the general walk would have inferred for a flat array */
    d->max_level = 1;
    d->leaf_level = count ? 1 : 0;
    d->dims[0] = (int64_t)count;
    return true;
}

/*
 * Walks the array at the cursor, nested to any depth the cursor allows, decoding every
 * scalar in order. Iterative: `level` counts the arrays open inside the data.
 */
static int decode_array(decoder_t *d)
{
    mg_json_t *j = d->j;
    int rc;
    mg_json_peek(j); /* to the '[' */
    if (d->dtype != MG_DT_BOOL && d->dtype != MG_DT_BYTES && decode_flat(d))
        return 0;
    if (mg_json_array_begin(j) != 0)
        return json_err(d);
    int level = 1;
    d->max_level = 1;
    d->leaf_level = 0;
    for (int i = 0; i < MG_TENSOR_MAX_DIMS; i++)
        d->dims[i] = -1;
    d->run[0] = 0;
    for (;;) {
        rc = mg_json_array_next(j);
        if (rc < 0)
            return json_err(d);
        if (rc == 0) {
            if (d->infer) {
                int k = level - 1;
                if (d->dims[k] < 0)
                    d->dims[k] = d->run[k];
                else if (d->dims[k] != d->run[k])
                    return ragged(d);
                if (k > 0)
                    d->run[k - 1]++;
            }
            if (--level == 0)
                return 0;
            continue;
        }
        mg_json_type_t t = mg_json_peek(j);
        if (t == MG_JSON_ARRAY) {
            if (mg_json_array_begin(j) != 0)
                return json_err(d);
            level++;
            if (d->infer) {
                if (level > MG_TENSOR_MAX_DIMS)
                    return fail(d->err, MG_ESHAPE, d->what, "data nests deeper than %d dims",
                                MG_TENSOR_MAX_DIMS);
                if (d->leaf_level != 0 && level > d->leaf_level)
                    return ragged(d);
                d->run[level - 1] = 0;
                if (level > d->max_level)
                    d->max_level = level;
            }
            continue;
        }
        if (t == MG_JSON_END || t == MG_JSON_INVALID) {
            mg_json_fail(j, "expected a value");
            return json_err(d);
        }
        if (d->infer) {
            if (d->leaf_level == 0) {
                if (level != d->max_level)
                    return ragged(d);
                d->leaf_level = level;
            } else if (level != d->leaf_level) {
                return ragged(d);
            }
            d->run[level - 1]++;
        }
        if ((rc = decode_leaf(d, t)) != 0)
            return rc;
    }
}

/*
 * Allocates the slots for `count` elements of `dt` when the remaining `avail` JSON bytes
 * could hold them (each element takes at least 2 bytes, a string 3); otherwise sets *cap 0
 * so the walk only counts, and the count mismatch is reported instead of a huge allocation.
 */
static int alloc_slots(mg_arena_t *arena, mg_dtype_t dt, size_t count, size_t avail,
                       unsigned char **dst, size_t *cap)
{
    size_t most = dt == MG_DT_BYTES ? avail / 3 + 1 : avail / 2 + 1;
    size_t n = count <= most ? count : 0;
    size_t bytes;
    if (mg_mul_size(n, mg_dtype_storage_size(dt), &bytes) != 0)
        return MG_ENOMEM;
    *dst = mg_arena_alloc(arena, bytes);
    if (*dst == NULL)
        return MG_ENOMEM;
    *cap = n;
    return 0;
}

/* Fills t->data/count/nbytes from a finished walk. */
static void set_decoded(mg_tensor_t *t, const decoder_t *d)
{
    t->data = d->dst;
    t->count = d->count;
    t->nbytes = t->dtype == MG_DT_BYTES ? d->str_bytes : d->count * mg_dtype_size(t->dtype);
}

static int count_mismatch(const mg_tensor_t *t, size_t want, size_t got, const char *what,
                          mg_err_t *err)
{
    char shape[128];
    mg_shape_format(t->shape, t->ndim, shape, sizeof(shape));
    return fail(err, MG_ESHAPE, what, "shape %s needs %zu elements, got %zu", shape, want, got);
}

int mg_tensor_json_read(mg_json_t *j, mg_tensor_t *t, size_t count, mg_arena_t *arena,
                        const char *what, mg_err_t *err)
{
    decoder_t d = {.j = j,
                   .dtype = t->dtype,
                   .esz = mg_dtype_storage_size(t->dtype),
                   .arena = arena,
                   .what = what,
                   .err = err};
    if (alloc_slots(arena, t->dtype, count, j->len - j->pos, &d.dst, &d.cap) != 0)
        return mg_err_set(err, MG_ENOMEM, "out of memory decoding the request");
    int rc = decode_array(&d);
    if (rc != 0)
        return rc;
    if (d.count != count)
        return count_mismatch(t, count, d.count, what, err);
    set_decoded(t, &d);
    return 0;
}

int mg_tensor_json_decode(const char *json, size_t len, mg_tensor_t *t, mg_arena_t *arena,
                          const char *what, mg_err_t *err)
{
    if (what == NULL)
        what = "data";
    mg_json_t j;
    mg_json_init(&j, json, len);
    if (t->dtype <= MG_DT_INVALID || t->dtype >= MG_DT_COUNT_)
        return fail(err, MG_EDTYPE, what, "invalid datatype");
    if (t->ndim < 0 || t->ndim > MG_TENSOR_MAX_DIMS)
        return fail(err, MG_ESHAPE, what, "rank %d is not within 0..%d", t->ndim,
                    MG_TENSOR_MAX_DIMS);
    if (mg_json_peek(&j) != MG_JSON_ARRAY) {
        mg_json_fail(&j, "expected '['");
        return mg_json_error(&j, err);
    }
    int rc;
    if (t->ndim > 0) {
        size_t want;
        rc = mg_shape_count(t->shape, t->ndim, mg_dtype_storage_size(t->dtype), &want);
        if (rc == MG_ESHAPE)
            return fail(err, MG_ESHAPE, what, "shape has a negative dim");
        if (rc != 0)
            return fail(err, MG_ERANGE, what, "shape is too large");
        rc = mg_tensor_json_read(&j, t, want, arena, what, err);
        if (rc != 0)
            return rc;
    } else {
        decoder_t d = {.j = &j,
                       .dtype = t->dtype,
                       .esz = mg_dtype_storage_size(t->dtype),
                       .arena = arena,
                       .what = what,
                       .err = err,
                       .infer = true};
        /* The count is unknown until the end: size the slots for the most `len` can hold. */
        size_t most = t->dtype == MG_DT_BYTES ? len / 3 + 1 : len / 2 + 1;
        if (alloc_slots(arena, t->dtype, most, len, &d.dst, &d.cap) != 0)
            return mg_err_set(err, MG_ENOMEM, "out of memory decoding the request");
        if ((rc = decode_array(&d)) != 0)
            return rc;
        t->ndim = d.leaf_level != 0 ? d.leaf_level : d.max_level;
        for (int i = 0; i < t->ndim; i++)
            t->shape[i] = d.dims[i];
        set_decoded(t, &d);
    }
    if (mg_json_end(&j) != 0)
        return mg_json_error(&j, err);
    return 0;
}

/* ---- encoding ---- */

/* Widest text of one element of `dt` plus its comma. */
static size_t value_width(mg_dtype_t dt)
{
    switch (dt) {
    case MG_DT_BOOL: return 6;
    case MG_DT_FP16:
    case MG_DT_FP32: return MG_NUMFMT_F32_MAX + 1;
    case MG_DT_FP64: return MG_NUMFMT_F64_MAX + 1;
    default: return MG_NUMFMT_INT_MAX + 2; /* sign */
    }
}

/* Writes element i of a fixed-size tensor at o; returns the length. */
static size_t write_value(char *o, mg_dtype_t dt, const unsigned char *p)
{
    switch (dt) {
    case MG_DT_BOOL:
        if (*p) {
            memcpy(o, "true", 4);
            return 4;
        }
        memcpy(o, "false", 5);
        return 5;
    case MG_DT_UINT8: return mg_numfmt_write_u64(o, *p);
    case MG_DT_INT8: return mg_numfmt_write_i64(o, (int8_t)*p);
    case MG_DT_UINT16: {
        uint16_t v;
        memcpy(&v, p, sizeof(v));
        return mg_numfmt_write_u64(o, v);
    }
    case MG_DT_INT16: {
        int16_t v;
        memcpy(&v, p, sizeof(v));
        return mg_numfmt_write_i64(o, v);
    }
    case MG_DT_UINT32: {
        uint32_t v;
        memcpy(&v, p, sizeof(v));
        return mg_numfmt_write_u64(o, v);
    }
    case MG_DT_INT32: {
        int32_t v;
        memcpy(&v, p, sizeof(v));
        return mg_numfmt_write_i64(o, v);
    }
    case MG_DT_UINT64: {
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        return mg_numfmt_write_u64(o, v);
    }
    case MG_DT_INT64: {
        int64_t v;
        memcpy(&v, p, sizeof(v));
        return mg_numfmt_write_i64(o, v);
    }
    case MG_DT_FP16: {
        uint16_t v;
        memcpy(&v, p, sizeof(v));
        return mg_numfmt_write_f32(o, mg_numfmt_f16_to_f32(v));
    }
    case MG_DT_FP32: {
        float v;
        memcpy(&v, p, sizeof(v));
        return mg_numfmt_write_f32(o, v);
    }
    case MG_DT_FP64: {
        double v;
        memcpy(&v, p, sizeof(v));
        return mg_numfmt_write_f64(o, v);
    }
    default: return 0;
    }
}

int mg_tensor_json_encode(mg_buf_t *out, const mg_tensor_t *t)
{
    if (t->dtype == MG_DT_BYTES) {
        const mg_str_t *s = t->data;
        if (mg_buf_append(out, "[", 1) != 0)
            return MG_ENOMEM;
        for (size_t i = 0; i < t->count; i++) {
            if ((i && mg_buf_append(out, ",", 1) != 0) ||
                mg_buf_json_string(out, s[i].ptr, s[i].len) != 0)
                return MG_ENOMEM;
        }
        return mg_buf_append(out, "]", 1);
    }
    size_t esz = mg_dtype_size(t->dtype);
    size_t room;
    if (esz == 0 || mg_mul_size(t->count, value_width(t->dtype), &room) != 0 ||
        mg_buf_reserve(out, room + 2) != 0)
        return esz == 0 ? MG_EINVAL : MG_ENOMEM;
    /* reserved once: the loop writes without per-element checks */
    char *o = out->data + out->len;
    const unsigned char *p = t->data;
    *o++ = '[';
    for (size_t i = 0; i < t->count; i++) {
        o += write_value(o, t->dtype, p + i * esz);
        *o++ = ',';
    }
    if (t->count)
        o--;
    *o++ = ']';
    out->len = (size_t)(o - out->data);
    return 0;
}

int mg_tensor_json_encode_element(mg_buf_t *out, const mg_tensor_t *t, size_t i)
{
    if (t->dtype == MG_DT_BYTES) {
        const mg_str_t *s = t->data;
        return mg_buf_json_string(out, s[i].ptr, s[i].len);
    }
    size_t esz = mg_dtype_size(t->dtype);
    if (esz == 0)
        return MG_EINVAL;
    char tmp[MG_NUMFMT_F64_MAX];
    const unsigned char *p = t->data;
    return mg_buf_append(out, tmp, write_value(tmp, t->dtype, p + i * esz));
}
