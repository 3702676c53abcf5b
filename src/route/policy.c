#include "route/policy.h"

#include "core/jsonx.h"
#include "core/version.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define WEIGHT_MAX 1000000
#define HASH_SPACE ((uint64_t)1 << 32)
#define SHOWN_MAX  64 /* bytes of an offending request value quoted in a message */

static const char *const reason_names[MG_POLICY_REASON_COUNT_] = {
    [MG_POLICY_REASON_URL] = "url",
    [MG_POLICY_REASON_HEADER] = "header",
    [MG_POLICY_REASON_AB_GROUP] = "ab-group",
    [MG_POLICY_REASON_STAGE] = "stage",
    [MG_POLICY_REASON_STICKY] = "sticky",
    [MG_POLICY_REASON_WEIGHT] = "weight",
    [MG_POLICY_REASON_DEFAULT] = "default",
    [MG_POLICY_REASON_FALLBACK] = "fallback",
    [MG_POLICY_REASON_KILL_SWITCH] = "kill-switch",
};

const char *mg_policy_reason_name(mg_policy_reason_t r)
{
    if ((unsigned)r >= MG_POLICY_REASON_COUNT_)
        return "unknown";
    return reason_names[r];
}

uint32_t mg_policy_sticky_hash(const char *key, size_t len)
{
    return (uint32_t)(XXH3_64bits(key, len) >> 32);
}

static int rule_cmp(const void *a, const void *b)
{
    return strcmp(((const mg_policy_rule_t *)a)->value, ((const mg_policy_rule_t *)b)->value);
}

/* Reads an "ab_groups" or "stages" object (header value -> version), sorted by value. */
static int parse_rules(const json_t *obj, const char *field, mg_policy_rule_t *rules, int *count,
                       mg_err_t *err)
{
    if (!json_is_object(obj))
        return mg_err_set(err, MG_EINVAL, "'%s' must be an object of header value: version", field);
    if (json_object_size(obj) > MG_POLICY_MAX_RULES)
        return mg_err_set(err, MG_EINVAL, "'%s' has %zu rules; at most %d", field,
                          json_object_size(obj), MG_POLICY_MAX_RULES);
    int n = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        size_t len = strlen(key); /* jansson rejects \u0000 in keys */
        if (len == 0 || len >= MG_POLICY_NAME_MAX)
            return mg_err_set(err, MG_EINVAL,
                              "'%s': a header value must be 1 to %d bytes, '%.*s' has %zu", field,
                              MG_POLICY_NAME_MAX - 1, SHOWN_MAX, key, len);
        int64_t version;
        if (mg_version_from_json(v, &version) != 0)
            return mg_err_set(err, MG_EINVAL, "'%s.%s' must be a positive version number", field,
                              key);
        memcpy(rules[n].value, key, len); /* the rest stays zero */
        rules[n].version = version;
        n++;
    }
    /* Sorted, so equal policies are memcmp-equal and pick can bisect. Duplicates cannot
     * occur: the document was loaded with JSON_REJECT_DUPLICATES. */
    qsort(rules, (size_t)n, sizeof(rules[0]), rule_cmp);
    *count = n;
    return 0;
}

/* RFC 9110 token characters, the only ones a header name may use. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int parse_sticky(const json_t *obj, mg_policy_t *p, mg_err_t *err)
{
    static const char shape[] = "'sticky' must be {\"header\": name} or {\"parameter\": name}";
    if (!json_is_object(obj) || json_object_size(obj) != 1)
        return mg_err_set(err, MG_EINVAL, "%s", shape);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (strcmp(key, "header") == 0)
            p->sticky_source = MG_POLICY_STICKY_HEADER;
        else if (strcmp(key, "parameter") == 0)
            p->sticky_source = MG_POLICY_STICKY_PARAMETER;
        else
            return mg_err_set(err, MG_EINVAL, "unknown field 'sticky.%s'", key);
        size_t len = json_is_string(v) ? json_string_length(v) : 0;
        const char *name = json_is_string(v) ? json_string_value(v) : "";
        if (len == 0 || len >= MG_POLICY_NAME_MAX)
            return mg_err_set(err, MG_EINVAL, "'sticky.%s' must be a name of 1 to %d bytes", key,
                              MG_POLICY_NAME_MAX - 1);
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)name[i];
            if (p->sticky_source == MG_POLICY_STICKY_HEADER) {
                if (!is_tchar(c))
                    return mg_err_set(err, MG_EINVAL,
                                      "'sticky.header' '%s' is not a valid header name", name);
                if (c >= 'A' && c <= 'Z')
                    c = (unsigned char)(c - 'A' + 'a');
            }
            p->sticky_name[i] = (char)c; /* jansson rejects \u0000 in strings */
        }
    }
    return 0;
}

/* Reads "weights" into versions/weights, ascending by version. */
static int parse_weights(const json_t *obj, mg_policy_t *p, mg_err_t *err)
{
    if (!json_is_object(obj) || json_object_size(obj) == 0 ||
        json_object_size(obj) > MG_POLICY_MAX_VERSIONS)
        return mg_err_set(err, MG_EINVAL,
                          "'weights' must be an object of 1 to %d \"version\": weight members",
                          MG_POLICY_MAX_VERSIONS);
    uint64_t total = 0;
    int n = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        int64_t version;
        if (mg_version_parse(key, strlen(key), &version) != 0)
            return mg_err_set(err, MG_EINVAL,
                              "unknown version '%s' in 'weights' (versions are positive integers)",
                              key);
        /* A real (10.0, 1e20) is rejected like a negative number; jansson refuses NaN outright. */
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > WEIGHT_MAX)
            return mg_err_set(err, MG_EINVAL, "'weights.%s' must be an integer from 0 to %d", key,
                              WEIGHT_MAX);
        uint32_t weight = (uint32_t)json_integer_value(v);
        /* Insertion sort: at most 16 entries. */
        int i = n;
        while (i > 0 && p->versions[i - 1] > version)
            i--;
        if (i > 0 && p->versions[i - 1] == version)
            return mg_err_set(err, MG_EINVAL, "version %lld appears twice in 'weights'",
                              (long long)version);
        memmove(&p->versions[i + 1], &p->versions[i], (size_t)(n - i) * sizeof(p->versions[0]));
        memmove(&p->weights[i + 1], &p->weights[i], (size_t)(n - i) * sizeof(p->weights[0]));
        p->versions[i] = version;
        p->weights[i] = weight;
        n++;
        total += weight;
    }
    if (total == 0)
        return mg_err_set(err, MG_EINVAL, "weights are all zero");
    p->nversions = n;
    return 0;
}

/*
 * Lays the versions out over the 2^32 hash space: non-stable versions ascending, the stable
 * one last, each owning [bound[i-1], bound[i]). Bounds are floor(cumulative * 2^32 / total),
 * exact in 64 bits (cumulative <= 16 * 10^6 < 2^24), so the last one is exactly 2^32 and a
 * version with weight 0 owns an empty range.
 */
static void derive_layout(mg_policy_t *p)
{
    uint64_t total = 0;
    for (int i = 0; i < p->nversions; i++)
        total += p->weights[i];
    uint64_t cum = 0;
    int k = 0;
    uint32_t stable_weight = 0;
    for (int i = 0; i < p->nversions; i++) {
        if (p->versions[i] == p->stable) {
            stable_weight = p->weights[i];
            continue;
        }
        cum += p->weights[i];
        p->layout[k] = p->versions[i];
        p->bound[k] = (cum << 32) / total;
        k++;
    }
    cum += stable_weight;
    p->layout[k] = p->stable;
    p->bound[k] = (cum << 32) / total; /* == 2^32 */
}

int mg_policy_parse(const char *json, size_t len, mg_policy_t *out, mg_err_t *err)
{
    static const char *const known[] = {"weights", "stable", "sticky", "ab_groups", "stages"};
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return mg_err_set(err, MG_EINVAL, "line %d column %d: %s", jerr.line, jerr.column,
                          jerr.text);

    int rc = MG_EINVAL;
    /* Zero-filled, padding included, so that equal policies compare equal with memcmp. */
    mg_policy_t p;
    memset(&p, 0, sizeof(p));
    if (!json_is_object(root)) {
        mg_err_set(err, MG_EINVAL, "a traffic policy must be a JSON object");
        goto out;
    }
    json_t *v;
    const char *unknown = mg_jsonx_unknown_field(root, known, sizeof(known) / sizeof(known[0]));
    if (unknown != NULL) {
        mg_err_set(err, MG_EINVAL, "unknown field '%s'", unknown);
        goto out;
    }

    if ((v = json_object_get(root, "weights")) == NULL) {
        mg_err_set(err, MG_EINVAL, "'weights' is required");
        goto out;
    }
    if (parse_weights(v, &p, err) != 0)
        goto out;

    if ((v = json_object_get(root, "stable")) == NULL) {
        if (p.nversions != 1) {
            mg_err_set(err, MG_EINVAL,
                       "'stable' is required when 'weights' names more than one version");
            goto out;
        }
        p.stable = p.versions[0];
    } else if (mg_version_from_json(v, &p.stable) != 0) {
        mg_err_set(err, MG_EINVAL, "'stable' must be a positive version number");
        goto out;
    } else {
        int i = 0;
        while (i < p.nversions && p.versions[i] != p.stable)
            i++;
        if (i == p.nversions) {
            mg_err_set(err, MG_EINVAL, "'stable' version %lld is not in 'weights'",
                       (long long)p.stable);
            goto out;
        }
    }

    p.sticky_source = MG_POLICY_STICKY_HEADER;
    memcpy(p.sticky_name, "x-user-id", sizeof("x-user-id"));
    if ((v = json_object_get(root, "sticky")) != NULL) {
        memset(p.sticky_name, 0, sizeof(p.sticky_name));
        if (parse_sticky(v, &p, err) != 0)
            goto out;
    }
    if ((v = json_object_get(root, "ab_groups")) != NULL &&
        parse_rules(v, "ab_groups", p.ab_groups, &p.nab_groups, err) != 0)
        goto out;
    if ((v = json_object_get(root, "stages")) != NULL &&
        parse_rules(v, "stages", p.stages, &p.nstages, err) != 0)
        goto out;

    derive_layout(&p);
    memcpy(out, &p, sizeof(p)); /* not `*out = p`: a struct assignment need not copy padding */
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static bool is_known(const int64_t *known, int n, int64_t v)
{
    for (int i = 0; i < n; i++)
        if (known[i] == v)
            return true;
    return false;
}

int mg_policy_check_versions(const mg_policy_t *p, const int64_t *known, int n, mg_err_t *err)
{
    for (int i = 0; i < p->nversions; i++)
        if (!is_known(known, n, p->versions[i]))
            return mg_err_set(err, MG_EINVAL, "unknown version %lld in 'weights'",
                              (long long)p->versions[i]);
    /* The stable version is one of the weights: checked above. */
    for (int i = 0; i < p->nab_groups; i++)
        if (!is_known(known, n, p->ab_groups[i].version))
            return mg_err_set(err, MG_EINVAL, "unknown version %lld in 'ab_groups.%s'",
                              (long long)p->ab_groups[i].version, p->ab_groups[i].value);
    for (int i = 0; i < p->nstages; i++)
        if (!is_known(known, n, p->stages[i].version))
            return mg_err_set(err, MG_EINVAL, "unknown version %lld in 'stages.%s'",
                              (long long)p->stages[i].version, p->stages[i].value);
    return 0;
}

static int rules_to_json(mg_buf_t *out, const char *field, const mg_policy_rule_t *rules, int n)
{
    if (mg_buf_printf(out, ",\"%s\":{", field) != 0)
        return MG_ENOMEM;
    for (int i = 0; i < n; i++) {
        if ((i > 0 && mg_buf_puts(out, ",") != 0) ||
            mg_buf_json_string(out, rules[i].value, strlen(rules[i].value)) != 0 ||
            mg_buf_printf(out, ":\"%lld\"", (long long)rules[i].version) != 0)
            return MG_ENOMEM;
    }
    return mg_buf_puts(out, "}");
}

int mg_policy_to_json(const mg_policy_t *p, mg_buf_t *out)
{
    size_t start = out->len;
    if (mg_buf_puts(out, "{\"weights\":{") != 0)
        goto fail;
    for (int i = 0; i < p->nversions; i++)
        if (mg_buf_printf(out, "%s\"%lld\":%u", i > 0 ? "," : "", (long long)p->versions[i],
                          p->weights[i]) != 0)
            goto fail;
    if (mg_buf_printf(out, "},\"stable\":\"%lld\",\"sticky\":{\"%s\":", (long long)p->stable,
                      p->sticky_source == MG_POLICY_STICKY_PARAMETER ? "parameter" : "header") !=
            0 ||
        mg_buf_json_string(out, p->sticky_name, strlen(p->sticky_name)) != 0 ||
        mg_buf_puts(out, "}") != 0)
        goto fail;
    if (rules_to_json(out, "ab_groups", p->ab_groups, p->nab_groups) != 0 ||
        rules_to_json(out, "stages", p->stages, p->nstages) != 0 || mg_buf_puts(out, "}") != 0)
        goto fail;
    return 0;
fail:
    out->len = start;
    return MG_ENOMEM;
}

int64_t mg_policy_lookup(const mg_policy_t *p, uint32_t h)
{
    /*
     * The first range whose bound is above h, by a branch-free lower bound: a random key
     * makes every comparison a coin flip, so a conditional move beats both a branchy
     * bisection and a linear scan (bench/policy_bench.c: at 16 versions about 3 ns against
     * 10 ns for the scan). bound[n-1] = 2^32 > h keeps the answer in range; an empty range
     * (weight 0) is never the first bound above h. A zero-filled policy gives layout[0] = 0.
     */
    const uint64_t *b = p->bound;
    int n = p->nversions, base = 0;
    while (n > 1) {
        int half = n / 2;
        base = h >= b[base + half - 1] ? base + half : base;
        n -= half;
    }
    return p->layout[base];
}

/*
 * Orders a zero-padded rule value against a request value like strcmp would; equality also
 * needs the rule to be exactly as long (its byte at key.len is the padding NUL, the byte
 * before it is not, so a request value with an embedded NUL never matches).
 */
static int rule_key_cmp(const mg_policy_rule_t *r, mg_str_t key)
{
    int c = memcmp(r->value, key.ptr, key.len);
    if (c != 0)
        return c;
    if (r->value[key.len] != '\0' || r->value[key.len - 1] == '\0')
        return 1;
    return 0;
}

static int find_rule(const mg_policy_rule_t *rules, int n, mg_str_t key)
{
    if (key.len == 0 || key.len >= MG_POLICY_NAME_MAX)
        return -1;
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = rule_key_cmp(&rules[mid], key);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Copies at most SHOWN_MAX bytes of a request value for a message, printable ASCII only. */
static const char *shown(mg_str_t s, char buf[SHOWN_MAX + 4])
{
    size_t n = s.len < SHOWN_MAX ? s.len : SHOWN_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        buf[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    memcpy(buf + n, s.len > n ? "..." : "", s.len > n ? 4 : 1);
    return buf;
}

int mg_policy_pick(const mg_policy_t *p, const mg_policy_input_t *in, mg_policy_decision_t *out,
                   mg_err_t *err)
{
    char tmp[SHOWN_MAX + 4];
    int64_t version;
    int rule;
    if (in->url_version.len != 0) {
        if (mg_version_parse(in->url_version.ptr, in->url_version.len, &version) != 0)
            return mg_err_set(err, MG_EINVAL, "URL version '%s' is not a version number",
                              shown(in->url_version, tmp));
        *out = (mg_policy_decision_t){version, MG_POLICY_REASON_URL, -1};
        return 0;
    }
    if (in->header_version.len != 0) {
        if (mg_version_parse(in->header_version.ptr, in->header_version.len, &version) != 0)
            return mg_err_set(err, MG_EINVAL, "X-Model-Version '%s' is not a version number",
                              shown(in->header_version, tmp));
        *out = (mg_policy_decision_t){version, MG_POLICY_REASON_HEADER, -1};
        return 0;
    }
    if (p == NULL) {
        *out = (mg_policy_decision_t){0, MG_POLICY_REASON_DEFAULT, -1};
        return 0;
    }
    if ((rule = find_rule(p->ab_groups, p->nab_groups, in->ab_group)) >= 0) {
        *out = (mg_policy_decision_t){p->ab_groups[rule].version, MG_POLICY_REASON_AB_GROUP, rule};
        return 0;
    }
    if ((rule = find_rule(p->stages, p->nstages, in->stage)) >= 0) {
        *out = (mg_policy_decision_t){p->stages[rule].version, MG_POLICY_REASON_STAGE, rule};
        return 0;
    }
    if (in->sticky_key.len != 0) {
        version =
            mg_policy_lookup(p, mg_policy_sticky_hash(in->sticky_key.ptr, in->sticky_key.len));
        *out = (mg_policy_decision_t){version, MG_POLICY_REASON_STICKY, -1};
        return 0;
    }
    /* The high half of the draw, the same 2^32 space and lookup as sticky keys. */
    version = mg_policy_lookup(p, (uint32_t)(in->random >> 32));
    *out = (mg_policy_decision_t){version, MG_POLICY_REASON_WEIGHT, -1};
    return 0;
}
