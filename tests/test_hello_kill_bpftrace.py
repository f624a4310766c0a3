"""Lesson 01's last question asked twice: the lesson (bcc) and a bpftrace one-liner on the same workload agree.

Each runs its own copy of the kill workload (its victims differ), so kills are compared by
role and signal, in order. On a kernel without kprobes both use the syscall tracepoint; the
test marked ``kprobes`` (guest-kernel tier) runs the one-liner on the kprobe the lesson uses there.
"""
import signal

import pytest

from ebpf_lab import _kernel, bpftrace
from ebpf_lab.lessons.hello_kill import HelloKillLesson, bpftrace_kills, bpftrace_program, compare_with_bpftrace

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.tracepoints, pytest.mark.ringbuf,
              pytest.mark.skipif(bpftrace.executable() is None, reason="bpftrace: not installed")]

SIGNALS = [0, signal.SIGUSR1, signal.SIGUSR2, 99, signal.SIGSTOP, signal.SIGCONT, signal.SIGTERM, signal.SIGKILL,
           signal.SIGTERM]


def agree(kprobes):
    lab = HelloKillLesson(pause_ms=5, hook="kprobe" if kprobes else "tracepoint")
    df = lab.run()
    check = lab.compare_with_workload(df)
    bt = bpftrace_kills(kprobes=kprobes, pause_ms=5)
    assert bt.attrs["stopped_by"] == "exit", "bpftrace should end with its -c workload"
    both = compare_with_bpftrace(check, lab.workload_report().attrs["victims"], bt)
    assert list(both["signal"]) == [int(s) for s in SIGNALS]
    assert list(both["target"][-1:]) == ["pid 99999999"]
    assert both["agree"].all(), both
    return bt


def test_bpftrace_agrees_with_the_lesson_on_this_kernel():
    bt = agree(_kernel.kprobes_available())
    hook = "kprobe:" if _kernel.kprobes_available() else "tracepoint:syscalls:sys_enter_kill"
    assert bt.attrs["program"].startswith(hook)
    if not _kernel.kprobes_available():
        assert "no kprobes" in bt.attrs["hook_note"] and "sys_enter_kill" in bt.attrs["hook_note"]


@pytest.mark.kprobes
def test_bpftrace_agrees_with_the_lesson_on_kprobes():
    bt = agree(True)
    assert bt.attrs["program"].startswith("kprobe:")


def test_one_liner_names_its_hook():
    tp, why = bpftrace_program(False)
    assert tp.startswith("tracepoint:syscalls:sys_enter_kill /pid == cpid/") and "args->sig" in tp
    kp, why = bpftrace_program(True)
    assert kp.startswith("kprobe:") and "kprobe on" in why
