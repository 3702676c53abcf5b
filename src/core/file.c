#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mg_file_read(const char *path, size_t max, char **out, size_t *len, mg_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mg_err_set(err, errno == ENOENT ? MG_ENOENT : MG_EIO, "cannot open %s: %s", path,
                          strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mg_err_set(err, MG_EIO, "%s is not a regular file", path);
    }
    if ((size_t)st.st_size > max) {
        close(fd);
        return mg_err_set(err, MG_ETOOBIG, "%s is %lld bytes, over the %zu-byte limit", path,
                          (long long)st.st_size, max);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return mg_err_set(err, MG_ENOMEM, "out of memory reading %s", path);
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            free(buf);
            close(fd);
            return mg_err_set(err, MG_EIO, "short read on %s", path);
        }
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}
