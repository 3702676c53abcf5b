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

int mg_model_config_parse(const char *text, size_t len, const char *model, mg_model_config_t *cfg,
                          mg_err_t *err)
{
    static const char *const known[] = {
        "name",           "max_batch_size",   "version_policy", "default_version",
        "instance_count", "intra_op_threads", "warmup",         "platform",
        "backend",        "traffic",          "breaker",        "sha256",
        "max_inflight",   "execution",        "batching",       "dynamic_batching"};
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
