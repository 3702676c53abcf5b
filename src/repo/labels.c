/* Classification labels files (repo/labels.h). */
#include "repo/labels.h"

#include "core/file.h"

#include <stdlib.h>
#include <string.h>

int mg_labels_read(const char *path, mg_labels_t *out, mg_err_t *err)
{
    memset(out, 0, sizeof(*out));
    char *text;
    size_t len;
    int rc = mg_file_read(path, MG_LABELS_MAX_BYTES, &text, &len, err);
    if (rc != 0)
        return rc;
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += text[i] == '\n';
    if (len > 0 && text[len - 1] != '\n')
        n++;
    mg_str_t *lines = calloc(n ? n : 1, sizeof(*lines));
    if (lines == NULL) {
        free(text);
        return mg_err_set(err, MG_ENOMEM, "out of memory reading labels %s", path);
    }
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= len && k < n; i++) {
        if (i < len && text[i] != '\n')
            continue;
        size_t end = i > start && text[i - 1] == '\r' ? i - 1 : i;
        lines[k++] = (mg_str_t){text + start, end - start};
        start = i + 1;
    }
    *out = (mg_labels_t){text, lines, n};
    return 0;
}

void mg_labels_deinit(mg_labels_t *l)
{
    free(l->text);
    free(l->lines);
    memset(l, 0, sizeof(*l));
}
