# ---
# jupyter:
#   ebpf_lab:
#     exercise: kmalloc-per-pid
#     version: teacher
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 02.2 · Bytes per process, counted in the kernel  ★★☆
#
# *Lesson 02 — who is allocating memory? (`kmem:kmalloc` tracepoint)*
#
# Streaming one event per allocation costs a ring-buffer record and a DataFrame row each: at hundreds of
# thousands of allocations a second (lesson 02 measures the rate on your machine) that adds up. When the question is only *"who allocates the most bytes?"*, the
# kernel can keep the answer itself, in a **BPF hash map**, and user space reads a few numbers at the end.
#
# **Your task, part 1 (C).** Complete `on_kmalloc()` so that `bytes_by_pid[pid]` holds the sum of
# `bytes_alloc` of every allocation of process `pid` — for **every** process, no filter.
#
# **Your task, part 2 (Python).** The grader reads your map into a plain dict `{pid: bytes}` and calls
# `top_allocators(totals, n)`. Return a DataFrame of the `n` largest totals:
# - columns `pid`, `bytes`, `share` (in this order), where `share` is the fraction (0..1) of **all** the bytes
#   in `totals` — not only of the top `n`;
# - largest first, rows numbered from 0.
#
# **Hints**
# - `map.update(&key, &value)` *replaces* a value; you want to *add* to it, atomically, creating the entry when
#   it is missing: bcc's reference guide lists a map method that does exactly that.
# - `bpf_get_current_pid_tgid() >> 32` is the process id.
# - In pandas: `pd.DataFrame(list_of_pairs, columns=[...])`, `.sort_values(..., ascending=False)`,
#   `.head(n)`, `.reset_index(drop=True)`.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false} tags=["setup"]
from ebpf_lab.grading import check
import pandas as pd

# %% nbgrader={"grade": false, "grade_id": "answer-bpf", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["answer-bpf"]
PROGRAM = r"""
BPF_HASH(bytes_by_pid, u32, u64, 10240);

int on_kmalloc(struct tracepoint__kmem__kmalloc *args)
{
    // ### BEGIN SOLUTION
    u32 pid = bpf_get_current_pid_tgid() >> 32;

    bytes_by_pid.increment(pid, args->bytes_alloc);
    // ### END SOLUTION
    return 0;
}
"""


# %% nbgrader={"grade": false, "grade_id": "answer-py", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["answer-py"]
def top_allocators(totals, n=5):
    """totals: {pid: bytes}. The n largest as a DataFrame: pid, bytes, share; largest first."""
    ### BEGIN SOLUTION
    df = pd.DataFrame(list(totals.items()), columns=["pid", "bytes"])
    df["share"] = df["bytes"] / df["bytes"].sum()
    df = df.sort_values(["bytes", "pid"], ascending=[False, True])
    return df.head(n).reset_index(drop=True)
    ### END SOLUTION


# %% [markdown]
# Try your function on a small example before checking:

# %% tags=["try"]
top_allocators({1: 100, 2: 300, 3: 600}, n=2)

# %% [markdown]
# ## Check your answer
#
# Run the cell below. It compiles your `PROGRAM`, loads it into the running kernel, runs the exercise's
# own workload, and compares what your program saw with what really happened. Each check says what
# to fix, and the last report (with `.data`, what your code produced) is `ebpf_lab.classroom.last_report()`.
# From a terminal: `sudo ebpf-lab check kmalloc-per-pid notebooks/exercises/kmalloc-per-pid.ipynb`.

# %% nbgrader={"grade": true, "grade_id": "check-kmalloc-per-pid", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false} tags=["check-kmalloc-per-pid"]
"""Checks kmalloc-per-pid: bytes_by_pid is a u32 -> u64 hash map whose entries equal the bytes each process
(the grader's workload and a second process) really got; top_allocators() returns the n largest with their share."""
check("kmalloc-per-pid", globals())
