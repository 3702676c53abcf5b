#include "cli/options.h"

#include "core/file.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROWS 128

static void *field(const mg_opt_t *o, void *opts)
{
    return (char *)opts + o->offset;
}

int mg_opt_parse_listen(const char *s, mg_opt_listen_t *out)
{
    const char *colon;
    const char *host = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - s);
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535 || hlen >= sizeof(out->host))
        return -1;
    if (hlen == 0) {
        snprintf(out->host, sizeof(out->host), "0.0.0.0");
    } else {
        memcpy(out->host, host, hlen);
        out->host[hlen] = '\0';
    }
    out->port = (int)port;
    out->set = 1;
    return 0;
}

/* Stores the text value `s` of option `o`. Returns 0 or -1 (invalid). */
static int set_text(const mg_opt_t *o, const char *s, void *opts)
{
    void *p = field(o, opts);
    switch (o->kind) {
    case MG_OPT_STRING: return snprintf(p, o->size, "%s", s) < (int)o->size ? 0 : -1;
    case MG_OPT_INT: {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (*s == '\0' || *end != '\0' || v < o->min || v > o->max)
            return -1;
        *(long long *)p = v;
        return 0;
    }
    case MG_OPT_DOUBLE: {
        char *end;
        double v = strtod(s, &end);
        if (*s == '\0' || *end != '\0' || !(v >= (double)o->min && v <= (double)o->max))
            return -1;
        *(double *)p = v;
        return 0;
    }
    case MG_OPT_CHOICE:
        for (int i = 0; o->choices[i] != NULL; i++) {
            if (strcmp(o->choices[i], s) == 0) {
                *(int *)p = i;
                return 0;
            }
        }
        return -1;
    case MG_OPT_LISTEN: return mg_opt_parse_listen(s, p);
    case MG_OPT_LIST: {
        mg_opt_list_t *l = p;
        if (l->n == MG_OPT_LIST_MAX ||
            snprintf(l->items[l->n], sizeof(l->items[0]), "%s", s) >= (int)sizeof(l->items[0]))
            return -1;
        l->n++;
        return 0;
    }
    case MG_OPT_BOOL: *(int *)p = 1; return 0;
    }
    return -1;
}

/* Stores the JSON value `v` of option `o`. Returns 0 or -1 (wrong kind or invalid). */
static int set_json(const mg_opt_t *o, json_t *v, void *opts)
{
    switch (o->kind) {
    case MG_OPT_INT: {
        if (!json_is_integer(v) || json_integer_value(v) < o->min || json_integer_value(v) > o->max)
            return -1;
        *(long long *)field(o, opts) = json_integer_value(v);
        return 0;
    }
    case MG_OPT_DOUBLE: {
        if (!json_is_number(v) ||
            !(json_number_value(v) >= (double)o->min && json_number_value(v) <= (double)o->max))
            return -1;
        *(double *)field(o, opts) = json_number_value(v);
        return 0;
    }
    case MG_OPT_BOOL:
        if (!json_is_boolean(v))
            return -1;
        *(int *)field(o, opts) = json_is_true(v);
        return 0;
    case MG_OPT_LIST: {
        size_t i;
        json_t *e;
        if (!json_is_array(v))
            return -1;
        json_array_foreach(v, i, e)
        {
            if (!json_is_string(e) || set_text(o, json_string_value(e), opts) != 0)
                return -1;
        }
        return 0;
    }
    default: return json_is_string(v) ? set_text(o, json_string_value(v), opts) : -1;
    }
}

int mg_opt_load_text(const mg_opt_t *table, const char *name, const char *text, size_t len,
                     void *opts, mg_err_t *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return mg_err_set(err, MG_ECONFIG, "%s: line %d: %s", name, jerr.line, jerr.text);
    int rc = 0;
    const char *key;
    json_t *v;
    if (!json_is_object(root)) {
        rc = mg_err_set(err, MG_ECONFIG, "%s: must be a JSON object", name);
        goto out;
    }
    json_object_foreach(root, key, v)
    {
        const mg_opt_t *o = table;
        while ((o->flag != NULL || o->key != NULL) && (o->key == NULL || strcmp(o->key, key) != 0))
            o++;
        if (o->key == NULL) {
            rc = mg_err_set(err, MG_ECONFIG, "%s: unknown field '%.*s'", name,
                            mg_err_quote_len(strlen(key)), key);
            goto out;
        }
        if (set_json(o, v, opts) != 0) {
            rc = mg_err_set(err, MG_ECONFIG, "%s: invalid value for '%s'%s%s", name, key,
                            o->want ? ": want " : "", o->want ? o->want : "");
            goto out;
        }
    }
out:
    json_decref(root);
    return rc;
}

int mg_opt_load_file(const mg_opt_t *table, const char *path, void *opts)
{
    char *text = NULL;
    size_t len = 0;
    mg_err_t err;
    int rc = mg_file_read(path, MG_OPT_FILE_MAX, &text, &len, &err);
    if (rc == 0)
        rc = mg_opt_load_text(table, path, text, len, opts, &err);
    free(text);
    if (rc != 0) {
        fprintf(stderr, "modelgate: %s\n", err.msg);
        return -1;
    }
    return 0;
}

void mg_opt_usage(const mg_opt_t *table, FILE *f, const char *usage_head)
{
    fputs(usage_head, f);
    for (const mg_opt_t *o = table; o->flag != NULL || o->key != NULL; o++) {
        if (o->flag == NULL)
            continue;
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", o->flag, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(f, "  %-26s %s\n", left, o->help);
    }
    /* The --config keys, so the file's vocabulary is on the same page. */
    int first = 1;
    for (const mg_opt_t *o = table; o->flag != NULL || o->key != NULL; o++) {
        if (o->key == NULL)
            continue;
        fprintf(f, "%s%s", first ? "\n--config keys: " : ", ", o->key);
        first = 0;
    }
    if (!first)
        fputs("\n", f);
}

int mg_opt_parse_args(const mg_opt_t *table, int argc, char **argv, void *opts,
                      const char *usage_head)
{
    struct option longopts[MAX_ROWS + 2];
    const mg_opt_t *rows[MAX_ROWS];
    int n = 0;
    for (const mg_opt_t *o = table; (o->flag != NULL || o->key != NULL) && n < MAX_ROWS; o++) {
        if (o->flag == NULL)
            continue;
        longopts[n] = (struct option){
            o->flag, o->kind == MG_OPT_BOOL ? no_argument : required_argument, NULL, 256 + n};
        rows[n++] = o;
    }
    longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n] = (struct option){NULL, 0, NULL, 0};
    optind = 1;
    opterr = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h') {
            mg_opt_usage(table, stdout, usage_head);
            return 1;
        }
        if (c < 256) {
            mg_opt_usage(table, stderr, usage_head);
            return 2;
        }
        const mg_opt_t *o = rows[c - 256];
        if (strcmp(o->flag, "config") == 0)
            continue; /* read before the flags */
        if (set_text(o, o->kind == MG_OPT_BOOL ? "" : optarg, opts) != 0) {
            fprintf(stderr, "modelgate: --%s wants %s, got '%s'\n", o->flag,
                    o->want ? o->want : "a valid value", optarg);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "modelgate: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return 0;
}
