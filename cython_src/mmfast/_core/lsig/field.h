/* Goldilocks field Fp (p = 2^64 - 2^32 + 1) and its quintic extension Fp5 = Fp[X]/(X^5 - 3).
 *
 * mmfast's own implementation of the arithmetic Lighter's L2 signatures are built on. Every
 * function takes and returns canonical values (0 <= v < p), so equality is limb equality.
 * Constant-time: add, sub, mul, square (no branches on values beyond carry arithmetic that
 * compilers lower to flags/cmov on x86-64 and arm64); inverse and pow are fixed exponent
 * ladders; sqrt and legendre branch on their input (used only on public data: point decoding).
 */
#ifndef MMFAST_LSIG_FIELD_H
#define MMFAST_LSIG_FIELD_H

#include <stdint.h>
#include <string.h>

typedef unsigned __int128 lsig_u128;

#define GL_P 0xFFFFFFFF00000001ULL
#define GL_EPS 0x00000000FFFFFFFFULL /* 2^64 mod p */

/* All-ones if cond else 0, through an empty asm so the compiler cannot turn the select that
 * uses it back into a branch: field values depend on secrets (nonces, keys), and a branch on
 * them would leak timing (and mispredicts cost more than the arithmetic they skip). */
static inline uint64_t lsig_mask(int cond) {
    uint64_t m = (uint64_t)0 - (uint64_t)(cond != 0);
    __asm__("" : "+r"(m));
    return m;
}

static inline uint64_t gl_canon(uint64_t x) { return x - (GL_P & lsig_mask(x >= GL_P)); }

/* a canonical, b any 64-bit value. */
static inline uint64_t gl_add(uint64_t a, uint64_t b) {
    uint64_t s = a + b;
    s += GL_EPS & lsig_mask(s < a); /* 2^64 = EPS (mod p); cannot overflow again */
    return gl_canon(s);
}

static inline uint64_t gl_sub(uint64_t a, uint64_t b) {
    uint64_t d = a - b;
    return d + (GL_P & lsig_mask(a < b)); /* wraps to a - b + p */
}

static inline uint64_t gl_neg(uint64_t a) { return gl_sub(0, a); }

/* x mod p for any 128-bit x, as a 64-bit value that may still be >= p (callers that keep
 * intermediate values in that form canonicalise once at the end):
 * x = lo + 2^64 (hl + 2^32 hh), 2^64 = EPS, 2^96 = -1. */
static inline uint64_t gl_reduce128_nc(lsig_u128 x) {
    uint64_t lo = (uint64_t)x, hi = (uint64_t)(x >> 64);
    uint64_t hh = hi >> 32, hl = hi & GL_EPS;
    uint64_t t0 = lo - hh;
    t0 -= GL_EPS & lsig_mask(lo < hh); /* a borrow of 2^64 = EPS */
    uint64_t t1 = hl * GL_EPS;
    uint64_t s = t0 + t1;
    s += GL_EPS & lsig_mask(s < t1);
    return s;
}

static inline uint64_t gl_reduce128(lsig_u128 x) { return gl_canon(gl_reduce128_nc(x)); }

/* a any 64-bit value, c < p: a + c mod p, possibly >= p. */
static inline uint64_t gl_add_nc(uint64_t a, uint64_t c) {
    uint64_t s = a + c;
    return s + (GL_EPS & lsig_mask(s < c));
}
static inline uint64_t gl_mul_nc(uint64_t a, uint64_t b) {
    return gl_reduce128_nc((lsig_u128)a * b);
}

static inline uint64_t gl_mul(uint64_t a, uint64_t b) { return gl_reduce128((lsig_u128)a * b); }
static inline uint64_t gl_sqr(uint64_t a) { return gl_mul(a, a); }

static inline uint64_t gl_pow(uint64_t a, uint64_t e) {
    uint64_t r = 1;
    for (int i = 63; i >= 0; i--) {
        r = gl_sqr(r);
        if ((e >> i) & 1) r = gl_mul(r, a);
    }
    return r;
}

static inline uint64_t gl_sqr_n(uint64_t a, int n) {
    for (int i = 0; i < n; i++) a = gl_sqr(a);
    return a;
}

/* 0 for 0 (callers that need a true inverse check for zero first). */
static inline uint64_t gl_inv(uint64_t a) { return gl_pow(a, GL_P - 2); }

/* Square root by Tonelli-Shanks (p - 1 = 2^32 * (2^32 - 1)); 7 generates Fp*.
 * Returns 0 if a is not a square. Variable time: public inputs only. */
static inline int gl_sqrt(uint64_t a, uint64_t *out) {
    if (a == 0) { *out = 0; return 1; }
    if (gl_pow(a, (GL_P - 1) >> 1) != 1) return 0;
    const uint64_t q = 0xFFFFFFFFULL; /* odd part of p - 1 */
    int m = 32;
    uint64_t c = gl_pow(7, q);
    uint64_t x = gl_pow(a, (q + 1) >> 1);
    uint64_t t = gl_pow(a, q);
    while (t != 1) {
        int i = 0;
        uint64_t t2 = t;
        while (t2 != 1) { t2 = gl_sqr(t2); i++; }
        uint64_t b = gl_sqr_n(c, m - i - 1);
        x = gl_mul(x, b);
        c = gl_sqr(b);
        t = gl_mul(t, c);
        m = i;
    }
    *out = x;
    return 1;
}

/* ------------------------------------------------------------------ Fp5 */
typedef struct { uint64_t v[5]; } fp5;

#define FP5_W 3ULL /* X^5 = 3 */
/* A primitive 5th root of unity, 7^((p-1)/5): the Frobenius map multiplies limb i by its i-th power. */
#define FP5_DTH_ROOT 1041288259238279555ULL

static inline void fp5_zero(fp5 *r) { memset(r, 0, sizeof *r); }
static inline void fp5_one(fp5 *r) { fp5_zero(r); r->v[0] = 1; }
static inline int fp5_is_zero(const fp5 *a) {
    return (a->v[0] | a->v[1] | a->v[2] | a->v[3] | a->v[4]) == 0;
}
static inline int fp5_eq(const fp5 *a, const fp5 *b) {
    uint64_t d = 0;
    for (int i = 0; i < 5; i++) d |= a->v[i] ^ b->v[i];
    return d == 0;
}
static inline void fp5_add(fp5 *r, const fp5 *a, const fp5 *b) {
    for (int i = 0; i < 5; i++) r->v[i] = gl_add(a->v[i], b->v[i]);
}
static inline void fp5_sub(fp5 *r, const fp5 *a, const fp5 *b) {
    for (int i = 0; i < 5; i++) r->v[i] = gl_sub(a->v[i], b->v[i]);
}
static inline void fp5_neg(fp5 *r, const fp5 *a) {
    for (int i = 0; i < 5; i++) r->v[i] = gl_neg(a->v[i]);
}
static inline void fp5_double(fp5 *r, const fp5 *a) { fp5_add(r, a, a); }
static inline void fp5_scale(fp5 *r, const fp5 *a, uint64_t s) {
    for (int i = 0; i < 5; i++) r->v[i] = gl_mul(a->v[i], s);
}

/* Sum of up to 5 products of canonical values, reduced once: a 192-bit accumulator
 * (each product < 2^128; 2^128 = -2^32 (mod p)). */
typedef struct { lsig_u128 lo; uint64_t hi; } lsig_acc;
static inline void acc_add(lsig_acc *a, uint64_t x, uint64_t y) {
    lsig_u128 p = (lsig_u128)x * y;
    lsig_u128 s = a->lo + p;
    a->hi += (uint64_t)(s < p);
    a->lo = s;
}
static inline uint64_t acc_reduce(const lsig_acc *a) {
    /* a = lo + 2^128 * hi, hi <= 4; 2^128 = p - 2^32 (mod p). */
    return gl_sub(gl_reduce128(a->lo), gl_mul(a->hi, 1ULL << 32));
}

/* Schoolbook product with X^5 = 3 folded in: the limbs of b that wrap around are tripled first,
 * so each output limb is one sum of five products, reduced once. */
static inline void fp5_mul(fp5 *r, const fp5 *a, const fp5 *b) {
    const uint64_t *x = a->v, *y = b->v;
    uint64_t y3[5];
    for (int i = 1; i < 5; i++) y3[i] = gl_add(gl_add(y[i], y[i]), y[i]);
    lsig_acc c0 = {0, 0}, c1 = {0, 0}, c2 = {0, 0}, c3 = {0, 0}, c4 = {0, 0};
    acc_add(&c0, x[0], y[0]); acc_add(&c0, x[1], y3[4]); acc_add(&c0, x[2], y3[3]);
    acc_add(&c0, x[3], y3[2]); acc_add(&c0, x[4], y3[1]);
    acc_add(&c1, x[0], y[1]); acc_add(&c1, x[1], y[0]); acc_add(&c1, x[2], y3[4]);
    acc_add(&c1, x[3], y3[3]); acc_add(&c1, x[4], y3[2]);
    acc_add(&c2, x[0], y[2]); acc_add(&c2, x[1], y[1]); acc_add(&c2, x[2], y[0]);
    acc_add(&c2, x[3], y3[4]); acc_add(&c2, x[4], y3[3]);
    acc_add(&c3, x[0], y[3]); acc_add(&c3, x[1], y[2]); acc_add(&c3, x[2], y[1]);
    acc_add(&c3, x[3], y[0]); acc_add(&c3, x[4], y3[4]);
    acc_add(&c4, x[0], y[4]); acc_add(&c4, x[1], y[3]); acc_add(&c4, x[2], y[2]);
    acc_add(&c4, x[3], y[1]); acc_add(&c4, x[4], y[0]);
    r->v[0] = acc_reduce(&c0);
    r->v[1] = acc_reduce(&c1);
    r->v[2] = acc_reduce(&c2);
    r->v[3] = acc_reduce(&c3);
    r->v[4] = acc_reduce(&c4);
}

static inline void fp5_sqr(fp5 *r, const fp5 *a) { fp5_mul(r, a, a); }

static inline void fp5_sqr_n(fp5 *r, const fp5 *a, int n) {
    *r = *a;
    for (int i = 0; i < n; i++) fp5_sqr(r, r);
}

/* x^(p^count): limb i times (DTH_ROOT^count)^i. */
static inline void fp5_frobenius(fp5 *r, const fp5 *a, int count) {
    count %= 5;
    uint64_t z = 1;
    for (int i = 0; i < count; i++) z = gl_mul(z, FP5_DTH_ROOT);
    uint64_t zi = 1;
    for (int i = 0; i < 5; i++) {
        r->v[i] = gl_mul(a->v[i], zi);
        zi = gl_mul(zi, z);
    }
}

/* The constant limb of a*b (the norm step of inversion, sqrt and legendre). */
static inline uint64_t fp5_mul_c0(const fp5 *a, const fp5 *b) {
    lsig_acc c0 = {0, 0}, w0 = {0, 0};
    acc_add(&c0, a->v[0], b->v[0]);
    acc_add(&w0, a->v[1], b->v[4]); acc_add(&w0, a->v[2], b->v[3]);
    acc_add(&w0, a->v[3], b->v[2]); acc_add(&w0, a->v[4], b->v[1]);
    uint64_t t = acc_reduce(&w0);
    return gl_add(acc_reduce(&c0), gl_add(gl_add(t, t), t));
}

/* a^-1 = a^(r-1) / N(a) with r = 1 + p + p^2 + p^3 + p^4 and N(a) = a^r in Fp. 0 maps to 0. */
static inline void fp5_inv(fp5 *r, const fp5 *a) {
    fp5 d, e, f, t;
    fp5_frobenius(&d, a, 1);          /* a^p */
    fp5_frobenius(&t, &d, 1);
    fp5_mul(&e, &d, &t);              /* a^(p + p^2) */
    fp5_frobenius(&t, &e, 2);
    fp5_mul(&f, &e, &t);              /* a^(p + p^2 + p^3 + p^4) */
    uint64_t g = fp5_mul_c0(a, &f);   /* N(a) */
    fp5_scale(r, &f, gl_inv(g));
}

static inline void fp5_pow(fp5 *r, const fp5 *a, uint64_t e) {
    fp5 acc;
    fp5_one(&acc);
    for (int i = 63; i >= 0; i--) {
        fp5_sqr(&acc, &acc);
        if ((e >> i) & 1) fp5_mul(&acc, &acc, a);
    }
    *r = acc;
}

/* Legendre symbol of a (0, 1 or p - 1), through the norm: N(a)^((p-1)/2). */
static inline uint64_t fp5_legendre(const fp5 *a) {
    fp5 f1, f2, f12, t, x;
    fp5_frobenius(&f1, a, 1);
    fp5_frobenius(&f2, &f1, 1);
    fp5_mul(&f12, &f1, &f2);
    fp5_frobenius(&t, &f12, 2);
    fp5_mul(&x, a, &f12);
    uint64_t n = fp5_mul_c0(&x, &t);
    return gl_pow(n, (GL_P - 1) >> 1);
}

/* Square root in Fp5 (variable time; public inputs only). Returns 0 if a is not a square.
 * With d = a^((p+1)/2) ... the norm trick: e = (d * d^(p^2))^p, then a * e^2 lies in Fp and
 * sqrt(a) = sqrt(a * e^2) / e. */
static inline int fp5_sqrt(fp5 *r, const fp5 *a) {
    fp5 v, d, t, e, f;
    fp5_sqr_n(&v, a, 31);             /* a^(2^31) */
    fp5_sqr_n(&t, &v, 32);            /* a^(2^63) */
    fp5_mul(&d, a, &t);
    fp5_inv(&t, &v);
    fp5_mul(&d, &d, &t);              /* a^(2^63 - 2^31 + 1) = a^((p+1)/2) */
    fp5_frobenius(&t, &d, 2);
    fp5_mul(&t, &d, &t);
    fp5_frobenius(&e, &t, 1);
    fp5_sqr(&f, &e);
    uint64_t g = fp5_mul_c0(a, &f);
    uint64_t s;
    if (!gl_sqrt(g, &s)) return 0;
    fp5_inv(&t, &e);
    fp5_scale(r, &t, s);
    return 1;
}

static inline void fp5_from_le(fp5 *r, const uint8_t *b) {
    for (int i = 0; i < 5; i++) {
        uint64_t x = 0;
        for (int j = 7; j >= 0; j--) x = (x << 8) | b[8 * i + j];
        r->v[i] = x;
    }
}
/* 1 if every limb is canonical. */
static inline int fp5_from_le_canonical(fp5 *r, const uint8_t *b) {
    fp5_from_le(r, b);
    int ok = 1;
    for (int i = 0; i < 5; i++) ok &= r->v[i] < GL_P;
    return ok;
}
static inline void fp5_to_le(uint8_t *b, const fp5 *a) {
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 8; j++) b[8 * i + j] = (uint8_t)(a->v[i] >> (8 * j));
}

#endif
