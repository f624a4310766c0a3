"""What lessons 01 (kill) and 03 (openat) share: the hook choice of SyscallLesson."""
from __future__ import annotations

import pytest

from ebpf_lab import FeatureUnavailable
from ebpf_lab import _kernel
from ebpf_lab.lessons.args_return import ArgsReturnLesson
from ebpf_lab.lessons.hello_kill import HelloKillLesson

pytestmark = [pytest.mark.root, pytest.mark.bpf]

LESSONS = pytest.mark.parametrize("cls", [HelloKillLesson, ArgsReturnLesson], ids=lambda c: c.id)


@LESSONS
def test_kprobe_refused_clearly_without_kprobes(cls):
    if _kernel.kprobes_available():
        pytest.skip("this kernel has kprobes: nothing to refuse")
    lab = cls(hook="kprobe")
    with pytest.raises(FeatureUnavailable) as e:
        lab.compile()
    assert e.value.feature == "kprobes"
    msg = str(e.value)
    assert "CONFIG_KPROBES" in msg and "hook=auto" in msg and "hook=tracepoint" in msg, msg
    assert lab.bpf is None
    lab.detach()


@LESSONS
def test_kprobe_programs_pass_the_verifier_here(cls):
    """Loading (not attaching) needs no kprobes: each kprobe variant is verified on every kernel."""
    from ebpf_lab._bcc import import_bcc
    from ebpf_lab.engine import program_path
    from ebpf_lab.kernel_headers import prepare
    from ebpf_lab.lessons._syscall import is_syscall_wrapper, syscall_fnname

    prepare()
    bcc = import_bcc()
    fn = syscall_fnname(cls.syscall)
    b = bcc.BPF(src_file=program_path(cls.programs["kprobe"]),
                cflags=[f"-DSYSCALL_WRAPPER={int(is_syscall_wrapper(fn))}", "-DONLY_PID=0"])
    try:
        for name in (cls.entry_fn, cls.return_fn):
            assert b.load_func(name, bcc.BPF.KPROBE).fd >= 0
    finally:
        b.cleanup()


@LESSONS
def test_forced_tracepoint_names_itself(cls):
    lab = cls(hook="tracepoint")
    hooks = lab.select_hooks()
    assert [h.target for h in hooks] == [f"syscalls:sys_enter_{cls.syscall}", f"syscalls:sys_exit_{cls.syscall}"]
    assert hooks[0].note == "hook=tracepoint was asked for"
    assert lab.program_file().endswith(cls.programs["tracepoint"])
