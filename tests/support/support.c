#include "support/support.h"

#include "core/err.h"
#include "core/file.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

void mg_test_sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

mg_str_t mg_test_str(const char *s)
{
    return s != NULL ? (mg_str_t){s, strlen(s)} : (mg_str_t){NULL, 0};
}

const char *mg_test_source_dir(void)
{
    const char *dir = getenv("MG_SOURCE_DIR");
    if (dir != NULL && *dir != '\0')
        return dir;
    static char from_file[512];
    static const char suffix[] = "/tests/support/support.c";
    const char *file = __FILE__; /* absolute in CMake builds */
    size_t n = strlen(file), ns = sizeof(suffix) - 1;
    if (n > ns && n < sizeof(from_file) && strcmp(file + n - ns, suffix) == 0) {
        memcpy(from_file, file, n - ns);
        from_file[n - ns] = '\0';
    }
    static const char *guesses[] = {from_file, ".", "..", "../.."};
    for (size_t i = 0; i < sizeof(guesses) / sizeof(guesses[0]); i++) {
        char path[600];
        snprintf(path, sizeof(path), "%s/scripts/gen_test_models.py", guesses[i]);
        if (guesses[i][0] != '\0' && access(path, R_OK) == 0)
            return guesses[i];
    }
    return ".";
}

const char *mg_test_python(void)
{
    const char *python = getenv("MG_PYTHON");
    return python != NULL && *python != '\0' ? python : "/usr/bin/python3";
}

int mg_test_tmpdir(const char *prefix, char *buf, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(buf, cap, "%s/%sXXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp", prefix);
    if (n < 0 || (size_t)n >= cap) {
        if (cap > 0)
            buf[0] = '\0';
        return -ENAMETOOLONG;
    }
    if (mkdtemp(buf) == NULL) {
        int rc = -errno;
        buf[0] = '\0';
        return rc;
    }
    return 0;
}

char *mg_test_read_file(const char *path, size_t *len)
{
    char *bytes = NULL;
    mg_err_t err;
    int rc = mg_file_read(path, SIZE_MAX, &bytes, len, &err);
    if (rc != 0)
        fail_msg("%s", err.msg);
    return bytes;
}
