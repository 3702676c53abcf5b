#include "route/router.h"

#include "core/rcu.h"
#include "core/snapshot.h"

#include <stdlib.h>
#include <string.h>

typedef struct named_policy {
    char *model;
    mg_policy_t policy;
} named_policy_t;

typedef struct snapshot {
    uint64_t revision;
    mg_route_table_t *table; /* may be handed on to the next snapshot (see `owns_table`) */
    int owns_table;
    named_policy_t *policies; /* sorted by model name */
    size_t npolicies;
    int kill_switch;
    uint64_t config_revision;
} snapshot_t;

struct mg_router {
    mg_snapshot_t live;
};

static void snapshot_free(snapshot_t *s)
{
    if (s == NULL)
        return;
    if (s->owns_table)
        mg_route_table_free(s->table);
    for (size_t i = 0; i < s->npolicies; i++)
        free(s->policies[i].model);
    free(s->policies);
    free(s);
}

static void snapshot_free_cb(void *s, void *ctx)
{
    (void)ctx;
    snapshot_free(s);
}

/* The change's policy for `model`, or NULL when the change does not name it. */
static const mg_router_policy_change_t *change_for(const mg_router_change_t *c, const char *model)
{
    for (size_t i = 0; i < c->npolicies; i++) {
        if (strcmp(c->policies[i].model, model) == 0)
            return &c->policies[i];
    }
    return NULL;
}

static int cmp_named(const void *a, const void *b)
{
    return strcmp(((const named_policy_t *)a)->model, ((const named_policy_t *)b)->model);
}

/* Fills s->policies with the policies of `old` after the change: kept, replaced, added, cleared. */
static int merge_policies(const snapshot_t *old, const mg_router_change_t *c, snapshot_t *s)
{
    size_t cap = old->npolicies + c->npolicies;
    s->policies = cap ? calloc(cap, sizeof(*s->policies)) : NULL;
    if (cap && s->policies == NULL)
        return MG_ENOMEM;
    for (size_t i = 0; i < old->npolicies; i++) {
        if (c->replace_policies || change_for(c, old->policies[i].model) != NULL)
            continue;
        if ((s->policies[s->npolicies].model = strdup(old->policies[i].model)) == NULL)
            return MG_ENOMEM;
        s->policies[s->npolicies++].policy = old->policies[i].policy;
    }
    for (size_t i = 0; i < c->npolicies; i++) {
        if (c->policies[i].policy == NULL)
            continue;
        if ((s->policies[s->npolicies].model = strdup(c->policies[i].model)) == NULL)
            return MG_ENOMEM;
        s->policies[s->npolicies++].policy = *c->policies[i].policy;
    }
    if (s->npolicies > 1)
        qsort(s->policies, s->npolicies, sizeof(*s->policies), cmp_named);
    return 0;
}

int mg_router_new(mg_router_t **out)
{
    mg_router_t *r = calloc(1, sizeof(*r));
    snapshot_t *s = calloc(1, sizeof(*s));
    mg_route_table_t *t = NULL;
    mg_err_t err;
    if (r == NULL || s == NULL || mg_route_table_parse("{\"routes\":[]}", 13, &t, &err) != 0) {
        free(r);
        free(s);
        return MG_ENOMEM;
    }
    s->revision = 1;
    s->table = t;
    s->owns_table = 1;
    mg_snapshot_init(&r->live, s, snapshot_free_cb, NULL);
    *out = r;
    return 0;
}

void mg_router_free(mg_router_t *r)
{
    if (r == NULL)
        return;
    mg_snapshot_deinit(&r->live);
    free(r);
}

static const snapshot_t *live(mg_router_t *r)
{
    return mg_snapshot_read(&r->live);
}

static const mg_policy_t *find_policy(const snapshot_t *s, mg_str_t model)
{
    size_t lo = 0, hi = s->npolicies;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = mg_str_cmp(s->policies[mid].model, model);
        if (c == 0)
            return &s->policies[mid].policy;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const mg_policy_t *mg_router_policy(mg_router_t *r, mg_str_t model)
{
    return find_policy(live(r), model);
}

const mg_policy_t *mg_router_lookup(mg_router_t *r, mg_str_t model, mg_router_flags_t *flags)
{
    const snapshot_t *s = live(r); /* one load: the policy and the flags agree */
    flags->kill_switch = s->kill_switch;
    flags->config_revision = s->config_revision;
    return find_policy(s, model);
}

const mg_route_rule_t *mg_router_match(mg_router_t *r, const mg_route_request_t *req)
{
    const snapshot_t *s = live(r);
    if (mg_route_table_count(s->table) == 0)
        return NULL;
    return mg_route_table_match(s->table, req);
}

int mg_router_apply(mg_router_t *r, const mg_router_change_t *c, uint64_t *revision, mg_err_t *err)
{
    snapshot_t *old = mg_snapshot_current(&r->live);
    snapshot_t *s = calloc(1, sizeof(*s));
    if (s == NULL || merge_policies(old, c, s) != 0) {
        snapshot_free(s);
        mg_route_table_free(c->table);
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    }
    s->revision = old->revision + 1;
    s->owns_table = 1;
    s->kill_switch =
        c->kill == MG_ROUTER_KILL_KEEP ? old->kill_switch : c->kill == MG_ROUTER_KILL_ON;
    s->config_revision = c->config_revision != 0 ? c->config_revision : old->config_revision;
    if (c->table != NULL) {
        s->table = c->table;
    } else {
        /* The table moves on to the new snapshot; the old one must not free it. */
        s->table = old->table;
        old->owns_table = 0;
    }
    if (revision != NULL)
        *revision = s->revision;
    mg_snapshot_publish(&r->live, s);
    return 0;
}

int mg_router_set_policy(mg_router_t *r, const char *model, const mg_policy_t *p, mg_err_t *err)
{
    mg_router_policy_change_t one = {model, p};
    mg_router_change_t c = {.policies = &one, .npolicies = 1};
    return mg_router_apply(r, &c, NULL, err);
}

int mg_router_set_table(mg_router_t *r, mg_route_table_t *t, mg_err_t *err)
{
    mg_router_change_t c = {.table = t};
    return mg_router_apply(r, &c, NULL, err);
}

int mg_router_table_json(mg_router_t *r, mg_buf_t *out)
{
    rcu_read_lock();
    int rc = mg_route_table_to_json(live(r)->table, out);
    mg_rcu_read_unlock();
    return rc;
}

size_t mg_router_table_count(mg_router_t *r)
{
    rcu_read_lock();
    size_t n = mg_route_table_count(live(r)->table);
    mg_rcu_read_unlock();
    return n;
}

uint64_t mg_router_revision(mg_router_t *r)
{
    rcu_read_lock();
    uint64_t v = live(r)->revision;
    mg_rcu_read_unlock();
    return v;
}

void mg_router_info(mg_router_t *r, mg_router_info_t *out)
{
    rcu_read_lock();
    const snapshot_t *s = live(r);
    out->revision = s->revision;
    out->config_revision = s->config_revision;
    out->kill_switch = s->kill_switch;
    out->rules = mg_route_table_count(s->table);
    out->npolicies = s->npolicies;
    mg_rcu_read_unlock();
}

int mg_router_policies_json(mg_router_t *r, mg_buf_t *out)
{
    rcu_read_lock();
    const snapshot_t *s = live(r);
    int rc = mg_buf_puts(out, "{");
    for (size_t i = 0; rc == 0 && i < s->npolicies; i++) {
        rc = i ? mg_buf_puts(out, ",") : 0;
        rc = rc ? rc : mg_buf_json_string(out, s->policies[i].model, strlen(s->policies[i].model));
        rc = rc ? rc : mg_buf_puts(out, ":");
        rc = rc ? rc : mg_policy_to_json(&s->policies[i].policy, out);
    }
    rc = rc ? rc : mg_buf_puts(out, "}");
    mg_rcu_read_unlock();
    return rc ? MG_ENOMEM : 0;
}
