/*
 * HTTP/1.1 framing without a socket (net/http1_parse.h): heads and their limits (each with its
 * code, so its status), framing headers, chunked bodies, and the same verdict whether the
 * input comes at once or a byte at a time.
 */
#include "net/http1_parse.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static mg_http1_limits_t lim;
static mg_http1_span_t spans[101];

static int setup(void **state)
{
    (void)state;
    mg_http1_limits_default(&lim);
    return 0;
}

/* Frames `text` (copied: names are lower-cased in place) at once, or `step` bytes at a time. */
static int frame(const char *text, size_t step, mg_http1_head_t *h, mg_buf_t *body, mg_err_t *err)
{
    size_t n = strlen(text);
    char *b = malloc(n + 1);
    memcpy(b, text, n + 1);
    memset(h, 0, sizeof(*h));
    h->hdrs = spans;
    mg_http1_chunked_t ch = {0};
    int rc = 0, in_body = 0;
    for (size_t have = step ? 1 : n;;
         have = have + (step ? step : n) < n ? have + (step ? step : n) : n) {
        if (!in_body) {
            rc = mg_http1_scan_head(h, &lim, b, have, err);
            if (rc == 1 && (rc = mg_http1_parse_head(h, &lim, b, err)) == 0) {
                in_body = 1;
                ch.pos = h->head_len;
            }
        }
        if (in_body) {
            rc = h->chunked ? mg_http1_read_chunked(&ch, &lim, b, have, body, err)
                            : have - h->head_len >= h->content_length;
        }
        if (rc != 0 || have == n)
            break;
    }
    free(b);
    return rc;
}

static void expect(const char *text, int want, const char *fragment)
{
    for (size_t step = 0; step <= 1; step++) {
        mg_http1_head_t h;
        mg_buf_t body = {0};
        mg_err_t err = {0};
        int rc = frame(text, step, &h, &body, &err);
        if (rc != want)
            fail_msg("'%.60s' (step %zu): got %d (%s), want %d", text, step, rc, err.msg, want);
        if (fragment != NULL && strstr(err.msg, fragment) == NULL)
            fail_msg("'%.60s': message '%s' lacks '%s'", text, err.msg, fragment);
        mg_buf_free(&body);
    }
}

static void test_heads(void **state)
{
    (void)state;
    mg_http1_head_t h;
    mg_buf_t body = {0};
    mg_err_t err;
    assert_int_equal(
        frame("GET /v2/x?y=1 HTTP/1.1\r\nHost: a\r\nX-Mixed-Case: v  \r\n\r\n", 0, &h, &body, &err),
        1);
    assert_int_equal(h.version_minor, 1);
    assert_true(h.keep_alive);
    assert_int_equal(h.nlines, 3);
    assert_int_equal(h.target.len, 9);
    expect("\r\nGET / HTTP/1.0\r\n\r\n", 1, NULL); /* a blank line before the request is skipped */
    expect("GET / HTTP/1.1\r\nHost: a\r\n", 0, NULL);
    expect("GARBAGE\r\n\r\n", MG_EPARSE, "request line");
    expect("GET / HTTP/2.0\r\n\r\n", MG_EPARSE, "HTTP/1.0 and HTTP/1.1 only");
    expect("GET x HTTP/1.1\r\n\r\n", MG_EPARSE, "starting with '/'");
    expect("GET / HTTP/1.1\nHost: a\n\n", MG_EPARSE, "CRLF");
    expect("GET / HTTP/1.1\r\nX : a\r\n\r\n", MG_EPARSE, "malformed header");
    expect("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", MG_EPARSE, "folding");
    expect("GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", MG_EPARSE, "control character");
    /* values are tested eight bytes at a time: a control byte at every place of a long one */
    for (size_t at = 0; at < 40; at++) {
        char text[128], value[41];
        memset(value, 'v', 40);
        value[40] = '\0';
        value[at] = at % 2 ? '\x7f' : '\x1b';
        snprintf(text, sizeof(text), "GET / HTTP/1.1\r\nX-Long: %s\r\n\r\n", value);
        expect(text, MG_EPARSE, "control character");
        value[at] = '\t'; /* HTAB is allowed anywhere in a value, as is obs-text */
        value[(at + 7) % 40] = '\xe9';
        snprintf(text, sizeof(text), "GET / HTTP/1.1\r\nX-Long: a%s\r\n\r\n", value);
        expect(text, 1, NULL);
    }
}

static void test_limits(void **state)
{
    (void)state;
    char *big = malloc(20000);
    memset(big, 'a', 19999);
    big[19999] = '\0';
    memcpy(big, "GET /", 5);
    expect(big, MG_EURITOOLONG, "longer than 8192 bytes"); /* refused before its end arrives */
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    expect(big, MG_EHEADERS, "header field 1 is longer than 8192");
    free(big);

    char many[2000] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 101; i++)
        strcat(many, "A: b\r\n");
    strcat(many, "\r\n");
    expect(many, MG_EHEADERS, "more than 100 header fields");

    mg_http1_limits_t keep = lim;
    lim.max_header_bytes = 300;
    char section[2000] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 8; i++)
        strcat(section, "Header-Name: 0123456789012345678901234567890123456789\r\n");
    expect(section, MG_EHEADERS, "header section is larger than 300");
    lim = keep;
}

static void test_framing(void **state)
{
    (void)state;
    mg_http1_head_t h;
    mg_buf_t body = {0};
    mg_err_t err;
    assert_int_equal(frame("POST / HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
                           0, &h, &body, &err),
                     1);
    assert_int_equal(h.content_length, 3);
    assert_false(h.keep_alive);
    assert_int_equal(frame("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 0, &h, &body, &err),
                     1);
    assert_true(h.keep_alive);
    expect("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nab", 0, NULL);
    expect("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", 1, NULL);
    expect("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab", MG_EPARSE,
           "two different");
    expect("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", MG_EPARSE, "decimal byte count");
    expect("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", MG_EPARSE,
           "together are refused");
    expect("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", MG_EPARSE,
           "only a single chunked");
    expect("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", MG_EPARSE, "HTTP/1.0");
    expect("POST / HTTP/1.1\r\nExpect: magic\r\n\r\n", MG_EPARSE, "Expect");
    expect("POST / HTTP/1.1\r\nContent-Length: 67108865\r\n\r\n", MG_ETOOBIG,
           "67108864-byte limit");
}

static void test_chunked(void **state)
{
    (void)state;
    mg_http1_head_t h;
    mg_err_t err;
    for (size_t step = 0; step <= 1; step++) {
        mg_buf_t body = {0};
        assert_int_equal(frame("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"
                               "5;name=v\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nT: x\r\n\r\n",
                               step, &h, &body, &err),
                         1);
        assert_int_equal(body.len, 12);
        assert_memory_equal(body.data, "hello world!", 12);
        mg_buf_free(&body);
    }
    const char *head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    char buf[400];
    snprintf(buf, sizeof(buf), "%s10000000000000001\r\n", head);
    expect(buf, MG_EPARSE, "more than 16 hex digits");
    snprintf(buf, sizeof(buf), "%sffffffffffffffff\r\n", head);
    expect(buf, MG_ETOOBIG, "67108864-byte limit");
    snprintf(buf, sizeof(buf), "%s3\r\nabcd\r\n", head);
    expect(buf, MG_EPARSE, "longer than its size");
    snprintf(buf, sizeof(buf), "%sxyz\r\n", head);
    expect(buf, MG_EPARSE, "chunk size");

    mg_http1_limits_t keep = lim;
    lim.max_chunks = 3;
    snprintf(buf, sizeof(buf), "%s1\r\na\r\n1\r\nb\r\n1\r\nc\r\n1\r\nd\r\n0\r\n\r\n", head);
    expect(buf, MG_ETOOBIG, "more than 3 chunks");
    lim = keep;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heads),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_chunked),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
