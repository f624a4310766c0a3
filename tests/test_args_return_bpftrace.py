"""Lesson 03's question as a bpftrace program: same hook as the lesson, same answer on the same workload."""
import re

import pytest

from ebpf_lab import _kernel
from ebpf_lab.lessons.args_return import (ArgsReturnLesson, bpftrace_opens, bpftrace_program,
                                          compare_with_bpftrace)
from ebpf_lab.lessons.hello_kill import syscall_fnname

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.tracepoints]


def test_program_uses_the_lessons_hook_and_says_why():
    prog, why = bpftrace_program(False)
    assert "tracepoint:syscalls:sys_enter_openat" in prog and "tracepoint:syscalls:sys_exit_openat" in prog
    assert "no kprobes" in why and "kprobe" not in prog
    prog, why = bpftrace_program(True)
    fn = syscall_fnname("openat")
    assert f"kprobe:{fn}" in prog and f"kretprobe:{fn}" in prog and "retval" in prog and "tracepoint" not in prog
    assert why.startswith(f"kprobe + kretprobe on {fn}")


def _agree_on(kprobes, no_bpf_leak):
    lab = ArgsReturnLesson(rounds=4)
    df = lab.run()
    check = lab.compare_with_workload(df)
    assert check.agree.all()
    bt = bpftrace_opens(kprobes=kprobes, rounds=3)
    rep = bt.attrs["report"]
    assert len(rep) == 2 + 3 * 8, "the workload reports 2 set-up opens and 8 a round"
    assert len(bt) == len(rep), "bpftrace saw a different number of the workload's openat() calls"
    both = compare_with_bpftrace(check, bt)
    assert len(both) == len(rep)  # the first 3 rounds of the lesson's 4 (plus set-up) against bpftrace's 3
    assert both.agree.all(), both[~both.agree]
    assert set(both.expected) >= {"fd", "ENOENT", "EISDIR", "ENOTDIR", "EEXIST", "ELOOP", "EACCES"}
    return bt


def test_bpftrace_agrees_with_the_lesson_on_the_same_workload(no_bpf_leak):
    kprobes = _kernel.kprobes_available()
    bt = _agree_on(kprobes, no_bpf_leak)
    if kprobes:
        assert "kprobe + kretprobe" in bt.attrs["hook_note"]
    else:
        assert "no kprobes" in bt.attrs["hook_note"] and re.search(r"sys_enter_openat", bt.attrs["command"])


@pytest.mark.kprobes
def test_bpftrace_on_kprobes_agrees_with_the_lesson(no_bpf_leak):
    bt = _agree_on(True, no_bpf_leak)
    assert "kretprobe:" in bt.attrs["command"]


def test_a_disagreement_is_seen():
    """compare_with_bpftrace is not always True: a result bpftrace did not see makes a row disagree."""
    import pandas as pd

    from ebpf_lab.lessons.args_return import parse_open_report

    report = "dir /tmp/ebl-trace-open-AAAAAA\nopen 10 0 3 /tmp/ebl-trace-open-AAAAAA/readable.txt\n" \
             "open 10 0 -2 /tmp/ebl-trace-open-AAAAAA/missing.txt\n"
    bt = pd.DataFrame({"pid": [10], "flags": [0], "ret": [3], "filename": ["/tmp/ebl-trace-open-AAAAAA/readable.txt"]})
    bt.attrs["report"] = parse_open_report(report)
    check = pd.DataFrame({"path": ["/tmp/ebl-trace-open-BBBBBB/readable.txt", "/tmp/ebl-trace-open-BBBBBB/missing.txt"],
                          "flags_text": ["O_RDONLY", "O_RDONLY"], "expected": ["fd", "ENOENT"], "agree": [True, True]})
    both = compare_with_bpftrace(check, bt)
    assert list(both.agree) == [True, False] and list(both.bpftrace) == [True, False]
