/*
 * The layout of mg_model_version_t, shared by the files of src/repo only (loader, registry,
 * version). Everything outside src/repo goes through repo/version.h.
 */
#ifndef MG_REPO_VERSION_INTERNAL_H
#define MG_REPO_VERSION_INTERNAL_H

#include "core/version.h"
#include "repo/verify.h"
#include "repo/version.h"

#include <stdalign.h>
#include <stdatomic.h>

/* One file a version was built from: its name in the version folder, identity and digest. */
typedef struct version_file {
    char *name;
    mg_file_id_t id;
    unsigned char sha256[32];
} version_file_t;

/* What request threads write: on its own cache line, apart from the read-only part. */
typedef struct version_live {
    alignas(64) atomic_int pins;
    atomic_uint cursor;  /* round robin over the sessions */
    atomic_int inflight; /* admitted requests (serve/admit.h) */
} version_live_t;

struct mg_model_version {
    /* Immutable once built. */
    char *model_name;
    int64_t number;
    char text[MG_VERSION_TEXT_MAX];
    mg_model_state_t state;
    char reason[256];
    mg_model_config_t config;
    unsigned char sha256[32];
    mg_session_t **sessions; /* config.instance_count sessions when READY */
    int64_t batch_rows;      /* rows an opportunistically joined Run may hold; 0: off */
    bool on_pool;            /* its Runs go to the execution pool (repo/loader.h) */
    mg_labels_t labels[MG_CONFIG_IO_MAX]; /* per config.outputs entry with a label_filename */
    int nsessions;
    /* What it was built from, for reloads that skip unchanged files (control thread only). */
    struct version_file *files; /* files[0] is model.onnx, then the external data */
    size_t nfiles;
    mg_file_id_t sums_id; /* SHA256SUMS (zeroed: none) */
    mg_file_id_t dir_id;  /* the version folder: a file added or removed changes it */
    /* Written by request threads. */
    version_live_t *live;
    mg_breaker_t *breaker; /* with config.breaker; lives and dies with the version */
    /* The registry's, on the control thread only. */
    int entry_refs;                        /* entries (of live or retiring snapshots) listing it */
    struct mg_model_version *next_retired; /* on the registry's draining list */
};

/**
 * Allocates a version of `model` with number `number` in state FAILED and no sessions.
 * Returns NULL when out of memory.
 */
mg_model_version_t *mg_model_version_alloc(const char *model, int64_t number,
                                           const mg_model_config_t *cfg);

/** Frees the version and its sessions. No pin may be held. Accepts NULL. */
void mg_model_version_free(mg_model_version_t *v);

#endif
