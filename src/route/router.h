/*
 * The live routing state: the route table and the traffic policies set through the admin
 * API, published together as one immutable snapshot with liburcu. Request threads read it
 * inside an RCU read section and never lock; writers (admin API, serialised by one mutex)
 * build a new snapshot, swap the pointer and free the old one after a grace period. An
 * update that fails validation changes nothing.
 */
#ifndef MG_ROUTE_ROUTER_H
#define MG_ROUTE_ROUTER_H

#include "core/buf.h"
#include "core/err.h"
#include "route/policy.h"
#include "route/table.h"

#include <stdint.h>

typedef struct mg_router mg_router_t;

/** Creates a router with an empty route table and no policies. Returns 0 or MG_ENOMEM. */
int mg_router_new(mg_router_t **out);

/** Frees the router; no reader may be inside a read section. Accepts NULL. */
void mg_router_free(mg_router_t *r);

/**
 * Inside an RCU read section: the policy set for `model` through the admin API, or NULL.
 * The pointer is valid until mg_rcu_read_unlock(). Thread: any RCU-registered thread.
 */
const mg_policy_t *mg_router_policy(mg_router_t *r, mg_str_t model);

/**
 * Inside an RCU read section: the first route-table rule matching `req`, or NULL; valid
 * until mg_rcu_read_unlock(). Thread: any RCU-registered thread.
 */
const mg_route_rule_t *mg_router_match(mg_router_t *r, const mg_route_request_t *req);

/**
 * Sets (or, with `p` NULL, clears) the admin policy of `model`; publishes a new snapshot.
 * The caller has validated `p` against the model's versions. Returns 0 or MG_ENOMEM.
 * Thread: any RCU-registered thread outside a read section.
 */
int mg_router_set_policy(mg_router_t *r, const char *model, const mg_policy_t *p, mg_err_t *err);

/** Replaces the route table (takes `t`); publishes a new snapshot. Returns 0 or MG_ENOMEM. */
int mg_router_set_table(mg_router_t *r, mg_route_table_t *t, mg_err_t *err);

/** Appends the live route table as JSON. Returns 0 or MG_ENOMEM. Thread: RCU-registered. */
int mg_router_table_json(mg_router_t *r, mg_buf_t *out);

/** Number of rules in the live table. Thread: RCU-registered. */
size_t mg_router_table_count(mg_router_t *r);

/** Revision of the live snapshot: 1 at start, +1 per publish. */
uint64_t mg_router_revision(mg_router_t *r);

#endif
