/* A pool of precomputed Schnorr nonce commitments (k, enc(k G)), filled by one C thread that
 * never takes the GIL. Each commitment is handed out once and wiped from the pool as it leaves.
 * k comes from the OS CSPRNG (getrandom) by rejection sampling, so it is uniform in [1, n).
 *
 * Fork: the owner locks the pool before fork() and, in the child, wipes it and marks it dead
 * (lsig_pool_after_fork_child), so a child can never hand out a commitment its parent also has.
 */
#ifndef MMFAST_LSIG_POOL_H
#define MMFAST_LSIG_POOL_H

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/random.h>
#include "curve.h"

static inline void lsig_wipe(void *p, size_t n) { lsig_wipe_small(p, n); }

/* 0 on success, -1 if the OS refused randomness. */
static inline int lsig_random(uint8_t *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

/* A uniform nonzero scalar below n. */
static inline int lsig_random_scalar(scalar *k) {
    uint8_t buf[40];
    for (int tries = 0; tries < 64; tries++) {
        if (lsig_random(buf, sizeof buf)) return -1;
        sc_from_le(k, buf);
        k->v[4] &= 0x7FFFFFFFFFFFFFFFULL; /* n < 2^319: keep 319 bits, reject the rest */
        if (sc_is_canonical(k) && !sc_is_zero(k)) {
            lsig_wipe(buf, sizeof buf);
            return 0;
        }
    }
    lsig_wipe(buf, sizeof buf);
    return -1;
}

typedef struct { scalar k; fp5 r; } lsig_commit;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    lsig_commit *ring;  /* cap slots; [head, head + count) are filled */
    int cap, head, count;
    int low;            /* refill starts when count drops to this, and runs until full */
    int refilling;      /* the filler is topping the pool up */
    int stop;           /* asks the filler to exit */
    int running;        /* the filler thread exists */
    int dead;           /* wiped after a fork, or stopped: never hand anything out */
    int failed;         /* the filler could not get randomness */
    pthread_t th;
    uint64_t generated; /* commitments made by the filler */
} lsig_pool;

static void *lsig_pool_fill(void *arg) {
    lsig_pool *p = (lsig_pool *)arg;
    lsig_commit c;
    for (;;) {
        /* Refill in batches from the low-water mark up to full, not after every take: the
         * filler then rarely computes k*G on the other core while the loop signs a burst. */
        pthread_mutex_lock(&p->mu);
        for (;;) {
            if (p->stop) break;
            if (p->count >= p->cap) p->refilling = 0;
            else if (p->count <= p->low) p->refilling = 1;
            if (p->refilling) break;
            pthread_cond_wait(&p->cv, &p->mu);
        }
        int stop = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (stop) break;
        if (lsig_random_scalar(&c.k)) {
            pthread_mutex_lock(&p->mu);
            p->failed = 1;
            pthread_mutex_unlock(&p->mu);
            break;
        }
        schnorr_commit(&c.r, &c.k);
        pthread_mutex_lock(&p->mu);
        if (!p->stop && p->count < p->cap) {
            p->ring[(p->head + p->count) % p->cap] = c;
            p->count++;
            p->generated++;
        }
        pthread_mutex_unlock(&p->mu);
        lsig_wipe(&c, sizeof c);
    }
    lsig_wipe(&c, sizeof c);
    return NULL;
}

/* 0 on success. */
static inline int lsig_pool_init(lsig_pool *p, int cap) {
    memset(p, 0, sizeof *p);
    p->ring = (lsig_commit *)calloc((size_t)cap, sizeof(lsig_commit));
    if (!p->ring) return -1;
    p->cap = cap;
    p->low = cap / 2;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->th, NULL, lsig_pool_fill, p) != 0) {
        free(p->ring);
        p->ring = NULL;
        return -1;
    }
    p->running = 1;
    return 0;
}

/* Take one commitment: 1 if one was there (copied out and wiped in the pool), else 0. */
static inline int lsig_pool_take(lsig_pool *p, lsig_commit *out) {
    int got = 0;
    pthread_mutex_lock(&p->mu);
    if (!p->dead && p->count > 0) {
        lsig_commit *slot = &p->ring[p->head];
        *out = *slot;
        lsig_wipe(slot, sizeof *slot);
        p->head = (p->head + 1) % p->cap;
        p->count--;
        got = 1;
        if (p->count <= p->low) pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return got;
}

static inline int lsig_pool_count(lsig_pool *p) {
    pthread_mutex_lock(&p->mu);
    int n = p->count;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* Stop the filler, wipe and free everything. Safe to call twice. */
static inline void lsig_pool_destroy(lsig_pool *p) {
    if (p->running) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        p->dead = 1;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->th, NULL);
        p->running = 0;
    }
    if (p->ring) {
        lsig_wipe(p->ring, sizeof(lsig_commit) * (size_t)p->cap);
        free(p->ring);
        p->ring = NULL;
    }
    p->count = 0;
    p->dead = 1;
}

/* Around fork(): hold the lock so the child never inherits it mid-update. */
static inline void lsig_pool_before_fork(lsig_pool *p) { pthread_mutex_lock(&p->mu); }
static inline void lsig_pool_after_fork_parent(lsig_pool *p) { pthread_mutex_unlock(&p->mu); }
/* In the child the filler thread does not exist: wipe, mark dead, fresh lock. */
static inline void lsig_pool_after_fork_child(lsig_pool *p) {
    if (p->ring) lsig_wipe(p->ring, sizeof(lsig_commit) * (size_t)p->cap);
    p->count = 0;
    p->dead = 1;
    p->running = 0; /* nothing to join here; the ring is freed on destroy */
    p->stop = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
}

#endif
