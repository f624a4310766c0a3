"""Lesson 02's question asked twice: the lesson (bcc, ring buffer) and a bpftrace one-liner (a map) agree.

Each runs its own copy of the same workload (N x open/read/close of /proc/self/stat,
each open allocating one seq_file buffer), so the workload's allocations per size are compared.
"""
import pytest

from ebpf_lab import bpftrace
from ebpf_lab.lessons.kmalloc import (KmallocLesson, bpftrace_program, bpftrace_sizes, compare_sizes,
                                      kmalloc_node_separate)

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.tracepoints, pytest.mark.ringbuf,
              pytest.mark.skipif(bpftrace.executable() is None, reason="bpftrace: not installed")]

N = 5000


def test_bpftrace_agrees_with_the_lesson_per_size():
    lab = KmallocLesson(min_bytes=128, iterations=N)
    df = lab.run()
    bt = bpftrace_sizes(iterations=N, min_bytes=128)
    assert bt.attrs["stopped_by"] == "exit", "bpftrace should end with its -c workload"
    both = compare_sizes(df, lab.workload.pid, bt)
    top_bcc = both.sort_values("bcc", ascending=False).iloc[0]
    top_bt = both.sort_values("bpftrace", ascending=False).iloc[0]
    assert top_bcc.bytes_alloc == top_bt.bytes_alloc, both      # the same size dominates in both
    assert top_bt.bpftrace >= N, both                           # one allocation per open, at least
    assert top_bcc.bcc + df.attrs["lost"] >= N, both            # the ring buffer saw them too (or counted the loss)
    assert (both.bytes_alloc >= 128).all()


def test_one_liner_uses_the_lessons_events():
    prog, note = bpftrace_program(128)
    assert prog.startswith("tracepoint:kmem:kmalloc") and "pid == cpid" in prog
    kmem = [h for h in KmallocLesson().select_hooks() if h.target.startswith("kmem:")]
    assert ("kmem:kmalloc_node" in prog) == kmalloc_node_separate() == (len(kmem) == 2)
    assert ("kmalloc_node" in note) and ("kmem:kmalloc" in note)
