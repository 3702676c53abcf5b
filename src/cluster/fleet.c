#include "cluster/fleet.h"

#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

int mg_fleet_key(mg_buf_t *out, const char *prefix, const char *suffix, const char *name)
{
    size_t n = strlen(prefix);
    while (n > 0 && prefix[n - 1] == '/')
        n--;
    int rc = mg_buf_append(out, prefix, n);
    rc = rc ? rc : mg_buf_puts(out, suffix);
    rc = rc ? rc : (name != NULL ? mg_buf_puts(out, name) : 0);
    rc = rc ? rc : mg_buf_append(out, "", 1);
    if (rc != 0)
        return MG_ENOMEM;
    out->len--;
    return 0;
}

int mg_fleet_check_prefix(const char *prefix, mg_err_t *err)
{
    size_t n = strlen(prefix);
    if (n == 0 || prefix[0] != '/')
        return mg_err_set(err, MG_EINVAL, "etcd prefix '%.*s' must start with '/'",
                          mg_err_quote_len(n), prefix);
    if (n > 512)
        return mg_err_set(err, MG_EINVAL, "etcd prefix is %zu bytes, over 512", n);
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)prefix[i] < 0x20 || prefix[i] == 0x7f)
            return mg_err_set(err, MG_EINVAL, "etcd prefix has a control character at byte %zu", i);
    }
    return 0;
}

/* ---- the view ------------------------------------------------------------------------------ */

static void entry_free(mg_fleet_entry_t *e)
{
    free(e->key);
    free(e->value);
}

void mg_fleet_view_free(mg_fleet_view_t *v)
{
    for (size_t i = 0; i < v->n; i++)
        entry_free(&v->entries[i]);
    free(v->entries);
    memset(v, 0, sizeof(*v));
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const mg_fleet_entry_t *)a)->key, ((const mg_fleet_entry_t *)b)->key);
}

int mg_fleet_view_reset(mg_fleet_view_t *v, mg_etcd_kvs_t *kvs)
{
    mg_fleet_view_free(v);
    if (kvs->n > 0 && (v->entries = calloc(kvs->n, sizeof(*v->entries))) == NULL) {
        mg_etcd_kvs_free(kvs);
        return MG_ENOMEM;
    }
    v->cap = kvs->n;
    for (size_t i = 0; i < kvs->n; i++) {
        mg_etcd_kv_t *kv = &kvs->kvs[i];
        v->entries[v->n++] =
            (mg_fleet_entry_t){kv->key, kv->value, kv->value_len, kv->mod_revision};
        kv->key = kv->value = NULL;
    }
    /* etcd returns keys sorted by bytes; strcmp agrees for keys without NUL bytes. */
    if (v->n > 1)
        qsort(v->entries, v->n, sizeof(*v->entries), cmp_entry);
    v->revision = kvs->revision;
    mg_etcd_kvs_free(kvs);
    return 0;
}

/* The index of `key`, or where it would go (with *found 0). */
static size_t find(const mg_fleet_view_t *v, const char *key, int *found)
{
    size_t lo = 0, hi = v->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(v->entries[mid].key, key);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

int mg_fleet_view_apply(mg_fleet_view_t *v, const mg_etcd_event_t *ev)
{
    int found;
    size_t i = find(v, ev->kv.key, &found);
    if (ev->type == MG_ETCD_DELETE) {
        if (found) {
            entry_free(&v->entries[i]);
            memmove(&v->entries[i], &v->entries[i + 1], (v->n - i - 1) * sizeof(*v->entries));
            v->n--;
        }
    } else {
        char *value = malloc(ev->kv.value_len + 1);
        char *key = found ? NULL : strdup(ev->kv.key);
        if (value == NULL || (!found && key == NULL)) {
            free(value);
            free(key);
            return MG_ENOMEM;
        }
        memcpy(value, ev->kv.value, ev->kv.value_len);
        value[ev->kv.value_len] = '\0';
        if (!found) {
            if (v->n == v->cap) {
                size_t cap = v->cap ? 2 * v->cap : 8;
                mg_fleet_entry_t *e = realloc(v->entries, cap * sizeof(*e));
                if (e == NULL) {
                    free(value);
                    free(key);
                    return MG_ENOMEM;
                }
                v->entries = e;
                v->cap = cap;
            }
            memmove(&v->entries[i + 1], &v->entries[i], (v->n - i) * sizeof(*v->entries));
            v->entries[i] = (mg_fleet_entry_t){.key = key};
            v->n++;
        } else {
            free(v->entries[i].value);
        }
        v->entries[i].value = value;
        v->entries[i].value_len = ev->kv.value_len;
        v->entries[i].mod_revision = ev->kv.mod_revision;
    }
    if (ev->kv.mod_revision > v->revision)
        v->revision = ev->kv.mod_revision;
    return 0;
}

uint64_t mg_fleet_view_digest(const mg_fleet_view_t *v)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, "mg-fleet-1", 10);
    for (size_t i = 0; i < v->n; i++) {
        const mg_fleet_entry_t *e = &v->entries[i];
        unsigned char rev[8];
        for (int k = 0; k < 8; k++)
            rev[k] = (unsigned char)((uint64_t)e->mod_revision >> (8 * k));
        XXH3_64bits_update(&st, e->key, strlen(e->key) + 1);
        XXH3_64bits_update(&st, rev, sizeof(rev));
    }
    return XXH3_64bits_digest(&st);
}

/* ---- the configuration --------------------------------------------------------------------- */

void mg_fleet_config_free(mg_fleet_config_t *c)
{
    free(c->policies);
    free(c->policy_keys);
    memset(c, 0, sizeof(*c));
}

/* `key` with the prefix removed, when it starts with the prefix (trailing slashes ignored). */
static const char *under(const char *key, const char *prefix)
{
    size_t n = strlen(prefix);
    while (n > 0 && prefix[n - 1] == '/')
        n--;
    return strncmp(key, prefix, n) == 0 ? key + n : NULL;
}

int mg_fleet_config_build(const mg_fleet_view_t *v, const char *prefix, mg_fleet_config_t *out,
                          const char **bad_key, mg_err_t *err)
{
    memset(out, 0, sizeof(*out));
    *bad_key = NULL;
    if (v->n > 0 && ((out->policies = calloc(v->n, sizeof(*out->policies))) == NULL ||
                     (out->policy_keys = calloc(v->n, sizeof(*out->policy_keys))) == NULL)) {
        mg_fleet_config_free(out);
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    }
    mg_control_fleet_t *f = &out->fleet;
    f->source = "etcd";
    f->revision = (uint64_t)v->revision;
    f->digest = mg_fleet_view_digest(v);
    f->policies = out->policies;
    f->rejected = MG_CONTROL_FLEET_NONE;
    f->persist = 1;
    static const size_t traffic_len = sizeof(MG_FLEET_TRAFFIC) - 1;
    int rc = 0;
    for (size_t i = 0; i < v->n && rc == 0; i++) {
        const mg_fleet_entry_t *e = &v->entries[i];
        const char *rest = under(e->key, prefix);
        if (rest != NULL && strncmp(rest, MG_FLEET_TRAFFIC, traffic_len) == 0) {
            const char *model = rest + traffic_len;
            if (model[0] == '\0' || strchr(model, '/') != NULL || strlen(model) > 255)
                rc = mg_err_set(err, MG_EINVAL,
                                "key %s: a traffic key is PREFIX" MG_FLEET_TRAFFIC
                                "<model>, one model name of 1..255 bytes without '/'",
                                e->key);
            out->policy_keys[f->npolicies] = e->key;
            out->policies[f->npolicies++] =
                (mg_control_policy_text_t){model, e->value, e->value_len};
        } else if (rest != NULL && strcmp(rest, MG_FLEET_ROUTES) == 0) {
            out->routes_key = e->key;
            f->routes = e->value;
            f->routes_len = e->value_len;
        } else if (rest != NULL && strcmp(rest, MG_FLEET_KILL_SWITCH) == 0) {
            out->kill_key = e->key;
            mg_err_t kerr;
            if (mg_control_kill_switch_parse(e->value, e->value_len, &f->kill_switch, &kerr) != 0)
                rc = mg_err_set(err, MG_EINVAL, "key %s: %s", e->key, kerr.msg);
        } else {
            rc = mg_err_set(err, MG_EINVAL,
                            "key %s: unknown key (the configuration has " MG_FLEET_TRAFFIC
                            "<model>, " MG_FLEET_ROUTES " and " MG_FLEET_KILL_SWITCH ")",
                            e->key);
        }
        if (rc != 0)
            *bad_key = e->key;
    }
    if (rc != 0)
        mg_fleet_config_free(out);
    return rc;
}
