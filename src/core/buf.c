#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mg_str_cmp(const char *a, mg_str_t b)
{
    size_t alen = strlen(a);
    int c = memcmp(a, b.ptr, alen < b.len ? alen : b.len);
    return c != 0 ? c : (alen > b.len) - (alen < b.len);
}

int mg_buf_reserve(mg_buf_t *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    size_t need;
    if (__builtin_add_overflow(b->len, extra, &need))
        return MG_ENOMEM;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return MG_ENOMEM;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return MG_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int mg_buf_append(mg_buf_t *b, const void *p, size_t n)
{
    if (mg_buf_reserve(b, n) != 0)
        return MG_ENOMEM;
    if (n != 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int mg_buf_puts(mg_buf_t *b, const char *s)
{
    return mg_buf_append(b, s, strlen(s));
}

int mg_buf_printf(mg_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || mg_buf_reserve(b, (size_t)n + 1) != 0)
        return MG_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int mg_buf_json_string(mg_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case every byte becomes \u00XX. */
    size_t worst;
    if (mg_mul_size(n, 6, &worst) != 0 || mg_buf_reserve(b, worst + 2) != 0)
        return MG_ENOMEM;
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return 0;
}

void mg_buf_free(mg_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* A block larger than this (one huge request) is returned to malloc at reset. */
#define MG_ARENA_KEEP_MAX ((size_t)16 << 20)

struct mg_arena_block {
    mg_arena_block_t *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    _Alignas(64) unsigned char mem[];
};

void mg_arena_init(mg_arena_t *a, size_t block_size)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : 64 * 1024;
}

void *mg_arena_alloc(mg_arena_t *a, size_t n)
{
    size_t rounded;
    if (__builtin_add_overflow(n, (size_t)63, &rounded))
        return NULL;
    rounded &= ~(size_t)63;
    if (rounded == 0)
        rounded = 64;
    mg_arena_block_t *blk = a->head;
    if (blk == NULL || blk->size - blk->used < rounded) {
        size_t size = rounded > a->block_size ? rounded : a->block_size;
        if (size > SIZE_MAX - sizeof(*blk))
            return NULL;
        blk = aligned_alloc(64, (sizeof(*blk) + size + 63) & ~(size_t)63);
        if (blk == NULL)
            return NULL;
        blk->size = size;
        blk->used = 0;
        blk->next = a->head;
        a->head = blk;
    }
    void *p = blk->mem + blk->used;
    blk->used += rounded;
    return p;
}

char *mg_arena_strndup(mg_arena_t *a, const char *s, size_t n)
{
    char *p = mg_arena_alloc(a, n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

void mg_arena_reset(mg_arena_t *a)
{
    /* Keep the largest block, so the next request of the same size needs no malloc. */
    mg_arena_block_t *keep = NULL;
    for (mg_arena_block_t *b = a->head; b != NULL; b = b->next) {
        if ((keep == NULL || b->size > keep->size) && b->size <= MG_ARENA_KEEP_MAX)
            keep = b;
    }
    mg_arena_block_t *b = a->head;
    while (b != NULL) {
        mg_arena_block_t *next = b->next;
        if (b != keep)
            free(b);
        b = next;
    }
    a->head = keep;
    if (keep != NULL) {
        keep->next = NULL;
        keep->used = 0;
    }
}

void mg_arena_free(mg_arena_t *a)
{
    mg_arena_block_t *b = a->head;
    while (b != NULL) {
        mg_arena_block_t *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

void mg_str_format(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}
