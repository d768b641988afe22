/* The ECgFp5 curve group and its scalars, and Schnorr signatures over it as Lighter uses them.
 *
 * Curve: y^2 = x(x^2 + a x + b) over Fp5 with a = 2, b = 263 X; the prime-order group is the
 * quotient by the 2-torsion point N = (0, 0), encoded by one Fp5 element w = y / x (neutral: 0).
 * Points are kept in the fractional (x:z:u:t) form with x/z the curve x and u/t = x/y, whose
 * addition formulas are complete (no special case for the neutral or for doubling).
 *
 * Scalars: integers modulo the group order n (about 2^319), five 64-bit little-endian limbs.
 *
 * Constant time (no branch or memory index depends on the value): scalar add/sub/mul/negation,
 * the fixed-base multiplication k*G (signed 5-bit windows, every table entry read), point
 * add/double/encode and Schnorr signing's scalar steps. Variable time (public data only):
 * point decoding, variable-base multiplication, verification, reduction of a hash or a key into
 * a scalar, and the challenge's Poseidon2 hash (of R and the message, both public).
 */
#ifndef MMFAST_LSIG_CURVE_H
#define MMFAST_LSIG_CURVE_H

#include "poseidon2.h"

/* ------------------------------------------------------------------ scalars mod n */
typedef struct { uint64_t v[5]; } scalar;

/* n, the group order: 1067993516717146951041484916571792702745057740581727230159139685185762082554198619328292418486241 */
static const scalar SC_N = {{0xE80FD996948BFFE1ULL, 0xE8885C39D724A09CULL, 0x7FFFFFE6CFB80639ULL,
                             0x7FFFFFF100000016ULL, 0x7FFFFFFD80000007ULL}};

/* r = a - b over 320 bits; returns the borrow (0 or 1). */
static inline uint64_t sc_sub_raw(scalar *r, const scalar *a, const scalar *b) {
    uint64_t borrow = 0;
    for (int i = 0; i < 5; i++) {
        lsig_u128 d = (lsig_u128)a->v[i] - b->v[i] - borrow;
        r->v[i] = (uint64_t)d;
        borrow = (uint64_t)(d >> 64) & 1;
    }
    return borrow;
}
static inline uint64_t sc_add_raw(scalar *r, const scalar *a, const scalar *b) {
    uint64_t carry = 0;
    for (int i = 0; i < 5; i++) {
        lsig_u128 s = (lsig_u128)a->v[i] + b->v[i] + carry;
        r->v[i] = (uint64_t)s;
        carry = (uint64_t)(s >> 64);
    }
    return carry;
}
/* r = mask ? a : b, mask all-ones or zero. */
static inline void sc_select(scalar *r, uint64_t mask, const scalar *a, const scalar *b) {
    for (int i = 0; i < 5; i++) r->v[i] = b->v[i] ^ (mask & (a->v[i] ^ b->v[i]));
}
static inline int sc_is_canonical(const scalar *a) {
    scalar t;
    return (int)sc_sub_raw(&t, a, &SC_N); /* borrow <=> a < n */
}
static inline int sc_is_zero(const scalar *a) {
    return (a->v[0] | a->v[1] | a->v[2] | a->v[3] | a->v[4]) == 0;
}
static inline int sc_eq(const scalar *a, const scalar *b) {
    uint64_t d = 0;
    for (int i = 0; i < 5; i++) d |= a->v[i] ^ b->v[i];
    return d == 0;
}
/* Any 320-bit value mod n (variable time: at most a few subtractions since 2^320 < 3n). */
static inline void sc_reduce(scalar *r, const scalar *a) {
    scalar t = *a, u;
    while (!sc_sub_raw(&u, &t, &SC_N)) t = u;
    *r = t;
}
static inline void sc_add(scalar *r, const scalar *a, const scalar *b) {
    scalar s, d;
    sc_add_raw(&s, a, b);                   /* < 2n < 2^320: no carry out */
    uint64_t borrow = sc_sub_raw(&d, &s, &SC_N);
    sc_select(r, (uint64_t)0 - borrow, &s, &d);
}
static inline void sc_sub(scalar *r, const scalar *a, const scalar *b) {
    scalar d, s;
    uint64_t borrow = sc_sub_raw(&d, a, b);
    sc_add_raw(&s, &d, &SC_N);
    sc_select(r, (uint64_t)0 - borrow, &s, &d);
}
static inline void sc_neg(scalar *r, const scalar *a) {
    scalar z = {{0, 0, 0, 0, 0}};
    sc_sub(r, &z, a);
}

/* Montgomery constants, derived once: -n^-1 mod 2^64 and R^2 mod n with R = 2^320. */
static uint64_t SC_N0I;
static scalar SC_R2;

static inline void sc_init_constants(void) {
    uint64_t inv = 1; /* Newton iteration for n0^-1 mod 2^64 (n0 odd) */
    for (int i = 0; i < 7; i++) inv *= 2 - SC_N.v[0] * inv;
    SC_N0I = (uint64_t)0 - inv;
    scalar r = {{1, 0, 0, 0, 0}};
    for (int i = 0; i < 640; i++) sc_add(&r, &r, &r); /* 2^640 mod n */
    SC_R2 = r;
}

/* a * b / R mod n for a, b < n (CIOS). */
static inline void sc_monty(scalar *r, const scalar *a, const scalar *b) {
    uint64_t t[7] = {0};
    for (int i = 0; i < 5; i++) {
        uint64_t carry = 0;
        for (int j = 0; j < 5; j++) {
            lsig_u128 p = (lsig_u128)a->v[j] * b->v[i] + t[j] + carry;
            t[j] = (uint64_t)p;
            carry = (uint64_t)(p >> 64);
        }
        lsig_u128 s = (lsig_u128)t[5] + carry;
        t[5] = (uint64_t)s;
        t[6] = (uint64_t)(s >> 64);
        uint64_t m = t[0] * SC_N0I;
        lsig_u128 p = (lsig_u128)m * SC_N.v[0] + t[0];
        carry = (uint64_t)(p >> 64);
        for (int j = 1; j < 5; j++) {
            p = (lsig_u128)m * SC_N.v[j] + t[j] + carry;
            t[j - 1] = (uint64_t)p;
            carry = (uint64_t)(p >> 64);
        }
        s = (lsig_u128)t[5] + carry;
        t[4] = (uint64_t)s;
        t[5] = t[6] + (uint64_t)(s >> 64);
    }
    scalar x = {{t[0], t[1], t[2], t[3], t[4]}}, d;
    uint64_t borrow = sc_sub_raw(&d, &x, &SC_N);
    borrow &= (uint64_t)(t[5] == 0);        /* a carry word means x >= n */
    sc_select(r, (uint64_t)0 - borrow, &x, &d);
}
static inline void sc_mul(scalar *r, const scalar *a, const scalar *b) {
    scalar t;
    sc_monty(&t, a, &SC_R2);                /* a * R */
    sc_monty(r, &t, b);                     /* a * b */
}
static inline void sc_from_le(scalar *r, const uint8_t *b) {
    for (int i = 0; i < 5; i++) {
        uint64_t x = 0;
        for (int j = 7; j >= 0; j--) x = (x << 8) | b[8 * i + j];
        r->v[i] = x;
    }
}
static inline void sc_to_le(uint8_t *b, const scalar *a) {
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 8; j++) b[8 * i + j] = (uint8_t)(a->v[i] >> (8 * j));
}
/* The Fp5 element's canonical limbs read as a 320-bit integer, mod n (hash -> challenge). */
static inline void sc_from_fp5(scalar *r, const fp5 *a) {
    scalar t;
    for (int i = 0; i < 5; i++) t.v[i] = a->v[i];
    sc_reduce(r, &t);
}

/* ------------------------------------------------------------------ points */
typedef struct { fp5 x, z, u, t; } ec_point;
typedef struct { fp5 x, u; } ec_affine; /* z = t = 1 */

#define EC_B1 263ULL
/* b = 263 X: multiplying by it shifts limbs up one (X^5 = 3 wraps the top limb) and scales. */
static inline void fp5_mul_b(fp5 *r, const fp5 *a, uint64_t k /* multiple of b */) {
    uint64_t c = EC_B1 * k;
    fp5 s;
    s.v[0] = gl_mul(a->v[4], c * FP5_W);
    s.v[1] = gl_mul(a->v[0], c);
    s.v[2] = gl_mul(a->v[1], c);
    s.v[3] = gl_mul(a->v[2], c);
    s.v[4] = gl_mul(a->v[3], c);
    *r = s;
}

static inline void ec_neutral(ec_point *p) {
    fp5_zero(&p->x); fp5_one(&p->z); fp5_zero(&p->u); fp5_one(&p->t);
}

/* The generator, in the same (x:z:u:t) form with z = u = 1, t = 4. */
static inline void ec_generator(ec_point *p) {
    static const fp5 gx = {{12883135586176881569ULL, 4356519642755055268ULL, 5248930565894896907ULL,
                            2165973894480315022ULL, 2448410071095648785ULL}};
    p->x = gx; fp5_one(&p->z); fp5_one(&p->u); fp5_zero(&p->t); p->t.v[0] = 4;
}

static inline void ec_add(ec_point *r, const ec_point *p, const ec_point *q) {
    fp5 t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, a, b;
    fp5_mul(&t1, &p->x, &q->x);
    fp5_mul(&t2, &p->z, &q->z);
    fp5_mul(&t3, &p->u, &q->u);
    fp5_mul(&t4, &p->t, &q->t);
    fp5_add(&a, &p->x, &p->z); fp5_add(&b, &q->x, &q->z); fp5_mul(&t5, &a, &b);
    fp5_add(&a, &t1, &t2); fp5_sub(&t5, &t5, &a);
    fp5_add(&a, &p->u, &p->t); fp5_add(&b, &q->u, &q->t); fp5_mul(&t6, &a, &b);
    fp5_add(&a, &t3, &t4); fp5_sub(&t6, &t6, &a);
    fp5 t2b;
    fp5_mul_b(&t2b, &t2, 1); fp5_add(&t7, &t1, &t2b);
    fp5_mul(&t8, &t4, &t7);
    fp5_mul_b(&a, &t5, 2); fp5_double(&b, &t7); fp5_add(&a, &a, &b); fp5_mul(&t9, &t3, &a);
    fp5_double(&a, &t3); fp5_add(&a, &t4, &a); fp5_add(&b, &t5, &t7); fp5_mul(&t10, &a, &b);
    fp5_sub(&a, &t10, &t8); fp5_mul_b(&r->x, &a, 1);
    fp5_sub(&a, &t2b, &t1);
    fp5 nz, nt;
    fp5_sub(&nz, &t8, &t9);
    fp5_add(&nt, &t8, &t9);
    fp5_mul(&r->u, &t6, &a);
    r->z = nz; r->t = nt;
}

static inline void ec_add_affine(ec_point *r, const ec_point *p, const ec_affine *q) {
    fp5 t1, t3, t5, t6, t7, t8, t9, t10, a, b;
    const fp5 *t2 = &p->z, *t4 = &p->t;
    fp5_mul(&t1, &p->x, &q->x);
    fp5_mul(&t3, &p->u, &q->u);
    fp5_mul(&a, &q->x, &p->z); fp5_add(&t5, &p->x, &a);
    fp5_mul(&a, &q->u, &p->t); fp5_add(&t6, &p->u, &a);
    fp5 t2b;
    fp5_mul_b(&t2b, t2, 1); fp5_add(&t7, &t1, &t2b);
    fp5_mul(&t8, t4, &t7);
    fp5_mul_b(&a, &t5, 2); fp5_double(&b, &t7); fp5_add(&a, &a, &b); fp5_mul(&t9, &t3, &a);
    fp5_double(&a, &t3); fp5_add(&a, t4, &a); fp5_add(&b, &t5, &t7); fp5_mul(&t10, &a, &b);
    fp5 nx, nu;
    fp5_sub(&a, &t10, &t8); fp5_mul_b(&nx, &a, 1);
    fp5_sub(&a, &t2b, &t1); fp5_mul(&nu, &t6, &a);
    fp5_sub(&r->z, &t8, &t9);
    fp5_add(&r->t, &t8, &t9);
    r->x = nx; r->u = nu;
}

static inline void ec_double(ec_point *r, const ec_point *p) {
    fp5 t1, t2, x1, z1, t3, w1, t4, a;
    fp5_mul(&t1, &p->z, &p->t);
    fp5_mul(&t2, &t1, &p->t);
    fp5_sqr(&x1, &t2);
    fp5_mul(&z1, &t1, &p->u);
    fp5_sqr(&t3, &p->u);
    fp5_add(&a, &p->x, &p->z); fp5_double(&a, &a); fp5_mul(&a, &t3, &a);
    fp5_sub(&w1, &t2, &a);
    fp5_sqr(&t4, &z1);
    fp5 nx, nz, nu, nt;
    fp5_mul_b(&nx, &t4, 4);
    fp5_sqr(&nz, &w1);
    fp5_add(&a, &w1, &z1); fp5_sqr(&a, &a); fp5 s; fp5_add(&s, &t4, &nz); fp5_sub(&nu, &a, &s);
    fp5_double(&a, &x1); fp5_double(&s, &t4); fp5_double(&s, &s); fp5_add(&s, &s, &nz);
    fp5_sub(&nt, &a, &s);
    r->x = nx; r->z = nz; r->u = nu; r->t = nt;
}

/* w = t / u (0 for the neutral). */
static inline void ec_encode(fp5 *w, const ec_point *p) {
    fp5 inv;
    fp5_inv(&inv, &p->u);
    fp5_mul(w, &p->t, &inv);
}

/* Decode w into a point; 0 if w encodes no group element. Variable time. */
static inline int ec_decode(ec_point *p, const fp5 *w) {
    fp5 e, delta, r, x1, x2, two_inv, t;
    fp5_sqr(&e, w);
    e.v[0] = gl_sub(e.v[0], 2);                    /* e = w^2 - a */
    fp5_sqr(&delta, &e);
    fp5 b4 = {{0, 4 * EC_B1, 0, 0, 0}};
    fp5_sub(&delta, &delta, &b4);                  /* delta = e^2 - 4b */
    if (!fp5_sqrt(&r, &delta)) {
        if (fp5_is_zero(w)) { ec_neutral(p); return 1; }
        return 0;
    }
    fp5_zero(&two_inv); two_inv.v[0] = (GL_P + 1) / 2;
    fp5_add(&t, &e, &r); fp5_mul(&x1, &t, &two_inv);
    fp5_sub(&t, &e, &r); fp5_mul(&x2, &t, &two_inv);
    /* x1 * x2 = b, a non-square: exactly one of them is a non-square; the group uses it. */
    p->x = fp5_legendre(&x1) == 1 ? x2 : x1;
    fp5_one(&p->z); fp5_one(&p->u); p->t = *w;
    return 1;
}

/* Batch conversion to affine (x/z, u/t) with one inversion. */
static void ec_batch_affine(ec_affine *out, const ec_point *in, int n) {
    fp5 acc, inv, tmp;
    fp5 *pre = (fp5 *)__builtin_alloca(sizeof(fp5) * 2 * (size_t)n);
    fp5_one(&acc);
    for (int i = 0; i < n; i++) {
        pre[2 * i] = acc;
        fp5_mul(&acc, &acc, &in[i].z);
        pre[2 * i + 1] = acc;
        fp5_mul(&acc, &acc, &in[i].t);
    }
    fp5_inv(&inv, &acc);
    for (int i = n - 1; i >= 0; i--) {
        fp5_mul(&tmp, &inv, &pre[2 * i + 1]);     /* 1 / t_i */
        fp5_mul(&out[i].u, &in[i].u, &tmp);
        fp5_mul(&inv, &inv, &in[i].t);
        fp5_mul(&tmp, &inv, &pre[2 * i]);         /* 1 / z_i */
        fp5_mul(&out[i].x, &in[i].x, &tmp);
        fp5_mul(&inv, &inv, &in[i].z);
    }
}

static inline void lsig_wipe_small(void *p, size_t n) {
    volatile uint8_t *v = (volatile uint8_t *)p;
    while (n--) *v++ = 0;
}

/* Signed 5-bit recoding of a canonical scalar: 64 digits in -16..16, sum d_i 32^i. */
static inline void sc_recode5(int8_t d[64], const scalar *s) {
    int carry = 0;
    for (int i = 0; i < 64; i++) {
        int bit = 5 * i, limb = bit >> 6, off = bit & 63;
        uint64_t w = s->v[limb] >> off;
        if (off > 59 && limb < 4) w |= s->v[limb + 1] << (64 - off);
        int v = (int)(w & 31) + carry;
        carry = (v + 15) >> 5;                    /* 1 if v > 16 (v <= 32) */
        d[i] = (int8_t)(v - (carry << 5));
    }
}

/* Fixed-base table of a point P: TAB[i][j] = (j + 1) * 32^i * P, affine; 64 x 16 entries
 * (80 KiB). One for G (signing); the simulator builds one per registered public key, so a
 * verification costs two table walks instead of a variable-base multiplication. */
typedef ec_affine ec_table[64][16];

static void ec_table_build(ec_table tab, const ec_point *p) {
    ec_point base = *p, row[16];
    for (int i = 0; i < 64; i++) {
        row[0] = base;
        for (int j = 1; j < 16; j++) ec_add(&row[j], &row[j - 1], &base);
        ec_batch_affine(tab[i], row, 16);
        ec_double(&base, &row[15]);               /* 32 * base */
    }
}

static ec_table EC_GTAB;

static void ec_gtab_init(void) {
    ec_point g;
    ec_generator(&g);
    ec_table_build(EC_GTAB, &g);
}

/* Constant-time: read every entry, keep |d|'s, negate u if d < 0; d = 0 gives (0, 0), the
 * affine neutral. */
static inline void ec_table_lookup(ec_affine *r, ec_table tab, int i, int d) {
    uint64_t sign = (uint64_t)0 - (uint64_t)((unsigned)d >> 31);
    int a = (d ^ (int)sign) - (int)sign;          /* |d| */
    memset(r, 0, sizeof *r);
    for (int j = 0; j < 16; j++) {
        uint32_t diff = (uint32_t)((j + 1) ^ a);
        uint64_t m = (uint64_t)0 - (uint64_t)(((diff | (0u - diff)) >> 31) ^ 1u); /* j+1 == |d| */
        for (int k = 0; k < 5; k++) {
            r->x.v[k] |= m & tab[i][j].x.v[k];
            r->u.v[k] |= m & tab[i][j].u.v[k];
        }
    }
    fp5 nu;
    fp5_neg(&nu, &r->u);
    for (int k = 0; k < 5; k++) r->u.v[k] = r->u.v[k] ^ (sign & (r->u.v[k] ^ nu.v[k]));
}

/* k * P through P's table, for a canonical scalar k. */
static inline void ec_mul_table(ec_point *r, ec_table tab, const scalar *k) {
    int8_t d[64];
    ec_affine a;
    sc_recode5(d, k);
    ec_neutral(r);
    for (int i = 0; i < 64; i++) {
        ec_table_lookup(&a, tab, i, d[i]);
        ec_add_affine(r, r, &a);
    }
    lsig_wipe_small(d, sizeof d);
}

/* k * G. */
static inline void ec_mul_gen(ec_point *r, const scalar *k) { ec_mul_table(r, EC_GTAB, k); }

/* k * P, variable time (public scalars and points only: verification, test vectors). */
static inline void ec_mul_var(ec_point *r, const ec_point *p, const scalar *k) {
    ec_point win[16];
    ec_neutral(&win[0]);
    for (int j = 1; j < 16; j++) ec_add(&win[j], &win[j - 1], p);
    ec_neutral(r);
    for (int i = 79; i >= 0; i--) {
        for (int j = 0; j < 4; j++) ec_double(r, r);
        int nib = (int)((k->v[i >> 4] >> (4 * (i & 15))) & 15);
        if (nib) ec_add(r, r, &win[nib]);
    }
}

/* ------------------------------------------------------------------ Schnorr */
/* e = H(enc(k G) || msg) mod n; s = k - e * sk mod n; signature = s || e (LE, 40 + 40 bytes). */
static inline void schnorr_challenge(scalar *e, const fp5 *r_enc, const fp5 *msg) {
    uint64_t pre[10];
    fp5 h;
    memcpy(pre, r_enc->v, 40);
    memcpy(pre + 5, msg->v, 40);
    p2_hash_to_fp5(pre, 10, &h);
    sc_from_fp5(e, &h);
}

static inline void schnorr_sign_commit(uint8_t sig[80], const scalar *sk, const fp5 *msg,
                                       const scalar *k, const fp5 *r_enc) {
    scalar e, es, s;
    schnorr_challenge(&e, r_enc, msg);
    sc_mul(&es, &e, sk);
    sc_sub(&s, k, &es);
    sc_to_le(sig, &s);
    sc_to_le(sig + 40, &e);
    memset(&es, 0, sizeof es);
    memset(&s, 0, sizeof s);
}

static inline void schnorr_commit(fp5 *r_enc, const scalar *k) {
    ec_point r;
    ec_mul_gen(&r, k);
    ec_encode(r_enc, &r);
    memset(&r, 0, sizeof r);
}

static inline void schnorr_public_key(fp5 *pk, const scalar *sk) { schnorr_commit(pk, sk); }

/* s G + e PK == R with enc(R) hashing back to e, PK given by its table. */
static inline int schnorr_verify_table(ec_table pk_tab, const fp5 *msg, const uint8_t sig[80]) {
    scalar s, e, e2;
    ec_point a, b;
    fp5 w;
    sc_from_le(&s, sig);
    sc_from_le(&e, sig + 40);
    if (!sc_is_canonical(&s) || !sc_is_canonical(&e)) return 0;
    ec_mul_gen(&a, &s);
    ec_mul_table(&b, pk_tab, &e);
    ec_add(&a, &a, &b);
    ec_encode(&w, &a);
    schnorr_challenge(&e2, &w, msg);
    return sc_eq(&e2, &e);
}

/* 1 if sig is a valid signature of msg under pk (encoded point). */
static inline int schnorr_verify(const fp5 *pk, const fp5 *msg, const uint8_t sig[80]) {
    scalar s, e, e2;
    ec_point p, a, b;
    fp5 w;
    sc_from_le(&s, sig);
    sc_from_le(&e, sig + 40);
    if (!sc_is_canonical(&s) || !sc_is_canonical(&e)) return 0;
    for (int i = 0; i < 5; i++) if (pk->v[i] >= GL_P) return 0;
    if (!ec_decode(&p, pk)) return 0;
    ec_mul_gen(&a, &s);
    ec_mul_var(&b, &p, &e);
    ec_add(&a, &a, &b);                         /* s G + e pk = k G */
    ec_encode(&w, &a);
    schnorr_challenge(&e2, &w, msg);
    return sc_eq(&e2, &e);
}

/* Flat-pointer forms for callers that hold a table as ec_affine[1024] (Cython). */
static inline void ec_table_build_flat(ec_affine *tab, const ec_point *p) {
    ec_table_build((ec_affine (*)[16])tab, p);
}
static inline int schnorr_verify_flat(ec_affine *tab, const fp5 *msg, const uint8_t *sig) {
    return schnorr_verify_table((ec_affine (*)[16])tab, msg, sig);
}

#endif
