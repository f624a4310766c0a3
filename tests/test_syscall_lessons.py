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
    from ebpf_lab.bpf import include_flags
    from ebpf_lab.engine import program_path
    from ebpf_lab.kernel_headers import prepare
    from ebpf_lab.lessons._syscall import is_syscall_wrapper, syscall_fnname

    prepare()
    bcc = import_bcc()
    fn = syscall_fnname(cls.syscall)
    flags = cls().cflags_for("kprobe")
    assert "-DHOOK_KPROBE" in flags and f"-DSYSCALL_WRAPPER={int(is_syscall_wrapper(fn))}" in flags
    b = bcc.BPF(src_file=program_path(cls.program), cflags=flags + include_flags())
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
    assert lab.program_file().endswith(cls.program)
    assert "-DHOOK_TRACEPOINT" in lab.cflags() and not any(f.startswith("-DSYSCALL_WRAPPER") for f in lab.cflags())
    head = lab.source().splitlines()[:3]
    assert "hook variant: tracepoint, selected by -DHOOK_TRACEPOINT" in head[1], head


@LESSONS
def test_one_program_without_a_hook_flag_refuses_to_compile(cls):
    """The variants are one file; compiled with no HOOK_* flag it says what to choose (an #error), not a guess."""
    from ebpf_lab._bcc import import_bcc
    from ebpf_lab.bpf import include_flags
    from ebpf_lab.engine import program_path
    from ebpf_lab.kernel_headers import prepare

    prepare()
    bcc = import_bcc()
    with pytest.raises(Exception):
        bcc.BPF(src_file=program_path(cls.program), cflags=["-DONLY_PID=0"] + include_flags())
    assert "-DHOOK_TRACEPOINT" in open(program_path(cls.program)).read()


@LESSONS
def test_source_shows_every_variant_with_its_flags(cls):
    lab = cls()
    for v in cls.variants:
        lines = lab.source(variant=v).splitlines()
        assert f"hook variant: {v}, selected by -DHOOK_{v.upper()}" in lines[1]
        assert f"-DHOOK_{v.upper()}" in lines[2].split()
        assert f"defined(HOOK_{v.upper()})" in "\n".join(lines[3:])
