/*
 * Numbers for the wire formats: scanning JSON number tokens into a decimal (mantissa and
 * power of ten) in one pass, converting that decimal exactly to the tensor element types
 * (integers with range checks, FP64/FP32/FP16 correctly rounded: a fast path with exact
 * double arithmetic, strtod/strtof for the rare hard cases), formatting numbers without
 * printf (floats as the shortest text that reads back to the same value), and IEEE
 * half-precision conversions. Nothing here allocates or depends on the locale (the daemon
 * never calls setlocale, so strtod reads the C locale).
 */
#ifndef MG_PROTO_NUMFMT_H
#define MG_PROTO_NUMFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * A JSON number token split into sign, decimal mantissa and power of ten: the value is
 * (neg ? -1 : 1) * mant * 10^exp10, exactly unless `inexact` is set, in which case
 * non-zero digits after the 19th significant one were dropped from `mant`. `text`/`len`
 * is the token itself, for messages and the slow paths.
 */
typedef struct mg_numfmt_decimal {
    uint64_t mant;    /* up to 19 significant digits */
    int32_t exp10;    /* clamped to +-1e6, far outside every datatype's range */
    bool neg;         /* a leading '-' (also for "-0") */
    bool integer;     /* written without fraction or exponent */
    bool inexact;     /* non-zero significant digits were dropped */
    bool long_int;    /* an integer with more than 19 significant digits */
    const char *text; /* the token; not NUL-terminated */
    size_t len;
} mg_numfmt_decimal_t;

/**
 * Scans one JSON number (RFC 8259 grammar: no '+', no leading zeros, no bare '.') from
 * s[0, n) into `out`. Never reads at or past s[n]. Returns the token length, or 0 when
 * s does not start with a valid number (out is then unspecified). Thread: any.
 */
size_t mg_numfmt_scan(const char *s, size_t n, mg_numfmt_decimal_t *out);

/**
 * The commonest FP32 element of a JSON tensor in one pass: [-]int[.frac] (RFC 8259, no
 * exponent) whose digits, read as one integer, stay at or below 2^24, with at most 10
 * fraction digits. Both that integer and the power of ten are then exact floats, so one
 * float division gives the correctly rounded value (Clinger's fast path; x86-64 and other
 * targets without excess precision round a float division once, to float). Returns the
 * token length with `*out` set, or 0 for anything else (the caller then goes through
 * mg_numfmt_scan, which also reports what is wrong). `s` must hold, at or after its first
 * byte, one that is none of 0-9 . - e E (the tensor decoder has the array's ']'): the scan
 * reads up to that byte and never past it, so it tests no length.
 */
static inline size_t mg_numfmt_f32_plain(const char *s, float *out)
{
    static const float pow10[11] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f,
                                    1e6f, 1e7f, 1e8f, 1e9f, 1e10f};
    enum { MANT_MAX = 1 << 24 };
    size_t i = s[0] == '-';
    if ((unsigned char)(s[i] - '0') > 9)
        return 0;
    uint64_t m = 0;
    size_t start = i;
    if (s[i] == '0') {
        i++; /* no leading zeros: "0" is followed by '.' or the end of the number */
    } else {
        for (; (unsigned char)(s[i] - '0') <= 9; i++)
            m = m * 10 + (uint64_t)(s[i] - '0');
    }
    size_t digits = i - start, frac = 0;
    if (s[i] == '.') {
        start = ++i;
        for (; (unsigned char)(s[i] - '0') <= 9; i++)
            m = m * 10 + (uint64_t)(s[i] - '0');
        if ((frac = i - start) == 0)
            return 0;
    }
    /* checked once: up to 19 digits m cannot wrap; the general scanner takes the rest */
    if (digits + frac > 19 || m > MANT_MAX || frac > 10 || s[i] == 'e' || s[i] == 'E' ||
        (unsigned char)(s[i] - '0') <= 9)
        return 0;
    float f = (float)m / pow10[frac];
    *out = s[0] == '-' ? -f : f;
    return i;
}

/**
 * Converts to a signed integer of `bits` (8, 16, 32 or 64) bits.
 * Returns 0, MG_EDTYPE when the token has a fraction or exponent ("1.0", "1e3"), or
 * MG_ERANGE when the value does not fit. Thread: any.
 */
int mg_numfmt_to_int(const mg_numfmt_decimal_t *d, int bits, int64_t *out);

/**
 * Converts to an unsigned integer of `bits` (8, 16, 32 or 64) bits; "-0" is 0.
 * Returns 0, MG_EDTYPE when not written as an integer, or MG_ERANGE (negative or too big).
 * Thread: any.
 */
int mg_numfmt_to_uint(const mg_numfmt_decimal_t *d, int bits, uint64_t *out);

/**
 * Converts to the nearest double (round to nearest even, as strtod). Returns 0, or
 * MG_ERANGE when the magnitude overflows to infinity (underflow gives 0 or a subnormal).
 * Thread: any.
 */
int mg_numfmt_to_f64(const mg_numfmt_decimal_t *d, double *out);

/**
 * Converts to the nearest float, correctly rounded from the decimal (never via a double
 * that is exactly half-way between two floats). Returns 0 or MG_ERANGE on overflow.
 * Thread: any.
 */
int mg_numfmt_to_f32(const mg_numfmt_decimal_t *d, float *out);

/**
 * Converts to IEEE binary16 bits, rounded to nearest even through the nearest double (the
 * two roundings can differ from one only for a decimal within 2^-53 of a half-way point).
 * Returns 0 or MG_ERANGE when the magnitude reaches 65520. Thread: any.
 */
int mg_numfmt_to_f16(const mg_numfmt_decimal_t *d, uint16_t *out);

/** The longest text mg_numfmt_write_u64/i64 produce (no NUL is written). */
#define MG_NUMFMT_INT_MAX 20
/** The longest text mg_numfmt_write_f32 produces, quotes of "-Infinity" included. */
#define MG_NUMFMT_F32_MAX 24
/** The longest text mg_numfmt_write_f64 produces. */
#define MG_NUMFMT_F64_MAX 32

/** Writes `v` in decimal to dst (no NUL); returns the length. Thread: any. */
size_t mg_numfmt_write_u64(char *dst, uint64_t v);

/** Writes `v` in decimal to dst (no NUL); returns the length. Thread: any. */
size_t mg_numfmt_write_i64(char *dst, int64_t v);

/**
 * Writes `v` as the shortest JSON number that reads back (strtof) to the same float:
 * "0.1", "1.0", "-0.0", "1.5e-7", "3.4028235e38"; integral values keep ".0" so clients
 * see a float. NaN and infinities are written as the JSON strings "NaN", "Infinity",
 * "-Infinity", quotes included. No NUL; returns the length (at most MG_NUMFMT_F32_MAX).
 * Thread: any.
 */
size_t mg_numfmt_write_f32(char *dst, float v);

/**
 * Writes `v` as the shorter of %.15g and %.17g that reads back to the same double, with
 * the same conventions as mg_numfmt_write_f32. No NUL; returns the length (at most
 * MG_NUMFMT_F64_MAX). Thread: any.
 */
size_t mg_numfmt_write_f64(char *dst, double v);

/** Returns the binary16 nearest to `v` (round to nearest even; NaN stays NaN). Thread: any. */
uint16_t mg_numfmt_f16_from_f64(double v);

/** Returns the binary16 nearest to `v` (one rounding, as from the exact value). Thread: any. */
uint16_t mg_numfmt_f16_from_f32(float v);

/** Returns the float equal to binary16 `h` (exact: every half is a float). Thread: any. */
float mg_numfmt_f16_to_f32(uint16_t h);

#endif
