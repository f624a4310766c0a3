"""Notebooks 01 (hello kill) and 03 (arguments and return values) run top to bottom headless.

Each runs twice over: on this kernel, whatever hooks it offers (here: the syscall
tracepoints, since it has no kprobes), and — marked ``kprobes`` — on a kernel with
kprobes, where the notebook must have used the kprobe/kretprobe path (the
guest-kernel tier runs these). Afterwards nothing may stay attached.
"""
import re

import pytest

from attached import Snapshot
from ebpf_lab import _kernel
from ebpf_lab.lessons.hello_kill import syscall_fnname
from nbrun import has_image, outputs_by_tag, run_notebook, text_of

pytestmark = [pytest.mark.notebook, pytest.mark.root, pytest.mark.bpf, pytest.mark.tracepoints, pytest.mark.uprobes]

HANDLERS = ("hello_world", "on_kill_entry", "on_kill_return", "get_segments", "get_segments_res",
            "on_openat_entry", "on_openat_return", "on_strtol_entry", "on_strtol_return",
            "on_collatz_entry", "on_collatz_return")


def run_checked(name):
    snap = Snapshot(HANDLERS)
    out = outputs_by_tag(run_notebook(name))
    assert snap.leftovers() == {}, f"{name} left something attached"
    return out


def check_01(out, expect_kprobes):
    fn = syscall_fnname("kill")
    assert "No module named 'bpfcc'" in text_of(out["bpfcc-import"])
    assert "sys_enter_kill" in text_of(out["search-syscall"]) and fn in text_of(out["search-syscall"])
    assert fn in text_of(out["fnname"])
    tut = text_of(out["tutorial-run"])
    assert re.search(r"\d+\.\d{9}\s+ebl-killer\s+\d+\s+Hello, World!", tut) and "b'" not in tut
    attach = text_of(out["attach"])
    if expect_kprobes:
        assert f"hook used: kprobe:{fn}" in tut
        assert f"kprobe:{fn}" in attach and f"kretprobe:{fn}" in attach and "note:" not in attach
        assert f"already ran this variant, hooks: ['kprobe:{fn}', 'kretprobe:{fn}']" in text_of(out["kprobe-run"])
    else:
        assert "hook used: tracepoint:syscalls:sys_enter_kill" in tut
        assert "tracepoint:syscalls:sys_enter_kill" in attach and "note: this kernel has no kprobes" in attach
        assert "has no kprobes" in text_of(out["kprobe-run"])
    assert "every kill the workload sent was seen" in text_of(out["check"])
    assert re.search(r"\d+ kill\(\) calls seen; lost: 0", text_of(out["collect"]))
    assert "[closed]" in text_of(out["detach"])
    assert has_image(out["plot"])


def check_03(out, expect_kprobes):
    fn = syscall_fnname("openat")
    attach = text_of(out["attach"])
    tut = text_of(out["tutorial-run"])
    assert "blk_insert_cloned_request" in tut
    assert re.search(r"compiled\s+True", tut) and re.search(r"loaded\s+True", tut)
    if expect_kprobes:
        assert f"kprobe:{fn}" in attach and f"kretprobe:{fn}" in attach and "note:" not in attach
        assert "CONFIG_KPROBES" not in tut
        if re.search(r"function_in_kernel\s+True", tut):  # the tutorial's own probes attached for real
            assert re.search(r"attached\s+True", tut) and "attached for real" in tut
    else:
        assert "tracepoint:syscalls:sys_enter_openat" in attach or f"fentry:{fn}" in attach
        assert "note: this kernel has no kprobes" in attach
    assert re.search(r"all \d+ openat\(\) calls of the workload were seen", text_of(out["check"]))
    assert "[closed]" in text_of(out["detach"])
    for tag in ("plot-latency", "plot-errors", "uprobe-plot"):
        assert has_image(out[tag]), f"cell {tag} drew no plot"
    assert "uprobe:" in text_of(out["uprobe-steps"]) and "ebl_collatz" in text_of(out["uprobe-steps"])
    assert "True" in text_of(out["uprobe-check"]) and "False" not in text_of(out["uprobe-check"])


def test_01_hello_kill():
    check_01(run_checked("01_hello_kill.ipynb"), expect_kprobes=_kernel.kprobes_available())


def test_03_args_return():
    check_03(run_checked("03_args_return.ipynb"), expect_kprobes=_kernel.kprobes_available())


@pytest.mark.kprobes
def test_01_hello_kill_on_kprobes():
    check_01(run_checked("01_hello_kill.ipynb"), expect_kprobes=True)


@pytest.mark.kprobes
def test_03_args_return_on_kprobes():
    check_03(run_checked("03_args_return.ipynb"), expect_kprobes=True)
