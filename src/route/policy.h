/*
 * Traffic policy of one model: which versions take traffic and how much, the stable
 * (fallback) version, the sticky key, and header rules; and the decision that applies it
 * to one request with the documented precedence:
 *
 *   URL version > X-Model-Version > X-AB-Group rule > X-Stage rule > sticky key > weights
 *
 * A policy is plain data (no pointers), so it can be copied, compared with memcmp and
 * embedded in immutable snapshots.
 *
 * JSON form (config.json "traffic", and the admin API):
 *   {"weights": {"1": 90, "2": 10},            required: 1 to 16 versions, integer weights 0..10^6
 *    "stable": "1",                            fallback version; must be one of "weights";
 *                                              may be left out only when "weights" has one version
 *    "sticky": {"header": "X-User-ID"} | {"parameter": "user_id"},   default: header X-User-ID
 *    "ab_groups": {"control": "1", "v2-exp": "2"},
 *    "stages": {"gray": "2", "prod": "1", "test": "2"}}
 * Versions may be given as strings or integers ("007" is version 7). A rule may name a version
 * that is not in "weights" (e.g. a test stage pinned to a version that takes no weighted
 * traffic); mg_policy_check_versions checks every version against the model.
 */
#ifndef MG_ROUTE_POLICY_H
#define MG_ROUTE_POLICY_H

#include "core/buf.h"
#include "core/err.h"

#include <stdbool.h>
#include <stdint.h>

#define MG_POLICY_MAX_VERSIONS 16
#define MG_POLICY_MAX_RULES    32
#define MG_POLICY_NAME_MAX     64

typedef enum {
    MG_POLICY_REASON_URL = 0,     /* /v2/models/{m}/versions/{v}/... */
    MG_POLICY_REASON_HEADER,      /* X-Model-Version */
    MG_POLICY_REASON_AB_GROUP,    /* X-AB-Group rule */
    MG_POLICY_REASON_STAGE,       /* X-Stage rule */
    MG_POLICY_REASON_STICKY,      /* hash of the sticky key */
    MG_POLICY_REASON_WEIGHT,      /* weighted random split */
    MG_POLICY_REASON_DEFAULT,     /* no policy: the model's default version */
    MG_POLICY_REASON_FALLBACK,    /* the chosen version could not serve; the stable one did */
    MG_POLICY_REASON_KILL_SWITCH, /* the fleet's kill switch sent the request to stable */
    MG_POLICY_REASON_COUNT_
} mg_policy_reason_t;

/**
 * Returns "url", "header", "ab-group", "stage", "sticky", "weight", "default", "fallback" or
 * "kill-switch" ("unknown" for a value out of range). Static strings. Thread: any.
 */
const char *mg_policy_reason_name(mg_policy_reason_t r);

typedef enum {
    MG_POLICY_STICKY_HEADER = 0, /* request header (name stored lower-case) */
    MG_POLICY_STICKY_PARAMETER,  /* request-level "parameters" field of the KServe JSON body */
} mg_policy_sticky_t;

/** A header value -> version rule (X-AB-Group or X-Stage). Rules are kept sorted by value. */
typedef struct mg_policy_rule {
    char value[MG_POLICY_NAME_MAX]; /* exact, case-sensitive */
    int64_t version;
} mg_policy_rule_t;

typedef struct mg_policy {
    int nversions;
    int64_t versions[MG_POLICY_MAX_VERSIONS]; /* ascending */
    uint32_t weights[MG_POLICY_MAX_VERSIONS]; /* weights[i] is for versions[i] */
    int64_t stable;
    mg_policy_sticky_t sticky_source;
    char sticky_name[MG_POLICY_NAME_MAX]; /* header names lower-case; parameter names as given */
    int nab_groups;
    mg_policy_rule_t ab_groups[MG_POLICY_MAX_RULES];
    int nstages;
    mg_policy_rule_t stages[MG_POLICY_MAX_RULES];
    /*
     * Derived by mg_policy_parse (never set by hand): the sticky/weight layout.
     * Versions take contiguous ranges of the 2^32 hash space in layout order: every
     * non-stable version ascending, then the stable version last, so raising the weight of
     * the version next to the stable one (the newest canary) moves keys only from stable to it.
     * layout[i] owns [bound[i-1], bound[i]) (bound[-1] = 0), bound[i] = floor(cumulative weight
     * * 2^32 / total): the last bound is exactly 2^32, a version with weight 0 owns nothing.
     * See docs/routing.md for what this guarantees and what no layout can.
     */
    int64_t layout[MG_POLICY_MAX_VERSIONS];
    uint64_t bound[MG_POLICY_MAX_VERSIONS]; /* exclusive upper bound of layout[i], in [0, 2^32] */
} mg_policy_t;

/**
 * Parses and validates a policy from JSON text (the object above). Rejects, naming the
 * field: unknown fields, a version that is not a positive integer, negative / non-integer /
 * NaN / too-large weights (max 1,000,000), all-zero weights, more than
 * MG_POLICY_MAX_VERSIONS versions, a stable version not in "weights", a rule value that is
 * empty or too long, duplicate rule values, an invalid sticky spec; malformed JSON gives
 * "line L column C: ...". Messages carry no prefix: callers add where the policy came from.
 * *out is zero-filled (padding included) before it is filled, so policies that mean the
 * same compare equal with memcmp. Returns 0 with *out filled (and its layout derived), or
 * MG_EINVAL with `err` filled and *out untouched. Thread: any.
 */
int mg_policy_parse(const char *json, size_t len, mg_policy_t *out, mg_err_t *err);

/**
 * Checks that every version the policy names (weights, stable, rules) is among the `n`
 * `known` versions of the model. Returns 0 or MG_EINVAL: "unknown version 7 in 'weights'".
 */
int mg_policy_check_versions(const mg_policy_t *p, const int64_t *known, int n, mg_err_t *err);

/**
 * Appends the policy as canonical JSON in the form it is parsed from: compact, every field
 * present, versions as strings, rules sorted; parsing it back gives a memcmp-equal policy.
 * Returns 0, or MG_ENOMEM with nothing appended.
 */
int mg_policy_to_json(const mg_policy_t *p, mg_buf_t *out);

/** What one request offers for routing; empty strings mean absent. */
typedef struct mg_policy_input {
    mg_str_t url_version;    /* from the URL path */
    mg_str_t header_version; /* X-Model-Version */
    mg_str_t ab_group;       /* X-AB-Group */
    mg_str_t stage;          /* X-Stage */
    mg_str_t sticky_key;     /* value of the policy's sticky header or parameter */
    uint64_t random;         /* a uniform random 64-bit draw, for the weighted split */
} mg_policy_input_t;

typedef struct mg_policy_decision {
    int64_t version; /* 0: none chosen (no policy and nothing explicit) */
    mg_policy_reason_t reason;
    int rule; /* index of the ab_groups/stages rule that decided, or -1 */
} mg_policy_decision_t;

/**
 * Applies the precedence to `in` under policy `p` (NULL: no policy; then only URL and
 * header versions decide, else version 0 with MG_POLICY_REASON_DEFAULT). A URL or header version
 * that is not a positive decimal integer gives MG_EINVAL ("X-Model-Version 'abc' is not a
 * version number"); an AB-group or stage value without a rule falls through to the next
 * step. Each step decides alone: a valid URL version wins without looking at the header, a
 * bad one fails even when the header is valid. The sticky step hashes the key with
 * mg_policy_sticky_hash, the weight step uses the high 32 bits of `in->random`; both then call
 * mg_policy_lookup, so they choose only versions with weight > 0 and split alike.
 * Lock-free, no allocation. Returns 0, or MG_EINVAL with `err` filled (it may be NULL) and
 * *out untouched. Thread: any.
 */
int mg_policy_pick(const mg_policy_t *p, const mg_policy_input_t *in, mg_policy_decision_t *out,
                   mg_err_t *err);

/**
 * Maps a key to its point in the 2^32 hash space (XXH3_64bits, seed 0, high 32 bits). The
 * value is part of the routing contract: every instance of a fleet must agree on it.
 */
uint32_t mg_policy_sticky_hash(const char *key, size_t len);

/**
 * Returns the version whose range holds hash point `h` under `p` (weights > 0 only), by a
 * branch-free bisection over the bounds. A zero-filled policy gives 0. Thread: any.
 */
int64_t mg_policy_lookup(const mg_policy_t *p, uint32_t h);

#endif
