# ---
# jupyter:
#   ebpf_lab:
#     exercise: openat-latency
#     version: learner
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 03.2 · A latency histogram from an entry and a return hook  ★★★
#
# *Lesson 03 — arguments and return values*
#
# How long does `openat()` take? Measure every call of one process **in the kernel**, and keep only a
# histogram: bucket *k* counts the calls whose duration *d* (in nanoseconds) has `bpf_log2l(d) == k`,
# i.e. 2^(k-1) ≤ d ≤ 2^k − 1 for k ≥ 2; `bpf_log2l(0)` is 1, so bucket 1 holds d = 0 and d = 1 and bucket 0
# stays empty.
#
# **Your task, part 1 (C).** Complete
# - `on_enter()`: for `TARGET_PID` only, store `bpf_ktime_get_ns()` in `start` under the thread id;
# - `on_return(ret)`: find this thread's start time, add one to bucket `bpf_log2l(now - start)` of `dist`,
#   and delete the entry.
#
# **Your task, part 2 (Python).** The grader calls `latency_table(dist)` with `dist` a dict
# `{k: calls}` for k = 0…63 (most of them 0). Return a DataFrame with columns `low_ns`, `high_ns`, `calls`:
# one row per **non-empty** bucket, fastest first, rows numbered from 0, where `low_ns` = 2^(k−1)
# (0 for k = 1) and `high_ns` = 2^k − 1.
#
# **Hints**
# - `u64 *ts = start.lookup(&tid); if (!ts) return 0;` — a return without an entry (a call that began
#   before the program was attached) is skipped.
# - bcc has a helper for the bucket number of a log2 histogram, and a map method that adds one to a bucket
#   (see bcc's reference guide: `BPF_HISTOGRAM`).
# - `2 ** (k - 1)` in Python; build the rows in a list and make the DataFrame once.

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
import pandas as pd

# %% nbgrader={"grade": false, "grade_id": "answer-bpf", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["answer-bpf"]
PROGRAM = r"""
#include <uapi/linux/ptrace.h>

BPF_HASH(start, u32, u64, 1024);   /* thread id -> bpf_ktime_get_ns() at entry */
BPF_HISTOGRAM(dist, int, 64);      /* bpf_log2l(nanoseconds) -> calls */

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


# %% nbgrader={"grade": false, "grade_id": "answer-py", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["answer-py"]
def latency_table(dist):
    """dist: {k: calls} for k in 0..63 -> DataFrame low_ns, high_ns, calls of the non-empty buckets."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# Try it on a small example:

# %% tags=["try"]
latency_table({0: 0, 11: 3, 12: 5, 13: 0, 20: 1})

# %% [markdown]
# ## Check your answer
#
# Run the cell below. It compiles your `PROGRAM`, loads it into the running kernel, runs the exercise's
# own workload, and compares what your program saw with what really happened. Each check says what
# to fix, and the last report (with `.data`, what your code produced) is `ebpf_lab.classroom.last_report()`.
# From a terminal: `sudo ebpf-lab check openat-latency notebooks/exercises/openat-latency.ipynb`.

# %% nbgrader={"grade": true, "grade_id": "check-openat-latency", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false} tags=["check-openat-latency"]
"""Checks openat-latency: PROGRAM counts each openat() of TARGET_PID once in dist, in log2 nanosecond buckets,
and leaves start empty; latency_table() lists the non-empty buckets with their bounds, fastest first."""
check("openat-latency", globals())
