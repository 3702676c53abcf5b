/*
 * libFuzzer target for HTTP content codings (net/encoding.h). The first byte picks what the
 * rest is: a Content-Encoding value, an Accept-Encoding value, or a gzip / deflate body
 * inflated under a 64 KiB bound. Checked: a parsed coding is one of the three; an inflate that
 * succeeds stays within the bound, NUL-terminates, and re-compressing its output inflates back
 * to the same bytes; one that fails says why, with one of the documented codes.
 */
#include "fuzz.h"
#include "net/encoding.h"

#include <string.h>

#define BOUND (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = fuzz_copy(data + 1, size - 1);
    if (text == NULL)
        return 0;
    size_t len = size - 1;
    mg_err_t err;
    switch (data[0] % 4) {
    case 0: {
        mg_encoding_t e = MG_ENCODING_IDENTITY;
        int rc = mg_encoding_parse(text, len, &e, &err);
        check(rc == 0 || (rc == MG_EENCODING && err.msg[0] != '\0'));
        check(e == MG_ENCODING_IDENTITY || e == MG_ENCODING_GZIP || e == MG_ENCODING_DEFLATE);
        break;
    }
    case 1: {
        mg_encoding_t e = mg_encoding_accept(text, len);
        check(e == MG_ENCODING_IDENTITY || e == MG_ENCODING_GZIP || e == MG_ENCODING_DEFLATE);
        break;
    }
    default: {
        mg_encoding_t e = data[0] % 4 == 2 ? MG_ENCODING_GZIP : MG_ENCODING_DEFLATE;
        char *out = NULL;
        size_t out_len = 0;
        int rc = mg_encoding_inflate(e, text, len, BOUND, &out, &out_len, &err);
        if (rc != 0) {
            check((rc == MG_ETOOBIG || rc == MG_EPARSE || rc == MG_ENOMEM) && err.msg[0] != '\0');
            check(out == NULL);
            break;
        }
        check(out != NULL && out_len <= BOUND && out[out_len] == '\0');
        size_t cap = mg_encoding_bound(out_len);
        char *z = malloc(cap);
        size_t zlen = 0;
        if (z != NULL && mg_encoding_compress(e, out, out_len, z, cap, &zlen) == 0) {
            check(zlen <= cap);
            char *back = NULL;
            size_t back_len = 0;
            check(mg_encoding_inflate(e, z, zlen, BOUND, &back, &back_len, &err) == 0);
            check(back_len == out_len && memcmp(back, out, out_len) == 0);
            free(back);
        }
        free(z);
        free(out);
        break;
    }
    }
    free(text);
    return 0;
}
