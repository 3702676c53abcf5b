/*
 * libFuzzer target for the route table (route/table.h). The input is a table as JSON, then,
 * after the first NUL byte, requests to match, one a line: "host path [name:value]". For a
 * table that parses, the index must give the same rule as testing every rule in order, and
 * the canonical JSON must parse back to a table of the same rules.
 */
#include "fuzz.h"
#include "route/table.h"

#include <string.h>

typedef struct headers {
    mg_str_t name, value;
} headers_t;

static int get_header(void *ctx, const char *lname, size_t len, mg_str_t *value)
{
    headers_t *h = ctx;
    if (h->name.len != len || memcmp(h->name.ptr, lname, len) != 0)
        return 0;
    *value = h->value;
    return 1;
}

static void match_line(const mg_route_table_t *t, const char *p, size_t n)
{
    const char *sp = memchr(p, ' ', n);
    mg_str_t host = {p, sp ? (size_t)(sp - p) : n}, path = {"/", 1};
    headers_t h = {{"", 0}, {"", 0}};
    if (sp != NULL) {
        const char *rest = sp + 1, *end = p + n;
        const char *sp2 = memchr(rest, ' ', (size_t)(end - rest));
        path = (mg_str_t){rest, sp2 ? (size_t)(sp2 - rest) : (size_t)(end - rest)};
        if (sp2 != NULL) {
            const char *colon = memchr(sp2 + 1, ':', (size_t)(end - sp2 - 1));
            if (colon != NULL) {
                h.name = (mg_str_t){sp2 + 1, (size_t)(colon - sp2 - 1)};
                h.value = (mg_str_t){colon + 1, (size_t)(end - colon - 1)};
            }
        }
    }
    mg_route_request_t req = {.host = host, .path = path, .headers = {get_header, &h}};
    check(mg_route_table_match(t, &req) == mg_route_table_match_linear(t, &req));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    char *text = fuzz_copy(data, tlen);
    char *reqs = nul ? fuzz_copy(nul + 1, size - tlen - 1) : NULL;
    size_t rlen = nul ? size - tlen - 1 : 0;
    mg_route_table_t *t = NULL, *t2 = NULL;
    mg_err_t err;
    if (text != NULL && mg_route_table_parse(text, tlen, &t, &err) == 0) {
        for (size_t i = 0; reqs != NULL && i < rlen;) {
            const char *nl = memchr(reqs + i, '\n', rlen - i);
            size_t n = nl ? (size_t)(nl - reqs) - i : rlen - i;
            match_line(t, reqs + i, n);
            i += n + 1;
        }
        match_line(t, "example.com /", 13);
        mg_buf_t out = {0};
        check(mg_route_table_to_json(t, &out) == 0);
        check(mg_route_table_parse(out.data, out.len, &t2, &err) == 0);
        check(mg_route_table_count(t2) == mg_route_table_count(t));
        for (size_t i = 0; i < mg_route_table_count(t); i++)
            check(strcmp(mg_route_table_rule(t, i)->name, mg_route_table_rule(t2, i)->name) == 0);
        mg_buf_free(&out);
    }
    mg_route_table_free(t2);
    mg_route_table_free(t);
    free(reqs);
    free(text);
    return 0;
}
