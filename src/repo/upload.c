/* Model upload and config override through the repository load (repo/upload.h). */
#include "repo/upload.h"

#include "core/buf.h"
#include "core/file.h"
#include "repo/config.h"
#include "repo/loader.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- decoding ------------------------------------------------------------------------------ */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Standard base64 (RFC 4648, padding optional) of `len` bytes into a malloc'd buffer. */
static int b64_decode(const char *in, size_t len, char **out, size_t *out_len)
{
    while (len > 0 && in[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return MG_EPARSE;
    char *buf = malloc(len / 4 * 3 + 3);
    if (buf == NULL)
        return MG_ENOMEM;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0) {
            free(buf);
            return MG_EPARSE;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    *out = buf;
    *out_len = n;
    return 0;
}

/* A plain file name: not empty, not hidden, no '/', printable. */
static bool plain_name(const char *s, size_t n)
{
    if (n == 0 || n >= 128 || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '/' || (unsigned char)s[i] < 0x21 || s[i] == '\\')
            return false;
    }
    return true;
}

/* "<name>" or "<version>/<name>" (decimal version, no leading zero). */
static bool upload_path_ok(const char *p)
{
    const char *slash = strchr(p, '/');
    if (slash == NULL)
        return plain_name(p, strlen(p)) && strcmp(p, "config.json") != 0;
    size_t vlen = (size_t)(slash - p);
    if (vlen == 0 || vlen > 18 || p[0] == '0')
        return false;
    for (size_t i = 0; i < vlen; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
    }
    return plain_name(slash + 1, strlen(slash + 1));
}

void mg_upload_deinit(mg_upload_t *u)
{
    free(u->config);
    for (int i = 0; i < u->nfiles; i++)
        free(u->files[i].bytes);
    memset(u, 0, sizeof(*u));
}

int mg_upload_parse(const char *body, size_t len, mg_upload_t *out, mg_err_t *err)
{
    memset(out, 0, sizeof(*out));
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
        i++;
    if (i == len)
        return 0;
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return mg_err_set(err, MG_EPARSE, "load body: %s (line %d)", jerr.text, jerr.line);
    int rc = 0;
    json_t *params = json_object_get(root, "parameters");
    if (!json_is_object(root) || (json_object_size(root) > 0 && params == NULL) ||
        json_object_size(root) > 1 || (params != NULL && !json_is_object(params)))
        rc = mg_err_set(err, MG_EPARSE,
                        "load body must be {\"parameters\": {\"config\": \"...\", "
                        "\"file:<version>/<name>\": \"<base64>\"}}");
    const char *key;
    json_t *v;
    if (rc == 0 && params != NULL) {
        json_object_foreach(params, key, v)
        {
            if (strcmp(key, "config") == 0) {
                if (!json_is_string(v)) {
                    rc = mg_err_set(err, MG_EPARSE,
                                    "load parameter 'config' must be a string of config.json "
                                    "text");
                    break;
                }
                out->config_len = json_string_length(v);
                out->config = strndup(json_string_value(v), out->config_len);
                if (out->config == NULL) {
                    rc = mg_err_set(err, MG_ENOMEM, "out of memory");
                    break;
                }
                continue;
            }
            if (strncmp(key, "file:", 5) != 0) {
                rc = mg_err_set(err, MG_EINVAL,
                                "unknown load parameter '%s' (use \"config\" or "
                                "\"file:<version>/<name>\")",
                                key);
                break;
            }
            const char *path = key + 5;
            if (strlen(path) >= MG_UPLOAD_PATH_MAX || !upload_path_ok(path)) {
                rc = mg_err_set(err, MG_EINVAL,
                                "load parameter '%s': the path must be <name> or "
                                "<version>/<name> in the model folder (no '..', nothing hidden, "
                                "config.json only as \"config\")",
                                key);
                break;
            }
            if (out->nfiles == MG_UPLOAD_FILES_MAX) {
                rc = mg_err_set(err, MG_EINVAL, "a load may carry at most %d files",
                                MG_UPLOAD_FILES_MAX);
                break;
            }
            mg_upload_file_t *f = &out->files[out->nfiles];
            if (!json_is_string(v) || (rc = b64_decode(json_string_value(v), json_string_length(v),
                                                       &f->bytes, &f->len)) != 0) {
                rc = mg_err_set(err, rc == MG_ENOMEM ? MG_ENOMEM : MG_EPARSE,
                                "load parameter '%s' must be the file's bytes in base64", key);
                break;
            }
            snprintf(f->path, sizeof(f->path), "%s", path);
            out->nfiles++;
        }
    }
    if (rc == 0 && out->nfiles > 0 && out->config == NULL)
        rc = mg_err_set(err, MG_EINVAL,
                        "a load with files needs the model's \"config\" too (as Triton's does)");
    json_decref(root);
    if (rc != 0)
        mg_upload_deinit(out);
    return rc;
}

/* ---- writing ------------------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes `path` and everything under it (symlinks are not followed). */
static void remove_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes `len` bytes to a new file `path` and flushes it. */
static int write_new(const char *path, const char *data, size_t len, mg_err_t *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return mg_err_set(err, MG_EIO, "cannot create %s: %s", path, strerror(errno));
    size_t off = 0;
    while (off < len) {
        ssize_t k = write(fd, data + off, len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            close(fd);
            return mg_err_set(err, MG_EIO, "cannot write %s: %s", path, strerror(errno));
        }
        off += (size_t)k;
    }
    int rc = fsync(fd) == 0 ? 0 : mg_err_set(err, MG_EIO, "cannot flush %s", path);
    close(fd);
    return rc;
}

static void sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Writes the files and config.json into the new folder `dir`. */
static int stage(const char *dir, const mg_upload_t *u, mg_err_t *err)
{
    char path[4096];
    if (mkdir(dir, 0755) != 0)
        return mg_err_set(err, MG_EIO, "cannot create %s: %s", dir, strerror(errno));
    for (int i = 0; i < u->nfiles; i++) {
        const char *slash = strchr(u->files[i].path, '/');
        if (slash != NULL) {
            mg_str_format(path, sizeof(path), "%s/%.*s", dir, (int)(slash - u->files[i].path),
                          u->files[i].path);
            if (mkdir(path, 0755) != 0 && errno != EEXIST)
                return mg_err_set(err, MG_EIO, "cannot create %s: %s", path, strerror(errno));
        }
        mg_str_format(path, sizeof(path), "%s/%s", dir, u->files[i].path);
        int rc = write_new(path, u->files[i].bytes, u->files[i].len, err);
        if (rc == MG_EIO && errno == EEXIST)
            return mg_err_set(err, MG_EINVAL, "file '%s' is given twice", u->files[i].path);
        if (rc != 0)
            return rc;
        if (slash != NULL) {
            mg_str_format(path, sizeof(path), "%s/%.*s", dir, (int)(slash - u->files[i].path),
                          u->files[i].path);
            sync_dir(path);
        }
    }
    mg_str_format(path, sizeof(path), "%s/config.json", dir);
    int rc = write_new(path, u->config, u->config_len, err);
    if (rc == 0)
        sync_dir(dir);
    return rc;
}

/* Swaps the two paths in one step (both must exist). */
static int exchange(const char *a, const char *b)
{
    return renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
}

static int apply_files(const char *repo_dir, const char *model, const mg_upload_t *u,
                       int (*load)(void *ctx, mg_err_t *err), void *ctx, mg_err_t *err)
{
    static atomic_uint serial;
    char dir[4096], staging[4096];
    mg_str_format(dir, sizeof(dir), "%s/%s", repo_dir, model);
    mg_str_format(staging, sizeof(staging), "%s/.%s.upload-%d-%u", repo_dir, model, (int)getpid(),
                  atomic_fetch_add(&serial, 1));
    int rc = stage(staging, u, err);
    if (rc != 0) {
        remove_tree(staging);
        return rc;
    }
    struct stat st;
    bool existed = lstat(dir, &st) == 0;
    if (existed && !S_ISDIR(st.st_mode)) {
        remove_tree(staging);
        return mg_err_set(err, MG_EINVAL, "%s is not a folder", dir);
    }
    if ((existed ? exchange(staging, dir) : rename(staging, dir)) != 0) {
        rc = mg_err_set(err, MG_EIO, "cannot move the upload into %s: %s", dir, strerror(errno));
        remove_tree(staging);
        return rc;
    }
    sync_dir(repo_dir);
    rc = load(ctx, err);
    if (rc != 0) {
        /* Put back what was there (or nothing); the refused upload goes. */
        if (existed)
            exchange(staging, dir);
        else
            rename(dir, staging);
        sync_dir(repo_dir);
    }
    remove_tree(staging);
    return rc;
}

static int apply_config(const char *repo_dir, const char *model, const mg_upload_t *u,
                        int (*load)(void *ctx, mg_err_t *err), void *ctx, mg_err_t *err)
{
    char dir[4096], path[4096];
    mg_str_format(dir, sizeof(dir), "%s/%s", repo_dir, model);
    mg_str_format(path, sizeof(path), "%s/config.json", dir);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return mg_err_set(err, MG_ENOMODEL,
                          "no model '%s' in the repository to override the config of (send its "
                          "files too)",
                          model);
    char *old = NULL;
    size_t old_len = 0;
    mg_err_t rerr;
    bool had = mg_file_read(path, 16u << 20, &old, &old_len, &rerr) == 0;
    int rc = mg_file_write_atomic(path, u->config, u->config_len, err);
    if (rc == 0) {
        rc = load(ctx, err);
        if (rc != 0) {
            mg_err_t werr;
            if (had)
                mg_file_write_atomic(path, old, old_len, &werr);
            else
                unlink(path);
        }
    }
    free(old);
    return rc;
}

int mg_upload_apply(const char *repo_dir, const char *model, const mg_upload_t *u,
                    int (*load)(void *ctx, mg_err_t *err), void *ctx, mg_err_t *err)
{
    if (!mg_loader_valid_name(model))
        return mg_err_set(err, MG_EINVAL, "'%s' cannot name a model folder", model);
    /* Every path built below fits: the folder, a hidden twin, a version and a file name. */
    if (strlen(repo_dir) + strlen(model) + MG_UPLOAD_PATH_MAX + 64 >= 4096)
        return mg_err_set(err, MG_EINVAL, "the repository path is too long for an upload");
    mg_model_config_t *cfg = malloc(sizeof(*cfg));
    if (cfg == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    int rc = mg_model_config_parse(u->config, u->config_len, model, cfg, err);
    free(cfg);
    if (rc != 0)
        return rc;
    return u->nfiles > 0 ? apply_files(repo_dir, model, u, load, ctx, err)
                         : apply_config(repo_dir, model, u, load, ctx, err);
}
