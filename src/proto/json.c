/*
 * JSON (proto/json.h): the pull parser's cursor operations, an iterative skip for values of
 * any kind, and the writers the encoders share.
 */
#include "proto/json.h"

#include <string.h>

static inline bool is_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static inline void skip_ws(mg_json_t *j)
{
    while (j->pos < j->len && is_ws(j->base[j->pos]))
        j->pos++;
}

void mg_json_init(mg_json_t *j, const char *s, size_t len)
{
    j->base = s;
    j->len = len;
    j->pos = 0;
    j->depth = 0;
    j->fresh = false;
    j->err_pos = 0;
    j->err_what = NULL;
}

int mg_json_fail(mg_json_t *j, const char *what)
{
    if (j->err_what == NULL) {
        j->err_pos = j->pos;
        j->err_what = what;
    }
    return MG_EPARSE;
}

int mg_json_error(const mg_json_t *j, mg_err_t *err)
{
    return mg_err_set(err, MG_EPARSE, "malformed JSON at offset %zu: %s", j->err_pos,
                      j->err_what != NULL ? j->err_what : "invalid input");
}

/* Fails with `what`, or with "unexpected end of input" when nothing is left to read. */
static int fail_expect(mg_json_t *j, const char *what)
{
    return mg_json_fail(j, j->pos >= j->len ? "unexpected end of input" : what);
}

mg_json_type_t mg_json_peek(mg_json_t *j)
{
    skip_ws(j);
    if (j->pos >= j->len)
        return MG_JSON_END;
    switch (j->base[j->pos]) {
    case '{': return MG_JSON_OBJECT;
    case '[': return MG_JSON_ARRAY;
    case '"': return MG_JSON_STRING;
    case 't': return MG_JSON_TRUE;
    case 'f': return MG_JSON_FALSE;
    case 'n': return MG_JSON_NULL;
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9': return MG_JSON_NUMBER;
    default: return MG_JSON_INVALID;
    }
}

/* ---- strings ---- */

static inline int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The code unit of the 4 hex digits at s[i, i+4), or -1 when short or not hex. */
static long hex4(const unsigned char *s, size_t i, size_t len)
{
    if (i > len || len - i < 4)
        return -1;
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(s[i + (size_t)k]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

int mg_json_read_string(mg_json_t *j, mg_str_t *raw)
{
    skip_ws(j);
    if (j->pos >= j->len || j->base[j->pos] != '"')
        return fail_expect(j, "expected a string");
    const unsigned char *s = (const unsigned char *)j->base;
    size_t len = j->len;
    size_t start = j->pos + 1;
    size_t i = start;
    for (;;) {
        while (i < len && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20)
            i++;
        if (i >= len) {
            j->pos = i;
            return mg_json_fail(j, "unterminated string");
        }
        if (s[i] == '"')
            break;
        if (s[i] < 0x20) {
            j->pos = i;
            return mg_json_fail(j, "control character in string");
        }
        /* a backslash */
        if (i + 1 >= len) {
            j->pos = i + 1;
            return mg_json_fail(j, "unterminated string");
        }
        switch (s[i + 1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't': i += 2; continue;
        case 'u': break;
        default: j->pos = i; return mg_json_fail(j, "invalid escape");
        }
        long cu = hex4(s, i + 2, len);
        if (cu < 0) {
            j->pos = i;
            return mg_json_fail(j, "invalid \\u escape");
        }
        if (cu >= 0xdc00 && cu <= 0xdfff) {
            j->pos = i;
            return mg_json_fail(j, "unpaired surrogate");
        }
        if (cu >= 0xd800 && cu <= 0xdbff) {
            long lo = -1;
            if (len - i >= 8 && s[i + 6] == '\\' && s[i + 7] == 'u')
                lo = hex4(s, i + 8, len);
            if (lo < 0xdc00 || lo > 0xdfff) {
                j->pos = i;
                return mg_json_fail(j, "unpaired surrogate");
            }
            i += 6;
        }
        i += 6;
    }
    raw->ptr = j->base + start;
    raw->len = i - start;
    j->pos = i + 1;
    return 0;
}

/*
 * Decodes the escape at p (a validated one, from mg_json_read_string) into *cp and returns
 * its length in bytes.
 */
static size_t decode_escape(const unsigned char *p, unsigned long *cp)
{
    switch (p[1]) {
    case 'b': *cp = '\b'; return 2;
    case 'f': *cp = '\f'; return 2;
    case 'n': *cp = '\n'; return 2;
    case 'r': *cp = '\r'; return 2;
    case 't': *cp = '\t'; return 2;
    case 'u': break;
    default: *cp = p[1]; return 2; /* " \ / */
    }
    unsigned long hi = 0;
    for (int k = 2; k < 6; k++)
        hi = hi << 4 | (unsigned long)hexval(p[k]);
    if (hi < 0xd800 || hi > 0xdbff) {
        *cp = hi;
        return 6;
    }
    unsigned long lo = 0;
    for (int k = 8; k < 12; k++)
        lo = lo << 4 | (unsigned long)hexval(p[k]);
    *cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
    return 12;
}

static size_t utf8_encode(unsigned long cp, unsigned char *o)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

int mg_json_unescape(mg_str_t raw, mg_arena_t *arena, mg_str_t *out)
{
    const char *bs = raw.len ? memchr(raw.ptr, '\\', raw.len) : NULL;
    if (bs == NULL) {
        *out = raw;
        return 0;
    }
    /* An escape never decodes to more bytes than it takes (\uXXXX: 6 -> at most 3). */
    unsigned char *dst = mg_arena_alloc(arena, raw.len + 1);
    if (dst == NULL)
        return MG_ENOMEM;
    const unsigned char *p = (const unsigned char *)raw.ptr;
    const unsigned char *end = p + raw.len;
    size_t prefix = (size_t)(bs - raw.ptr);
    memcpy(dst, p, prefix);
    unsigned char *o = dst + prefix;
    p += prefix;
    while (p < end) {
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        unsigned long cp;
        p += decode_escape(p, &cp);
        o += utf8_encode(cp, o);
    }
    *o = '\0';
    out->ptr = (const char *)dst;
    out->len = (size_t)(o - dst);
    return 0;
}

bool mg_json_str_eq_escaped(mg_str_t raw, const char *lit, size_t n)
{
    if (raw.len < n || raw.len == 0 || memchr(raw.ptr, '\\', raw.len) == NULL)
        return false; /* escapes only ever shrink the text */
    const unsigned char *p = (const unsigned char *)raw.ptr;
    const unsigned char *end = p + raw.len;
    const unsigned char *l = (const unsigned char *)lit;
    size_t at = 0;
    while (p < end) {
        unsigned char tmp[4];
        size_t k;
        if (*p == '\\') {
            unsigned long cp;
            p += decode_escape(p, &cp);
            k = utf8_encode(cp, tmp);
        } else {
            tmp[0] = *p++;
            k = 1;
        }
        if (n - at < k || memcmp(l + at, tmp, k) != 0)
            return false;
        at += k;
    }
    return at == n;
}

/* ---- scalars ---- */

int mg_json_read_number(mg_json_t *j, mg_numfmt_decimal_t *num)
{
    skip_ws(j);
    size_t n = mg_numfmt_scan(j->base + j->pos, j->len - j->pos, num);
    if (n == 0)
        return fail_expect(j, "invalid number");
    j->pos += n;
    return 0;
}

static bool match_lit(mg_json_t *j, const char *lit, size_t n)
{
    if (j->len - j->pos < n || memcmp(j->base + j->pos, lit, n) != 0)
        return false;
    j->pos += n;
    return true;
}

int mg_json_read_bool(mg_json_t *j, bool *v)
{
    skip_ws(j);
    if (match_lit(j, "true", 4)) {
        *v = true;
        return 0;
    }
    if (match_lit(j, "false", 5)) {
        *v = false;
        return 0;
    }
    return fail_expect(j, "expected true or false");
}

int mg_json_read_null(mg_json_t *j)
{
    skip_ws(j);
    if (match_lit(j, "null", 4))
        return 0;
    return fail_expect(j, "expected null");
}

/* ---- containers ---- */

static int open_container(mg_json_t *j, char c, const char *what)
{
    skip_ws(j);
    if (j->pos >= j->len || j->base[j->pos] != c)
        return fail_expect(j, what);
    if (j->depth >= MG_JSON_MAX_DEPTH)
        return mg_json_fail(j, "nesting deeper than 64");
    j->pos++;
    j->depth++;
    j->fresh = true;
    return 0;
}

static int close_container(mg_json_t *j)
{
    j->pos++;
    j->depth--;
    j->fresh = false;
    return 0;
}

int mg_json_object_begin(mg_json_t *j)
{
    return open_container(j, '{', "expected '{'");
}

int mg_json_array_begin(mg_json_t *j)
{
    return open_container(j, '[', "expected '['");
}

int mg_json_object_next(mg_json_t *j, mg_str_t *key)
{
    skip_ws(j);
    if (j->pos >= j->len)
        return mg_json_fail(j, "unexpected end of input");
    char c = j->base[j->pos];
    if (c == '}')
        return close_container(j);
    if (!j->fresh) {
        if (c != ',')
            return mg_json_fail(j, "expected ',' or '}'");
        j->pos++;
        skip_ws(j);
    }
    j->fresh = false;
    if (j->pos >= j->len || j->base[j->pos] != '"')
        return fail_expect(j, "expected a member name");
    mg_str_t k;
    int rc = mg_json_read_string(j, &k);
    if (rc != 0)
        return rc;
    skip_ws(j);
    if (j->pos >= j->len || j->base[j->pos] != ':')
        return fail_expect(j, "expected ':'");
    j->pos++;
    if (key != NULL)
        *key = k;
    return 1;
}

int mg_json_array_next(mg_json_t *j)
{
    skip_ws(j);
    if (j->pos >= j->len)
        return mg_json_fail(j, "unexpected end of input");
    char c = j->base[j->pos];
    if (j->fresh) {
        if (c == ']')
            return close_container(j);
        j->fresh = false;
        return 1;
    }
    if (c == ']')
        return close_container(j);
    if (c != ',')
        return mg_json_fail(j, "expected ',' or ']'");
    j->pos++;
    skip_ws(j);
    if (j->pos >= j->len || j->base[j->pos] == ']')
        return fail_expect(j, "expected a value");
    return 1;
}

int mg_json_skip(mg_json_t *j, mg_str_t *span)
{
    int rc;
    skip_ws(j);
    size_t start = j->pos;
    /* One bit per open container below the start: 1 for an object. Depth <= 64 fits. */
    uint64_t objects = 0;
    int levels = 0;
    for (;;) {
        mg_json_type_t t = mg_json_peek(j);
        switch (t) {
        case MG_JSON_OBJECT:
        case MG_JSON_ARRAY:
            rc = t == MG_JSON_OBJECT ? mg_json_object_begin(j) : mg_json_array_begin(j);
            if (rc != 0)
                return rc;
            objects = objects << 1 | (t == MG_JSON_OBJECT);
            levels++;
            break;
        case MG_JSON_STRING: {
            mg_str_t s;
            if ((rc = mg_json_read_string(j, &s)) != 0)
                return rc;
            break;
        }
        case MG_JSON_NUMBER: {
            mg_numfmt_decimal_t d;
            if ((rc = mg_json_read_number(j, &d)) != 0)
                return rc;
            break;
        }
        case MG_JSON_TRUE:
        case MG_JSON_FALSE: {
            bool b;
            if ((rc = mg_json_read_bool(j, &b)) != 0)
                return rc;
            break;
        }
        case MG_JSON_NULL:
            if ((rc = mg_json_read_null(j)) != 0)
                return rc;
            break;
        default: return fail_expect(j, "expected a value");
        }
        /* Find the next value to read, closing finished containers on the way. */
        for (;;) {
            if (levels == 0) {
                if (span != NULL) {
                    span->ptr = j->base + start;
                    span->len = j->pos - start;
                }
                return 0;
            }
            rc = (objects & 1) ? mg_json_object_next(j, NULL) : mg_json_array_next(j);
            if (rc < 0)
                return rc;
            if (rc > 0)
                break;
            objects >>= 1;
            levels--;
        }
    }
}

int mg_json_end(mg_json_t *j)
{
    skip_ws(j);
    if (j->pos != j->len)
        return mg_json_fail(j, "unexpected data after the JSON value");
    return 0;
}

/* ---- writers ---- */

int mg_json_put_float(mg_buf_t *out, float v)
{
    if (mg_buf_reserve(out, MG_NUMFMT_F32_MAX) != 0)
        return MG_ENOMEM;
    out->len += mg_numfmt_write_f32(out->data + out->len, v);
    return 0;
}

int mg_json_put_double(mg_buf_t *out, double v)
{
    if (mg_buf_reserve(out, MG_NUMFMT_F64_MAX) != 0)
        return MG_ENOMEM;
    out->len += mg_numfmt_write_f64(out->data + out->len, v);
    return 0;
}

int mg_json_put_u64(mg_buf_t *out, uint64_t v)
{
    char tmp[MG_NUMFMT_INT_MAX];
    return mg_buf_append(out, tmp, mg_numfmt_write_u64(tmp, v));
}

int mg_json_put_str(mg_buf_t *out, const char *s)
{
    if (s == NULL)
        s = "";
    return mg_buf_json_string(out, s, strlen(s));
}

int mg_json_put_error(mg_buf_t *out, const char *msg)
{
    size_t start = out->len;
    if (mg_buf_append(out, "{\"error\":", 9) != 0 || mg_json_put_str(out, msg) != 0 ||
        mg_buf_append(out, "}", 1) != 0) {
        out->len = start;
        return MG_ENOMEM;
    }
    return 0;
}
