/*
 * Which version of a model serves a request: the policy that applies, the precedence of
 * route/policy.h applied to the request's metadata, and the pin on the chosen version.
 *
 * The policy that applies is, first found: the matched route rule's "traffic" override, the
 * policy set through the admin API, the model's config.json "traffic", or none (then the URL
 * or X-Model-Version pin a version, else the model's default version serves).
 *
 * When the version a policy chose cannot take the request, the policy's stable version serves
 * it ("fallback"): the version is not loaded (a reload removed it), not ready, or its circuit
 * breaker (route/breaker.h) has it ejected. When the stable version cannot serve either, the
 * model's default version serves a version that is not loaded or not ready, and an ejected
 * version keeps its request: the last version able to serve is never ejected. The stable version
 * itself is never ejected. Versions the client named (URL, X-Model-Version) are never diverted.
 * While the router's kill switch is on, whatever a policy decides (AB group, stage, sticky,
 * weight) goes to its stable version ("kill-switch"); a version the URL or X-Model-Version
 * names still serves.
 */
#ifndef MG_SERVE_PICK_H
#define MG_SERVE_PICK_H

#include "core/err.h"
#include "core/meta.h"
#include "infer/request.h"
#include "repo/registry.h"
#include "route/policy.h"
#include "route/router.h"

#include <stdbool.h>

/** Where the policy that decided came from. */
typedef enum {
    MG_PICK_NONE = 0,
    MG_PICK_ROUTE,  /* the route rule's override */
    MG_PICK_ADMIN,  /* PUT /v2/admin/models/{m}/traffic */
    MG_PICK_CONFIG, /* config.json */
} mg_pick_source_t;

/** Returns "none", "route", "admin" or "config". Static. Thread: any. */
const char *mg_pick_source_name(mg_pick_source_t s);

/** Why a request fell back to the stable version (X-Fallback-Reason). */
typedef enum {
    MG_PICK_FALLBACK_NONE = 0,
    MG_PICK_FALLBACK_NOT_LOADED,   /* the policy names a version the registry does not list */
    MG_PICK_FALLBACK_NOT_READY,    /* listed but not ready (failed to load, unloaded) */
    MG_PICK_FALLBACK_BREAKER_OPEN, /* its circuit breaker has it ejected */
    MG_PICK_FALLBACK_RUN_FAILED,   /* it ran and failed server-side; replayed (serve/serve.h) */
} mg_pick_fallback_t;

/** Returns "not-loaded", "not-ready", "breaker-open", "run-failed" or "none". Static. */
const char *mg_pick_fallback_name(mg_pick_fallback_t f);

/** The routing outcome that travels with the request into headers, logs and metrics. */
typedef struct mg_pick {
    mg_model_version_t *version; /* pinned; mg_model_version_unpin when done */
    mg_policy_reason_t reason;
    mg_pick_source_t source;
    int rule;       /* the AB-group/stage rule index, or -1 */
    int64_t chosen; /* the version the policy chose (differs on fallback); 0: the default */
    int64_t stable; /* the policy's stable version; 0: no policy */
    mg_pick_fallback_t fallback; /* with MG_POLICY_REASON_FALLBACK: why */
    bool probe;                  /* the breaker let this request through as a half-open probe */
    uint64_t config_revision;    /* the fleet configuration revision routed by; 0: none */
} mg_pick_t;

/** True when the policy chose the version (AB group, stage, sticky key or weights). */
bool mg_pick_by_policy(mg_policy_reason_t r);

/**
 * The policy that applies to `model` by the precedence above, and where it came from.
 * `rule_policy` is the matched route rule's override or NULL. The pointer is valid until
 * mg_rcu_read_unlock(). Thread: any RCU-registered thread, inside rcu_read_lock().
 */
const mg_policy_t *mg_pick_policy(mg_registry_t *reg, mg_router_t *router, mg_str_t model,
                                  const mg_policy_t *rule_policy, mg_pick_source_t *source);

/**
 * Routes a request for `model` and pins the version. `url_version` is the version named by
 * the URL (or the /predict body), empty when none; the X-Model-Version, X-AB-Group and
 * X-Stage entries and the policy's sticky key are read from `meta` (the sticky key from the
 * request-level parameters of `req` when the policy says so; `req` may be NULL). `random` is a
 * uniform 64-bit draw for the weighted split (0: one is drawn here). Falls back as described
 * above, asking the chosen version's breaker first. Returns 0, or MG_EINVAL (bad version text),
 * MG_ENOMODEL / MG_ENOVERSION (unknown), MG_EUNAVAIL (nothing ready to serve) with `err`
 * filled and nothing pinned. Thread: any RCU-registered thread, outside a
 * read section.
 */
int mg_pick_version(mg_registry_t *reg, mg_router_t *router, mg_str_t model,
                    const mg_policy_t *rule_policy, mg_str_t url_version, const mg_meta_t *meta,
                    const mg_infer_request_t *req, uint64_t random, mg_pick_t *out, mg_err_t *err);

#endif
