#include "core/buf.h"
#include "core/err.h"
#include "route/table.h"
#include "support/support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <pthread.h>

/* ---- helpers ---------------------------------------------------------------------------- */

typedef struct hdrs {
    int n;
    const char *name[8];
    const char *value[8];
} hdrs_t;

/* The header callback: the table must ask with lower-case names. */
static int hdr_lookup(void *ctx, const char *lname, size_t len, mg_str_t *value)
{
    const hdrs_t *h = ctx;
    for (size_t i = 0; i < len; i++)
        assert_false(lname[i] >= 'A' && lname[i] <= 'Z');
    for (int i = 0; h != NULL && i < h->n; i++) {
        if (strlen(h->name[i]) == len && strncasecmp(h->name[i], lname, len) == 0) {
            value->ptr = h->value[i];
            value->len = strlen(h->value[i]);
            return 1;
        }
    }
    return 0;
}

static mg_route_table_t *parse_ok(const char *json)
{
    mg_route_table_t *t = NULL;
    mg_err_t err;
    mg_err_clear(&err);
    int rc = mg_route_table_parse(json, strlen(json), &t, &err);
    if (rc != 0)
        fail_msg("parse failed: %s", err.msg);
    assert_non_null(t);
    return t;
}

/* The matched rule's name ("" for none); indexed and linear must agree. */
static const char *match_h(const mg_route_table_t *t, const char *host, const char *path,
                           const hdrs_t *h)
{
    mg_route_request_t req = {
        .host = mg_test_str(host),
        .path = mg_test_str(path),
        .headers = {hdr_lookup, (void *)h},
    };
    const mg_route_rule_t *a = mg_route_table_match(t, &req);
    const mg_route_rule_t *b = mg_route_table_match_linear(t, &req);
    if (a != b)
        fail_msg("host '%s' path '%s': indexed '%s' linear '%s'", host, path, a ? a->name : "-",
                 b ? b->name : "-");
    return a ? a->name : "";
}

static const char *match(const mg_route_table_t *t, const char *host, const char *path)
{
    return match_h(t, host, path, NULL);
}

/* ---- matching --------------------------------------------------------------------------- */

static void test_hosts(void **state)
{
    (void)state;
    mg_route_table_t *t =
        parse_ok("{\"routes\":["
                 "{\"name\":\"exact\",\"match\":{\"host\":\"API.example.com\",\"path\":{\"prefix\":"
                 "\"/\"}},\"model\":\"m\"},"
                 "{\"name\":\"deep\",\"match\":{\"host\":\"*.eu.example.com\",\"path\":{\"prefix\":"
                 "\"/\"}},\"model\":\"m\"},"
                 "{\"name\":\"wild\",\"match\":{\"host\":\"*.Example.com\",\"path\":{\"prefix\":\"/"
                 "\"}},\"model\":\"m\"},"
                 "{\"name\":\"ip\",\"match\":{\"host\":\"[::1]\",\"path\":{\"prefix\":\"/"
                 "\"}},\"model\":\"m\"},"
                 "{\"name\":\"any\",\"match\":{\"path\":{\"prefix\":\"/\"}},\"model\":\"m\"}]}");
    assert_int_equal(mg_route_table_count(t), 5);
    assert_string_equal(match(t, "api.example.com", "/x"), "exact");
    assert_string_equal(match(t, "API.EXAMPLE.COM", "/x"), "exact");
    assert_string_equal(match(t, "x.example.com", "/x"), "wild");
    assert_string_equal(match(t, "a.b.EXAMPLE.com", "/x"), "wild");
    assert_string_equal(match(t, "z.eu.example.com", "/x"), "deep");
    assert_string_equal(match(t, "eu.example.com", "/x"), "wild");
    /* A wildcard needs something before its suffix. */
    assert_string_equal(match(t, "example.com", "/x"), "any");
    assert_string_equal(match(t, ".example.com", "/x"), "any");
    assert_string_equal(match(t, "example.com.evil.org", "/x"), "any");
    assert_string_equal(match(t, "[::1]", "/x"), "ip");
    assert_string_equal(match(t, "", "/x"), "any");
    /* A host far longer than any pattern still matches a wildcard by its suffix. */
    char longhost[600];
    memset(longhost, 'a', 500);
    strcpy(longhost + 500, ".example.com");
    assert_string_equal(match(t, longhost, "/x"), "wild");
    longhost[300] = '.';
    assert_string_equal(match(t, longhost, "/x"), "wild");
    mg_route_table_free(t);
}

static void test_paths(void **state)
{
    (void)state;
    mg_route_table_t *t = parse_ok(
        "{\"routes\":["
        "{\"name\":\"exact\",\"match\":{\"path\":{\"exact\":\"/api/m\"}},\"model\":\"m\"},"
        "{\"name\":\"prefix\",\"match\":{\"path\":{\"prefix\":\"/api/m\"}},\"model\":\"m\"},"
        "{\"name\":\"re\",\"match\":{\"path\":{\"regex\":\"^/m/[0-9]+$\"}},\"model\":\"m\"},"
        "{\"name\":\"anywhere\",\"match\":{\"path\":{\"regex\":\"/deep/\"}},\"model\":\"m\"},"
        "{\"name\":\"slash\",\"match\":{\"path\":{\"exact\":\"/\"}},\"model\":\"m\"}]}");
    assert_string_equal(match(t, "h", "/api/m"), "exact");
    assert_string_equal(match(t, "h", "/api/m2"), "prefix");
    assert_string_equal(match(t, "h", "/api/m/x"), "prefix");
    assert_string_equal(match(t, "h", "/api/"), "");
    assert_string_equal(match(t, "h", "/API/m"), ""); /* paths are case-sensitive */
    assert_string_equal(match(t, "h", "/m/123"), "re");
    assert_string_equal(match(t, "h", "/m/123x"), "");
    assert_string_equal(match(t, "h", "/m/"), "");
    assert_string_equal(match(t, "h", "/x/deep/y"), "anywhere"); /* unanchored */
    assert_string_equal(match(t, "h", "/"), "slash");
    assert_string_equal(match(t, "h", ""), "");
    mg_route_table_free(t);
}

static void test_headers(void **state)
{
    (void)state;
    mg_route_table_t *t = parse_ok(
        "{\"routes\":["
        "{\"name\":\"eu\",\"match\":{\"path\":{\"prefix\":\"/"
        "\"},\"headers\":[{\"name\":\"X-Tenant\",\"exact\":\"eu\"}]},\"model\":\"m\"},"
        "{\"name\":\"re\",\"match\":{\"path\":{\"prefix\":\"/"
        "\"},\"headers\":[{\"name\":\"X-Tenant\",\"regex\":\"^a[0-9]\"}]},\"model\":\"m\"},"
        "{\"name\":\"dbg\",\"match\":{\"path\":{\"prefix\":\"/"
        "\"},\"headers\":[{\"name\":\"X-Debug\",\"present\":true},"
        "{\"name\":\"X-Skip\",\"present\":false}]},\"model\":\"m\"},"
        "{\"name\":\"both\",\"match\":{\"path\":{\"prefix\":\"/"
        "\"},\"headers\":[{\"name\":\"x-a\",\"exact\":\"1\"},"
        "{\"name\":\"X-B\",\"exact\":\"\"}]},\"model\":\"m\"},"
        "{\"name\":\"rest\",\"match\":{\"path\":{\"prefix\":\"/\"}},\"model\":\"m\"}]}");
    hdrs_t h = {1, {"x-tenant"}, {"eu"}};
    assert_string_equal(match_h(t, "h", "/", &h), "eu");
    h.value[0] = "EU"; /* values are case-sensitive */
    assert_string_equal(match_h(t, "h", "/", &h), "rest");
    h.value[0] = "a7";
    assert_string_equal(match_h(t, "h", "/", &h), "re");
    h.value[0] = "ba7"; /* the regex is anchored by the user, not by the table */
    assert_string_equal(match_h(t, "h", "/", &h), "rest");
    h = (hdrs_t){1, {"X-DEBUG"}, {""}};
    assert_string_equal(match_h(t, "h", "/", &h), "dbg");
    h = (hdrs_t){2, {"x-debug", "x-skip"}, {"1", "1"}};
    assert_string_equal(match_h(t, "h", "/", &h), "rest");
    h = (hdrs_t){1, {"x-a"}, {"1"}};
    assert_string_equal(match_h(t, "h", "/", &h), "rest"); /* all headers must match */
    h = (hdrs_t){2, {"x-a", "x-b"}, {"1", ""}};
    assert_string_equal(match_h(t, "h", "/", &h), "both");
    assert_string_equal(match_h(t, "h", "/", NULL), "rest");
    /* No header callback at all: every header is absent. */
    mg_route_request_t req = {.host = MG_STR_LIT("h"), .path = MG_STR_LIT("/")};
    assert_string_equal(mg_route_table_match(t, &req)->name, "rest");
    assert_ptr_equal(mg_route_table_match(t, &req), mg_route_table_match_linear(t, &req));
    mg_route_table_free(t);

    /* A zeroed request (no host, no path, no headers) matches only what needs nothing. */
    t = parse_ok(
        "{\"routes\":[{\"name\":\"h\",\"match\":{\"host\":\"a\",\"path\":{\"prefix\":\"/"
        "\"}},\"model\":\"m\"},"
        "{\"name\":\"w\",\"match\":{\"host\":\"*.a\",\"path\":{\"prefix\":\"/\"}},\"model\":\"m\"},"
        "{\"name\":\"r\",\"match\":{\"path\":{\"regex\":\"^$\"},\"headers\":[{\"name\":\"x\","
        "\"present\":false}]},"
        "\"model\":\"m\"}]}");
    mg_route_request_t zero = {{NULL, 0}, {NULL, 0}, {NULL, NULL}};
    assert_string_equal(mg_route_table_match(t, &zero)->name, "r");
    assert_ptr_equal(mg_route_table_match(t, &zero), mg_route_table_match_linear(t, &zero));
    mg_route_table_free(t);
}

static void test_priorities_and_ties(void **state)
{
    (void)state;
    mg_route_table_t *t =
        parse_ok("{\"routes\":["
                 "{\"name\":\"late\",\"priority\":50,\"match\":{\"path\":{\"prefix\":\"/"
                 "a\"}},\"model\":\"m\"},"
                 "{\"name\":\"default\",\"match\":{\"path\":{\"prefix\":\"/\"}},\"model\":\"m\"},"
                 "{\"name\":\"tie1\",\"priority\":10,\"match\":{\"path\":{\"prefix\":\"/a/"
                 "b\"}},\"model\":\"m\"},"
                 "{\"name\":\"tie2\",\"priority\":10,\"match\":{\"path\":{\"exact\":\"/a/"
                 "b\"}},\"model\":\"m\"},"
                 "{\"name\":\"zero\",\"priority\":0,\"match\":{\"path\":{\"exact\":\"/"
                 "z\"}},\"model\":\"m\"}]}");
    /* Match order: ascending priority, then file order. */
    const char *order[] = {"zero", "tie1", "tie2", "late", "default"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(mg_route_table_rule(t, i)->name, order[i]);
    assert_null(mg_route_table_rule(t, 5));
    assert_int_equal(mg_route_table_rule(t, 4)->priority, 1000);
    /* The longer prefix does not win by itself: priority does. */
    assert_string_equal(match(t, "h", "/a/b"), "tie1");
    assert_string_equal(match(t, "h", "/a/x"), "late");
    assert_string_equal(match(t, "h", "/b"), "default");
    assert_string_equal(match(t, "h", "/z"), "zero");
    mg_route_table_free(t);
}

static void test_first_match_across_buckets(void **state)
{
    (void)state;
    mg_route_table_t *t =
        parse_ok("{\"routes\":["
                 "{\"name\":\"exact-host\",\"priority\":10,\"match\":{\"host\":\"a.example.com\","
                 "\"path\":{\"prefix\":\"/\"}},\"model\":\"m\"},"
                 "{\"name\":\"wild-host\",\"priority\":5,\"match\":{\"host\":\"*.example.com\","
                 "\"path\":{\"prefix\":\"/v\"}},\"model\":\"m\"},"
                 "{\"name\":\"any-host\",\"priority\":1,\"match\":{\"path\":{\"exact\":\"/v/"
                 "x\"}},\"model\":\"m\"},"
                 "{\"name\":\"any-hdr\",\"priority\":0,\"match\":{\"path\":{\"prefix\":\"/"
                 "\"},\"headers\":[{\"name\":\"x-k\",\"present\":true}]},\"model\":\"m\"},"
                 "{\"name\":\"tie-exact\",\"priority\":20,\"match\":{\"host\":\"b.example.com\","
                 "\"path\":{\"prefix\":\"/w\"}},\"model\":\"m\"},"
                 "{\"name\":\"tie-wild\",\"priority\":20,\"match\":{\"host\":\"*.example.com\","
                 "\"path\":{\"prefix\":\"/w\"}},\"model\":\"m\"}]}");
    assert_string_equal(match(t, "a.example.com", "/v/y"),
                        "wild-host"); /* better priority beats exact host */
    assert_string_equal(match(t, "a.example.com", "/v/x"), "any-host");
    assert_string_equal(match(t, "a.example.com", "/u"), "exact-host");
    hdrs_t h = {1, {"x-k"}, {"1"}};
    assert_string_equal(match_h(t, "a.example.com", "/v/x", &h), "any-hdr");
    assert_string_equal(match(t, "b.example.com", "/w"),
                        "tie-exact"); /* equal priority: file order */
    assert_string_equal(match(t, "c.example.com", "/w"), "tie-wild");
    mg_route_table_free(t);
}

static void test_api_and_traffic(void **state)
{
    (void)state;
    mg_route_table_t *t =
        parse_ok("{\"routes\":["
                 "{\"name\":\"p\",\"match\":{\"path\":{\"prefix\":\"/"
                 "p\"}},\"model\":\"digits\",\"api\":\"predict\","
                 "\"traffic\":{\"weights\":{\"1\":90,\"2\":10},\"stable\":\"1\"}},"
                 "{\"name\":\"i\",\"match\":{\"path\":{\"prefix\":\"/i\"}},\"model\":\"other\"}]}");
    mg_route_request_t req = {.host = MG_STR_LIT("h"), .path = MG_STR_LIT("/p/1")};
    const mg_route_rule_t *r = mg_route_table_match(t, &req);
    assert_non_null(r);
    assert_string_equal(r->model, "digits");
    assert_int_equal(r->api, MG_ROUTE_API_PREDICT);
    assert_non_null(r->traffic);
    assert_int_equal(r->traffic->nversions, 2);
    assert_int_equal(r->traffic->stable, 1);
    req.path = MG_STR_LIT("/i");
    r = mg_route_table_match(t, &req);
    assert_string_equal(r->model, "other");
    assert_int_equal(r->api, MG_ROUTE_API_INFER);
    assert_null(r->traffic);
    mg_route_table_free(t);

    t = parse_ok("{\"routes\":[]}");
    assert_int_equal(mg_route_table_count(t), 0);
    assert_null(mg_route_table_match(t, &req));
    assert_null(mg_route_table_match_linear(t, &req));
    mg_route_table_free(t);
    mg_route_table_free(NULL);
}

/* ---- validation ------------------------------------------------------------------------- */

#define R(body) "{\"name\":\"x\"," body "}"
#define M(path) "\"match\":{\"path\":" path "},\"model\":\"m\""
#define OK_A    "{\"name\":\"a\"," M("{\"prefix\":\"/\"}") "}"

static void expect_error(const char *json, const char *want)
{
    mg_route_table_t *t = (mg_route_table_t *)(uintptr_t)1;
    mg_err_t err;
    mg_err_clear(&err);
    int rc = mg_route_table_parse(json, strlen(json), &t, &err);
    if (rc != MG_EINVAL || strstr(err.msg, want) == NULL)
        fail_msg("for %s\nwant rc %d and \"%s\"\ngot rc %d and \"%s\"", json, MG_EINVAL, want, rc,
                 err.msg);
    assert_int_equal(err.code, MG_EINVAL);
    assert_ptr_equal(t, (mg_route_table_t *)(uintptr_t)1); /* *out untouched */
}

static void test_validation(void **state)
{
    (void)state;
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"[", "routes: line 1"},
        {"{\"routes\":[], \"routes\":[]}", "routes: line"},
        {"[]", "must be an object {\"routes\""},
        {"{\"routes\":{}}", "must be an object {\"routes\""},
        {"{\"routes\":[],\"x\":1}", "routes: unknown field 'x'"},
        {"{\"routes\":[" OK_A ",1]}", "route #2: must be an object"},
        {"{\"routes\":[" OK_A "," OK_A ",{" M("{\"prefix\":\"/\"}") "}]}",
         "route 'a': duplicate name"},
        {"{\"routes\":[" OK_A
         ",{\"name\":\"b\"," M("{\"prefix\":\"/b\"}") "},{" M("{\"prefix\":\"/\"}") "}]}",
         "route #3: missing 'name'"},
        {"{\"routes\":[{\"name\":\"\"," M("{\"prefix\":\"/\"}") "}]}",
         "route #1: 'name' must be a string"},
        {"{\"routes\":[{\"name\":7," M("{\"prefix\":\"/\"}") "}]}",
         "route #1: 'name' must be a string"},
        {"{\"routes\":[" R("\"prio\":1," M("{\"prefix\":\"/\"}")) "]}",
         "route 'x': unknown field 'prio'"},
        {"{\"routes\":[" R("\"priority\":-1," M("{\"prefix\":\"/\"}")) "]}",
         "route 'x': 'priority' must be an integer from 0 to 1000000"},
        {"{\"routes\":[" R("\"priority\":1000001," M("{\"prefix\":\"/\"}")) "]}",
         "'priority' must be an integer"},
        {"{\"routes\":[" R("\"priority\":\"1\"," M("{\"prefix\":\"/\"}")) "]}",
         "'priority' must be an integer"},
        {"{\"routes\":[" R("\"priority\":1.5," M("{\"prefix\":\"/\"}")) "]}",
         "'priority' must be an integer"},
        {"{\"routes\":[" R("\"model\":\"m\"") "]}", "route 'x': missing 'match'"},
        {"{\"routes\":[" R("\"match\":[],\"model\":\"m\"") "]}",
         "route 'x': 'match' must be an object"},
        {"{\"routes\":[" R(
             "\"match\":{\"hosts\":\"a\",\"path\":{\"prefix\":\"/\"}},\"model\":\"m\"") "]}",
         "route 'x': match: unknown field 'hosts'"},
        {"{\"routes\":[" R("\"match\":{\"host\":\"a\"},\"model\":\"m\"") "]}",
         "route 'x': missing 'path' in 'match'"},
        {"{\"routes\":[" R(M("{}")) "]}",
         "route 'x': 'path' needs exactly one of exact, prefix, regex"},
        {"{\"routes\":[" R(M("{\"exact\":\"/a\",\"prefix\":\"/a\"}")) "]}",
         "route 'x': 'path' needs exactly one of exact, prefix, regex"},
        {"{\"routes\":[" R(M("\"/a\"")) "]}",
         "route 'x': 'path' needs exactly one of exact, prefix, regex"},
        {"{\"routes\":[" R(M("{\"exct\":\"/a\"}")) "]}", "route 'x': path: unknown field 'exct'"},
        {"{\"routes\":[" R(M("{\"exact\":3}")) "]}", "route 'x': path exact must be a string"},
        {"{\"routes\":[" R(M("{\"prefix\":\"api/\"}")) "]}",
         "route 'x': path prefix 'api/' must start with '/'"},
        {"{\"routes\":[" R(M("{\"exact\":\"\"}")) "]}",
         "route 'x': path exact '' must start with '/'"},
        {"{\"routes\":[{\"name\":\"scores-eu\"," M("{\"regex\":\"^/m/(\"}") "}]}",
         "route 'scores-eu': path regex '^/m/(' does not compile: missing closing parenthesis at "
         "offset 5"},
        {"{\"routes\":[" R(M("{\"regex\":\"a**\"}")) "]}",
         "route 'x': path regex 'a**' does not compile: "},
        {"{\"routes\":[" R(
             "\"match\":{\"host\":\"*.\",\"path\":{\"prefix\":\"/\"}},\"model\":\"m\"") "]}",
         "route 'x': host '*.': bad pattern"},
        {"{\"routes\":[" R(
             "\"match\":{\"host\":\"a.*.com\",\"path\":{\"prefix\":\"/\"}},\"model\":\"m\"") "]}",
         "route 'x': host 'a.*.com': bad pattern"},
        {"{\"routes\":[" R("\"match\":{\"host\":\"*example.com\",\"path\":{\"prefix\":\"/"
                           "\"}},\"model\":\"m\"") "]}",
         "route 'x': host '*example.com': bad pattern"},
        {"{\"routes\":[" R(
             "\"match\":{\"host\":\"a..com\",\"path\":{\"prefix\":\"/\"}},\"model\":\"m\"") "]}",
         "route 'x': host 'a..com': bad pattern"},
        {"{\"routes\":[" R(
             "\"match\":{\"host\":\"a.com:80\",\"path\":{\"prefix\":\"/\"}},\"model\":\"m\"") "]}",
         "route 'x': host 'a.com:80': bad pattern"},
        {"{\"routes\":[" R(
             "\"match\":{\"host\":\"\",\"path\":{\"prefix\":\"/\"}},\"model\":\"m\"") "]}",
         "route 'x': host '': bad pattern"},
        {"{\"routes\":[" R(
             "\"match\":{\"host\":5,\"path\":{\"prefix\":\"/\"}},\"model\":\"m\"") "]}",
         "route 'x': 'host' must be a string"},
        {"{\"routes\":[" R(
             "\"match\":{\"path\":{\"prefix\":\"/\"},\"headers\":{}},\"model\":\"m\"") "]}",
         "route 'x': 'headers' must be a list"},
        {"{\"routes\":[" R("\"match\":{\"path\":{\"prefix\":\"/"
                           "\"},\"headers\":[{\"name\":\"X-T\"}]},\"model\":\"m\"") "]}",
         "route 'x': header 'X-T' needs exactly one of exact, regex, present"},
        {"{\"routes\":[" R("\"match\":{\"path\":{\"prefix\":\"/"
                           "\"},\"headers\":[{\"name\":\"X-T\",\"exact\":\"a\",\"present\":true}]},"
                           "\"model\":\"m\"") "]}",
         "route 'x': header 'X-T' needs exactly one of exact, regex, present"},
        {"{\"routes\":[" R("\"match\":{\"path\":{\"prefix\":\"/"
                           "\"},\"headers\":[{\"name\":\"X-T\",\"exact\":\"a\",\"value\":1}]},"
                           "\"model\":\"m\"") "]}",
         "route 'x': header 'X-T': unknown field 'value'"},
        {"{\"routes\":[" R("\"match\":{\"path\":{\"prefix\":\"/"
                           "\"},\"headers\":[{\"exact\":\"a\"}]},\"model\":\"m\"") "]}",
         "route 'x': headers[0] needs a 'name'"},
        {"{\"routes\":[" R("\"match\":{\"path\":{\"prefix\":\"/\"},\"headers\":[{\"name\":\"X "
                           "T\",\"exact\":\"a\"}]},\"model\":\"m\"") "]}",
         "route 'x': header name 'X T' is not a valid header name"},
        {"{\"routes\":[" R(
             "\"match\":{\"path\":{\"prefix\":\"/"
             "\"},\"headers\":[{\"name\":\"X-T\",\"present\":1}]},\"model\":\"m\"") "]}",
         "route 'x': header 'X-T': 'present' must be true or false"},
        {"{\"routes\":[" R(
             "\"match\":{\"path\":{\"prefix\":\"/"
             "\"},\"headers\":[{\"name\":\"X-T\",\"exact\":1}]},\"model\":\"m\"") "]}",
         "route 'x': header 'X-T': 'exact' must be a string"},
        {"{\"routes\":[" R(
             "\"match\":{\"path\":{\"prefix\":\"/"
             "\"},\"headers\":[{\"name\":\"X-T\",\"regex\":\"(\"}]},\"model\":\"m\"") "]}",
         "route 'x': header 'X-T' regex '(' does not compile: missing closing parenthesis at "
         "offset 1"},
        {"{\"routes\":[" R("\"match\":{\"path\":{\"prefix\":\"/"
                           "\"},\"headers\":[{\"name\":\"X-T\",\"present\":true},"
                           "{\"name\":\"x-t\",\"exact\":\"1\"}]},\"model\":\"m\"") "]}",
         "route 'x': header 'x-t' is matched twice"},
        {"{\"routes\":[" R("\"match\":{\"path\":{\"prefix\":\"/\"}}") "]}",
         "route 'x': missing 'model'"},
        {"{\"routes\":[" R("\"match\":{\"path\":{\"prefix\":\"/\"}},\"model\":\"\"") "]}",
         "route 'x': 'model' must be a string"},
        {"{\"routes\":[" R(M("{\"prefix\":\"/\"}") ",\"api\":\"grpc\"") "]}",
         "route 'x': 'api' must be \"infer\" or \"predict\""},
        {"{\"routes\":[" R(M("{\"prefix\":\"/\"}") ",\"api\":1") "]}",
         "route 'x': 'api' must be \"infer\" or \"predict\""},
        {"{\"routes\":[" R(M("{\"prefix\":\"/\"}") ",\"traffic\":[]") "]}",
         "route 'x': 'traffic' must be an object"},
        {"{\"routes\":[" R(M("{\"prefix\":\"/\"}") ",\"traffic\":{\"weights\":{\"1\":-5}}") "]}",
         "route 'x': traffic: "},
        {"{\"routes\":[" OK_A ",{\"name\":\"b\"," M("{\"prefix\":\"/\"}") "}]}",
         "route 'b': same match as route 'a'"},
        /* Same match: host case, "*" = any host, header order and name case do not matter. */
        {"{\"routes\":[{\"name\":\"a\",\"match\":{\"host\":\"A.com\",\"path\":{\"exact\":\"/"
         "\"}},\"model\":\"m\"},"
         "{\"name\":\"b\",\"match\":{\"host\":\"a.COM\",\"path\":{\"exact\":\"/"
         "\"}},\"model\":\"m\"}]}",
         "route 'b': same match as route 'a'"},
        {"{\"routes\":[" OK_A ",{\"name\":\"b\",\"match\":{\"host\":\"*\",\"path\":{\"prefix\":\"/"
         "\"}},\"model\":\"m\"}]}",
         "route 'b': same match as route 'a'"},
        {"{\"routes\":[{\"name\":\"a\",\"match\":{\"path\":{\"prefix\":\"/"
         "\"},\"headers\":[{\"name\":\"A\",\"exact\":\"1\"},"
         "{\"name\":\"b\",\"present\":true}]},\"model\":\"m\"},"
         "{\"name\":\"b\",\"priority\":3,\"match\":{\"path\":{\"prefix\":\"/"
         "\"},\"headers\":[{\"name\":\"B\",\"present\":true},"
         "{\"name\":\"a\",\"exact\":\"1\"}]},\"model\":\"n\"}]}",
         "route 'b': same match as route 'a'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i].json, cases[i].want);
    /* The error report is optional. */
    mg_route_table_t *none = NULL;
    assert_int_equal(mg_route_table_parse("{\"routes\":[1]}", 14, &none, NULL), MG_EINVAL);
    assert_null(none);

    /* Not duplicates: they differ in path kind, header kind or value. */
    mg_route_table_t *t = parse_ok("{\"routes\":[" OK_A ",{\"name\":\"b\"," M(
        "{\"exact\":\"/\"}") "},"
                             "{\"name\":\"c\",\"match\":{\"path\":{\"prefix\":\"/"
                             "\"},\"headers\":[{\"name\":\"a\",\"present\":true}]},\"model\":\"m\"}"
                             ","
                             "{\"name\":\"d\",\"match\":{\"path\":{\"prefix\":\"/"
                             "\"},\"headers\":[{\"name\":\"a\",\"present\":false}]},\"model\":"
                             "\"m\"},"
                             "{\"name\":\"e\",\"match\":{\"path\":{\"prefix\":\"/"
                             "\"},\"headers\":[{\"name\":\"a\",\"exact\":\"x\"}]},\"model\":\"m\"},"
                             "{\"name\":\"f\",\"match\":{\"path\":{\"prefix\":\"/"
                             "\"},\"headers\":[{\"name\":\"a\",\"regex\":\"x\"}]},\"model\":\"m\"}]"
                             "}");
    assert_int_equal(mg_route_table_count(t), 6);
    mg_route_table_free(t);

    /* More than MG_ROUTE_MAX_RULES rules. */
    mg_buf_t b = {0};
    assert_int_equal(mg_buf_puts(&b, "{\"routes\":["), 0);
    for (int i = 0; i <= MG_ROUTE_MAX_RULES; i++)
        assert_int_equal(mg_buf_puts(&b, i ? ",{}" : "{}"), 0);
    assert_int_equal(mg_buf_puts(&b, "]}"), 0);
    assert_int_equal(mg_buf_append(&b, "", 1), 0);
    expect_error(b.data, "more than the limit of 100000");
    mg_buf_free(&b);
}

/* ---- JSON round trip -------------------------------------------------------------------- */

static void test_to_json_round_trip(void **state)
{
    (void)state;
    const char *json =
        "{\"routes\":["
        "{\"name\":\"q\\\"uote\",\"priority\":7,\"match\":{\"host\":\"*.Example.com\",\"path\":{"
        "\"regex\":\"^/m/\\\\d+$\"},"
        "\"headers\":[{\"name\":\"X-Z\",\"regex\":\"^a\"},{\"name\":\"X-A\",\"exact\":\"v\"},{"
        "\"name\":\"X-P\",\"present\":true},"
        "{\"name\":\"X-N\",\"present\":false}]},\"model\":\"digits\",\"api\":\"predict\","
        "\"traffic\":{\"weights\":{\"1\":90,\"2\":10},\"stable\":\"1\"}},"
        "{\"name\":\"b\",\"match\":{\"host\":\"API.example.com\",\"path\":{\"exact\":\"/"
        "x\"}},\"model\":\"m\"},"
        "{\"name\":\"a\",\"priority\":7,\"match\":{\"path\":{\"prefix\":\"/\"}},\"model\":\"m\"}]}";
    mg_route_table_t *t = parse_ok(json);
    mg_buf_t out = {0}, again = {0};
    assert_int_equal(mg_route_table_to_json(t, &out), 0);
    assert_int_equal(mg_buf_append(&out, "", 1), 0);
    mg_route_table_t *t2 = parse_ok(out.data);
    assert_int_equal(mg_route_table_to_json(t2, &again), 0);
    assert_int_equal(mg_buf_append(&again, "", 1), 0);
    assert_string_equal(out.data, again.data); /* canonical: a fixed point */
    assert_int_equal(mg_route_table_count(t2), 3);
    for (size_t i = 0; i < 3; i++) {
        const mg_route_rule_t *x = mg_route_table_rule(t, i), *y = mg_route_table_rule(t2, i);
        assert_string_equal(x->name, y->name);
        assert_string_equal(x->model, y->model);
        assert_int_equal(x->priority, y->priority);
        assert_int_equal(x->api, y->api);
        assert_int_equal(x->traffic == NULL, y->traffic == NULL);
        if (x->traffic)
            assert_memory_equal(x->traffic, y->traffic, sizeof(*x->traffic));
    }
    /* Lower-case hosts and header names, sorted headers, explicit defaults. */
    assert_non_null(strstr(out.data, "\"host\":\"*.example.com\""));
    assert_non_null(strstr(
        out.data,
        "\"headers\":[{\"name\":\"x-a\",\"exact\":\"v\"},{\"name\":\"x-n\",\"present\":false},"
        "{\"name\":\"x-p\",\"present\":true},{\"name\":\"x-z\",\"regex\":\"^a\"}]"));
    assert_non_null(strstr(out.data, "\"regex\":\"^/m/\\\\d+$\""));
    assert_non_null(strstr(out.data, "\"name\":\"b\",\"priority\":1000,"));
    assert_non_null(strstr(out.data, "\"api\":\"infer\""));
    hdrs_t h = {3, {"x-a", "x-p", "x-z"}, {"v", "", "abc"}};
    assert_string_equal(match_h(t2, "A.example.com", "/m/12", &h), "q\"uote");
    assert_string_equal(match_h(t, "A.example.com", "/m/12", &h), "q\"uote");
    mg_route_table_free(t);
    mg_route_table_free(t2);
    mg_buf_free(&out);
    mg_buf_free(&again);

    t = parse_ok("{\"routes\":[]}");
    assert_int_equal(mg_route_table_to_json(t, &out), 0);
    assert_int_equal(out.len, strlen("{\"routes\":[]}"));
    assert_memory_equal(out.data, "{\"routes\":[]}", out.len);
    mg_route_table_free(t);
    mg_buf_free(&out);
}

/* ---- regex literal prefixes ------------------------------------------------------------- */

/*
 * Each pattern is indexed under the literal prefix it provably starts with, or at the root;
 * the answers must be PCRE2's whatever the index did.
 */
static void test_regex_prefixes(void **state)
{
    (void)state;
    static const struct {
        const char *re, *yes, *no;
    } cases[] = {
        {"^/a/b", "/a/b/c", "/x/a/b"},
        {"^/ab?", "/a", "/b"},
        {"^/ab*c", "/ac", "/abd"},
        {"^/ab+c", "/abbc", "/ac"},
        {"^/ab{2}", "/abb", "/ab"},
        {"^/a|/b", "/x/b", "/x"},
        {"^/a|^/b", "/b", "/c"},
        {"^(/a|/b)c", "/bc", "/ab"},
        {"^/a(/x|/y)", "/a/y", "/a/z"},
        {"^/a[|(]|/b", "/zz/b", "/zz"},
        {"^/a[\\\\]|(]|/b", "/q/b", "/q"},
        {"^/a[]|]|/b", "/q/b", "/q"},
        {"^/a[^]|]|/b", "/q/b", "/q"},
        {"^/a\\\\(|/b", "/q/b", "/q"},
        {"^/a\\\\||/b", "/q/b", "/q"},
        {"^/a\\\\Q(\\\\E|/b", "/q/b", "/q"},
        {"^/a(?#()|/b", "/q/b", "/q"},
        {"^/a[[:alpha:](]|/b", "/q/b", "/q"},
        {"^/a\\\\c(|/b", "/q/b", "/q"},
        {"^/a[\\\\c(]|/b", "/q/b", "/q"},
        {"(?i)^/ab", "/AB", "/ac"},
        {"^/ab(?i)c", "/abC", "/ABc"},
        {"^\\\\/a\\\\.b", "/a.b", "/axb"},
        {"^/a\\\\d", "/a1", "/ab"},
        {"^", "/anything", NULL},
        {"/x$", "/a/x", "/x/a"},
        {"(?x)^/a # (\\n|/b", "/q/b", "/q"},
        {"^/a.", "/ab", "/a"},
        {"^/a$", "/a", "/a/"},
    };
    mg_buf_t b = {0};
    assert_int_equal(mg_buf_puts(&b, "{\"routes\":["), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(
            mg_buf_printf(
                &b,
                "%s{\"name\":\"r%zu\",\"match\":{\"host\":\"h%zu\",\"path\":{\"regex\":\"%s\"}},"
                "\"model\":\"m\"}",
                i ? "," : "", i, i, cases[i].re),
            0);
    assert_int_equal(mg_buf_puts(&b, "]}"), 0);
    assert_int_equal(mg_buf_append(&b, "", 1), 0);
    mg_route_table_t *t = parse_ok(b.data);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char host[16], name[16];
        snprintf(host, sizeof(host), "h%zu", i);
        snprintf(name, sizeof(name), "r%zu", i);
        if (strcmp(match(t, host, cases[i].yes), name) != 0)
            fail_msg("pattern %s should match %s", cases[i].re, cases[i].yes);
        if (cases[i].no != NULL && strcmp(match(t, host, cases[i].no), "") != 0)
            fail_msg("pattern %s should not match %s", cases[i].re, cases[i].no);
        static const char *const probes[] = {"",     "/",    "/a",   "/b", "/ab", "/abc",
                                             "/a/b", "/q/b", "/x/b", "/A", "/aB"};
        for (size_t k = 0; k < sizeof(probes) / sizeof(probes[0]); k++)
            (void)match(t, host, probes[k]);
    }
    mg_route_table_free(t);
    mg_buf_free(&b);
}

/* More lists along one path than the stack holds: the re-walking fallback must agree. */
static void test_many_lists_on_one_path(void **state)
{
    (void)state;
    mg_buf_t b = {0};
    char path[512] = "/";
    assert_int_equal(mg_buf_puts(&b, "{\"routes\":["), 0);
    for (int i = 0; i < 300; i++) {
        path[i + 1] = (char)('a' + i % 26);
        path[i + 2] = '\0';
        /* Descending priorities, header conditions: every list stays a candidate. */
        assert_int_equal(
            mg_buf_printf(
                &b,
                "%s{\"name\":\"p%d\",\"priority\":%d,\"match\":{\"path\":{\"prefix\":\"%s\"},"
                "\"headers\":[{\"name\":\"x-k\",\"exact\":\"%d\"}]},\"model\":\"m\"}",
                i ? "," : "", i, 1000 - i, path, i % 7),
            0);
    }
    assert_int_equal(mg_buf_puts(&b, ",{\"name\":\"last\",\"priority\":5000,\"match\":{\"path\":{"
                                     "\"prefix\":\"/\"}},\"model\":\"m\"}]}"),
                     0);
    assert_int_equal(mg_buf_append(&b, "", 1), 0);
    mg_route_table_t *t = parse_ok(b.data);
    hdrs_t h = {1, {"x-k"}, {"3"}};
    assert_string_equal(match_h(t, "h", path, &h), "p297"); /* deepest with i % 7 == 3 wins */
    h.value[0] = "9";
    assert_string_equal(match_h(t, "h", path, &h), "last");
    for (int v = 0; v < 7; v++) {
        char val[12];
        snprintf(val, sizeof(val), "%d", v);
        h.value[0] = val;
        for (size_t len = 1; len < strlen(path); len += 17) {
            char p[512];
            memcpy(p, path, len);
            p[len] = '\0';
            (void)match_h(t, "h", p, &h);
        }
    }
    mg_route_table_free(t);
    mg_buf_free(&b);
}

/* Nodes with many children (searched by bisection) and host keys too long to sit in a slot. */
static void test_wide_nodes_and_long_hosts(void **state)
{
    (void)state;
    static const char long_host[] =
        "a-very-very-very-long-label-to-test-slots.subdomain.example.com";
    static const char long_wild[] = "*.another-long-label-to-test-inline-slot-keys.example.com";
    mg_buf_t b = {0};
    assert_int_equal(mg_buf_puts(&b, "{\"routes\":["), 0);
    const char chars[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_.~";
    for (size_t i = 0; i < sizeof(chars) - 1; i++) {
        assert_int_equal(
            mg_buf_printf(
                &b,
                "{\"name\":\"k%zu\",\"match\":{\"path\":{\"prefix\":\"/k%c\"}},\"model\":\"m\"},",
                i, chars[i]),
            0);
        assert_int_equal(
            mg_buf_printf(
                &b,
                "{\"name\":\"e%zu\",\"match\":{\"host\":\"%s\",\"path\":{\"exact\":\"/%c\"}},"
                "\"model\":\"m\"},",
                i, long_host, chars[i]),
            0);
        assert_int_equal(
            mg_buf_printf(
                &b,
                "{\"name\":\"w%zu\",\"match\":{\"host\":\"%s\",\"path\":{\"exact\":\"/w%c\"}},"
                "\"model\":\"m\"},",
                i, long_wild, chars[i]),
            0);
    }
    assert_int_equal(mg_buf_puts(&b, "{\"name\":\"z\",\"priority\":2000,\"match\":{\"path\":{"
                                     "\"prefix\":\"/\"}},\"model\":\"m\"}]}"),
                     0);
    assert_int_equal(mg_buf_append(&b, "", 1), 0);
    mg_route_table_t *t = parse_ok(b.data);
    char want[16], path[8], host[128];
    for (size_t i = 0; i < sizeof(chars) - 1; i++) {
        snprintf(path, sizeof(path), "/k%c/x", chars[i]);
        snprintf(want, sizeof(want), "k%zu", i);
        assert_string_equal(match(t, "h", path), want);
        snprintf(path, sizeof(path), "/%c", chars[i]);
        snprintf(want, sizeof(want), "e%zu", i);
        assert_string_equal(match(t, long_host, path), want);
        assert_string_equal(match(t, "h", path), "z");
        snprintf(path, sizeof(path), "/w%c", chars[i]);
        snprintf(want, sizeof(want), "w%zu", i);
        snprintf(host, sizeof(host), "X.%s", long_wild + 2);
        assert_string_equal(match(t, host, path), want);
    }
    assert_string_equal(match(t, "h", "/k!"), "z");
    assert_string_equal(match(t, "h", "/kz"), "k35");
    mg_route_table_free(t);
    mg_buf_free(&b);
}

/* Threads match at once; each gets its own regex match data, freed when it exits. */
typedef struct thread_arg {
    const mg_route_table_t *t;
    int seed;
    int wrong;
} thread_arg_t;

static void *match_thread(void *p)
{
    thread_arg_t *a = p;
    for (int i = 0; i < 3000; i++) {
        char path[32], val[16];
        int k = (i * 7 + a->seed) % 100;
        snprintf(path, sizeof(path), "/m/%d", k);
        snprintf(val, sizeof(val), "v%d", k % 3);
        hdrs_t h = {1, {"x-v"}, {val}};
        mg_route_request_t req = {{"h", 1}, mg_test_str(path), {hdr_lookup, &h}};
        const mg_route_rule_t *r = mg_route_table_match(a->t, &req);
        const char *want = k % 3 == 0 ? "hdr" : k % 2 == 0 ? "even" : "odd";
        if (r == NULL || strcmp(r->name, want) != 0)
            a->wrong++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    mg_route_table_t *t = parse_ok(
        "{\"routes\":["
        "{\"name\":\"hdr\",\"match\":{\"path\":{\"regex\":\"^/m/"
        "\"},\"headers\":[{\"name\":\"X-V\",\"regex\":\"^v0$\"}]},\"model\":\"m\"},"
        "{\"name\":\"even\",\"match\":{\"path\":{\"regex\":\"^/m/"
        "[0-9]*[02468]$\"}},\"model\":\"m\"},"
        "{\"name\":\"odd\",\"match\":{\"path\":{\"regex\":\"[13579]$\"}},\"model\":\"m\"}]}");
    pthread_t th[4];
    thread_arg_t args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg_t){t, i * 13, 0};
        assert_int_equal(pthread_create(&th[i], NULL, match_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].wrong, 0);
    }
    mg_route_table_free(t);
}

/* ---- randomized equivalence ------------------------------------------------------------- */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)((rng_state >> 11) % n);
}

static const char *pick(const char *const *a, size_t n)
{
    return a[rnd((uint32_t)n)];
}
#define PICK(a) pick(a, sizeof(a) / sizeof(a[0]))

/*
 * How wide the random vocabulary is: small tables draw from a few segments, hosts and
 * priorities so that rules overlap and tie a lot; large ones spread out so that most rules
 * are reachable and the index has real depth.
 */
typedef struct spread {
    uint32_t segs;  /* extra segment names "s<k>" beyond the base ones */
    uint32_t hosts; /* host names "h<k>.ex.com" */
    uint32_t prios; /* distinct priorities */
} spread_t;

static spread_t g_spread;

static void rand_seg(char *out, size_t cap)
{
    static const char *const base[] = {"a", "b", "ab", "abc", "x", "1", "12", "m", "v2"};
    uint32_t k = rnd(9 + g_spread.segs);
    if (k < 9)
        snprintf(out, cap, "%s", base[k]);
    else
        snprintf(out, cap, "s%u", k - 9);
}

static void rand_path(char *out, size_t cap, int min_segs, int max_segs)
{
    size_t n = 0;
    int segs_n = min_segs + (int)rnd((uint32_t)(max_segs - min_segs) + 1);
    out[n++] = '/';
    for (int i = 0; i < segs_n && n + 12 < cap; i++) {
        if (i > 0)
            out[n++] = '/';
        rand_seg(out + n, cap - n);
        n += strlen(out + n);
    }
    if (rnd(4) == 0 && n + 1 < cap)
        out[n++] = '/';
    /* Sometimes cut in the middle of a segment. */
    if (n > 2 && rnd(5) == 0)
        n -= rnd((uint32_t)n / 2);
    out[n] = '\0';
}

static void rand_host(char *out, size_t cap, bool for_rule)
{
    uint32_t k = rnd(g_spread.hosts + 2);
    switch (rnd(for_rule ? 10 : 14)) {
    case 0: snprintf(out, cap, "*.ex.com"); break;
    case 1: snprintf(out, cap, "*.h%u.ex.com", k); break;
    case 2: for_rule ? snprintf(out, cap, "*.com") : snprintf(out, cap, "a.b.h%u.ex.com", k); break;
    case 3: for_rule ? snprintf(out, cap, "*") : snprintf(out, cap, "H%u.EX.com", k); break;
    case 4: for_rule ? (void)(out[0] = '\0') : (void)snprintf(out, cap, "x.h%u.ex.com", k); break;
    case 5: snprintf(out, cap, "%s", for_rule ? "ex.com" : "EX.COM"); break;
    case 10:
        snprintf(out, cap, "%s",
                 (const char *[]){"", ".ex.com", "a..ex.com", "com", "[::1]"}[rnd(5)]);
        break;
    case 11: snprintf(out, cap, "h%u.ex.com.", k); break;
    default: snprintf(out, cap, "h%u.ex.com", k); break;
    }
}

static void rand_regex(char *out, size_t cap)
{
    char p[64];
    rand_path(p, sizeof(p), 0, 3);
    switch (rnd(14)) {
    case 0: snprintf(out, cap, "^%s[0-9]+$", p); break;
    case 1: snprintf(out, cap, "^%sb?", p); break;
    case 2: snprintf(out, cap, "^%s(/x|/1)", p); break;
    case 3: snprintf(out, cap, "%s", p); break;
    case 4: snprintf(out, cap, "^%s|^/x", p); break;
    case 5: snprintf(out, cap, "^(%s|/b)", p); break;
    case 6: snprintf(out, cap, "^%s\\\\/", p); break;
    case 7: snprintf(out, cap, "^%s[|(]|/1", p); break;
    case 8: snprintf(out, cap, "%s/1$", p); break;
    case 9: snprintf(out, cap, "^%s.*x", p); break;
    case 10: snprintf(out, cap, "^%s{2}", p); break;
    case 11: snprintf(out, cap, "(?i)^%s", p); break;
    case 12: snprintf(out, cap, "^%s\\\\d", p); break;
    default: snprintf(out, cap, "^%s$", p); break;
    }
}

/* A set of strings (the generated rules' matches), to never generate a duplicate. */
typedef struct keyset {
    char **keys;
    uint64_t *hashes;
    size_t mask;
} keyset_t;

/* True when `k` was already there. */
static bool keyset_add(keyset_t *s, const char *k)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *c = k; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    size_t i = (size_t)h & s->mask;
    for (; s->keys[i] != NULL; i = (i + 1) & s->mask)
        if (s->hashes[i] == h && strcmp(s->keys[i], k) == 0)
            return true;
    s->keys[i] = strdup(k);
    s->hashes[i] = h;
    return false;
}

static const char *const hdr_names[] = {"X-A", "x-b", "X-Tenant"};
static const char *const hdr_values[] = {"1", "2", "eu", ""};
static const char *const hdr_regexes[] = {"^e", "[0-9]", "u$", "^$"};

#define RULE_PATHS_MAX 20000
static char rule_paths[RULE_PATHS_MAX][96];
static char rule_hosts[RULE_PATHS_MAX][48];
static int nrule_paths;

static void rand_table(mg_buf_t *b, int nrules, int *nregex)
{
    keyset_t ks;
    size_t cap = 16;
    while (cap < 2 * (size_t)nrules)
        cap <<= 1;
    ks.keys = calloc(cap, sizeof(char *));
    ks.hashes = calloc(cap, sizeof(uint64_t));
    ks.mask = cap - 1;
    nrule_paths = 0;
    assert_int_equal(mg_buf_puts(b, "{\"routes\":["), 0);
    int made = 0;
    while (made < nrules) {
        char host[48], path[96], key[512];
        rand_host(host, sizeof(host), true);
        int kind = (int)rnd(10);
        kind = kind < 4 ? 1 : kind < 7 ? 0 : 2; /* prefix, exact, regex */
        if (kind == 2)
            rand_regex(path, sizeof(path));
        else
            rand_path(path, sizeof(path), rnd(20) == 0 ? 0 : 1, 3);
        int nh = rnd(3) == 0 ? 1 + (int)rnd(2) : 0;
        const char *hn[2] = {NULL, NULL}, *hv[2] = {NULL, NULL};
        int hk[2] = {0, 0};
        uint32_t first = rnd(3), second = (first + 1 + rnd(2)) % 3;
        if (nh == 2 && strcasecmp(hdr_names[first], hdr_names[second]) > 0) {
            uint32_t x = first;
            first = second;
            second = x;
        }
        for (int i = 0; i < nh; i++) {
            hn[i] = hdr_names[i == 0 ? first : second];
            hk[i] = (int)rnd(4);
            hv[i] = hk[i] == 0 ? PICK(hdr_values) : hk[i] == 1 ? PICK(hdr_regexes) : NULL;
        }
        /* The match key as the table sees it: case-folded host and header names, "*" = any. */
        char hkey[128] = "";
        for (int i = 0; i < nh; i++) {
            size_t l = strlen(hkey);
            snprintf(hkey + l, sizeof(hkey) - l, "|%s:%d:%s", hn[i], hk[i], hv[i] ? hv[i] : "");
            for (char *c = hkey + l; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char)(*c + 32);
        }
        snprintf(key, sizeof(key), "%s %d %s%s", strcmp(host, "*") == 0 ? "" : host, kind, path,
                 hkey);
        if (keyset_add(&ks, key))
            continue;
        *nregex += kind == 2;
        if (kind != 2 && nrule_paths < RULE_PATHS_MAX) {
            snprintf(rule_paths[nrule_paths], sizeof(rule_paths[0]), "%s", path);
            snprintf(rule_hosts[nrule_paths++], sizeof(rule_hosts[0]), "%s",
                     host[0] == '*' ? "q" : host);
        }
        static const char *const kinds[] = {"exact", "prefix", "regex"};
        assert_int_equal(mg_buf_printf(b, "%s{\"name\":\"r%d\",", made ? ",\n" : "", made), 0);
        /* Wide tables put broad rules (short paths, broad hosts) last, as operators do. */
        bool broad = strlen(path) < 5 || host[0] == '\0' || strcmp(host, "*") == 0 ||
                     strcmp(host, "*.com") == 0 || strcmp(host, "*.ex.com") == 0;
        if (g_spread.segs > 0 && broad)
            assert_int_equal(mg_buf_printf(b, "\"priority\":%u,", 100000 + rnd(g_spread.prios)), 0);
        else if (rnd(4) != 0)
            assert_int_equal(mg_buf_printf(b, "\"priority\":%u,", rnd(g_spread.prios) * 10), 0);
        assert_int_equal(mg_buf_puts(b, "\"match\":{"), 0);
        if (host[0] != '\0')
            assert_int_equal(mg_buf_printf(b, "\"host\":\"%s\",", host), 0);
        assert_int_equal(mg_buf_printf(b, "\"path\":{\"%s\":\"%s\"}", kinds[kind], path), 0);
        if (nh > 0) {
            assert_int_equal(mg_buf_puts(b, ",\"headers\":["), 0);
            for (int i = 0; i < nh; i++) {
                assert_int_equal(mg_buf_printf(b, "%s{\"name\":\"%s\",", i ? "," : "", hn[i]), 0);
                if (hk[i] == 0)
                    assert_int_equal(mg_buf_printf(b, "\"exact\":\"%s\"}", hv[i]), 0);
                else if (hk[i] == 1)
                    assert_int_equal(mg_buf_printf(b, "\"regex\":\"%s\"}", hv[i]), 0);
                else
                    assert_int_equal(
                        mg_buf_printf(b, "\"present\":%s}", hk[i] == 2 ? "true" : "false"), 0);
            }
            assert_int_equal(mg_buf_puts(b, "]"), 0);
        }
        assert_int_equal(mg_buf_puts(b, "},\"model\":\"m\"}"), 0);
        made++;
    }
    assert_int_equal(mg_buf_puts(b, "]}"), 0);
    assert_int_equal(mg_buf_append(b, "", 1), 0);
    for (size_t i = 0; i <= ks.mask; i++)
        free(ks.keys[i]);
    free(ks.keys);
    free(ks.hashes);
}

/* One random table and `nreq` random requests; returns how many distinct rules matched. */
static int random_round(uint64_t seed, spread_t sp, int nrules, int nreq, int *hits_out)
{
    rng_state = seed;
    g_spread = sp;
    mg_buf_t b = {0};
    int nregex = 0;
    rand_table(&b, nrules, &nregex);
    mg_route_table_t *t = parse_ok(b.data);
    assert_int_equal(mg_route_table_count(t), (size_t)nrules);
    assert_true(nregex > nrules / 10);

    static const char *const req_names[] = {"x-a", "X-B", "x-tenant", "x-other"};
    static const char *const req_values[] = {"1", "2", "eu", "us", "e1", ""};
    int hits = 0, distinct = 0;
    char *seen = calloc((size_t)nrules, 1);
    for (int i = 0; i < nreq; i++) {
        char host[48], path[128];
        rand_host(host, sizeof(host), false);
        if (rnd(2) == 0 && nrule_paths > 0) {
            /* Start from a rule's own host and path so that exact and prefix rules get hit. */
            int k = (int)rnd((uint32_t)nrule_paths);
            snprintf(path, sizeof(path), "%s", rule_paths[k]);
            if (rnd(2) == 0)
                snprintf(host, sizeof(host), "%s", rule_hosts[k]);
        } else {
            rand_path(path, sizeof(path), 0, 4);
        }
        if (rnd(4) == 0) {
            size_t l = strlen(path);
            static const char extra[] = "/ab1x.";
            for (uint32_t k = 1 + rnd(4); k > 0 && l + 1 < sizeof(path); k--)
                path[l++] = extra[rnd(sizeof(extra) - 1)];
            path[l] = '\0';
        }
        hdrs_t h = {0, {0}, {0}};
        for (int k = 0; k < 4; k++) {
            if (rnd(2) == 0) {
                h.name[h.n] = req_names[k];
                h.value[h.n++] = PICK(req_values);
            }
        }
        const char *name = match_h(t, host, path, &h);
        if (name[0] != '\0') {
            hits++;
            int idx = atoi(name + 1);
            distinct += !seen[idx];
            seen[idx] = 1;
        }
    }
    if (nrules >= 1000)
        print_message("random table: %d rules (%d regex), %d requests, %d matched, %d distinct "
                      "rules matched\n",
                      nrules, nregex, nreq, hits, distinct);
    free(seen);
    mg_route_table_free(t);
    mg_buf_free(&b);
    *hits_out += hits;
    return distinct;
}

static void test_random_equivalence(void **state)
{
    (void)state;
    /* Dense: few names, many overlaps and ties. */
    int hits = 0;
    for (uint64_t seed = 1; seed <= 60; seed++)
        random_round(seed * 0x9E3779B97F4A7C15ull, (spread_t){0, 3, 4}, 40, 500, &hits);
    assert_true(hits > 60 * 500 / 4);
    /* Wide: thousands of rules of every kind, most of them reachable. */
    hits = 0;
    int distinct = random_round(0x1234567ull, (spread_t){40, 300, 200}, 4000, 40000, &hits);
    assert_true(hits > 40000 / 4);
    assert_true(distinct > 600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_priorities_and_ties),
        cmocka_unit_test(test_first_match_across_buckets),
        cmocka_unit_test(test_api_and_traffic),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_to_json_round_trip),
        cmocka_unit_test(test_regex_prefixes),
        cmocka_unit_test(test_many_lists_on_one_path),
        cmocka_unit_test(test_wide_nodes_and_long_hosts),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_random_equivalence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
