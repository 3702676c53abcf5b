/*
 * The request core without HTTP: decode -> mg_serve_infer (resolve, route, bind, execute) ->
 * encode, as every front end runs it, many times over one arena (so LSan sees any per-request
 * leak); the routing outcomes that need a real registry (default, policy, fallback to the
 * stable version); model resolution; input binding; deadlines; response metadata; route-table
 * matching; and what serve/info.h reports.
 */
#include "core/log.h"
#include "core/rcu.h"
#include "infer/session.h"
#include "proto/kserve.h"
#include "repo/registry.h"
#include "route/router.h"
#include "serve/info.h"
#include "serve/serve.h"
#include "serve/status.h"
#include "support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static char tmp[256];
static mg_registry_t *reg;
static mg_router_t *router;
static mg_serve_t *core;

static int setup(void **state)
{
    (void)state;
    const char *src = mg_test_source_dir();
    if (mg_test_tmpdir("mg-serve-", tmp, sizeof(tmp)) != 0)
        return -1;
    /* digits as shipped; canary: version 2 does not load, the policy sends everything to it. */
    mg_test_sh("cp -r %s/models/digits %s/digits", src, tmp);
    mg_test_sh(
        "mkdir -p %s/canary/1 %s/canary/2 && cp %s/models/digits/1/model.onnx %s/canary/1/ && "
        "echo broken > %s/canary/2/model.onnx",
        tmp, tmp, src, tmp, tmp);
    mg_test_sh(
        "echo "
        "'{\"version_policy\":{\"all\":{}},\"traffic\":{\"weights\":{\"1\":0,\"2\":1},\"stable\":"
        "\"1\"}}' "
        "> %s/canary/config.json",
        tmp);
    mg_log_configure(MG_LOG_ERROR + 1, 0);
    mg_infer_env_opts_t eo = {.intra_op_threads = 1, .inter_op_threads = 1};
    mg_err_t err;
    if (mg_infer_env_init(&eo, &err) != 0)
        return -1;
    rcu_register_thread();
    mg_registry_opts_t ro = {.repo_dir = tmp};
    if (mg_registry_new(&reg, &ro, &err) != 0 || mg_router_new(&router) != 0)
        return -1;
    mg_serve_opts_t so = {.registry = reg, .router = router};
    if (mg_serve_new(&core, &so, &err) != 0)
        return -1;
    mg_registry_load_all(reg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_serve_free(core);
    mg_router_free(router);
    mg_registry_free(reg);
    rcu_unregister_thread();
    mg_infer_env_deinit();
    mg_test_sh("rm -rf %s", tmp);
    return 0;
}

static char *read_sample(size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/models/digits/sample.json", mg_test_source_dir());
    return mg_test_read_file(path, len);
}

/* Request metadata from a NULL-terminated list of lower-case name/value pairs. */
static int pairs_lookup(void *ctx, const char *lname, size_t len, mg_str_t *value)
{
    const char *const *p = ctx;
    for (; p != NULL && p[0] != NULL; p += 2) {
        if (strlen(p[0]) == len && memcmp(p[0], lname, len) == 0) {
            *value = mg_test_str(p[1]);
            return 1;
        }
    }
    return 0;
}

/* One full request; returns the result code and fills the served version and the reason. */
static int serve_once(const char *body, size_t len, mg_str_t model, const char *const *headers,
                      mg_arena_t *arena, mg_buf_t *out, char *served, mg_policy_reason_t *reason)
{
    mg_err_t err;
    mg_infer_request_t req;
    memset(&req, 0, sizeof(req));
    req.arena = arena;
    int rc = mg_kserve_decode_request(body, len, MG_KSERVE_NO_BINARY, &req, &err);
    if (rc != 0)
        return rc;
    mg_serve_call_t call = {.model = model, .meta = {pairs_lookup, (void *)headers}, .req = &req};
    mg_serve_result_t res;
    rc = mg_serve_infer(core, &call, &res);
    if (rc != 0) {
        assert_null(res.pick.version); /* a failed call holds no pin */
        mg_serve_done(&res);
        return rc;
    }
    size_t hl;
    mg_buf_reset(out);
    rc = mg_kserve_encode_response(&res.resp, out, &hl);
    snprintf(served, 24, "%s", mg_model_version_text(res.pick.version));
    *reason = res.pick.reason;
    mg_serve_done(&res);
    return rc;
}

static void test_request_path_many_times(void **state)
{
    (void)state;
    size_t len;
    char *body = read_sample(&len);
    mg_arena_t arena;
    mg_arena_init(&arena, 0);
    mg_buf_t out = {0};
    for (int i = 0; i < 2000; i++) {
        mg_arena_reset(&arena);
        char served[24];
        mg_policy_reason_t reason;
        assert_int_equal(
            serve_once(body, len, mg_test_str("digits"), NULL, &arena, &out, served, &reason), 0);
        assert_string_equal(served, "2");
        assert_int_equal(reason, MG_POLICY_REASON_DEFAULT);
    }
    assert_non_null(memmem(out.data, out.len, "\"model_version\":\"2\"", 19));
    mg_buf_free(&out);
    mg_arena_free(&arena);
    free(body);
}

static void test_fallback_to_stable(void **state)
{
    (void)state;
    size_t len;
    char *body = read_sample(&len);
    mg_arena_t arena;
    mg_arena_init(&arena, 0);
    mg_buf_t out = {0};
    char served[24];
    mg_policy_reason_t reason;
    /* The policy picks version 2, which failed to load: version 1 (stable) serves. */
    assert_int_equal(
        serve_once(body, len, mg_test_str("canary"), NULL, &arena, &out, served, &reason), 0);
    assert_string_equal(served, "1");
    assert_int_equal(reason, MG_POLICY_REASON_FALLBACK);
    /* Pinned explicitly, the broken version is an error, not a silent fallback. */
    const char *const pin2[] = {"x-model-version", "2", NULL};
    mg_arena_reset(&arena);
    assert_int_equal(
        serve_once(body, len, mg_test_str("canary"), pin2, &arena, &out, served, &reason),
        MG_EUNAVAIL);
    /* The admin policy wins over config.json's. */
    mg_policy_t p;
    mg_err_t err;
    const char *json = "{\"weights\":{\"1\":1},\"stable\":\"1\"}";
    assert_int_equal(mg_policy_parse(json, strlen(json), &p, &err), 0);
    assert_int_equal(mg_router_set_policy(router, "canary", &p, &err), 0);
    mg_arena_reset(&arena);
    assert_int_equal(
        serve_once(body, len, mg_test_str("canary"), NULL, &arena, &out, served, &reason), 0);
    assert_string_equal(served, "1");
    assert_int_equal(reason, MG_POLICY_REASON_WEIGHT);
    assert_int_equal(mg_router_set_policy(router, "canary", NULL, &err), 0);
    /* Unknown model and bad version text. */
    mg_arena_reset(&arena);
    assert_int_equal(
        serve_once(body, len, mg_test_str("nosuch"), NULL, &arena, &out, served, &reason),
        MG_ENOMODEL);
    const char *const bad[] = {"x-model-version", "x2", NULL};
    assert_int_equal(
        serve_once(body, len, mg_test_str("digits"), bad, &arena, &out, served, &reason),
        MG_EINVAL);
    mg_buf_free(&out);
    mg_arena_free(&arena);
    free(body);
}

/* The kill switch: what a policy decides goes to its stable version; an explicit version still
 * serves; the configuration revision is part of the outcome. */
static void test_kill_switch(void **state)
{
    (void)state;
    size_t len;
    char *body = read_sample(&len);
    mg_arena_t arena;
    mg_arena_init(&arena, 0);
    mg_buf_t out = {0};
    char served[24];
    mg_policy_reason_t reason;
    mg_policy_t p;
    mg_err_t err;
    const char *json =
        "{\"weights\":{\"1\":0,\"2\":1},\"stable\":\"1\",\"ab_groups\":{\"x\":\"2\"}}";
    assert_int_equal(mg_policy_parse(json, strlen(json), &p, &err), 0);
    mg_router_policy_change_t one = {"digits", &p};
    mg_router_change_t on = {
        .policies = &one, .npolicies = 1, .kill = MG_ROUTER_KILL_ON, .config_revision = 77};
    assert_int_equal(mg_router_apply(router, &on, NULL, &err), 0);
    const char *const ab[] = {"x-ab-group", "x", NULL};
    const char *const pin[] = {"x-model-version", "2", NULL};
    const char *const *cases[] = {NULL, ab};
    for (int i = 0; i < 2; i++) {
        mg_arena_reset(&arena);
        assert_int_equal(
            serve_once(body, len, mg_test_str("digits"), cases[i], &arena, &out, served, &reason),
            0);
        assert_string_equal(served, "1");
        assert_int_equal(reason, MG_POLICY_REASON_KILL_SWITCH);
    }
    mg_arena_reset(&arena);
    assert_int_equal(
        serve_once(body, len, mg_test_str("digits"), pin, &arena, &out, served, &reason), 0);
    assert_string_equal(served, "2");
    assert_int_equal(reason, MG_POLICY_REASON_HEADER);
    /* The explain text names the configuration revision. */
    mg_infer_request_t req;
    memset(&req, 0, sizeof(req));
    mg_arena_reset(&arena);
    req.arena = &arena;
    assert_int_equal(mg_kserve_decode_request(body, len, MG_KSERVE_NO_BINARY, &req, &err), 0);
    const char *const explain_on[] = {"x-route-explain", "1", NULL};
    mg_serve_call_t call = {
        .model = mg_test_str("digits"), .meta = {pairs_lookup, (void *)explain_on}, .req = &req};
    mg_serve_result_t res;
    assert_int_equal(mg_serve_infer(core, &call, &res), 0);
    mg_serve_header_t hdrs[MG_SERVE_HEADERS_MAX];
    char explain[MG_SERVE_EXPLAIN_MAX];
    size_t n = mg_serve_headers(&call, &res, hdrs, explain);
    assert_string_equal(hdrs[n - 1].name, "x-route-explain");
    assert_string_equal(explain, "rule=- policy=admin reason=kill-switch version=1 chosen=1 "
                                 "config-revision=77");
    mg_serve_done(&res);
    /* Off again: the weights decide. */
    mg_router_change_t off = {.policies = &one, .npolicies = 1, .kill = MG_ROUTER_KILL_OFF};
    assert_int_equal(mg_router_apply(router, &off, NULL, &err), 0);
    mg_arena_reset(&arena);
    assert_int_equal(
        serve_once(body, len, mg_test_str("digits"), NULL, &arena, &out, served, &reason), 0);
    assert_string_equal(served, "2");
    assert_int_equal(reason, MG_POLICY_REASON_WEIGHT);
    mg_router_policy_change_t clear = {"digits", NULL};
    mg_router_change_t reset = {.policies = &clear, .npolicies = 1};
    assert_int_equal(mg_router_apply(router, &reset, NULL, &err), 0);
    mg_buf_free(&out);
    mg_arena_free(&arena);
    free(body);
}

/* Binds a one-input request from a flat list of 64 pixels, as /predict does. */
static int bind_pixels(void *ctx, const mg_session_t *meta, const char *model,
                       mg_infer_request_t *req, mg_err_t *err)
{
    int *calls = ctx;
    (*calls)++;
    if (strcmp(model, "digits") != 0 || mg_session_ninputs(meta) != 1)
        return mg_err_set(err, MG_EINVAL, "unexpected model %s", model);
    mg_tensor_t *t = mg_arena_alloc(req->arena, sizeof(*t));
    float *px = mg_arena_alloc(req->arena, 64 * sizeof(float));
    memset(t, 0, sizeof(*t));
    memset(px, 0, 64 * sizeof(float));
    const mg_tensor_info_t *in = mg_session_input(meta, 0);
    t->name = mg_test_str(in->name);
    t->dtype = MG_DT_FP32;
    t->ndim = 2;
    t->shape[0] = 1;
    t->shape[1] = 64;
    t->count = 64;
    t->data = px;
    t->nbytes = 64 * sizeof(float);
    req->inputs = t;
    req->ninputs = 1;
    return 0;
}

static int bind_fails(void *ctx, const mg_session_t *meta, const char *model,
                      mg_infer_request_t *req, mg_err_t *err)
{
    (void)ctx;
    (void)meta;
    (void)req;
    return mg_err_set(err, MG_EDTYPE, "input of %s: wrong type", model);
}

static void test_resolution_bind_and_deadline(void **state)
{
    (void)state;
    mg_arena_t arena;
    mg_arena_init(&arena, 0);
    mg_infer_request_t req;
    memset(&req, 0, sizeof(req));
    req.arena = &arena;
    int calls = 0;
    mg_serve_result_t res;

    /* No model named, two models, no default: refused, naming the flag. */
    mg_serve_call_t call = {.req = &req, .bind = bind_pixels, .bind_ctx = &calls};
    assert_int_equal(mg_serve_infer(core, &call, &res), MG_EINVAL);
    assert_int_equal(res.step, MG_SERVE_STEP_RESOLVE);
    assert_non_null(strstr(res.err.msg, "--default-model"));
    assert_int_equal(mg_status_http(res.rc), 400);
    mg_serve_done(&res);

    /* The body's model; the version from the /predict body; bind runs once, after routing. */
    call.body_model = mg_test_str("digits");
    call.url_version = mg_test_str("1");
    assert_int_equal(mg_serve_infer(core, &call, &res), 0);
    assert_int_equal(calls, 1);
    assert_string_equal(mg_model_version_text(res.pick.version), "1");
    assert_int_equal(res.pick.reason, MG_POLICY_REASON_URL);
    assert_int_equal(res.resp.noutputs, 1);
    assert_int_equal(res.resp.outputs[0].count, 10);
    mg_serve_done(&res);
    assert_null(res.pick.version);

    /* A route rule's model wins over the body's, and its name reaches the result. */
    mg_route_rule_t rule = {.name = "r1", .model = "canary", .api = MG_ROUTE_API_PREDICT};
    call.rule = &rule;
    call.url_version = mg_test_str("");
    mg_arena_reset(&arena);
    assert_int_equal(mg_serve_infer(core, &call, &res), MG_EINVAL); /* bind_pixels: not digits */
    assert_int_equal(res.step, MG_SERVE_STEP_BIND);
    assert_string_equal(res.rule, "r1");
    assert_int_equal(res.model.len, 6);
    mg_serve_done(&res);
    call.rule = NULL;

    /* A failing bind: nothing runs, nothing stays pinned. */
    call.bind = bind_fails;
    mg_arena_reset(&arena);
    assert_int_equal(mg_serve_infer(core, &call, &res), MG_EDTYPE);
    assert_null(res.pick.version);
    assert_string_equal(res.err.msg, "input of digits: wrong type");
    mg_serve_done(&res);

    /* A deadline already past: 504, the model never ran. */
    call.bind = bind_pixels;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    call.deadline_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - 1;
    mg_arena_reset(&arena);
    assert_int_equal(mg_serve_infer(core, &call, &res), MG_ETIMEDOUT);
    assert_int_equal(mg_status_http(res.rc), 504);
    assert_int_equal(res.step, MG_SERVE_STEP_EXECUTE);
    assert_null(res.pick.version);
    mg_serve_done(&res);
    /* ... and one far ahead does not get in the way. */
    call.deadline_ns += (int64_t)60 * 1000000000;
    mg_arena_reset(&arena);
    assert_int_equal(mg_serve_infer(core, &call, &res), 0);
    mg_serve_done(&res);
    mg_arena_free(&arena);
}

static void test_response_headers(void **state)
{
    (void)state;
    mg_arena_t arena;
    mg_arena_init(&arena, 0);
    mg_infer_request_t req;
    memset(&req, 0, sizeof(req));
    req.arena = &arena;
    int calls = 0;
    const char *const hdrs[] = {"x-trace-id",      "t-1", "x-ab-group", "none",
                                "x-route-explain", "1",   NULL};
    mg_serve_call_t call = {.model = mg_test_str("canary"),
                            .meta = {pairs_lookup, (void *)hdrs},
                            .req = &req,
                            .bind = bind_pixels,
                            .bind_ctx = &calls};
    mg_serve_result_t res;
    /* canary's config policy sends everything to version 2, which failed: bind_pixels refuses
     * canary, so use digits with its default version. */
    call.model = mg_test_str("digits");
    assert_int_equal(mg_serve_infer(core, &call, &res), 0);
    mg_serve_header_t out[MG_SERVE_HEADERS_MAX];
    char explain[MG_SERVE_EXPLAIN_MAX];
    size_t n = mg_serve_headers(&call, &res, out, explain);
    assert_int_equal(n, 5);
    const char *want[][2] = {
        {"x-model-version", "2"},
        {"x-route-reason", "default"},
        {"x-trace-id", "t-1"},
        {"x-ab-group", "none"},
        {"x-route-explain", "rule=- policy=none reason=default version=2 chosen=0"}};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(out[i].name, want[i][0]);
        assert_int_equal(out[i].value.len, strlen(want[i][1]));
        assert_memory_equal(out[i].value.ptr, want[i][1], out[i].value.len);
    }
    mg_serve_done(&res);
    /* Without the asking header and the echoes: just the two. */
    call.meta = (mg_meta_t){NULL, NULL};
    mg_arena_reset(&arena);
    assert_int_equal(mg_serve_infer(core, &call, &res), 0);
    assert_int_equal(mg_serve_headers(&call, &res, out, explain), 2);
    mg_serve_done(&res);
    mg_arena_free(&arena);
}

static void test_route_table_match_copies_the_rule(void **state)
{
    (void)state;
    const char *json = "{\"routes\":[{\"name\":\"legacy\",\"match\":{\"path\":{\"prefix\":\"/m/"
                       "\"}},\"model\":\"digits\",\"api\":\"predict\",\"traffic\":{\"weights\":"
                       "{\"1\":1},\"stable\":\"1\"}}]}";
    mg_route_table_t *t = NULL;
    mg_err_t err;
    assert_int_equal(mg_route_table_parse(json, strlen(json), &t, &err), 0);
    assert_int_equal(mg_router_set_table(router, t, &err), 0);
    mg_arena_t arena;
    mg_arena_init(&arena, 0);
    mg_meta_t none = {NULL, NULL};
    mg_route_rule_t rule;
    assert_int_equal(
        mg_serve_match(core, mg_test_str("h"), mg_test_str("/x"), &none, &arena, &rule), 0);
    assert_int_equal(
        mg_serve_match(core, mg_test_str("h"), mg_test_str("/m/7"), &none, &arena, &rule), 1);
    /* Replace the table: the copy stays valid after the old snapshot is freed. */
    assert_int_equal(mg_route_table_parse("{\"routes\":[]}", 13, &t, &err), 0);
    assert_int_equal(mg_router_set_table(router, t, &err), 0);
    assert_string_equal(rule.name, "legacy");
    assert_string_equal(rule.model, "digits");
    assert_int_equal(rule.api, MG_ROUTE_API_PREDICT);
    assert_non_null(rule.traffic);
    assert_int_equal(rule.traffic->stable, 1);
    mg_arena_free(&arena);
}

static int collect_row(void *ctx, const mg_info_index_row_t *row)
{
    mg_buf_t *b = ctx;
    mg_buf_printf(b, "%s/%s/%s;", row->name, row->version ? row->version : "-",
                  row->state ? row->state : "-");
    return 0;
}

static void test_info(void **state)
{
    (void)state;
    mg_buf_t why = {0};
    /* canary's version 2 failed, but version 1 serves: the model is READY, so is the server. */
    assert_true(mg_info_ready(core, &why));
    assert_int_equal(why.len, 0);

    mg_model_version_t *v = NULL;
    mg_err_t err;
    assert_int_equal(mg_info_acquire(core, mg_test_str("digits"), mg_test_str(""), &v, &err), 0);
    assert_string_equal(mg_model_version_text(v), "2");
    mg_model_version_unpin(v);
    assert_int_equal(mg_info_acquire(core, mg_test_str("digits"), mg_test_str("x1"), &v, &err),
                     MG_ENOVERSION);
    assert_string_equal(err.msg, "unknown version 'x1' of model 'digits'");
    assert_int_equal(mg_info_acquire(core, mg_test_str("nosuch"), mg_test_str("x1"), &v, &err),
                     MG_ENOMODEL);
    assert_int_equal(mg_info_acquire(core, mg_test_str("canary"), mg_test_str("2"), &v, &err),
                     MG_EUNAVAIL);
    assert_int_equal(mg_status_http(MG_EUNAVAIL), 503);

    int64_t versions[8];
    assert_int_equal(mg_info_ready_versions(core, mg_test_str("canary"), versions, 8), 1);
    assert_int_equal(versions[0], 1);
    assert_int_equal(mg_info_ready_versions(core, mg_test_str("digits"), versions, 8), 2);

    mg_buf_t rows = {0};
    assert_int_equal(mg_info_index(core, false, collect_row, &rows), 0);
    mg_buf_puts(&rows, "");
    assert_string_equal(rows.data, "canary/1/READY;canary/2/UNAVAILABLE;digits/1/READY;digits/2/"
                                   "READY;");
    mg_buf_reset(&rows);
    assert_int_equal(mg_info_index(core, true, collect_row, &rows), 0);
    mg_buf_puts(&rows, "");
    assert_string_equal(rows.data, "canary/1/READY;digits/1/READY;digits/2/READY;");

    mg_policy_t p;
    mg_pick_source_t src;
    assert_int_equal(mg_info_traffic(core, mg_test_str("canary"), &p, &src, &err), 0);
    assert_int_equal(src, MG_PICK_CONFIG);
    assert_int_equal(p.stable, 1);
    assert_int_equal(mg_info_traffic(core, mg_test_str("digits"), &p, &src, &err), 0);
    assert_int_equal(src, MG_PICK_NONE);
    assert_int_equal(mg_info_traffic(core, mg_test_str("nosuch"), &p, &src, &err), MG_ENOMODEL);
    assert_int_equal(mg_status_http(MG_ENOMODEL), 404);
    mg_buf_free(&rows);
    mg_buf_free(&why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_path_many_times),
        cmocka_unit_test(test_fallback_to_stable),
        cmocka_unit_test(test_resolution_bind_and_deadline),
        cmocka_unit_test(test_response_headers),
        cmocka_unit_test(test_route_table_match_copies_the_rule),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_kill_switch), /* last: the configuration revision stays */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
