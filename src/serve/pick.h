/*
 * Which version of a model serves a request: the policy that applies, the precedence of
 * route/policy.h applied to the request's metadata, and the pin on the chosen version.
 *
 * The policy that applies is, first found: the matched route rule's "traffic" override, the
 * policy set through the admin API, the model's config.json "traffic", or none (then the URL
 * or X-Model-Version pin a version, else the model's default version serves). When a version
 * a policy chose is not ready, the policy's stable version serves ("fallback").
 */
#ifndef MG_SERVE_PICK_H
#define MG_SERVE_PICK_H

#include "core/err.h"
#include "core/meta.h"
#include "infer/request.h"
#include "repo/registry.h"
#include "route/policy.h"
#include "route/router.h"

/** Where the policy that decided came from. */
typedef enum {
    MG_PICK_NONE = 0,
    MG_PICK_ROUTE,  /* the route rule's override */
    MG_PICK_ADMIN,  /* PUT /v2/admin/models/{m}/traffic */
    MG_PICK_CONFIG, /* config.json */
} mg_pick_source_t;

/** Returns "none", "route", "admin" or "config". Static. Thread: any. */
const char *mg_pick_source_name(mg_pick_source_t s);

/** The routing outcome that travels with the request into headers, logs and metrics. */
typedef struct mg_pick {
    mg_model_version_t *version; /* pinned; mg_model_version_unpin when done */
    mg_policy_reason_t reason;
    mg_pick_source_t source;
    int rule;       /* the AB-group/stage rule index, or -1 */
    int64_t chosen; /* the version the policy chose (differs on fallback); 0: the default */
} mg_pick_t;

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
 * uniform 64-bit draw for the weighted split (0: one is drawn here). Returns 0, or MG_EINVAL
 * (bad version text), MG_ENOMODEL / MG_ENOVERSION (unknown), MG_EUNAVAIL (nothing ready to
 * serve) with `err` filled and nothing pinned. Thread: any RCU-registered thread, outside a
 * read section.
 */
int mg_pick_version(mg_registry_t *reg, mg_router_t *router, mg_str_t model,
                    const mg_policy_t *rule_policy, mg_str_t url_version, const mg_meta_t *meta,
                    const mg_infer_request_t *req, uint64_t random, mg_pick_t *out, mg_err_t *err);

#endif
