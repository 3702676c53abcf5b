#include "support/ring.h"

#include "route/policy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* More virtual nodes than this (16 bytes each while building) is refused as MG_ENOMEM. */
#define RING_MAX_NODES ((size_t)1 << 26)

struct mg_ring {
    size_t n;
    uint32_t *hash;   /* ascending */
    int64_t *version; /* version[i] owns the keys in (hash[i-1], hash[i]], wrapping around */
};

typedef struct vnode {
    uint32_t hash;
    uint32_t index;
    int64_t version;
} vnode_t;

/* By hash, then version and index, so that 32-bit collisions still give one fixed order. */
static int vnode_cmp(const void *a, const void *b)
{
    const vnode_t *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

int mg_ring_new(mg_ring_t **out, const int64_t *versions, const uint32_t *weights, int n,
                double alpha)
{
    if (n <= 0 || versions == NULL || weights == NULL || !isfinite(alpha) || !(alpha > 0))
        return MG_EINVAL;
    /* Step 1: virtual nodes per version, max(1, floor(w^alpha)) for w > 0, none for w = 0. */
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (weights[i] == 0)
            continue;
        double c = floor(pow((double)weights[i], alpha));
        if (!(c <= (double)RING_MAX_NODES) || total + (size_t)c > RING_MAX_NODES)
            return MG_ENOMEM;
        total += c < 1 ? 1 : (size_t)c;
    }
    if (total == 0)
        return MG_EINVAL;

    /* Step 2: hash "<version>:<i>" for each, sort. */
    mg_ring_t *r = calloc(1, sizeof(*r));
    vnode_t *nodes = malloc(total * sizeof(*nodes));
    if (r == NULL || nodes == NULL)
        goto fail;
    r->hash = malloc(total * sizeof(r->hash[0]));
    r->version = malloc(total * sizeof(r->version[0]));
    if (r->hash == NULL || r->version == NULL)
        goto fail;
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (weights[i] == 0)
            continue;
        double c = floor(pow((double)weights[i], alpha));
        size_t count = c < 1 ? 1 : (size_t)c;
        for (size_t j = 0; j < count; j++) {
            char text[48];
            int len = snprintf(text, sizeof(text), "%lld:%zu", (long long)versions[i], j);
            nodes[k++] =
                (vnode_t){mg_policy_sticky_hash(text, (size_t)len), (uint32_t)j, versions[i]};
        }
    }
    qsort(nodes, total, sizeof(nodes[0]), vnode_cmp);

    /* Step 3: split into a hash array to bisect and a version array to answer from. */
    for (size_t j = 0; j < total; j++) {
        r->hash[j] = nodes[j].hash;
        r->version[j] = nodes[j].version;
    }
    r->n = total;
    free(nodes);
    *out = r;
    return 0;
fail:
    free(nodes);
    mg_ring_free(r);
    return MG_ENOMEM;
}

void mg_ring_free(mg_ring_t *r)
{
    if (r == NULL)
        return;
    free(r->hash);
    free(r->version);
    free(r);
}

int64_t mg_ring_lookup(const mg_ring_t *r, const char *key, size_t len)
{
    uint32_t h = mg_policy_sticky_hash(key, len);
    /* lower_bound: the first virtual node at or clockwise after h; past the last wraps to 0. */
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->hash[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return r->version[lo == r->n ? 0 : lo];
}

size_t mg_ring_size(const mg_ring_t *r)
{
    return r->n;
}
