# ---
# jupyter:
#   ebpf_lab:
#     exercise: openat-failures
#     version: learner
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 03.1 · Which opens fail, and why  ★★☆
#
# *Lesson 03 — arguments and return values*
#
# An entry hook sees the **arguments**, a return hook sees the **result** — and they run at different
# moments. To report *"openat(path) failed with ENOENT"*, the entry hook stores the argument in a map
# keyed by **thread id**, and the return hook, on the same thread, finds it again.
#
# **Your task.** Complete
# - `on_enter(filename)`: for the process `TARGET_PID` only, copy the path (a user-space string) into a
#   `struct pending` and store it in `inflight` under the current thread id;
# - `on_return(ret)`: find this thread's entry; if `ret < 0` (the call failed; `ret` is `-errno`) send an
#   event `struct failure` with `err = -ret` and the stored path; and in every case delete the entry.
#
# `TARGET_PID` is set by the grader (`-D` flag): its workload `ebl-ex-opener` opens a missing file
# (ENOENT), a folder for writing (EISDIR), creates a few new files, and finally opens a file that exists.
#
# **Hints**
# - Thread id: the lower 32 bits of `bpf_get_current_pid_tgid()`; process id: the upper 32.
# - `bpf_probe_read_user_str(&p.filename, sizeof(p.filename), filename);` — initialise `p` with `= {}` first.
# - Copy between two buffers of the same size with `__builtin_memcpy(dst, src, sizeof(dst))`.
# - An entry that is never deleted stays in the map forever: with enough of them, the map is full.

# %% [markdown]
# **About the hooks.** The tutorial's pair is a *kprobe* and a *kretprobe* on the system call's kernel
# function (`PT_REGS_RC(ctx)` is the return value). Not every kernel has kprobes, so the end of
# `PROGRAM` (given, do not change it) defines both hook functions twice: with `-DEBL_KPROBE=1` (the grader
# sets it where the kernel has kprobes, e.g. the lab's guest kernel) as kprobe + kretprobe, otherwise as
# the tracepoints `syscalls:sys_enter_openat` + `sys_exit_openat`. Either way they call the two functions
# you write: `on_enter(filename)` when `openat()` starts, `on_return(ret)` when it returns. The grader's
# report names the path it took (`graded on kprobes` or `graded on tracepoints`).

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false} tags=["setup"]
from ebpf_lab.grading import check

# %% nbgrader={"grade": false, "grade_id": "answer-bpf", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["answer-bpf"]
PROGRAM = r"""
#include <uapi/linux/ptrace.h>

struct pending {
    char filename[64];    /* the path given to openat() */
};

struct failure {
    s32 err;              /* the errno: -ret */
    char filename[64];
};

BPF_HASH(inflight, u32, struct pending, 1024);   /* thread id -> what openat() was given */
BPF_RINGBUF_OUTPUT(events, 1 << 6);

static __always_inline int on_enter(const char *filename)
{
    // YOUR CODE HERE
    return 0;
}

static __always_inline int on_return(long ret)
{
    // YOUR CODE HERE
    return 0;
}

/* ---- given: the hooks (see "About the hooks" above) ---- */
#ifdef EBL_KPROBE
int on_openat_entry(struct pt_regs *ctx)
{
    /* __x64_sys_openat(const struct pt_regs *regs): the caller's registers are behind the first argument */
    struct pt_regs *regs = (struct pt_regs *)PT_REGS_PARM1(ctx);
    const char *filename = NULL;
    bpf_probe_read_kernel(&filename, sizeof(filename), &PT_REGS_PARM2_SYSCALL(regs));
    return on_enter(filename);
}
int on_openat_return(struct pt_regs *ctx)
{
    return on_return(PT_REGS_RC(ctx));
}
#else
int on_openat_entry(struct tracepoint__syscalls__sys_enter_openat *args)
{
    return on_enter(args->filename);
}
int on_openat_return(struct tracepoint__syscalls__sys_exit_openat *args)
{
    return on_return(args->ret);
}
#endif
"""

# %% [markdown]
# ## Check your answer
#
# Run the cell below. It compiles your `PROGRAM`, loads it into the running kernel, runs the exercise's
# own workload, and compares what your program saw with what really happened. Each check says what
# to fix, and the last report (with `.data`, what your code produced) is `ebpf_lab.classroom.last_report()`.
# From a terminal: `sudo ebpf-lab check openat-failures notebooks/exercises/openat-failures.ipynb`.

# %% nbgrader={"grade": true, "grade_id": "check-openat-failures", "locked": true, "points": 9, "schema_version": 3, "solution": false, "task": false} tags=["check-openat-failures"]
"""Checks openat-failures: PROGRAM compiles and loads on the openat entry/return hooks; it reports exactly the
failed openat() calls of TARGET_PID with the right errno and path, and leaves no stale entry in inflight."""
check("openat-failures", globals())
