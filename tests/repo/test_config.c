#include "repo/config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static int parse(const char *json, mg_model_config_t *cfg, mg_err_t *err)
{
    return mg_model_config_parse(json, strlen(json), "digits", cfg, err);
}

static void test_defaults(void **state)
{
    (void)state;
    mg_model_config_t c;
    mg_err_t err;
    assert_int_equal(parse("{}", &c, &err), 0);
    assert_int_equal(c.policy, MG_VERSION_POLICY_LATEST);
    assert_int_equal(c.latest_n, 1);
    assert_int_equal(c.instance_count, 1);
    assert_int_equal(c.max_batch_size, 0);
    assert_int_equal(c.default_version, 0);
}

static void test_full_config(void **state)
{
    (void)state;
    mg_model_config_t c;
    mg_err_t err;
    const char *json = "{\"name\":\"digits\",\"max_batch_size\":64,\"version_policy\":{"
                       "\"specific\":{\"versions\":[1,\"3\"]}},"
                       "\"default_version\":\"3\",\"instance_count\":2,\"intra_op_threads\":1,"
                       "\"warmup\":{\"runs\":2}}";
    assert_int_equal(parse(json, &c, &err), 0);
    assert_int_equal(c.max_batch_size, 64);
    assert_int_equal(c.policy, MG_VERSION_POLICY_SPECIFIC);
    assert_int_equal(c.nspecific, 2);
    assert_int_equal(c.specific[0], 1);
    assert_int_equal(c.specific[1], 3);
    assert_int_equal(c.default_version, 3);
    assert_int_equal(c.instance_count, 2);
    assert_int_equal(c.intra_op_threads, 1);
    assert_int_equal(c.warmup_runs, 2);
}

static void test_errors_name_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *fragment;
    } cases[] = {
        {"{", "config.json: line"},
        {"[]", "JSON object"},
        {"{\"max_batch_size\":\"many\"}", "max_batch_size"},
        {"{\"max_batch_size\":-1}", "max_batch_size"},
        {"{\"instance_count\":0}", "instance_count"},
        {"{\"version_policy\":{\"newest\":{}}}", "version_policy"},
        {"{\"version_policy\":{\"latest\":{\"num_versions\":0}}}", "num_versions"},
        {"{\"version_policy\":{\"specific\":{\"versions\":[]}}}", "specific.versions"},
        {"{\"version_policy\":{\"specific\":{\"versions\":[0]}}}", "versions[0]"},
        {"{\"default_version\":\"v2\"}", "default_version"},
        {"{\"name\":\"other\"}", "'name' must be \"digits\""},
        {"{\"max_batch\":4}", "unknown field 'max_batch'"},
        {"{\"platform\":\"tensorflow\"}", "platform"},
        {"{\"warmup\":{\"runs\":-3}}", "warmup"},
        {"{\"a\":1,\"a\":2}", "config.json"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mg_model_config_t c;
        mg_err_t err;
        memset(&err, 0, sizeof(err));
        assert_int_equal(parse(cases[i].json, &c, &err), MG_ECONFIG);
        if (strstr(err.msg, cases[i].fragment) == NULL)
            fail_msg("case %zu: '%s' does not contain '%s'", i, err.msg, cases[i].fragment);
        /* The output holds defaults on failure. */
        assert_int_equal(c.instance_count, 1);
    }
}

static void test_breaker(void **state)
{
    (void)state;
    mg_model_config_t c;
    mg_err_t err;
    mg_breaker_config_t d;
    mg_breaker_config_default(&d);
    assert_int_equal(parse("{}", &c, &err), 0);
    assert_memory_equal(&c.breaker, &d, sizeof(d));
    assert_int_equal(
        parse("{\"breaker\":{\"consecutive_failures\":3,\"ejection_ms\":250}}", &c, &err), 0);
    assert_int_equal(c.breaker.consecutive_failures, 3);
    assert_int_equal(c.breaker.ejection_ms, 250);
    assert_int_equal(c.breaker.probes, d.probes);
    static const struct {
        const char *json, *fragment;
    } bad[] = {
        {"{\"breaker\":{\"threshold\":3}}", "config.json: 'breaker': unknown field 'threshold'"},
        {"{\"breaker\":{\"probes\":0}}", "config.json: 'breaker': 'probes' must be an integer"},
        {"{\"breaker\":5}", "config.json: 'breaker': must be an object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        assert_int_equal(parse(bad[i].json, &c, &err), MG_ECONFIG);
        if (strstr(err.msg, bad[i].fragment) == NULL)
            fail_msg("'%s' does not contain '%s'", err.msg, bad[i].fragment);
    }
}

static void test_select(void **state)
{
    (void)state;
    int64_t found[] = {3, 1, 10, 2};
    int64_t out[4];
    mg_model_config_t c;
    mg_model_config_default(&c);
    assert_int_equal(mg_model_config_select(&c, found, 4, out), 1);
    assert_int_equal(out[0], 10);
    c.latest_n = 2;
    assert_int_equal(mg_model_config_select(&c, found, 4, out), 2);
    assert_int_equal(out[0], 10);
    assert_int_equal(out[1], 3);
    c.policy = MG_VERSION_POLICY_ALL;
    assert_int_equal(mg_model_config_select(&c, found, 4, out), 4);
    assert_int_equal(out[3], 1);
    c.policy = MG_VERSION_POLICY_SPECIFIC;
    c.nspecific = 2;
    c.specific[0] = 2;
    c.specific[1] = 7; /* not on disk: not selected */
    assert_int_equal(mg_model_config_select(&c, found, 4, out), 1);
    assert_int_equal(out[0], 2);
    assert_int_equal(mg_model_config_select(&c, found, 0, out), 0);
}

/* Triton's model configuration loads: its fields, and modelgate's under "parameters". */
static void test_triton_config(void **state)
{
    (void)state;
    mg_model_config_t c;
    mg_err_t err;
    const char *json =
        "{\"name\":\"digits\",\"platform\":\"onnxruntime_onnx\",\"backend\":\"onnxruntime\","
        "\"version_policy\":{\"all\":{}},\"max_batch_size\":8,"
        "\"input\":[{\"name\":\"input\",\"data_type\":\"TYPE_FP32\",\"dims\":[64]}],"
        "\"output\":[{\"name\":\"probabilities\",\"data_type\":\"TYPE_FP32\",\"dims\":[-1],"
        "\"label_filename\":\"labels.txt\"}],"
        "\"instance_group\":[{\"name\":\"digits\",\"kind\":\"KIND_CPU\",\"count\":2},{\"count\":1}]"
        ","
        "\"default_model_filename\":\"model.onnx\","
        "\"parameters\":{\"warmup\":{\"string_value\":\"{\\\"runs\\\":3}\"},"
        "\"default_version\":{\"string_value\":\"\\\"2\\\"\"}}}";
    assert_int_equal(parse(json, &c, &err), 0);
    assert_int_equal(c.instance_count, 3);
    assert_int_equal(c.warmup_runs, 3);
    assert_int_equal(c.default_version, 2);
    assert_int_equal(c.ninputs, 1);
    assert_int_equal(c.inputs[0].dtype, MG_DT_FP32);
    assert_int_equal(c.outputs[0].ndims, 1);
    assert_string_equal(c.outputs[0].label_filename, "labels.txt");

    /* Checked against the model's tensors, without the batch dim. */
    mg_tensor_info_t in = {.name = "input", .dtype = MG_DT_FP32, .ndim = 2, .shape = {-1, 64}};
    mg_tensor_info_t out = {
        .name = "probabilities", .dtype = MG_DT_FP32, .ndim = 2, .shape = {-1, -1}};
    assert_int_equal(mg_model_config_check_io(&c, &in, 1, &out, 1, &err), 0);
    in.dtype = MG_DT_INT32;
    assert_int_equal(mg_model_config_check_io(&c, &in, 1, &out, 1, &err), MG_ECONFIG);
    assert_string_equal(err.msg,
                        "config.json: input 'input' has data_type TYPE_FP32, the model's is "
                        "TYPE_INT32");
    in.dtype = MG_DT_FP32;
    in.shape[1] = 63;
    assert_int_equal(mg_model_config_check_io(&c, &in, 1, &out, 1, &err), MG_ECONFIG);
    assert_non_null(strstr(err.msg, "dims do not match"));
    in.name = "other";
    assert_int_equal(mg_model_config_check_io(&c, &in, 1, &out, 1, &err), MG_ECONFIG);
    assert_non_null(strstr(err.msg, "is not one of the model's inputs"));

    static const struct {
        const char *json;
        const char *fragment;
    } bad[] = {
        {"{\"input\":[{\"name\":\"x\",\"data_type\":\"FP32\"}]}", "data_type"},
        {"{\"input\":[{\"name\":\"x\",\"format\":\"FORMAT_NCHW\"}]}", "unknown field 'format'"},
        {"{\"instance_group\":[{\"kind\":\"KIND_GPU\"}]}", "KIND_CPU"},
        {"{\"instance_group\":[{\"count\":1}],\"instance_count\":1}", "not both"},
        {"{\"output\":[{\"name\":\"y\",\"label_filename\":\"../x\"}]}", "label_filename"},
        {"{\"default_model_filename\":\"m.onnx\"}", "default_model_filename"},
        {"{\"parameters\":{\"warmup\":{\"string_value\":\"{\"}}}", "is not JSON"},
        {"{\"parameters\":{\"input\":{\"string_value\":\"[]\"}}}", "not a parameter"},
        {"{\"warmup\":{},\"parameters\":{\"warmup\":{\"string_value\":\"{}\"}}}", "twice"},
        {"{\"parameters\":{\"colour\":{\"string_value\":\"1\"}}}", "unknown field 'colour'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        assert_int_equal(parse(bad[i].json, &c, &err), MG_ECONFIG);
        if (strstr(err.msg, bad[i].fragment) == NULL)
            fail_msg("case %zu: '%s' does not contain '%s'", i, err.msg, bad[i].fragment);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_errors_name_the_field),
        cmocka_unit_test(test_breaker),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_triton_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
