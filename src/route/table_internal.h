/*
 * What the route table's two halves share: route/table_parse.c (parsing, validation, JSON
 * output, free) and route/table_index.c (building the index, matching). The rules and the
 * table that holds them are defined here; the index's node and host-slot layouts stay in
 * table_index.c. Not part of the module's interface, which is route/table.h.
 */
#ifndef MG_ROUTE_TABLE_INTERNAL_H
#define MG_ROUTE_TABLE_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#define XXH_INLINE_ALL

#include "route/table.h"

#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define NONE         UINT32_MAX
#define HOST_MAX_LEN 253  /* a host pattern, "*." included */
#define STR_MAX_LEN  4096 /* paths, regexes, header values */

enum { HOST_ANY = 0, HOST_EXACT, HOST_WILD };
enum { PATH_EXACT = 0, PATH_PREFIX, PATH_REGEX };
enum { HDR_EXACT = 0, HDR_REGEX, HDR_PRESENT, HDR_ABSENT };

typedef struct hdr {
    char *name; /* lower-case */
    size_t name_len;
    int kind;
    char *value; /* exact value or regex source; NULL for present/absent */
    size_t value_len;
    pcre2_code *re;
    bool jit;
} hdr_t;

typedef struct rule {
    mg_route_rule_t pub;
    uint32_t file_index;
    int host_kind;
    int path_kind;
    bool uncond; /* no condition beyond host and the trie position: exact/prefix, no headers */
    bool path_jit;
    char *name;
    char *model;
    char *host; /* lower-case pattern, "*." kept for wildcards; NULL for any host */
    size_t host_len;
    char *path; /* exact path, prefix or regex source */
    size_t path_len;
    char *lit; /* regex: literal text every match starts with at offset 0 (may be empty) */
    size_t lit_len;
    pcre2_code *path_re;
    hdr_t *hdrs; /* sorted by name */
    uint32_t nhdrs;
    mg_policy_t *traffic;
} rule_t;

/* The index's radix-tree node and exact-host / wildcard-suffix slot (route/table_index.c). */
typedef struct node node_t;
typedef struct hslot hslot_t;

struct mg_route_table {
    rule_t *rules; /* in match order */
    uint32_t nrules;
    node_t *nodes;
    uint32_t nnodes;
    uint8_t *first_byte; /* per node: the first byte of its label */
    char *labels;
    uint32_t *ranks;
    hslot_t *hosts; /* exact hosts; NULL when none */
    uint32_t hosts_mask;
    hslot_t *wild; /* wildcard suffixes (".example.com"); NULL when none */
    uint32_t wild_mask;
    uint32_t wild_max;     /* longest suffix */
    uint64_t wild_lens[4]; /* bit n: some suffix is n bytes long */
    uint32_t any_root;
    pcre2_match_context *mctx;
};

/* ---- small helpers ---------------------------------------------------------------------- */

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static inline size_t pow2_at_least(size_t n)
{
    size_t c = 8;
    while (c < n)
        c <<= 1;
    return c;
}

/* ---- string set ------------------------------------------------------------------------ */

/* A set of byte strings mapping to rule indices; build time only. */
typedef struct sslot {
    uint64_t hash;
    const char *key;
    size_t len;
    uint32_t val;
} sslot_t;

typedef struct sset {
    sslot_t *slots;
    size_t mask;
} sset_t;

static inline int sset_init(sset_t *s, size_t n)
{
    size_t cap = pow2_at_least(2 * n);
    s->slots = calloc(cap, sizeof(*s->slots));
    s->mask = cap - 1;
    return s->slots != NULL ? 0 : MG_ENOMEM;
}

/* Returns the value of an equal key already present, or adds `key` -> `val` and returns NONE. */
static inline uint32_t sset_put(sset_t *s, const char *key, size_t len, uint32_t val)
{
    uint64_t h = XXH3_64bits(key, len);
    size_t i = (size_t)h & s->mask;
    for (; s->slots[i].key != NULL; i = (i + 1) & s->mask) {
        const sslot_t *e = &s->slots[i];
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
            return e->val;
    }
    s->slots[i] = (sslot_t){h, key, len, val};
    return NONE;
}

/**
 * Builds the index of `t` over its rules, which must already be in match order (a rule's
 * rank is its position). Returns 0 or MG_ENOMEM; whatever it allocated belongs to `t` either
 * way and is freed by mg_route_table_free. Thread: the one parsing `t`, before it is shared.
 */
int mg_route_table_build_index(mg_route_table_t *t);

#endif
