#include "proto/numfmt.h"

#include "core/err.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The fast paths rely on float and double operations rounding once, to their own type. */
#if FLT_EVAL_METHOD != 0
#error "numfmt.c needs FLT_EVAL_METHOD == 0 (SSE2 or any non-x87 target)"
#endif

/* 10^k for k in [-80, 80], each the double nearest to the exact power (exact up to 1e22). */
#define P10_MIN (-80)
#define P10_MAX 80
static const double p10[] = {
    1e-80, 1e-79, 1e-78, 1e-77, 1e-76, 1e-75, 1e-74, 1e-73, 1e-72, 1e-71, 1e-70, 1e-69, 1e-68,
    1e-67, 1e-66, 1e-65, 1e-64, 1e-63, 1e-62, 1e-61, 1e-60, 1e-59, 1e-58, 1e-57, 1e-56, 1e-55,
    1e-54, 1e-53, 1e-52, 1e-51, 1e-50, 1e-49, 1e-48, 1e-47, 1e-46, 1e-45, 1e-44, 1e-43, 1e-42,
    1e-41, 1e-40, 1e-39, 1e-38, 1e-37, 1e-36, 1e-35, 1e-34, 1e-33, 1e-32, 1e-31, 1e-30, 1e-29,
    1e-28, 1e-27, 1e-26, 1e-25, 1e-24, 1e-23, 1e-22, 1e-21, 1e-20, 1e-19, 1e-18, 1e-17, 1e-16,
    1e-15, 1e-14, 1e-13, 1e-12, 1e-11, 1e-10, 1e-9,  1e-8,  1e-7,  1e-6,  1e-5,  1e-4,  1e-3,
    1e-2,  1e-1,  1e0,   1e1,   1e2,   1e3,   1e4,   1e5,   1e6,   1e7,   1e8,   1e9,   1e10,
    1e11,  1e12,  1e13,  1e14,  1e15,  1e16,  1e17,  1e18,  1e19,  1e20,  1e21,  1e22,  1e23,
    1e24,  1e25,  1e26,  1e27,  1e28,  1e29,  1e30,  1e31,  1e32,  1e33,  1e34,  1e35,  1e36,
    1e37,  1e38,  1e39,  1e40,  1e41,  1e42,  1e43,  1e44,  1e45,  1e46,  1e47,  1e48,  1e49,
    1e50,  1e51,  1e52,  1e53,  1e54,  1e55,  1e56,  1e57,  1e58,  1e59,  1e60,  1e61,  1e62,
    1e63,  1e64,  1e65,  1e66,  1e67,  1e68,  1e69,  1e70,  1e71,  1e72,  1e73,  1e74,  1e75,
    1e76,  1e77,  1e78,  1e79,  1e80,
};

/* 10^k exactly representable as float (5^10 < 2^24). */
static const float p10f[] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f, 1e6f, 1e7f, 1e8f, 1e9f, 1e10f};

static const uint64_t p10u[] = {
    1ull,
    10ull,
    100ull,
    1000ull,
    10000ull,
    100000ull,
    1000000ull,
    10000000ull,
    100000000ull,
    1000000000ull,
    10000000000ull,
    100000000000ull,
    1000000000000ull,
    10000000000000ull,
    100000000000000ull,
    1000000000000000ull,
    10000000000000000ull,
    100000000000000000ull,
    1000000000000000000ull,
    10000000000000000000ull,
};

#define EXP_CLAMP 1000000
#define TWO53     ((uint64_t)1 << 53)

static inline int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static inline uint64_t dbits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

size_t mg_numfmt_scan(const char *s, size_t n, mg_numfmt_decimal_t *out)
{
    size_t i = 0;
    uint64_t mant = 0;
    int kept = 0;    /* significant digits in mant */
    int64_t exp = 0; /* value = mant * 10^exp (plus dropped digits) */
    bool inexact = false;
    bool neg = false;
    bool integer = true;

    if (i < n && s[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= n)
        return 0;
    if (s[i] == '0') {
        i++;
        if (i < n && is_digit(s[i]))
            return 0; /* leading zero */
    } else if (s[i] >= '1' && s[i] <= '9') {
        do {
            unsigned dg = (unsigned)(s[i] - '0');
            if (kept < 19) {
                mant = mant * 10 + dg;
                kept++;
            } else {
                exp++; /* an integer digit dropped: scale up */
                inexact |= dg != 0;
            }
            i++;
        } while (i < n && is_digit(s[i]));
    } else {
        return 0;
    }
    bool long_int = exp > 0;

    if (i < n && s[i] == '.') {
        integer = false;
        i++;
        if (i >= n || !is_digit(s[i]))
            return 0;
        do {
            unsigned dg = (unsigned)(s[i] - '0');
            if (kept == 0 && dg == 0) {
                exp--; /* a leading zero of 0.00x only moves the point */
            } else if (kept < 19) {
                mant = mant * 10 + dg;
                kept++;
                exp--;
            } else {
                inexact |= dg != 0;
            }
            i++;
        } while (i < n && is_digit(s[i]));
    }

    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        integer = false;
        i++;
        bool eneg = false;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            eneg = s[i] == '-';
            i++;
        }
        if (i >= n || !is_digit(s[i]))
            return 0;
        int64_t e = 0;
        do {
            if (e < 1000000000000000LL) /* saturate: any larger exponent means 0 or inf */
                e = e * 10 + (s[i] - '0');
            i++;
        } while (i < n && is_digit(s[i]));
        exp += eneg ? -e : e;
    }

    if (mant == 0)
        exp = 0;
    if (exp > EXP_CLAMP)
        exp = EXP_CLAMP;
    if (exp < -EXP_CLAMP)
        exp = -EXP_CLAMP;
    out->mant = mant;
    out->exp10 = (int32_t)exp;
    out->neg = neg;
    out->integer = integer;
    out->inexact = inexact;
    out->long_int = integer && long_int;
    out->text = s;
    out->len = i;
    return i;
}

int mg_numfmt_to_uint(const mg_numfmt_decimal_t *d, int bits, uint64_t *out)
{
    if (!d->integer)
        return MG_EDTYPE;
    uint64_t v = d->mant;
    if (d->long_int) {
        /* 20 or more digits: only 20 can fit, recount with overflow checks */
        v = 0;
        for (size_t i = d->neg ? 1 : 0; i < d->len; i++) {
            if (__builtin_mul_overflow(v, 10, &v) ||
                __builtin_add_overflow(v, (uint64_t)(d->text[i] - '0'), &v))
                return MG_ERANGE;
        }
    }
    if (d->neg && v != 0)
        return MG_ERANGE;
    uint64_t max = bits >= 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
    if (v > max)
        return MG_ERANGE;
    *out = v;
    return 0;
}

int mg_numfmt_to_int(const mg_numfmt_decimal_t *d, int bits, int64_t *out)
{
    if (!d->integer)
        return MG_EDTYPE;
    if (d->long_int) /* at least 10^19 > INT64_MAX */
        return MG_ERANGE;
    uint64_t v = d->mant;
    uint64_t lim = (uint64_t)1 << (bits - 1); /* |min| */
    if (d->neg) {
        if (v > lim)
            return MG_ERANGE;
        *out = v == lim ? (bits == 64 ? INT64_MIN : -(int64_t)lim) : -(int64_t)v;
    } else {
        if (v > lim - 1)
            return MG_ERANGE;
        *out = (int64_t)v;
    }
    return 0;
}

/*
 * Builds a NUL-terminated, strtod-ready "[-]0.DIGITSe[-]EXP" from a validated token, keeping
 * at most 780 significant digits plus a sticky '1' when non-zero digits were cut: decimal
 * half-way points between doubles have at most 767 significant digits, so the rounding
 * direction is preserved.
 */
#define SLOW_DIGITS 780
/* Room for slow_text: sign, "0.", digits, sticky, 'e' and a 20-digit exponent. */
#define SLOW_CAP (SLOW_DIGITS + 32)
static void slow_text(const mg_numfmt_decimal_t *d, char *buf)
{
    const char *s = d->text;
    size_t n = d->len;
    size_t i = 0;
    char *o = buf;
    if (i < n && s[i] == '-') {
        *o++ = '-';
        i++;
    }
    *o++ = '0';
    *o++ = '.';
    char *digits = o;
    int64_t point = 0; /* value = 0.DIGITS * 10^(point + exp) */
    size_t kept = 0;
    bool sticky = false;
    bool in_frac = false;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            in_frac = true;
            continue;
        }
        if (!is_digit(c))
            break;
        if (kept == 0 && c == '0') {
            if (in_frac)
                point--;
            continue;
        }
        if (!in_frac)
            point++;
        if (kept < SLOW_DIGITS) {
            *o++ = c;
            kept++;
        } else {
            sticky |= c != '0';
        }
    }
    if (sticky)
        *o++ = '1';
    if (o == digits)
        *o++ = '0';
    int64_t e = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        for (; i < n && is_digit(s[i]); i++) {
            if (e < 1000000000000000LL)
                e = e * 10 + (s[i] - '0');
        }
        if (eneg)
            e = -e;
    }
    *o++ = 'e';
    o += mg_numfmt_write_i64(o, point + e);
    *o = '\0';
}

/* The correctly rounded conversions of libc, kept out of line so the fast paths stay lean. */
static __attribute__((noinline)) double slow_f64(const mg_numfmt_decimal_t *d)
{
    char buf[SLOW_CAP];
    slow_text(d, buf);
    return fabs(strtod(buf, NULL));
}

static __attribute__((noinline)) float slow_f32(const mg_numfmt_decimal_t *d)
{
    char buf[SLOW_CAP];
    slow_text(d, buf);
    return fabsf(strtof(buf, NULL));
}

/*
 * mant * 10^exp with at most 3 ulp of error (one rounding each for mant, the table power
 * and the product; a multiply, never a divide), or false when exp is outside the table.
 */
static inline bool approx_scale(uint64_t mant, int exp, double *out)
{
    if (exp < P10_MIN || exp > P10_MAX)
        return false;
    *out = (double)mant * p10[exp - P10_MIN];
    return true;
}

/*
 * Decides whether rounding the approximation `x` (within 8 ulp of the exact value, x > 0,
 * normal) to a format with `prec` significant bits and minimum normal exponent `emin` is
 * certain to give the same result as rounding the exact value: true unless x lies within
 * the slack of a half-way point between two values of the format. Because those half-way
 * points are doubles, x and the exact value then round alike.
 */
static inline bool rounding_is_safe(double x, int prec, int emin)
{
    uint64_t b = dbits(x);
    int e = (int)((b >> 52) & 0x7ff) - 1023;
    int s = 53 - prec + (e < emin ? emin - e : 0); /* double bits below the format's lsb */
    if (s > 52)
        return false; /* below the smallest subnormal's half: let the slow path decide */
    if (s < 1)
        return true;
    uint64_t low = b & (((uint64_t)1 << s) - 1);
    uint64_t half = (uint64_t)1 << (s - 1);
    const uint64_t slack = 8;
    return low + slack < half || low > half + slack;
}

/* Float nearest to mant * 10^exp via double arithmetic; false for the hard cases. */
static inline bool fast_f32(uint64_t mant, int exp, bool exact, float *out)
{
    if (exact && mant <= ((uint64_t)1 << 24) && exp >= -10 && exp <= 10) {
        /* both operands exact floats: one correctly rounded operation */
        float m = (float)mant;
        *out = exp >= 0 ? m * p10f[exp] : m / p10f[-exp];
        return true;
    }
    double x;
    if (!approx_scale(mant, exp, &x))
        return false;
    if (x >= 0x1p128) {
        *out = INFINITY;
        return true;
    }
    if (!rounding_is_safe(x, 24, -126))
        return false;
    *out = (float)x;
    return true;
}

int mg_numfmt_to_f64(const mg_numfmt_decimal_t *d, double *out)
{
    double x;
    int exp = d->exp10;
    if (d->mant == 0) {
        x = 0.0;
    } else if (!d->inexact && d->mant <= TWO53 && exp >= -22 && exp <= 22) {
        /* Clinger's fast path: exact operands, one rounding */
        x = exp >= 0 ? (double)d->mant * p10[exp - P10_MIN] : (double)d->mant / p10[-exp - P10_MIN];
    } else if (!d->inexact && exp > 22 && exp <= 22 + 18 && d->mant <= TWO53 / p10u[exp - 22]) {
        /* mant * 10^(exp-22) is still an exact integer below 2^53 */
        x = (double)(d->mant * p10u[exp - 22]) * 1e22;
    } else {
        x = slow_f64(d);
    }
    if (isinf(x))
        return MG_ERANGE;
    *out = d->neg ? -x : x;
    return 0;
}

int mg_numfmt_to_f32(const mg_numfmt_decimal_t *d, float *out)
{
    float f;
    if (d->mant == 0) {
        f = 0.0f;
    } else if (!fast_f32(d->mant, d->exp10, !d->inexact, &f)) {
        f = slow_f32(d);
    }
    if (isinf(f))
        return MG_ERANGE;
    *out = d->neg ? -f : f;
    return 0;
}

int mg_numfmt_to_f16(const mg_numfmt_decimal_t *d, uint16_t *out)
{
    uint16_t h;
    double x;
    if (d->mant == 0) {
        h = 0;
    } else if (approx_scale(d->mant, d->exp10, &x) && x < 65536.0 && rounding_is_safe(x, 11, -14)) {
        h = mg_numfmt_f16_from_f64(x);
    } else {
        h = mg_numfmt_f16_from_f64(slow_f64(d));
    }
    if ((h & 0x7fff) == 0x7c00)
        return MG_ERANGE;
    *out = (uint16_t)(h | (d->neg ? 0x8000 : 0));
    return 0;
}

/* ---- formatting ---- */

static const char dig2[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

size_t mg_numfmt_write_u64(char *dst, uint64_t v)
{
    char tmp[MG_NUMFMT_INT_MAX];
    char *p = tmp + sizeof(tmp);
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, dig2 + 2 * r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, dig2 + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    size_t n = (size_t)(tmp + sizeof(tmp) - p);
    memcpy(dst, p, n);
    return n;
}

size_t mg_numfmt_write_i64(char *dst, int64_t v)
{
    if (v < 0) {
        dst[0] = '-';
        return 1 + mg_numfmt_write_u64(dst + 1, (uint64_t)0 - (uint64_t)v);
    }
    return mg_numfmt_write_u64(dst, (uint64_t)v);
}

static size_t write_nonfinite(char *dst, double v)
{
    const char *s = isnan(v) ? "\"NaN\"" : v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    size_t n = strlen(s);
    memcpy(dst, s, n);
    return n;
}

/*
 * Round-half-even of 0 <= x < 2^52, without a branch: adding 2^52 leaves no fraction bits,
 * so the addition itself rounds (to nearest even, the default mode).
 */
static inline uint64_t round_even(double x)
{
    return (uint64_t)((x + 0x1p52) - 0x1p52);
}

/* A positive float to format, with the bounds of the decimals that read back to it. */
typedef struct f32_target {
    float want;
    double a;  /* want, exactly */
    double lo; /* half-way to the float below (exact in double) */
    double hi; /* half-way to the float above */
} f32_target_t;

/* Whether mm * 10^qq reads back as `want`, decided exactly (double path or strtof). */
static bool f32_reads_back(float want, uint64_t mm, int qq)
{
    float back;
    if (!fast_f32(mm, qq, true, &back)) {
        char buf[48];
        size_t len = mg_numfmt_write_u64(buf, mm);
        buf[len++] = 'e';
        len += mg_numfmt_write_i64(buf + len, qq);
        buf[len] = '\0';
        back = strtof(buf, NULL);
    }
    return back == want;
}

/*
 * The `n`-significant-digit decimal nearest to t->a: *m * 10^*q, given e10 = floor(log10(a)).
 * Returns whether it reads back as the float. The test compares m with the rounding interval
 * scaled by the same power of ten; products carry under 2^-51 relative error, so only a
 * candidate within 2^-50 of an edge needs the exact check.
 */
static bool f32_candidate(const f32_target_t *t, int e10, int n, uint64_t *m, int *q)
{
    int k = n - 1 - e10;
    double p = p10[k - P10_MIN];
    uint64_t mm = round_even(t->a * p);
    int qq = -k;
    double fm = (double)mm;
    double lo = t->lo * p, hi = t->hi * p;
    double eps = (fm + 1.0) * 0x1p-50;
    /* non-short-circuit: these outcomes are data-dependent, the fallback is rare */
    bool inside = (fm - lo > eps) & (hi - fm > eps);
    bool outside = (fm - lo < -eps) | (hi - fm < -eps);
    bool ok = inside;
    if (!(inside | outside))
        ok = f32_reads_back(t->want, mm, qq);
    if (mm >= p10u[n]) { /* rounded up to the next power of ten */
        mm /= 10;
        qq++;
    }
    *m = mm;
    *q = qq;
    return ok;
}

/*
 * x / 10^j for x < 2^30 and j <= 9 without a divide: m = ceil(2^s / 10^j) with
 * s = 30 + ceil(log2(10^j)), exact over that range because m * 10^j - 2^s < 10^j <= 2^(s-30)
 * (the round-up method of Granlund and Montgomery).
 */
static const struct {
    uint32_t m;
    uint8_t s;
} div10k[10] = {
    {0x40000000u, 30}, {0x66666667u, 34}, {0x51eb851fu, 37}, {0x4189374cu, 40}, {0x68db8badu, 44},
    {0x53e2d624u, 47}, {0x431bde83u, 50}, {0x6b5fca6bu, 54}, {0x55e63b89u, 57}, {0x44b82fa1u, 60},
};

static inline uint32_t div_p10(uint32_t x, int j)
{
    return (uint32_t)(((uint64_t)x * div10k[j].m) >> div10k[j].s);
}

/* Writes exactly `count` digits of v (leading zeros included), the last one at end[-1]. */
static inline void put_digits(char *end, uint32_t v, int count)
{
    for (; count >= 2; count -= 2) {
        uint32_t r = v % 100;
        v /= 100;
        end -= 2;
        memcpy(end, dig2 + 2 * r, 2);
    }
    if (count)
        end[-1] = (char)('0' + v);
}

/*
 * Lays out m * 10^q, m having nd digits and no trailing zero: fixed notation for
 * 1e-4 <= value < 1e16 ("0.00125", "125.0", "1.25"), otherwise d.ddde[-]x ("1.25e-7").
 */
static size_t lay_out(char *o, uint32_t m, int nd, int q)
{
    char *start = o;
    int lead = q + nd - 1; /* the power of ten of the first digit */
    if (lead >= -4 && lead < 16) {
        if (lead < 0) {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -lead - 1; i++)
                *o++ = '0';
            put_digits(o + nd, m, nd);
            o += nd;
        } else if (nd <= lead + 1) {
            put_digits(o + nd, m, nd);
            o += nd;
            for (int i = nd; i <= lead; i++)
                *o++ = '0';
            *o++ = '.';
            *o++ = '0';
        } else {
            int frac = nd - lead - 1;
            uint32_t hi = div_p10(m, frac);
            put_digits(o + lead + 1, hi, lead + 1);
            o[lead + 1] = '.';
            put_digits(o + nd + 1, m - hi * (uint32_t)p10u[frac], frac);
            o += nd + 1;
        }
        return (size_t)(o - start);
    }
    if (nd > 1) {
        uint32_t hi = div_p10(m, nd - 1);
        o[0] = (char)('0' + hi);
        o[1] = '.';
        put_digits(o + nd + 1, m - hi * (uint32_t)p10u[nd - 1], nd - 1);
        o += nd + 1;
    } else {
        *o++ = (char)('0' + m);
    }
    *o++ = 'e';
    if (lead < 0) {
        *o++ = '-';
        lead = -lead;
    }
    if (lead >= 10) { /* |lead| <= 45 for a float */
        memcpy(o, dig2 + 2 * lead, 2);
        o += 2;
    } else {
        *o++ = (char)('0' + lead);
    }
    return (size_t)(o - start);
}

/*
 * The shortest decimal that reads back as t->want, by trying candidates of 1..9 digits
 * (f32_candidate): for the power-of-two floats and the subnormals, where the rounding
 * interval is lopsided or coarse, and the near-ties the fast search leaves.
 * *m * 10^*q, with *m < 10^9. Returns false only if no candidate read back (cannot happen:
 * the nearest 9 digits always identify a float).
 */
static bool f32_shortest_general(float want, double a, uint32_t fbits, int e10, uint64_t *m, int *q)
{
    f32_target_t t = {.want = want, .a = a};
    uint32_t below = fbits - 1, above = fbits + 1;
    float fb, fa;
    memcpy(&fb, &below, sizeof(fb));
    memcpy(&fa, &above, sizeof(fa));
    t.lo = (a + (double)fb) / 2;
    /* above FLT_MAX the next "float" is infinity: the interval ends half an ulp up */
    t.hi = above == 0x7f800000u ? a + (a - (double)fb) / 2 : (a + (double)fa) / 2;
    /*
     * Inside a binade the rounding interval is symmetric, so "n digits read back" is
     * monotone in n: walk down from 8 while candidates read back; a value that still reads
     * back with 5 is short ("0.5"), so walk up from 1 instead. At a power of two the
     * interval is lopsided and monotonicity fails: walk up from 1 there.
     */
    uint64_t mm;
    int qq, n = 0;
    if ((fbits & 0x7fffff) != 0) {
        for (int i = 8; i >= 5 && f32_candidate(&t, e10, i, &mm, &qq); i--) {
            n = i;
            *m = mm;
            *q = qq;
        }
        if (n == 0 && f32_candidate(&t, e10, 9, m, q))
            n = 9;
    }
    if (n == 0 || n == 5) {
        for (int i = 1; i <= (n ? 4 : 9); i++) {
            if (f32_candidate(&t, e10, i, &mm, &qq)) {
                n = i;
                *m = mm;
                *q = qq;
                break;
            }
        }
    }
    return n != 0;
}

/*
 * The shortest decimal for a normal float that is not a power of two, whose rounding
 * interval is therefore symmetric: a decimal reads back iff it lies within half an ulp of
 * the float (the half-way points themselves decided exactly). a9 = a * 10^k in [1e8, 1e9)
 * and half = half an ulp times 10^k: the nearest 9-digit decimal M is always inside
 * (half >= 2.9), and the candidate with j fewer digits is the multiple of 10^j nearest a9.
 * Fewer digits reading back implies more do (multiples of 10^(j+1) are multiples of 10^j),
 * so j grows until a candidate falls outside. The double arithmetic errs by under 2^-22
 * at this scale; a candidate within 2^-19 of the interval's edge is checked exactly, and
 * a near-tie between two candidates returns false for the general search.
 */
static bool f32_shortest_symmetric(float want, double a9, double half, int k, uint32_t *m, int *nd,
                                   int *q)
{
    const double eps = 0x1p-19;
    uint32_t big = (uint32_t)round_even(a9); /* <= 10^9 */
    double f = a9 - (double)big;             /* exact, in [-0.5, 0.5] */
    uint32_t best = big;
    int dropped = 0;
    for (int j = 1; j <= 8; j++) {
        uint32_t p = (uint32_t)p10u[j];
        uint32_t below = div_p10(big, j) * p;
        double x = (double)(big - below) + f; /* a9 - below */
        double mid = 0.5 * (double)p;
        if (fabs(x - mid) <= eps)
            return false;
        uint32_t cand = x < mid ? below : below + p;
        double dist = x < mid ? fabs(x) : (double)p - x;
        if (dist > half + eps)
            break;
        if (dist >= half - eps && !f32_reads_back(want, cand, -k))
            break;
        best = cand;
        dropped = j;
    }
    /* best has 9 - dropped digits before its `dropped` zeros, or is 10^(9 - dropped) */
    uint32_t mm = div_p10(best, dropped);
    int n = 9 - dropped + (mm >= (uint32_t)p10u[9 - dropped]);
    int qq = dropped - k;
    while (mm % 10 == 0) {
        mm /= 10;
        n--;
        qq++;
    }
    *m = mm;
    *nd = n;
    *q = qq;
    return true;
}

static int digit_count(uint32_t m)
{
    int n = 1;
    while (n < 10 && m >= p10u[n])
        n++;
    return n;
}

size_t mg_numfmt_write_f32(char *dst, float v)
{
    if (!isfinite(v))
        return write_nonfinite(dst, v);
    char *o = dst;
    if (signbit(v))
        *o++ = '-';
    float want = fabsf(v);
    double a = (double)want;
    if (a == 0.0) {
        memcpy(o, "0.0", 3);
        return (size_t)(o + 3 - dst);
    }
    if (a < 0x1p24 && a == (double)(uint32_t)a) {
        /* an integer below 2^24: its neighbours are at most 1 away, so no shorter
           decimal reads back; the digits are the integer's own */
        o += mg_numfmt_write_u64(o, (uint32_t)a);
        memcpy(o, ".0", 2);
        return (size_t)(o + 2 - dst);
    }
    uint32_t fbits;
    memcpy(&fbits, &want, sizeof(fbits));

    /* floor(log10(a)) from the binary exponent, then corrected against the 9-digit scale */
    uint64_t b = dbits(a);
    int e2 = (int)((b >> 52) & 0x7ff) - 1023;
    int e10 = e2 >= 0 ? (e2 * 78913) >> 18 : -((-e2 * 78913 + (1 << 18) - 1) >> 18);
    double a9 = 0;
    for (int step = 0; step < 3; step++) {
        a9 = a * p10[8 - e10 - P10_MIN];
        if (a9 >= 1e9)
            e10++;
        else if (a9 < 1e8)
            e10--;
        else
            break;
    }

    uint32_t m;
    int q, nd = 0;
    uint32_t expf = fbits >> 23;
    bool found = false;
    if (expf != 0 && (fbits & 0x7fffff) != 0 && a9 >= 1e8 && a9 < 1e9) {
        /* half an ulp, 2^(e2 - 24), scaled like a9 */
        uint64_t hb = (uint64_t)(e2 - 24 + 1023) << 52;
        double h;
        memcpy(&h, &hb, sizeof(h));
        found = f32_shortest_symmetric(want, a9, h * p10[8 - e10 - P10_MIN], 8 - e10, &m, &nd, &q);
    }
    if (!found) {
        uint64_t m64 = 0;
        if (!f32_shortest_general(want, a, fbits, e10, &m64, &q)) {
            /* Cannot happen (see f32_shortest_general); stay correct anyway. */
            char buf[32];
            int len = snprintf(buf, sizeof(buf), "%.9g", a);
            memcpy(o, buf, (size_t)len);
            o += len;
            if (memchr(buf, '.', (size_t)len) == NULL && memchr(buf, 'e', (size_t)len) == NULL) {
                *o++ = '.';
                *o++ = '0';
            }
            return (size_t)(o - dst);
        }
        while (m64 % 10 == 0) {
            m64 /= 10;
            q++;
        }
        m = (uint32_t)m64;
        nd = digit_count(m);
    }
    o += lay_out(o, m, nd, q);
    return (size_t)(o - dst);
}

size_t mg_numfmt_write_f64(char *dst, double v)
{
    if (!isfinite(v))
        return write_nonfinite(dst, v);
    if (v == 0.0) {
        const char *z = signbit(v) ? "-0.0" : "0.0";
        size_t n = strlen(z);
        memcpy(dst, z, n);
        return n;
    }
    char buf[MG_NUMFMT_F64_MAX + 8];
    int len = snprintf(buf, sizeof(buf), "%.15g", v);
    if (strtod(buf, NULL) != v)
        len = snprintf(buf, sizeof(buf), "%.17g", v);
    size_t n = (size_t)len;
    memcpy(dst, buf, n);
    if (memchr(buf, '.', n) == NULL && memchr(buf, 'e', n) == NULL) {
        dst[n++] = '.';
        dst[n++] = '0';
    }
    return n;
}

/* ---- binary16 ---- */

uint16_t mg_numfmt_f16_from_f64(double v)
{
    uint64_t b = dbits(v);
    uint16_t sign = (uint16_t)((b >> 48) & 0x8000);
    int bexp = (int)((b >> 52) & 0x7ff);
    uint64_t frac = b & (((uint64_t)1 << 52) - 1);
    if (bexp == 0x7ff)
        return (uint16_t)(sign | (frac ? 0x7e00 : 0x7c00));
    int e = bexp - 1023;
    if (bexp == 0 || e < -25)
        return sign; /* below half the smallest subnormal (2^-25): zero */
    if (e > 15)
        return (uint16_t)(sign | 0x7c00);
    uint64_t h;
    uint64_t rest, halfway;
    if (e >= -14) {
        h = ((uint64_t)(e + 15) << 10) | (frac >> 42);
        rest = frac & (((uint64_t)1 << 42) - 1);
        halfway = (uint64_t)1 << 41;
    } else {
        /* subnormal: units of 2^-24 */
        uint64_t m = frac | ((uint64_t)1 << 52);
        int shift = 28 - e; /* 43..53 */
        h = m >> shift;
        rest = m & (((uint64_t)1 << shift) - 1);
        halfway = (uint64_t)1 << (shift - 1);
    }
    if (rest > halfway || (rest == halfway && (h & 1)))
        h++; /* a carry moves to the next exponent, or to infinity: both are right */
    return (uint16_t)(sign | h);
}

uint16_t mg_numfmt_f16_from_f32(float v)
{
    return mg_numfmt_f16_from_f64((double)v);
}

float mg_numfmt_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t e = (h >> 10) & 0x1f;
    uint32_t m = h & 0x3ff;
    uint32_t bits;
    if (e == 0) {
        float f = (float)m * 0x1p-24f; /* exact */
        return sign ? -f : f;
    }
    if (e == 31)
        bits = sign | 0x7f800000u | (m << 13);
    else
        bits = sign | ((e - 15 + 127) << 23) | (m << 13);
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}
