/*
 * Traffic policies (route/policy.h) and the weighted ring baseline (support/ring.h): parsing
 * and every validation error, the canonical JSON round trip, the routing precedence, and the
 * statistical properties of the sticky layout over 1,000,000 keys: shares, stickiness, which
 * keys move when weights change, and the same numbers for the ring, printed as a table.
 */
#include "core/buf.h"
#include "core/err.h"
#include "route/policy.h"
#include "support/ring.h"
#include "support/support.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define NKEYS     1000000
#define TOL_PP    0.5 /* allowed deviation, in percentage points */
#define KEY_SEED  UINT64_C(0x6d6f64656c676174)
#define DRAW_SEED UINT64_C(0x5eed5eed5eed5eed)

/* The keys "user-<n>" with n from splitmix64, their lengths and sticky hashes; built once. */
static char g_key[NKEYS][32];
static uint8_t g_key_len[NKEYS];
static uint32_t g_hash[NKEYS];

/* The i-th output of splitmix64 seeded with `seed`: stateless, so any index is reproducible. */
static uint64_t splitmix64_at(uint64_t seed, uint64_t i)
{
    uint64_t z = seed + (i + 1) * UINT64_C(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static int setup_keys(void **state)
{
    (void)state;
    for (size_t i = 0; i < NKEYS; i++) {
        int n = snprintf(g_key[i], sizeof(g_key[i]), "user-%llu",
                         (unsigned long long)splitmix64_at(KEY_SEED, i));
        g_key_len[i] = (uint8_t)n;
        g_hash[i] = mg_policy_sticky_hash(g_key[i], (size_t)n);
    }
    return 0;
}

static void parse_ok(const char *json, mg_policy_t *p)
{
    mg_err_t err = {0};
    int rc = mg_policy_parse(json, strlen(json), p, &err);
    if (rc != 0)
        fail_msg("%s: unexpected error %d: %s", json, rc, err.msg);
}

/* Parses a policy with versions 1..n, weights w[version - 1] and the given stable version. */
static void make_policy(mg_policy_t *p, const uint32_t *w, int n, int64_t stable)
{
    char json[512];
    size_t off = (size_t)snprintf(json, sizeof(json), "{\"weights\":{");
    for (int i = 0; i < n; i++)
        off += (size_t)snprintf(json + off, sizeof(json) - off, "%s\"%d\":%u", i > 0 ? "," : "",
                                i + 1, w[i]);
    snprintf(json + off, sizeof(json) - off, "},\"stable\":%lld}", (long long)stable);
    parse_ok(json, p);
}

/* Expects MG_EINVAL, a message containing `want`, and *out untouched. */
static void expect_error(const char *json, const char *want)
{
    mg_policy_t p, before;
    memset(&p, 0xa5, sizeof(p));
    memcpy(&before, &p, sizeof(p));
    mg_err_t err = {0};
    int rc = mg_policy_parse(json, strlen(json), &p, &err);
    if (rc != MG_EINVAL || err.code != MG_EINVAL || strstr(err.msg, want) == NULL)
        fail_msg("%s: got %d '%s', want MG_EINVAL with '%s'", json, rc, err.msg, want);
    assert_memory_equal(&p, &before, sizeof(p));
}

/* ---- parsing ---- */

static void test_parse_full_policy(void **state)
{
    (void)state;
    mg_policy_t p;
    parse_ok("{\"weights\": {\"2\": 10, \"1\": 90, \"3\": 0}, \"stable\": \"1\","
             " \"sticky\": {\"header\": \"X-User-ID\"},"
             " \"ab_groups\": {\"v2-exp\": \"2\", \"control\": 1},"
             " \"stages\": {\"test\": 2, \"gray\": \"2\", \"prod\": \"1\"}}",
             &p);
    assert_int_equal(p.nversions, 3);
    assert_int_equal(p.versions[0], 1);
    assert_int_equal(p.versions[1], 2);
    assert_int_equal(p.versions[2], 3);
    assert_int_equal(p.weights[0], 90);
    assert_int_equal(p.weights[1], 10);
    assert_int_equal(p.weights[2], 0);
    assert_int_equal(p.stable, 1);
    assert_int_equal(p.sticky_source, MG_POLICY_STICKY_HEADER);
    assert_string_equal(p.sticky_name, "x-user-id");
    /* Rules are sorted by value. */
    assert_int_equal(p.nab_groups, 2);
    assert_string_equal(p.ab_groups[0].value, "control");
    assert_int_equal(p.ab_groups[0].version, 1);
    assert_string_equal(p.ab_groups[1].value, "v2-exp");
    assert_int_equal(p.ab_groups[1].version, 2);
    assert_int_equal(p.nstages, 3);
    assert_string_equal(p.stages[0].value, "gray");
    assert_string_equal(p.stages[1].value, "prod");
    assert_string_equal(p.stages[2].value, "test");
    assert_int_equal(p.stages[2].version, 2);
    /* Layout: non-stable ascending (2, 3), stable last; 3 has weight 0, an empty range. */
    assert_int_equal(p.layout[0], 2);
    assert_int_equal(p.layout[1], 3);
    assert_int_equal(p.layout[2], 1);
    assert_int_equal(p.bound[0], (UINT64_C(10) << 32) / 100);
    assert_int_equal(p.bound[1], p.bound[0]);
    assert_int_equal(p.bound[2], UINT64_C(1) << 32);
}

static void test_parse_defaults_and_sticky(void **state)
{
    (void)state;
    mg_policy_t p;
    /* One version: "stable" may be left out; the default sticky key is header x-user-id. */
    parse_ok("{\"weights\": {\"7\": 1}}", &p);
    assert_int_equal(p.nversions, 1);
    assert_int_equal(p.stable, 7);
    assert_int_equal(p.sticky_source, MG_POLICY_STICKY_HEADER);
    assert_string_equal(p.sticky_name, "x-user-id");
    assert_int_equal(p.nab_groups, 0);
    assert_int_equal(p.nstages, 0);
    assert_int_equal(p.layout[0], 7);
    assert_int_equal(p.bound[0], UINT64_C(1) << 32);

    parse_ok("{\"weights\": {\"1\": 5, \"2\": 5}, \"stable\": 2,"
             " \"sticky\": {\"parameter\": \"User_ID\"}}",
             &p);
    assert_int_equal(p.sticky_source, MG_POLICY_STICKY_PARAMETER);
    assert_string_equal(p.sticky_name, "User_ID"); /* parameters keep their case */
    assert_int_equal(p.layout[0], 1);
    assert_int_equal(p.layout[1], 2);
    assert_int_equal(p.bound[0], UINT64_C(1) << 31);

    parse_ok("{\"weights\": {\"1\": 5, \"2\": 5}, \"stable\": 2,"
             " \"sticky\": {\"header\": \"X-Tenant.Id~1\"}}",
             &p);
    assert_string_equal(p.sticky_name, "x-tenant.id~1");

    /* Leading zeros are the same version; 63-byte names are the longest allowed. */
    parse_ok("{\"weights\": {\"007\": 1, \"8\": 0}, \"stable\": \"07\"}", &p);
    assert_int_equal(p.stable, 7);
    parse_ok("{\"weights\": {\"1\": 1}, \"stages\": "
             "{\"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk\": 1}}",
             &p);
    assert_int_equal(strlen(p.stages[0].value), 63);
    /* The largest weights. */
    parse_ok("{\"weights\": {\"1\": 1000000, \"2\": 1000000, \"3\": 1}, \"stable\": 1}", &p);
    assert_int_equal(p.bound[2], UINT64_C(1) << 32);
}

static void test_parse_errors_name_the_field(void **state)
{
    (void)state;
    expect_error("{\"weights\": {\"1\": 90, \"2\": 10}, \"stable\": \"1\", \"weight\": 1}",
                 "unknown field 'weight'");
    expect_error("{\"weights\": {\"1\": 90, \"2\": -1}, \"stable\": 1}",
                 "'weights.2' must be an integer from 0 to 1000000");
    expect_error("{\"weights\": {\"1\": 90, \"2\": 10.5}, \"stable\": 1}",
                 "'weights.2' must be an integer from 0 to 1000000");
    expect_error("{\"weights\": {\"1\": 90, \"2\": 10.0}, \"stable\": 1}",
                 "'weights.2' must be an integer from 0 to 1000000");
    expect_error("{\"weights\": {\"1\": 90, \"2\": 1e20}, \"stable\": 1}",
                 "'weights.2' must be an integer from 0 to 1000000");
    expect_error("{\"weights\": {\"1\": 90, \"2\": 1000001}, \"stable\": 1}",
                 "'weights.2' must be an integer from 0 to 1000000");
    expect_error("{\"weights\": {\"1\": 90, \"2\": \"10\"}, \"stable\": 1}",
                 "'weights.2' must be an integer from 0 to 1000000");
    expect_error("{\"weights\": {\"1\": 90, \"2\": true}, \"stable\": 1}",
                 "'weights.2' must be an integer from 0 to 1000000");
    expect_error("{\"weights\": {\"1\": 90, \"2\": null}, \"stable\": 1}",
                 "'weights.2' must be an integer from 0 to 1000000");
    /* jansson refuses NaN and integers beyond 64 bits at the JSON level. */
    expect_error("{\"weights\": {\"1\": 90, \"2\": NaN}, \"stable\": 1}", "line 1 column");
    expect_error("{\"weights\": {\"1\": 90, \"2\": 99999999999999999999}, \"stable\": 1}",
                 "line 1 column");
    expect_error("{\"weights\": {\"1\": 0, \"2\": 0}, \"stable\": 1}", "weights are all zero");
    expect_error("{\"weights\": {\"abc\": 1}}", "unknown version 'abc' in 'weights'");
    expect_error("{\"weights\": {\"0\": 1}}", "unknown version '0' in 'weights'");
    expect_error("{\"weights\": {\"-1\": 1}}", "unknown version '-1' in 'weights'");
    expect_error("{\"weights\": {\"+1\": 1}}", "unknown version '+1' in 'weights'");
    expect_error("{\"weights\": {\" 1\": 1}}", "unknown version ' 1' in 'weights'");
    expect_error("{\"weights\": {\"1.5\": 1}}", "unknown version '1.5' in 'weights'");
    expect_error("{\"weights\": {\"9223372036854775808\": 1}}",
                 "unknown version '9223372036854775808' in 'weights'");
    expect_error("{\"weights\": {\"1\": 1, \"01\": 2}, \"stable\": 1}",
                 "version 1 appears twice in 'weights'");
    expect_error("{\"weights\": {\"1\": 1, \"1\": 2}, \"stable\": 1}", "duplicate object key");
    expect_error("{\"weights\": {\"1\": 90, \"2\": 10}, \"stable\": 3}",
                 "'stable' version 3 is not in 'weights'");
    expect_error("{\"weights\": {\"1\": 90, \"2\": 10}, \"stable\": \"3\"}",
                 "'stable' version 3 is not in 'weights'");
    expect_error("{\"weights\": {\"1\": 90, \"2\": 10}}", "'stable' is required");
    expect_error("{\"weights\": {\"1\": 90, \"2\": 10}, \"stable\": \"x\"}",
                 "'stable' must be a positive version number");
    expect_error("{\"weights\": {\"1\": 90, \"2\": 10}, \"stable\": 0}",
                 "'stable' must be a positive version number");
    expect_error("{\"weights\": {\"1\": 90, \"2\": 10}, \"stable\": 1.0}",
                 "'stable' must be a positive version number");
    expect_error("{\"stable\": 1}", "'weights' is required");
    expect_error("{\"weights\": {}}", "'weights' must be an object of 1 to 16");
    expect_error("{\"weights\": [1, 2]}", "'weights' must be an object of 1 to 16");
    expect_error(
        "{\"weights\": "
        "{\"1\":1,\"2\":1,\"3\":1,\"4\":1,\"5\":1,\"6\":1,\"7\":1,\"8\":1,\"9\":1,\"10\":1,"
        "\"11\":1,\"12\":1,\"13\":1,\"14\":1,\"15\":1,\"16\":1,\"17\":1}, \"stable\": 1}",
        "'weights' must be an object of 1 to 16");
    /* Rules. */
    expect_error("{\"weights\": {\"1\": 1}, \"ab_groups\": {\"\": 1}}",
                 "'ab_groups': a header value must be 1 to 63 bytes");
    expect_error("{\"weights\": {\"1\": 1}, \"stages\": "
                 "{\"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl\": 1}}",
                 "'stages': a header value must be 1 to 63 bytes");
    expect_error("{\"weights\": {\"1\": 1}, \"stages\": {\"gray\": \"x\"}}",
                 "'stages.gray' must be a positive version number");
    expect_error("{\"weights\": {\"1\": 1}, \"stages\": {\"gray\": -2}}",
                 "'stages.gray' must be a positive version number");
    expect_error("{\"weights\": {\"1\": 1}, \"ab_groups\": {\"a\": 2.0}}",
                 "'ab_groups.a' must be a positive version number");
    expect_error("{\"weights\": {\"1\": 1}, \"stages\": [\"gray\"]}", "'stages' must be an object");
    expect_error("{\"weights\": {\"1\": 1}, \"stages\": {\"gray\": 1, \"gray\": 2}}",
                 "duplicate object key");
    char many[2048];
    size_t off = (size_t)snprintf(many, sizeof(many), "{\"weights\": {\"1\": 1}, \"ab_groups\": {");
    for (int i = 0; i < MG_POLICY_MAX_RULES + 1; i++)
        off +=
            (size_t)snprintf(many + off, sizeof(many) - off, "%s\"g%d\": 1", i > 0 ? ", " : "", i);
    snprintf(many + off, sizeof(many) - off, "}}");
    expect_error(many, "'ab_groups' has 33 rules; at most 32");
    /* Sticky. */
    expect_error("{\"weights\": {\"1\": 1}, \"sticky\": {\"cookie\": \"sid\"}}",
                 "unknown field 'sticky.cookie'");
    expect_error("{\"weights\": {\"1\": 1}, \"sticky\": {\"header\": \"\"}}",
                 "'sticky.header' must be a name of 1 to 63 bytes");
    expect_error("{\"weights\": {\"1\": 1}, \"sticky\": {\"parameter\": 7}}",
                 "'sticky.parameter' must be a name of 1 to 63 bytes");
    expect_error("{\"weights\": {\"1\": 1}, \"sticky\": {\"header\": \"x user\"}}",
                 "is not a valid header name");
    expect_error("{\"weights\": {\"1\": 1}, \"sticky\": {\"header\": \"x:user\"}}",
                 "is not a valid header name");
    expect_error("{\"weights\": {\"1\": 1}, \"sticky\": {\"header\": \"a\", \"parameter\": \"b\"}}",
                 "'sticky' must be {\"header\": name} or {\"parameter\": name}");
    expect_error("{\"weights\": {\"1\": 1}, \"sticky\": {}}",
                 "'sticky' must be {\"header\": name}");
    expect_error("{\"weights\": {\"1\": 1}, \"sticky\": \"x-user-id\"}",
                 "'sticky' must be {\"header\": name}");
    /* Not a policy at all. */
    expect_error("[1]", "a traffic policy must be a JSON object");
    expect_error("{\"weights\": ", "line 1 column");
    expect_error("", "line 1 column");
}

static void test_check_versions(void **state)
{
    (void)state;
    mg_policy_t p;
    parse_ok("{\"weights\": {\"1\": 9, \"2\": 1}, \"stable\": 1, \"ab_groups\": {\"b\": 2},"
             " \"stages\": {\"gray\": 4}}",
             &p);
    const int64_t all[] = {1, 2, 3, 4};
    mg_err_t err = {0};
    assert_int_equal(mg_policy_check_versions(&p, all, 4, &err), 0);
    const int64_t no2[] = {1, 3, 4};
    assert_int_equal(mg_policy_check_versions(&p, no2, 3, &err), MG_EINVAL);
    assert_string_equal(err.msg, "unknown version 2 in 'weights'");
    const int64_t no4[] = {1, 2, 3};
    assert_int_equal(mg_policy_check_versions(&p, no4, 3, &err), MG_EINVAL);
    assert_string_equal(err.msg, "unknown version 4 in 'stages.gray'");
    parse_ok("{\"weights\": {\"1\": 9}, \"ab_groups\": {\"b\": 2}}", &p);
    assert_int_equal(mg_policy_check_versions(&p, all, 1, &err), MG_EINVAL);
    assert_string_equal(err.msg, "unknown version 2 in 'ab_groups.b'");
    assert_int_equal(mg_policy_check_versions(&p, all, 1, NULL), MG_EINVAL);
}

static void test_to_json_round_trip(void **state)
{
    (void)state;
    static const char *const policies[] = {
        "{\"weights\": {\"1\": 90, \"2\": 10}, \"stable\": 1}",
        "{\"weights\": {\"7\": 1}}",
        "{\"weights\": {\"3\": 0, \"12\": 1000000, \"2\": 5}, \"stable\": \"3\","
        " \"sticky\": {\"parameter\": \"u\\\"id\"},"
        " \"ab_groups\": {\"control\": 3, \"a\\\"b\\\\c\": 12, \"\\u00e9t\\u00e9\": 2},"
        " \"stages\": {\"prod\": 3, \"gray\": 99}}",
        "{\"weights\": {\"1\": 1, \"2\": 1, \"3\": 1, \"4\": 1, \"5\": 1, \"6\": 1,"
        " \"7\": 1, \"8\": 1, \"9\": 1, \"10\": 1, \"11\": 1, \"12\": 1, \"13\": 1, \"14\": 1,"
        " \"15\": 1, \"9223372036854775807\": 1}, \"stable\": 9,"
        " \"sticky\": {\"header\": \"X-Session\"}}",
    };
    for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
        mg_policy_t a, b;
        parse_ok(policies[i], &a);
        mg_buf_t j1 = {0}, j2 = {0};
        assert_int_equal(mg_policy_to_json(&a, &j1), 0);
        assert_int_equal(mg_buf_append(&j1, "", 1), 0);
        parse_ok(j1.data, &b);
        assert_memory_equal(&a, &b, sizeof(a));
        /* Canonical: printing the reparsed policy gives the same text. */
        assert_int_equal(mg_policy_to_json(&b, &j2), 0);
        assert_int_equal(mg_buf_append(&j2, "", 1), 0);
        assert_string_equal(j1.data, j2.data);
        mg_buf_free(&j1);
        mg_buf_free(&j2);
    }
    /* The exact canonical form, appended after what the buffer held. */
    mg_policy_t p;
    parse_ok(policies[0], &p);
    mg_buf_t b = {0};
    assert_int_equal(mg_buf_puts(&b, "x="), 0);
    assert_int_equal(mg_policy_to_json(&p, &b), 0);
    assert_int_equal(mg_buf_append(&b, "", 1), 0);
    assert_string_equal(
        b.data,
        "x={\"weights\":{\"1\":90,\"2\":10},\"stable\":\"1\",\"sticky\":{\"header\":\"x-user-id\"},"
        "\"ab_groups\":{},\"stages\":{}}");
    mg_buf_free(&b);
}

static void test_reason_names(void **state)
{
    (void)state;
    static const char *const want[] = {"url",    "header",  "ab-group", "stage",      "sticky",
                                       "weight", "default", "fallback", "kill-switch"};
    for (int r = 0; r < MG_POLICY_REASON_COUNT_; r++)
        assert_string_equal(mg_policy_reason_name((mg_policy_reason_t)r), want[r]);
}

/* ---- the decision ---- */

static void test_pick_precedence_every_combination(void **state)
{
    (void)state;
    mg_policy_t p;
    parse_ok("{\"weights\": {\"1\": 90, \"2\": 10}, \"stable\": 1,"
             " \"ab_groups\": {\"exp\": 4, \"control\": 3},"
             " \"stages\": {\"gray\": 5, \"prod\": 6}}",
             &p);
    static const char *const urls[] = {NULL, "7"};
    static const char *const headers[] = {NULL, "8"};
    static const char *const groups[] = {NULL, "exp", "nope"};
    static const char *const stages[] = {NULL, "gray", "nope"};
    static const char *const stickies[] = {NULL, "user-42"};
    /* High halves in the canary's range (below 10% of 2^32) and in the stable one's. */
    static const uint64_t randoms[] = {UINT64_C(0x0100000000000000), UINT64_C(0xf000000000000000)};
    /* Every combination: index c decodes into one choice per input. */
    for (int c = 0; c < 2 * 2 * 2 * 3 * 3 * 2 * 2; c++) {
        int pol = c % 2, u = c / 2 % 2, h = c / 4 % 2, g = c / 8 % 3, s = c / 24 % 3;
        int k = c / 72 % 2, r = c / 144 % 2;
        const mg_policy_t *pp = pol == 0 ? &p : NULL;
        mg_policy_input_t in = {mg_test_str(urls[u]),     mg_test_str(headers[h]),
                                mg_test_str(groups[g]),   mg_test_str(stages[s]),
                                mg_test_str(stickies[k]), randoms[r]};
        /* The precedence, spelled out. */
        int64_t v;
        mg_policy_reason_t why;
        int rule = -1;
        if (urls[u] != NULL) {
            v = 7, why = MG_POLICY_REASON_URL;
        } else if (headers[h] != NULL) {
            v = 8, why = MG_POLICY_REASON_HEADER;
        } else if (pp == NULL) {
            v = 0, why = MG_POLICY_REASON_DEFAULT;
        } else if (g == 1) {
            v = 4, why = MG_POLICY_REASON_AB_GROUP, rule = 1; /* sorted: control, exp */
        } else if (s == 1) {
            v = 5, why = MG_POLICY_REASON_STAGE, rule = 0; /* sorted: gray, prod */
        } else if (stickies[k] != NULL) {
            v = mg_policy_lookup(&p, mg_policy_sticky_hash("user-42", 7));
            why = MG_POLICY_REASON_STICKY;
        } else {
            v = r == 0 ? 2 : 1;
            why = MG_POLICY_REASON_WEIGHT;
        }
        mg_policy_decision_t d = {-1, MG_POLICY_REASON_COUNT_, -2};
        mg_err_t err = {0};
        assert_int_equal(mg_policy_pick(pp, &in, &d, &err), 0);
        if (d.version != v || d.reason != why || d.rule != rule)
            fail_msg("combination %d (policy=%d url=%d header=%d group=%d stage=%d sticky=%d "
                     "random=%d): got %lld/%s/%d, want %lld/%s/%d",
                     c, pol, u, h, g, s, k, r, (long long)d.version,
                     mg_policy_reason_name(d.reason), d.rule, (long long)v,
                     mg_policy_reason_name(why), rule);
    }

    /* The other rule of each kind reports its own index. */
    mg_policy_decision_t d;
    mg_policy_input_t in = {.ab_group = mg_test_str("control")};
    assert_int_equal(mg_policy_pick(&p, &in, &d, NULL), 0);
    assert_int_equal(d.version, 3);
    assert_int_equal(d.rule, 0);
    in = (mg_policy_input_t){.stage = mg_test_str("prod")};
    assert_int_equal(mg_policy_pick(&p, &in, &d, NULL), 0);
    assert_int_equal(d.version, 6);
    assert_int_equal(d.rule, 1);
    /* Rule values match exactly: case, prefixes, and embedded NULs do not. */
    static const mg_str_t near[] = {
        {"Gray", 4}, {"gra", 3}, {"grayy", 5}, {"gray\0", 5}, {"gray\0x", 6}};
    for (size_t i = 0; i < sizeof(near) / sizeof(near[0]); i++) {
        in = (mg_policy_input_t){.stage = near[i], .random = UINT64_C(0xf000000000000000)};
        assert_int_equal(mg_policy_pick(&p, &in, &d, NULL), 0);
        assert_int_equal(d.reason, MG_POLICY_REASON_WEIGHT);
    }
    /* Leading zeros in explicit versions are accepted, like in the policy. */
    in = (mg_policy_input_t){.header_version = mg_test_str("0012")};
    assert_int_equal(mg_policy_pick(&p, &in, &d, NULL), 0);
    assert_int_equal(d.version, 12);
}

static void test_pick_rejects_bad_explicit_versions(void **state)
{
    (void)state;
    mg_policy_t p;
    parse_ok("{\"weights\": {\"1\": 90, \"2\": 10}, \"stable\": 1}", &p);
    static const char *const bad[] = {"abc",
                                      "0",
                                      "-1",
                                      "+1",
                                      "1.5",
                                      " 1",
                                      "1 ",
                                      "0x10",
                                      "9223372036854775808",
                                      "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        for (int pol = 0; pol < 2; pol++) {
            mg_policy_decision_t d = {-1, MG_POLICY_REASON_COUNT_, -2}, untouched = d;
            mg_err_t err = {0};
            char want[128];
            mg_policy_input_t in = {.header_version = mg_test_str(bad[i])};
            assert_int_equal(mg_policy_pick(pol ? &p : NULL, &in, &d, &err), MG_EINVAL);
            snprintf(want, sizeof(want), "X-Model-Version '%s' is not a version number", bad[i]);
            assert_string_equal(err.msg, want);
            assert_memory_equal(&d, &untouched, sizeof(d));
            in = (mg_policy_input_t){.url_version = mg_test_str(bad[i]),
                                     .header_version = mg_test_str("2")};
            assert_int_equal(mg_policy_pick(pol ? &p : NULL, &in, &d, &err), MG_EINVAL);
            snprintf(want, sizeof(want), "URL version '%s' is not a version number", bad[i]);
            assert_string_equal(err.msg, want);
        }
    }
    /* A valid URL version decides before a bad header is even looked at. */
    mg_policy_decision_t d;
    mg_policy_input_t in = {.url_version = mg_test_str("9223372036854775807"),
                            .header_version = mg_test_str("abc")};
    assert_int_equal(mg_policy_pick(&p, &in, &d, NULL), 0);
    assert_int_equal(d.version, INT64_MAX);
    assert_int_equal(d.reason, MG_POLICY_REASON_URL);
    /* Quoted values are cut and made printable. */
    char longv[200];
    memset(longv, 'x', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    longv[3] = '\n';
    mg_err_t err = {0};
    in = (mg_policy_input_t){.header_version = mg_test_str(longv)};
    assert_int_equal(mg_policy_pick(&p, &in, &d, &err), MG_EINVAL);
    assert_non_null(strstr(err.msg, "'xxx?xxxx"));
    assert_non_null(strstr(err.msg, "x...' is not a version number"));
}

static void test_lookup_edges_and_zero_weights(void **state)
{
    (void)state;
    mg_policy_t p;
    /* Stable with weight 0: everything goes to the canaries that have weight. */
    parse_ok("{\"weights\": {\"1\": 0, \"2\": 50, \"3\": 0, \"4\": 50}, \"stable\": 1}", &p);
    assert_int_equal(p.layout[0], 2);
    assert_int_equal(p.layout[1], 3);
    assert_int_equal(p.layout[2], 4);
    assert_int_equal(p.layout[3], 1);
    assert_int_equal(p.bound[0], UINT64_C(1) << 31);
    assert_int_equal(p.bound[1], UINT64_C(1) << 31);
    assert_int_equal(p.bound[2], UINT64_C(1) << 32); /* the last range with weight ends at 2^32 */
    assert_int_equal(p.bound[3], UINT64_C(1) << 32);
    assert_int_equal(mg_policy_lookup(&p, 0), 2);
    assert_int_equal(mg_policy_lookup(&p, 0x7fffffffu), 2);
    assert_int_equal(mg_policy_lookup(&p, 0x80000000u), 4);
    assert_int_equal(mg_policy_lookup(&p, 0xffffffffu), 4);
    /* Odd totals: ranges are floor(cumulative * 2^32 / total), within one point of exact. */
    static const uint32_t w[] = {1, 999999, 3, 7, 1000000};
    make_policy(&p, w, 5, 3);
    uint64_t total = 1 + 999999 + 3 + 7 + 1000000, prev = 0;
    for (int i = 0; i < 5; i++) {
        uint32_t wi = w[p.layout[i] - 1];
        double exact = (double)wi * 4294967296.0 / (double)total;
        assert_true(fabs((double)(p.bound[i] - prev) - exact) <= 1.0);
        if (p.bound[i] > prev) {
            assert_int_equal(mg_policy_lookup(&p, (uint32_t)prev), p.layout[i]);
            assert_int_equal(mg_policy_lookup(&p, (uint32_t)(p.bound[i] - 1)), p.layout[i]);
        }
        prev = p.bound[i];
    }
    assert_int_equal(prev, UINT64_C(1) << 32);
    /* The hash is xxHash3-64's high half: pinned, since every instance of a fleet must agree. */
    assert_int_equal(mg_policy_sticky_hash("", 0), 0x2d068005u);
}

/* ---- statistics over 1,000,000 keys ---- */

static double share_error_pp(const uint64_t *count, uint64_t n, const uint32_t *w, int nv)
{
    uint64_t total = 0;
    for (int i = 0; i < nv; i++)
        total += w[i];
    double worst = 0;
    for (int i = 0; i < nv; i++) {
        double e = fabs(100.0 * (double)count[i + 1] / (double)n - 100.0 * w[i] / (double)total);
        if (e > worst)
            worst = e;
    }
    return worst;
}

static void test_distribution_sticky_and_weighted(void **state)
{
    (void)state;
    static const struct {
        int n;
        uint32_t w[5]; /* version 1 (stable) first */
    } sets[] = {
        {2, {90, 10}}, {2, {50, 50}}, {2, {1, 99}}, {3, {70, 20, 10}}, {5, {40, 25, 15, 12, 8}}};
    for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
        mg_policy_t p;
        make_policy(&p, sets[s].w, sets[s].n, 1);
        uint64_t sticky[MG_POLICY_MAX_VERSIONS + 1] = {0},
                                                 weighted[MG_POLICY_MAX_VERSIONS + 1] = {0};
        for (size_t i = 0; i < NKEYS; i++) {
            mg_policy_decision_t d;
            mg_policy_input_t in = {.sticky_key = {g_key[i], g_key_len[i]},
                                    .random = splitmix64_at(DRAW_SEED, i)};
            assert_int_equal(mg_policy_pick(&p, &in, &d, NULL), 0);
            assert_true(d.reason == MG_POLICY_REASON_STICKY && d.version >= 1 &&
                        d.version <= sets[s].n);
            sticky[d.version]++;
            in.sticky_key = (mg_str_t){NULL, 0};
            assert_int_equal(mg_policy_pick(&p, &in, &d, NULL), 0);
            assert_true(d.reason == MG_POLICY_REASON_WEIGHT && d.version >= 1 &&
                        d.version <= sets[s].n);
            weighted[d.version]++;
        }
        double es = share_error_pp(sticky, NKEYS, sets[s].w, sets[s].n);
        double ew = share_error_pp(weighted, NKEYS, sets[s].w, sets[s].n);
        print_message("distribution set %zu (%d versions): max share error sticky %.3f pp, "
                      "weighted %.3f pp\n",
                      s, sets[s].n, es, ew);
        assert_true(es < TOL_PP);
        assert_true(ew < TOL_PP);
    }
}

static void test_stickiness(void **state)
{
    (void)state;
    static const uint32_t w[] = {40, 25, 15, 12, 8};
    mg_policy_t p, copy;
    make_policy(&p, w, 5, 1);
    memcpy(&copy, &p, sizeof(p));
    for (size_t i = 0; i < 100000; i++) {
        mg_policy_decision_t a, b, c;
        mg_policy_input_t in = {.sticky_key = {g_key[i], g_key_len[i]},
                                .random = splitmix64_at(DRAW_SEED, i)};
        assert_int_equal(mg_policy_pick(&p, &in, &a, NULL), 0);
        in.random = ~in.random; /* the draw plays no part in a sticky pick */
        assert_int_equal(mg_policy_pick(&p, &in, &b, NULL), 0);
        assert_int_equal(mg_policy_pick(&copy, &in, &c, NULL), 0);
        assert_int_equal(a.version, b.version);
        assert_int_equal(a.version, c.version);
        assert_int_equal(a.version, mg_policy_lookup(&p, g_hash[i]));
    }
}

/* Versions of every key under `p`, into out[NKEYS]. */
static void assign(const mg_policy_t *p, uint8_t *out)
{
    for (size_t i = 0; i < NKEYS; i++)
        out[i] = (uint8_t)mg_policy_lookup(p, g_hash[i]);
}

static uint8_t g_before[NKEYS], g_after[NKEYS];

static void test_canary_raise_moves_only_stable_to_canary(void **state)
{
    (void)state;
    /* Two versions, total fixed at 100: canary w -> w' takes exactly (w'-w)% from stable. */
    static const uint32_t starts[] = {0, 1, 5, 10, 25, 50};
    int pairs = 0;
    for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
        mg_policy_t p;
        uint32_t w[2] = {100 - starts[s], starts[s]};
        make_policy(&p, w, 2, 1);
        assign(&p, g_before);
        for (uint32_t c = starts[s] + 5; c <= 100; c += 5) {
            uint32_t w2[2] = {100 - c, c};
            make_policy(&p, w2, 2, 1);
            uint64_t moved = 0;
            for (size_t i = 0; i < NKEYS; i++) {
                uint8_t a = g_before[i], b = (uint8_t)mg_policy_lookup(&p, g_hash[i]);
                if (a != b) {
                    if (a != 1 || b != 2)
                        fail_msg("%u -> %u: key %zu moved %u -> %u", starts[s], c, i, a, b);
                    moved++;
                }
            }
            double pp = 100.0 * (double)moved / NKEYS, want = (double)(c - starts[s]);
            if (fabs(pp - want) >= TOL_PP)
                fail_msg("%u -> %u: moved %.3f%%, want %.0f%%", starts[s], c, pp, want);
            pairs++;
        }
    }
    assert_int_equal(pairs, 20 + 19 + 19 + 18 + 15 + 10);

    /* The total changes (stable stays 90): still only stable -> canary. */
    static const uint32_t canary[] = {10, 20, 30, 50, 90, 1000};
    mg_policy_t p;
    uint32_t w[2] = {90, canary[0]};
    make_policy(&p, w, 2, 1);
    assign(&p, g_before);
    for (size_t k = 1; k < sizeof(canary) / sizeof(canary[0]); k++) {
        w[1] = canary[k];
        make_policy(&p, w, 2, 1);
        assign(&p, g_after);
        uint64_t moved = 0;
        for (size_t i = 0; i < NKEYS; i++) {
            if (g_before[i] != g_after[i]) {
                assert_true(g_before[i] == 1 && g_after[i] == 2);
                moved++;
            }
        }
        double want =
            100.0 * canary[k] / (90.0 + canary[k]) - 100.0 * canary[k - 1] / (90.0 + canary[k - 1]);
        assert_true(fabs(100.0 * (double)moved / NKEYS - want) < TOL_PP);
        memcpy(g_before, g_after, sizeof(g_before));
    }
}

static void test_newest_canary_takes_only_from_stable(void **state)
{
    (void)state;
    /* Stable 1, old canary 2 at 10%, newest canary 3 raised: 2's keys never change. */
    static const uint32_t starts[] = {0, 5, 10, 30};
    for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
        mg_policy_t p;
        uint32_t w[3] = {90 - starts[s], 10, starts[s]};
        make_policy(&p, w, 3, 1);
        assign(&p, g_before);
        for (uint32_t c = starts[s] + 5; c <= 90; c += 15) {
            uint32_t w2[3] = {90 - c, 10, c};
            make_policy(&p, w2, 3, 1);
            assign(&p, g_after);
            uint64_t moved = 0;
            for (size_t i = 0; i < NKEYS; i++) {
                uint8_t a = g_before[i], b = g_after[i];
                if ((a == 2) != (b == 2))
                    fail_msg("%u -> %u: key %zu of version 2 moved (%u -> %u)", starts[s], c, i, a,
                             b);
                if (a != b) {
                    assert_true(a == 1 && b == 3);
                    moved++;
                }
            }
            assert_true(fabs(100.0 * (double)moved / NKEYS - (double)(c - starts[s])) < TOL_PP);
        }
    }
}

/* ---- the default layout against the weighted ring ---- */

typedef struct change {
    const char *name;
    int n;
    uint32_t before[5], after[5]; /* version 1 (stable) first */
    bool adjacent;                /* only the stable one and the newest canary change */
} change_t;

static const change_t changes[] = {
    {"95/5 -> 90/10", 2, {95, 5}, {90, 10}, true},
    {"90/10 -> 80/20", 2, {90, 10}, {80, 20}, true},
    {"50/50 -> 40/60", 2, {50, 50}, {40, 60}, true},
    {"90/10 -> 90/20", 2, {90, 10}, {90, 20}, true},
    {"70/20/10 -> 60/20/20", 3, {70, 20, 10}, {60, 20, 20}, true},
    {"70/20/10 -> 60/30/10", 3, {70, 20, 10}, {60, 30, 10}, false},
    {"40/25/15/12/8 -> 30/25/15/12/18", 5, {40, 25, 15, 12, 8}, {30, 25, 15, 12, 18}, true},
};

typedef struct outcome {
    double err_before, err_after; /* max |share - weight share|, pp */
    double moved, ideal, wrong;   /* % of keys */
    bool only_weighted;           /* every key went to a version with weight > 0 */
} outcome_t;

typedef int64_t (*map_fn)(const void *ctx, size_t i);

static int64_t map_policy(const void *ctx, size_t i)
{
    return mg_policy_lookup(ctx, g_hash[i]);
}

static int64_t map_ring(const void *ctx, size_t i)
{
    return mg_ring_lookup(ctx, g_key[i], g_key_len[i]);
}

/* A move is "right" only from a version whose share fell to one whose share rose. */
static outcome_t measure(const change_t *c, map_fn fn, const void *before, const void *after)
{
    double sb[6] = {0}, sa[6] = {0}, tb = 0, ta = 0;
    for (int v = 0; v < c->n; v++) {
        tb += c->before[v];
        ta += c->after[v];
    }
    outcome_t o = {.only_weighted = true};
    for (int v = 0; v < c->n; v++) {
        sb[v + 1] = c->before[v] / tb;
        sa[v + 1] = c->after[v] / ta;
        if (sa[v + 1] > sb[v + 1])
            o.ideal += 100.0 * (sa[v + 1] - sb[v + 1]);
    }
    uint64_t nb[MG_POLICY_MAX_VERSIONS + 1] = {0}, na[MG_POLICY_MAX_VERSIONS + 1] = {0}, moved = 0,
                                         wrong = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        int64_t a = fn(before, i), b = fn(after, i);
        if (a < 1 || a > c->n || b < 1 || b > c->n || c->before[a - 1] == 0 ||
            c->after[b - 1] == 0) {
            o.only_weighted = false;
            continue;
        }
        nb[a]++;
        na[b]++;
        if (a != b) {
            moved++;
            if (!(sa[a] < sb[a] && sa[b] > sb[b]))
                wrong++;
        }
    }
    o.err_before = share_error_pp(nb, NKEYS, c->before, c->n);
    o.err_after = share_error_pp(na, NKEYS, c->after, c->n);
    o.moved = 100.0 * (double)moved / NKEYS;
    o.wrong = 100.0 * (double)wrong / NKEYS;
    return o;
}

static size_t ring_nodes_expected(const uint32_t *w, int n, double alpha)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (w[i] == 0)
            continue;
        double c = floor(pow(w[i], alpha));
        total += c < 1 ? 1 : (size_t)c;
    }
    return total;
}

static void test_compare_with_ring(void **state)
{
    (void)state;
    static const int64_t versions[] = {1, 2, 3, 4, 5};
    static const double alphas[] = {1.0, 1.2};
    print_message("%-32s %-12s %9s %s %8s %8s %8s\n", "weights (stable first)", "method", "vnodes",
                  "share err pp (before/after)", "moved %", "ideal %", "wrong %");
    for (size_t s = 0; s < sizeof(changes) / sizeof(changes[0]); s++) {
        const change_t *c = &changes[s];
        mg_policy_t pb, pa;
        make_policy(&pb, c->before, c->n, 1);
        make_policy(&pa, c->after, c->n, 1);
        outcome_t o = measure(c, map_policy, &pb, &pa);
        print_message("%-32s %-12s %9s %13.3f / %-11.3f %8.3f %8.3f %8.3f\n", c->name, "ranges",
                      "-", o.err_before, o.err_after, o.moved, o.ideal, o.wrong);
        /* What the layout guarantees. */
        assert_true(o.only_weighted);
        assert_true(o.err_before < TOL_PP && o.err_after < TOL_PP);
        if (c->adjacent) {
            assert_true(o.wrong == 0);
            assert_true(fabs(o.moved - o.ideal) < TOL_PP);
        } else {
            /* Raising an older canary shifts the newer one's range: its keys ripple over. */
            assert_true(o.wrong > 0);
        }
        for (size_t k = 0; k < sizeof(alphas) / sizeof(alphas[0]); k++) {
            mg_ring_t *rb = NULL, *ra = NULL;
            assert_int_equal(mg_ring_new(&rb, versions, c->before, c->n, alphas[k]), 0);
            assert_int_equal(mg_ring_new(&ra, versions, c->after, c->n, alphas[k]), 0);
            assert_int_equal(mg_ring_size(rb), ring_nodes_expected(c->before, c->n, alphas[k]));
            assert_int_equal(mg_ring_size(ra), ring_nodes_expected(c->after, c->n, alphas[k]));
            o = measure(c, map_ring, rb, ra);
            char method[16], nodes[24];
            snprintf(method, sizeof(method), "ring a=%.1f", alphas[k]);
            snprintf(nodes, sizeof(nodes), "%zu/%zu", mg_ring_size(rb), mg_ring_size(ra));
            print_message("%-32s %-12s %9s %13.3f / %-11.3f %8.3f %8.3f %8.3f\n", "", method, nodes,
                          o.err_before, o.err_after, o.moved, o.ideal, o.wrong);
            /* The ring's numbers are only reported; it must still map every key somewhere valid. */
            assert_true(o.only_weighted);
            mg_ring_free(rb);
            mg_ring_free(ra);
        }
    }
}

static void test_ring_api(void **state)
{
    (void)state;
    static const int64_t v[] = {1, 2, 3};
    static const uint32_t w[] = {90, 10, 0};
    static const uint32_t zero[] = {0, 0, 0};
    static int sentinel;
    mg_ring_t *r = (mg_ring_t *)&sentinel; /* untouched on failure */
    mg_ring_t *keep = r;
    assert_int_equal(mg_ring_new(&r, v, w, 3, 0.0), MG_EINVAL);
    assert_int_equal(mg_ring_new(&r, v, w, 3, -1.0), MG_EINVAL);
    assert_int_equal(mg_ring_new(&r, v, w, 3, NAN), MG_EINVAL);
    assert_int_equal(mg_ring_new(&r, v, w, 3, INFINITY), MG_EINVAL);
    assert_int_equal(mg_ring_new(&r, v, w, 0, 1.0), MG_EINVAL);
    assert_int_equal(mg_ring_new(&r, v, zero, 3, 1.0), MG_EINVAL);
    static const uint32_t huge[] = {1000000, 1000000, 1000000};
    assert_int_equal(mg_ring_new(&r, v, huge, 3, 2.0), MG_ENOMEM);
    assert_ptr_equal(r, keep);
    assert_int_equal(mg_ring_new(&r, v, w, 3, 1.0), 0);
    assert_int_equal(mg_ring_size(r), 100);
    for (size_t i = 0; i < 10000; i++) {
        int64_t a = mg_ring_lookup(r, g_key[i], g_key_len[i]);
        assert_true(a == 1 || a == 2);
        assert_int_equal(a, mg_ring_lookup(r, g_key[i], g_key_len[i]));
    }
    /* A tiny weight still gets one virtual node. */
    mg_ring_t *small = NULL;
    static const uint32_t w2[] = {1, 1, 1};
    assert_int_equal(mg_ring_new(&small, v, w2, 3, 0.5), 0);
    assert_int_equal(mg_ring_size(small), 3);
    mg_ring_free(small);
    mg_ring_free(r);
    mg_ring_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_full_policy),
        cmocka_unit_test(test_parse_defaults_and_sticky),
        cmocka_unit_test(test_parse_errors_name_the_field),
        cmocka_unit_test(test_check_versions),
        cmocka_unit_test(test_to_json_round_trip),
        cmocka_unit_test(test_reason_names),
        cmocka_unit_test(test_pick_precedence_every_combination),
        cmocka_unit_test(test_pick_rejects_bad_explicit_versions),
        cmocka_unit_test(test_lookup_edges_and_zero_weights),
        cmocka_unit_test(test_distribution_sticky_and_weighted),
        cmocka_unit_test(test_stickiness),
        cmocka_unit_test(test_canary_raise_moves_only_stable_to_canary),
        cmocka_unit_test(test_newest_canary_takes_only_from_stable),
        cmocka_unit_test(test_compare_with_ring),
        cmocka_unit_test(test_ring_api),
    };
    return cmocka_run_group_tests(tests, setup_keys, NULL);
}
