"""Lesson 01 — hello kill: who sends kill? A kprobe on the kill syscall, or its tracepoints.

Notebook: ``notebooks/01_hello_kill.ipynb``. Programs:

- ``hello_kill_tutorial.bpf.c``: the tutorial's ``hello_world`` with ``bpf_trace_printk``
  (run it with :func:`run_tutorial`),
- ``hello_kill.bpf.c``: one body, two ways in: ``-DHOOK_KPROBE`` compiles
  kprobe + kretprobe entry points for the kill syscall's kernel function,
  ``-DHOOK_TRACEPOINT`` the same on the tracepoints ``syscalls:sys_enter_kill`` /
  ``sys_exit_kill``, for kernels without kprobes.

Both variants fill the same event, so :class:`HelloKillLesson` gives the same
DataFrame whichever hook the kernel allowed; ``df.attrs['hooks']`` names it.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from typing import Any, ClassVar, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from .. import _kernel
from .._bcc import import_bcc
from .._workloads import binary
from ..engine import Param, Workload, bytes_to_category, match_in_order, wall_clock
from ._syscall import NO_KPROBES, SyscallLesson, errno_name, is_syscall_wrapper, syscall_fnname

__all__ = [
    "HelloKillLesson",
    "syscall_fnname",
    "is_syscall_wrapper",
    "search_traceable",
    "run_tutorial",
    "signal_name",
    "errno_name",
    "plot_who_kills_whom",
    "bcc_module",
    "workload_command",
    "bpftrace_program",
    "bpftrace_kills",
    "compare_with_bpftrace",
]

#: pid the workload signals to get ESRCH: above the kernel's PID_MAX_LIMIT (4194304)
NO_SUCH_PID = 99999999


def bcc_module() -> Any:
    """The operating system's bcc module (Debian's ``python3-bpfcc`` installs it as ``bcc``).

    Afterwards ``from bcc import BPF`` works in this interpreter, even in a venv.
    """
    return import_bcc()


def signal_name(sig: int) -> str:
    """``15`` -> ``SIGTERM``; ``0`` -> ``0 (check)``: kill(pid, 0) only checks the pid exists."""
    if sig == 0:
        return "0 (check)"
    try:
        return signal.Signals(sig).name
    except ValueError:
        rtmin, rtmax = int(signal.SIGRTMIN), int(signal.SIGRTMAX)
        if rtmin < sig < rtmax:
            return f"SIGRTMIN+{sig - rtmin}"
        return f"invalid ({sig})"


# ----------------------------------------------------------- finding hooks
def search_traceable(pattern: str = "kill", *, use_bpftrace: bool = True) -> pd.DataFrame:
    """Where could a program hook ``pattern``? Searches what the tutorial searches.

    - ``/proc/kallsyms``: kernel functions (kprobe candidates; "不一定都可以追踪",
      not all of them can be traced),
    - ``available_filter_functions`` (tracefs): the functions ftrace can trace —
      the function tracer's and fentry/fexit's list. kprobes do not need it: they can
      attach to most kernel functions in kallsyms, listed here or not, except those
      the kernel protects (``/sys/kernel/debug/kprobes/blacklist``),
    - ``available_events`` (tracefs): tracepoints,
    - ``bpftrace -l '*PATTERN*'`` when bpftrace is installed.

    Returns one row per (source, name): source, kind, name, probe (how bpftrace /
    bcc would name the hook). ``attrs['notes']`` says which sources could not be read
    and why; ``attrs['kprobes_available']`` whether this kernel has kprobes at all.
    """
    rx = re.compile(pattern)
    rows: List[Dict[str, Any]] = []
    notes: Dict[str, str] = {}
    _kernel.ensure_kernel_fs()
    kprobes = _kernel.kprobes_available()

    # /proc/kallsyms: "address type name [module]"; T/t are functions (text).
    dropped = 0
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3 or parts[1] not in ("T", "t") or not rx.search(parts[2]):
                    continue
                name = parts[2]
                if name.startswith("__pfx_") or "." in name:
                    dropped += 1  # padding symbols and compiler-split parts (.cold, .isra, ...)
                    continue
                rows.append({"source": "/proc/kallsyms", "kind": "kernel function", "name": name,
                             "probe": f"kprobe:{name}", "module": parts[3].strip("[]") if len(parts) > 3 else ""})
        if dropped:
            notes["/proc/kallsyms"] = (f"{dropped} symbols left out: __pfx_* padding and compiler-made parts "
                                       "(name.cold, name.isra.0, ...), which are not functions one traces")
    except OSError as e:
        notes["/proc/kallsyms"] = f"not readable: {e.strerror}"

    t = _kernel.tracefs()
    if t is None:
        notes["tracefs"] = "tracefs is not mounted (and could not be mounted): no available_events"
    else:
        path = os.path.join(t, "available_filter_functions")
        try:
            with open(path) as f:
                for line in f:
                    name = line.split()[0] if line.strip() else ""
                    if name and rx.search(name):
                        rows.append({"source": "available_filter_functions", "kind": "ftrace-traceable function",
                                     "name": name, "probe": f"kprobe:{name}",
                                     "module": line.split()[1].strip("[]") if len(line.split()) > 1 else ""})
        except OSError as e:
            notes["available_filter_functions"] = (
                f"{path} is not readable here ({e.strerror}): this kernel does not say which functions "
                "ftrace (and so fentry/fexit) can trace")
        with open(os.path.join(t, "available_events")) as f:
            for line in f:
                tp = line.strip()
                if tp and rx.search(tp):
                    rows.append({"source": "available_events", "kind": "tracepoint", "name": tp,
                                 "probe": f"tracepoint:{tp}", "module": ""})

    exe = shutil.which("bpftrace") if use_bpftrace else None
    if use_bpftrace and exe is None:
        notes["bpftrace"] = "bpftrace is not installed (sudo apt-get install bpftrace)"
    elif exe is not None:
        glob = f"*{pattern}*" if re.fullmatch(r"[\w]+", pattern) else "*"
        try:
            r = subprocess.run([exe, "-l", glob], capture_output=True, text=True, timeout=60)
            for line in r.stdout.splitlines():
                kind, _, name = line.strip().partition(":")
                if not name or not rx.search(name):
                    continue
                rows.append({"source": "bpftrace -l", "kind": kind, "name": name, "probe": line.strip(), "module": ""})
            warn = " ".join(ln.strip() for ln in r.stderr.splitlines() if ln.strip())
            if warn:
                notes["bpftrace"] = f"bpftrace -l '{glob}' said: {warn}"
        except subprocess.TimeoutExpired:
            notes["bpftrace"] = f"bpftrace -l '{glob}' took more than 60 s; skipped"
    if not kprobes:
        notes["kprobes"] = (f"{NO_KPROBES}, so none of the kernel functions above can be hooked; tracepoints can")
    df = pd.DataFrame(rows, columns=["source", "kind", "name", "probe", "module"])
    df.attrs["notes"] = notes
    df.attrs["kprobes_available"] = kprobes
    df.attrs["pattern"] = pattern
    return df


# --------------------------------------------------- the tutorial, as written
def run_tutorial(seconds: float = 2.0, *, max_lines: int = 20, workload: bool = True,
                 echo: bool = True) -> pd.DataFrame:
    """Run the tutorial's hello-world program and print its ``trace_fields`` output.

    The tutorial attaches ``hello_world`` with a kprobe on ``__x64_sys_kill``. Here the
    name comes from :func:`syscall_fnname`; on a kernel without kprobes the same
    function is attached to the tracepoint ``syscalls:sys_enter_kill`` instead
    (``attrs['hook']`` says which, ``attrs['note']`` why). The lesson's kill
    workload triggers it. Reads for at most ``seconds`` (no ``while 1:``), detaches.
    """
    from ..tutorial import run_trace_printk

    fn = syscall_fnname("kill")
    if _kernel.kprobes_available():
        hook, note = f"kprobe:{fn}", ""

        def attach(b: Any) -> None:
            b.attach_kprobe(event=fn, fn_name="hello_world")
    else:
        hook = "tracepoint:syscalls:sys_enter_kill"
        note = (f"{NO_KPROBES}, so the tutorial's "
                f"attach_kprobe(event=\"{fn}\") cannot work; hello_world runs on the tracepoint "
                "syscalls:sys_enter_kill instead, which fires at the same moment: entry to kill()")

        def attach(b: Any) -> None:
            b.attach_tracepoint(tp="syscalls:sys_enter_kill", fn_name="hello_world")

    if echo and note:
        print(f"note: {note}\n")
    start = (lambda: _start_kill_workload(5)[0]) if workload else None
    df = run_trace_printk("hello_kill_tutorial.bpf.c", attach, seconds=seconds, max_lines=max_lines,
                          workload=start, echo=echo)
    df.attrs["hook"] = hook
    df.attrs["note"] = note
    return df


# ------------------------------------------------------------- the workload
def _start_kill_workload(pause_ms: int) -> tuple:
    argv = workload_command(pause_ms)
    exe = argv[0]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, exe


def workload_command(pause_ms: int = 5) -> List[str]:
    """The lesson's kill workload as an argv (built on first use): ``ebl-killer PAUSE_MS``.

    It starts two victims, sends them 9 kills ``pause_ms`` apart and prints each
    (``kill TARGET SIGNAL RESULT``); :func:`parse_kill_report` reads that back.
    """
    return [binary("kill_victims"), str(int(pause_ms))]


def parse_kill_report(text: str) -> pd.DataFrame:
    """The workload's own record of what it sent: target_pid, signal, result (0 or -errno)."""
    rows = []
    for line in text.splitlines():
        p = line.split()
        if len(p) == 4 and p[0] == "kill":
            rows.append({"target_pid": int(p[1]), "signal": int(p[2]), "result": int(p[3])})
    return pd.DataFrame(rows, columns=["target_pid", "signal", "result"])


# --------------------------------------------------------------- the lesson
class HelloKillLesson(SyscallLesson):
    """Who sends kill? One row per kill() system call: sender, target, signal, result.

    >>> df = HelloKillLesson().run()
    >>> df.attrs["hooks"]        # which hook this kernel allowed
    """

    id = "hello-kill"
    title = "01 · Hello kill: who sends kill? (kprobe, or syscall tracepoints)"
    notebook = "01_hello_kill.ipynb"
    program = "hello_kill.bpf.c"
    workload_binaries = ("kill_victims",)
    syscall = "kill"
    variants = ("kprobe", "tracepoint")
    entry_fn, return_fn = "on_kill_entry", "on_kill_return"
    report_timeout_s = 30.0
    params: ClassVar[Dict[str, Param]] = {
        "hook": Param("auto", "auto: kprobe + kretprobe where the kernel has kprobes, else the syscall tracepoints; "
                      "or force kprobe / tracepoint", choices=("auto", "kprobe", "tracepoint")),
        "only_pid": Param(0, "0 for every sender, else only kills sent by this process id", min=0, max=1 << 22,
                          cflag="ONLY_PID"),
        "pause_ms": Param(20, "the workload's pause between two kills, in milliseconds", min=0, max=5000),
    }
    columns = {
        "time": "wall-clock time kill() was entered (datetime64[ns])",
        "ts_ns": "bpf_ktime_get_ns() at entry: CLOCK_MONOTONIC nanoseconds (int64)",
        "sender_pid": "process id (tgid) that called kill() (int32)",
        "sender_tid": "thread that called it (int32)",
        "sender_comm": "name of the sending process (category)",
        "target_pid": "kill()'s pid argument: >0 a process, 0 the sender's group, -1 all, <-1 group -pid (int32)",
        "signal": "kill()'s signal number; 0 only checks that the target exists (int32)",
        "signal_name": "the signal's name, e.g. SIGTERM (category)",
        "ret": "kill()'s result from the return hook: 0, or -errno (int64)",
        "error": "errno name of a failed kill, e.g. ESRCH; '' when it succeeded (category)",
        "latency_us": "time spent in kill(), entry to return, in microseconds (float64)",
        "hook": "the entry + return hooks that saw the call (category)",
    }
    default_seconds = 5.0

    # ---------------------------------------------------------- workload
    def start_workload(self, pause_ms: Optional[int] = None) -> Workload:
        ms = int(self.values["pause_ms"] if pause_ms is None else pause_ms)
        self._report = None
        proc, exe = _start_kill_workload(ms)
        return Workload(f"ebl-killer: starts 2 ebl-victim processes and sends 9 kills (one to pid {NO_SUCH_PID}, "
                        f"which does not exist), {ms} ms apart", proc, time.monotonic(),
                        {"comm": "ebl-killer", "executable": exe, "no_such_pid": NO_SUCH_PID})

    def expected_workload_seconds(self) -> float:
        return 0.1 + 9 * self.values["pause_ms"] / 1000

    def workload_report(self) -> pd.DataFrame:
        """What the workload says it sent and what each kill() returned (after it ended).

        Columns: target_pid, signal, result (0 or -errno). ``attrs['victims']``: the
        two victim pids.
        """
        if self._report is None:
            out = self._workload_output()
            rep = parse_kill_report(out)
            m = re.search(r"^victims (\d+) (\d+)$", out, re.M)
            rep.attrs["victims"] = [int(m.group(1)), int(m.group(2))] if m else []
            self._report = rep
        return self._report

    def compare_with_workload(self, df: pd.DataFrame) -> pd.DataFrame:
        """Each kill the workload sent, beside what BPF saw for it (matched in order).

        Columns: target_pid, signal, signal_name, result (the workload's), ret (BPF's),
        seen (a matching row exists), agree (seen and ret == result).
        """
        rep = self.workload_report().copy()
        wl = self.workload
        mine = df[df["sender_pid"] == wl.pid] if wl is not None else df.iloc[0:0]
        rets_seen = list(mine["ret"])
        at = match_in_order(list(zip(mine["target_pid"], mine["signal"])), list(zip(rep["target_pid"], rep["signal"])))
        rets = [None if j is None else int(rets_seen[j]) for j in at]
        found = [j is not None for j in at]
        rep["signal_name"] = [signal_name(s) for s in rep["signal"]]
        rep["ret"] = pd.array(rets, dtype="Int64")
        rep["seen"] = found
        rep["agree"] = rep["seen"] & (rep["ret"] == rep["result"]).fillna(False)
        return rep[["target_pid", "signal", "signal_name", "result", "ret", "seen", "agree"]]

    # ------------------------------------------------------------- frame
    def to_frame(self, arr: np.ndarray) -> pd.DataFrame:
        n = len(arr)
        ts = arr["ts_ns"].astype(np.int64)  # each field is taken once (arr may be the engine's ChunkedRecords)
        ret = arr["ret"].astype(np.int64)
        sig = arr["sig"].astype(np.int32)
        hook = " + ".join(h.name for h in self.hooks)
        df = pd.DataFrame(
            {
                "time": wall_clock(ts) if n else np.empty(0, "datetime64[ns]"),
                "ts_ns": ts,
                "sender_pid": arr["sender_pid"].astype(np.int32),
                "sender_tid": arr["sender_tid"].astype(np.int32),
                "sender_comm": bytes_to_category(arr["sender_comm"]) if n else pd.Categorical([]),
                "target_pid": arr["target_pid"].astype(np.int32),
                "signal": sig,
                "signal_name": pd.Categorical([signal_name(int(s)) for s in sig]),
                "ret": ret,
                "error": pd.Categorical([errno_name(int(r)) for r in ret]),
                "latency_us": arr["latency_ns"].astype(np.float64) / 1000.0,
                "hook": pd.Categorical([hook] * n),
            }
        )
        return df.sort_values("ts_ns", kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------- plots
def plot_who_kills_whom(df: pd.DataFrame, ax: Any = None) -> Any:
    """A timeline: one marker per kill(), at (time, target), coloured by signal; failures crossed.

    The y axis lists targets as ``pid``; each marker is labelled with the sender's name.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.5))
    if len(df) == 0:
        ax.set_title("Who sends kill? — no kill() calls were seen")
        ax.set_axis_off()
        return ax
    t0 = df["ts_ns"].min()
    x = (df["ts_ns"] - t0) / 1e6
    targets = sorted(df["target_pid"].unique())
    ypos = {p: i for i, p in enumerate(targets)}
    y = df["target_pid"].map(ypos)
    names = list(dict.fromkeys(df["signal_name"].astype(str)))
    cmap = plt.get_cmap("tab10")
    for i, name in enumerate(names):
        sel = (df["signal_name"].astype(str) == name).to_numpy()
        ok = sel & (df["ret"] == 0).to_numpy()
        bad = sel & (df["ret"] != 0).to_numpy()
        ax.scatter(x[ok], y[ok], color=cmap(i % 10), s=70, label=name, zorder=3)
        if bad.any():
            ax.scatter(x[bad], y[bad], color=cmap(i % 10), marker="X", s=110, zorder=3,
                       label=f"{name} (failed: {', '.join(sorted(set(df['error'][bad].astype(str))))})")
    for xi, yi, comm in zip(x, y, df["sender_comm"].astype(str)):
        ax.annotate(comm, (xi, yi), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=7)
    ax.set_yticks(range(len(targets)))
    ax.set_yticklabels([f"pid {p}" for p in targets])
    ax.set_ylim(-0.7, len(targets) - 0.3)
    ax.set_xlabel("time since the first kill() (ms)")
    ax.set_ylabel("target of kill()")
    ax.set_title("Who sends kill? One marker per kill() call (label: sender; X: the call failed)")
    ax.legend(title="signal", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", alpha=0.3)
    return ax


# ------------------------------------------------------------- bpftrace beside bcc
def bpftrace_program(kprobes: bool) -> Tuple[str, str]:
    """The lesson's question as a bpftrace one-liner on the hook the lesson would use, and why that hook.

    With kprobes: a kprobe on the kill function (a syscall wrapper on x86-64 and arm64
    since 4.17: kill's own arguments are in the user registers behind ``arg0``).
    Without: the tracepoint ``syscalls:sys_enter_kill``, as the lesson itself falls back.
    Only the workload's kills are printed (``pid == cpid``: bpftrace's ``-c`` child).
    """
    fmt = 'printf("%d\\t%d\\t%s\\n", '
    if not kprobes:
        return ("tracepoint:syscalls:sys_enter_kill /pid == cpid/ { " + fmt + "args->pid, args->sig, comm); }",
                f"{NO_KPROBES}, so the one-liner uses the lesson's fallback hook, the tracepoint "
                "syscalls:sys_enter_kill, whose fields args->pid and args->sig are kill()'s arguments")
    fn = syscall_fnname("kill")
    if is_syscall_wrapper(fn):
        regs = {"x86_64": ("di", "si"), "aarch64": ("regs[0]", "regs[1]")}.get(os.uname().machine, ("di", "si"))
        a0, a1 = (f"((struct pt_regs *)arg0)->{r}" for r in regs)
        why = (f"kprobe on {fn}, the tutorial's hook; {fn} is a syscall wrapper, so kill()'s pid and sig are "
               "the user's registers behind its one argument (arg0, a struct pt_regs *)")
    else:
        a0, a1 = "arg0", "arg1"
        why = f"kprobe on {fn}, the tutorial's hook; its arguments arg0 and arg1 are kill()'s pid and sig"
    return f"kprobe:{fn} /pid == cpid/ {{ " + fmt + f"(int32){a0}, (int32){a1}, comm); }}", why


def bpftrace_kills(*, kprobes: Optional[bool] = None, pause_ms: int = 5, seconds: float = 60.0) -> pd.DataFrame:
    """Run :func:`bpftrace_program` on a fresh run of the lesson's workload (bpftrace ``-c``).

    One row per kill the workload sent, as bpftrace saw it: target_pid, signal, comm.
    ``attrs``: ``report`` (the workload's own account, :func:`parse_kill_report`, with
    ``attrs['victims']``), ``hook_note`` (which hook and why), and the runner's attrs
    (``command`` to type in a shell, ``stopped_by``, ...).
    """
    from .. import bpftrace

    if kprobes is None:
        kprobes = _kernel.kprobes_available()
    program, why = bpftrace_program(kprobes)
    df = bpftrace.run(program, columns=["target_pid", "signal", "comm"], seconds=seconds,
                      command=workload_command(pause_ms))
    out = df.attrs["command_output"]
    rep = parse_kill_report(out)
    m = re.search(r"^victims (\d+) (\d+)$", out, re.M)
    rep.attrs["victims"] = [int(m.group(1)), int(m.group(2))] if m else []
    df.attrs["report"] = rep
    df.attrs["hook_note"] = why
    return df


def _role(pid: int, victims: List[int]) -> str:
    return f"victim {victims.index(pid) + 1}" if pid in victims else f"pid {pid}"


def compare_with_bpftrace(check: pd.DataFrame, victims: List[int], bt: pd.DataFrame) -> pd.DataFrame:
    """The workload's kills as the lesson saw them beside bpftrace's, one row per kill, in order.

    ``check`` is :meth:`HelloKillLesson.compare_with_workload`'s table and ``victims`` that
    run's victim pids; ``bt`` is :func:`bpftrace_kills`' frame. The two runs have their
    own victims, so targets are compared by role ("victim 1", "victim 2", a pid that
    cannot exist). Columns: target, signal, signal_name, bcc (seen by the lesson),
    bpftrace (seen by the one-liner), agree.
    """
    rep = bt.attrs["report"]
    bvict = rep.attrs.get("victims", [])
    seen_bt = match_in_order([(_role(int(p), bvict), int(s)) for p, s in zip(bt["target_pid"], bt["signal"])],
                             [(_role(int(p), bvict), int(s)) for p, s in zip(rep["target_pid"], rep["signal"])])
    lesson = [(_role(int(p), victims), int(s), bool(ok)) for p, s, ok in
              zip(check["target_pid"], check["signal"], check["seen"])]
    theirs = [(_role(int(p), bvict), int(s), j is not None) for p, s, j in
              zip(rep["target_pid"], rep["signal"], seen_bt)]
    rows = []
    for i in range(max(len(lesson), len(theirs))):
        a = lesson[i] if i < len(lesson) else None
        b = theirs[i] if i < len(theirs) else None
        either = a or b
        assert either is not None  # i is below one of the two lengths
        rows.append({"target": either[0], "signal": either[1], "signal_name": signal_name(either[1]),
                     "bcc": bool(a and a[2]), "bpftrace": bool(b and b[2]),
                     "agree": bool(a is not None and b is not None and a[:2] == b[:2] and a[2] and b[2])})
    return pd.DataFrame(rows, columns=["target", "signal", "signal_name", "bcc", "bpftrace", "agree"])
