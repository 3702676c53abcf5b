/*
 * The request path without HTTP: decode -> route -> execute -> encode, as every front end
 * runs it, many times over one arena (so LSan sees any per-request leak), plus the routing
 * outcomes that need a real registry: default, policy, fallback to the stable version.
 */
#include "core/log.h"
#include "infer/session.h"
#include "proto/kserve.h"
#include "repo/registry.h"
#include "route/router.h"
#include "serve/execute.h"
#include "serve/route.h"
#include "support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <urcu.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static char tmp[256];
static mg_registry_t *reg;
static mg_router_t *router;

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
    mg_registry_load_all(reg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
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

/* One full request; returns the route result's reason and fills the served version. */
static int serve_once(const char *body, size_t len, mg_str_t model, mg_policy_input_t *in,
                      mg_arena_t *arena, mg_buf_t *out, char *served, mg_policy_reason_t *reason)
{
    mg_err_t err;
    mg_infer_request_t req;
    memset(&req, 0, sizeof(req));
    req.arena = arena;
    int rc = mg_kserve_decode_request(body, len, MG_KSERVE_NO_BINARY, &req, &err);
    if (rc != 0)
        return rc;
    mg_route_result_t res;
    mg_route_source_t src = {.req = &req};
    rc = mg_serve_route(reg, router, model, NULL, in, &src, &res, &err);
    if (rc != 0)
        return rc;
    mg_infer_response_t resp;
    rc = mg_execute(res.version, &req, &resp, &err);
    if (rc == 0) {
        size_t hl;
        mg_buf_reset(out);
        rc = mg_kserve_encode_response(&resp, out, &hl);
        mg_execute_release(&resp);
    }
    snprintf(served, 24, "%s", res.version->version_str);
    *reason = res.reason;
    mg_model_version_unref(res.version);
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
        mg_policy_input_t in;
        memset(&in, 0, sizeof(in));
        char served[24];
        mg_policy_reason_t reason;
        assert_int_equal(
            serve_once(body, len, mg_test_str("digits"), &in, &arena, &out, served, &reason), 0);
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
    mg_policy_input_t in;
    memset(&in, 0, sizeof(in));
    char served[24];
    mg_policy_reason_t reason;
    /* The policy picks version 2, which failed to load: version 1 (stable) serves. */
    assert_int_equal(
        serve_once(body, len, mg_test_str("canary"), &in, &arena, &out, served, &reason), 0);
    assert_string_equal(served, "1");
    assert_int_equal(reason, MG_POLICY_REASON_FALLBACK);
    /* Pinned explicitly, the broken version is an error, not a silent fallback. */
    memset(&in, 0, sizeof(in));
    in.header_version = mg_test_str("2");
    mg_arena_reset(&arena);
    assert_int_equal(
        serve_once(body, len, mg_test_str("canary"), &in, &arena, &out, served, &reason),
        MG_EUNAVAIL);
    /* The admin policy wins over config.json's. */
    mg_policy_t p;
    mg_err_t err;
    const char *json = "{\"weights\":{\"1\":1},\"stable\":\"1\"}";
    assert_int_equal(mg_policy_parse(json, strlen(json), &p, &err), 0);
    assert_int_equal(mg_router_set_policy(router, "canary", &p, &err), 0);
    memset(&in, 0, sizeof(in));
    mg_arena_reset(&arena);
    assert_int_equal(
        serve_once(body, len, mg_test_str("canary"), &in, &arena, &out, served, &reason), 0);
    assert_string_equal(served, "1");
    assert_int_equal(reason, MG_POLICY_REASON_WEIGHT);
    assert_int_equal(mg_router_set_policy(router, "canary", NULL, &err), 0);
    /* Unknown model and bad version text. */
    memset(&in, 0, sizeof(in));
    mg_arena_reset(&arena);
    assert_int_equal(
        serve_once(body, len, mg_test_str("nosuch"), &in, &arena, &out, served, &reason),
        MG_ENOENT);
    in.header_version = mg_test_str("x2");
    assert_int_equal(
        serve_once(body, len, mg_test_str("digits"), &in, &arena, &out, served, &reason),
        MG_EINVAL);
    mg_buf_free(&out);
    mg_arena_free(&arena);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_path_many_times),
        cmocka_unit_test(test_fallback_to_stable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
