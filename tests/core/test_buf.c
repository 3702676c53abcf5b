#include "core/buf.h"
#include "core/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_buf_append_and_printf(void **state)
{
    (void)state;
    mg_buf_t b = {0};
    assert_int_equal(mg_buf_puts(&b, "abc"), 0);
    assert_int_equal(mg_buf_printf(&b, "-%d-%s", 42, "x"), 0);
    assert_int_equal(b.len, 8);
    assert_memory_equal(b.data, "abc-42-x", 8);
    /* Growth past the first block keeps what was written. */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(mg_buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(b.len, 8 + 10000);
    assert_memory_equal(b.data + 8 + 9990, "0123456789", 10);
    mg_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_true(b.cap >= 10008);
    mg_buf_free(&b);
    assert_null(b.data);
}

static void test_buf_json_string_escapes(void **state)
{
    (void)state;
    mg_buf_t b = {0};
    const char in[] = "a\"b\\c\nd\te\x01\x1f\xc3\xa9";
    assert_int_equal(mg_buf_json_string(&b, in, sizeof(in) - 1), 0);
    const char want[] = "\"a\\\"b\\\\c\\nd\\te\\u0001\\u001f\xc3\xa9\"";
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.data, want, b.len);
    mg_buf_free(&b);
}

/* RFC 8259's escapes written out plainly, to hold mg_buf_json_string against. */
static size_t escape_ref(const char *s, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            *o++ = '\\';
            *o++ = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (c < 0x20) {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    return (size_t)(o - out);
}

static void test_buf_json_string_every_place(void **state)
{
    (void)state;
    /* each byte that needs an escape, and UTF-8 and DEL that do not, at every place of strings
       of 1 to 40 bytes, with a second one elsewhere */
    static const unsigned char odd[] = {'"',  '\\', '\n', '\t', 0x01, 0x1f,
                                        0x00, 0x7f, 0x80, 0xff, 0x20};
    char in[41], want[300];
    for (size_t n = 1; n <= 40; n++) {
        for (size_t at = 0; at < n; at++) {
            for (size_t k = 0; k < sizeof(odd); k++) {
                memset(in, 'a' + (int)(n % 26), n);
                in[at] = (char)odd[k];
                in[(at * 7 + 3) % n] = (char)odd[(k + 1) % sizeof(odd)];
                mg_buf_t b = {0};
                assert_int_equal(mg_buf_json_string(&b, in, n), 0);
                size_t wn = escape_ref(in, n, want);
                assert_int_equal(b.len, wn);
                assert_memory_equal(b.data, want, wn);
                mg_buf_free(&b);
            }
        }
    }
}

static void test_arena_alignment_reuse_and_big_blocks(void **state)
{
    (void)state;
    mg_arena_t a;
    mg_arena_init(&a, 4096);
    char *p1 = mg_arena_alloc(&a, 1);
    char *p2 = mg_arena_alloc(&a, 100);
    assert_non_null(p1);
    assert_non_null(p2);
    assert_int_equal((uintptr_t)p1 % 64, 0);
    assert_int_equal((uintptr_t)p2 % 64, 0);
    assert_true(p2 >= p1 + 64);
    char *big = mg_arena_alloc(&a, 1 << 20);
    assert_non_null(big);
    memset(big, 7, 1 << 20);
    char *s = mg_arena_strndup(&a, "hello world", 5);
    assert_string_equal(s, "hello");
    mg_arena_reset(&a);
    /* After a reset the kept (largest) block serves a same-size request again. */
    char *again = mg_arena_alloc(&a, 1 << 20);
    assert_ptr_equal(again, big);
    assert_null(mg_arena_alloc(&a, SIZE_MAX - 10));
    mg_arena_free(&a);
}

static void test_mul_size_overflow(void **state)
{
    (void)state;
    size_t out = 0;
    assert_int_equal(mg_mul_size(1 << 20, 1 << 10, &out), 0);
    assert_int_equal(out, (size_t)1 << 30);
    assert_int_equal(mg_mul_size(SIZE_MAX / 2, 3, &out), MG_ERANGE);
}

static void test_err(void **state)
{
    (void)state;
    mg_err_t e;
    assert_int_equal(mg_err_set(&e, MG_ESHAPE, "input '%s': bad", "x"), MG_ESHAPE);
    assert_int_equal(e.code, MG_ESHAPE);
    assert_string_equal(e.msg, "input 'x': bad");
    assert_int_equal(mg_err_set(NULL, MG_EINVAL, "ignored"), MG_EINVAL);
    mg_err_clear(&e);
    assert_int_equal(e.code, 0);
    assert_string_equal(mg_strerror(MG_ENOENT), "No such file or directory");
    assert_string_equal(mg_strerror(MG_EUNAVAIL), "not ready");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_and_printf),
        cmocka_unit_test(test_buf_json_string_escapes),
        cmocka_unit_test(test_buf_json_string_every_place),
        cmocka_unit_test(test_arena_alignment_reuse_and_big_blocks),
        cmocka_unit_test(test_mul_size_overflow),
        cmocka_unit_test(test_err),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
