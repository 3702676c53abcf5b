/*
 * libFuzzer target for traffic policies (route/policy.h). A policy that parses must write
 * canonical JSON that parses back to the very same policy (memcmp), and every pick and hash
 * lookup must land on a version the policy gives weight, or on one a rule names.
 */
#include "fuzz.h"
#include "route/policy.h"

#include <string.h>

static int weighted(const mg_policy_t *p, int64_t v)
{
    for (int i = 0; i < p->nversions; i++)
        if (p->versions[i] == v)
            return p->weights[i] > 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_copy(data, size);
    if (text == NULL)
        return 0;
    mg_policy_t p, q;
    mg_err_t err;
    if (mg_policy_parse(text, size, &p, &err) == 0) {
        mg_buf_t out = {0};
        check(mg_policy_to_json(&p, &out) == 0);
        check(mg_policy_parse(out.data, out.len, &q, &err) == 0);
        check(memcmp(&p, &q, sizeof(p)) == 0);
        mg_buf_free(&out);
        for (size_t k = 0; k + 4 <= size && k < 64; k += 4) {
            uint32_t h;
            memcpy(&h, data + k, 4);
            int64_t v = mg_policy_lookup(&p, h);
            check(v == 0 || weighted(&p, v));
        }
        /* The input's own bytes as the request's routing values. */
        size_t third = size / 3;
        mg_policy_input_t in = {.ab_group = {text, third < 16 ? third : 16},
                                .stage = {text + third, third < 16 ? third : 16},
                                .sticky_key = {text + 2 * third, size - 2 * third},
                                .random = size * 0x9e3779b97f4a7c15ull};
        mg_policy_decision_t d;
        if (mg_policy_pick(&p, &in, &d, &err) == 0 && d.reason != MG_POLICY_REASON_AB_GROUP &&
            d.reason != MG_POLICY_REASON_STAGE)
            check(d.version == 0 || weighted(&p, d.version));
    }
    free(text);
    return 0;
}
