/*
 * Checksums of a version's files: sha256sum's SHA256SUMS format, config.json's pins, and
 * file identities for skipping unchanged files.
 */
#include "repo/verify.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void id_from_stat(const struct stat *st, mg_file_id_t *out)
{
    memset(out, 0, sizeof(*out));
    out->dev = (uint64_t)st->st_dev;
    out->ino = (uint64_t)st->st_ino;
    out->size = (uint64_t)st->st_size;
    out->mtime_s = (int64_t)st->st_mtim.tv_sec;
    out->mtime_ns = (int64_t)st->st_mtim.tv_nsec;
    /* ctime too: a write that restores the mtime (touch -d) still moves it. */
    out->ctime_s = (int64_t)st->st_ctim.tv_sec;
    out->ctime_ns = (int64_t)st->st_ctim.tv_nsec;
}

int mg_file_id_of(const char *path, mg_file_id_t *out)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errno == ENOENT || errno == ENOTDIR ? MG_ENOENT : MG_EIO;
    id_from_stat(&st, out);
    return 0;
}

int mg_file_id_of_fd(int fd, mg_file_id_t *out)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return MG_EIO;
    id_from_stat(&st, out);
    return 0;
}

bool mg_file_id_equal(const mg_file_id_t *a, const mg_file_id_t *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

void mg_sha256_hex(const unsigned char digest[32], char out[65])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[64] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int mg_sha256_parse(const char *hex, size_t len, unsigned char digest[32])
{
    if (len != 64)
        return MG_EINVAL;
    for (int i = 0; i < 32; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return MG_EINVAL;
        digest[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* "./a/b" and "a/b" name the same file. */
static const char *plain_name(const char *s, size_t *len)
{
    while (*len >= 2 && s[0] == '.' && s[1] == '/') {
        s += 2;
        *len -= 2;
    }
    return s;
}

/*
 * Finds `name` in SHA256SUMS: lines "<64 hex> <space or *><name>", where a line starting with
 * a backslash has "\\" and "\n" escapes in its name (GNU coreutils). Returns 1 with the
 * digest, 0 when not listed, or MG_EMODEL for a malformed line.
 */
static int sums_lookup(const char *sums, size_t len, const char *name, unsigned char digest[32],
                       mg_err_t *err)
{
    int found = 0, lineno = 0;
    for (const char *p = sums, *end = sums + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        const char *line = p;
        p = nl ? nl + 1 : end;
        lineno++;
        if (eol > line && eol[-1] == '\r')
            eol--;
        if (eol == line)
            continue;
        int escaped = line[0] == '\\';
        if (escaped)
            line++;
        unsigned char d[32];
        if (eol - line < 66 || mg_sha256_parse(line, 64, d) != 0 || line[64] != ' ' ||
            (line[65] != ' ' && line[65] != '*'))
            return mg_err_set(err, MG_EMODEL,
                              "SHA256SUMS line %d is not '<64 hex digits>  <file>' (sha256sum "
                              "format)",
                              lineno);
        char fname[1024];
        size_t n = 0;
        for (const char *s = line + 66; s < eol && n + 1 < sizeof(fname); s++) {
            if (escaped && *s == '\\' && s + 1 < eol) {
                s++;
                fname[n++] = *s == 'n' ? '\n' : *s;
            } else {
                fname[n++] = *s;
            }
        }
        fname[n] = '\0';
        size_t a = n, b = strlen(name);
        const char *x = plain_name(fname, &a), *y = plain_name(name, &b);
        if (a == b && memcmp(x, y, a) == 0) {
            memcpy(digest, d, 32);
            found = 1;
        }
    }
    return found;
}

static int mismatch(mg_err_t *err, const char *file, const unsigned char want[32],
                    const unsigned char got[32], const char *source)
{
    char w[65], g[65];
    mg_sha256_hex(want, w);
    mg_sha256_hex(got, g);
    return mg_err_set(err, MG_EMODEL,
                      "checksum mismatch for '%.*s': expected %.16s..., got %.16s... (%s)",
                      mg_err_quote_len(strlen(file)), file, w, g, source);
}

int mg_verify_files(const mg_verify_file_t *files, size_t n, const char *sums, size_t sums_len,
                    const mg_model_config_t *cfg, int64_t version, bool require, mg_err_t *err)
{
    int rc;
    for (size_t i = 0; i < n; i++) {
        bool ok = false;
        const char *name = files[i].name;
        int q = mg_err_quote_len(strlen(name));
        if (sums != NULL) {
            unsigned char want[32];
            if ((rc = sums_lookup(sums, sums_len, name, want, err)) < 0)
                return rc;
            if (rc == 0)
                return mg_err_set(err, MG_EMODEL,
                                  "SHA256SUMS does not list '%.*s', which the model loads", q,
                                  name);
            if (memcmp(want, files[i].sha256, 32) != 0)
                return mismatch(err, name, want, files[i].sha256, "SHA256SUMS");
            ok = true;
        }
        for (int k = 0; k < cfg->npins; k++) {
            const mg_pin_t *p = &cfg->pins[k];
            size_t a = strlen(p->file), b = strlen(name);
            const char *x = plain_name(p->file, &a), *y = plain_name(name, &b);
            if (p->version != version || a != b || memcmp(x, y, a) != 0)
                continue;
            if (memcmp(p->sha256, files[i].sha256, 32) != 0)
                return mismatch(err, name, p->sha256, files[i].sha256, "config.json 'sha256'");
            ok = true;
        }
        if (require && !ok)
            return mg_err_set(err, MG_EMODEL,
                              "no checksum for '%.*s' (--require-checksums: list it in the "
                              "version's SHA256SUMS or pin it in config.json 'sha256')",
                              q, name);
    }
    /* A pin for a file the model does not load is a mistake in config.json: say so. */
    for (int k = 0; k < cfg->npins; k++) {
        const mg_pin_t *p = &cfg->pins[k];
        if (p->version != version)
            continue;
        bool used = false;
        for (size_t i = 0; i < n && !used; i++) {
            size_t a = strlen(p->file), b = strlen(files[i].name);
            const char *x = plain_name(p->file, &a), *y = plain_name(files[i].name, &b);
            used = a == b && memcmp(x, y, a) == 0;
        }
        if (!used)
            return mg_err_set(err, MG_EMODEL,
                              "config.json 'sha256' pins '%s' for version %lld, a file the model "
                              "does not load",
                              p->file, (long long)version);
    }
    return 0;
}
