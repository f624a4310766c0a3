"""Lesson 06 — one small tool, three ways: bcc, bpftrace, libbpf with CO-RE.

Notebook: ``notebooks/06_three_ways.ipynb``. For every ``kill()`` on the machine
the tool reports the sender's pid and comm, the target, the signal, and the
sender's parent read from the kernel's ``task_struct``
(``current->real_parent->tgid``). It is written three ways, all on the same hook,
the tracepoint ``syscalls:sys_enter_kill`` (it exists with or without kprobes,
and one hook for all three keeps the comparison fair):

1. **bcc** (``three_ways.bpf.c``): C compiled at run time against the kernel
   headers bcc finds, loaded from Python as in the earlier lessons;
2. **bpftrace** (``three_ways.bt``): a one-line probe; bpftrace reads
   ``curtask->real_parent->tgid`` through the kernel's BTF; run by the lab's
   bpftrace runner (:class:`ebpf_lab.bpftrace.Session`: ``-f json``, its own
   process group, stopped with the lesson);
3. **libbpf + CO-RE** (``three_ways_core.bpf.c``, ``three_ways_loader.c``,
   ``three_ways_core.h``): built the libbpf-bootstrap way (:func:`build_core`)
   into a cache, never into the package; a small loader prints one JSON line
   per event.

The workload (``workloads/three_ways_kills.c``) records its own pid and its
parent's from ``/proc`` and sends known kills; :meth:`ThreeWaysLesson.collect`
joins every method's rows with that truth. A value that is known to be
unreliable on this kernel is never presented as right: the ``trusted`` column
says so, and ``why_not_trusted`` why.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from .. import _kernel, bpftrace
from .._workloads import binary
from ..bpf import include_flags
from ..engine import Hook, Param, State, Workload, bytes_to_category, program_path, wall_clock
from ..errors import CompileError, FeatureUnavailable, LabError, LabParameterError
from ._syscall import NO_KPROBES, ReportingLesson

__all__ = [
    "ThreeWaysLesson",
    "CoreBuild",
    "build_core",
    "environment",
    "measure_costs",
    "cost_conclusions",
    "plot_costs",
    "plot_parents",
    "METHODS",
]

METHODS = ("bcc", "bpftrace", "libbpf")
HOOK = "syscalls:sys_enter_kill"
BTF_PATH = "/sys/kernel/btf/vmlinux"
CACHE = os.environ.get("EBPF_LAB_THREE_WAYS_CACHE", "/var/cache/ebpf-lab/three-ways")
CORE_SOURCES = ("three_ways_core.bpf.c", "three_ways_core.h", "three_ways_loader.c")
#: how long bpftrace or the loader may take to attach (bpftrace under emulation is slow: _kernel.EMULATED)
READY_TIMEOUT_S = 600.0 if _kernel.EMULATED else 180.0
#: how long one step of the CO-RE build (bpftool's vmlinux.h, clang, the skeleton, cc) may take
BUILD_STEP_TIMEOUT_S = 1800 if _kernel.EMULATED else 600
#: how long to wait, after the workload ended, for every method to report its kills
SETTLE_TIMEOUT_S = 20.0

FAIR_HOOK_NOTE = (f"all three ways use the tracepoint {HOOK}: the same hook everywhere keeps the comparison "
                  "fair, and it works on kernels with or without kprobes")


# ------------------------------------------------------------ the machine
def _which(tool: str) -> str:
    for d in ("/usr/sbin", "/sbin"):  # bpftool lives in sbin on Debian
        p = os.path.join(d, tool)
        if os.access(p, os.X_OK):
            return p
    return shutil.which(tool) or ""


def environment(doctor_df: Optional[pd.DataFrame] = None) -> Dict[str, Any]:
    """The facts this lesson depends on, taken from the doctor's checks.

    Pass ``ebpf_lab.doctor()``'s DataFrame to read them from it; without one,
    the same checks the doctor makes are made here (headers, BTF, tools).
    Keys: kernel, btf (bool), headers_status (matching/fallback/none),
    headers_detail, headers_version, bcc_trusted (bool), kprobes (bool),
    tracepoint (bool: syscalls:sys_enter_kill exists), bpftrace, bpftool,
    clang, cc (paths or ''), methods (what can run here) and why_not (method ->
    reason it cannot).
    """
    from ..kernel_headers import headers_info

    h = headers_info()
    env: Dict[str, Any] = {"kernel": platform.release()}
    if doctor_df is not None:
        rows = {r["check"]: r for r in doctor_df.to_dict("records")}
        env["btf"] = bool(rows.get("BTF", {}).get("ok", False))
        hrow = rows.get("kernel headers", {})
        env["headers_status"] = {"ok": "matching", "fallback": "fallback"}.get(hrow.get("status", ""), "none")
        env["headers_detail"] = hrow.get("detail", h.detail)
        kp = [r for c, r in rows.items() if c.startswith("kprobe")]
        env["kprobes"] = bool(kp and kp[0]["ok"])
    else:
        env["btf"] = os.path.exists(BTF_PATH)
        env["headers_status"] = h.status
        env["headers_detail"] = h.detail
        env["kprobes"] = _kernel.kprobes_available()
    env["headers_version"] = h.headers
    env["bcc_trusted"] = env["headers_status"] == "matching"
    _kernel.ensure_kernel_fs()
    env["tracepoint"] = _kernel.tracepoint_exists("syscalls", "sys_enter_kill")
    for tool in ("bpftrace", "bpftool", "clang"):
        env[tool] = _which(tool)
    env["cc"] = shutil.which("cc") or shutil.which("gcc") or ""
    why: Dict[str, str] = {}
    if not env["tracepoint"]:
        for m in METHODS:
            why[m] = f"this kernel has no tracepoint {HOOK} (CONFIG_FTRACE_SYSCALLS)"
    if env["headers_status"] == "none":
        why.setdefault("bcc", "bcc finds no kernel headers to compile against (install linux-headers-$(uname -r))")
    if not env["btf"]:
        why.setdefault("bpftrace", f"this kernel has no BTF ({BTF_PATH} is absent): bpftrace cannot know where "
                       "task_struct keeps real_parent, so curtask->real_parent->tgid cannot be read")
        why.setdefault("libbpf", f"this kernel has no BTF ({BTF_PATH} is absent): there is nothing to generate "
                       "vmlinux.h from, and nothing libbpf could relocate the object's field reads against")
    if not env["bpftrace"]:
        why.setdefault("bpftrace", "bpftrace is not installed (sudo apt-get install bpftrace)")
    elif env["btf"] and env["tracepoint"] and os.geteuid() == 0:
        from ..bpftrace import btf_in_tracepoints

        ok, err = btf_in_tracepoints()
        if not ok:
            why.setdefault("bpftrace", "this bpftrace cannot read kernel structs through BTF in a tracepoint probe, so "
                           f"curtask->real_parent->tgid does not compile (it says: {err}); a newer bpftrace can")
    missing = [t for t in ("bpftool", "clang", "cc") if not env[t]]
    if missing:
        why.setdefault("libbpf", f"building the CO-RE tool needs {', '.join(missing)} "
                       "(sudo apt-get install bpftool clang gcc libbpf-dev libelf-dev zlib1g-dev; a release that "
                       "packages no bpftool, such as Debian 11, needs it built from the kernel's tools/bpf/bpftool)")
    elif not os.path.exists("/usr/include/bpf/libbpf.h"):
        why.setdefault("libbpf", "libbpf's headers are missing (sudo apt-get install libbpf-dev)")
    env["why_not"] = why
    env["methods"] = [m for m in METHODS if m not in why]
    return env


def bpf_target_arch() -> str:
    """The ``__TARGET_ARCH_*`` name libbpf's ``bpf_tracing.h`` wants for this machine."""
    m = platform.machine()
    return {"x86_64": "x86", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "powerpc", "s390x": "s390",
            "riscv64": "riscv", "loongarch64": "loongarch"}.get(m, m)


# ---------------------------------------------------------- libbpf build
@dataclasses.dataclass
class CoreBuild:
    """The libbpf way, built: where the files are and what each step took."""

    dir: str
    object: str         # three_ways_core.bpf.o (CO-RE object: compile once)
    loader: str         # three_ways_loader, with the object embedded through the skeleton
    steps: pd.DataFrame  # step, command, seconds, output (the commands, as run)
    cached: bool        # True when an earlier build was reused (steps then are that build's)
    built_on: str       # uname -r of the kernel whose BTF made vmlinux.h
    object_sha256: str

    def object_in_loader(self) -> bool:
        """True when the loader binary carries this object's bytes unchanged (the skeleton embeds it)."""
        with open(self.object, "rb") as f:
            obj = f.read()
        with open(self.loader, "rb") as f:
            return obj in f.read()


def _sources_digest() -> str:
    h = hashlib.sha256()
    for name in CORE_SOURCES:
        with open(program_path(name), "rb") as f:
            h.update(name.encode() + b"\0" + f.read())
    return h.hexdigest()[:12]


def core_build_steps(out_dir: str, btf: str = BTF_PATH) -> List[Tuple[str, List[str], Optional[str]]]:
    """The libbpf-bootstrap build, as (step, argv, file stdout goes to) — nothing is run."""
    progs = os.path.dirname(program_path("three_ways_core.bpf.c"))
    bpftool, clang = _which("bpftool") or "bpftool", _which("clang") or "clang"
    cc = shutil.which("cc") or shutil.which("gcc") or "cc"
    o = lambda n: os.path.join(out_dir, n)  # noqa: E731
    return [
        ("vmlinux.h from the kernel's BTF", [bpftool, "btf", "dump", "file", btf, "format", "c"], o("vmlinux.h")),
        ("compile the BPF program (clang -target bpf -g: BTF + CO-RE relocations)",
         [clang, "-g", "-O2", "-target", "bpf", f"-D__TARGET_ARCH_{bpf_target_arch()}", "-I", out_dir, "-I", progs,
          "-c", os.path.join(progs, "three_ways_core.bpf.c"), "-o", o("three_ways_core.tmp.bpf.o")], None),
        ("link it (bpftool gen object: drops the DWARF, keeps BTF)",
         [bpftool, "gen", "object", o("three_ways_core.bpf.o"), o("three_ways_core.tmp.bpf.o")], None),
        ("the skeleton header (bpftool gen skeleton: the object embedded, typed open/load/attach)",
         [bpftool, "gen", "skeleton", o("three_ways_core.bpf.o"), "name", "three_ways_core"],
         o("three_ways_core.skel.h")),
        ("the loader, linked against the OS's libbpf",
         [cc, "-O2", "-g", "-Wall", "-I", out_dir, "-I", progs, os.path.join(progs, "three_ways_loader.c"),
          "-o", o("three_ways_loader"), "-lbpf", "-lelf", "-lz"], None),
    ]


def build_core(*, cache: Optional[str] = None, force: bool = False, btf: str = BTF_PATH) -> CoreBuild:
    """Build the CO-RE object and its loader from the kernel's BTF (or reuse the cached build).

    The build goes to ``CACHE/<kernel>-<sources digest>/`` (``cache`` overrides
    CACHE), into a temporary folder renamed into place when every step
    succeeded, so concurrent builds never see half a build. Raises
    :class:`FeatureUnavailable` when BTF or a tool is missing and
    :class:`CompileError` with the failing command's output.
    """
    if not os.path.exists(btf):
        raise FeatureUnavailable("BTF", f"building the CO-RE tool: {btf} is absent (a kernel built without "
                                 "CONFIG_DEBUG_INFO_BTF): there is no BTF to make vmlinux.h from")
    env = environment()
    if "libbpf" in env["why_not"] and "BTF" not in env["why_not"]["libbpf"]:
        raise FeatureUnavailable("libbpf toolchain", f"building the CO-RE tool: {env['why_not']['libbpf']}")
    root = cache or CACHE
    kernel = platform.release()
    final = os.path.join(root, f"{kernel}-{_sources_digest()}")
    if force and os.path.isdir(final):
        shutil.rmtree(final, ignore_errors=True)
    if not os.path.exists(os.path.join(final, "build.json")):
        os.makedirs(root, exist_ok=True)
        tmp = f"{final}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        rows = []
        try:
            for step, argv, out in core_build_steps(tmp, btf):
                t0 = time.monotonic()
                if out:
                    with open(out, "wb") as f:
                        r = subprocess.run(argv, stdout=f, stderr=subprocess.PIPE, timeout=BUILD_STEP_TIMEOUT_S)
                    text = r.stderr.decode(errors="replace")
                    shown = f"{os.path.basename(out)}: {os.path.getsize(out):,} bytes" + (f"\n{text}" if text else "")
                else:
                    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=BUILD_STEP_TIMEOUT_S)
                    text = shown = r.stdout.decode(errors="replace")
                secs = round(time.monotonic() - t0, 3)
                if r.returncode != 0:
                    raise CompileError(f"building the CO-RE tool, step '{step}' failed (exit {r.returncode}): "
                                       f"{' '.join(argv)}", text.strip())
                rows.append({"step": step, "command": " ".join(argv).replace(tmp, final), "seconds": secs,
                             "output": shown.replace(tmp, final).strip()})
            obj = os.path.join(tmp, "three_ways_core.bpf.o")
            with open(obj, "rb") as f:
                sha = hashlib.sha256(f.read()).hexdigest()
            with open(os.path.join(tmp, "build.json"), "w") as f:
                json.dump({"kernel": kernel, "object_sha256": sha, "steps": rows}, f, indent=1)
            os.remove(os.path.join(tmp, "three_ways_core.tmp.bpf.o"))
            try:
                os.rename(tmp, final)
            except OSError:  # another process finished the same build first
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        cached = False
    else:
        cached = True
    return load_core_build(final, cached=cached)


def load_core_build(path: str, *, cached: bool = True) -> CoreBuild:
    """A build made earlier (here or on another machine): ``path`` holds build.json, the object and the loader."""
    try:
        with open(os.path.join(path, "build.json")) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise LabError(f"reading the CO-RE build in {path}: no readable build.json ({e})") from None
    return CoreBuild(dir=path, object=os.path.join(path, "three_ways_core.bpf.o"),
                     loader=os.path.join(path, "three_ways_loader"), steps=pd.DataFrame(meta["steps"]),
                     cached=cached, built_on=meta["kernel"], object_sha256=meta["object_sha256"])


# ------------------------------------------------------ child processes
class _Child:
    """A child process whose stdout and stderr lines are read by threads (never blocks)."""

    def __init__(self, name: str, argv: List[str], *, stdin_pipe: bool = False) -> None:
        self.name, self.argv = name, argv
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.lines: "queue.Queue[Tuple[float, str]]" = queue.Queue()
        self.stdout: List[Tuple[float, str]] = []
        self.stderr: List[str] = []
        self._threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, True), daemon=True),
                         threading.Thread(target=self._pump, args=(self.proc.stderr, False), daemon=True)]
        for t in self._threads:
            t.start()
        self.rusage: Any = None
        self.hwm_kb = 0

    def _pump(self, stream: Any, out: bool) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            if out:
                self.lines.put((time.monotonic(), line))
            else:
                self.stderr.append(line)
        stream.close()

    def next_line(self, timeout: float) -> Optional[Tuple[float, str]]:
        try:
            item = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        self.stdout.append(item)
        return item

    def drain(self) -> None:
        while True:
            try:
                self.stdout.append(self.lines.get_nowait())
            except queue.Empty:
                return

    def wait_for(self, pred: Any, timeout: float, doing: str) -> Tuple[float, str]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LabError(f"{doing}: {self.name} gave no sign within {timeout:.0f} s; its stderr:\n"
                               + "\n".join(self.stderr[-15:]))
            item = self.next_line(min(left, 0.2))
            if item is not None and pred(item[1]):
                return item
            if item is None and self.proc.poll() is not None and self.lines.empty():
                time.sleep(0.1)  # let the stderr thread finish
                raise LabError(f"{doing}: {self.name} exited with status {self.proc.returncode}; its stderr:\n"
                               + "\n".join(self.stderr[-25:]))

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> None:
        """Ask it to stop (``sig``), then kill it; reap it and record its peak memory."""
        self.hwm_kb = max(self.hwm_kb, _vm_hwm_kb(self.proc.pid)) if self.proc.poll() is None else self.hwm_kb
        if self.proc.poll() is None:
            try:
                if self.proc.stdin:
                    self.proc.stdin.close()
            except OSError:
                pass
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while self.rusage is None:
            try:
                pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
            except ChildProcessError:
                self.proc.poll()
                break
            if pid:
                self.rusage = ru
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                deadline = time.monotonic() + timeout
            time.sleep(0.02)
        for t in self._threads:
            t.join(timeout=5)
        self.drain()

    @property
    def peak_rss_mb(self) -> float:
        """Peak resident memory of the program it runs (VmHWM, read before stopping it).

        Not ``getrusage``: Linux keeps ``ru_maxrss`` across ``execve``, so a child
        forked from a big Python process would report the parent's size.
        """
        return round(self.hwm_kb / 1024, 1) if self.hwm_kb else float("nan")


def _vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _bpftrace_session(seconds: int) -> bpftrace.Session:
    """three_ways.bt through the lab's bpftrace runner; the script exits by itself after ``seconds``."""
    return bpftrace.Session(script=program_path("three_ways.bt"), args=[str(seconds)], attach_timeout=READY_TIMEOUT_S)


def _parse_bpftrace(lines: Sequence[str]) -> List[Dict[str, Any]]:
    """three_ways.bt's printf lines (sender pid, parent pid, target, signal, comm) -> rows."""
    rows = []
    for text in lines:
        p = text.split(" ", 4)
        if len(p) >= 4:
            rows.append({"sender_pid": int(p[0]), "parent_pid": int(p[1]), "target_pid": int(p[2]),
                         "signal": int(p[3]), "sender_comm": p[4] if len(p) > 4 else ""})
    return rows


def _parse_loader(lines: Sequence[str]) -> List[Dict[str, Any]]:
    rows = []
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if obj.get("type") == "event":
            rows.append({k: obj[k] for k in ("ts_ns", "sender_pid", "sender_comm", "parent_pid", "target_pid",
                                              "signal")})
    return rows


# ------------------------------------------------------------ the workload
def parse_report(text: str) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """The workload's own record: (processes: pid, proc_parent_pid, comm; kills: sender_pid, target_pid, signal, result)."""
    procs, kills = [], []
    for line in text.splitlines():
        p = line.split()
        if len(p) == 4 and p[0] == "proc":
            procs.append({"pid": int(p[1]), "proc_parent_pid": int(p[2]), "comm": p[3]})
        elif len(p) == 5 and p[0] == "kill":
            kills.append({"sender_pid": int(p[1]), "target_pid": int(p[2]), "signal": int(p[3]), "result": int(p[4])})
    return (pd.DataFrame(procs, columns=["pid", "proc_parent_pid", "comm"]),
            pd.DataFrame(kills, columns=["sender_pid", "target_pid", "signal", "result"]))


# ---------------------------------------------------------------- lesson
class ThreeWaysLesson(ReportingLesson):
    """One small tool — who sends kill, and who is the sender's parent — written three ways.

    Steps (each a method, each a notebook cell): :meth:`source` (any of the three),
    :meth:`build` (libbpf: vmlinux.h, clang, skeleton, loader), :meth:`compile` and
    :meth:`load` (bcc), :meth:`attach` (bcc's program, bpftrace, the libbpf loader),
    :meth:`trigger`, :meth:`collect`, :meth:`detach`. ``run()`` does them all.

    >>> df = ThreeWaysLesson().run()
    >>> df[["method", "sender_comm", "parent_pid", "proc_parent_pid", "trusted"]]
    """

    id = "three-ways"
    title = "06 · One tool, three ways: bcc, bpftrace, libbpf + CO-RE (and why BTF tells the truth)"
    notebook = "06_three_ways.ipynb"
    program = "three_ways.bpf.c"
    workload_binaries = ("three_ways_kills",)
    report_timeout_s = 60.0
    params: ClassVar[Dict[str, Param]] = {
        "methods": Param("bcc,bpftrace,libbpf", "which ways to run, comma-separated (those this machine cannot run "
                         "are left out with the reason in df.attrs['skipped'] unless asked for alone)"),
        "pause_ms": Param(5, "the workload's pause between two kills, in milliseconds", min=0, max=5000),
    }
    columns = {
        "method": "bcc, bpftrace or libbpf (category)",
        "time": "wall-clock time the event was seen (datetime64[ns]; NaT for bpftrace, which prints no clock)",
        "sender_pid": "process (tgid) that called kill() (int64)",
        "sender_comm": "its name (object)",
        "parent_pid": "the sender's parent as the method read it from task_struct: real_parent->tgid (int64)",
        "target_pid": "kill()'s pid argument (int64)",
        "signal": "kill()'s signal (int64)",
        "trusted": "whether this method's parent_pid can be believed on this kernel (bool)",
        "why_not_trusted": "why not, where not ('' where trusted)",
        "proc_parent_pid": "the truth for the workload's own senders: the parent /proc showed them (Int64; NA for others)",
        "matches_proc": "parent_pid == proc_parent_pid (boolean; NA for senders the workload did not record)",
    }
    default_seconds = 3.0

    def __init__(self, *, core_build: Optional[CoreBuild] = None, **params: Any) -> None:
        super().__init__(**params)
        wanted = [m.strip() for m in str(self.values["methods"]).split(",") if m.strip()]
        bad = [m for m in wanted if m not in METHODS]
        if bad or not wanted:
            raise LabParameterError(f"parameter methods={self.values['methods']!r}: choose among "
                                    f"{', '.join(METHODS)}, comma-separated")
        self.env = environment()
        explicit = self.values["methods"] != self.params["methods"].default
        self.skipped: Dict[str, str] = {}
        for m in wanted:
            why = self.env["why_not"].get(m)
            if why and explicit:
                raise FeatureUnavailable(m, f"preparing lesson {self.id} with methods={self.values['methods']}: {why}")
            if why:
                self.skipped[m] = why
        self.methods = [m for m in wanted if m not in self.skipped]
        if not self.methods:
            raise FeatureUnavailable("tracing", f"preparing lesson {self.id}: none of the three ways runs here: "
                                     + "; ".join(f"{m}: {w}" for m, w in self.skipped.items()))
        self.core: Optional[CoreBuild] = core_build
        #: the processes of the ways that run outside this one: bpftrace (the lab's runner) and the libbpf loader
        self.children: Dict[str, Union[_Child, bpftrace.Session]] = {}
        self.ready_s: Dict[str, float] = {}
        #: kernel ids of the programs loaded by bcc and by the loader (bpftrace's go with its process)
        self.prog_ids: Dict[str, List[int]] = {}
        self.libbpf_log = ""

    # --------------------------------------------------------- sources
    def source(self, method: str = "bcc") -> str:
        """The exact program of one way: ``bcc``, ``bpftrace``, ``libbpf`` (the BPF half) or ``loader``."""
        if method == "bcc":
            return super().source()
        files = {"bpftrace": "three_ways.bt", "libbpf": "three_ways_core.bpf.c", "loader": "three_ways_loader.c",
                 "header": "three_ways_core.h"}
        if method not in files:
            raise LabParameterError(f"source({method!r}): choose bcc, bpftrace, libbpf, loader or header")
        path = program_path(files[method])
        with open(path) as f:
            return f"// {path}\n\n{f.read()}"

    # ---------------------------------------------------------- build
    def build(self, *, force: bool = False) -> pd.DataFrame:
        """libbpf: build (or reuse) the CO-RE object and its loader; one row per command, as run."""
        if "libbpf" not in self.methods:
            why = self.skipped.get("libbpf", "libbpf is not among this lesson's methods")
            return pd.DataFrame([{"step": "(nothing built)", "command": "", "seconds": 0.0, "output": why}])
        if self.core is None or force:
            self.core = build_core(force=force)
        df = self.core.steps.copy()
        df.attrs.update({"cached": self.core.cached, "dir": self.core.dir, "built_on": self.core.built_on,
                         "object_sha256": self.core.object_sha256})
        return df

    # ------------------------------------------------------------ bcc
    def select_hooks(self) -> List[Hook]:
        return [Hook("tracepoint", HOOK, "on_kill_entry", note=FAIR_HOOK_NOTE)]

    def compile(self) -> pd.DataFrame:
        if "bcc" not in self.methods:
            self.state = State.COMPILED
            return pd.DataFrame([{"function": "(bcc left out)", "hook": "", "bytecode_insns": 0}])
        return super().compile()

    def load(self) -> pd.DataFrame:
        if "bcc" not in self.methods:
            self._require(State.COMPILED, doing="loading")
            self.state = State.LOADED
            return pd.DataFrame()
        df = super().load()
        if "prog_id" in df:
            self.prog_ids["bcc"] = [int(i) for i in df["prog_id"]]
        return df

    # --------------------------------------------------------- attach
    def attach(self) -> pd.DataFrame:
        """Attach all three: bcc's program from here, bpftrace and the libbpf loader as child processes.

        Each child's stop is registered the moment it starts; each must say it
        attached (bpftrace's ``attached_probes``, the loader's ``ready``) before this returns.
        """
        self._require(State.LOADED, doing="attaching")
        if "libbpf" in self.methods and self.core is None:
            self.build()
        t0 = time.monotonic()
        rows = []
        if "bcc" in self.methods:
            super().attach()
            self.ready_s["bcc"] = round(time.monotonic() - t0, 3)
            rows.append({"method": "bcc", "hook": f"tracepoint:{HOOK}", "how": "from this Python process (bcc)",
                         "pid": os.getpid(), "note": FAIR_HOOK_NOTE})
        else:
            self.state = State.ATTACHED
        bound = int(self.report_timeout_s + READY_TIMEOUT_S + SETTLE_TIMEOUT_S + 60)
        try:
            if "bpftrace" in self.methods:
                bt = _bpftrace_session(bound)
                self.children["bpftrace"] = bt
                self._stack.callback(bt.stop)  # before it starts: stop() of a session not started does nothing
                bt.start()
                self.ready_s["bpftrace"] = round(time.monotonic() - bt.started, 3)
                assert bt.proc is not None
                rows.append({"method": "bpftrace", "hook": f"tracepoint:{HOOK}", "how": bt.command,
                             "pid": bt.proc.pid, "note": ""})
            if "libbpf" in self.methods:
                assert self.core is not None
                loader = self._start("libbpf", [self.core.loader, "-v", "-w", "-d", str(bound)],
                                     lambda s: '"ready"' in s, stdin_pipe=True)
                rows.append({"method": "libbpf", "hook": f"tracepoint:{HOOK}", "how": f"{self.core.loader} -v -w -d {bound}",
                             "pid": loader.proc.pid, "note": ""})
        except BaseException:
            self.detach()
            raise
        return pd.DataFrame(rows)

    def loader_log(self) -> str:
        """What the libbpf loader wrote to stderr so far: libbpf's debug log (the CO-RE relocations)."""
        c = self.children.get("libbpf")
        return "\n".join(c.stderr) if isinstance(c, _Child) else self.libbpf_log

    def _start(self, method: str, argv: List[str], ready: Any, stdin_pipe: bool = False) -> _Child:
        t0 = time.monotonic()
        child = _Child(method, argv, stdin_pipe=stdin_pipe)
        self.children[method] = child
        self._stack.callback(child.stop, signal.SIGTERM)
        _, line = child.wait_for(ready, READY_TIMEOUT_S, f"attaching the {method} way of lesson {self.id}")
        self.ready_s[method] = round(time.monotonic() - t0, 3)
        if method == "libbpf":
            self.prog_ids["libbpf"] = [int(json.loads(line).get("prog_id", 0))]
        return child

    # -------------------------------------------------------- workload
    def start_workload(self, pause_ms: Optional[int] = None) -> Workload:
        ms = int(self.values["pause_ms"] if pause_ms is None else pause_ms)
        self._report = None
        self._truth: Optional[Tuple[pd.DataFrame, pd.DataFrame]] = None
        exe = binary("three_ways_kills")
        proc = subprocess.Popen([exe, str(ms)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return Workload("ebl-3w-sender: starts ebl-3w-victim, sends it 0, SIGUSR1, SIGUSR2; its child ebl-3w-child "
                        "sends SIGUSR1; then SIGTERM. Each sender records its parent from /proc first",
                        proc, time.monotonic(), {"comm": "ebl-3w-sender", "executable": exe})

    def expected_workload_seconds(self) -> float:
        return 0.2 + 5 * self.values["pause_ms"] / 1000

    def truth(self) -> Tuple[pd.DataFrame, pd.DataFrame]:
        """What the workload recorded (after it ended): (processes with their /proc parent, kills sent)."""
        if getattr(self, "_truth", None) is None:
            self._truth = parse_report(self._workload_output())
        assert self._truth is not None
        return self._truth

    # --------------------------------------------------------- collect
    def to_frame(self, arr: Any) -> pd.DataFrame:
        """bcc's events (the base class drains bcc's ring buffer)."""
        n = len(arr)
        ts = arr["ts_ns"].astype(np.int64)
        return pd.DataFrame({
            "method": "bcc",
            "time": wall_clock(ts) if n else np.empty(0, "datetime64[ns]"),
            "sender_pid": arr["sender_pid"].astype(np.int64),
            "sender_comm": np.asarray(bytes_to_category(arr["sender_comm"]), dtype=object) if n else np.empty(0, object),
            "parent_pid": arr["parent_pid"].astype(np.int64),
            "target_pid": arr["target_pid"].astype(np.int64),
            "signal": arr["sig"].astype(np.int64),
        })

    def _child_rows(self, method: str) -> List[Dict[str, Any]]:
        c = self.children[method]
        if isinstance(c, bpftrace.Session):
            return _parse_bpftrace([ln for _, ln in c.lines()])
        c.drain()
        return _parse_loader([ln for _, ln in c.stdout])

    def _seen_all(self, method: str, kills: pd.DataFrame) -> bool:
        rows = self._child_rows(method)
        seen = {(r["sender_pid"], r["target_pid"], r["signal"]) for r in rows}
        return all((int(k.sender_pid), int(k.target_pid), int(k.signal)) in seen for k in kills.itertuples())

    def collect(self, seconds: Optional[float] = None, *, max_events: Optional[int] = None,
                quiet: bool = False) -> pd.DataFrame:
        """Events of all three ways, joined with the workload's truth from /proc, one row per event and method.

        Waits for the workload (or ``seconds``), then until bpftrace and the loader
        have printed each of the workload's kills (at most SETTLE_TIMEOUT_S), then
        stops them. Columns: see ``columns``; ``attrs`` adds ``skipped``, ``ready_s``
        (attach time per method), ``truth`` and ``libbpf_log``.
        """
        if "bcc" in self.methods:
            bcc_df = super().collect(seconds, max_events=max_events, quiet=True)
            attrs = dict(bcc_df.attrs)
        else:
            self._require(State.ATTACHED, doing="collecting from")
            t0 = time.monotonic()
            wl = self.workload
            limit = seconds if seconds is not None else (60.0 if wl else self.default_seconds)
            while time.monotonic() - t0 < limit and not (wl is not None and seconds is None and wl.done()):
                time.sleep(self.poll_interval)
            bcc_df = self.to_frame({k: np.empty(0, t) for k, t in (("ts_ns", np.int64), ("sender_pid", np.int64),
                                                                      ("sender_comm", "S16"), ("parent_pid", np.int64),
                                                                      ("target_pid", np.int64), ("sig", np.int64))})
            attrs = self.describe(time.monotonic() - t0)
        try:
            procs, kills = self.truth() if self.workload is not None else (
                pd.DataFrame(columns=["pid", "proc_parent_pid", "comm"]),
                pd.DataFrame(columns=["sender_pid", "target_pid", "signal", "result"]))
            deadline = time.monotonic() + SETTLE_TIMEOUT_S
            for m in ("bpftrace", "libbpf"):
                if m in self.children:
                    while time.monotonic() < deadline and not self._seen_all(m, kills):
                        time.sleep(0.1)
            frames = [bcc_df]
            for m in ("bpftrace", "libbpf"):
                if m not in self.children:
                    continue
                c = self.children[m]
                if isinstance(c, bpftrace.Session):
                    c.stop()
                else:
                    c.stop(signal.SIGTERM)
                rows = self._child_rows(m)
                f = pd.DataFrame(rows, columns=["ts_ns", "sender_pid", "sender_comm", "parent_pid", "target_pid", "signal"])
                f.insert(0, "method", m)
                f.insert(1, "time", wall_clock(f["ts_ns"].to_numpy(np.int64)) if m == "libbpf" and len(f)
                         else pd.Series(pd.NaT, index=f.index, dtype="datetime64[ns]"))
                frames.append(f.drop(columns=["ts_ns"]))
            loader = self.children.get("libbpf")
            if isinstance(loader, _Child):
                self.libbpf_log = "\n".join(loader.stderr)
            df = self._finish(frames, procs)
        except BaseException:
            self.detach()
            raise
        df.attrs.update(attrs)
        df.attrs.update({"skipped": dict(self.skipped), "ready_s": dict(self.ready_s), "methods": list(self.methods),
                         "truth": procs.to_dict("records"), "kills_sent": len(kills),
                         "headers": self.env["headers_status"], "btf": self.env["btf"],
                         "libbpf_relocations": core_relocations(self.libbpf_log)})
        return df

    def _finish(self, frames: List[pd.DataFrame], procs: pd.DataFrame) -> pd.DataFrame:
        df = pd.concat([f for f in frames if len(f)] or [frames[0]], ignore_index=True)
        for c in ("sender_pid", "parent_pid", "target_pid", "signal"):
            df[c] = df[c].astype(np.int64)
        df["sender_comm"] = df["sender_comm"].astype(object)
        df["method"] = pd.Categorical(df["method"], categories=[m for m in METHODS if m in self.methods])
        trusted, why = self.trust()
        df["trusted"] = df["method"].astype(str).map(trusted).astype(bool)
        df["why_not_trusted"] = df["method"].astype(str).map(why).astype(object)
        truth = dict(zip(procs["pid"], procs["proc_parent_pid"]))
        df["proc_parent_pid"] = pd.array([truth.get(int(p)) for p in df["sender_pid"]], dtype="Int64")
        df["matches_proc"] = (df["parent_pid"].astype("Int64") == df["proc_parent_pid"]).astype("boolean")
        return df[list(self.columns)]

    def trust(self) -> Tuple[Dict[str, bool], Dict[str, str]]:
        """Per method: is its parent_pid to be believed on this kernel, and if not, why."""
        h = self.env
        trusted = {"bcc": bool(h["bcc_trusted"]), "bpftrace": bool(h["btf"]), "libbpf": bool(h["btf"])}
        why = {m: "" for m in METHODS}
        if not h["bcc_trusted"]:
            why["bcc"] = (f"bcc compiled against the {h['headers_version'] or 'available'} kernel headers, not "
                          f"{h['kernel']}'s own ({h['headers_status']} headers): task_struct's field offsets in "
                          "them may differ from the running kernel's, so real_parent->tgid may be read from "
                          "the wrong place, silently")
        if not h["btf"]:
            why["bpftrace"] = why["libbpf"] = "no BTF on this kernel"
        return trusted, why

    def describe(self, elapsed: float = 0.0) -> Dict[str, Any]:
        d = super().describe(elapsed)
        d["hook_notes"] = [FAIR_HOOK_NOTE] + ([NO_KPROBES] if not self.env["kprobes"] else [])
        return d

    def agreement(self, df: pd.DataFrame) -> pd.DataFrame:
        """Per method: the workload's kills seen, and how many of their parent pids equal /proc's."""
        procs, kills = self.truth()
        mine = df[df["sender_pid"].isin(set(procs["pid"]))]
        rows = []
        for m in self.methods:
            sub = mine[mine["method"].astype(str) == m]
            seen = {(int(r.sender_pid), int(r.target_pid), int(r.signal)) for r in sub.itertuples()}
            rows.append({"method": m, "kills_sent": len(kills),
                         "kills_seen": sum((int(k.sender_pid), int(k.target_pid), int(k.signal)) in seen
                                           for k in kills.itertuples()),
                         "parent_right": int(sub["matches_proc"].sum()), "parent_wrong": int((~sub["matches_proc"]).sum()),
                         "trusted": bool(sub["trusted"].iloc[0]) if len(sub) else self.trust()[0][m],
                         "why_not_trusted": self.trust()[1][m]})
        return pd.DataFrame(rows)


def core_relocations(log: str) -> pd.DataFrame:
    """libbpf's debug log -> the CO-RE field relocations it applied: field, offset in the object, offset here."""
    rows = []
    for m in re.finditer(r"relo #(\d+): <byte_off> \[\d+\] (struct \w+)\.([\w\[\]\.]+) \([\d:]+ @ offset (\d+)\)\n"
                         r"(?:.*\n)*?.*relo #\1: patched insn #(\d+) \([^)]*\) (?:off|imm) (\d+) -> (\d+)", log):
        rows.append({"relocation": int(m[1]), "type": m[2], "field": m[3], "offset_in_object": int(m[6]),
                     "offset_on_this_kernel": int(m[7]), "insn": int(m[5])})
    return pd.DataFrame(rows, columns=["relocation", "type", "field", "offset_in_object", "offset_on_this_kernel", "insn"])


# ------------------------------------------------------------ the costs
def _so_closure(path: str) -> List[str]:
    """path and every shared library it loads (ldd), as real paths."""
    out = [os.path.realpath(path)]
    try:
        r = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=30)
        for line in r.stdout.splitlines():
            m = re.search(r"(/\S+) \(0x", line)
            if m:
                out.append(os.path.realpath(m.group(1)))
    except (OSError, subprocess.TimeoutExpired):
        pass
    return list(dict.fromkeys(out))


def _tree_bytes(*paths: str) -> int:
    """Bytes of the distinct files under paths, following symbolic links (each real folder walked once)."""
    total, seen_files, seen_dirs = 0, set(), set()
    for path in paths:
        for root, dirs, files in os.walk(path, followlinks=True):
            real = os.path.realpath(root)
            if real in seen_dirs:
                dirs[:] = []
                continue
            seen_dirs.add(real)
            for n in files:
                try:
                    st = os.stat(os.path.join(root, n))
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) not in seen_files:
                    seen_files.add((st.st_dev, st.st_ino))
                    total += st.st_size
    return total


def _files_bytes(paths: Sequence[str]) -> int:
    return sum(os.path.getsize(p) for p in dict.fromkeys(paths) if os.path.isfile(p))


def _headers_trees() -> List[str]:
    """The header folders bcc compiles against here (build and source halves, or the lab's merged fallback)."""
    from ..kernel_headers import headers_info

    h = headers_info()
    if h.path:
        return [h.path]
    base = f"/lib/modules/{platform.release()}"
    return list(dict.fromkeys(os.path.realpath(os.path.join(base, d)) for d in ("build", "source")
                              if os.path.exists(os.path.join(base, d))))


def disk_needs(core: Optional[CoreBuild]) -> Dict[str, Dict[str, Any]]:
    """What each way needs on the machine it runs on, and its size on disk (measured here)."""
    import importlib

    from .._bcc import import_bcc

    out: Dict[str, Dict[str, Any]] = {}
    bcc = import_bcc()
    libbcc = importlib.import_module("bcc.libbcc")
    lib = getattr(libbcc.lib, "_name", "") or ""
    lib = lib if os.path.isabs(lib) else next((p for p in ("/usr/lib/x86_64-linux-gnu/libbcc.so.0", "/usr/lib/libbcc.so.0",
                                                         "/usr/lib/aarch64-linux-gnu/libbcc.so.0") if os.path.exists(p)), "")
    files = (_so_closure(lib) if lib else []) + [sys.executable]
    hdr = _headers_trees()
    assert bcc.__file__ is not None  # a regular package, imported from a file
    out["bcc"] = {"needs_on_target": "Python, bcc (its LLVM/clang inside libbcc), kernel headers matching the kernel",
                  "disk_mb": round((_files_bytes(files) + _tree_bytes(os.path.dirname(bcc.__file__))
                                    + _tree_bytes(*hdr)) / 1e6, 1),
                  "disk_what": f"libbcc and its libraries, the bcc module, Python, headers {' + '.join(hdr) or '(none)'}"}
    bt = _which("bpftrace")
    if bt:
        out["bpftrace"] = {"needs_on_target": "bpftrace (its LLVM inside), the kernel's BTF",
                           "disk_mb": round(_files_bytes(_so_closure(bt)) / 1e6, 1),
                           "disk_what": f"{bt} and its libraries"}
    if core is not None:
        out["libbpf"] = {"needs_on_target": "the loader (object inside), libbpf, libelf, zlib, the kernel's BTF",
                         "disk_mb": round(_files_bytes(_so_closure(core.loader)) / 1e6, 1),
                         "disk_what": f"{os.path.basename(core.loader)} ({os.path.getsize(core.loader):,} bytes) "
                                      "and its libraries"}
    return out


def _first_event_bcc_main(want_pid: int, timeout: float) -> int:
    """Child process: bcc from nothing (import, compile, load, attach) to the first kill() sent by want_pid."""
    from .._bcc import import_bcc
    from ..kernel_headers import prepare

    prepare()
    bcc = import_bcc()
    b = bcc.BPF(src_file=program_path("three_ways.bpf.c"), cflags=include_flags())
    b.attach_tracepoint(tp=HOOK, fn_name="on_kill_entry")
    got: List[int] = []

    def on_event(ctx: Any, data: Any, size: int) -> None:
        e = b["events"].event(data)
        if e.sender_pid == want_pid:
            got.append(e.parent_pid)

    b["events"].open_ring_buffer(on_event)
    print(json.dumps({"type": "ready"}), flush=True)
    deadline = time.monotonic() + timeout
    while not got and time.monotonic() < deadline:
        # the program wakes no one for a few events (lab_ring.h): read what is there, as the lab's collector does
        b.ring_buffer_consume()
        time.sleep(0.01)
    if got:
        print(json.dumps({"type": "event", "sender_pid": want_pid, "parent_pid": got[0]}), flush=True)
    b.cleanup()
    return 0 if got else 1


def _first_event_child(method: str, argv: List[str], hit: Any, timeout: float) -> Tuple[float, float]:
    """A tool as a child process, from its start to the first stdout line ``hit`` accepts: (seconds, peak RSS MB)."""
    child = _Child(method, argv)
    try:
        t, _ = child.wait_for(hit, timeout, f"measuring the {method} way")
    finally:
        child.stop(signal.SIGINT if method != "libbpf" else signal.SIGTERM)
    return round(t - child.started, 3), child.peak_rss_mb


def _first_event_bpftrace(want_pid: int, timeout: float) -> Tuple[float, float]:
    """bpftrace from nothing (start, compile, attach) to the first kill() sent by want_pid: (seconds, peak RSS MB)."""
    s = _bpftrace_session(int(timeout) + 10)
    hwm_kb = 0
    seen: List[float] = []
    try:
        s.start()
        assert s.proc is not None
        deadline = s.started + timeout
        while True:
            seen = [t for t, ln in s.lines() if any(r["sender_pid"] == want_pid for r in _parse_bpftrace([ln]))]
            if seen or s.ended or time.monotonic() > deadline:
                break
            s.read(min(deadline, time.monotonic() + 0.2))  # each line is timed as it arrives
        hwm_kb = _vm_hwm_kb(s.proc.pid)
    finally:
        s.stop()
    if not seen:
        raise LabError(f"measuring the bpftrace way: bpftrace reported none of this process's kills within "
                       f"{timeout:.0f} s; it said:\n{s.stderr}")
    return round(seen[0] - s.started, 3), round(hwm_kb / 1024, 1) if hwm_kb else float("nan")


def measure_costs(core: Optional[CoreBuild] = None, *, methods: Sequence[str] = METHODS,
                  timeout: float = READY_TIMEOUT_S) -> pd.DataFrame:
    """Each way from nothing to its first event, in a fresh process: wall time and peak RSS, measured.

    This process sends ``kill(own pid, 0)`` every 20 ms; the clock runs from
    starting the tool's process until it reports one of those kills. Peak RSS is
    the tool process's own (its VmHWM, read just before it is stopped). Rows: method,
    first_event_s, peak_rss_mb, disk_mb, needs_on_target, disk_what, and for
    libbpf build_s (the one-time build, done on the build machine).
    """
    me = os.getpid()
    env = environment()
    rows = []
    disk = disk_needs(core)
    for m in methods:
        if m in env["why_not"] or (m == "libbpf" and core is None):
            continue
        stop = threading.Event()

        def ping(stop: threading.Event = stop) -> None:
            while not stop.is_set():
                os.kill(me, 0)
                stop.wait(0.02)

        pinger = threading.Thread(target=ping, daemon=True)
        pinger.start()
        try:
            if m == "bpftrace":
                first, rss = _first_event_bpftrace(me, timeout)
            elif m == "bcc":
                first, rss = _first_event_child(
                    m, [sys.executable, "-m", "ebpf_lab.lessons.three_ways", "--first-event", str(me), str(int(timeout))],
                    lambda s: '"event"' in s, timeout)
            else:
                assert core is not None
                first, rss = _first_event_child(
                    m, [core.loader, "-d", str(int(timeout) + 10)],
                    lambda s: '"event"' in s and any(r["sender_pid"] == me for r in _parse_loader([s])), timeout)
        finally:
            stop.set()
            pinger.join()
        row = {"method": m, "first_event_s": first, "peak_rss_mb": rss}
        row.update(disk.get(m, {}))
        if m == "libbpf" and core is not None:
            row["build_s"] = round(float(core.steps["seconds"].sum()), 2)
        rows.append(row)
    cols = ["method", "first_event_s", "peak_rss_mb", "disk_mb", "build_s", "needs_on_target", "disk_what"]
    df = pd.DataFrame(rows)
    return df[[c for c in cols if c in df.columns]]


def cost_conclusions(costs: pd.DataFrame) -> List[str]:
    """Sentences derived from the measured figures (nothing asserted that the numbers do not show)."""
    if len(costs) < 2:
        ran = ", ".join(costs["method"]) or "no way"
        return [f"only {ran} ran here, so there is nothing to compare it with"]
    out = []
    for col, what, unit in (("first_event_s", "time from nothing to the first event", "s"),
                            ("peak_rss_mb", "peak memory (RSS) of the tool's process", "MB"),
                            ("disk_mb", "size on disk of what the target machine needs", "MB")):
        if col not in costs or costs[col].isna().all() or len(costs) < 2:
            continue
        c = costs.dropna(subset=[col]).sort_values(col)
        lo, hi = c.iloc[0], c.iloc[-1]
        ratio = hi[col] / lo[col] if lo[col] > 0 else float("inf")
        mid = "; ".join(f"{r.method} {getattr(r, col):g} {unit}" for r in c.itertuples())
        out.append(f"{what}: {mid} — lowest {lo.method}; highest {hi.method}, {ratio:.1f}× {lo.method}'s.")
    if "build_s" in costs and costs["build_s"].notna().any():
        b = costs.dropna(subset=["build_s"]).iloc[0]
        out.append(f"libbpf paid {b.build_s:g} s once, at build time (vmlinux.h, clang, skeleton, loader); "
                   "the machine that runs the loader pays none of it.")
    return out


def plot_costs(costs: pd.DataFrame, axes: Any = None) -> Any:
    """Three bar charts: time to first event, peak RSS, disk, one bar per method."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, (col, label) in zip(axes, (("first_event_s", "time to first event (s)"),
                                       ("peak_rss_mb", "peak RSS of the tool (MB)"),
                                       ("disk_mb", "needed on disk (MB)"))):
        vals = costs[col] if col in costs else pd.Series([np.nan] * len(costs))
        bars = ax.bar(costs["method"], vals, color=["#4c72b0", "#dd8452", "#55a868"][:len(costs)])
        ax.bar_label(bars, fmt="%g", fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    plt.tight_layout()
    return axes


def plot_parents(df: pd.DataFrame, ax: Any = None) -> Any:
    """For the workload's own kills: the parent pid each method read, against the truth from /proc."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.2))
    mine = df[df["proc_parent_pid"].notna()].reset_index(drop=True)
    if len(mine) == 0:
        ax.set_title("none of the workload's kills were seen")
        ax.set_axis_off()
        return ax
    methods = [m for m in df["method"].cat.categories]
    labels = [f"{c}\n(pid {p})" for c, p in dict.fromkeys(zip(mine["sender_comm"], mine["sender_pid"]))]
    senders = list(dict.fromkeys(mine["sender_pid"]))
    width = 0.8 / (len(methods) + 1)
    x = np.arange(len(senders))
    truth = [int(mine[mine["sender_pid"] == s]["proc_parent_pid"].iloc[0]) for s in senders]
    ax.bar(x, truth, width, color="#999999", label="/proc (truth)")
    for i, m in enumerate(methods):
        sub = mine[mine["method"].astype(str) == m]
        vals = [int(sub[sub["sender_pid"] == s]["parent_pid"].iloc[0]) if (sub["sender_pid"] == s).any() else 0
                for s in senders]
        trusted = bool(sub["trusted"].iloc[0]) if len(sub) else True
        bars = ax.bar(x + (i + 1) * width, vals, width, label=m + ("" if trusted else " (NOT trusted here)"),
                      hatch=None if trusted else "//", edgecolor="black" if not trusted else None)
        ax.bar_label(bars, fmt="%d", fontsize=7)
    ax.set_xticks(x + width * len(methods) / 2)
    ax.set_xticklabels(labels)
    ax.set_ylabel("parent pid")
    ax.set_title("The sender's parent: what each way read from task_struct, and /proc's answer", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


if __name__ == "__main__":  # the bcc child of measure_costs()
    if len(sys.argv) == 4 and sys.argv[1] == "--first-event":
        sys.exit(_first_event_bcc_main(int(sys.argv[2]), float(sys.argv[3])))
    print("usage: python -m ebpf_lab.lessons.three_ways --first-event PID TIMEOUT", file=sys.stderr)
    sys.exit(2)
