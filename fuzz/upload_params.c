/*
 * libFuzzer target for the repository load body with model upload (repo/upload.h). A body that
 * decodes has at most MG_UPLOAD_FILES_MAX files, each path "<name>" or "<version>/<name>" with
 * a decimal version and a name that is neither hidden nor holds a '/' (so nothing a request
 * names can leave the model folder), and the model's config.json only as "config"; one that
 * does not is refused with a message. Nothing is written: mg_upload_apply is not called.
 */
#include "fuzz.h"
#include "repo/upload.h"

#include <string.h>

/* The contract's path rule, checked on its own. */
static int path_ok(const char *p)
{
    const char *slash = strchr(p, '/');
    const char *name = p;
    if (slash != NULL) {
        if (slash == p || p[0] == '0')
            return 0;
        for (const char *c = p; c < slash; c++)
            if (*c < '0' || *c > '9')
                return 0;
        name = slash + 1;
    } else if (strcmp(p, "config.json") == 0) {
        return 0;
    }
    return name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_copy(data, size);
    if (text == NULL)
        return 0;
    mg_upload_t u;
    mg_err_t err;
    int rc = mg_upload_parse(text, size, &u, &err);
    if (rc != 0) {
        check((rc == MG_EPARSE || rc == MG_EINVAL || rc == MG_ENOMEM) && err.msg[0] != '\0');
        check(u.config == NULL && u.nfiles == 0);
    } else {
        check(u.nfiles >= 0 && u.nfiles <= MG_UPLOAD_FILES_MAX);
        check(u.config == NULL || u.config[u.config_len] == '\0');
        for (int i = 0; i < u.nfiles; i++) {
            check(memchr(u.files[i].path, '\0', MG_UPLOAD_PATH_MAX) != NULL);
            check(path_ok(u.files[i].path));
            check(u.files[i].len == 0 || u.files[i].bytes != NULL);
        }
        mg_upload_deinit(&u);
    }
    free(text);
    return 0;
}
