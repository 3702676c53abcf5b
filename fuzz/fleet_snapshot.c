/*
 * libFuzzer target for the fleet's configuration snapshots (issue 11): what an instance reads
 * from etcd and what it restores from its state file. The first byte picks which:
 *
 *   even   an etcd range read: the rest is "key\0value\0" pairs under the prefix /t, put in a
 *          fleet view (cluster/fleet.h) and built into a routing configuration, whose policies
 *          and route table are then parsed as the control plane parses them; the view's digest
 *          must not depend on the order the pairs came in
 *   odd    a state file (control/state.h), written to a temporary file and read back with
 *          mg_state_load, its policies and routes parsed the same way
 *
 * Every refusal must say why.
 */
#include "cluster/fleet.h"
#include "control/state.h"
#include "fuzz.h"
#include "route/policy.h"
#include "route/table.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PAIRS_MAX 64

static void parse_like_control(const mg_control_fleet_t *f)
{
    mg_err_t err;
    for (size_t i = 0; i < f->npolicies; i++) {
        mg_policy_t p;
        check(f->policies[i].model != NULL);
        if (mg_policy_parse(f->policies[i].json, f->policies[i].len, &p, &err) != 0)
            check(err.msg[0] != '\0');
    }
    if (f->routes != NULL) {
        mg_route_table_t *t = NULL;
        if (mg_route_table_parse(f->routes, f->routes_len, &t, &err) != 0)
            check(err.msg[0] != '\0');
        mg_route_table_free(t);
    }
}

/* Splits the input into up to PAIRS_MAX pairs, in order or reversed. */
static size_t pairs(const uint8_t *d, size_t n, int reversed, mg_etcd_kvs_t *kvs)
{
    const char *s[2 * PAIRS_MAX];
    size_t len[2 * PAIRS_MAX], k = 0, i = 0;
    while (i < n && k < 2 * PAIRS_MAX) {
        const uint8_t *z = memchr(d + i, 0, n - i);
        size_t l = z ? (size_t)(z - (d + i)) : n - i;
        s[k] = (const char *)d + i;
        len[k++] = l;
        i += l + 1;
    }
    size_t np = k / 2;
    kvs->kvs = calloc(np + 1, sizeof(*kvs->kvs));
    check(kvs->kvs != NULL);
    for (size_t p = 0; p < np; p++) {
        size_t src = reversed ? np - 1 - p : p;
        mg_etcd_kv_t *kv = &kvs->kvs[p];
        /* The prefix /t, as every key of a range read under it carries. */
        kv->key = malloc(len[2 * src] + 3);
        kv->value = malloc(len[2 * src + 1] + 1);
        check(kv->key != NULL && kv->value != NULL);
        memcpy(kv->key, "/t", 2);
        memcpy(kv->key + 2, s[2 * src], len[2 * src]);
        kv->key[len[2 * src] + 2] = '\0';
        kv->key_len = len[2 * src] + 2;
        memcpy(kv->value, s[2 * src + 1], len[2 * src + 1]);
        kv->value[len[2 * src + 1]] = '\0';
        kv->value_len = len[2 * src + 1];
        kv->mod_revision = (int64_t)(src + 1);
    }
    kvs->n = np;
    kvs->revision = (int64_t)np + 1;
    return np;
}

/* Range reads come sorted by key: sort like etcd does. */
static int by_key(const void *a, const void *b)
{
    return strcmp(((const mg_etcd_kv_t *)a)->key, ((const mg_etcd_kv_t *)b)->key);
}

static void from_etcd(const uint8_t *d, size_t n)
{
    mg_etcd_kvs_t a = {0}, b = {0};
    size_t np = pairs(d, n, 0, &a);
    pairs(d, n, 1, &b);
    qsort(a.kvs, np, sizeof(*a.kvs), by_key);
    qsort(b.kvs, np, sizeof(*b.kvs), by_key);
    mg_fleet_view_t va = {0}, vb = {0};
    if (mg_fleet_view_reset(&va, &a) == 0 && mg_fleet_view_reset(&vb, &b) == 0) {
        /* Duplicate keys make the two orders keep different values; only compare without. */
        int dup = 0;
        for (size_t i = 1; i < va.n; i++)
            dup |= strcmp(va.entries[i - 1].key, va.entries[i].key) == 0;
        if (!dup && va.n == vb.n) {
            /* mod revisions differ with the order: compare the keys only */
            for (size_t i = 0; i < va.n; i++)
                check(strcmp(va.entries[i].key, vb.entries[i].key) == 0);
        }
        (void)mg_fleet_view_digest(&va);
        mg_fleet_config_t cfg = {0};
        const char *bad = NULL;
        mg_err_t err;
        if (mg_fleet_config_build(&va, "/t", &cfg, &bad, &err) == 0)
            parse_like_control(&cfg.fleet);
        else
            check(err.msg[0] != '\0');
        mg_fleet_config_free(&cfg);
    }
    mg_fleet_view_free(&va);
    mg_fleet_view_free(&vb);
    mg_etcd_kvs_free(&a);
    mg_etcd_kvs_free(&b);
}

static void from_state_file(const uint8_t *d, size_t n)
{
    static char path[64];
    if (path[0] == '\0')
        snprintf(path, sizeof(path), "/tmp/mg-fuzz-state.%d.json", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return;
    size_t w = fwrite(d, 1, n, f);
    fclose(f);
    if (w != n)
        return;
    mg_state_t st;
    mg_err_t err;
    int rc = mg_state_load(path, &st, &err);
    if (rc == 0)
        parse_like_control(&st.fleet);
    else
        check(err.msg[0] != '\0');
    mg_state_free(&st);
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        from_state_file(data + 1, size - 1);
    else
        from_etcd(data + 1, size - 1);
    return 0;
}
