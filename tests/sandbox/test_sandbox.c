/*
 * The sandboxed validation child against real models and the real modelgate binary: a good
 * model passes (also with external data from memory), and each way a model can be refused
 * names itself: ONNX Runtime's error, out of memory, timeout, a crash, a child that cannot
 * start; the seccomp filter itself is checked in a forked process. Not built under
 * ThreadSanitizer's run (a forked, filtered child is no reader/writer race to look for).
 */
#include "repo/extdata.h"
#include "sandbox/sandbox.h"
#include "sandbox/sandbox_internal.h"
#include "support/support.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#if defined(__SANITIZE_THREAD__)
/* A forked, filtered child is no reader/writer race; TSan's runtime in it is only noise. */
int main(void)
{
    puts("test_sandbox: skipped under ThreadSanitizer");
    return 0;
}
#else

static char tmp[256];
static char exe[512];

static int setup(void **state)
{
    (void)state;
    if (mg_test_tmpdir("mg-sandbox-", tmp, sizeof(tmp)) != 0)
        return -1;
    mg_test_sh("%s %s/scripts/gen_lifecycle_models.py %s/gen >/dev/null", mg_test_python(),
               mg_test_source_dir(), tmp);
    const char *b = getenv("MG_BUILD_DIR");
    snprintf(exe, sizeof(exe), "%s/modelgate", b ? b : "build");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_sh("rm -rf %s", tmp);
    return 0;
}

static mg_sandbox_opts_t opts(int timeout_ms)
{
    return (mg_sandbox_opts_t){
        .exe = exe, .timeout_ms = timeout_ms, .cpu_secs = 30, .memory_mb = 1024};
}

/* Validates `job` in a sandbox made from `o`, dropped after. */
static int validate_job(const mg_sandbox_opts_t *o, const mg_sandbox_job_t *job, mg_err_t *err)
{
    mg_sandbox_t *sb = NULL;
    assert_int_equal(mg_sandbox_new(&sb, o, err), 0);
    int rc = mg_sandbox_validate(sb, job, err);
    mg_sandbox_free(sb);
    return rc;
}

/* Validates gen/`file` with `o`; returns the code, `err` filled. */
static int validate(const char *file, const mg_sandbox_opts_t *o, int warmup, mg_err_t *err)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/gen/%s", tmp, file);
    size_t len;
    char *bytes = mg_test_read_file(path, &len);
    mg_sandbox_job_t job = {.model = bytes, .len = len, .warmup_runs = warmup};
    mg_err_clear(err);
    int rc = validate_job(o, &job, err);
    free(bytes);
    return rc;
}

static void expect_refused(int rc, const mg_err_t *err, const char *sub)
{
    if (rc != MG_EMODEL || strstr(err->msg, sub) == NULL)
        fail_msg("got %d (%s), want MG_EMODEL containing \"%s\"", rc, err->msg, sub);
    print_message("refused: %s\n", err->msg);
}

static void test_good_model_passes(void **state)
{
    (void)state;
    mg_err_t err;
    mg_sandbox_opts_t o = opts(60000);
    if (validate("add.onnx", &o, 0, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(validate("add.onnx", &o, 3, &err), 0);
}

static void test_external_data_from_memory(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof(path), "%s/gen/ext/model.onnx", tmp);
    size_t len, wlen;
    char *bytes = mg_test_read_file(path, &len);
    snprintf(path, sizeof(path), "%s/gen/ext/weights.bin", tmp);
    char *w = mg_test_read_file(path, &wlen);
    mg_session_file_t f = {"weights.bin", w, wlen};
    mg_sandbox_opts_t o = opts(60000);
    mg_err_t err;
    mg_sandbox_job_t job = {.model = bytes, .len = len, .external = &f, .nexternal = 1};
    assert_int_equal(validate_job(&o, &job, &err), 0);
    /* Without the file in memory the child cannot read it from disk: refused. */
    job.nexternal = 0;
    expect_refused(validate_job(&o, &job, &err), &err, "External data path validation failed");
    free(bytes);
    free(w);
}

static void test_refusals_name_their_reason(void **state)
{
    (void)state;
    mg_err_t err;
    mg_sandbox_opts_t o = opts(60000);
    mg_test_sh("head -c 4096 /dev/urandom > %s/gen/random.onnx", tmp);
    expect_refused(validate("random.onnx", &o, 1, &err), &err, "sandbox: model:");
    expect_refused(validate("hog.onnx", &o, 1, &err), &err, "out of memory");
    /* A probe run (no warm-up configured) that runs out of memory still fails. */
    expect_refused(validate("hog.onnx", &o, 0, &err), &err, "out of memory");
    mg_sandbox_opts_t quick = opts(1500);
    expect_refused(validate("slow.onnx", &quick, 1, &err), &err, "timed out after 1500 ms");
    mg_sandbox_opts_t cpu = opts(60000);
    cpu.cpu_secs = 1;
    expect_refused(validate("slow.onnx", &cpu, 1, &err), &err, "CPU time limit of 1 s");
}

static void test_crash_and_missing_child(void **state)
{
    (void)state;
    mg_err_t err;
    char script[600];
    snprintf(script, sizeof(script), "%s/crash.sh", tmp);
    mg_test_sh("printf '#!/bin/sh\\nkill -SEGV $$\\n' > %s && chmod +x %s", script, script);
    mg_sandbox_opts_t o = opts(10000);
    o.exe = script;
    o.no_zygote = true;
    expect_refused(validate("add.onnx", &o, 1, &err), &err, "crashed (signal 11, SIGSEGV)");
    snprintf(script, sizeof(script), "%s/silent.sh", tmp);
    mg_test_sh("printf '#!/bin/sh\\nexit 3\\n' > %s && chmod +x %s", script, script);
    expect_refused(validate("add.onnx", &o, 1, &err), &err, "exited with status 3");
    o.exe = "/nonexistent/modelgate";
    assert_int_equal(validate("add.onnx", &o, 1, &err), MG_EIO);
    assert_non_null(strstr(err.msg, "cannot run"));
}

/* One sandbox, many validations through its zygote; a zygote killed is started again. */
static void test_zygote_reused_and_restarted(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof(path), "%s/gen/add.onnx", tmp);
    size_t len;
    char *bytes = mg_test_read_file(path, &len);
    mg_sandbox_job_t job = {.model = bytes, .len = len, .warmup_runs = 1};
    mg_sandbox_opts_t o = opts(30000);
    mg_sandbox_t *sb = NULL;
    mg_err_t err;
    assert_int_equal(mg_sandbox_new(&sb, &o, &err), 0);
    assert_int_equal(mg_sandbox_zygote_pid(sb), 0); /* started at the first validation */
    assert_int_equal(mg_sandbox_validate(sb, &job, &err), 0);
    int zygote = mg_sandbox_zygote_pid(sb);
    assert_true(zygote > 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(mg_sandbox_validate(sb, &job, &err), 0);
    assert_int_equal(mg_sandbox_zygote_pid(sb), zygote);
    /* A refusal does not cost the zygote either. */
    snprintf(path, sizeof(path), "%s/gen/hog.onnx", tmp);
    size_t hlen;
    char *hog = mg_test_read_file(path, &hlen);
    mg_sandbox_job_t hjob = {.model = hog, .len = hlen, .warmup_runs = 1};
    expect_refused(mg_sandbox_validate(sb, &hjob, &err), &err, "out of memory");
    assert_int_equal(mg_sandbox_zygote_pid(sb), zygote);
    kill(zygote, SIGKILL);
    usleep(100 * 1000);
    assert_int_equal(mg_sandbox_validate(sb, &job, &err), 0); /* through a child exec'd alone */
    assert_int_equal(mg_sandbox_validate(sb, &job, &err), 0); /* through a new zygote */
    assert_true(mg_sandbox_zygote_pid(sb) > 0);
    assert_int_not_equal(mg_sandbox_zygote_pid(sb), zygote);
    mg_sandbox_free(sb);
    /* Also without a zygote at all. */
    o.no_zygote = true;
    assert_int_equal(validate_job(&o, &job, &err), 0);
    free(bytes);
    free(hog);
}

static void *thread_ok(void *arg)
{
    return arg;
}

/* In a forked child: what the filter lets through, refuses with an error, or traps. */
static int filtered(int what)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 9);
        signal(SIGSYS, SIG_DFL); /* cmocka catches it otherwise */
        if (mg_sandbox_install_filter(9) != 0)
            _exit(100);
        switch (what) {
        case 0: { /* threads, the result pipe, memory */
            pthread_t t;
            void *r = NULL;
            if (pthread_create(&t, NULL, thread_ok, (void *)1) != 0 || pthread_join(t, &r) != 0)
                _exit(101);
            if (write(9, "x", 1) != 1 || malloc(1 << 20) == NULL)
                _exit(102);
            _exit(0);
        }
        case 1: /* writes elsewhere and opens fail cleanly */
            if (write(2, "", 0) != -1 || errno != EPERM)
                _exit(103);
            if (open("/etc/hostname", O_RDONLY) != -1 || errno != EACCES)
                _exit(104);
            _exit(0);
        case 2: socket(AF_INET, SOCK_STREAM, 0); _exit(0);
        case 3: execl("/bin/true", "true", (char *)NULL); _exit(0);
        default: kill(getppid(), 0); _exit(0);
        }
    }
    close(p[1]);
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
}

static void test_filter(void **state)
{
    (void)state;
    assert_int_equal(filtered(0), 0);
    assert_int_equal(filtered(1), 0);
    assert_int_equal(filtered(2), -SIGSYS); /* no network */
    assert_int_equal(filtered(3), -SIGSYS); /* no exec */
    assert_int_equal(filtered(4), -SIGSYS); /* no signals to others */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_model_passes),
        cmocka_unit_test(test_external_data_from_memory),
        cmocka_unit_test(test_refusals_name_their_reason),
        cmocka_unit_test(test_crash_and_missing_child),
        cmocka_unit_test(test_zygote_reused_and_restarted),
        cmocka_unit_test(test_filter),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
#endif
