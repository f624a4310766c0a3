"""Compile (and load) a C program in a child process first, where a crash of bcc or LLVM cannot reach us.

bcc compiles inside the calling process. Some learner mistakes make LLVM or bcc
end that process: LLVM's backend calls ``exit(1)`` on a stack frame over 512
bytes ("BPF stack limit ... exceeded"), and bcc's rewriter aborts (SIGABRT) on
an undeclared identifier handed to a map method (``events.ringbuf_submit(ev, 0)``
with ``ev`` misspelt). Run in a grader or a notebook kernel, that ends the grader
(no report) or the kernel (the notebook's state is lost).

:func:`trial` does the same compile (and, if asked, the verifier's load of each
function) in a child interpreter bounded in time and memory, and returns a
:class:`Trial`: ``ok``, or the stage that failed (``compile``, ``missing``,
``load``, ``crash``, ``timeout``) with the compiler's or verifier's own words.
Only a program that passed the trial is compiled in the caller's process.

The child has its own process group and dies with its parent (``PR_SET_PDEATHSIG``),
even when the parent is killed by SIGKILL; whatever it loaded goes with it.
"""
from __future__ import annotations

import dataclasses
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import _procs

#: seconds one trial may take (clang on a very large program is slow, never endless)
TIMEOUT = float(os.environ.get("EBPF_LAB_COMPILE_TIMEOUT", "90"))
#: address space the child may use (LLVM needs a few hundred MB; a runaway one is stopped here)
MEMORY = int(float(os.environ.get("EBPF_LAB_COMPILE_MEMORY_MB", "4096")) * 2 ** 20)

# Runs in the child: plain bcc, no ebpf_lab import (fast, and nothing of the lab's state).
# Request on stdin (JSON), reply on a copy of stdout (JSON); everything C code prints goes to fd 2 (a file
# the parent reads), with the offset where each stage's log starts.
_CHILD = r'''
import json, os, sys
out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
req = json.load(sys.stdin)
def kernel_ids():
    ids = {"prog": [], "map": []}
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            for ln in open("/proc/self/fdinfo/" + fd):
                k, _, v = ln.partition(":")
                if k in ("prog_id", "map_id"):
                    ids[k[:-3]].append(int(v))
        except (OSError, ValueError):
            pass
    return ids
def reply(**d):
    sys.stdout.flush(); sys.stderr.flush()
    d["offset"] = os.lseek(2, 0, os.SEEK_CUR)
    d["ids"] = kernel_ids()
    out.write(json.dumps(d)); out.flush()
    os._exit(0)
try:
    import bcc
except ImportError:  # the OS's bcc, outside this interpreter's path: only that package from there
    sys.path.insert(0, req["bcc_dir"])
    import bcc
class B(bcc.BPF):
    def _trace_autoload(self):
        pass
reply_start = os.lseek(2, 0, os.SEEK_CUR)
try:
    b = B(text=req["text"].encode("utf-8", "surrogateescape"), cflags=req["cflags"])
except Exception as e:
    reply(stage="compile", error=str(e), start=reply_start)
compiled = os.lseek(2, 0, os.SEEK_CUR)
missing = [fn for fn, _ in req["functions"] if not bcc.lib.bpf_function_start(b.module, fn.encode())]
if missing:
    reply(stage="missing", error="", missing=missing, start=reply_start)
if req["load"]:
    for fn, ptype in req["functions"]:
        start = os.lseek(2, 0, os.SEEK_CUR)
        try:
            b.load_func(fn, ptype)
        except Exception as e:
            reply(stage="load", error=str(e), function=fn, start=start, compiled=compiled)
reply(stage="ok", error="", start=reply_start)
'''


@dataclasses.dataclass
class Trial:
    """What happened to a program in the child."""

    stage: str  # ok, compile, missing, load, crash, timeout
    log: str = ""  # the compiler's / verifier's output for that stage
    error: str = ""  # bcc's exception text, or how the child ended
    function: str = ""  # the function the verifier refused (stage load)
    missing: List[str] = dataclasses.field(default_factory=list)
    signal: Optional[int] = None  # the signal that ended the child (stage crash)
    compile_log: str = ""  # clang's warnings before a load (e.g. "implicit declaration of function")
    #: ids of the BPF programs and maps the child held when it answered (gone with it)
    kernel_ids: Dict[str, List[int]] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.stage == "ok"

    def crash_summary(self) -> str:
        """One line: how the compiler ended, in its own words where it left any."""
        how = (f"it was killed by {_signame(self.signal)}" if self.signal
               else self.error or "it ended without an answer")
        said = compiler_last_words(self.log)
        return f"{how}: {said}" if said else how


def _signame(sig: Optional[int]) -> str:
    try:
        return signal.Signals(sig or 0).name
    except ValueError:
        return f"signal {sig}"


def compiler_last_words(log: str) -> str:
    """The line of a crashed compiler's output that says why (LLVM's fatal error, bcc's assertion)."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for key in ("LLVM ERROR", "fatal error", "Assertion", "error:"):
        for ln in lines:
            if key in ln:
                return ln
    return lines[-1] if lines else ""


def _limits() -> None:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
    except (ValueError, OSError):
        pass
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash leaves no core file


def trial(text: str, cflags: Sequence[str] = (), functions: Sequence[Tuple[str, int]] = (), *,
          load: bool = False, timeout: Optional[float] = None) -> Trial:
    """Compile ``text`` with ``cflags`` in a child; check ``functions`` exist; with ``load``, load each.

    ``functions`` are (name, bcc program type) pairs. Never raises for anything the program does.
    """
    from ._bcc import find_os_bcc

    timeout = TIMEOUT if timeout is None else timeout
    found = find_os_bcc()
    bcc_dir = os.path.dirname(found) if found else ""
    from .bpf import include_flags  # the lab's program headers (lab_ring.h), as build() has them

    req = json.dumps({"text": text, "cflags": list(cflags) + include_flags(), "functions": [list(f) for f in functions],
                      "load": load, "bcc_dir": bcc_dir}, ensure_ascii=True)
    with tempfile.TemporaryFile(prefix=f"ebl-trial-{os.getpid()}-") as err:
        proc = subprocess.Popen([sys.executable, "-I", "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=err, preexec_fn=_procs.preexec(_limits), env=_procs.child_env())
        with _procs.owned(proc):
            try:
                out, _ = proc.communicate(req.encode(), timeout=timeout)
            except subprocess.TimeoutExpired:
                _procs.kill_group(proc)
                err.seek(0)
                return Trial("timeout", err.read().decode(errors="replace"),
                             f"the compiler did not finish within {timeout:g} s")
        err.seek(0)
        raw = err.read()
    log = raw.decode(errors="replace")
    try:
        d = json.loads(out.decode(errors="replace"))
        stage = str(d["stage"])
    except (ValueError, KeyError, TypeError):
        rc = proc.returncode
        if rc is not None and rc < 0:
            return Trial("crash", log, "", signal=-rc)
        why = "it ran out of memory" if "bad_alloc" in log or "MemoryError" in log else f"it exited with status {rc}"
        return Trial("crash", log, why)
    start = int(d.get("start", 0))
    end = int(d.get("offset", len(log)))
    part = raw[start:end].decode(errors="replace") if stage != "ok" else log
    return Trial(stage, part, str(d.get("error", "")), str(d.get("function", "")), list(d.get("missing", [])),
                 compile_log=raw[:int(d.get("compiled", 0))].decode(errors="replace"),
                 kernel_ids={k: [int(i) for i in v] for k, v in dict(d.get("ids") or {}).items()})


def compile_or_raise(lesson: Any, hooks: Sequence[Any]) -> None:
    """For ``Lesson.compile`` with ``program_text=``: compile it in a child first; raise CompileError if it
    does not compile there (or crashes the compiler), so that the caller (a notebook kernel) lives on."""
    from .errors import CompileError

    t = trial(lesson.program_text, lesson.cflags())  # compile only: the verifier's refusals do not crash
    lesson._trial_done = True
    if t.ok:
        return
    lesson.compile_log = t.log
    if t.stage in ("crash", "timeout"):
        what = ("did not finish" if t.stage == "timeout" else "crashed") + f" ({t.crash_summary()})"
        raise CompileError(f"compiling lesson {lesson.id} (your program): the compiler {what}; it ran in a "
                           "separate process, so this notebook lives on", lesson._explain_compile(t.log))
    raise CompileError(f"compiling lesson {lesson.id} (your program) failed: clang reported errors",
                       lesson._explain_compile(t.log))
