/*
 * The simple /predict API (proto/predict.h): a request body split into spans without
 * allocating, its data bound to a one-input model, and the answer with the arg-max
 * prediction and its confidence.
 */
#include "proto/predict.h"

#include "proto/json.h"
#include "proto/numfmt.h"
#include "proto/tensor_json.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* ---- decoding ---- */

/* A string or number member value as raw text; escapes are refused (no arena to decode). */
static int predict_str(mg_json_t *j, const char *name, mg_str_t *out, mg_err_t *err)
{
    mg_json_type_t t = mg_json_peek(j);
    if (t == MG_JSON_STRING) {
        if (mg_json_read_string(j, out) != 0)
            return mg_json_error(j, err);
        if (memchr(out->ptr, '\\', out->len) != NULL)
            return mg_err_set(err, MG_EPARSE, "'%s' must not contain escapes", name);
        return 0;
    }
    if (t == MG_JSON_NUMBER && strcmp(name, "version") == 0) {
        mg_numfmt_decimal_t num;
        if (mg_json_read_number(j, &num) != 0)
            return mg_json_error(j, err);
        out->ptr = num.text;
        out->len = num.len;
        return 0;
    }
    return mg_err_set(err, MG_EPARSE, "'%s' must be a string", name);
}

int mg_predict_decode(const char *body, size_t len, mg_predict_request_t *out, mg_err_t *err)
{
    mg_json_t j;
    mg_str_t key;
    bool have_data = false;
    int rc;
    out->model = (mg_str_t){"", 0};
    out->version = (mg_str_t){"", 0};
    out->data = (mg_str_t){"", 0};
    mg_json_init(&j, body, len);
    if (mg_json_object_begin(&j) != 0)
        return mg_json_error(&j, err);
    while ((rc = mg_json_object_next(&j, &key)) > 0) {
        if (mg_json_str_eq(key, "data")) {
            if (mg_json_peek(&j) != MG_JSON_ARRAY)
                return mg_err_set(err, MG_EPARSE, "missing 'data' array");
            if (mg_json_skip(&j, &out->data) != 0)
                return mg_json_error(&j, err);
            have_data = true;
        } else if (mg_json_str_eq(key, "model")) {
            if ((rc = predict_str(&j, "model", &out->model, err)) != 0)
                return rc;
        } else if (mg_json_str_eq(key, "version")) {
            if ((rc = predict_str(&j, "version", &out->version, err)) != 0)
                return rc;
        } else if (mg_json_skip(&j, NULL) != 0) {
            return mg_json_error(&j, err);
        }
    }
    if (rc < 0 || mg_json_end(&j) != 0)
        return mg_json_error(&j, err);
    if (!have_data)
        return mg_err_set(err, MG_EPARSE, "missing 'data' array");
    return 0;
}

/* ---- binding to the model ---- */

int mg_predict_bind(const mg_predict_request_t *p, const mg_tensor_info_t *inputs, size_t ninputs,
                    const char *model, mg_infer_request_t *req, mg_err_t *err)
{
    if (ninputs != 1)
        return mg_err_set(
            err, MG_EINVAL,
            "/predict needs a model with one input; '%s' has %zu, use /v2/models/%s/infer", model,
            ninputs, model);
    const mg_tensor_info_t *in = &inputs[0];
    mg_tensor_t *t = mg_arena_alloc(req->arena, sizeof(*t));
    if (t == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    memset(t, 0, sizeof(*t));
    t->name = (mg_str_t){in->name, strlen(in->name)};
    t->dtype = in->dtype;
    int rc = mg_tensor_json_decode(p->data.ptr, p->data.len, t, req->arena, "data", err);
    if (rc != 0)
        return rc;
    if (t->ndim + 1 == in->ndim && t->ndim < MG_TENSOR_MAX_DIMS) {
        /* One example without its batch dim: make it a batch of one. */
        memmove(&t->shape[1], &t->shape[0], (size_t)t->ndim * sizeof(t->shape[0]));
        t->shape[0] = 1;
        t->ndim++;
    }
    req->inputs = t;
    req->ninputs = 1;
    return 0;
}

/* ---- encoding ---- */

/* Element i of a float tensor as a double. */
static double float_at(const mg_tensor_t *t, size_t i)
{
    const unsigned char *p = t->data;
    if (t->dtype == MG_DT_FP32) {
        float v;
        memcpy(&v, p + i * 4, 4);
        return v;
    }
    if (t->dtype == MG_DT_FP64) {
        double v;
        memcpy(&v, p + i * 8, 8);
        return v;
    }
    uint16_t h;
    memcpy(&h, p + i * 2, 2);
    return mg_numfmt_f16_to_f32(h);
}

/* Rows of a tensor along its last axis; 0 when it has no elements. */
static size_t row_len(const mg_tensor_t *t)
{
    if (t->ndim <= 0)
        return t->count ? 1 : 0;
    int64_t last = t->shape[t->ndim - 1];
    return last > 0 ? (size_t)last : 0;
}

/* Arg-max of row r (NaN never wins unless the row is all NaN). */
static size_t row_argmax(const mg_tensor_t *t, size_t r, size_t n, double *best)
{
    size_t at = 0;
    double b = float_at(t, r * n);
    for (size_t i = 1; i < n; i++) {
        double v = float_at(t, r * n + i);
        if (v > b || (isnan(b) && !isnan(v))) {
            b = v;
            at = i;
        }
    }
    *best = b;
    return at;
}

static int put_confidence(mg_buf_t *out, const mg_tensor_t *t, double v)
{
    if (t->dtype == MG_DT_FP64)
        return mg_json_put_double(out, v);
    return mg_json_put_float(out, (float)v);
}

/* Does the first dim say "one example"? Then prediction and confidence are scalars. */
static bool single_row(const mg_tensor_t *t)
{
    return t->ndim <= 1 || t->shape[0] == 1;
}

/* prediction/confidence from a float first output: the arg-max of each row's last axis */
static int predict_from_scores(mg_buf_t *out, const mg_tensor_t *t)
{
    int rc;
    size_t n = row_len(t);
    if (n > t->count)
        n = t->count; /* a shape that promises more than the data holds: stay inside */
    if (n == 0)
        return mg_buf_puts(out, ",\"prediction\":null,\"confidence\":null");
    size_t rows = single_row(t) ? 1 : t->count / n;
    const char *open = rows > 1 ? "[" : "";
    const char *close = rows > 1 ? "]" : "";
    double best;
    MG_JSON_PUTS(out, ",\"prediction\":");
    MG_JSON_PUT(mg_buf_puts(out, open));
    for (size_t r = 0; r < rows; r++) {
        if (r)
            MG_JSON_PUTS(out, ",");
        MG_JSON_PUT(mg_json_put_u64(out, row_argmax(t, r, n, &best)));
    }
    MG_JSON_PUT(mg_buf_puts(out, close));
    MG_JSON_PUTS(out, ",\"confidence\":");
    MG_JSON_PUT(mg_buf_puts(out, open));
    for (size_t r = 0; r < rows; r++) {
        if (r)
            MG_JSON_PUTS(out, ",");
        row_argmax(t, r, n, &best);
        MG_JSON_PUT(put_confidence(out, t, best));
    }
    return mg_buf_puts(out, close);
fail:
    return rc;
}

/*
 * prediction/confidence from a label first output (integer, bool or string): its values,
 * with confidence from the row maxima of a float second output when there is one.
 */
static int predict_from_labels(mg_buf_t *out, const mg_tensor_t *labels, const mg_tensor_t *probs)
{
    int rc;
    size_t pn = 0, prows = 0;
    if (probs != NULL && mg_dtype_is_float(probs->dtype) && probs->data != NULL) {
        pn = row_len(probs);
        prows = pn ? probs->count / pn : 0; /* whole rows only */
    }
    size_t rows = labels->count;
    const char *open = rows > 1 ? "[" : "";
    const char *close = rows > 1 ? "]" : "";
    MG_JSON_PUTS(out, ",\"prediction\":");
    MG_JSON_PUT(mg_buf_puts(out, open));
    for (size_t r = 0; r < rows; r++) {
        if (r)
            MG_JSON_PUTS(out, ",");
        MG_JSON_PUT(mg_tensor_json_encode_element(out, labels, r));
    }
    MG_JSON_PUT(mg_buf_puts(out, close));
    MG_JSON_PUTS(out, ",\"confidence\":");
    MG_JSON_PUT(mg_buf_puts(out, open));
    for (size_t r = 0; r < rows; r++) {
        if (r)
            MG_JSON_PUTS(out, ",");
        if (r < prows) {
            double best;
            row_argmax(probs, r, pn, &best);
            MG_JSON_PUT(put_confidence(out, probs, best));
        } else {
            MG_JSON_PUTS(out, "null");
        }
    }
    return mg_buf_puts(out, close);
fail:
    return rc;
}

int mg_predict_encode_response(const mg_infer_response_t *resp, mg_buf_t *out)
{
    size_t start = out->len;
    int rc;
    MG_JSON_PUTS(out, "{\"model\":");
    MG_JSON_PUT(mg_json_put_str(out, resp->model_name));
    MG_JSON_PUTS(out, ",\"version\":");
    MG_JSON_PUT(mg_json_put_str(out, resp->model_version));
    const mg_tensor_t *first = resp->noutputs ? &resp->outputs[0] : NULL;
    if (first == NULL || first->count == 0 || first->data == NULL)
        MG_JSON_PUTS(out, ",\"prediction\":null,\"confidence\":null");
    else if (mg_dtype_is_float(first->dtype))
        MG_JSON_PUT(predict_from_scores(out, first));
    else
        MG_JSON_PUT(predict_from_labels(out, first, resp->noutputs > 1 ? &resp->outputs[1] : NULL));
    MG_JSON_PUTS(out, ",\"outputs\":{");
    for (size_t i = 0; i < resp->noutputs; i++) {
        const mg_tensor_t *t = &resp->outputs[i];
        if (i)
            MG_JSON_PUTS(out, ",");
        MG_JSON_PUT(mg_buf_json_string(out, t->name.ptr, t->name.len));
        MG_JSON_PUTS(out, ":");
        MG_JSON_PUT(mg_tensor_json_encode(out, t));
    }
    MG_JSON_PUTS(out, "}}");
    return 0;
fail:
    out->len = start;
    return rc;
}
