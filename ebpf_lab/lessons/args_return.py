"""Lesson 03 — arguments and return values: entry + return probes joined per thread.

Notebook: ``notebooks/03_args_return.ipynb``. Two lessons live here:

- :class:`ArgsReturnLesson` (``args-return``): every ``openat()`` — filename and
  flags in, file descriptor or ``-errno`` out, and the time spent in between.
  One program, ``args_return.bpf.c``, with three ways in, best first:
  kprobe + kretprobe on the syscall's kernel function (``-DHOOK_KPROBE``),
  fentry + fexit where the kernel really loads them (``-DHOOK_FEXIT``), the
  syscall tracepoints ``sys_enter_openat`` / ``sys_exit_openat``
  (``-DHOOK_TRACEPOINT``).
- :class:`UprobeArgsReturnLesson` (``args-return-uprobes``): the same capture on
  user-space functions, libc's ``strtol`` and ``ebl_collatz`` of a small program
  the lab builds (``args_return_uprobe.bpf.c``).

:func:`tutorial_example` runs the tutorial's own example, a kprobe and kretprobe
on ``blk_insert_cloned_request`` (``args_return_tutorial.bpf.c``), where the
kernel allows it, and says how often it fired.

None of these programs reads a kernel struct's fields through the compile
headers (which may belong to another kernel version, see
``ebpf_lab.kernel_headers``): arguments come from syscall argument registers
(``struct pt_regs``, the CPU's ABI), from tracepoint format files, or from
user-space function arguments.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
import time
from typing import Any, ClassVar, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from .. import _kernel
from .._bcc import import_bcc
from .._workloads import binary
from ..bpf import build, capture_stderr, program_path
from ..engine import Hook, Param, Workload, bytes_to_category, match_in_order, wall_clock
from ..errors import CompileError, FeatureUnavailable
from ..kernel_headers import headers_info, prepare
from ._syscall import NO_KPROBES, ReportingLesson, SyscallLesson, errno_name, is_syscall_wrapper, syscall_fnname

__all__ = [
    "ArgsReturnLesson",
    "UprobeArgsReturnLesson",
    "tutorial_example",
    "open_flags_text",
    "fexit_loads",
    "plot_latency",
    "plot_errors",
    "plot_uprobe_calls",
    "kernel_signature",
    "TUTORIAL_SIGNATURE",
    "bpftrace_program",
    "bpftrace_opens",
    "compare_with_bpftrace",
    "VMLINUX_BTF",
]

_ACCESS = {0: "O_RDONLY", 1: "O_WRONLY", 2: "O_RDWR"}
# Linux's generic O_* values (x86-64, arm64 share them, bar O_DIRECT/O_DIRECTORY/O_NOFOLLOW on arm64)
_FLAG_NAMES = [(getattr(os, n), n) for n in (
    "O_CREAT", "O_EXCL", "O_NOCTTY", "O_TRUNC", "O_APPEND", "O_NONBLOCK", "O_DSYNC", "O_DIRECT",
    "O_LARGEFILE", "O_DIRECTORY", "O_NOFOLLOW", "O_NOATIME", "O_CLOEXEC", "O_PATH") if getattr(os, n, 0)]


def open_flags_text(flags: int) -> str:
    """``0o100301`` -> ``O_WRONLY|O_CREAT|O_EXCL|...``: open() flags as names."""
    flags = int(flags) & 0xFFFFFFFF
    names = [_ACCESS.get(flags & 3, f"access={flags & 3}")]
    rest = flags & ~3
    sync = getattr(os, "O_SYNC", 0)
    if sync and rest & sync == sync:
        names.append("O_SYNC")
        rest &= ~sync
    tmpfile = getattr(os, "O_TMPFILE", 0)
    if tmpfile and rest & tmpfile == tmpfile:
        names.append("O_TMPFILE")
        rest &= ~tmpfile
    for bit, name in _FLAG_NAMES:
        if rest & bit:
            names.append(name)
            rest &= ~bit
    if rest:
        names.append(hex(rest))
    return "|".join(names)


# --------------------------------------------------------- fexit, for real
_FEXIT: Dict[str, Tuple[bool, str]] = {}


def fexit_loads(fnname: Optional[str] = None) -> Tuple[bool, str]:
    """Does this kernel really load the lesson's fexit program? (ok, why not).

    bcc's ``BPF.support_kfunc()`` only checks for BTF and a kernel symbol; some
    kernels (this lab's Firecracker host among them) then refuse every
    BPF_PROG_TYPE_TRACING program with EPERM, which bcc reports as "Need
    super-user privileges". Only loading one tells, so this compiles
    ``args_return.bpf.c`` with ``-DHOOK_FEXIT`` and loads its fexit program (without attaching it).
    """
    fn = fnname or syscall_fnname("openat")
    if fn in _FEXIT:
        return _FEXIT[fn]
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        _FEXIT[fn] = (False, "the kernel has no BTF (/sys/kernel/btf/vmlinux), which fentry/fexit need")
        return _FEXIT[fn]
    bcc = import_bcc()
    if not bcc.BPF.support_kfunc():
        _FEXIT[fn] = (False, "bcc says this kernel has no BPF trampolines (support_kfunc() is False)")
        return _FEXIT[fn]
    prepare()
    try:
        b, _ = build(src_file=program_path("args_return.bpf.c"), doing=f"compiling the fexit program on {fn}",
                     cflags=["-DHOOK_FEXIT", f"-DOPENAT_FN={fn}", f"-DSYSCALL_WRAPPER={int(is_syscall_wrapper(fn))}"])
    except CompileError as e:
        _FEXIT[fn] = (False, str(e))
        return _FEXIT[fn]
    try:
        with capture_stderr():  # libbpf's chatter is not the answer; the exception is
            b.load_func(f"kretfunc__{fn}", bcc.BPF.TRACING)
        result = (True, f"the fexit program on {fn} loaded")
    except Exception as e:  # bcc raises bare Exception
        why = str(e)
        if "super-user" in why:
            why = ("the kernel refused the BPF_PROG_TYPE_TRACING program (EPERM) although this process is root "
                   "(bcc words it 'Need super-user privileges')")
        result = (False, f"loading an fexit program on {fn} failed: {why}")
    finally:
        b.cleanup()
    _FEXIT[fn] = result
    return result


# -------------------------------------------------------- the tutorial's example
#: the kernel's own description of its types and functions (CONFIG_DEBUG_INFO_BTF)
VMLINUX_BTF = "/sys/kernel/btf/vmlinux"
#: the signature the tutorial's kprobe handler declares for blk_insert_cloned_request
TUTORIAL_SIGNATURE = "blk_insert_cloned_request(struct request_queue *q, struct request *rq, bool no_sg_merge)"


def _btf_type(dump: str, tid: int, depth: int = 0) -> str:
    """A BTF type id of ``bpftool btf dump`` (raw format) as C, e.g. ``const char *``."""
    if tid == 0:
        return "void"
    m = re.search(rf"^\[{tid}\] (\w+) '([^']*)'(.*)$", dump, re.M)
    if m is None or depth > 12:
        return f"<type {tid}>"
    kind, name, rest = m.group(1), m.group(2), m.group(3)
    inner = re.search(r"\btype_id=(\d+)", rest)
    if kind == "PTR":
        return _btf_type(dump, int(inner.group(1)), depth + 1) + " *" if inner else "void *"
    if kind in ("CONST", "VOLATILE", "RESTRICT"):
        q = {"CONST": "const", "VOLATILE": "volatile", "RESTRICT": ""}[kind]
        t = _btf_type(dump, int(inner.group(1)), depth + 1) if inner else "void"
        return f"{q} {t}".strip()
    if kind == "TYPE_TAG":
        return _btf_type(dump, int(inner.group(1)), depth + 1) if inner else "void"
    if kind in ("STRUCT", "UNION", "ENUM", "ENUM64"):
        return f"{kind.lower().rstrip('64')} {name}"
    if kind == "FWD":
        return f"{'union' if 'fwd_kind=union' in rest else 'struct'} {name}"
    if kind == "FUNC_PROTO":
        return "(a function pointer)"
    return name


def kernel_signature(function: str) -> Dict[str, Any]:
    """How the **running** kernel declares ``function``, read from its BTF with bpftool.

    Returns ``{"function", "signature", "source", "command"}``: ``signature`` is
    the C prototype (``None`` when the kernel has no such function, or no BTF —
    ``source`` then says which), ``command`` the shell command that shows the
    same by hand. The tutorial's handler declarations must match this, argument
    for argument: bcc maps the declared arguments onto the argument registers in
    order, whatever they are called.
    """
    command = (f"bpftool btf dump file {VMLINUX_BTF} | grep -A4 \"FUNC '{function}'\"  "
               "# then look up the FUNC_PROTO by its type_id")
    row: Dict[str, Any] = {"function": function, "signature": None, "source": "", "command": command}
    if not os.path.exists(VMLINUX_BTF):
        row["source"] = (f"this kernel has no BTF ({VMLINUX_BTF} is missing: CONFIG_DEBUG_INFO_BTF is off), so it "
                         "cannot describe its functions; read the signature in the kernel source of this exact "
                         "version (e.g. elixir.bootlin.com, or the headers package's include/ files)")
        return row
    try:
        dump = subprocess.run(["bpftool", "btf", "dump", "file", VMLINUX_BTF], capture_output=True, text=True,
                              timeout=120, check=True).stdout
    except (OSError, subprocess.SubprocessError) as e:
        row["source"] = f"bpftool could not read {VMLINUX_BTF}: {e}"
        return row
    m = re.search(rf"^\[\d+\] FUNC '{re.escape(function)}' type_id=(\d+)", dump, re.M)
    if m is None:
        row["source"] = f"{VMLINUX_BTF} has no function {function}: this kernel does not have it (or inlined it)"
        return row
    proto = re.search(rf"^\[{m.group(1)}\] FUNC_PROTO '[^']*' ret_type_id=(\d+) vlen=(\d+)\n((?:\t.*\n?)*)",
                      dump, re.M)
    if proto is None:
        row["source"] = f"{VMLINUX_BTF}: the prototype of {function} could not be read"
        return row
    params = re.findall(r"^\t'([^']*)' type_id=(\d+)", proto.group(3), re.M)
    args = ", ".join(f"{_btf_type(dump, int(t))} {n}".replace("* ", "*") for n, t in params) or "void"
    row["signature"] = f"{_btf_type(dump, int(proto.group(1)))} {function}({args})"
    row["source"] = f"BTF of the running kernel ({VMLINUX_BTF})"
    return row


def tutorial_example(seconds: float = 1.0, *, workload: bool = True) -> pd.DataFrame:
    """The tutorial's kprobe/kretprobe on ``blk_insert_cloned_request``, where possible.

    Always compiles the tutorial's program and loads it (the verifier accepts it).
    Then, if the kernel has kprobes and the function, attaches both probes for
    ``seconds`` while the openat workload does file I/O, and counts the calls.
    Returns one row of facts: function_in_kernel, kprobes, struct_reads_trustworthy,
    compiled, loaded, attached, calls, returned_ok, returned_error, why.
    """
    _kernel.require_root("running the tutorial's blk_insert_cloned_request example")
    _kernel.ensure_kernel_fs()
    info = prepare()
    bcc = import_bcc()
    fn = "blk_insert_cloned_request"
    in_kernel = bcc.BPF.ksymname(fn) != -1
    kprobes = _kernel.kprobes_available()
    row: Dict[str, Any] = {"function": fn, "function_in_kernel": in_kernel, "kprobes": kprobes,
                           "struct_reads_trustworthy": info.struct_reads_trustworthy, "compiled": False,
                           "loaded": False, "attached": False, "calls": None, "returned_ok": None,
                           "returned_error": None, "why": ""}
    b, _ = build(src_file=program_path("args_return_tutorial.bpf.c"),
                 doing="compiling the tutorial's blk_insert_cloned_request example")
    try:
        row["compiled"] = True
        for name in ("get_segments", "get_segments_res"):
            b.load_func(name, bcc.BPF.KPROBE)
        row["loaded"] = True
        if not kprobes:
            row["why"] = (f"{NO_KPROBES}, so the tutorial's "
                          "attach_kprobe/attach_kretprobe cannot be used here")
        elif not in_kernel:
            row["why"] = (f"this kernel has no function {fn} (/proc/kallsyms): it belongs to request-based "
                          "device-mapper, which this kernel does not build in")
        else:
            b.attach_kprobe(event=fn, fn_name="get_segments")
            b.attach_kretprobe(event=fn, fn_name="get_segments_res")
            row["attached"] = True
            proc = None
            if workload:
                proc = subprocess.Popen([binary("open_files"), "5"], stdout=subprocess.DEVNULL)
            time.sleep(seconds)
            if proc is not None:
                proc.wait(timeout=30)
            calls = b["calls"]
            row["calls"] = int(calls[0].value)
            row["returned_ok"] = int(calls[1].value)
            row["returned_error"] = int(calls[2].value)
            row["why"] = ("attached for real; it fires only when request-based device-mapper (dm-multipath) "
                          "hands a cloned request to a disk: ordinary file I/O on a disk without multipath never calls it"
                          if row["calls"] == 0 else "attached for real; it fired")
    finally:
        b.cleanup()
    df = pd.DataFrame([row])
    df.attrs["headers"] = info.detail
    return df


# ------------------------------------------------------------------ workload
def parse_open_report(text: str) -> pd.DataFrame:
    """The openat workload's record: pid, flags, result (fd or -errno), path; attrs['dir']."""
    rows = []
    folder = ""
    for line in text.splitlines():
        if line.startswith("dir "):
            folder = line[4:].strip()
            continue
        p = line.split(" ", 4)
        if len(p) == 5 and p[0] == "open":
            rows.append({"pid": int(p[1]), "flags": int(p[2]), "result": int(p[3]), "path": p[4]})
    df = pd.DataFrame(rows, columns=["pid", "flags", "result", "path"])
    df.attrs["dir"] = folder
    return df


# ------------------------------------------------------------- bpftrace beside bcc
_OPENER = "ebl-opener"  # the workload's comm (it renames itself before its first openat)


def bpftrace_program(kprobes: bool) -> Tuple[str, str]:
    """The lesson's question — openat()'s filename and flags in, its result out — as a bpftrace program.

    Returns ``(program, why)``: with kprobes, a kprobe + kretprobe on the openat
    function, as the tutorial does (on a syscall wrapper, openat's own arguments are
    the user registers behind ``arg0``); without, the syscall tracepoints
    ``sys_enter_openat`` / ``sys_exit_openat`` the lesson falls back to. Entry and
    return are joined per thread in bpftrace maps (``@path[tid]``), as the lesson's
    program joins them in a BPF hash. Only the workload's calls (comm ``ebl-opener``).
    """
    # the filename is read at return, from the pointer saved at entry (as bcc's opensnoop does): by then the
    # kernel has copied it, so its page is resident; read at entry, a page not yet faulted in reads as ""
    out = ('printf("%d\\t%d\\t%d\\t%s\\n", pid, @flags[tid], RET, str(uptr(@path[tid]))); '
           'delete(@path[tid]); delete(@flags[tid]);')
    end = "END { clear(@path); clear(@flags); }"
    if not kprobes:
        prog = ("tracepoint:syscalls:sys_enter_openat /comm == \"" + _OPENER + "\"/ "
                "{ @path[tid] = (uint64)args->filename; @flags[tid] = args->flags; } "
                "tracepoint:syscalls:sys_exit_openat /comm == \"" + _OPENER + "\"/ { "
                + out.replace("RET", "args->ret") + " } " + end)
        return prog, (f"{NO_KPROBES}, so the one-liner uses the tracepoints the lesson fell back to, "
                      "syscalls:sys_enter_openat (args->filename, args->flags) and sys_exit_openat (args->ret)")
    fn = syscall_fnname("openat")
    if is_syscall_wrapper(fn):
        regs = {"x86_64": ("si", "dx"), "aarch64": ("regs[1]", "regs[2]")}.get(os.uname().machine, ("si", "dx"))
        a1, a2 = (f"((struct pt_regs *)arg0)->{r}" for r in regs)
        why = (f"kprobe + kretprobe on {fn}, the tutorial's way; {fn} is a syscall wrapper, so openat()'s filename "
               "and flags are the user's registers behind its one argument (arg0, a struct pt_regs *); the result "
               "is retval")
    else:
        a1, a2 = "arg1", "arg2"
        why = f"kprobe + kretprobe on {fn}, the tutorial's way; arg1 and arg2 are openat()'s filename and flags"
    prog = (f"kprobe:{fn} /comm == \"{_OPENER}\"/ {{ @path[tid] = (uint64){a1}; @flags[tid] = (int32){a2}; }} "
            f"kretprobe:{fn} /comm == \"{_OPENER}\"/ {{ " + out.replace("RET", "(int32)retval") + " } " + end)
    return prog, why


def bpftrace_opens(*, kprobes: Optional[bool] = None, rounds: int = 5, seconds: float = 60.0) -> pd.DataFrame:
    """Run :func:`bpftrace_program` on a fresh run of the lesson's workload (bpftrace ``-c`` starts it).

    One row per openat() of the workload as bpftrace saw it: pid, flags, ret, filename.
    ``attrs``: ``report`` (the workload's own account, :func:`parse_open_report`), ``hook_note``
    (which hook and why, from the running kernel) and the runner's attrs (``command``, ...).
    """
    from .. import bpftrace

    if kprobes is None:
        kprobes = _kernel.kprobes_available()
    program, why = bpftrace_program(kprobes)
    # The workload's report goes to a file of its own: on bpftrace's stdout its lines could land inside
    # bpftrace's JSON lines. bpftrace's -c takes no shell, so a two-line script does the redirection.
    with tempfile.TemporaryDirectory(prefix="ebl-bt-open-") as tmp:
        script, report = os.path.join(tmp, "run.sh"), os.path.join(tmp, "report.txt")
        with open(script, "w") as f:
            f.write(f"#!/bin/sh\nexec {shlex.quote(binary('open_files'))} {int(rounds)} > {shlex.quote(report)} 2>&1\n")
        os.chmod(script, 0o755)
        os.chmod(tmp, 0o755)  # the workload's child runs as nobody and writes to the same report
        df = bpftrace.run(program, columns=["pid", "flags", "ret", "filename"], seconds=seconds,
                          command=["/bin/sh", script])
        with open(report) as f:
            text = f.read()
    rep = parse_open_report(text)
    folder = rep.attrs.get("dir", "")
    # the workload's own folder only: another ebl-opener elsewhere on the machine is not this run
    out = df[df["filename"].astype(str).str.startswith(folder + "/")].reset_index(drop=True) if folder else df.iloc[0:0]
    out.attrs.update(df.attrs)
    out.attrs["report"] = rep
    out.attrs["hook_note"] = why
    return out


def _relative(path: str) -> str:
    return re.sub(r"^.*/ebl-trace-open-[^/]+/", "", str(path))


def compare_with_bpftrace(check: pd.DataFrame, bt: pd.DataFrame) -> pd.DataFrame:
    """The workload's openat() calls as the lesson saw them beside bpftrace's, one row per call, in order.

    ``check`` is :meth:`ArgsReturnLesson.compare_with_workload`'s table; ``bt`` is
    :func:`bpftrace_opens`' frame. The two runs worked in their own folders, so calls
    are compared by the path inside the folder, the flags and the result the workload
    reported. Columns: path, flags_text, expected, bcc (the lesson saw it with that
    result), bpftrace (the one-liner did), agree.
    """
    rep = bt.attrs["report"]
    folder = rep.attrs.get("dir", "")
    mine = bt[bt["filename"].astype(str).str.startswith(folder + "/")] if folder else bt.iloc[0:0]
    at = match_in_order([(int(p), f, int(fl), int(r)) for p, f, fl, r in
                         zip(mine["pid"], mine["filename"], mine["flags"], mine["ret"])],
                        [(int(p), f, int(fl), int(r)) for p, f, fl, r in
                         zip(rep["pid"], rep["path"], rep["flags"], rep["result"])])
    theirs = [(_relative(p), open_flags_text(int(fl)), errno_name(int(r)) or "fd", j is not None)
              for p, fl, r, j in zip(rep["path"], rep["flags"], rep["result"], at)]
    # the lesson ran more rounds: compare the calls both runs made (the workload repeats the same round)
    lesson = [(_relative(p), ft, e, bool(ok)) for p, ft, e, ok in
              zip(check["path"], check["flags_text"], check["expected"], check["agree"])]
    rows = []
    for i in range(min(len(lesson), len(theirs))):
        a, b = lesson[i], theirs[i]
        same = a[:3] == b[:3]
        rows.append({"path": a[0], "flags_text": a[1], "expected": a[2], "bcc": a[3], "bpftrace": b[3],
                     "agree": bool(same and a[3] and b[3])})
    return pd.DataFrame(rows, columns=["path", "flags_text", "expected", "bcc", "bpftrace", "agree"])


class ArgsReturnLesson(SyscallLesson):
    """Arguments and return values of ``openat()``: one row per call, entry joined with return.

    >>> df = ArgsReturnLesson().run()
    >>> df.attrs["hooks"]     # kprobe/kretprobe, fentry/fexit, or the syscall tracepoints
    """

    id = "args-return"
    title = "03 · Arguments and return values: openat() in, fd or -errno out (kprobe/kretprobe, or fallbacks)"
    notebook = "03_args_return.ipynb"
    program = "args_return.bpf.c"
    workload_binaries = ("open_files",)
    syscall = "openat"
    variants = ("kprobe", "fexit", "tracepoint")
    entry_fn, return_fn = "on_openat_entry", "on_openat_return"
    params: ClassVar[Dict[str, Param]] = {
        "hook": Param("auto", "auto: kprobe+kretprobe if the kernel has kprobes, else fentry+fexit if it really "
                      "loads them, else the syscall tracepoints; or force kprobe / fexit / tracepoint",
                      choices=("auto", "kprobe", "fexit", "tracepoint")),
        "only_pid": Param(0, "0 for every process, else only this process id", min=0, max=1 << 22, cflag="ONLY_PID"),
        "rounds": Param(20, "how many times the workload opens its 8 paths", min=1, max=100_000),
    }
    columns = {
        "time": "wall-clock time openat() was entered (datetime64[ns])",
        "ts_ns": "bpf_ktime_get_ns() at entry: CLOCK_MONOTONIC nanoseconds (int64)",
        "pid": "process id (tgid) (int32)",
        "tid": "thread id (int32)",
        "comm": "process name (category)",
        "dfd": "directory fd a relative path starts from; -100 is AT_FDCWD (int32)",
        "filename": "the path passed to openat(), first 255 bytes (object)",
        "flags": "the O_* flags (int32)",
        "flags_text": "the flags by name, e.g. O_WRONLY|O_CREAT (category)",
        "mode": "permissions given with O_CREAT (uint32)",
        "ret": "openat()'s result from the return hook: an fd, or -errno (int64)",
        "fd": "the file descriptor when the call succeeded, else <NA> (Int64)",
        "error": "errno name when it failed, e.g. ENOENT; '' when it succeeded (category)",
        "latency_us": "time spent inside openat(), entry to return, in microseconds (float64)",
        "hook": "the entry + return hooks that saw the call (category)",
    }
    default_seconds = 2.0

    def fexit_check(self, fn: str) -> Tuple[bool, str]:
        return fexit_loads(fn)

    # ---------------------------------------------------- workload
    def start_workload(self, rounds: Optional[int] = None) -> Workload:
        n = int(rounds or self.values["rounds"])
        self._report = None
        exe = binary("open_files")
        proc = subprocess.Popen([exe, str(n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return Workload(f"ebl-opener: {n} round(s) of 8 openat() calls on known paths in /tmp/ebl-trace-open-*, "
                        "6 of them failing (ENOENT, EISDIR, ENOTDIR, EEXIST, ELOOP, EACCES)",
                        proc, time.monotonic(), {"comm": "ebl-opener", "executable": exe, "rounds": n})

    def expected_workload_seconds(self) -> float:
        return 0.2 + self.values["rounds"] * 0.005

    def workload_report(self) -> pd.DataFrame:
        """What the workload opened and what it got: pid, flags, result (fd or -errno), path.

        ``attrs['dir']`` is the folder it worked in (unique per run).
        """
        if self._report is None:
            self._report = parse_open_report(self._workload_output())
        return self._report

    def compare_with_workload(self, df: pd.DataFrame) -> pd.DataFrame:
        """Each openat() the workload made, beside what BPF saw for it (matched in order).

        Columns: path, flags_text, result (the workload's), ret (BPF's), seen, agree.
        """
        rep = self.workload_report().copy()
        folder = rep.attrs.get("dir", "")
        mine = df[df["filename"].str.startswith(folder + "/")] if folder else df.iloc[0:0]
        rets_seen = list(mine["ret"])
        at = match_in_order(list(zip(mine["pid"], mine["filename"], mine["flags"])),
                            list(zip(rep["pid"], rep["path"], rep["flags"])))
        rets = [None if j is None else int(rets_seen[j]) for j in at]
        found = [j is not None for j in at]
        rep["flags_text"] = [open_flags_text(f) for f in rep["flags"]]
        rep["ret"] = pd.array(rets, dtype="Int64")
        rep["seen"] = found
        rep["agree"] = rep["seen"] & (rep["ret"] == rep["result"]).fillna(False)
        rep["expected"] = [errno_name(int(r)) or "fd" for r in rep["result"]]
        return rep[["pid", "path", "flags_text", "result", "expected", "ret", "seen", "agree"]]

    def describe(self, elapsed: float = 0.0) -> Dict[str, Any]:
        d = super().describe(elapsed)
        d["headers"] = headers_info().status
        return d

    # ------------------------------------------------------- frame
    def to_frame(self, arr: np.ndarray) -> pd.DataFrame:
        n = len(arr)
        ts = arr["ts_ns"].astype(np.int64)  # each field is taken once (arr may be the engine's ChunkedRecords)
        ret = arr["ret"].astype(np.int64)
        flags = arr["flags"].astype(np.int32)
        uflags, inv = np.unique(flags, return_inverse=True) if n else (np.empty(0, np.int32), np.empty(0, np.int64))
        flag_cats = [open_flags_text(int(f)) for f in uflags]
        hook = " + ".join(h.name for h in self.hooks)
        fd = pd.array(np.where(ret >= 0, ret, 0), dtype="Int64")
        fd[ret < 0] = pd.NA
        df = pd.DataFrame(
            {
                "time": wall_clock(ts) if n else np.empty(0, "datetime64[ns]"),
                "ts_ns": ts,
                "pid": arr["pid"].astype(np.int32),
                "tid": arr["tid"].astype(np.int32),
                "comm": bytes_to_category(arr["comm"]) if n else pd.Categorical([]),
                "dfd": arr["dfd"].astype(np.int32),
                "filename": pd.Series([b.split(b"\0", 1)[0].decode("utf-8", "replace") for b in arr["filename"]],
                                      dtype=object),
                "flags": flags,
                "flags_text": pd.Categorical([flag_cats[i] for i in inv]) if n else pd.Categorical([]),
                "mode": arr["mode"].astype(np.uint32),
                "ret": ret,
                "fd": fd,
                "error": pd.Categorical([errno_name(int(r)) for r in ret]),
                "latency_us": arr["latency_ns"].astype(np.float64) / 1000.0,
                "hook": pd.Categorical([hook] * n),
            }
        )
        return df.sort_values("ts_ns", kind="stable").reset_index(drop=True)


class UprobeArgsReturnLesson(ReportingLesson):
    """Arguments and return values of user-space functions: uprobes + uretprobes.

    Probes libc's ``strtol(nptr, endptr, base)`` (every process on the machine) and
    ``ebl_collatz(label, n)`` in the lab's small program. One row per call.

    >>> df = UprobeArgsReturnLesson().run()
    """

    id = "args-return-uprobes"
    title = "03 · Arguments and return values in user space: uprobes on strtol() and a program's own function"
    notebook = "03_args_return.ipynb"
    program = "args_return_uprobe.bpf.c"
    params: ClassVar[Dict[str, Param]] = {
        "only_pid": Param(0, "0 for every process, else only this process id", min=0, max=1 << 22, cflag="ONLY_PID"),
        "rounds": Param(1, "how many times the workload repeats its calls", min=1, max=100_000),
    }
    columns = {
        "time": "wall-clock time the function was entered (datetime64[ns])",
        "ts_ns": "bpf_ktime_get_ns() at entry (int64)",
        "pid": "process id (tgid) (int32)",
        "tid": "thread id (int32)",
        "comm": "process name (category)",
        "function": "strtol or ebl_collatz (category)",
        "text_arg": "the string argument: strtol's nptr, ebl_collatz's label (object)",
        "int_arg": "the integer argument: strtol's base, ebl_collatz's n (int64)",
        "ret": "the function's return value, from the uretprobe (int64)",
        "latency_us": "time spent in the call, entry to return, in microseconds (float64)",
        "hook": "the uprobe + uretprobe that saw the call (category)",
    }
    FUNCTIONS = ("strtol", "ebl_collatz")
    default_seconds = 2.0

    def target_program(self) -> str:
        """The lab's small program (built on first use) whose ebl_collatz is probed."""
        return binary("argsret_target")

    def select_hooks(self) -> List[Hook]:
        t = _kernel.tracefs()
        if not (t and os.path.exists(os.path.join(t, "uprobe_events"))):
            raise FeatureUnavailable("uprobes", f"preparing lesson {self.id}: this kernel has no uprobes "
                                     "(CONFIG_UPROBE_EVENTS: no uprobe_events in tracefs)")
        bcc = import_bcc()
        libc = bcc.BPF.find_library("c")
        libc = libc.decode() if isinstance(libc, bytes) else libc
        if not libc:
            raise FeatureUnavailable("libc", f"preparing lesson {self.id}: bcc cannot find the C library (libc.so.6)")
        prog = self.target_program()
        return [Hook("uprobe", f"{libc}:strtol", "on_strtol_entry"), Hook("uretprobe", f"{libc}:strtol", "on_strtol_return"),
                Hook("uprobe", f"{prog}:ebl_collatz", "on_collatz_entry"),
                Hook("uretprobe", f"{prog}:ebl_collatz", "on_collatz_return")]

    def start_workload(self, rounds: Optional[int] = None) -> Workload:
        n = int(rounds or self.values["rounds"])
        self._report = None
        exe = self.target_program()
        proc = subprocess.Popen([exe, str(n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return Workload(f"ebl-argsret: {n} round(s) of 8 strtol() and 8 ebl_collatz() calls with known arguments",
                        proc, time.monotonic(), {"comm": "ebl-argsret", "executable": exe, "rounds": n})

    def expected_workload_seconds(self) -> float:
        return 0.2

    def workload_report(self) -> pd.DataFrame:
        """What the program called and what it got: function, int_arg, result, text_arg."""
        if self._report is None:
            rows = []
            for line in self._workload_output().splitlines():
                p = line.split(" ", 3)
                if len(p) == 4 and p[0] in self.FUNCTIONS:
                    rows.append({"function": p[0], "int_arg": int(p[1]), "result": int(p[2]), "text_arg": p[3]})
            self._report = pd.DataFrame(rows, columns=["function", "int_arg", "result", "text_arg"])
        return self._report

    def compare_with_workload(self, df: pd.DataFrame) -> pd.DataFrame:
        """Each call the program made, beside what the uprobes saw (matched in order)."""
        rep = self.workload_report().copy()
        wl = self.workload
        mine = df[df["pid"] == wl.pid] if wl is not None else df.iloc[0:0]
        rets_seen = list(mine["ret"])
        at = match_in_order(list(zip(mine["function"].astype(str), mine["text_arg"], mine["int_arg"])),
                            list(zip(rep["function"], rep["text_arg"], rep["int_arg"])))
        rets = [None if j is None else int(rets_seen[j]) for j in at]
        found = [j is not None for j in at]
        rep["ret"] = pd.array(rets, dtype="Int64")
        rep["seen"] = found
        rep["agree"] = rep["seen"] & (rep["ret"] == rep["result"]).fillna(False)
        return rep[["function", "text_arg", "int_arg", "result", "ret", "seen", "agree"]]

    def to_frame(self, arr: np.ndarray) -> pd.DataFrame:
        n = len(arr)
        ts = arr["ts_ns"].astype(np.int64)  # each field is taken once (arr may be the engine's ChunkedRecords)
        hooks = {0: self.hooks[0].name + " + uretprobe", 1: self.hooks[2].name + " + uretprobe"} if self.hooks else {}
        fn = arr["fn"].astype(np.int64)
        df = pd.DataFrame(
            {
                "time": wall_clock(ts) if n else np.empty(0, "datetime64[ns]"),
                "ts_ns": ts,
                "pid": arr["pid"].astype(np.int32),
                "tid": arr["tid"].astype(np.int32),
                "comm": bytes_to_category(arr["comm"]) if n else pd.Categorical([]),
                "function": pd.Categorical([self.FUNCTIONS[int(f)] for f in fn], categories=list(self.FUNCTIONS)),
                "text_arg": pd.Series([b.split(b"\0", 1)[0].decode("utf-8", "replace") for b in arr["text"]], dtype=object),
                "int_arg": arr["int_arg"].astype(np.int64),
                "ret": arr["ret"].astype(np.int64),
                "latency_us": arr["latency_ns"].astype(np.float64) / 1000.0,
                "hook": pd.Categorical([hooks.get(int(f), "") for f in fn]),
            }
        )
        return df.sort_values("ts_ns", kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------- plots
def plot_latency(df: pd.DataFrame, ax: Any = None) -> Any:
    """openat() latency by result: one row per outcome (success, each errno), log time axis.

    Each call is a dot (jittered vertically); the box spans the middle half, the bar is the median.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.8))
    if len(df) == 0:
        ax.set_title("openat() latency — no calls were seen")
        ax.set_axis_off()
        return ax
    outcome = df["error"].astype(str).replace("", "success (fd)")
    names = sorted(outcome.unique(), key=lambda s: (s != "success (fd)", s))
    data = [df.loc[outcome == n, "latency_us"].clip(lower=0.01).to_numpy() for n in names]
    rng = np.random.default_rng(0)
    for i, d in enumerate(data):
        ax.scatter(d, i + rng.uniform(-0.25, 0.25, len(d)), s=6, alpha=0.35,
                   color="tab:blue" if i == 0 else "tab:red", zorder=2)
    ax.boxplot(data, positions=range(len(names)), vert=False, widths=0.6, showfliers=False,
               medianprops={"color": "black", "linewidth": 2}, zorder=3)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels([f"{n} ({len(d):,})" for n, d in zip(names, data)])
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlabel("time inside openat(), entry to return (µs, log scale)")
    ax.set_ylabel("result (calls)")
    ax.set_title(f"openat() latency by result: {len(df):,} calls, entry joined to return per thread")
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_errors(df: pd.DataFrame, ax: Any = None) -> Any:
    """Bar chart: failed openat() calls by errno, with the calls' median latency."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    failed = df[df["ret"] < 0]
    if len(failed) == 0:
        ax.set_title("openat() errors — every call succeeded")
        ax.set_axis_off()
        return ax
    g = failed.groupby(failed["error"].astype(str)).agg(calls=("ret", "size"), median_us=("latency_us", "median"))
    g = g.sort_values("calls", ascending=True)
    bars = ax.barh(g.index, g["calls"], color="tab:red", alpha=0.75)
    for bar, med in zip(bars, g["median_us"]):
        ax.annotate(f"median {med:.1f} µs", (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                    xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_xlabel("failed openat() calls")
    ax.set_ylabel("errno (from the return value, -errno)")
    ax.set_title(f"Why openat() failed: {len(failed):,} of {len(df):,} calls")
    ax.margins(x=0.25)
    return ax


def plot_uprobe_calls(df: pd.DataFrame, axes: Any = None) -> Any:
    """ebl_collatz: latency against n (arguments in, return value printed); strtol: text -> value."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    col = df[df["function"] == "ebl_collatz"]
    ax = axes[0]
    if len(col):
        ax.scatter(col["int_arg"], col["latency_us"], color="tab:blue")
        for i, (n, lat, r) in enumerate(zip(col["int_arg"], col["latency_us"], col["ret"])):
            ax.annotate(f"{r} steps", (n, lat), xytext=(0, 8 if i % 2 == 0 else -14), ha="center",
                        textcoords="offset points", fontsize=7)
        ax.set_xscale("symlog")
        ax.set_ylim(0, col["latency_us"].max() * 1.3)
    ax.set_xlabel("argument n of ebl_collatz(label, n) (symlog)")
    ax.set_ylabel("time in the call, entry to return (µs)")
    ax.set_title("ebl_collatz: n in, steps out (labels), time spent")
    ax = axes[1]
    st = df[df["function"] == "strtol"].drop_duplicates(["text_arg", "int_arg"]).head(12)
    if len(st):
        labels = [f'strtol("{t}", base {b})' for t, b in zip(st["text_arg"], st["int_arg"])]
        ax.barh(labels, st["ret"], color="tab:green")
        for i, v in enumerate(st["ret"]):
            ax.annotate(str(v), (v, i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        ax.invert_yaxis()
    ax.set_xlabel("return value (long)")
    ax.set_title("libc strtol(): string and base in, number out")
    return axes
