/*
 * libFuzzer target for HTTP/1.1 request framing (net/http1_parse.h). The first byte picks
 * small limits (so every limit is reached) and how the rest arrives: at once, or in pieces of
 * a few bytes, as a slow client sends it. Both ways must end alike: the same verdict, the
 * same head length and framing, the same decoded chunked body; a head that parses has its
 * spans inside the input.
 */
#include "fuzz.h"
#include "net/http1_parse.h"

#include <string.h>

typedef struct outcome {
    int rc; /* 1 complete, 0 incomplete, <0 the refusal */
    mg_http1_head_t head;
    mg_buf_t body;
    size_t end;
} outcome_t;

/* Frames `b[0, n)` in pieces of `step` bytes (0: at once). */
static void frame(char *b, size_t n, size_t step, const mg_http1_limits_t *lim,
                  mg_http1_span_t *hdrs, outcome_t *o)
{
    memset(o, 0, sizeof(*o));
    o->head.hdrs = hdrs;
    mg_http1_chunked_t ch = {0};
    mg_err_t err;
    int in_body = 0;
    for (size_t have = step ? (step < n ? step : n) : n;;
         have = have + step < n ? have + step : n) {
        if (!in_body) {
            o->rc = mg_http1_scan_head(&o->head, lim, b, have, &err);
            if (o->rc == 1) {
                if ((o->rc = mg_http1_parse_head(&o->head, lim, b, &err)) == 0) {
                    in_body = 1;
                    ch.pos = o->head.head_len;
                    o->rc = 0;
                }
            }
        }
        if (in_body) {
            if (o->head.chunked) {
                o->rc = mg_http1_read_chunked(&ch, lim, b, have, &o->body, &err);
                o->end = ch.pos;
            } else {
                o->rc = have - o->head.head_len >= o->head.content_length;
                o->end = o->head.head_len + o->head.content_length;
            }
        }
        if (o->rc != 0 || have == n)
            break;
    }
    if (o->rc < 0)
        check(err.msg[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    mg_http1_limits_t lim;
    mg_http1_limits_default(&lim);
    uint8_t k = data[0];
    lim.max_request_line = 16 + (k & 3) * 40;
    lim.max_header_field = 16 + ((k >> 2) & 3) * 40;
    lim.max_header_bytes = 64 + ((k >> 4) & 3) * 100;
    lim.max_headers = 1 + (k >> 6) * 3;
    lim.max_body_bytes = 64 + (k & 7) * 100;
    lim.max_chunks = 1 + ((k >> 3) & 7) * 4;
    size_t step = 1 + (k % 7);
    size_t n = size - 1;
    char *a = fuzz_copy(data + 1, n), *b = fuzz_copy(data + 1, n);
    mg_http1_span_t *ha = malloc(sizeof(*ha) * (lim.max_headers + 1));
    mg_http1_span_t *hb = malloc(sizeof(*hb) * (lim.max_headers + 1));
    if (a != NULL && b != NULL && ha != NULL && hb != NULL) {
        outcome_t x, y;
        frame(a, n, 0, &lim, ha, &x);
        frame(b, n, step, &lim, hb, &y);
        check(x.rc == y.rc);
        if (x.rc == 1) {
            check(x.head.head_len == y.head.head_len && x.end == y.end && x.end <= n);
            check(x.head.chunked == y.head.chunked &&
                  x.head.content_length == y.head.content_length &&
                  x.head.keep_alive == y.head.keep_alive);
            check(x.body.len == y.body.len &&
                  (x.body.len == 0 || memcmp(x.body.data, y.body.data, x.body.len) == 0));
            check(x.body.len <= lim.max_body_bytes);
            check(x.head.target.start + x.head.target.len <= x.head.head_len);
            check(a[x.head.target.start] == '/');
            for (size_t i = 0; i + 1 < x.head.nlines; i++) {
                mg_str_t name, value;
                mg_http1_header(&x.head, a, i, &name, &value);
                check(name.len > 0 && value.ptr + value.len <= a + x.head.head_len);
            }
        }
        mg_buf_free(&x.body);
        mg_buf_free(&y.body);
    }
    free(ha);
    free(hb);
    free(a);
    free(b);
    return 0;
}
