# ---
# jupyter:
#   ebpf_lab:
#     exercise: kill-to-pid
#     version: teacher
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 01.1 · Only the signals sent to one process  ★☆☆
#
# *Lesson 01 — hello kill: who sends kill?*
#
# The lesson's tracer reported every `kill()` on the machine. Make it report only the signals sent
# **to one process**.
#
# **Your task.** Complete `on_kill(target_pid, sig)`: it runs at every `kill(target_pid, sig)` system call.
# Send one event, through the ring buffer `events`, for each call whose **target** is `TARGET_PID`, and
# nothing for the others. Fill every field: `sender_pid` (the process that called `kill()`), `target_pid`,
# `sig`, and `comm` (the sender's name).
#
# `TARGET_PID` is set by the grader with a `-D` flag: the pid of one of two idle processes its workload
# (`ebl-ex-killer`) sends harmless signals to.
#
# **Hints**
# - The sender is the current process: `bpf_get_current_pid_tgid() >> 32`. The target is an argument.
# - `events.ringbuf_reserve(sizeof(struct kill_event))` can return NULL: check it.
# - `bpf_get_current_comm(&e->comm, sizeof(e->comm))`, then `events.ringbuf_submit(e, 0)`.

# %% [markdown]
# **About the hook.** The tutorial attaches a *kprobe* to the system call's kernel function. Not every
# kernel has kprobes, so the end of `PROGRAM` (given, do not change it) defines the hook function
# both ways: with `-DEBL_KPROBE=1` (the grader sets it where the kernel has kprobes, e.g. in the lab's
# guest kernel) it is a kprobe; otherwise it is the tracepoint `syscalls:sys_enter_kill`. Either way it calls
# the function you write, with the same arguments. The grader's report names the path it took
# (`graded on kprobes` or `graded on tracepoints`).

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false} tags=["setup"]
from ebpf_lab.grading import check

# %% nbgrader={"grade": false, "grade_id": "answer-bpf", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["answer-bpf"]
PROGRAM = r"""
#include <uapi/linux/ptrace.h>

struct kill_event {
    u32 sender_pid;   /* process that called kill() */
    s32 target_pid;   /* kill(pid, ...) */
    s32 sig;          /* kill(..., sig); 0 only checks that the target exists */
    char comm[16];    /* the sender's name */
};

BPF_RINGBUF_OUTPUT(events, 1 << 6);

static __always_inline int on_kill(s32 target_pid, s32 sig)
{
    // ### BEGIN SOLUTION
    if (target_pid != TARGET_PID)
        return 0;
    struct kill_event *e = events.ringbuf_reserve(sizeof(struct kill_event));
    if (!e)
        return 0;
    e->sender_pid = bpf_get_current_pid_tgid() >> 32;
    e->target_pid = target_pid;
    e->sig = sig;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    events.ringbuf_submit(e, 0);
    // ### END SOLUTION
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

# %% [markdown]
# ## Check your answer
#
# Run the cell below. It compiles your `PROGRAM`, loads it into the running kernel, runs the exercise's
# own workload, and compares what your program saw with what really happened. Each check says what
# to fix, and the last report (with `.data`, what your code produced) is `ebpf_lab.classroom.last_report()`.
# From a terminal: `sudo ebpf-lab check kill-to-pid notebooks/exercises/kill-to-pid.ipynb`.

# %% nbgrader={"grade": true, "grade_id": "check-kill-to-pid", "locked": true, "points": 7, "schema_version": 3, "solution": false, "task": false} tags=["check-kill-to-pid"]
"""Checks kill-to-pid: PROGRAM compiles and loads on the kill hook (kprobe, or the sys_enter_kill tracepoint);
it reports exactly the kill() calls aimed at TARGET_PID, with the right sender, target, signal and comm."""
check("kill-to-pid", globals())
