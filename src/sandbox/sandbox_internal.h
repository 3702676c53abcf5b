/*
 * What the two sides of the sandbox share (src/sandbox only): the fd layout and exit codes.
 * The child gets its result pipe as fd 3, the model as a memory file on fd 4 and its
 * external-data files on 5, 6, ...; its arguments are the warm-up runs, the memory budget in
 * MiB, the number of external files and their names.
 */
#ifndef MG_SANDBOX_SANDBOX_INTERNAL_H
#define MG_SANDBOX_SANDBOX_INTERNAL_H

#include "repo/extdata.h"

/** The most fds the child is given: the result pipe, the model and its external files. */
#define MG_SANDBOX_FDS_MAX (MG_EXTDATA_FILES_MAX + 2)

/** The child's fds. */
#define MG_SANDBOX_FD_RESULT 3
#define MG_SANDBOX_FD_MODEL  4

/** Exit status of a child that a sanitizer stopped (sanitizer builds only). */
#define MG_SANDBOX_EXIT_SANITIZER 86

/** Exit status after a report on the result pipe that the filter cut short. */
#define MG_SANDBOX_EXIT_SECCOMP 87

/**
 * Installs the child's seccomp filter (see the table in child.c). Returns 0 or a negative
 * errno from libseccomp. Thread: the child, before it touches the model.
 */
int mg_sandbox_install_filter(int result_fd);

#endif
