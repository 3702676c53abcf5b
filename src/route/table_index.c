/*
 * The route table's index (built over the parsed rules of route/table_parse.c) and matching,
 * with it and, as the baseline, without it.
 *
 * Index. Rules are stored in match order; a rule's rank is its position there. Every rule
 * lives in one host bucket: an exact host (open-addressing hash of the lower-case host), a
 * wildcard suffix (".example.com" for "*.example.com", hashed the same way and probed at
 * each dot of the request host where some pattern's suffix would start) or the any-host
 * bucket. A bucket is a byte-wise radix tree over paths; all buckets share one node pool,
 * laid out breadth-first per bucket, one cache line per node. A node lists, ranks
 * ascending, the prefix rules whose prefix is the node's string and the regex rules whose
 * literal prefix it is (the root holds the regexes without one), and separately the exact
 * rules whose path it is.
 *
 * Match. Walk each applicable bucket along the request path, collecting the lists met on the
 * way (the exact list only where the path ends) as spans on the stack, then merge them in
 * rank order and return the first rule whose remaining conditions (regex, headers) hold.
 * Each list knows its first rule without conditions ("unconditional": a prefix or exact rule
 * without headers); the smallest such rank met bounds the merge, so rules behind it are never
 * looked at. When a pathological table produces more lists than the stack holds, the walk is
 * repeated per candidate instead (slower, still no allocation and no full scan).
 *
 * At 18,000 rules the index is about 1.3 MB (64-byte nodes, 64-byte host slots); a lookup
 * touches a handful of its cache lines, and the exact host's first nodes are prefetched
 * while the other buckets are walked.
 */
#include "route/table_internal.h"

#include <pthread.h>

#define HOST_TAIL        256 /* request-host bytes looked at for host buckets (>= HOST_MAX_LEN) */
#define ROOTS_MAX        (2 + HOST_TAIL / 2)
#define SPANS_MAX        64
#define MATCH_DATA_PAIRS 32

#define NODE_KIDS_INLINE  8
#define NODE_LABEL_INLINE 16

/*
 * A radix-tree node, one cache line; its string is the concatenation of the labels from the
 * bucket root. Nodes are laid out breadth-first per bucket, so a node's children are
 * consecutive. What a walk needs is in the line: a short label, the first bytes of a few
 * children, and one-rule lists (most lists) in list_first / exact_first.
 */
typedef struct node {
    uint32_t nlist;      /* prefix and regex rules whose (literal) prefix is this node's string */
    uint32_t nexact;     /* exact-path rules whose path it is */
    uint32_t list;       /* offset into ranks: nlist ranks, then nexact ranks, each ascending */
    uint32_t list_first; /* the first rank of each list (NONE when empty) */
    uint32_t exact_first;
    uint32_t list_uncond; /* smallest unconditional rank of each list, or NONE */
    uint32_t exact_uncond;
    uint32_t kids;      /* index of the first child; children are consecutive, by first byte */
    uint32_t label;     /* offset into labels when label_len > NODE_LABEL_INLINE */
    uint16_t label_len; /* <= STR_MAX_LEN */
    uint16_t nkids;     /* <= 256 */
    uint8_t kid_bytes[NODE_KIDS_INLINE]; /* first label bytes of the children, when that few */
    char inline_label[NODE_LABEL_INLINE];
} node_t;

_Static_assert(sizeof(node_t) == 64 && STR_MAX_LEN <= UINT16_MAX, "node layout");

#define SLOT_INLINE 40

/* One host-table slot (a cache line): the key is inline when short. len 0: empty. */
typedef struct hslot {
    uint64_t hash;
    uint32_t len;
    uint32_t root;
    const char *key; /* the key when longer than SLOT_INLINE (it lives in a rule) */
    char inline_key[SLOT_INLINE];
} hslot_t;

_Static_assert(sizeof(hslot_t) == 64, "one slot, one cache line");

static inline const char *slot_key(const hslot_t *s)
{
    return s->len <= SLOT_INLINE ? s->inline_key : s->key;
}

/* ---- small helpers ---------------------------------------------------------------------- */

/* Copies n bytes lower-casing ASCII letters, eight at a time. */
static inline void lower_copy(char *dst, const char *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, src + i, 8);
        uint64_t h = x & 0x7f7f7f7f7f7f7f7full;
        uint64_t ge_a = h + 0x3f3f3f3f3f3f3f3full; /* high bit set where h >= 'A' */
        uint64_t gt_z = h + 0x2525252525252525ull; /* high bit set where h > 'Z' */
        x |= ((ge_a & ~gt_z & ~x) & 0x8080808080808080ull) >> 2;
        memcpy(dst + i, &x, 8);
    }
    for (; i < n; i++)
        dst[i] = (char)lower((unsigned char)src[i]);
}

/* memcmp(a, b, n) == 0 for the short strings of the index, without a library call. */
static inline bool bytes_eq(const char *a, const char *b, size_t n)
{
    for (; n >= 8; a += 8, b += 8, n -= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y)
            return false;
    }
    for (; n > 0; n--)
        if (*a++ != *b++)
            return false;
    return true;
}

static bool eq_nocase(const char *a, const char *lower_b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != (unsigned char)lower_b[i])
            return false;
    return true;
}

/* ---- index building --------------------------------------------------------------------- */

typedef struct u32vec {
    uint32_t *v;
    uint32_t n, cap;
} u32vec_t;

static int u32vec_insert(u32vec_t *a, uint32_t at, uint32_t x)
{
    if (a->n == a->cap) {
        uint32_t cap = a->cap ? a->cap * 2 : 2;
        uint32_t *v = realloc(a->v, cap * sizeof(*v));
        if (v == NULL)
            return MG_ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    if (at < a->n)
        memmove(a->v + at + 1, a->v + at, (a->n - at) * sizeof(*a->v));
    a->v[at] = x;
    a->n++;
    return 0;
}

typedef struct bnode {
    const char *label;
    uint32_t label_len;
    u32vec_t kids; /* sorted by first label byte */
    u32vec_t list;
    u32vec_t exact;
} bnode_t;

typedef struct trie_build {
    bnode_t *n;
    uint32_t count, cap;
} trie_build_t;

static int bnode_new(trie_build_t *tb, const char *label, uint32_t len, uint32_t *out)
{
    if (tb->count == tb->cap) {
        uint32_t cap = tb->cap ? tb->cap * 2 : 64;
        bnode_t *n = realloc(tb->n, cap * sizeof(*n));
        if (n == NULL)
            return MG_ENOMEM;
        tb->n = n;
        tb->cap = cap;
    }
    tb->n[tb->count] = (bnode_t){.label = label, .label_len = len};
    *out = tb->count++;
    return 0;
}

static void trie_build_free(trie_build_t *tb)
{
    for (uint32_t i = 0; i < tb->count; i++) {
        free(tb->n[i].kids.v);
        free(tb->n[i].list.v);
        free(tb->n[i].exact.v);
    }
    free(tb->n);
}

/* Adds `rank` to the node for s[0..len) under `root`, splitting edges as needed. */
static int trie_insert(trie_build_t *tb, uint32_t root, const char *s, size_t len, uint32_t rank,
                       bool exact)
{
    uint32_t cur = root;
    size_t pos = 0;
    while (pos < len) {
        unsigned char c = (unsigned char)s[pos];
        u32vec_t *kids = &tb->n[cur].kids;
        uint32_t at = 0;
        while (at < kids->n && (unsigned char)tb->n[kids->v[at]].label[0] < c)
            at++;
        if (at == kids->n || (unsigned char)tb->n[kids->v[at]].label[0] != c) {
            uint32_t k;
            if (bnode_new(tb, s + pos, (uint32_t)(len - pos), &k) != 0 ||
                u32vec_insert(&tb->n[cur].kids, at, k) != 0)
                return MG_ENOMEM;
            cur = k;
            pos = len;
            break;
        }
        uint32_t k = kids->v[at];
        bnode_t *kid = &tb->n[k];
        size_t common = 0, most = kid->label_len < len - pos ? kid->label_len : len - pos;
        while (common < most && kid->label[common] == s[pos + common])
            common++;
        if (common < kid->label_len) {
            /* Split: a new node takes the common part, the kid keeps the rest below it. */
            uint32_t mid;
            if (bnode_new(tb, kid->label, (uint32_t)common, &mid) != 0 ||
                u32vec_insert(&tb->n[mid].kids, 0, k) != 0)
                return MG_ENOMEM;
            kid = &tb->n[k]; /* bnode_new may have moved the array */
            kid->label += common;
            kid->label_len -= (uint32_t)common;
            tb->n[cur].kids.v[at] = mid;
            k = mid;
        }
        cur = k;
        pos += common;
    }
    u32vec_t *list = exact ? &tb->n[cur].exact : &tb->n[cur].list;
    return u32vec_insert(list, list->n, rank);
}

/*
 * Finds or adds the bucket for `key` (which lives as long as the table) in an open-addressing
 * table; *root is its trie root (a build node index until the freeze renumbers it).
 */
static int bucket_root(trie_build_t *tb, hslot_t *tab, uint32_t mask, const char *key, size_t len,
                       uint32_t *root)
{
    uint64_t h = XXH3_64bits(key, len);
    uint32_t i = (uint32_t)h & mask;
    for (; tab[i].len != 0; i = (i + 1) & mask) {
        if (tab[i].hash == h && tab[i].len == len && memcmp(slot_key(&tab[i]), key, len) == 0) {
            *root = tab[i].root;
            return 0;
        }
    }
    if (bnode_new(tb, "", 0, root) != 0)
        return MG_ENOMEM;
    hslot_t *sl = &tab[i];
    sl->hash = h;
    sl->len = (uint32_t)len;
    sl->root = *root;
    sl->key = key;
    if (len <= SLOT_INLINE)
        memcpy(sl->inline_key, key, len);
    return 0;
}

static uint32_t first_uncond(const mg_route_table_t *t, const u32vec_t *l)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (t->rules[l->v[i]].uncond)
            return l->v[i];
    return NONE;
}

/*
 * Lays the build trees out flat, breadth-first per bucket: a node's children get consecutive
 * indices, and labels and rank lists follow the same order. Renumbers the bucket roots.
 */
static int freeze(mg_route_table_t *t, trie_build_t *tb, const u32vec_t *roots)
{
    uint32_t nlabel = 0;
    for (uint32_t i = 0; i < tb->count; i++)
        nlabel += tb->n[i].label_len;
    uint32_t *order =
        malloc((tb->count ? tb->count : 1) * sizeof(*order)); /* BFS position -> build node */
    uint32_t *renum =
        malloc((tb->count ? tb->count : 1) * sizeof(*renum)); /* build node -> index */
    t->nodes = calloc(tb->count ? tb->count : 1, sizeof(*t->nodes));
    t->first_byte = calloc(tb->count ? tb->count : 1, 1);
    t->labels = malloc(nlabel ? nlabel : 1);
    t->ranks = malloc((t->nrules ? t->nrules : 1) * sizeof(*t->ranks));
    int rc = MG_ENOMEM;
    if (order == NULL || renum == NULL || t->nodes == NULL || t->first_byte == NULL ||
        t->labels == NULL || t->ranks == NULL)
        goto out;

    uint32_t next = 0;
    for (uint32_t r = 0; r < roots->n; r++) {
        uint32_t head = next;
        order[next] = roots->v[r];
        renum[roots->v[r]] = next++;
        while (head < next) {
            const bnode_t *b = &tb->n[order[head++]];
            for (uint32_t k = 0; k < b->kids.n; k++) {
                order[next] = b->kids.v[k];
                renum[b->kids.v[k]] = next++;
            }
        }
    }
    uint32_t lo = 0, ro = 0;
    for (uint32_t i = 0; i < next; i++) {
        const bnode_t *b = &tb->n[order[i]];
        node_t *n = &t->nodes[i];
        n->label_len = (uint16_t)b->label_len;
        if (b->label_len > 0)
            t->first_byte[i] = (uint8_t)b->label[0];
        if (b->label_len <= NODE_LABEL_INLINE) {
            memcpy(n->inline_label, b->label, b->label_len);
        } else {
            n->label = lo;
            memcpy(t->labels + lo, b->label, b->label_len);
            lo += b->label_len;
        }
        n->nkids = (uint16_t)b->kids.n;
        n->kids = b->kids.n > 0 ? renum[b->kids.v[0]] : 0;
        for (uint32_t k = 0; k < b->kids.n && k < NODE_KIDS_INLINE; k++)
            n->kid_bytes[k] = (uint8_t)tb->n[b->kids.v[k]].label[0];
        n->list = ro;
        n->nlist = b->list.n;
        n->nexact = b->exact.n;
        n->list_first = b->list.n ? b->list.v[0] : NONE;
        n->exact_first = b->exact.n ? b->exact.v[0] : NONE;
        n->list_uncond = first_uncond(t, &b->list);
        n->exact_uncond = first_uncond(t, &b->exact);
        if (b->list.n > 0)
            memcpy(t->ranks + ro, b->list.v, b->list.n * sizeof(uint32_t));
        ro += b->list.n;
        if (b->exact.n > 0)
            memcpy(t->ranks + ro, b->exact.v, b->exact.n * sizeof(uint32_t));
        ro += b->exact.n;
    }
    t->nnodes = next;
    if (t->any_root != NONE)
        t->any_root = renum[t->any_root];
    for (uint32_t i = 0; t->hosts != NULL && i <= t->hosts_mask; i++)
        if (t->hosts[i].len != 0)
            t->hosts[i].root = renum[t->hosts[i].root];
    for (uint32_t i = 0; t->wild != NULL && i <= t->wild_mask; i++)
        if (t->wild[i].len != 0)
            t->wild[i].root = renum[t->wild[i].root];
    rc = 0;
out:
    free(order);
    free(renum);
    return rc;
}

/* Counts the distinct exact hosts and wildcard suffixes, to size their tables. */
static int count_hosts(const mg_route_table_t *t, uint32_t *nexact, uint32_t *nwild)
{
    sset_t set;
    if (sset_init(&set, t->nrules) != 0)
        return MG_ENOMEM;
    for (uint32_t i = 0; i < t->nrules; i++) {
        const rule_t *r = &t->rules[i];
        if (r->host_kind != HOST_ANY && sset_put(&set, r->host, r->host_len, i) == NONE) {
            *nexact += r->host_kind == HOST_EXACT;
            *nwild += r->host_kind == HOST_WILD;
        }
    }
    free(set.slots);
    return 0;
}

int mg_route_table_build_index(mg_route_table_t *t)
{
    trie_build_t tb = {0};
    u32vec_t roots = {0};
    int rc = MG_ENOMEM;
    uint32_t nexact = 0, nwild = 0;
    if (count_hosts(t, &nexact, &nwild) != 0)
        goto out;
    t->any_root = NONE;
    if (nexact > 0) {
        size_t cap = pow2_at_least(2 * (size_t)nexact);
        if ((t->hosts = calloc(cap, sizeof(*t->hosts))) == NULL)
            goto out;
        t->hosts_mask = (uint32_t)(cap - 1);
    }
    if (nwild > 0) {
        size_t cap = pow2_at_least(2 * (size_t)nwild);
        if ((t->wild = calloc(cap, sizeof(*t->wild))) == NULL)
            goto out;
        t->wild_mask = (uint32_t)(cap - 1);
    }

    /* Insert in rank order, so every node list comes out ascending. */
    for (uint32_t i = 0; i < t->nrules; i++) {
        const rule_t *r = &t->rules[i];
        uint32_t root, before = tb.count;
        if (r->host_kind == HOST_ANY) {
            if (t->any_root == NONE && bnode_new(&tb, "", 0, &t->any_root) != 0)
                goto out;
            root = t->any_root;
        } else if (r->host_kind == HOST_EXACT) {
            if (bucket_root(&tb, t->hosts, t->hosts_mask, r->host, r->host_len, &root) != 0)
                goto out;
        } else {
            uint32_t sl = (uint32_t)r->host_len - 1;
            if (bucket_root(&tb, t->wild, t->wild_mask, r->host + 1, sl, &root) != 0)
                goto out;
            t->wild_max = sl > t->wild_max ? sl : t->wild_max;
            t->wild_lens[sl >> 6] |= (uint64_t)1 << (sl & 63);
        }
        if (tb.count != before && u32vec_insert(&roots, roots.n, root) != 0)
            goto out;
        const char *key = r->path_kind == PATH_REGEX ? r->lit : r->path;
        size_t klen = r->path_kind == PATH_REGEX ? r->lit_len : r->path_len;
        if (trie_insert(&tb, root, key, klen, i, r->path_kind == PATH_EXACT) != 0)
            goto out;
    }
    rc = freeze(t, &tb, &roots);
out:
    trie_build_free(&tb);
    free(roots.v);
    return rc;
}

/* ---- per-thread regex match data -------------------------------------------------------- */

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static pthread_key_t md_key;
static bool md_key_ok;
static _Thread_local pcre2_match_data *md;

static void md_destroy(void *p)
{
    pcre2_match_data_free(p);
}

static void md_key_init(void)
{
    md_key_ok = pthread_key_create(&md_key, md_destroy) == 0;
}

/* The calling thread's match data, created on first use and freed when the thread exits. */
static pcre2_match_data *thread_md(void)
{
    if (md != NULL)
        return md;
    pthread_once(&md_once, md_key_init);
    md = pcre2_match_data_create(MATCH_DATA_PAIRS, NULL);
    if (md != NULL && md_key_ok)
        pthread_setspecific(md_key, md);
    return md;
}

/* True when `re` matches somewhere in s[0..n). Errors (match limit, no memory) are no match. */
static bool re_match(const mg_route_table_t *t, const pcre2_code *re, bool jit, const char *s,
                     size_t n)
{
    pcre2_match_data *m = thread_md();
    if (m == NULL)
        return false;
    PCRE2_SPTR subject = (PCRE2_SPTR)(s != NULL ? s : "");
    int rc = jit ? pcre2_jit_match(re, subject, n, 0, 0, m, t->mctx)
                 : pcre2_match(re, subject, n, 0, 0, m, t->mctx);
    return rc >= 0;
}

/* ---- matching one rule ------------------------------------------------------------------ */

static bool headers_match(const mg_route_table_t *t, const rule_t *r, const mg_route_request_t *req)
{
    for (uint32_t i = 0; i < r->nhdrs; i++) {
        const hdr_t *h = &r->hdrs[i];
        mg_str_t v = {NULL, 0};
        int present = req->headers.get != NULL &&
                      req->headers.get(req->headers.ctx, h->name, h->name_len, &v) == 1;
        switch (h->kind) {
        case HDR_PRESENT:
            if (!present)
                return false;
            break;
        case HDR_ABSENT:
            if (present)
                return false;
            break;
        case HDR_EXACT:
            if (!present || v.len != h->value_len ||
                (v.len != 0 && memcmp(v.ptr, h->value, v.len) != 0))
                return false;
            break;
        default:
            if (!present || !re_match(t, h->re, h->jit, v.ptr, v.len))
                return false;
        }
    }
    return true;
}

/* The conditions the index does not decide: a path regex and the headers. */
static inline bool rest_matches(const mg_route_table_t *t, const rule_t *r,
                                const mg_route_request_t *req)
{
    if (r->path_kind == PATH_REGEX &&
        !re_match(t, r->path_re, r->path_jit, req->path.ptr, req->path.len))
        return false;
    return r->nhdrs == 0 || headers_match(t, r, req);
}

static bool host_matches(const rule_t *r, mg_str_t host)
{
    switch (r->host_kind) {
    case HOST_ANY: return true;
    case HOST_EXACT: return host.len == r->host_len && eq_nocase(host.ptr, r->host, host.len);
    default: {
        /* "*.example.com": the host ends with ".example.com" and something precedes it. */
        size_t sl = r->host_len - 1;
        return host.len > sl && eq_nocase(host.ptr + host.len - sl, r->host + 1, sl);
    }
    }
}

static bool path_matches(const mg_route_table_t *t, const rule_t *r, mg_str_t path)
{
    switch (r->path_kind) {
    case PATH_EXACT: return path.len == r->path_len && memcmp(path.ptr, r->path, path.len) == 0;
    case PATH_PREFIX: return path.len >= r->path_len && memcmp(path.ptr, r->path, r->path_len) == 0;
    default: return re_match(t, r->path_re, r->path_jit, path.ptr, path.len);
    }
}

const mg_route_rule_t *mg_route_table_match_linear(const mg_route_table_t *t,
                                                   const mg_route_request_t *req)
{
    for (uint32_t i = 0; i < t->nrules; i++) {
        const rule_t *r = &t->rules[i];
        if (host_matches(r, req->host) && path_matches(t, r, req->path) &&
            (r->nhdrs == 0 || headers_match(t, r, req)))
            return &r->pub;
    }
    return NULL;
}

/* ---- indexed matching ------------------------------------------------------------------- */

typedef struct span {
    const uint32_t *p, *end;
} span_t;

typedef struct collect {
    uint32_t bound; /* smallest unconditional rank met: the answer unless a smaller rank matches */
    bool slow;      /* re-walk mode: find the smallest rank > `above` */
    bool overflow;
    int64_t above;
    uint32_t next;
    int nspans;
    span_t spans[SPANS_MAX];
} collect_t;

/* Considers one node list: `first` is its first rank (NONE when empty), `list` its n ranks. */
static inline void take(collect_t *c, uint32_t first, const uint32_t *list, uint32_t n,
                        uint32_t uncond)
{
    if (first >= c->bound)
        return;
    if (uncond < c->bound)
        c->bound = uncond;
    if (!c->slow) {
        if (c->nspans < SPANS_MAX)
            c->spans[c->nspans++] = (span_t){list, list + n};
        else
            c->overflow = true;
        return;
    }
    /* First rank above c->above (lists are ascending). */
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if ((int64_t)list[mid] > c->above)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (lo < n && list[lo] < c->next)
        c->next = list[lo];
}

static inline uint32_t find_kid(const mg_route_table_t *t, const node_t *n, unsigned char c)
{
    uint32_t cnt = n->nkids;
    const uint8_t *b = cnt <= NODE_KIDS_INLINE ? n->kid_bytes : t->first_byte + n->kids;
    if (cnt <= NODE_KIDS_INLINE) {
        for (uint32_t i = 0; i < cnt; i++)
            if (b[i] == c)
                return n->kids + i;
        return NONE;
    }
    uint32_t lo = 0, hi = cnt;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (b[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < cnt && b[lo] == c) ? n->kids + lo : NONE;
}

/* Takes every list of bucket `root` whose rules' path (prefix, literal prefix, exact) fits. */
static void walk(const mg_route_table_t *t, uint32_t root, mg_str_t path, collect_t *c)
{
    const node_t *n = &t->nodes[root];
    size_t pos = 0;
    for (;;) {
        take(c, n->list_first, n->nlist == 1 ? &n->list_first : t->ranks + n->list, n->nlist,
             n->list_uncond);
        if (pos == path.len) {
            take(c, n->exact_first,
                 n->nexact == 1 ? &n->exact_first : t->ranks + n->list + n->nlist, n->nexact,
                 n->exact_uncond);
            return;
        }
        uint32_t k = find_kid(t, n, (unsigned char)path.ptr[pos]);
        if (k == NONE)
            return;
        n = &t->nodes[k];
        const char *label =
            n->label_len <= NODE_LABEL_INLINE ? n->inline_label : t->labels + n->label;
        if (n->label_len > path.len - pos || !bytes_eq(label, path.ptr + pos, n->label_len))
            return;
        pos += n->label_len;
    }
}

static inline uint32_t hash_find(const hslot_t *tab, uint32_t mask, const char *key, size_t len)
{
    uint64_t h = XXH3_64bits(key, len);
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        const hslot_t *s = &tab[i];
        if (s->len == 0)
            return NONE;
        if (s->hash == h && s->len == len && bytes_eq(slot_key(s), key, len))
            return s->root;
    }
}

/*
 * The bucket roots that apply to `host`, the exact host's last: its nodes are the likely
 * cache misses, so they are prefetched here and walked after the others.
 * Returns their number.
 */
static int host_roots(const mg_route_table_t *t, mg_str_t host, uint32_t *roots)
{
    int n = 0;
    if (t->any_root != NONE)
        roots[n++] = t->any_root;
    if (t->hosts == NULL && t->wild == NULL)
        return n;
    /* Only the last HOST_TAIL bytes can take part in a host or suffix of a pattern. */
    char low[HOST_TAIL];
    size_t tail = host.len > HOST_TAIL ? HOST_TAIL : host.len;
    size_t off = host.len - tail;
    lower_copy(low, host.ptr + off, tail);
    uint32_t exact = NONE;
    if (t->hosts != NULL && host.len <= HOST_MAX_LEN) {
        exact = hash_find(t->hosts, t->hosts_mask, low, tail);
        /* Breadth-first layout: the first levels of the bucket follow its root. */
        for (uint32_t k = 0; exact != NONE && k < 4 && exact + k < t->nnodes; k++)
            __builtin_prefetch(&t->nodes[exact + k]);
    }
    if (t->wild != NULL) {
        /* Only suffix lengths some pattern has: a dot there with something before it. */
        size_t most = t->wild_max < tail ? t->wild_max : tail;
        for (size_t w = 0; w < 4 && w * 64 <= most; w++) {
            for (uint64_t bits = t->wild_lens[w]; bits != 0; bits &= bits - 1) {
                size_t sl = w * 64 + (size_t)__builtin_ctzll(bits);
                if (sl > most)
                    break;
                size_t j = tail - sl;
                if (low[j] != '.' || off + j == 0)
                    continue;
                uint32_t r = hash_find(t->wild, t->wild_mask, low + j, sl);
                if (r != NONE && n < ROOTS_MAX - 1)
                    roots[n++] = r;
            }
        }
    }
    if (exact != NONE)
        roots[n++] = exact;
    return n;
}

const mg_route_rule_t *mg_route_table_match(const mg_route_table_t *t,
                                            const mg_route_request_t *req)
{
    if (t->nrules == 0)
        return NULL;
    mg_str_t host = req->host.ptr != NULL ? req->host : (mg_str_t){"", 0};
    mg_str_t path = req->path.ptr != NULL ? req->path : (mg_str_t){"", 0};
    uint32_t roots[ROOTS_MAX];
    int nroots = host_roots(t, host, roots);

    collect_t c;
    c.bound = NONE;
    c.slow = false;
    c.overflow = false;
    c.nspans = 0;
    for (int i = 0; i < nroots; i++)
        walk(t, roots[i], path, &c);

    if (!c.overflow) {
        /* Merge the ascending spans; only ranks below the bound need a look. */
        for (;;) {
            uint32_t best = c.bound;
            int bi = -1;
            for (int i = 0; i < c.nspans; i++) {
                if (c.spans[i].p < c.spans[i].end && *c.spans[i].p < best) {
                    best = *c.spans[i].p;
                    bi = i;
                }
            }
            if (bi < 0)
                break;
            c.spans[bi].p++;
            if (rest_matches(t, &t->rules[best], req))
                return &t->rules[best].pub;
        }
    } else {
        /* Too many lists to hold: find each next candidate by walking again. */
        c.slow = true;
        c.above = -1;
        for (;;) {
            c.next = c.bound;
            for (int i = 0; i < nroots; i++)
                walk(t, roots[i], path, &c);
            if (c.next >= c.bound)
                break;
            if (rest_matches(t, &t->rules[c.next], req))
                return &t->rules[c.next].pub;
            c.above = c.next;
        }
    }
    return c.bound == NONE ? NULL : &t->rules[c.bound].pub;
}
