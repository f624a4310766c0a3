# ---
# jupyter:
#   ebpf_lab:
#     exercise: kill-signal-counts
#     version: learner
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 01.2 · Who signals whom, counted in the kernel  ★★☆
#
# *Lesson 01 — hello kill: who sends kill?*
#
# Instead of one event per signal, keep a **count per (target, signal)** in a BPF hash map with a struct
# as its key, and turn it into a table with pandas.
#
# **Your task, part 1 (C).** Complete `on_kill(target_pid, sig)` so that `counts[{target, sig}]` is the number
# of `kill(target, sig)` calls — for every process on the machine, no filter.
#
# **Your task, part 2 (Python).** The grader calls `signal_table(rows)` with `rows` a list of
# `(target_pid, sig, calls)` tuples, as read from such a map. Return a DataFrame with
# - one row per target pid (the index), sorted;
# - one column per signal **name**, sorted by name: `signal.Signals(sig).name` (e.g. `SIGCONT`), and
#   `"check"` for signal 0;
# - in each cell the number of calls, `0` where there were none.
#
# **Hints**
# - Initialise a struct key before filling it (`struct sig_key key = {};`): the verifier rejects reading
#   uninitialised padding. A bcc hash map can add one to a key's count in a single call, creating the entry
#   when it is missing: find which in bcc's reference guide (the map methods).
# - pandas: `pivot_table(index=..., columns=..., values=..., aggfunc="sum", fill_value=0)`.

# %% [markdown]
# **About the hook.** The tutorial attaches a *kprobe* to the system call's kernel function. Not every
# kernel has kprobes, so the end of `PROGRAM` (given, do not change it) defines the hook function
# both ways: with `-DEBL_KPROBE=1` (the grader sets it where the kernel has kprobes, e.g. in the lab's
# guest kernel) it is a kprobe; otherwise it is the tracepoint `syscalls:sys_enter_kill`. Either way it calls
# the function you write, with the same arguments. The grader's report names the path it took
# (`graded on kprobes` or `graded on tracepoints`).

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false} tags=["setup"]
from ebpf_lab.grading import check
import pandas as pd

# %% nbgrader={"grade": false, "grade_id": "answer-bpf", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["answer-bpf"]
PROGRAM = r"""
#include <uapi/linux/ptrace.h>

struct sig_key {
    s32 target;   /* kill(pid, ...) */
    s32 sig;      /* kill(..., sig) */
};

BPF_HASH(counts, struct sig_key, u64, 1024);

static __always_inline int on_kill(s32 target_pid, s32 sig)
{
    // YOUR CODE HERE
    return 0;
}

/* ---- given: the hook (see "About the hook" above) ---- */
#ifdef EBL_KPROBE
int on_kill_entry(struct pt_regs *ctx)
{
    /* __x64_sys_kill(const struct pt_regs *regs): the caller's registers are behind the first argument */
    struct pt_regs *regs = (struct pt_regs *)PT_REGS_PARM1(ctx);
    long pid = 0, sig = 0;
    bpf_probe_read_kernel(&pid, sizeof(pid), &PT_REGS_PARM1_SYSCALL(regs));
    bpf_probe_read_kernel(&sig, sizeof(sig), &PT_REGS_PARM2_SYSCALL(regs));
    return on_kill((s32)pid, (s32)sig);
}
#else
int on_kill_entry(struct tracepoint__syscalls__sys_enter_kill *args)
{
    return on_kill((s32)args->pid, (s32)args->sig);
}
#endif
"""

# %% nbgrader={"grade": false, "grade_id": "answer-py", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["answer-py"]
import signal

def signal_table(rows):
    """rows: [(target_pid, sig, calls), ...] -> DataFrame: index target pid, a column per signal name."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# Try it on a small example:

# %% tags=["try"]
signal_table([(10, 0, 2), (10, 18, 1), (11, 28, 4), (10, 0, 1)])

# %% [markdown]
# ## Check your answer
#
# Run the cell below. It compiles your `PROGRAM`, loads it into the running kernel, runs the exercise's
# own workload, and compares what your program saw with what really happened. Each check says what
# to fix, and the last report (with `.data`, what your code produced) is `ebpf_lab.classroom.last_report()`.
# From a terminal: `sudo ebpf-lab check kill-signal-counts notebooks/exercises/kill-signal-counts.ipynb`.

# %% nbgrader={"grade": true, "grade_id": "check-kill-signal-counts", "locked": true, "points": 9, "schema_version": 3, "solution": false, "task": false} tags=["check-kill-signal-counts"]
"""Checks kill-signal-counts: counts is a hash map keyed by (target, sig) whose values equal the workload's
kill() calls per pair; signal_table() pivots rows into target x signal-name counts, sorted, 0 where none."""
check("kill-signal-counts", globals())
