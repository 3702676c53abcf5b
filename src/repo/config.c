#include "repo/config.h"

#include "core/jsonx.h"
#include "core/version.h"
#include "repo/verify.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mg_model_config_default(mg_model_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->policy = MG_VERSION_POLICY_LATEST;
    cfg->latest_n = 1;
    cfg->instance_count = 1;
    mg_breaker_config_default(&cfg->breaker);
}

/* Reads a non-negative integer member; absent leaves *out. */
static int get_uint(json_t *obj, const char *key, int64_t max, int64_t *out, mg_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
        return mg_err_set(err, MG_ECONFIG, "config.json: '%s' must be an integer from 0 to %lld",
                          key, (long long)max);
    *out = json_integer_value(v);
    return 0;
}

/* "sha256": {"<version>": "<hex>" | {"<file>": "<hex>", ...}, ...} */
static int parse_pins(json_t *pins, mg_model_config_t *cfg, mg_err_t *err)
{
    if (!json_is_object(pins))
        return mg_err_set(err, MG_ECONFIG,
                          "config.json: 'sha256' must map versions to a digest or to "
                          "{\"file\": \"digest\"}");
    const char *key;
    json_t *val;
    json_object_foreach(pins, key, val)
    {
        int64_t version;
        if (mg_version_parse(key, strlen(key), &version) != 0)
            return mg_err_set(err, MG_ECONFIG,
                              "config.json: 'sha256': '%.*s' is not a version number",
                              mg_err_quote_len(strlen(key)), key);
        json_t *files = val;
        json_t *one = NULL;
        if (json_is_string(val)) {
            one = json_pack("{sO}", "model.onnx", val);
            files = one;
        }
        if (!json_is_object(files) || json_object_size(files) == 0) {
            json_decref(one);
            return mg_err_set(err, MG_ECONFIG,
                              "config.json: 'sha256.%s' must be a digest or {\"file\": "
                              "\"digest\"}",
                              key);
        }
        const char *file;
        json_t *hex;
        int rc = 0;
        json_object_foreach(files, file, hex)
        {
            mg_pin_t *p = &cfg->pins[cfg->npins];
            if (cfg->npins == MG_PINS_MAX) {
                rc = mg_err_set(err, MG_ECONFIG, "config.json: 'sha256' pins more than %d files",
                                MG_PINS_MAX);
                break;
            }
            if (strlen(file) == 0 || strlen(file) >= sizeof(p->file)) {
                rc = mg_err_set(err, MG_ECONFIG, "config.json: 'sha256.%s': bad file name", key);
                break;
            }
            if (!json_is_string(hex) ||
                mg_sha256_parse(json_string_value(hex), json_string_length(hex), p->sha256) != 0) {
                rc = mg_err_set(err, MG_ECONFIG,
                                "config.json: 'sha256.%s.%.*s' must be 64 hex digits", key,
                                mg_err_quote_len(strlen(file)), file);
                break;
            }
            p->version = version;
            snprintf(p->file, sizeof(p->file), "%s", file);
            cfg->npins++;
        }
        json_decref(one);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_policy(json_t *pol, mg_model_config_t *cfg, mg_err_t *err)
{
    if (!json_is_object(pol) || json_object_size(pol) != 1)
        return mg_err_set(err, MG_ECONFIG,
                          "'version_policy' must be one of {\"latest\":{...}}, {\"all\":{}}, "
                          "{\"specific\":{...}}");
    json_t *v;
    if ((v = json_object_get(pol, "all")) != NULL) {
        cfg->policy = MG_VERSION_POLICY_ALL;
        return 0;
    }
    if ((v = json_object_get(pol, "latest")) != NULL) {
        int64_t n = 1;
        if (!json_is_object(v) ||
            get_uint(v, "num_versions", MG_VERSION_POLICY_MAX, &n, err) != 0 || n < 1)
            return mg_err_set(
                err, MG_ECONFIG,
                "'version_policy.latest.num_versions' must be an integer from 1 to %d",
                MG_VERSION_POLICY_MAX);
        cfg->policy = MG_VERSION_POLICY_LATEST;
        cfg->latest_n = (int)n;
        return 0;
    }
    if ((v = json_object_get(pol, "specific")) != NULL) {
        json_t *list = json_is_object(v) ? json_object_get(v, "versions") : NULL;
        if (!json_is_array(list) || json_array_size(list) == 0 ||
            json_array_size(list) > MG_VERSION_POLICY_MAX)
            return mg_err_set(
                err, MG_ECONFIG,
                "'version_policy.specific.versions' must be a list of 1 to %d versions",
                MG_VERSION_POLICY_MAX);
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e)
        {
            if (mg_version_from_json(e, &cfg->specific[i]) != 0)
                return mg_err_set(
                    err, MG_ECONFIG,
                    "'version_policy.specific.versions[%zu]' is not a positive version number", i);
        }
        cfg->policy = MG_VERSION_POLICY_SPECIFIC;
        cfg->nspecific = (int)json_array_size(list);
        return 0;
    }
    return mg_err_set(err, MG_ECONFIG,
                      "'version_policy' must be one of \"latest\", \"all\", \"specific\"");
}

/*
 * "dynamic_batching": {"max_queue_delay_microseconds": N, "preferred_batch_size": [...]}, as in
 * Triton's model configuration; it needs "execution": "pool" and max_batch_size > 0 (read
 * before this), and each preferred size must be from 1 to max_batch_size.
 */
static int parse_dynamic_batching(json_t *v, mg_model_config_t *c, mg_err_t *err)
{
    static const char *const known[] = {"max_queue_delay_microseconds", "preferred_batch_size"};
    const char *unknown = json_is_object(v) ? mg_jsonx_unknown_field(v, known, 2) : NULL;
    if (!json_is_object(v) || unknown != NULL)
        return mg_err_set(
            err, MG_ECONFIG,
            "config.json: 'dynamic_batching' must be {\"max_queue_delay_microseconds\": "
            "N, \"preferred_batch_size\": [...]}%s%s",
            unknown ? "; unknown field " : "", unknown ? unknown : "");
    if (c->execution != MG_EXECUTION_POOL || c->max_batch_size <= 0)
        return mg_err_set(err, MG_ECONFIG,
                          "config.json: 'dynamic_batching' needs \"execution\": \"pool\" and a "
                          "max_batch_size above 0");
    if (get_uint(v, "max_queue_delay_microseconds", 10000000, &c->queue_delay_us, err) != 0)
        return MG_ECONFIG;
    json_t *pref = json_object_get(v, "preferred_batch_size");
    if (pref != NULL) {
        size_t i;
        json_t *e;
        if (!json_is_array(pref) || json_array_size(pref) > MG_PREFERRED_MAX)
            return mg_err_set(err, MG_ECONFIG,
                              "config.json: 'dynamic_batching.preferred_batch_size' must be a list "
                              "of at most %d sizes",
                              MG_PREFERRED_MAX);
        json_array_foreach(pref, i, e)
        {
            int64_t n = json_is_integer(e) ? json_integer_value(e) : 0;
            if (n < 1 || n > c->max_batch_size || (i > 0 && n <= c->preferred[i - 1]))
                return mg_err_set(err, MG_ECONFIG,
                                  "config.json: 'dynamic_batching.preferred_batch_size' must list "
                                  "ascending sizes from 1 to max_batch_size (%lld)",
                                  (long long)c->max_batch_size);
            c->preferred[c->npreferred++] = n;
        }
    }
    c->dynamic_batching = true;
    return 0;
}

/* "batching": {"opportunistic": bool, "max_batch": N}, both optional. */
static int parse_batching(json_t *v, mg_model_config_t *c, mg_err_t *err)
{
    static const char *const known[] = {"opportunistic", "max_batch"};
    const char *unknown = json_is_object(v) ? mg_jsonx_unknown_field(v, known, 2) : NULL;
    if (!json_is_object(v) || unknown != NULL)
        return mg_err_set(err, MG_ECONFIG,
                          "config.json: 'batching' must be {\"opportunistic\": true|false, "
                          "\"max_batch\": N}%s%s",
                          unknown ? "; unknown field " : "", unknown ? unknown : "");
    json_t *o = json_object_get(v, "opportunistic");
    if (o != NULL && !json_is_boolean(o))
        return mg_err_set(err, MG_ECONFIG,
                          "config.json: 'batching.opportunistic' must be true or false");
    if (o != NULL)
        c->batching = json_is_true(o) ? MG_BATCHING_ON : MG_BATCHING_OFF;
    int64_t n = 0;
    if (get_uint(v, "max_batch", 1024, &n, err) != 0)
        return MG_ECONFIG;
    c->batch_max = n;
    return 0;
}

/* Triton's model configuration fields that config.json takes as they are. */
static const char *const triton_fields[] = {
    "name",   "platform",       "backend",    "max_batch_size",         "version_policy",  "input",
    "output", "instance_group", "parameters", "default_model_filename", "dynamic_batching"};
#define NTRITON (sizeof(triton_fields) / sizeof(triton_fields[0]))

static bool is_triton_field(const char *key)
{
    for (size_t i = 0; i < NTRITON; i++) {
        if (strcmp(triton_fields[i], key) == 0)
            return true;
    }
    return false;
}

/*
 * Triton's "parameters" ({"key": {"string_value": "<JSON>"}}): each becomes the config.json
 * field `key` with that JSON value, so the field's own parsing and checks apply. Keys that are
 * Triton fields, or that the file also has at the top level, are refused.
 */
static int merge_parameters(json_t *root, mg_err_t *err)
{
    json_t *params = json_object_get(root, "parameters");
    if (params == NULL)
        return 0;
    if (!json_is_object(params))
        return mg_err_set(err, MG_ECONFIG,
                          "config.json: 'parameters' must be an object of "
                          "{\"string_value\": \"...\"}");
    json_incref(params);
    json_object_del(root, "parameters");
    int rc = 0;
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v)
    {
        json_t *text = json_is_object(v) ? json_object_get(v, "string_value") : NULL;
        if (text == NULL || !json_is_string(text) || json_object_size(v) != 1) {
            rc =
                mg_err_set(err, MG_ECONFIG,
                           "config.json: 'parameters.%s' must be {\"string_value\": \"...\"}", key);
            break;
        }
        if (is_triton_field(key) || json_object_get(root, key) != NULL) {
            rc = mg_err_set(err, MG_ECONFIG, "config.json: 'parameters.%s' %s", key,
                            is_triton_field(key) ? "is not a parameter (a field of its own)"
                                                 : "is given twice (also at the top level)");
            break;
        }
        json_error_t jerr;
        json_t *value = json_loads(json_string_value(text), JSON_DECODE_ANY, &jerr);
        if (value == NULL) {
            rc = mg_err_set(err, MG_ECONFIG,
                            "config.json: 'parameters.%s.string_value' is not JSON: %s", key,
                            jerr.text);
            break;
        }
        json_object_set_new(root, key, value);
    }
    json_decref(params);
    return rc;
}

/* "instance_group": [{"count": N, "kind": "KIND_CPU" | "KIND_AUTO", "name": ...}, ...]. */
static int parse_instance_group(json_t *groups, int64_t *count, mg_err_t *err)
{
    static const char bad[] = "config.json: 'instance_group' must be a list of {\"count\": N, "
                              "\"kind\": \"KIND_CPU\"}";
    if (!json_is_array(groups) || json_array_size(groups) == 0)
        return mg_err_set(err, MG_ECONFIG, "%s", bad);
    static const char *const known[] = {"name", "kind", "count"};
    int64_t total = 0;
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g)
    {
        const char *unknown = mg_jsonx_unknown_field(g, known, 3);
        if (!json_is_object(g) || unknown != NULL)
            return mg_err_set(err, MG_ECONFIG, "config.json: 'instance_group[%zu]': %s%s%s", i,
                              unknown ? "unknown field '" : "must be an object",
                              unknown ? unknown : "", unknown ? "'" : "");
        json_t *kind = json_object_get(g, "kind");
        if (kind != NULL &&
            (!json_is_string(kind) || (strcmp(json_string_value(kind), "KIND_CPU") != 0 &&
                                       strcmp(json_string_value(kind), "KIND_AUTO") != 0)))
            return mg_err_set(err, MG_ECONFIG,
                              "config.json: 'instance_group[%zu].kind' must be \"KIND_CPU\" or "
                              "\"KIND_AUTO\" (modelgate runs on the CPU)",
                              i);
        int64_t n = 1;
        if (get_uint(g, "count", 64, &n, err) != 0 || n < 1)
            return mg_err_set(err, MG_ECONFIG,
                              "config.json: 'instance_group[%zu].count' must be an integer from 1 "
                              "to 64",
                              i);
        total += n;
    }
    if (total > 64)
        return mg_err_set(err, MG_ECONFIG,
                          "config.json: 'instance_group' adds up to %lld instances, more than 64",
                          (long long)total);
    *count = total;
    return 0;
}

/* True when `s` can name a file of the model folder: no '/', not hidden, not empty. */
static bool plain_file_name(const char *s)
{
    return s[0] != '\0' && s[0] != '.' && strchr(s, '/') == NULL && strlen(s) < MG_CONFIG_IO_NAME;
}

/* "input" or "output": [{"name", "data_type", "dims", "label_filename" (outputs)}, ...]. */
static int parse_io(json_t *list, const char *what, mg_config_io_t *out, int *n, mg_err_t *err)
{
    if (!json_is_array(list) || json_array_size(list) > MG_CONFIG_IO_MAX)
        return mg_err_set(err, MG_ECONFIG, "config.json: '%s' must be a list of at most %d entries",
                          what, MG_CONFIG_IO_MAX);
    static const char *const known[] = {"name", "data_type", "dims", "label_filename"};
    bool is_output = strcmp(what, "output") == 0;
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        mg_config_io_t *io = &out[i];
        io->ndims = -1;
        const char *unknown = mg_jsonx_unknown_field(e, known, is_output ? 4 : 3);
        if (!json_is_object(e) || unknown != NULL)
            return mg_err_set(err, MG_ECONFIG, "config.json: '%s[%zu]': %s%s%s", what, i,
                              unknown ? "unknown field '" : "must be an object",
                              unknown ? unknown : "", unknown ? "'" : "");
        json_t *v = json_object_get(e, "name");
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) >= MG_CONFIG_IO_NAME)
            return mg_err_set(err, MG_ECONFIG,
                              "config.json: '%s[%zu].name' must be a tensor name of 1 to %d bytes",
                              what, i, MG_CONFIG_IO_NAME - 1);
        snprintf(io->name, sizeof(io->name), "%s", json_string_value(v));
        for (size_t k = 0; k < i; k++) {
            if (strcmp(out[k].name, io->name) == 0)
                return mg_err_set(err, MG_ECONFIG, "config.json: '%s' names '%s' twice", what,
                                  io->name);
        }
        if ((v = json_object_get(e, "data_type")) != NULL &&
            (!json_is_string(v) ||
             (io->dtype = mg_dtype_parse_config(json_string_value(v))) == MG_DT_INVALID))
            return mg_err_set(err, MG_ECONFIG,
                              "config.json: '%s[%zu].data_type' must be a Triton type such as "
                              "\"TYPE_FP32\"",
                              what, i);
        if ((v = json_object_get(e, "dims")) != NULL) {
            if (!json_is_array(v) || json_array_size(v) > MG_TENSOR_MAX_DIMS)
                return mg_err_set(err, MG_ECONFIG,
                                  "config.json: '%s[%zu].dims' must be a list of at most %d dims",
                                  what, i, MG_TENSOR_MAX_DIMS);
            size_t d;
            json_t *dim;
            io->ndims = 0;
            json_array_foreach(v, d, dim)
            {
                if (!json_is_integer(dim) || json_integer_value(dim) < -1)
                    return mg_err_set(err, MG_ECONFIG,
                                      "config.json: '%s[%zu].dims[%zu]' must be an integer, -1 "
                                      "for a dynamic dim",
                                      what, i, d);
                io->dims[io->ndims++] = json_integer_value(dim);
            }
        }
        if ((v = json_object_get(e, "label_filename")) != NULL &&
            (!json_is_string(v) ||
             (json_string_length(v) > 0 && !plain_file_name(json_string_value(v)))))
            return mg_err_set(err, MG_ECONFIG,
                              "config.json: '%s[%zu].label_filename' must name a file of the "
                              "model folder (no '/', not hidden, under %d bytes)",
                              what, i, MG_CONFIG_IO_NAME);
        if (v != NULL)
            snprintf(io->label_filename, sizeof(io->label_filename), "%s", json_string_value(v));
    }
    *n = (int)json_array_size(list);
    return 0;
}

/* One entry of "input" / "output" against the model's tensors of that kind. */
static int check_entry(const mg_config_io_t *io, const char *what, int64_t max_batch,
                       const mg_tensor_info_t *t, size_t n, mg_err_t *err)
{
    const mg_tensor_info_t *m = NULL;
    for (size_t i = 0; i < n && m == NULL; i++)
        m = strcmp(t[i].name, io->name) == 0 ? &t[i] : NULL;
    if (m == NULL)
        return mg_err_set(err, MG_ECONFIG, "config.json: %s '%s' is not one of the model's %ss",
                          what, io->name, what);
    if (io->dtype != MG_DT_INVALID && io->dtype != m->dtype)
        return mg_err_set(
            err, MG_ECONFIG, "config.json: %s '%s' has data_type %s, the model's is %s", what,
            io->name, mg_dtype_config_name(io->dtype), mg_dtype_config_name(m->dtype));
    if (io->ndims < 0)
        return 0;
    int skip = max_batch > 0 ? 1 : 0; /* Triton's dims leave the batch dim out */
    bool same = m->ndim - skip == io->ndims;
    for (int d = 0; same && d < io->ndims; d++)
        same = io->dims[d] == m->shape[d + skip] || (io->dims[d] == -1 && m->shape[d + skip] < 0);
    if (!same)
        return mg_err_set(err, MG_ECONFIG,
                          "config.json: %s '%s': dims do not match the model's shape%s", what,
                          io->name, skip ? " without its batch dim (max_batch_size > 0)" : "");
    return 0;
}

int mg_model_config_check_io(const mg_model_config_t *cfg, const mg_tensor_info_t *inputs,
                             size_t ninputs, const mg_tensor_info_t *outputs, size_t noutputs,
                             mg_err_t *err)
{
    for (int i = 0; i < cfg->ninputs; i++) {
        if (check_entry(&cfg->inputs[i], "input", cfg->max_batch_size, inputs, ninputs, err) != 0)
            return MG_ECONFIG;
    }
    for (int i = 0; i < cfg->noutputs; i++) {
        if (check_entry(&cfg->outputs[i], "output", cfg->max_batch_size, outputs, noutputs, err) !=
            0)
            return MG_ECONFIG;
    }
    return 0;
}

int mg_model_config_parse(const char *text, size_t len, const char *model, mg_model_config_t *cfg,
                          mg_err_t *err)
{
    static const char *const known[] = {
        "name",           "max_batch_size",   "version_policy", "default_version",
        "instance_count", "intra_op_threads", "warmup",         "platform",
        "backend",        "traffic",          "breaker",        "sha256",
        "max_inflight",   "execution",        "batching",       "dynamic_batching",
        "input",          "output",           "instance_group", "default_model_filename"};
    mg_model_config_default(cfg);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return mg_err_set(err, MG_ECONFIG, "config.json: line %d column %d: %s", jerr.line,
                          jerr.column, jerr.text);

    int rc = MG_ECONFIG;
    mg_model_config_t c;
    mg_model_config_default(&c);
    if (!json_is_object(root)) {
        mg_err_set(err, MG_ECONFIG, "config.json: must be a JSON object");
        goto out;
    }
    json_t *v;
    if (merge_parameters(root, err) != 0)
        goto out;
    const char *unknown = mg_jsonx_unknown_field(root, known, sizeof(known) / sizeof(known[0]));
    if (unknown != NULL) {
        mg_err_set(err, MG_ECONFIG, "config.json: unknown field '%s'", unknown);
        goto out;
    }
    if ((v = json_object_get(root, "name")) != NULL &&
        (!json_is_string(v) || strcmp(json_string_value(v), model) != 0)) {
        mg_err_set(err, MG_ECONFIG, "config.json: 'name' must be \"%s\", the model's folder name",
                   model);
        goto out;
    }
    if ((v = json_object_get(root, "platform")) != NULL &&
        (!json_is_string(v) || strcmp(json_string_value(v), "onnxruntime_onnx") != 0)) {
        mg_err_set(err, MG_ECONFIG, "config.json: 'platform' must be \"onnxruntime_onnx\"");
        goto out;
    }
    if ((v = json_object_get(root, "backend")) != NULL &&
        (!json_is_string(v) || strcmp(json_string_value(v), "onnxruntime") != 0)) {
        mg_err_set(err, MG_ECONFIG, "config.json: 'backend' must be \"onnxruntime\"");
        goto out;
    }
    int64_t n;
    if (get_uint(root, "max_batch_size", INT32_MAX, &c.max_batch_size, err) != 0)
        goto out;
    n = c.instance_count;
    if (get_uint(root, "instance_count", 64, &n, err) != 0)
        goto out;
    if (n < 1) {
        mg_err_set(err, MG_ECONFIG, "config.json: 'instance_count' must be at least 1");
        goto out;
    }
    c.instance_count = (int)n;
    if ((v = json_object_get(root, "instance_group")) != NULL) {
        if (json_object_get(root, "instance_count") != NULL) {
            mg_err_set(err, MG_ECONFIG,
                       "config.json: give 'instance_count' or 'instance_group', not both");
            goto out;
        }
        if (parse_instance_group(v, &n, err) != 0)
            goto out;
        c.instance_count = (int)n;
    }
    if ((v = json_object_get(root, "default_model_filename")) != NULL &&
        (!json_is_string(v) || strcmp(json_string_value(v), "model.onnx") != 0)) {
        mg_err_set(err, MG_ECONFIG,
                   "config.json: 'default_model_filename' must be \"model.onnx\" (the file "
                   "each version folder holds)");
        goto out;
    }
    if ((v = json_object_get(root, "input")) != NULL &&
        parse_io(v, "input", c.inputs, &c.ninputs, err) != 0)
        goto out;
    if ((v = json_object_get(root, "output")) != NULL &&
        parse_io(v, "output", c.outputs, &c.noutputs, err) != 0)
        goto out;
    n = 0;
    if (get_uint(root, "intra_op_threads", 256, &n, err) != 0)
        goto out;
    c.intra_op_threads = (int)n;
    n = 0;
    if (get_uint(root, "max_inflight", 1000000, &n, err) != 0)
        goto out;
    c.max_inflight = (int)n;
    if ((v = json_object_get(root, "execution")) != NULL) {
        const char *x = json_string_value(v);
        if (x == NULL || (strcmp(x, "inline") != 0 && strcmp(x, "pool") != 0)) {
            mg_err_set(err, MG_ECONFIG, "config.json: 'execution' must be \"inline\" or \"pool\"");
            goto out;
        }
        c.execution = strcmp(x, "pool") == 0 ? MG_EXECUTION_POOL : MG_EXECUTION_INLINE;
    }
    if ((v = json_object_get(root, "dynamic_batching")) != NULL &&
        parse_dynamic_batching(v, &c, err) != 0)
        goto out;
    if ((v = json_object_get(root, "version_policy")) != NULL && parse_policy(v, &c, err) != 0)
        goto out;
    if ((v = json_object_get(root, "default_version")) != NULL &&
        mg_version_from_json(v, &c.default_version) != 0) {
        mg_err_set(err, MG_ECONFIG,
                   "config.json: 'default_version' must be a positive version number");
        goto out;
    }
    if ((v = json_object_get(root, "warmup")) != NULL) {
        n = 0;
        if (!json_is_object(v) || get_uint(v, "runs", 1000, &n, err) != 0) {
            mg_err_set(err, MG_ECONFIG,
                       "config.json: 'warmup' must be {\"runs\": N} with N from 0 to 1000");
            goto out;
        }
        c.warmup_runs = (int)n;
    }
    if ((v = json_object_get(root, "sha256")) != NULL && parse_pins(v, &c, err) != 0)
        goto out;
    if ((v = json_object_get(root, "batching")) != NULL && parse_batching(v, &c, err) != 0)
        goto out;
    if ((v = json_object_get(root, "traffic")) != NULL) {
        char *policy_text = json_dumps(v, JSON_COMPACT);
        mg_err_t perr;
        int prc = policy_text ? mg_policy_parse(policy_text, strlen(policy_text), &c.traffic, &perr)
                              : MG_ENOMEM;
        free(policy_text);
        if (prc != 0) {
            mg_err_set(err, MG_ECONFIG, "config.json: 'traffic': %s",
                       prc == MG_ENOMEM ? "out of memory" : perr.msg);
            goto out;
        }
        c.has_traffic = true;
    }
    if ((v = json_object_get(root, "breaker")) != NULL) {
        char *breaker_text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        mg_err_t berr;
        int brc = breaker_text ? mg_breaker_config_parse(breaker_text, strlen(breaker_text),
                                                         &c.breaker, &berr)
                               : MG_ENOMEM;
        free(breaker_text);
        if (brc != 0) {
            mg_err_set(err, MG_ECONFIG, "config.json: 'breaker': %s",
                       brc == MG_ENOMEM ? "out of memory" : berr.msg);
            goto out;
        }
    }
    *cfg = c;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

int mg_model_config_select(const mg_model_config_t *cfg, const int64_t *found, int n, int64_t *out)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        int take = cfg->policy != MG_VERSION_POLICY_SPECIFIC;
        for (int k = 0; !take && k < cfg->nspecific; k++)
            take = cfg->specific[k] == found[i];
        if (take)
            out[m++] = found[i];
    }
    qsort(out, (size_t)m, sizeof(out[0]), cmp_desc);
    if (cfg->policy == MG_VERSION_POLICY_LATEST && m > cfg->latest_n)
        m = cfg->latest_n;
    return m;
}
