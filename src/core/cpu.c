/*
 * Per-thread scheduling requests (core/cpu.h).
 */
#include "core/cpu.h"

#include <errno.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * sched_setattr(2)'s argument, its first version (SCHED_ATTR_SIZE_VER0, 48 bytes), as the
 * man page and <linux/sched/types.h> give it; that header clashes with <sched.h>.
 */
struct sched_attr_v0 {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
};

int mg_cpu_set_slice(uint64_t slice_ns)
{
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, (id_t)gettid());
    if (nice == -1 && errno != 0)
        return -errno;
    /* SCHED_OTHER with its nice value kept; the slice is the fair class's sched_runtime. */
    struct sched_attr_v0 a = {
        .size = sizeof(a),
        .sched_policy = SCHED_OTHER,
        .sched_nice = nice,
        .sched_runtime = slice_ns,
    };
    return syscall(SYS_sched_setattr, 0, &a, 0) == 0 ? 0 : -errno;
}
