# ---
# jupyter:
#   ebpf_lab:
#     exercise: kmalloc-filter
#     version: teacher
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 02.1 · Only one process, only big allocations  ★☆☆
#
# *Lesson 02 — who is allocating memory? (`kmem:kmalloc` tracepoint)*
#
# In the lesson, `kmalloc.bpf.c` sent **every** allocation of the machine to user space, and pandas did the
# filtering. Filtering in the kernel is cheaper: an event that is never sent costs almost nothing.
#
# **Your task.** Complete `on_kmalloc()` so that it sends one event for each allocation that
#
# 1. is made by the process whose id is `TARGET_PID`, and
# 2. got **at least** `MIN_BYTES` bytes from the allocator (`bytes_alloc`, not `bytes_req`),
#
# and nothing else. Fill every field of `struct alloc_event`: `pid` (the process id), `bytes_req`,
# `bytes_alloc` and `comm` (the process name).
#
# `TARGET_PID` and `MIN_BYTES` are not in your code: the grader passes them as `-D` flags when it compiles
# your program, with values drawn afresh for every grading run (and your program is run at two of them):
# write the names, never a number.
#
# **Hints**
# - `bpf_get_current_pid_tgid()` returns the thread group id (what user space calls the *process id*)
#   in its upper 32 bits and the thread id in its lower 32 bits.
# - The tracepoint's fields are in `args`: `args->bytes_req`, `args->bytes_alloc`
#   (see the format table of the lesson).
# - `events.ringbuf_reserve(sizeof(struct alloc_event))` may return NULL when the buffer is full: the
#   verifier will not load the program unless you check it.
# - `bpf_get_current_comm(&e->comm, sizeof(e->comm))` fills the name.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false} tags=["setup"]
from ebpf_lab.grading import check

# %% nbgrader={"grade": false, "grade_id": "answer-bpf", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["answer-bpf"]
PROGRAM = r"""
struct alloc_event {
    u32 pid;          /* process id (tgid) */
    u32 bytes_req;    /* what the caller asked for */
    u32 bytes_alloc;  /* what the allocator handed out */
    char comm[16];    /* process name */
};

BPF_RINGBUF_OUTPUT(events, 1 << 8);

int on_kmalloc(struct tracepoint__kmem__kmalloc *args)
{
    // ### BEGIN SOLUTION
    u32 pid = bpf_get_current_pid_tgid() >> 32;

    if (pid != TARGET_PID || args->bytes_alloc < MIN_BYTES)
        return 0;
    struct alloc_event *e = events.ringbuf_reserve(sizeof(struct alloc_event));
    if (!e)
        return 0;
    e->pid = pid;
    e->bytes_req = args->bytes_req;
    e->bytes_alloc = args->bytes_alloc;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    events.ringbuf_submit(e, 0);
    // ### END SOLUTION
    return 0;
}
"""

# %% [markdown]
# ## Check your answer
#
# Run the cell below. It compiles your `PROGRAM`, loads it into the running kernel, runs the exercise's
# own workload, and compares what your program saw with what really happened. Each check says what
# to fix, and the last report (with `.data`, what your code produced) is `ebpf_lab.classroom.last_report()`.
# From a terminal: `sudo ebpf-lab check kmalloc-filter notebooks/exercises/kmalloc-filter.ipynb`.

# %% nbgrader={"grade": true, "grade_id": "check-kmalloc-filter", "locked": true, "points": 8, "schema_version": 3, "solution": false, "task": false} tags=["check-kmalloc-filter"]
"""Checks kmalloc-filter: PROGRAM compiles and loads; on the grader's workload it reports exactly the
allocations of TARGET_PID with bytes_alloc >= MIN_BYTES, with the right pid, sizes and comm; nothing stays loaded."""
check("kmalloc-filter", globals())
