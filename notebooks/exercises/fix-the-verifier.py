# ---
# jupyter:
#   ebpf_lab:
#     exercise: fix-the-verifier
#     version: learner
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 02.3 · Make it pass the verifier  ★☆☆
#
# *Lesson 02 — who is allocating memory?*
#
# The program below adds up, in the kernel, the bytes handed out to one process (`TARGET_PID`, set by
# the grader with a `-D` flag). It compiles — but the kernel's **verifier refuses to load it**.
#
# **Your task.** Run the check cell once as it is, and read what the verifier says (the end of its log,
# and the hint). Then fix `PROGRAM` so that the verifier accepts it **and** the program still does its
# job: the grader compares its total with the bytes the kernel really handed out.
#
# **Hints**
# - The verifier proves, before the program ever runs, that every memory access is safe on **every**
#   path. Which helper in this program can fail, and what does it return then?
# - Change as little as you can: the filter, the map and the addition stay as they are.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false} tags=["setup"]
from ebpf_lab.grading import check

# %% nbgrader={"grade": false, "grade_id": "answer-bpf", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["answer-bpf"]
PROGRAM = r"""
BPF_HASH(bytes_by_pid, u32, u64, 1024);

int on_kmalloc(struct tracepoint__kmem__kmalloc *args)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 zero = 0;
    u64 *total;

    if (pid != TARGET_PID)
        return 0;
    total = bytes_by_pid.lookup_or_try_init(&pid, &zero);
    // YOUR CODE HERE
    __sync_fetch_and_add(total, args->bytes_alloc);
    return 0;
}
"""

# %% [markdown]
# ## Check your answer
#
# Run the cell below. It compiles `PROGRAM`, asks the kernel to load it, runs lesson 02's allocation
# workload, and compares `bytes_by_pid` with what the kernel handed out. From a terminal:
# `sudo ebpf-lab check fix-the-verifier notebooks/exercises/fix-the-verifier.ipynb`.

# %% nbgrader={"grade": true, "grade_id": "check-fix-the-verifier", "locked": true, "points": 8, "schema_version": 3, "solution": false, "task": false} tags=["check-fix-the-verifier"]
"""Checks fix-the-verifier: the verifier accepts PROGRAM on kmem:kmalloc, and bytes_by_pid holds exactly the
bytes the kernel handed out to TARGET_PID (and nothing for other processes)."""
check("fix-the-verifier", globals())
