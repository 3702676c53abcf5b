/*
 * Command-line options and their config-file twins, described once as a table: each row
 * names the flag, the JSON key of `--config FILE`, the kind of value, where it is stored, its
 * bounds and its help line. One parser reads the file, then the flags (flags win), with the
 * same checks and the same messages for both; the usage text is printed from the same rows.
 */
#ifndef MG_CLI_OPTIONS_H
#define MG_CLI_OPTIONS_H

#include "core/err.h"

#include <stddef.h>
#include <stdio.h>

typedef enum {
    MG_OPT_STRING = 0, /* char[size] */
    MG_OPT_INT,        /* long long within [min, max] */
    MG_OPT_BOOL,       /* int 0/1; a flag takes no argument, the file takes true/false */
    MG_OPT_CHOICE,     /* int: the index of the value among `choices` */
    MG_OPT_LISTEN,     /* mg_opt_listen_t: "host:port", "[v6]:port" or ":port" */
    MG_OPT_LIST,       /* mg_opt_list_t: a repeatable flag; a JSON array of strings in the file */
    MG_OPT_DOUBLE,     /* double within [min, max] (finite) */
} mg_opt_kind_t;

/** A listening address; `set` says it was given. */
typedef struct mg_opt_listen {
    char host[128];
    int port;
    int set;
} mg_opt_listen_t;

#define MG_OPT_LIST_MAX 64

/** Values of a repeatable option, in the order given. */
typedef struct mg_opt_list {
    char items[MG_OPT_LIST_MAX][256];
    int n;
} mg_opt_list_t;

/** One option. Rows live in static tables; a row with `flag` NULL ends a table. */
typedef struct mg_opt {
    const char *flag; /* "max-body-bytes" for --max-body-bytes; NULL: in the file only */
    const char *key;  /* "max_body_bytes" in --config FILE; NULL: a flag only */
    mg_opt_kind_t kind;
    size_t offset;              /* of the value in the options struct */
    size_t size;                /* STRING: the buffer's size */
    long long min, max;         /* INT */
    const char *const *choices; /* CHOICE: NULL-terminated */
    const char *arg;  /* the argument in the usage text ("N", "ADDR:PORT"); NULL for BOOL */
    const char *want; /* what a valid value is, for messages ("1..256", "ADDR:PORT") */
    const char *help; /* the usage line */
} mg_opt_t;

/** A table's end marker. */
#define MG_OPT_END                                                                                 \
    {                                                                                              \
        NULL, NULL, MG_OPT_STRING, 0, 0, 0, 0, NULL, NULL, NULL, NULL                              \
    }

/** A server config file larger than this is refused. */
#define MG_OPT_FILE_MAX ((size_t)1 << 20)

/**
 * Reads a server config (a JSON object of the rows' keys) from `text` (`len` bytes, need not
 * be NUL-terminated) into `opts`; `name` (the file's) starts each message. Unknown keys,
 * values of the wrong kind or out of bounds are refused; fields before the bad one may have
 * been stored. Returns 0, or MG_ECONFIG with `err` saying why ("PATH: unknown field 'x'").
 * Thread: any (fills only `opts` and `err`).
 */
int mg_opt_load_text(const mg_opt_t *table, const char *name, const char *text, size_t len,
                     void *opts, mg_err_t *err);

/**
 * Reads `--config PATH` (at most MG_OPT_FILE_MAX bytes) as mg_opt_load_text does. Returns 0,
 * or -1 after printing why to stderr ("modelgate: PATH: unknown field 'x'"). Thread: main.
 */
int mg_opt_load_file(const mg_opt_t *table, const char *path, void *opts);

/**
 * Parses argv[1..] by the table into `opts`; a `--config` row must be present (its value is
 * skipped here: read it first with mg_opt_load_file). Returns 0; 1 when --help was asked (the
 * usage was printed to stdout); or 2 after printing why to stderr ("modelgate: --threads wants
 * 1..256, got '0'"). Positional arguments are refused. Thread: main.
 */
int mg_opt_parse_args(const mg_opt_t *table, int argc, char **argv, void *opts,
                      const char *usage_head);

/** Prints `usage_head`, one line per flag of the table and the --config keys to `f`. */
void mg_opt_usage(const mg_opt_t *table, FILE *f, const char *usage_head);

/** Parses "host:port", "[v6]:port" or ":port" (any host) into `out`. Returns 0 or -1. */
int mg_opt_parse_listen(const char *s, mg_opt_listen_t *out);

#endif
