/*
 * External-data references of an ONNX model: a minimal protobuf wire-format walker over the
 * messages that can hold a TensorProto, and the path rules for the files they name.
 */
#include "repo/extdata.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * Field numbers from onnx/onnx.proto (ONNX 1.13, the IR this code reads; they are stable
 * across IR versions):
 *   ModelProto           graph = 7, training_info = 20, functions = 25
 *   TrainingInfoProto    initialization = 1, algorithm = 2
 *   FunctionProto        node = 7
 *   GraphProto           node = 1, initializer = 5, sparse_initializer = 15
 *   NodeProto            attribute = 5
 *   AttributeProto       t = 5, g = 6, tensors = 10, graphs = 11, sparse_tensor = 22,
 *                        sparse_tensors = 23
 *   SparseTensorProto    values = 1, indices = 2
 *   TensorProto          external_data = 13 (StringStringEntryProto), data_location = 14
 *                        (enum: DEFAULT = 0, EXTERNAL = 1)
 *   StringStringEntryProto key = 1, value = 2
 * Wire types from the protobuf encoding spec: 0 varint, 1 64-bit, 2 length-delimited,
 * 5 32-bit (3 and 4, groups, appear in no ONNX message).
 */
typedef enum { M_MODEL, M_TRAINING, M_FUNCTION, M_GRAPH, M_NODE, M_ATTR, M_SPARSE, M_TENSOR } msg_t;

#define DEPTH_MAX 64

typedef struct walk {
    const uint8_t *base;
    mg_buf_t *names;
    size_t n;
    mg_err_t *err;
} walk_t;

/* The message type a length-delimited field of `m` holds, or -1 for one we skip. */
static int child_type(msg_t m, uint64_t field)
{
    switch (m) {
    case M_MODEL:
        return field == 7 ? M_GRAPH : field == 20 ? M_TRAINING : field == 25 ? M_FUNCTION : -1;
    case M_TRAINING: return field == 1 || field == 2 ? M_GRAPH : -1;
    case M_FUNCTION: return field == 7 ? M_NODE : -1;
    case M_GRAPH: return field == 1 ? M_NODE : field == 5 ? M_TENSOR : field == 15 ? M_SPARSE : -1;
    case M_NODE: return field == 5 ? M_ATTR : -1;
    case M_ATTR:
        if (field == 5 || field == 10)
            return M_TENSOR;
        if (field == 6 || field == 11)
            return M_GRAPH;
        return field == 22 || field == 23 ? M_SPARSE : -1;
    case M_SPARSE: return field == 1 || field == 2 ? M_TENSOR : -1;
    case M_TENSOR: return -1; /* external_data entries are read by read_tensor */
    }
    return -1;
}

static int malformed(walk_t *w, const uint8_t *at, const char *why)
{
    return mg_err_set(w->err, MG_EMODEL,
                      "model.onnx is not a valid ONNX model (malformed protobuf at byte %zu: %s)",
                      (size_t)(at - w->base), why);
}

static int varint(walk_t *w, const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return malformed(w, *p, "the file ends inside a number: truncated?");
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return malformed(w, *p, "a number is longer than 10 bytes");
}

/* One field's header and, for length-delimited fields, its payload bounds. */
typedef struct field {
    uint64_t number;
    int wire;
    uint64_t value;                   /* wire type 0 */
    const uint8_t *payload, *pay_end; /* wire type 2 */
} field_t;

static int next_field(walk_t *w, const uint8_t **p, const uint8_t *end, field_t *f)
{
    uint64_t tag;
    int rc = varint(w, p, end, &tag);
    if (rc)
        return rc;
    f->number = tag >> 3;
    f->wire = (int)(tag & 7);
    if (f->number == 0)
        return malformed(w, *p, "field number 0");
    switch (f->wire) {
    case 0: return varint(w, p, end, &f->value);
    case 1:
    case 5: {
        size_t k = f->wire == 1 ? 8 : 4;
        if ((size_t)(end - *p) < k)
            return malformed(w, *p, "the file ends inside a value: truncated?");
        *p += k;
        return 0;
    }
    case 2: {
        uint64_t n;
        if ((rc = varint(w, p, end, &n)))
            return rc;
        if (n > (uint64_t)(end - *p))
            return malformed(w, *p, "a field runs past the end of the file: truncated?");
        f->payload = *p;
        f->pay_end = *p + n;
        *p += n;
        return 0;
    }
    default: return malformed(w, *p, "an unknown wire type");
    }
}

/* Appends `name` to the list unless it is there already. */
static int add_name(walk_t *w, const uint8_t *s, size_t len)
{
    if (len == 0 || memchr(s, '\0', len) != NULL || len > PATH_MAX)
        return mg_err_set(w->err, MG_EMODEL, "model.onnx: an external-data location is %s",
                          len == 0 ? "empty" : "not a valid path");
    const char *p = w->names->data;
    for (size_t i = 0; i < w->n; i++, p += strlen(p) + 1) {
        if (strlen(p) == len && memcmp(p, s, len) == 0)
            return 0;
    }
    if (w->n == MG_EXTDATA_FILES_MAX)
        return mg_err_set(w->err, MG_ERANGE,
                          "model.onnx refers to more than %d external-data files",
                          MG_EXTDATA_FILES_MAX);
    char nul = '\0';
    if (mg_buf_append(w->names, s, len) != 0 || mg_buf_append(w->names, &nul, 1) != 0)
        return mg_err_set(w->err, MG_ENOMEM, "out of memory");
    w->n++;
    return 0;
}

/* A TensorProto: its data_location and the "location" entry of external_data. */
static int read_tensor(walk_t *w, const uint8_t *p, const uint8_t *end)
{
    uint64_t where = 0;
    const uint8_t *loc = NULL;
    size_t loc_len = 0;
    int rc;
    while (p < end) {
        field_t f;
        if ((rc = next_field(w, &p, end, &f)))
            return rc;
        if (f.number == 14 && f.wire == 0)
            where = f.value;
        if (f.number != 13 || f.wire != 2)
            continue;
        const uint8_t *key = NULL, *val = NULL;
        size_t key_len = 0, val_len = 0;
        for (const uint8_t *q = f.payload; q < f.pay_end;) {
            field_t e;
            if ((rc = next_field(w, &q, f.pay_end, &e)))
                return rc;
            if (e.wire == 2 && e.number == 1)
                key = e.payload, key_len = (size_t)(e.pay_end - e.payload);
            else if (e.wire == 2 && e.number == 2)
                val = e.payload, val_len = (size_t)(e.pay_end - e.payload);
        }
        if (key != NULL && key_len == 8 && memcmp(key, "location", 8) == 0)
            loc = val ? val : (const uint8_t *)"", loc_len = val_len;
    }
    if (where != 1)
        return 0;
    if (loc == NULL)
        return mg_err_set(w->err, MG_EMODEL,
                          "model.onnx: a tensor stored externally names no 'location'");
    return add_name(w, loc, loc_len);
}

static int walk_msg(walk_t *w, msg_t m, const uint8_t *p, const uint8_t *end, int depth)
{
    if (depth > DEPTH_MAX)
        return malformed(w, p, "messages nested deeper than 64");
    if (m == M_TENSOR)
        return read_tensor(w, p, end);
    int rc;
    while (p < end) {
        field_t f;
        if ((rc = next_field(w, &p, end, &f)))
            return rc;
        int child = f.wire == 2 ? child_type(m, f.number) : -1;
        if (child >= 0 && (rc = walk_msg(w, (msg_t)child, f.payload, f.pay_end, depth + 1)))
            return rc;
    }
    return 0;
}

int mg_extdata_list(const void *bytes, size_t len, mg_buf_t *names, size_t *n, mg_err_t *err)
{
    walk_t w = {bytes, names, 0, err};
    int rc = walk_msg(&w, M_MODEL, bytes, (const uint8_t *)bytes + len, 0);
    if (rc == 0)
        *n = w.n;
    return rc;
}

int mg_extdata_resolve(const char *dir, const char *location, char *out, size_t cap, mg_err_t *err)
{
    int q = mg_err_quote_len(strlen(location));
    if (location[0] == '/')
        return mg_err_set(err, MG_EMODEL, "external data '%.*s': absolute paths are not allowed", q,
                          location);
    /* No ".." component anywhere, whatever the folders are. */
    for (const char *s = location; *s != '\0';) {
        size_t k = strcspn(s, "/");
        if (k == 2 && s[0] == '.' && s[1] == '.')
            return mg_err_set(err, MG_EMODEL,
                              "external data '%.*s': '..' is not allowed (the file must be inside "
                              "the version folder)",
                              q, location);
        s += k;
        while (*s == '/')
            s++;
    }
    char real_dir[PATH_MAX], joined[PATH_MAX * 2], real[PATH_MAX];
    if (realpath(dir, real_dir) == NULL)
        return mg_err_set(err, MG_EMODEL, "external data '%.*s': cannot resolve the version folder",
                          q, location);
    snprintf(joined, sizeof(joined), "%s/%s", real_dir, location);
    if (realpath(joined, real) == NULL)
        return mg_err_set(err, MG_EMODEL,
                          "external data '%.*s': no such file in the version folder", q, location);
    size_t dl = strlen(real_dir);
    if (strncmp(real, real_dir, dl) != 0 || real[dl] != '/')
        return mg_err_set(err, MG_EMODEL,
                          "external data '%.*s': resolves outside the version folder (a symlink "
                          "leaving it)",
                          q, location);
    struct stat st;
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode))
        return mg_err_set(err, MG_EMODEL, "external data '%.*s': not a regular file", q, location);
    if (strlen(real) >= cap)
        return mg_err_set(err, MG_EMODEL, "external data '%.*s': path too long", q, location);
    memcpy(out, real, strlen(real) + 1);
    return 0;
}
