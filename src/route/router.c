#include "route/router.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "core/rcu.h"

typedef struct named_policy {
    char *model;
    mg_policy_t policy;
} named_policy_t;

typedef struct snapshot {
    uint64_t revision;
    mg_route_table_t *table; /* may be shared with the next snapshot (see `owns_table`) */
    int owns_table;
    named_policy_t *policies; /* sorted by model name */
    size_t npolicies;
} snapshot_t;

/*
 * The live pointer is a C11 atomic (release on publish, acquire on read: a plain load on
 * x86, the same as rcu_dereference) so that ThreadSanitizer sees the publication; liburcu
 * provides the read sections and the grace period before the old snapshot is freed.
 */
struct mg_router {
    _Atomic(snapshot_t *) live;
    pthread_mutex_t write_lock;
};

/* The live snapshot; inside a read section. */
static inline const snapshot_t *live(mg_router_t *r)
{
    return atomic_load_explicit(&r->live, memory_order_acquire);
}

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

/* Copies the policies of `old`, replacing/adding/removing `model` (NULL: copies them unchanged). */
static int copy_policies(const snapshot_t *old, const char *model, const mg_policy_t *p,
                         snapshot_t *s)
{
    size_t n = old->npolicies + 1;
    s->policies = calloc(n, sizeof(*s->policies));
    if (s->policies == NULL)
        return MG_ENOMEM;
    size_t k = 0;
    int placed = 0;
    for (size_t i = 0; i <= old->npolicies; i++) {
        int c = i == old->npolicies ? 1
                : model == NULL     ? -1
                                    : strcmp(old->policies[i].model, model);
        if (!placed && c >= 0) {
            placed = 1;
            if (p != NULL) {
                if ((s->policies[k].model = strdup(model)) == NULL)
                    goto nomem;
                s->policies[k++].policy = *p;
            }
            if (c == 0)
                continue;
        }
        if (i == old->npolicies)
            break;
        if ((s->policies[k].model = strdup(old->policies[i].model)) == NULL)
            goto nomem;
        s->policies[k++].policy = old->policies[i].policy;
    }
    s->npolicies = k;
    return 0;
nomem:
    s->npolicies = k;
    return MG_ENOMEM;
}

/* Publishes `s`, waits a grace period and frees the previous snapshot. Writer lock held. */
static void publish(mg_router_t *r, snapshot_t *s)
{
    snapshot_t *old = atomic_exchange_explicit(&r->live, s, memory_order_acq_rel);
    mg_rcu_synchronize();
    snapshot_free(old);
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
    atomic_init(&r->live, s);
    pthread_mutex_init(&r->write_lock, NULL);
    *out = r;
    return 0;
}

void mg_router_free(mg_router_t *r)
{
    if (r == NULL)
        return;
    snapshot_free(atomic_load_explicit(&r->live, memory_order_acquire));
    pthread_mutex_destroy(&r->write_lock);
    free(r);
}

const mg_policy_t *mg_router_policy(mg_router_t *r, mg_str_t model)
{
    const snapshot_t *s = live(r);
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

const mg_route_rule_t *mg_router_match(mg_router_t *r, const mg_route_request_t *req)
{
    const snapshot_t *s = live(r);
    if (mg_route_table_count(s->table) == 0)
        return NULL;
    return mg_route_table_match(s->table, req);
}

int mg_router_set_policy(mg_router_t *r, const char *model, const mg_policy_t *p, mg_err_t *err)
{
    pthread_mutex_lock(&r->write_lock);
    snapshot_t *old = atomic_load_explicit(&r->live, memory_order_relaxed); /* writer lock held */
    snapshot_t *s = calloc(1, sizeof(*s));
    int rc = s ? copy_policies(old, model, p, s) : MG_ENOMEM;
    if (rc != 0) {
        snapshot_free(s);
        pthread_mutex_unlock(&r->write_lock);
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    }
    /* The table moves to the new snapshot; the old one must not free it. */
    s->table = old->table;
    s->owns_table = 1;
    old->owns_table = 0;
    s->revision = old->revision + 1;
    publish(r, s);
    pthread_mutex_unlock(&r->write_lock);
    return 0;
}

int mg_router_set_table(mg_router_t *r, mg_route_table_t *t, mg_err_t *err)
{
    pthread_mutex_lock(&r->write_lock);
    snapshot_t *old = atomic_load_explicit(&r->live, memory_order_relaxed); /* writer lock held */
    snapshot_t *s = calloc(1, sizeof(*s));
    int rc = s ? copy_policies(old, NULL, NULL, s) : MG_ENOMEM; /* policies unchanged */
    if (rc != 0) {
        snapshot_free(s);
        mg_route_table_free(t);
        pthread_mutex_unlock(&r->write_lock);
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    }
    s->table = t;
    s->owns_table = 1;
    s->revision = old->revision + 1;
    publish(r, s);
    pthread_mutex_unlock(&r->write_lock);
    return 0;
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
