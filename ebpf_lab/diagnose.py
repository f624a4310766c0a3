"""The doctor: what this kernel and machine can do, found by trying.

``doctor()`` returns a DataFrame with one row per check:

- ``check``: what was checked; ``group``: machine, kernel, toolchain or hook
- ``ok``: True/False; ``status``: ok, missing, fallback or warn
- ``detail``: what was found
- ``fix``: what to do about it, or the fallback the lessons use instead

Hook rows are found by loading and attaching a tiny program of each type
(``ebpf_lab/programs/doctor.bpf.c``), not by reading the kernel config: this
matters, since a kernel can advertise fentry and then refuse it.
"""
from __future__ import annotations

import ctypes
import os
import platform
import shutil
import subprocess
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

import pandas as pd

from . import _kernel
from ._bcc import INSTALL_HINT, bcc_version, import_bcc
from .errors import LabError

__all__ = ["doctor", "format_table"]

Row = Dict[str, Any]


def _row(group: str, check: str, ok: bool, detail: str, fix: str = "", status: Optional[str] = None) -> Row:
    return {"group": group, "check": check, "ok": bool(ok), "status": status or ("ok" if ok else "missing"),
            "detail": detail, "fix": "" if ok and status in (None, "ok") else fix}


def _tool_version(cmd: List[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0] if text else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


#: machines the lab's bulk ring-buffer reader (ebpf_lab/_ringbuf.py) is correct on: it reads records with
#: plain loads, which x86-64's total store order makes safe against the kernel's release-store commit
RINGBUF_ORDERING_OK = ("x86_64", "amd64")


def _arch_row(machine: Optional[str] = None) -> Row:
    m = (machine or platform.machine()).lower()
    if m in RINGBUF_ORDERING_OK:
        return _row("machine", "architecture", True, f"{m}: the lab's ring-buffer reader is correct here (x86-64 ordering)")
    return _row("machine", "architecture", False,
                f"{m}: not x86-64. The lab's bulk ring-buffer reader (ebpf_lab/_ringbuf.py) relies on x86-64 memory "
                "ordering; on a weaker-ordered CPU (arm64, ...) it could read a record's header before its data and "
                "return wrong values without any error. This architecture is not tested by CI.",
                "use an x86-64 machine or VM for the lab (on an Apple-silicon Mac: an x86-64 cloud VM); results "
                "collected here are untested", status="warn")


# bcc releases that are known not to compile on kernels newer than they are (their bundled clang front end
# and header fix-ups lag the kernel: Ubuntu 22.04's bcc 0.18 on its 5.15+/6.x kernels fails with
# "Failed to compile BPF module", iovisor/bcc#3993; see also bcc#5231, #5451).
_BCC_TOO_OLD = ((0, 24), (5, 15))  # bcc older than 0.24 on a kernel 5.15 or newer (0.24 built from source works there)


def _version_tuple(text: str) -> Tuple[int, ...]:
    import re

    m = re.match(r"(\d+)\.(\d+)", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _canary_row(bcc_ver: str, kernel: Optional[str] = None, timeout: float = 180.0) -> Row:
    """Compile a trivial program with bcc in a child process (a bcc that crashes or hangs cannot take the
    doctor with it) and name the known-broken combinations when it fails."""
    kernel = kernel or platform.release()
    code = ("import os\n"
            "from ebpf_lab._bcc import import_bcc\n"
            "try:\n"
            "    from ebpf_lab.kernel_headers import prepare; prepare()\n"
            "except Exception:\n"
            "    pass\n"
            "import_bcc().BPF(text='int ebl_canary(void *ctx) { return 0; }')\n"
            "print('canary compiled')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                                     os.environ.get("PYTHONPATH")])))
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)
        ok = r.returncode == 0 and "canary compiled" in r.stdout
        why = "" if ok else ([ln.strip() for ln in (r.stderr or r.stdout).splitlines() if ln.strip()] or
                             [f"exit status {r.returncode}"])[-1]
    except subprocess.TimeoutExpired:
        ok, why = False, f"bcc did not finish compiling a trivial program within {timeout:g} s"
    if ok:
        return _row("toolchain", "bcc compiles here", True, f"bcc {bcc_ver} compiled a trivial program for kernel {kernel}")
    too_old = _version_tuple(bcc_ver) < _BCC_TOO_OLD[0] and _version_tuple(kernel) >= _BCC_TOO_OLD[1]
    if too_old:
        fix = (f"known broken: bcc {bcc_ver} is older than 0.24 and this kernel ({kernel}) is 5.15 or newer; such a bcc "
               "cannot compile against it (Ubuntu 22.04's bcc 0.18 says \"Failed to compile BPF module\", "
               "iovisor/bcc#3993). Install bcc 0.24 or newer (Debian 12+ ships 0.26+; on Ubuntu 22.04 build bcc from source), "
               "or take the laptop path (`vagrant up`, docs/vm.md), whose VM has a bcc that matches its kernel")
    else:
        fix = ("bcc cannot compile a trivial program on this kernel: check the kernel headers row (bcc compiles "
               "against them) and `clang`; if they are fine, this bcc may lag the kernel (bcc#5231, #5451): "
               "install a newer bcc or take the laptop path (`vagrant up`, docs/vm.md)")
    return _row("toolchain", "bcc compiles here", False, f"bcc {bcc_ver}: {why}", fix)


def _machine_rows() -> List[Row]:
    rows = []
    rows.append(_row("kernel", "kernel version", True, f"{platform.release()} ({platform.machine()})"))
    rows.append(_arch_row())
    caps = _kernel.effective_caps()
    root = os.geteuid() == 0
    have = [c for c in ("CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN", "CAP_NET_ADMIN") if caps[c]]
    rows.append(_row("machine", "root / capabilities", root and len(have) == 4,
                     f"uid {os.geteuid()}; effective: {', '.join(have) or 'none'}"
                     + ("" if caps["CAP_SYS_RESOURCE"]
                        else "; no CAP_SYS_RESOURCE (RLIMIT_MEMLOCK cannot be raised: harmless on 5.11+ kernels)"),
                     "run the lab as root: `sudo ./lab` (BPF needs CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)"))
    return rows


def _bpf_syscall_row() -> Row:
    from ._bpfsys import sys_bpf

    attr = ctypes.create_string_buffer(72)
    # BPF_MAP_CREATE: array map, key 4, value 4, 1 entry
    ctypes.memmove(ctypes.addressof(attr), (2).to_bytes(4, "little") + (4).to_bytes(4, "little")
                   + (4).to_bytes(4, "little") + (1).to_bytes(4, "little"), 16)
    try:
        fd = sys_bpf(0, attr)
        os.close(fd)
        return _row("kernel", "bpf() syscall", True, "created and closed an array map")
    except OSError as e:
        return _row("kernel", "bpf() syscall", False, f"BPF_MAP_CREATE failed: {e}",
                    "needs root and a kernel with CONFIG_BPF_SYSCALL; check kernel.unprivileged_bpf_disabled and run with sudo")


def _kernel_rows() -> List[Row]:
    rows = [_bpf_syscall_row()]
    try:
        jit = open("/proc/sys/net/core/bpf_jit_enable").read().strip()
        rows.append(_row("kernel", "BPF JIT", jit in ("1", "2"), f"net.core.bpf_jit_enable = {jit}",
                         "`sysctl -w net.core.bpf_jit_enable=1` (programs still run interpreted without it, slower)",
                         status=None if jit in ("1", "2") else "warn"))
    except OSError:
        rows.append(_row("kernel", "BPF JIT", True, "always on (no bpf_jit_enable knob: CONFIG_BPF_JIT_ALWAYS_ON)"))
    btf = os.path.exists("/sys/kernel/btf/vmlinux")
    rows.append(_row("kernel", "BTF", btf, "/sys/kernel/btf/vmlinux " + ("present" if btf else "absent"),
                     "a kernel built with CONFIG_DEBUG_INFO_BTF=y (fentry/CO-RE need it; bcc lessons do not)"))
    mounts = _kernel.ensure_kernel_fs()
    tfs = _kernel.tracefs()
    rows.append(_row("kernel", "tracefs", tfs is not None, f"events at {tfs}" if tfs else "not mounted",
                     "`sudo mount -t tracefs tracefs /sys/kernel/tracing` (the lab mounts it itself when root)"))
    rows.append(_row("kernel", "debugfs", mounts.get("/sys/kernel/debug", False),
                     "mounted at /sys/kernel/debug" if mounts.get("/sys/kernel/debug") else "not mounted",
                     "`sudo mount -t debugfs debugfs /sys/kernel/debug` (bcc looks for tracing files there)"))
    rows.append(_row("kernel", "bpffs", mounts.get("/sys/fs/bpf", False),
                     "mounted at /sys/fs/bpf" if mounts.get("/sys/fs/bpf") else "not mounted",
                     "`sudo mount -t bpf bpf /sys/fs/bpf` (for pinning maps and programs)"))
    from .kernel_headers import headers_info

    h = headers_info()
    if h.status == "matching":
        rows.append(_row("toolchain", "kernel headers", True, h.detail))
    elif h.status == "fallback":
        rows.append(_row("toolchain", "kernel headers", True, h.detail, status="fallback",
                         fix=f"no headers package matches {h.kernel}; bcc compiles against {h.headers} through "
                             f"BCC_KERNEL_SOURCE={h.path}. Lessons read tracepoint fields and syscall arguments "
                             "(always right) and refuse to present kernel struct fields read through these headers. "
                             "Install linux-headers-$(uname -r) if your distribution has it."))
    else:
        rows.append(_row("toolchain", "kernel headers", False, h.detail,
                         "`sudo apt-get install linux-headers-$(uname -r)` (or linux-headers-amd64/-generic)"))
    return rows


def _toolchain_rows() -> List[Row]:
    rows = []
    v = bcc_version()
    rows.append(_row("toolchain", "bcc", bool(v), f"bcc {v} ({import_bcc().__file__})" if v else "not found", INSTALL_HINT))
    if v:
        rows.append(_canary_row(v))
    for tool, cmd, fix in (
        ("clang", ["clang", "--version"],
         "`sudo apt-get install clang llvm` (lesson 04 builds the tutorial's object with clang | llc)"),
        ("llc", ["llc", "--version"], "`sudo apt-get install llvm`"),
        ("tc", ["tc", "-V"], "`sudo apt-get install iproute2`"),
        ("bpftool", ["bpftool", "version"],
         "`sudo apt-get install bpftool` (Debian 12 and later) or linux-tools-$(uname -r) (Ubuntu); "
         "Debian 11 packages none: build it from the kernel's tools/bpf/bpftool (lesson 06's CO-RE way needs it)"),
        ("bpftrace", ["bpftrace", "--version"], "`sudo apt-get install bpftrace` (lesson 01 uses `bpftrace -l` to search hooks)"),
    ):
        path = shutil.which(tool)
        ver = _tool_version(cmd) if path else ""
        if tool == "llc" and ver:
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
                ver = next((ln.strip() for ln in out.splitlines() if "version" in ln), ver)
            except (OSError, subprocess.TimeoutExpired):
                pass
        rows.append(_row("toolchain", tool, bool(path), f"{path}: {ver}" if path else "not installed", fix))
    rows.append(_bpftrace_btf_row())
    return rows


def _bpftrace_btf_row() -> Row:
    """Does bpftrace read kernel structs through BTF in a tracepoint probe? (lesson 06's bpftrace way)"""
    from .bpftrace import BTF_PROBE, btf_in_tracepoints

    check = "bpftrace BTF in tracepoints"
    if not shutil.which("bpftrace"):
        return _row("toolchain", check, False, "bpftrace is not installed", "`sudo apt-get install bpftrace`")
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return _row("toolchain", check, False, "this kernel has no BTF (/sys/kernel/btf/vmlinux)",
                    "lesson 06 leaves its bpftrace way out (it reads curtask->real_parent through BTF)")
    if os.geteuid() != 0:
        return _row("toolchain", check, False, "not checked: bpftrace must attach a probe, which needs root",
                    "run the doctor with sudo", status="unknown")
    ok, err = btf_in_tracepoints()
    return _row("toolchain", check, ok, f"bpftrace -e '{BTF_PROBE}'" + ("" if ok else f": {err}"),
                "lesson 06 leaves its bpftrace way out (it reads curtask->real_parent->tgid in a tracepoint probe); "
                "a newer bpftrace can")


# ------------------------------------------------------------ hook probes
def _try(fn: Callable[[], Any]) -> Tuple[bool, str]:
    from .bpf import capture_stderr

    with capture_stderr() as log:
        try:
            fn()
            err = None
        except Exception as e:  # bcc raises bare Exception
            err = e
    if err is None:
        return True, ""
    msg = str(err)
    tail = [ln for ln in log().splitlines() if ln.strip()]
    if tail:
        msg += f" ({tail[-1].strip()})"
    return False, msg


def _hook_rows() -> List[Row]:
    from .bpf import lab_bpf_class, program_path
    from .kernel_headers import prepare

    rows: List[Row] = []
    if os.geteuid() != 0:
        return [_row("hook", "hook types", False, "not tried: needs root", "run `sudo ebpf-lab doctor`")]
    prepare()
    bcc = import_bcc()
    B = bcc.BPF
    ok, why = _try(lambda: None)
    holder: Dict[str, Any] = {}

    def compile_main() -> None:
        holder["b"] = lab_bpf_class(bcc)(src_file=program_path("doctor.bpf.c"))

    ok, why = _try(compile_main)
    if not ok:
        return [_row("hook", "compile a BPF program", False, why,
                     "bcc could not compile a trivial program: check the kernel headers row and `clang`")]
    b = holder["b"]
    try:
        getpid = b.get_syscall_fnname("getpid").decode()
        kp_fix = (("this kernel has no kprobes (CONFIG_KPROBES is not set: no kprobe_events in tracefs). "
                   if not _kernel.kprobes_available() else "kprobes exist but attaching failed (see detail). ")
                  + "Lessons 01 and 03 fall back to the "
                  "syscalls:sys_enter_*/sys_exit_* tracepoints and name that hook in their results; the kprobe "
                  "paths are tested in the guest-kernel tier (a stock distribution kernel under QEMU)")
        ok, why = _try(lambda: b.attach_kprobe(event=getpid, fn_name="on_kprobe"))
        rows.append(_row("hook", "kprobe", ok, f"attached to {getpid}" if ok else why, kp_fix))
        ok, why = _try(lambda: b.attach_kretprobe(event=getpid, fn_name="on_kretprobe"))
        rows.append(_row("hook", "kretprobe", ok, f"attached to {getpid}" if ok else why, kp_fix))
        ok, why = _try(lambda: b.attach_tracepoint(tp="syscalls:sys_enter_getpid", fn_name="on_tracepoint"))
        rows.append(_row("hook", "tracepoint", ok, "attached to syscalls:sys_enter_getpid" if ok else why,
                         "needs CONFIG_FTRACE_SYSCALLS / tracefs; the tracepoint lessons cannot run without it"))
        ok, why = _try(lambda: b.attach_raw_tracepoint(tp="sys_enter", fn_name="on_raw_tracepoint"))
        rows.append(_row("hook", "raw tracepoint", ok, "attached to sys_enter" if ok else why, "needs Linux 4.17+"))
        ok, why = _try(lambda: b.attach_uprobe(name="c", sym="getpid", fn_name="on_uprobe"))
        rows.append(_row("hook", "uprobe", ok, "attached to libc getpid" if ok else why,
                         "needs CONFIG_UPROBE_EVENTS; lesson 03's user-space section cannot run without it"))
        ok, why = _try(lambda: b.attach_uretprobe(name="c", sym="getpid", fn_name="on_uprobe"))
        rows.append(_row("hook", "uretprobe", ok, "attached to libc getpid" if ok else why, "needs CONFIG_UPROBE_EVENTS"))
        ok, why = _try(lambda: (b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name="on_perf_output"),
                                b["perf_probe"].open_perf_buffer(lambda *a: None)))
        rows.append(_row("hook", "perf buffer", ok, "BPF_PERF_OUTPUT opened" if ok else why, "needs Linux 4.4+"))
        ok, why = _try(lambda: b.load_func("on_ring_output", B.TRACEPOINT))
        rows.append(_row("hook", "ring buffer", ok, "BPF_RINGBUF_OUTPUT map created, program loaded" if ok else why,
                         "needs Linux 5.8+; the lab's collector needs ring buffers"))
        rows.append(_net_row(b, B, "TC (sched_cls)", "on_sched_cls", B.SCHED_CLS, "tc", 0,
                             "needs CONFIG_NET_CLS_BPF / CONFIG_NET_SCH_INGRESS (`modprobe cls_bpf sch_ingress`)"))
        rows.append(_net_row(b, B, "XDP", "on_xdp", B.XDP, "ip", 2, "needs CONFIG_XDP_SOCKETS / Linux 4.8+"))
    finally:
        b.cleanup()
    rows.append(_fentry_row(bcc))
    return rows


def _net_row(b: Any, B: Any, name: str, fn: str, ptype: int, tool: str, expect: int, fix: str) -> Row:
    from ._bpfsys import prog_test_run

    holder: Dict[str, Any] = {}
    ok, why = _try(lambda: holder.update(f=b.load_func(fn, ptype)))
    if not ok:
        return _row("hook", name, False, why, fix)
    pkt = bytes(14 + 20 + 8 + 32)
    try:
        ret, _, _ = prog_test_run(holder["f"].fd, pkt)
    except OSError as e:
        return _row("hook", name, False, f"loaded, but BPF_PROG_TEST_RUN failed: {e}", fix)
    return _row("hook", name, ret == expect, f"loaded and ran on a test packet (verdict {ret})", fix)


def _fentry_row(bcc: Any) -> Row:
    from .bpf import lab_bpf_class, program_path

    fix = ("this kernel refuses BPF trampolines (fentry/fexit) even though bcc's support_kfunc() says "
           f"{bool(bcc.BPF.support_kfunc())}; lessons use kprobes or tracepoints instead")
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return _row("hook", "fentry", False, "no BTF", fix)
    holder: Dict[str, Any] = {}

    def go() -> None:
        holder["b"] = lab_bpf_class(bcc)(src_file=program_path("doctor_fentry.bpf.c"))
        holder["b"].attach_kfunc(fn_name="vfs_read")

    ok, why = _try(go)
    if "b" in holder:
        holder["b"].cleanup()
    if not ok and "super-user" in why:
        why += " — bcc's wording; the kernel refused the BPF_PROG_TYPE_TRACING program (EPERM) although this process is root"
    if not ok and "compile" in why:  # bcc's, not the kernel's: the kernel was never asked
        fix = "this bcc could not compile an fentry program (KFUNC_PROBE); lessons use kprobes or tracepoints instead"
    return _row("hook", "fentry", ok, "attached to vfs_read" if ok else why, fix)


def doctor() -> pd.DataFrame:
    """Check this machine and kernel; one row per check (see the module docstring)."""
    rows = _machine_rows() + _kernel_rows()
    try:
        rows += _toolchain_rows()
    except LabError as e:
        rows.append(_row("toolchain", "bcc", False, str(e), INSTALL_HINT))
        return pd.DataFrame(rows)
    rows += _hook_rows()
    df = pd.DataFrame(rows, columns=["group", "check", "ok", "status", "detail", "fix"])
    df.attrs["python"] = sys.executable
    return df


def format_table(df: pd.DataFrame) -> str:
    """Plain-text rendering for a terminal: one line per check, the fix indented below."""
    mark = {"ok": "ok  ", "missing": "NO  ", "fallback": "FALL", "warn": "WARN"}
    out = []
    for r in df.itertuples():
        out.append(f"[{mark.get(r.status, r.status)}] {r.check:<22} {r.detail}")
        if r.fix:
            out.append(f"{'':<7} -> {r.fix}")
    return "\n".join(out)
