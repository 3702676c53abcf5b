/*
 * The route table's parsing and validation (jansson), its PCRE2 regexes compiled with JIT,
 * the canonical JSON it is written back as, and freeing it. The index over the parsed rules
 * is built by route/table_index.c.
 */
#include "route/table_internal.h"

#include "core/jsonx.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>

#define DEFAULT_PRIORITY    1000
#define MAX_PRIORITY        1000000
#define NAME_MAX_LEN        128
#define MODEL_MAX_LEN       255
#define HEADER_NAME_MAX_LEN 128
#define HEADERS_MAX         16     /* header matches per rule */
#define REGEX_MATCH_LIMIT   100000 /* backtracking steps; a regex that needs more does not match */

/* ---- small helpers ---------------------------------------------------------------------- */

static char *dup_lower(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)lower((unsigned char)s[i]);
    d[n] = '\0';
    return d;
}

static char *dup_mem(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static bool has_ctl(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return true;
    return false;
}

/* ---- accessors and free ----------------------------------------------------------------- */

size_t mg_route_table_count(const mg_route_table_t *t)
{
    return t->nrules;
}

const mg_route_rule_t *mg_route_table_rule(const mg_route_table_t *t, size_t i)
{
    return i < t->nrules ? &t->rules[i].pub : NULL;
}

static void rule_free(rule_t *r)
{
    free(r->name);
    free(r->model);
    free(r->host);
    free(r->path);
    free(r->lit);
    pcre2_code_free(r->path_re);
    for (uint32_t i = 0; i < r->nhdrs; i++) {
        free(r->hdrs[i].name);
        free(r->hdrs[i].value);
        pcre2_code_free(r->hdrs[i].re);
    }
    free(r->hdrs);
    free(r->traffic);
}

void mg_route_table_free(mg_route_table_t *t)
{
    if (t == NULL)
        return;
    for (uint32_t i = 0; i < t->nrules; i++)
        rule_free(&t->rules[i]);
    free(t->rules);
    free(t->nodes);
    free(t->first_byte);
    free(t->labels);
    free(t->ranks);
    free(t->hosts);
    free(t->wild);
    pcre2_match_context_free(t->mctx);
    free(t);
}

/* ---- parsing ---------------------------------------------------------------------------- */

typedef struct build {
    mg_route_table_t *t;
    mg_err_t *err;
    char who[NAME_MAX_LEN + 16]; /* "route 'name'" or "route #3" */
    sset_t names;
    sset_t matches;
    char **keys; /* canonical match key per file index */
    size_t *key_lens;
    mg_buf_t scratch;
} build_t;

static int fail(build_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fills the error with the rule's label and the message; returns MG_EINVAL. */
static int fail(build_t *b, const char *fmt, ...)
{
    char msg[sizeof(b->err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return mg_err_set(b->err, MG_EINVAL, "%s: %s", b->who, msg);
}

static int nomem(build_t *b)
{
    return mg_err_set(b->err, MG_ENOMEM, "route table: out of memory");
}

static bool label_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* A host name (dot-separated labels of letters, digits, '-', '_') or a bracketed IPv6 literal. */
static bool host_name_ok(const char *h, size_t n)
{
    if (n == 0 || n > HOST_MAX_LEN)
        return false;
    if (h[0] == '[') {
        if (n < 3 || h[n - 1] != ']')
            return false;
        for (size_t i = 1; i + 1 < n; i++) {
            char c = h[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                  c == ':' || c == '.'))
                return false;
        }
        return true;
    }
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i] == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (label_char((unsigned char)h[i])) {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

static bool header_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > HEADER_NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(label_char(c) || (c != '\0' && strchr("!#$%&'*+.^`|~", c) != NULL)))
            return false;
    }
    return true;
}

/*
 * True when the pattern might have a top-level alternative ("^/a|/b"), or uses a construct
 * this scanner does not follow (\Q..\E, \c, comments, verbs, callouts, POSIX classes, '#' of
 * the extended syntax); then no literal prefix is claimed.
 */
static bool maybe_top_level_alt(const char *p, size_t n)
{
    int depth = 0;
    size_t i = 0;
    while (i < n) {
        char c = p[i];
        if (c == '#')
            return true;
        if (c == '\\') {
            if (i + 1 < n && (p[i + 1] == 'Q' || p[i + 1] == 'c'))
                return true;
            i += 2;
            continue;
        }
        if (c == '[') {
            i++;
            if (i < n && p[i] == '^')
                i++;
            if (i < n && p[i] == ']')
                i++;
            while (i < n && p[i] != ']') {
                if (p[i] == '\\') {
                    if (i + 1 < n && (p[i + 1] == 'Q' || p[i + 1] == 'c'))
                        return true;
                    i += 2;
                    continue;
                }
                if (p[i] == '[' && i + 1 < n &&
                    (p[i + 1] == ':' || p[i + 1] == '.' || p[i + 1] == '='))
                    return true;
                i++;
            }
            i++;
            continue;
        }
        if (c == '(') {
            if (i + 1 < n && p[i + 1] == '*')
                return true;
            if (i + 2 < n && p[i + 1] == '?' && (p[i + 2] == '#' || p[i + 2] == 'C'))
                return true;
            depth++;
        } else if (c == ')') {
            if (--depth < 0)
                return true;
        } else if (c == '|' && depth == 0) {
            return true;
        }
        i++;
    }
    return false;
}

/*
 * The literal text every match of `p` must start with at offset 0: the characters after a
 * leading '^' up to the first metacharacter, minus the last one when a quantifier follows it.
 * Written unescaped into `lit` (room for n bytes). Returns its length, 0 when none is proven.
 */
static size_t literal_prefix(const char *p, size_t n, char *lit)
{
    if (n == 0 || p[0] != '^' || maybe_top_level_alt(p, n))
        return 0;
    size_t m = 0, before_last = 0;
    size_t i = 1;
    while (i < n) {
        char c = p[i];
        if (c == '?' || c == '*' || c == '+' || c == '{') {
            m = before_last; /* the last character is quantified */
            break;
        }
        if (strchr("^$.|()[]", c) != NULL)
            break;
        if (c == '\\') {
            unsigned char e = i + 1 < n ? (unsigned char)p[i + 1] : 0;
            if (e == 0 || (e >= '0' && e <= '9') || (e >= 'a' && e <= 'z') ||
                (e >= 'A' && e <= 'Z'))
                break; /* \d, \x41, \Q ...: not a plain literal */
            before_last = m;
            lit[m++] = (char)e;
            i += 2;
            continue;
        }
        before_last = m;
        lit[m++] = c;
        i++;
    }
    return m;
}

static int compile_regex(build_t *b, const char *what, const char *pat, size_t n, pcre2_code **out,
                         bool *jit)
{
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, n, 0, &ec, &off, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[128];
        if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", ec);
        int shown = n > 80 ? 80 : (int)n;
        return fail(b, "%s '%.*s%s' does not compile: %s at offset %zu", what, shown, pat,
                    n > 80 ? "..." : "", (const char *)msg, (size_t)off);
    }
    *jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
    *out = re;
    if (b->t->mctx == NULL) {
        b->t->mctx = pcre2_match_context_create(NULL);
        if (b->t->mctx == NULL)
            return nomem(b);
        pcre2_set_match_limit(b->t->mctx, REGEX_MATCH_LIMIT);
    }
    return 0;
}

/* Reads a string member as a byte range; absent gives NULL. */
static const char *get_str(json_t *v, size_t *len)
{
    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return json_string_value(v);
}

static int parse_host(build_t *b, json_t *v, rule_t *r)
{
    size_t n;
    const char *h = get_str(v, &n);
    if (h == NULL)
        return fail(b, "'host' must be a string");
    if (n == 1 && h[0] == '*')
        return 0; /* any host, as when absent */
    int kind = HOST_EXACT;
    if (n >= 2 && h[0] == '*' && h[1] == '.')
        kind = HOST_WILD;
    if (!host_name_ok(kind == HOST_WILD ? h + 2 : h, kind == HOST_WILD ? n - 2 : n) ||
        n > HOST_MAX_LEN || (kind == HOST_WILD && h[2] == '['))
        return fail(b, "host '%.*s': bad pattern (a host name, or \"*.\" followed by one)",
                    n > 80 ? 80 : (int)n, h);
    if ((r->host = dup_lower(h, n)) == NULL)
        return nomem(b);
    r->host_len = n;
    r->host_kind = kind;
    return 0;
}

static int parse_path(build_t *b, json_t *v, rule_t *r)
{
    static const char *const known[] = {"exact", "prefix", "regex"};
    if (!json_is_object(v))
        return fail(b, "'path' needs exactly one of exact, prefix, regex");
    const char *bad = mg_jsonx_unknown_field(v, known, 3);
    if (bad != NULL)
        return fail(b, "path: unknown field '%s'", bad);
    if (json_object_size(v) != 1)
        return fail(b, "'path' needs exactly one of exact, prefix, regex");
    int kind = json_object_get(v, "exact")    ? PATH_EXACT
               : json_object_get(v, "prefix") ? PATH_PREFIX
                                              : PATH_REGEX;
    const char *kname = known[kind];
    size_t n;
    const char *s = get_str(json_object_get(v, kname), &n);
    if (s == NULL)
        return fail(b, "path %s must be a string", kname);
    if (n > STR_MAX_LEN)
        return fail(b, "path %s is longer than %d bytes", kname, STR_MAX_LEN);
    if (kind != PATH_REGEX && (n == 0 || s[0] != '/'))
        return fail(b, "path %s '%.*s' must start with '/'", kname, n > 80 ? 80 : (int)n, s);
    if ((r->path = dup_mem(s, n)) == NULL)
        return nomem(b);
    r->path_len = n;
    r->path_kind = kind;
    if (kind != PATH_REGEX)
        return 0;
    int rc = compile_regex(b, "path regex", s, n, &r->path_re, &r->path_jit);
    if (rc != 0)
        return rc;
    if ((r->lit = malloc(n + 1)) == NULL)
        return nomem(b);
    r->lit_len = literal_prefix(s, n, r->lit);
    /* Belt and braces: PCRE2 must agree that every branch is anchored at the start. */
    uint32_t opts = 0;
    if (r->lit_len > 0 && (pcre2_pattern_info(r->path_re, PCRE2_INFO_ALLOPTIONS, &opts) != 0 ||
                           (opts & PCRE2_ANCHORED) == 0))
        r->lit_len = 0;
    return 0;
}

static int hdr_cmp(const void *a, const void *b)
{
    const hdr_t *x = a, *y = b;
    return strcmp(x->name, y->name);
}

static int parse_headers(build_t *b, json_t *v, rule_t *r)
{
    static const char *const known[] = {"name", "exact", "regex", "present"};
    if (!json_is_array(v))
        return fail(b, "'headers' must be a list");
    size_t cnt = json_array_size(v);
    if (cnt > HEADERS_MAX)
        return fail(b, "more than %d header matches", HEADERS_MAX);
    if (cnt == 0)
        return 0;
    if ((r->hdrs = calloc(cnt, sizeof(*r->hdrs))) == NULL)
        return nomem(b);
    for (size_t i = 0; i < cnt; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_object(e))
            return fail(b, "headers[%zu] must be an object", i);
        size_t nl;
        const char *name = get_str(json_object_get(e, "name"), &nl);
        if (name == NULL)
            return fail(b, "headers[%zu] needs a 'name'", i);
        if (!header_name_ok(name, nl))
            return fail(b, "header name '%.*s' is not a valid header name", nl > 80 ? 80 : (int)nl,
                        name);
        const char *bad = mg_jsonx_unknown_field(e, known, 4);
        if (bad != NULL)
            return fail(b, "header '%s': unknown field '%s'", name, bad);
        json_t *ex = json_object_get(e, "exact"), *rx = json_object_get(e, "regex");
        json_t *pr = json_object_get(e, "present");
        if ((ex != NULL) + (rx != NULL) + (pr != NULL) != 1)
            return fail(b, "header '%s' needs exactly one of exact, regex, present", name);
        hdr_t *h = &r->hdrs[i];
        r->nhdrs = (uint32_t)i + 1;
        if ((h->name = dup_lower(name, nl)) == NULL)
            return nomem(b);
        h->name_len = nl;
        for (size_t k = 0; k < i; k++)
            if (strcmp(r->hdrs[k].name, h->name) == 0)
                return fail(b, "header '%s' is matched twice", name);
        if (pr != NULL) {
            if (!json_is_boolean(pr))
                return fail(b, "header '%s': 'present' must be true or false", name);
            h->kind = json_is_true(pr) ? HDR_PRESENT : HDR_ABSENT;
            continue;
        }
        size_t vl;
        const char *val = get_str(ex != NULL ? ex : rx, &vl);
        if (val == NULL)
            return fail(b, "header '%s': '%s' must be a string", name,
                        ex != NULL ? "exact" : "regex");
        if (vl > STR_MAX_LEN)
            return fail(b, "header '%s': value is longer than %d bytes", name, STR_MAX_LEN);
        if ((h->value = dup_mem(val, vl)) == NULL)
            return nomem(b);
        h->value_len = vl;
        h->kind = ex != NULL ? HDR_EXACT : HDR_REGEX;
        if (h->kind == HDR_REGEX) {
            char what[HEADER_NAME_MAX_LEN + 24];
            snprintf(what, sizeof(what), "header '%s' regex", name);
            int rc = compile_regex(b, what, val, vl, &h->re, &h->jit);
            if (rc != 0)
                return rc;
        }
    }
    qsort(r->hdrs, r->nhdrs, sizeof(*r->hdrs), hdr_cmp);
    return 0;
}

static int parse_match(build_t *b, json_t *v, rule_t *r)
{
    static const char *const known[] = {"host", "path", "headers"};
    if (!json_is_object(v))
        return fail(b, "'match' must be an object");
    const char *bad = mg_jsonx_unknown_field(v, known, 3);
    if (bad != NULL)
        return fail(b, "match: unknown field '%s'", bad);
    json_t *e;
    int rc;
    if ((e = json_object_get(v, "host")) != NULL && (rc = parse_host(b, e, r)) != 0)
        return rc;
    if ((e = json_object_get(v, "path")) == NULL)
        return fail(b, "missing 'path' in 'match'");
    if ((rc = parse_path(b, e, r)) != 0)
        return rc;
    if ((e = json_object_get(v, "headers")) != NULL && (rc = parse_headers(b, e, r)) != 0)
        return rc;
    return 0;
}

static int put_field(mg_buf_t *k, int tag, const char *s, size_t n)
{
    uint32_t len = (uint32_t)n;
    char head[5] = {(char)tag};
    memcpy(head + 1, &len, 4);
    if (mg_buf_append(k, head, 5) != 0 || mg_buf_append(k, s, n) != 0)
        return MG_ENOMEM;
    return 0;
}

/* The rule's match in a canonical byte form: equal keys, equal matches. */
static int match_key(const rule_t *r, mg_buf_t *k)
{
    mg_buf_reset(k);
    int rc = put_field(k, 'h' + r->host_kind, r->host ? r->host : "", r->host_len);
    rc = rc ? rc : put_field(k, 'p' + r->path_kind, r->path, r->path_len);
    for (uint32_t i = 0; rc == 0 && i < r->nhdrs; i++) {
        rc = put_field(k, 'n', r->hdrs[i].name, r->hdrs[i].name_len);
        const hdr_t *h = &r->hdrs[i];
        rc = rc ? rc : put_field(k, 'a' + h->kind, h->value ? h->value : "", h->value_len);
    }
    return rc;
}

static int parse_rule(build_t *b, json_t *item, uint32_t idx, rule_t *r)
{
    static const char *const known[] = {"name", "priority", "match", "model", "api", "traffic"};
    snprintf(b->who, sizeof(b->who), "route #%u", idx + 1);
    r->file_index = idx;
    r->pub.priority = DEFAULT_PRIORITY;
    if (!json_is_object(item))
        return fail(b, "must be an object");

    /* Name first, so every later message can say which rule. */
    json_t *v = json_object_get(item, "name");
    size_t n;
    const char *name = get_str(v, &n);
    if (v == NULL)
        return fail(b, "missing 'name'");
    if (name == NULL || n == 0 || n > NAME_MAX_LEN || has_ctl(name, n))
        return fail(b, "'name' must be a string of 1 to %d characters without control characters",
                    NAME_MAX_LEN);
    if ((r->name = dup_mem(name, n)) == NULL)
        return nomem(b);
    r->pub.name = r->name;
    snprintf(b->who, sizeof(b->who), "route '%s'", r->name);
    if (sset_put(&b->names, r->name, n, idx) != NONE)
        return fail(b, "duplicate name");

    const char *bad = mg_jsonx_unknown_field(item, known, 6);
    if (bad != NULL)
        return fail(b, "unknown field '%s'", bad);

    if ((v = json_object_get(item, "priority")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > MAX_PRIORITY)
            return fail(b, "'priority' must be an integer from 0 to %d", MAX_PRIORITY);
        r->pub.priority = (int)json_integer_value(v);
    }

    int rc;
    if ((v = json_object_get(item, "match")) == NULL)
        return fail(b, "missing 'match'");
    if ((rc = parse_match(b, v, r)) != 0)
        return rc;
    r->uncond = r->path_kind != PATH_REGEX && r->nhdrs == 0;

    if ((v = json_object_get(item, "model")) == NULL)
        return fail(b, "missing 'model'");
    const char *model = get_str(v, &n);
    if (model == NULL || n == 0 || n > MODEL_MAX_LEN || has_ctl(model, n))
        return fail(b, "'model' must be a string of 1 to %d characters without control characters",
                    MODEL_MAX_LEN);
    if ((r->model = dup_mem(model, n)) == NULL)
        return nomem(b);
    r->pub.model = r->model;

    r->pub.api = MG_ROUTE_API_INFER;
    if ((v = json_object_get(item, "api")) != NULL) {
        const char *api = json_string_value(v);
        if (api != NULL && strcmp(api, "infer") == 0)
            r->pub.api = MG_ROUTE_API_INFER;
        else if (api != NULL && strcmp(api, "predict") == 0)
            r->pub.api = MG_ROUTE_API_PREDICT;
        else
            return fail(b, "'api' must be \"infer\" or \"predict\"");
    }

    if ((v = json_object_get(item, "traffic")) != NULL) {
        if (!json_is_object(v))
            return fail(b, "'traffic' must be an object");
        char *text = json_dumps(v, JSON_COMPACT);
        if (text == NULL || (r->traffic = malloc(sizeof(*r->traffic))) == NULL) {
            free(text);
            return nomem(b);
        }
        mg_err_t perr;
        mg_err_clear(&perr);
        rc = mg_policy_parse(text, strlen(text), r->traffic, &perr);
        free(text);
        if (rc == MG_ENOMEM)
            return nomem(b);
        if (rc != 0)
            return fail(b, "traffic: %s", perr.msg);
        r->pub.traffic = r->traffic;
    }

    /* Same host, path and headers as an earlier rule: the later one could never match. */
    if (match_key(r, &b->scratch) != 0 ||
        (b->keys[idx] = dup_mem(b->scratch.data, b->scratch.len)) == NULL)
        return nomem(b);
    b->key_lens[idx] = b->scratch.len;
    uint32_t prev = sset_put(&b->matches, b->keys[idx], b->key_lens[idx], idx);
    if (prev != NONE)
        return fail(b, "same match as route '%s'", b->t->rules[prev].name);
    return 0;
}

static int rule_order(const void *a, const void *b)
{
    const rule_t *x = a, *y = b;
    if (x->pub.priority != y->pub.priority)
        return x->pub.priority < y->pub.priority ? -1 : 1;
    return (x->file_index > y->file_index) - (x->file_index < y->file_index);
}

int mg_route_table_parse(const char *json, size_t len, mg_route_table_t **out, mg_err_t *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return mg_err_set(err, MG_EINVAL, "routes: line %d column %d: %s", jerr.line, jerr.column,
                          jerr.text);

    build_t b = {.err = err};
    int rc = MG_EINVAL;
    size_t n = 0;
    mg_route_table_t *t = calloc(1, sizeof(*t));
    b.t = t;
    if (t == NULL) {
        rc = nomem(&b);
        goto out;
    }
    json_t *routes = json_is_object(root) ? json_object_get(root, "routes") : NULL;
    if (routes == NULL || !json_is_array(routes)) {
        mg_err_set(err, MG_EINVAL, "routes: the table must be an object {\"routes\": [...]}");
        goto out;
    }
    if (json_object_size(root) != 1) {
        static const char *const known[] = {"routes"};
        mg_err_set(err, MG_EINVAL, "routes: unknown field '%s'",
                   mg_jsonx_unknown_field(root, known, 1));
        goto out;
    }
    n = json_array_size(routes);
    if (n > MG_ROUTE_MAX_RULES) {
        mg_err_set(err, MG_EINVAL, "routes: %zu rules, more than the limit of %d", n,
                   MG_ROUTE_MAX_RULES);
        goto out;
    }
    if ((n > 0 && (t->rules = calloc(n, sizeof(*t->rules))) == NULL) ||
        sset_init(&b.names, n) != 0 || sset_init(&b.matches, n) != 0 ||
        (n > 0 && (b.keys = calloc(n, sizeof(*b.keys))) == NULL) ||
        (n > 0 && (b.key_lens = calloc(n, sizeof(*b.key_lens))) == NULL)) {
        rc = nomem(&b);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        t->nrules = (uint32_t)i + 1; /* so a failure frees what this rule got */
        if ((rc = parse_rule(&b, json_array_get(routes, i), (uint32_t)i, &t->rules[i])) != 0)
            goto out;
    }
    if (t->nrules > 1)
        qsort(t->rules, t->nrules, sizeof(*t->rules), rule_order);
    if ((rc = mg_route_table_build_index(t)) != 0) {
        nomem(&b);
        goto out;
    }
    *out = t;
    t = NULL;
    rc = 0;
out:
    if (b.keys != NULL)
        for (size_t i = 0; i < n; i++)
            free(b.keys[i]);
    free(b.keys);
    free(b.key_lens);
    free(b.names.slots);
    free(b.matches.slots);
    mg_buf_free(&b.scratch);
    mg_route_table_free(t);
    json_decref(root);
    return rc;
}

/* ---- JSON output ------------------------------------------------------------------------ */

static int rule_to_json(const rule_t *r, mg_buf_t *o)
{
    static const char *const path_kind[] = {"exact", "prefix", "regex"};
    int rc = mg_buf_puts(o, "{\"name\":");
    rc = rc ? rc : mg_buf_json_string(o, r->name, strlen(r->name));
    rc = rc ? rc : mg_buf_printf(o, ",\"priority\":%d,\"match\":{", r->pub.priority);
    if (rc == 0 && r->host != NULL) {
        rc = mg_buf_puts(o, "\"host\":");
        rc = rc ? rc : mg_buf_json_string(o, r->host, r->host_len);
        rc = rc ? rc : mg_buf_puts(o, ",");
    }
    rc = rc ? rc : mg_buf_printf(o, "\"path\":{\"%s\":", path_kind[r->path_kind]);
    rc = rc ? rc : mg_buf_json_string(o, r->path, r->path_len);
    rc = rc ? rc : mg_buf_puts(o, "}");
    if (rc == 0 && r->nhdrs > 0) {
        rc = mg_buf_puts(o, ",\"headers\":[");
        for (uint32_t i = 0; rc == 0 && i < r->nhdrs; i++) {
            const hdr_t *h = &r->hdrs[i];
            rc = mg_buf_puts(o, i ? ",{\"name\":" : "{\"name\":");
            rc = rc ? rc : mg_buf_json_string(o, h->name, h->name_len);
            if (h->kind == HDR_PRESENT || h->kind == HDR_ABSENT) {
                rc = rc ? rc
                        : mg_buf_puts(o, h->kind == HDR_PRESENT ? ",\"present\":true}"
                                                                : ",\"present\":false}");
                continue;
            }
            rc = rc ? rc : mg_buf_puts(o, h->kind == HDR_EXACT ? ",\"exact\":" : ",\"regex\":");
            rc = rc ? rc : mg_buf_json_string(o, h->value, h->value_len);
            rc = rc ? rc : mg_buf_puts(o, "}");
        }
        rc = rc ? rc : mg_buf_puts(o, "]");
    }
    rc = rc ? rc : mg_buf_puts(o, "},\"model\":");
    rc = rc ? rc : mg_buf_json_string(o, r->model, strlen(r->model));
    rc = rc ? rc
            : mg_buf_puts(o, r->pub.api == MG_ROUTE_API_PREDICT ? ",\"api\":\"predict\""
                                                                : ",\"api\":\"infer\"");
    if (rc == 0 && r->traffic != NULL) {
        rc = mg_buf_puts(o, ",\"traffic\":");
        rc = rc ? rc : mg_policy_to_json(r->traffic, o);
    }
    rc = rc ? rc : mg_buf_puts(o, "}");
    return rc ? MG_ENOMEM : 0;
}

int mg_route_table_to_json(const mg_route_table_t *t, mg_buf_t *out)
{
    int rc = mg_buf_puts(out, "{\"routes\":[");
    for (uint32_t i = 0; rc == 0 && i < t->nrules; i++) {
        rc = mg_buf_puts(out, i ? ",\n" : "\n");
        rc = rc ? rc : rule_to_json(&t->rules[i], out);
    }
    rc = rc ? rc : mg_buf_puts(out, t->nrules ? "\n]}" : "]}");
    return rc ? MG_ENOMEM : 0;
}
