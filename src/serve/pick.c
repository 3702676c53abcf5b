#include "serve/pick.h"

#include "core/log.h"
#include "core/rcu.h"
#include "route/breaker.h"

#include <string.h>
#include <time.h>

const char *mg_pick_source_name(mg_pick_source_t s)
{
    static const char *const names[] = {"none", "route", "admin", "config"};
    return (unsigned)s < 4 ? names[s] : "none";
}

const char *mg_pick_fallback_name(mg_pick_fallback_t f)
{
    static const char *const names[] = {"none", "not-loaded", "not-ready", "breaker-open",
                                        "run-failed"};
    return (unsigned)f < 5 ? names[f] : "none";
}

bool mg_pick_by_policy(mg_policy_reason_t r)
{
    return r == MG_POLICY_REASON_AB_GROUP || r == MG_POLICY_REASON_STAGE ||
           r == MG_POLICY_REASON_STICKY || r == MG_POLICY_REASON_WEIGHT;
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

/* mg_pick_policy, with the router snapshot's kill switch and revision in *flags. */
static const mg_policy_t *pick_policy(mg_registry_t *reg, mg_router_t *router, mg_str_t model,
                                      const mg_policy_t *rule_policy, mg_pick_source_t *source,
                                      mg_router_flags_t *flags)
{
    const mg_policy_t *p = mg_router_lookup(router, model, flags);
    *source = MG_PICK_ADMIN;
    if (rule_policy != NULL) {
        p = rule_policy;
        *source = MG_PICK_ROUTE;
    }
    if (p == NULL) {
        const mg_model_entry_t *e = mg_registry_snapshot_find(mg_registry_snapshot(reg), model);
        p = e != NULL ? mg_model_entry_policy(e) : NULL;
        *source = MG_PICK_CONFIG;
    }
    if (p == NULL)
        *source = MG_PICK_NONE;
    return p;
}

const mg_policy_t *mg_pick_policy(mg_registry_t *reg, mg_router_t *router, mg_str_t model,
                                  const mg_policy_t *rule_policy, mg_pick_source_t *source)
{
    mg_router_flags_t flags;
    return pick_policy(reg, router, model, rule_policy, source, &flags);
}

/* The sticky key the policy names; empty when the request has none. */
static mg_str_t sticky_key(const mg_policy_t *p, const mg_meta_t *meta,
                           const mg_infer_request_t *req)
{
    size_t n = strlen(p->sticky_name);
    if (p->sticky_source == MG_POLICY_STICKY_HEADER)
        return mg_meta_value(meta, p->sticky_name, n);
    /* A string or number parameter: its text is the key. */
    const mg_param_t *param = req != NULL ? mg_infer_request_param(req, p->sticky_name, n) : NULL;
    if (param != NULL && param->kind != MG_PARAM_BOOL)
        return param->text;
    return (mg_str_t){"", 0};
}

int mg_pick_version(mg_registry_t *reg, mg_router_t *router, mg_str_t model,
                    const mg_policy_t *rule_policy, mg_str_t url_version, const mg_meta_t *meta,
                    const mg_infer_request_t *req, uint64_t random, mg_pick_t *out, mg_err_t *err)
{
    memset(out, 0, sizeof(*out));
    out->rule = -1;
    mg_policy_input_t in = {
        .url_version = url_version,
        .header_version = mg_meta_value(meta, "x-model-version", 15),
        .ab_group = mg_meta_value(meta, "x-ab-group", 10),
        .stage = mg_meta_value(meta, "x-stage", 7),
        .random = random != 0 ? random : next_random(),
    };

    rcu_read_lock();
    mg_router_flags_t flags;
    const mg_policy_t *p = pick_policy(reg, router, model, rule_policy, &out->source, &flags);
    if (p != NULL)
        in.sticky_key = sticky_key(p, meta, req);
    mg_policy_decision_t d;
    int rc = mg_policy_pick(p, &in, &d, err);
    int64_t stable = p != NULL ? p->stable : 0;
    int kill = flags.kill_switch;
    out->config_revision = flags.config_revision;
    mg_rcu_read_unlock();
    if (rc != 0)
        return rc;
    if (kill && stable > 0 && mg_pick_by_policy(d.reason)) {
        /* The kill switch: what the policy decided goes to its stable version instead. */
        d.version = stable;
        d.reason = MG_POLICY_REASON_KILL_SWITCH;
        d.rule = -1;
    }

    out->reason = d.reason;
    out->rule = d.rule;
    out->chosen = d.version;
    out->stable = stable;
    rc = mg_registry_acquire(reg, model, d.version, &out->version, err);
    if (!(mg_pick_by_policy(d.reason) || d.reason == MG_POLICY_REASON_KILL_SWITCH) || stable <= 0)
        return rc;

    /* May the version the policy chose take the request? The stable one is never ejected. */
    mg_pick_fallback_t why;
    if (rc == MG_ENOVERSION) {
        why = MG_PICK_FALLBACK_NOT_LOADED;
    } else if (rc == MG_EUNAVAIL) {
        why = MG_PICK_FALLBACK_NOT_READY;
    } else if (rc == 0 && stable != d.version) {
        mg_breaker_decision_t bd = mg_breaker_allow(mg_model_version_breaker(out->version), 0);
        if (bd != MG_BREAKER_DENY) {
            out->probe = bd == MG_BREAKER_PROBE;
            return 0;
        }
        why = MG_PICK_FALLBACK_BREAKER_OPEN;
    } else {
        return rc;
    }
    mg_model_version_t *fb = NULL;
    mg_err_t ferr;
    if ((stable == d.version || mg_registry_acquire(reg, model, stable, &fb, &ferr) != 0) &&
        why != MG_PICK_FALLBACK_BREAKER_OPEN)
        mg_registry_acquire(reg, model, 0, &fb, &ferr); /* the model's default version */
    if (fb == NULL)
        return rc; /* an ejected version keeps its request: nothing else can serve */
    mg_model_version_unpin(out->version);
    out->version = fb;
    out->reason = MG_POLICY_REASON_FALLBACK;
    out->fallback = why;
    mg_err_clear(err);
    return 0;
}
