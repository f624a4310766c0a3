"""A real kprobe and kretprobe on the kill syscall, checked against what kill() did.

Skipped on hosts without kprobes (tests/conftest.py turns the ``kprobes``
marker into a skip there); the guest-kernel tier (test_guest_kernel.py) runs
it on a stock Debian kernel under QEMU, where it must pass.
"""
from __future__ import annotations

import errno
import os
import signal
import subprocess

import pytest

PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kill_probe.bpf.c")


def _unused_pid() -> int:
    with open("/proc/sys/kernel/pid_max") as f:
        pid = int(f.read()) - 1
    while os.path.exists(f"/proc/{pid}"):
        pid -= 1
    return pid


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.kprobes
def test_kprobe_and_kretprobe_see_kill(no_bpf_leak):
    from ebpf_lab._bcc import import_bcc

    bcc = import_bcc()
    b = bcc.BPF(src_file=PROGRAM.encode(), cflags=[f"-DWATCH_PID={os.getpid()}"])
    child = None
    try:
        fn = b.get_syscall_fnname("kill").decode()
        # __x64_sys_kill(struct pt_regs *) on x86-64 4.17+; sys_kill(pid, sig) before.
        entry = "on_kill_entry_direct" if fn.startswith("sys_") else "on_kill_entry"
        b.attach_kprobe(event=fn, fn_name=entry)
        b.attach_kretprobe(event=fn, fn_name="on_kill_return")

        nobody = _unused_pid()
        with pytest.raises(ProcessLookupError):
            os.kill(nobody, 0)
        child = subprocess.Popen(["sleep", "60"])
        os.kill(child.pid, signal.SIGTERM)
        assert child.wait(timeout=30) == -signal.SIGTERM

        seen = {k.value: (v.ret, v.sig, v.calls) for k, v in b["seen"].items()}
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        b.cleanup()

    print(f"probed {fn} ({entry}): {seen}")
    assert seen.get(nobody) == (-errno.ESRCH, 0, 1), f"kill({nobody}, 0) as the probes saw it: {seen}"
    assert seen.get(child.pid) == (0, signal.SIGTERM, 1), f"kill({child.pid}, SIGTERM) as the probes saw it: {seen}"
