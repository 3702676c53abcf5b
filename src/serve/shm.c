/* System shared-memory regions (serve/shm.h). */
#include "serve/shm.h"

#include "proto/tensor_raw.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_MAX_LEN 255

typedef struct mg_shm_region {
    char name[NAME_MAX_LEN + 1];
    char key[NAME_MAX_LEN + 1];
    uint64_t offset, byte_size;
    void *map;       /* the mapping, from the page that holds `offset` */
    size_t map_len;  /* bytes mapped */
    char *base;      /* the region's first byte: map + (offset % page) */
    atomic_int refs; /* the table's (while registered) plus one per holding request */
} region_t;

struct mg_shm {
    pthread_mutex_t lock;
    region_t *regions[MG_SHM_REGIONS_MAX]; /* sorted by name */
    size_t n;
};

int mg_shm_new(mg_shm_t **out)
{
    mg_shm_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return MG_ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return 0;
}

static void region_unref(region_t *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    munmap(r->map, r->map_len);
    free(r);
}

void mg_shm_free(mg_shm_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        region_unref(s->regions[i]);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* The slot of `name` (found: *found true), or where it would go. Under the lock. */
static size_t find(const mg_shm_t *s, mg_str_t name, bool *found)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = mg_str_cmp(s->regions[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* A POSIX shm name: "/" then 1..254 bytes without '/' or NUL, not "." or "..". */
static bool shm_key_ok(const char *key)
{
    size_t n = strlen(key);
    return n >= 2 && n <= NAME_MAX_LEN && key[0] == '/' && strchr(key + 1, '/') == NULL &&
           strcmp(key, "/.") != 0 && strcmp(key, "/..") != 0;
}

static int map_region(region_t *r, mg_err_t *err)
{
    int fd = shm_open(r->key, O_RDWR, 0);
    if (fd < 0)
        return mg_err_set(err, errno == ENOENT ? MG_ENOENT : MG_EIO,
                          "cannot open shared-memory object '%s' (/dev/shm%s): %s", r->key, r->key,
                          strerror(errno));
    struct stat st;
    int rc = 0;
    uint64_t end = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc =
            mg_err_set(err, MG_EINVAL, "shared-memory object '%s' is not a regular object", r->key);
    else if (__builtin_add_overflow(r->offset, r->byte_size, &end) || end > (uint64_t)st.st_size)
        rc = mg_err_set(err, MG_EINVAL,
                        "region offset %llu + byte_size %llu is past the end of '%s' (%lld "
                        "bytes)",
                        (unsigned long long)r->offset, (unsigned long long)r->byte_size, r->key,
                        (long long)st.st_size);
    if (rc == 0) {
        uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
        uint64_t start = r->offset - r->offset % page;
        r->map_len = (size_t)(end - start);
        r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)start);
        if (r->map == MAP_FAILED)
            rc = mg_err_set(err, MG_EIO, "cannot map shared-memory object '%s': %s", r->key,
                            strerror(errno));
        else
            r->base = (char *)r->map + (r->offset - start);
    }
    close(fd);
    return rc;
}

int mg_shm_register(mg_shm_t *s, mg_str_t name, const char *key, uint64_t offset,
                    uint64_t byte_size, mg_err_t *err)
{
    if (name.len == 0 || name.len > NAME_MAX_LEN || memchr(name.ptr, '\0', name.len) != NULL)
        return mg_err_set(err, MG_EINVAL, "a region name must be 1 to %d bytes", NAME_MAX_LEN);
    if (!shm_key_ok(key))
        return mg_err_set(err, MG_EINVAL,
                          "'key' must name a POSIX shared-memory object under /dev/shm: \"/name\" "
                          "with no other '/'");
    if (byte_size == 0)
        return mg_err_set(err, MG_EINVAL, "'byte_size' must be at least 1");
    if (byte_size > SIZE_MAX / 2)
        return mg_err_set(err, MG_EINVAL, "'byte_size' %llu is too large",
                          (unsigned long long)byte_size);
    region_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    memcpy(r->name, name.ptr, name.len);
    snprintf(r->key, sizeof(r->key), "%s", key);
    r->offset = offset;
    r->byte_size = byte_size;
    atomic_init(&r->refs, 1);
    pthread_mutex_lock(&s->lock);
    bool found;
    size_t at = find(s, name, &found);
    int rc = 0;
    if (found)
        rc = mg_err_set(err, MG_EINVAL,
                        "shared-memory region '%.*s' is already registered (unregister it first)",
                        mg_err_quote_len(name.len), name.ptr);
    else if (s->n == MG_SHM_REGIONS_MAX)
        rc = mg_err_set(err, MG_EINVAL, "%d shared-memory regions are registered, the most kept",
                        MG_SHM_REGIONS_MAX);
    else
        rc = map_region(r, err);
    if (rc == 0) {
        memmove(&s->regions[at + 1], &s->regions[at], (s->n - at) * sizeof(s->regions[0]));
        s->regions[at] = r;
        s->n++;
    }
    pthread_mutex_unlock(&s->lock);
    if (rc != 0)
        free(r);
    return rc;
}

int mg_shm_unregister(mg_shm_t *s, mg_str_t name, mg_err_t *err)
{
    region_t *gone[MG_SHM_REGIONS_MAX];
    size_t ngone = 0;
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (name.len == 0) {
        memcpy(gone, s->regions, s->n * sizeof(gone[0]));
        ngone = s->n;
        s->n = 0;
    } else {
        bool found;
        size_t at = find(s, name, &found);
        if (!found) {
            rc = mg_err_set(err, MG_ENOENT, "no shared-memory region '%.*s' is registered",
                            mg_err_quote_len(name.len), name.ptr);
        } else {
            gone[ngone++] = s->regions[at];
            memmove(&s->regions[at], &s->regions[at + 1], (s->n - at - 1) * sizeof(s->regions[0]));
            s->n--;
        }
    }
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < ngone; i++)
        region_unref(gone[i]);
    return rc;
}

int mg_shm_status(mg_shm_t *s, mg_str_t name, int (*fn)(void *ctx, const mg_shm_status_t *st),
                  void *ctx, mg_err_t *err)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    size_t from = 0, to = s->n;
    if (name.len > 0) {
        bool found;
        from = find(s, name, &found);
        to = from + 1;
        if (!found)
            rc = mg_err_set(err, MG_ENOENT, "no shared-memory region '%.*s' is registered",
                            mg_err_quote_len(name.len), name.ptr);
    }
    for (size_t i = from; rc == 0 && i < to; i++) {
        const region_t *r = s->regions[i];
        mg_shm_status_t st = {r->name, r->key, r->offset, r->byte_size};
        rc = fn(ctx, &st);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/*
 * Holds region `ref->region` and returns the `ref->byte_size` bytes at ref->offset in it, or
 * NULL with `err` naming `what` (the input or output) and what is wrong.
 */
static char *hold_range(mg_shm_t *s, const mg_shm_ref_t *ref, const char *kind, mg_str_t who,
                        mg_shm_hold_t *hold, mg_err_t *err)
{
    if (hold->n == MG_SHM_HOLD_MAX) {
        mg_err_set(err, MG_EINVAL, "a request may use at most %d shared-memory ranges",
                   MG_SHM_HOLD_MAX);
        return NULL;
    }
    pthread_mutex_lock(&s->lock);
    bool found;
    size_t at = find(s, ref->region, &found);
    region_t *r = found ? s->regions[at] : NULL;
    if (r != NULL)
        atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&s->lock);
    if (r == NULL) {
        mg_err_set(err, MG_EINVAL, "%s '%.*s': no shared-memory region '%.*s' is registered", kind,
                   mg_err_quote_len(who.len), who.ptr, mg_err_quote_len(ref->region.len),
                   ref->region.ptr);
        return NULL;
    }
    hold->held[hold->n++] = r;
    uint64_t end;
    if (__builtin_add_overflow(ref->offset, ref->byte_size, &end) || end > r->byte_size) {
        mg_err_set(err, MG_EINVAL,
                   "%s '%.*s': shared_memory_offset %llu + shared_memory_byte_size %llu is "
                   "outside region '%s' (%llu bytes)",
                   kind, mg_err_quote_len(who.len), who.ptr, (unsigned long long)ref->offset,
                   (unsigned long long)ref->byte_size, r->name, (unsigned long long)r->byte_size);
        return NULL;
    }
    return r->base + ref->offset;
}

int mg_shm_bind_inputs(mg_shm_t *s, mg_infer_request_t *req, mg_shm_hold_t *hold, mg_err_t *err)
{
    for (size_t i = 0; req->shm_inputs != NULL && i < req->ninputs; i++) {
        const mg_shm_ref_t *ref = &req->shm_inputs[i];
        if (ref->region.len == 0)
            continue;
        mg_tensor_t *t = &req->inputs[i];
        char *p = hold_range(s, ref, "input", t->name, hold, err);
        if (p == NULL)
            return err->code;
        int rc = mg_tensor_raw_bind(t, p, (size_t)ref->byte_size, req->arena,
                                    "shared_memory_byte_size", err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int mg_shm_write_outputs(mg_shm_t *s, const mg_infer_request_t *req, mg_infer_response_t *resp,
                         mg_shm_hold_t *hold, mg_err_t *err)
{
    if (req->shm_outputs == NULL)
        return 0;
    mg_shm_ref_t *marks = mg_arena_alloc(req->arena, (resp->noutputs + 1) * sizeof(*marks));
    if (marks == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    memset(marks, 0, (resp->noutputs + 1) * sizeof(*marks));
    for (size_t k = 0; k < resp->noutputs; k++) {
        const mg_tensor_t *t = &resp->outputs[k];
        for (size_t i = 0; i < req->noutputs; i++) {
            const mg_shm_ref_t *ref = &req->shm_outputs[i];
            const mg_str_t n = req->outputs[i].name;
            if (ref->region.len == 0 || n.len != t->name.len ||
                memcmp(n.ptr, t->name.ptr, n.len) != 0)
                continue;
            char *p = hold_range(s, ref, "output", t->name, hold, err);
            if (p == NULL)
                return err->code;
            uint64_t size;
            if (mg_tensor_raw_size(t, &size) != 0)
                return mg_err_set(err, MG_ENOMEM, "out of memory");
            if (size > ref->byte_size)
                return mg_err_set(err, MG_EINVAL,
                                  "output '%.*s' is %llu bytes, more than its "
                                  "shared_memory_byte_size %llu",
                                  mg_err_quote_len(t->name.len), t->name.ptr,
                                  (unsigned long long)size, (unsigned long long)ref->byte_size);
            mg_tensor_raw_write(t, p);
            marks[k] = *ref;
        }
    }
    resp->shm = marks;
    return 0;
}

int mg_shm_hold(mg_shm_t *s, mg_infer_request_t *req, mg_err_t *err)
{
    if (req->shm_inputs == NULL && req->shm_outputs == NULL)
        return 0;
    mg_shm_hold_t *hold = mg_arena_alloc(req->arena, sizeof(*hold));
    if (hold == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    memset(hold, 0, sizeof(*hold));
    req->shm_hold = hold;
    int rc = mg_shm_bind_inputs(s, req, hold, err);
    if (rc != 0)
        mg_shm_release(hold);
    return rc;
}

void mg_shm_release(mg_shm_hold_t *hold)
{
    if (hold == NULL)
        return;
    for (int i = 0; i < hold->n; i++)
        region_unref(hold->held[i]);
    hold->n = 0;
}
