/* net/encoding: codings parsed and chosen as Triton does, inflate bounded, round trips. */
#include "net/encoding.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S(x) x, strlen(x)

static void test_parse(void **state)
{
    (void)state;
    mg_encoding_t e;
    mg_err_t err;
    assert_int_equal(mg_encoding_parse(S(" GZip "), &e, &err), 0);
    assert_int_equal(e, MG_ENCODING_GZIP);
    assert_int_equal(mg_encoding_parse(S("x-gzip"), &e, &err), 0);
    assert_int_equal(e, MG_ENCODING_GZIP);
    assert_int_equal(mg_encoding_parse(S("deflate"), &e, &err), 0);
    assert_int_equal(e, MG_ENCODING_DEFLATE);
    assert_int_equal(mg_encoding_parse(S(""), &e, &err), 0);
    assert_int_equal(e, MG_ENCODING_IDENTITY);
    assert_int_equal(mg_encoding_parse(S("br"), &e, &err), MG_EENCODING);
    assert_non_null(strstr(err.msg, "'br'"));
    assert_int_equal(mg_encoding_parse(S("gzip, deflate"), &e, &err), MG_EENCODING);
}

static void test_accept(void **state)
{
    (void)state;
    assert_int_equal(mg_encoding_accept(S("gzip")), MG_ENCODING_GZIP);
    assert_int_equal(mg_encoding_accept(S("deflate, gzip")), MG_ENCODING_DEFLATE);
    assert_int_equal(mg_encoding_accept(S("gzip;q=0.5, deflate;q=0.8")), MG_ENCODING_DEFLATE);
    assert_int_equal(mg_encoding_accept(S("gzip;q=0")), MG_ENCODING_IDENTITY);
    assert_int_equal(mg_encoding_accept(S("br, *")), MG_ENCODING_IDENTITY);
    assert_int_equal(mg_encoding_accept(S("gzip;q=x")), MG_ENCODING_IDENTITY);
    assert_int_equal(mg_encoding_accept(S("")), MG_ENCODING_IDENTITY);
}

static void round_trip(mg_encoding_t e)
{
    size_t len = 100000, n, m;
    char *in = malloc(len);
    for (size_t i = 0; i < len; i++)
        in[i] = (char)('a' + (i * 7 % 13));
    size_t cap = mg_encoding_bound(len);
    char *z = malloc(cap), *out = NULL;
    assert_int_equal(mg_encoding_compress(e, in, len, z, cap, &n), 0);
    assert_true(n < len);
    mg_err_t err;
    assert_int_equal(mg_encoding_inflate(e, z, n, len, &out, &m, &err), 0);
    assert_int_equal(m, len);
    assert_memory_equal(out, in, len);
    assert_int_equal(out[len], '\0');
    free(out);
    /* One byte under the size: too big, nothing handed back. */
    out = NULL;
    assert_int_equal(mg_encoding_inflate(e, z, n, len - 1, &out, &m, &err), MG_ETOOBIG);
    assert_null(out);
    /* Truncated, and junk. */
    assert_int_equal(mg_encoding_inflate(e, z, n - 5, len, &out, &m, &err), MG_EPARSE);
    assert_int_equal(mg_encoding_inflate(e, in, 100, len, &out, &m, &err), MG_EPARSE);
    assert_null(out);
    free(z);
    free(in);
}

static void test_round_trips(void **state)
{
    (void)state;
    round_trip(MG_ENCODING_GZIP);
    round_trip(MG_ENCODING_DEFLATE);
}

static void test_gzip_members_and_trailing_junk(void **state)
{
    (void)state;
    size_t cap = mg_encoding_bound(5), n;
    char *z = malloc(2 * cap + 1), *out = NULL;
    assert_int_equal(mg_encoding_compress(MG_ENCODING_GZIP, "hello", 5, z, cap, &n), 0);
    memcpy(z + n, z, n);
    mg_err_t err;
    size_t m;
    assert_int_equal(mg_encoding_inflate(MG_ENCODING_GZIP, z, 2 * n, 100, &out, &m, &err), 0);
    assert_int_equal(m, 10);
    assert_memory_equal(out, "hellohello", 10);
    free(out);
    assert_int_equal(mg_encoding_compress(MG_ENCODING_DEFLATE, "hello", 5, z, cap, &n), 0);
    z[n] = 'x';
    assert_int_equal(mg_encoding_inflate(MG_ENCODING_DEFLATE, z, n + 1, 100, &out, &m, &err),
                     MG_EPARSE);
    assert_non_null(strstr(err.msg, "follow the end"));
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_accept),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_gzip_members_and_trailing_junk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
