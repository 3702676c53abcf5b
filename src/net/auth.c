#include "net/auth.h"

#include "core/file.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_MIN 16
#define TOKEN_MAX 4096

int mg_auth_load(mg_auth_t *a, const char *path, mg_err_t *err)
{
    char *text = NULL;
    size_t len = 0;
    mg_err_t ferr;
    if (mg_file_read(path, TOKEN_MAX, &text, &len, &ferr) != 0)
        return mg_err_set(err, ferr.code == MG_ETOOBIG ? MG_EINVAL : MG_EIO,
                          "--admin-token-file: %s", ferr.msg);
    size_t s = 0, e = 0;
    while (s < len && (text[s] == ' ' || text[s] == '\t' || text[s] == '\r' || text[s] == '\n'))
        s++;
    e = s;
    while (e < len && text[e] != '\n' && text[e] != '\r')
        e++;
    while (e > s && (text[e - 1] == ' ' || text[e - 1] == '\t'))
        e--;
    int rc = 0;
    for (size_t i = s; i < e && rc == 0; i++) {
        if ((unsigned char)text[i] <= 0x20 || (unsigned char)text[i] >= 0x7f)
            rc = mg_err_set(err, MG_EINVAL,
                            "--admin-token-file %s: the token must be printable ASCII without "
                            "spaces",
                            path);
    }
    if (rc == 0 && e - s < TOKEN_MIN)
        rc = mg_err_set(err, MG_EINVAL,
                        "--admin-token-file %s: the token must be at least %d characters", path,
                        TOKEN_MIN);
    unsigned int dlen = 0;
    if (rc == 0 && !EVP_Digest(text + s, e - s, a->sha256, &dlen, EVP_sha256(), NULL))
        rc = mg_err_set(err, MG_EIO, "--admin-token-file: sha-256 failed");
    OPENSSL_cleanse(text, len);
    free(text);
    if (rc == 0)
        a->set = true;
    return rc;
}

int mg_auth_check(const mg_auth_t *a, mg_str_t authorization)
{
    if (!a->set)
        return 0;
    static const char scheme[] = "bearer ";
    size_t n = sizeof(scheme) - 1;
    if (authorization.len <= n || strncasecmp(authorization.ptr, scheme, n) != 0)
        return MG_EUNAUTHORIZED;
    const char *tok = authorization.ptr + n;
    size_t len = authorization.len - n;
    while (len > 0 && *tok == ' ') {
        tok++;
        len--;
    }
    unsigned char got[32];
    unsigned int dlen = 0;
    if (!EVP_Digest(tok, len, got, &dlen, EVP_sha256(), NULL))
        return MG_EFORBIDDEN;
    return CRYPTO_memcmp(got, a->sha256, sizeof(got)) == 0 ? 0 : MG_EFORBIDDEN;
}

bool mg_auth_is_loopback(const char *host)
{
    unsigned char a[16];
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, host, a) != 1)
        return false;
    static const unsigned char one[16] = {[15] = 1};
    static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};
    return memcmp(a, one, 16) == 0 || (memcmp(a, mapped, 12) == 0 && a[12] == 127);
}
