# ---
# jupyter:
#   ebpf_lab:
#     exercise: write-the-loader
#     version: learner
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 01.4 · Write the loader  ★★☆
#
# *Lesson 01 — hello kill: who sends kill?*
#
# The lab's `Lesson` classes compile, load, attach, collect and detach for you. Here you write that
# part yourself, with bcc alone. The C program is given (below): it sends one event through the ring
# buffer `events` for every `kill()` aimed at `TARGET_PID`.
#
# **Your task.** Write `load_and_poll(program, target_pid, seconds)`: compile `program` with
# `TARGET_PID` set by a `-D` flag, attach its function `on_kill` to the tracepoint
# `syscalls:sys_enter_kill`, collect the events of the ring buffer `events` for `seconds` seconds, then
# **detach and free everything**, and return the events as a list of dicts
# `{"target_pid": ..., "sig": ...}`.
#
# The grader runs your function in a separate process, sends signals while it polls, and then looks
# at what your process still holds: a program left loaded or attached costs points.
#
# **Hints**
# - bcc: `from bcc import BPF`; `BPF(text=..., cflags=[...])`; the tracepoint attach method takes the
#   tracepoint's name and the function's name.
# - A ring buffer is read with a callback: `b["events"].open_ring_buffer(callback)`, then
#   `b.ring_buffer_poll(timeout_ms)` runs the callback for what has arrived. `b["events"].event(data)`
#   turns the raw data into a struct with the C fields.
# - Poll until a deadline (`time.monotonic()`), not just once. Cleaning up: a `with` block, or
#   `try/finally` and `b.cleanup()`.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false} tags=["setup"]
from ebpf_lab._bcc import import_bcc
from ebpf_lab.exercises.loader import given_program
from ebpf_lab.grading import check

import_bcc()  # makes `from bcc import BPF` find the operating system's bcc in this kernel

PROGRAM = given_program()
print(PROGRAM)

# %% nbgrader={"grade": false, "grade_id": "answer-py", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["answer-py"]
import time


def load_and_poll(program, target_pid, seconds):
    # YOUR CODE HERE
    raise NotImplementedError()

# %% [markdown]
# ## Check your answer
#
# Run the cell below (as root: your loader loads a BPF program). It runs `load_and_poll()` in a
# separate process, sends `kill()`s once your program is attached, and checks the events you
# returned and what your process still held afterwards. From a terminal:
# `sudo ebpf-lab check write-the-loader notebooks/exercises/write-the-loader.ipynb`.

# %% nbgrader={"grade": true, "grade_id": "check-write-the-loader", "locked": true, "points": 9, "schema_version": 3, "solution": false, "task": false} tags=["check-write-the-loader"]
"""Checks write-the-loader: load_and_poll() attaches the given program, delivers every event of the grader's
kill() workload, returns after polling for about `seconds`, and leaves nothing loaded or attached."""
check("write-the-loader", globals())
