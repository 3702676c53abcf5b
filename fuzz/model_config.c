/*
 * libFuzzer target for a model's config.json (repo/config.h): parsed as the model "m"; a
 * config that parses has its bounds, and its version policy selects, from the versions
 * 1..8 found on disk, at most what it promises, highest first.
 */
#include "fuzz.h"
#include "repo/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_copy(data, size);
    if (text == NULL)
        return 0;
    mg_model_config_t cfg;
    mg_err_t err;
    int rc = mg_model_config_parse(text, size, "m", &cfg, &err);
    if (rc != 0) {
        check(rc == MG_ECONFIG && err.msg[0] != '\0');
    } else {
        check(cfg.instance_count >= 1 && cfg.instance_count <= 64);
        check(cfg.max_batch_size >= 0 && cfg.max_inflight >= 0);
        check(cfg.nspecific >= 0 && cfg.nspecific <= MG_VERSION_POLICY_MAX);
        int64_t found[8] = {3, 1, 8, 2, 7, 4, 6, 5}, out[8];
        int n = mg_model_config_select(&cfg, found, 8, out);
        check(n >= 0 && n <= 8);
        if (cfg.policy == MG_VERSION_POLICY_LATEST)
            check(n == (cfg.latest_n < 8 ? cfg.latest_n : 8));
        for (int i = 1; i < n; i++)
            check(out[i - 1] > out[i]);
    }
    free(text);
    return 0;
}
