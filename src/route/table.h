/*
 * The route table: operators' own URLs mapped to models. Each rule matches the host
 * (exact or "*.suffix"), the path (exact, prefix, or a PCRE2 regex compiled with JIT) and
 * request headers (exact value, regex, or present), and names a model, the API its body
 * speaks, and optionally a traffic policy that overrides the model's own.
 *
 * Matching is first match by priority: the lowest "priority" number wins, equal priorities
 * keep file order. It is indexed, not scanned: host hash -> path-prefix trie with per-node
 * rule lists (ranks ascending); regex paths are tried only where they can match (under
 * their literal prefix, when they have one).
 *
 * JSON form (GET/PUT /v2/admin/routes):
 *   {"routes": [
 *     {"name": "scores-eu",                       required, unique, 1..128 bytes, no control chars
 *      "priority": 10,                            optional, default 1000, integer 0..1000000
 *      "match": {"host": "api.example.com" | "*.example.com",        optional (any host)
 *                "path": {"exact": "/x"} | {"prefix": "/api/"} | {"regex": "^/m/[0-9]+$"},
 *                                                 required
 *                "headers": [{"name": "X-Tenant", "exact": "eu"}
 *                            | {"name": "X-Tenant", "regex": "^e"}
 *                            | {"name": "X-Debug", "present": true}]},
 *                                                 optional, all must match
 *      "model": "digits",                         required, 1..255 bytes
 *      "api": "infer" | "predict",                optional, default "infer": the body's protocol
 *      "traffic": { ...route/policy.h... }}       optional override of the model's policy
 *   ]}
 *
 * Match semantics:
 *   host     case-insensitive. "api.example.com" (letters, digits, '-', '_' in dot-separated
 *            labels, or a bracketed IPv6 literal) matches that host; "*.example.com" matches any
 *            host ending in ".example.com" with at least one character before it, at any depth
 *            ("a.b.example.com" too, "example.com" not); "*" is the same as no host.
 *   path     case-sensitive bytes. exact and prefix start with '/'; a prefix is a byte prefix,
 *            not a segment one ("/api" also matches "/apix"). A regex is PCRE2 (8-bit, no
 *            flags), unanchored unless the pattern anchors itself; a regex match that exceeds
 *            PCRE2's backtracking limit (100,000 steps) counts as no match.
 *   headers  names case-insensitive, each name at most once per rule, at most 16 per rule;
 *            values case-sensitive; "exact" compares the whole value, "regex" searches it,
 *            "present": true needs the header, "present": false needs it absent.
 * Strings (paths, regexes, header values) are at most 4096 bytes.
 */
#ifndef MG_ROUTE_TABLE_H
#define MG_ROUTE_TABLE_H

#include "core/buf.h"
#include "core/meta.h"
#include "core/err.h"
#include "route/policy.h"

#include <stdbool.h>
#include <stddef.h>

#define MG_ROUTE_MAX_RULES 100000

typedef enum { MG_ROUTE_API_INFER = 0, MG_ROUTE_API_PREDICT } mg_route_api_t;

/** A matched rule, as the request path sees it. Owned by the table. */
typedef struct mg_route_rule {
    const char *name;
    int priority;
    const char *model;
    mg_route_api_t api;
    const mg_policy_t *traffic; /* NULL: the model's own policy */
} mg_route_rule_t;

typedef struct mg_route_table mg_route_table_t;

/**
 * The parts of a request the table matches on. `host` is without port (compared as given,
 * case-insensitively; a trailing dot is not removed). `headers.get` may be NULL: every header is
 * then absent.
 */
typedef struct mg_route_request {
    mg_str_t host;
    mg_str_t path;
    mg_meta_t headers; /* called once per header condition evaluated */
} mg_route_request_t;

/**
 * Parses, validates and indexes a route table. The whole table is rejected on the first
 * problem in file order, naming the rule ("route 'scores-eu': ..." or, before its name is
 * known, "route #3: ..." counting from 1) and why: missing/duplicate name, unknown field,
 * bad host pattern, no or several path kinds, a regex that does not compile (with PCRE2's
 * message and offset), a header match without exactly one of exact/regex/present, bad
 * priority, missing model, bad api, an invalid traffic override ("route 'x': traffic: "
 * and the policy's message), a duplicate rule (same host, path and headers as an earlier
 * rule, in any header order: "route 'b': same match as route 'a'"), or more than
 * MG_ROUTE_MAX_RULES rules. Regexes are JIT-compiled here (interpreted when JIT is not
 * available). Returns 0, MG_EINVAL or MG_ENOMEM; *out untouched on failure. Thread: any
 * (control path).
 */
int mg_route_table_parse(const char *json, size_t len, mg_route_table_t **out, mg_err_t *err);

/** Frees a table. Accepts NULL. No reader may still use it (free after an RCU grace period). */
void mg_route_table_free(mg_route_table_t *t);

/** Number of rules. */
size_t mg_route_table_count(const mg_route_table_t *t);

/** The i-th rule in match order (ascending priority, then file order); NULL past the end. */
const mg_route_rule_t *mg_route_table_rule(const mg_route_table_t *t, size_t i);

/**
 * Returns the first rule (by priority) that matches `req`, or NULL. Uses the index: a few
 * hash probes and trie walks, then only the candidates ranked before the first rule that
 * needs nothing more are checked; never scans the table. Never allocates, except a thread's
 * regex match data on its first use (freed when the thread exits; without it regexes do not
 * match). Thread: any; the table is read-only.
 */
const mg_route_rule_t *mg_route_table_match(const mg_route_table_t *t,
                                            const mg_route_request_t *req);

/** The same answer by testing every rule in order: the baseline for tests and benchmarks. */
const mg_route_rule_t *mg_route_table_match_linear(const mg_route_table_t *t,
                                                   const mg_route_request_t *req);

/**
 * Appends the table as JSON in the form it is parsed from, canonically: rules in match order,
 * one per line, every field explicit (priority, api), hosts and header names lower-case,
 * header matches sorted by name, "*" host omitted. Parsing it gives an equivalent table with
 * the same rules in the same order. Returns 0 or MG_ENOMEM.
 */
int mg_route_table_to_json(const mg_route_table_t *t, mg_buf_t *out);

#endif
