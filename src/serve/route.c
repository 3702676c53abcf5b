#include "serve/route.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include "core/rcu.h"

const char *mg_policy_source_name(mg_policy_source_t s)
{
    static const char *const names[] = {"none", "route", "admin", "config"};
    return (unsigned)s < 4 ? names[s] : "none";
}

/* A per-thread splitmix64 stream for the weighted split: no lock, no syscall. */
static uint64_t next_random(void)
{
    static _Thread_local uint64_t state;
    if (state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&state;
    }
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Finds the sticky key the policy names; empty when the request has none. */
static mg_str_t sticky_key(const mg_policy_t *p, const mg_route_source_t *src)
{
    mg_str_t key = {"", 0};
    if (p->sticky_source == MG_POLICY_STICKY_HEADER) {
        return mg_meta_value(&src->headers, p->sticky_name, strlen(p->sticky_name));
    }
    /* A string or number parameter: its text is the key. */
    const mg_param_t *param =
        src->req != NULL ? mg_infer_request_param(src->req, p->sticky_name, strlen(p->sticky_name))
                         : NULL;
    if (param != NULL && param->kind != MG_PARAM_BOOL)
        key = param->text;
    return key;
}

int mg_serve_route(mg_registry_t *reg, mg_router_t *router, mg_str_t model,
                   const mg_policy_t *rule_policy, mg_policy_input_t *in,
                   const mg_route_source_t *src, mg_route_result_t *out, mg_err_t *err)
{
    memset(out, 0, sizeof(*out));
    out->rule = -1;
    if (in->random == 0)
        in->random = next_random();

    rcu_read_lock();
    const mg_policy_t *p = rule_policy;
    out->source = MG_POLICY_ROUTE;
    if (p == NULL) {
        p = mg_router_policy(router, model);
        out->source = MG_POLICY_ADMIN;
    }
    if (p == NULL) {
        const mg_model_entry_t *e = mg_registry_snapshot_find(mg_registry_snapshot(reg), model);
        p = e != NULL && e->config.has_traffic ? &e->config.traffic : NULL;
        out->source = MG_POLICY_CONFIG;
    }
    if (p == NULL)
        out->source = MG_POLICY_NONE;

    if (p != NULL && in->sticky_key.len == 0 && src != NULL)
        in->sticky_key = sticky_key(p, src);
    mg_policy_decision_t d;
    int rc = mg_policy_pick(p, in, &d, err);
    int64_t stable = p != NULL ? p->stable : 0;
    mg_rcu_read_unlock();
    if (rc != 0)
        return rc;

    out->reason = d.reason;
    out->rule = d.rule;
    out->chosen = d.version;
    char vtext[24];
    mg_str_t version = {"", 0};
    if (d.version > 0) {
        int n = snprintf(vtext, sizeof(vtext), "%lld", (long long)d.version);
        version = (mg_str_t){vtext, (size_t)n};
    }
    rc = mg_registry_acquire(reg, model, version, &out->version, err);
    int policy_chose = d.reason != MG_POLICY_REASON_URL && d.reason != MG_POLICY_REASON_HEADER &&
                       d.reason != MG_POLICY_REASON_DEFAULT;
    if (rc == MG_EUNAVAIL && policy_chose && stable > 0 && stable != d.version) {
        /* The chosen version cannot serve: the stable one takes the request. */
        int n = snprintf(vtext, sizeof(vtext), "%lld", (long long)stable);
        mg_err_t ferr;
        if (mg_registry_acquire(reg, model, (mg_str_t){vtext, (size_t)n}, &out->version, &ferr) ==
            0) {
            out->reason = MG_POLICY_REASON_FALLBACK;
            return 0;
        }
    }
    return rc;
}
