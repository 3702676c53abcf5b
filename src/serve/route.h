/*
 * The one routing function every front end calls: picks the version of a model that serves
 * a request, by the precedence of route/policy.h, and pins it.
 *
 * The policy that applies is, first found: the matched route rule's "traffic" override,
 * the policy set through the admin API, the model's config.json "traffic", or none (then
 * the URL or X-Model-Version pin a version, else the model's default version serves).
 * When a policy-chosen version is not ready, the stable version serves ("fallback").
 */
#ifndef MG_SERVE_ROUTE_H
#define MG_SERVE_ROUTE_H

#include "core/err.h"
#include "infer/request.h"
#include "repo/registry.h"
#include "route/policy.h"
#include "route/router.h"

/** Where the policy that decided came from. */
typedef enum {
    MG_POLICY_NONE = 0,
    MG_POLICY_ROUTE,  /* the route rule's override */
    MG_POLICY_ADMIN,  /* PUT /v2/admin/models/{m}/traffic */
    MG_POLICY_CONFIG, /* config.json */
} mg_policy_source_t;

/** Returns "none", "route", "admin" or "config". */
const char *mg_policy_source_name(mg_policy_source_t s);

/** The routing outcome that travels with the request into headers, logs and metrics. */
typedef struct mg_route_result {
    mg_model_version_t *version; /* pinned; release with mg_model_version_unref */
    mg_policy_reason_t reason;
    mg_policy_source_t source;
    int rule;       /* the AB-group/stage rule index, or -1 */
    int64_t chosen; /* the version the policy chose (differs on fallback) */
} mg_route_result_t;

/** Where the sticky key can come from: request headers and the request-level "parameters". */
typedef struct mg_route_source {
    mg_meta_t headers;             /* lower-case header lookup */
    const mg_infer_request_t *req; /* the decoded request (its parameters), or NULL */
} mg_route_source_t;

/**
 * Routes a request for `model` and pins the version. The sticky key is read from `src` as
 * the chosen policy says (its header, or its field of `parameters`). `rule_policy` is the matched
 * route rule's override or NULL. Must be called inside an RCU read section when `rule_policy`
 * points into a router snapshot. `in->random` is filled here when zero. Returns 0, or
 * MG_EINVAL (bad version text), MG_ENOENT (unknown model or version), MG_EUNAVAIL (nothing
 * ready to serve) with `err` filled. Thread: any RCU-registered request thread.
 */
int mg_serve_route(mg_registry_t *reg, mg_router_t *router, mg_str_t model,
                   const mg_policy_t *rule_policy, mg_policy_input_t *in,
                   const mg_route_source_t *src, mg_route_result_t *out, mg_err_t *err);

#endif
