# ---
# jupyter:
#   ebpf_lab:
#     exercise: choose-the-hook
#     version: learner
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 01.3 · Choose the hook  ★☆☆
#
# *Lesson 01 — hello kill: finding where to hook*
#
# Before writing a line of C, an eBPF author has to find **where** to attach. The lesson searched the
# kernel for everything named after `kill`; do the same for another system call.
#
# **Your task.** Find the **tracepoint** that fires exactly **once every time a process calls
# `chdir()`** (changes its working directory by path), and for no other call. Write its name in `HOOK`,
# as `"category:event"`.
#
# The grader attaches its own counting program to the tracepoint you name, runs a workload that calls
# `chdir()` a number of times it draws afresh each run — next to look-alike calls — and checks that your
# hook fired exactly once per `chdir()`.
#
# **Hints**
# - The lesson's search tools work here: `search_traceable(...)` (lesson 01) and `list_tracepoints(...)`
#   (lesson 02) take a regular expression.
# - A system call has tracepoints of its own, at its entry and at its exit; some tracepoints fire for
#   *every* system call, and some calls have look-alike cousins with a letter more.
# - `tracepoint_format(category, event)` shows what a tracepoint carries: does it look like `chdir()`'s
#   arguments?

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false} tags=["setup"]
from ebpf_lab.grading import check
from ebpf_lab.lessons.hello_kill import search_traceable
from ebpf_lab.lessons.kmalloc import list_tracepoints, tracepoint_format

# %%
# Try the search tools here (this cell is not graded), e.g.:
# list_tracepoints("chdir")

# %% nbgrader={"grade": false, "grade_id": "answer-hook", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["answer-hook"]
# YOUR CODE HERE
raise NotImplementedError()

# %% [markdown]
# ## Check your answer
#
# Run the cell below. It attaches the grader's counting program to `HOOK`, runs the workload, and
# compares how often it fired with the number of `chdir()` calls. From a terminal:
# `sudo ebpf-lab check choose-the-hook notebooks/exercises/choose-the-hook.ipynb`.

# %% nbgrader={"grade": true, "grade_id": "check-choose-the-hook", "locked": true, "points": 6, "schema_version": 3, "solution": false, "task": false} tags=["check-choose-the-hook"]
"""Checks choose-the-hook: HOOK names a tracepoint of this kernel that fires exactly once per chdir() call of
the grader's workload, and for none of its look-alike calls."""
check("choose-the-hook", globals())
