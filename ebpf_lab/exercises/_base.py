"""The machinery every exercise shares: submissions, checks, results, graded programs.

An exercise is a class with a stable ``id``, the lesson it belongs to, the list
of its checks (``CHECKS``: id -> what it checks) and a ``grade(g)`` method that
runs the learner's code on the real kernel against the exercise's own workload,
recording each check on the :class:`Grader` ``g``. A check either passes, fails
with a message and a hint, or is skipped because an earlier one it needs failed.
"""
from __future__ import annotations

import ast
import contextlib
import ctypes
import dataclasses
import json
import os
import re
import time
from typing import Any, Callable, ClassVar, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .. import _kernel
from ..engine import Hook, Lesson
from ..errors import AttachError, CompileError, FeatureUnavailable, LabError, PrivilegeError, VerifierError
from . import _hints, _sandbox

PASS, FAIL, SKIP = "pass", "fail", "skip"
#: seconds a learner's Python function may run before the grader stops it
PY_TIMEOUT = float(os.environ.get("EBPF_LAB_PY_TIMEOUT", "10"))
#: seconds one whole grading run may take before it is stopped (and everything removed); 600 under
#: software emulation (_kernel.EMULATED: a VM beside two guests took over 120 s for one exercise)
GRADE_TIMEOUT = float(os.environ.get("EBPF_LAB_GRADE_TIMEOUT", "600" if _kernel.EMULATED else "120"))


class _GradeTimeout(BaseException):
    """Raised by the watchdog; a BaseException so that no ``except Exception`` on the way swallows it."""


@contextlib.contextmanager
def _watchdog(seconds: float) -> Iterator[None]:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def fire(signum: int, frame: Any) -> None:
        raise _GradeTimeout()

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class Fail(Exception):
    """A check failed: ``message`` says what was seen, ``hint`` what to try."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class Stop(Exception):
    """Nothing more can be checked (e.g. the program did not compile)."""


@dataclasses.dataclass
class CheckResult:
    check: str
    title: str
    status: str
    message: str = ""
    hint: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASS


@dataclasses.dataclass
class Submission:
    """What a learner handed in: the C program and the sources of their Python answers."""

    bpf: Optional[str]
    python: Dict[str, str]  # function name -> source that defines it
    origin: str = ""
    problems: List[str] = dataclasses.field(default_factory=list)  # extraction problems, kindly worded


# ------------------------------------------------------------------ results
@dataclasses.dataclass
class Report:
    exercise: str
    origin: str
    results: List[CheckResult]
    hook_path: str = ""
    seconds: float = 0.0
    #: what the learner's code produced on the workload (DataFrames), to look at: ``report.data["events"]``
    data: Dict[str, Any] = dataclasses.field(default_factory=dict)
    #: the hooks the learner's program was attached to, e.g. ``['kprobe:__x64_sys_kill']``
    hooks: List[str] = dataclasses.field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def score(self) -> Tuple[int, int]:
        return sum(r.passed for r in self.results), len(self.results)

    @property
    def points(self) -> Tuple[int, int]:
        """(points earned, points possible): see :mod:`ebpf_lab.exercises._scoring` (gates earn none)."""
        from ._scoring import report_points

        return report_points(self)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([dataclasses.asdict(r) for r in self.results],
                            columns=["check", "title", "status", "message", "hint"])

    def text(self) -> str:
        mark = {PASS: "PASS", FAIL: "FAIL", SKIP: "skip"}
        lines = [f"exercise {self.exercise}: {self.origin}" + (f"  [{self.hook_path}]" if self.hook_path else "")]
        for r in self.results:
            lines.append(f"  {mark[r.status]}  {r.check:<16} {r.title}")
            if r.status != PASS:
                for ln in r.message.splitlines():
                    lines.append(f"          {ln}")
                if r.hint:
                    for i, ln in enumerate(r.hint.splitlines()):
                        lines.append(f"          {'hint: ' if i == 0 else '      '}{ln}")
        ok, n = self.score
        pts, out_of = self.points
        lines.append(f"{ok}/{n} checks passed, {pts}/{out_of} points" + (" — well done!" if self.passed else ""))
        if self.data:
            lines.append(f"what your code produced: .data[{', '.join(map(repr, self.data))}]")
        return "\n".join(lines)

    __str__ = text

    def _repr_html_(self) -> str:
        import html

        colour = {PASS: "#1a7f37", FAIL: "#cf222e", SKIP: "#6e7781"}
        rows = []
        for r in self.results:
            detail = html.escape(r.message).replace("\n", "<br>")
            if r.hint and r.status != PASS:
                detail += f"<br><b>hint:</b> {html.escape(r.hint)}".replace("\n", "<br>")
            rows.append(f"<tr><td style='color:{colour[r.status]};font-weight:bold'>{r.status.upper()}</td>"
                        f"<td><code>{html.escape(r.check)}</code></td><td>{html.escape(r.title)}</td>"
                        f"<td style='text-align:left'>{detail if r.status != PASS else ''}</td></tr>")
        ok, n = self.score
        pts, out_of = self.points
        head = (f"<b>{html.escape(self.exercise)}</b>: {ok}/{n} checks passed, {pts}/{out_of} points"
                + (" — well done!" if self.passed else ""))
        if self.hook_path:
            head += f" <small>({html.escape(self.hook_path)})</small>"
        foot = ""
        if self.data:
            foot = ("<small>what your code produced on the workload: "
                    + ", ".join(f"<code>.data[{html.escape(repr(k))}]</code>" for k in self.data) + "</small>")
        return f"<div>{head}<table>{''.join(rows)}</table>{foot}</div>"


# ------------------------------------------------------ kind explanations
# (the hint tables live in _hints: chosen from the line of the log that names the error)
_COMPILE_HINTS: List[Tuple[str, str]] = [(rx, hint) for _, rx, hint in _hints.COMPILE_RULES]
_VERIFIER_HINTS: List[Tuple[str, str]] = [(rx, hint) for _, rx, hint in _hints.VERIFIER_RULES]


#: helpers that change the machine rather than observe it: no exercise needs them, and a grader
#: running as root does not load a submission that calls them
FORBIDDEN_HELPERS = ("bpf_send_signal", "bpf_send_signal_thread", "bpf_probe_write_user", "bpf_override_return",
                     "bpf_sys_bpf", "bpf_sys_close", "bpf_kptr_xchg")


def forbidden_helpers(text: str) -> List[str]:
    return [h for h in FORBIDDEN_HELPERS if re.search(rf"\b{h}\s*\(", text)]


def explain(patterns: List[Tuple[str, str]], log: str, default: str) -> str:
    """The hint of the first pattern found in ``log`` (no formatting: ``{0}`` is replaced, braces stay braces)."""
    for rx, hint in patterns:
        m = re.search(rx, log)
        if m:
            return _hints.fill(hint, m.groups())
    return default


def first_errors(log: str, n: int = 6) -> str:
    lines = [ln for ln in log.splitlines() if ln.strip()]
    errs = [i for i, ln in enumerate(lines) if "error:" in ln]
    if errs:
        i = errs[0]
        return "\n".join(lines[i:i + 3] + [ln for ln in (lines[j] for j in errs[1:n]) if ln not in lines[i:i + 3]])
    return "\n".join(lines[-n:])


def verifier_summary(log: str, n: int = 4) -> str:
    lines = [ln for ln in log.splitlines() if ln.strip() and not ln.startswith("processed ")]
    return "\n".join(lines[-n:])


# ------------------------------------------------------ the graded program
class GradedProgram(Lesson):
    """A learner's (or the grader's hidden) C program on hooks the exercise chooses."""

    id = "exercise"
    lost_map = ""

    def __init__(self, text: str, hooks: Sequence[Hook], cflags: Sequence[str] = (), *, events_map: str = "",
                 label: str = "your program") -> None:
        super().__init__(program_text=text)
        self._hooks = list(hooks)
        self._cflags = list(cflags)
        self.events_map = events_map
        self.label = label
        self.prog_ids: List[int] = []

    def select_hooks(self) -> List[Hook]:
        return [dataclasses.replace(h) for h in self._hooks]

    def extra_cflags(self) -> List[str]:
        return self._cflags

    def load(self) -> pd.DataFrame:
        df = super().load()
        if "prog_id" in df:
            self.prog_ids = [int(x) for x in df["prog_id"]]
        return df

    def to_frame(self, arr: np.ndarray) -> pd.DataFrame:
        cols: Dict[str, Any] = {}
        for name in arr.dtype.names or ():
            col = arr[name]
            if col.dtype.kind == "S":
                cols[name] = [v.split(b"\0", 1)[0].decode("utf-8", "replace") for v in col]
            else:
                cols[name] = col
        return pd.DataFrame(cols)

    def events(self) -> pd.DataFrame:
        """Everything the ring buffer holds now, as a DataFrame of the learner's struct fields."""
        if self._reader is None:
            return pd.DataFrame()
        chunks = []
        while True:  # read the ring directly: independent of how lessons batch their events
            arr = self._reader.drain()
            if not len(arr):
                break
            chunks.append(arr)
        dt = self._reader.dtype
        arr = np.concatenate(chunks) if chunks else np.empty(0, dt)
        return self.to_frame(arr) if arr.dtype.names else pd.DataFrame()

    def map_items(self, name: str) -> List[Tuple[Any, Any]]:
        """A map's (key, value) pairs as plain Python values (ints, tuples, dicts for structs)."""
        tab = self.bpf[name]
        out = []
        for k, v in tab.items():
            out.append((plain(k), plain(v)))
        return out

    def map_shape(self, name: str) -> Optional[Dict[str, int]]:
        from .._bpfsys import map_info

        try:
            tab = self.bpf[name]
        except Exception:
            return None
        return map_info(tab.map_fd)


def plain(v: Any) -> Any:
    """A ctypes value from a bcc map -> int / tuple / dict of plain values."""
    if isinstance(v, (int, float)):
        return v
    if hasattr(v, "value") and not isinstance(v, ctypes.Structure):
        return v.value
    if isinstance(v, ctypes.Structure):
        return {f[0]: plain(getattr(v, f[0])) for f in v._fields_}
    if isinstance(v, ctypes.Array):
        if v._type_ is ctypes.c_char:
            return bytes(v).split(b"\0", 1)[0].decode("utf-8", "replace")
        return [plain(x) for x in v]
    return v


# ------------------------------------------------------ leftovers
BPF_PROG_GET_FD_BY_ID = 13


def prog_alive(prog_id: int) -> bool:
    """Is a BPF program with this id still in the kernel?"""
    from .._bpfsys import sys_bpf

    attr = ctypes.create_string_buffer(prog_id.to_bytes(4, "little") + bytes(12))
    try:
        fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, attr)
    except OSError:
        return False
    os.close(fd)
    return True


def wait_gone(prog_ids: Sequence[int], timeout: float = 2.0) -> List[int]:
    """Program ids still loaded after ``timeout`` (the kernel frees programs shortly after the last fd closes)."""
    end = time.monotonic() + timeout
    alive = list(prog_ids)
    while alive and time.monotonic() < end:
        alive = [p for p in alive if prog_alive(p)]
        if alive:
            time.sleep(0.05)
    return alive


BPFFS = "/sys/fs/bpf"


def bpffs_entries() -> set:
    """Every path under bpffs (pinned maps and programs outlive the process that made them)."""
    out = set()
    for root, dirs, files in os.walk(BPFFS):
        for n in dirs + files:
            out.add(os.path.join(root, n))
    return out


# ------------------------------------------------------ the grader
class Grader:
    """Records check results for one submission; see :class:`Exercise`."""

    def __init__(self, exercise: "Exercise", sub: Submission, *, force_hook: Optional[str] = None) -> None:
        self.exercise = exercise
        self.sub = sub
        self.results: Dict[str, CheckResult] = {}
        self.force_hook = force_hook
        self.hook_path = ""
        self.stack = contextlib.ExitStack()
        self.programs: List[GradedProgram] = []
        self.nets: List[Any] = []  # lab networks of this run (checked gone by verify_clean)
        self.facts: Dict[str, Any] = {}
        self.pinned_before = bpffs_entries()
        self.data: Dict[str, Any] = {}
        self.hooks: List[str] = []

    # -- recording
    def record(self, check: str, status: str, message: str = "", hint: str = "") -> None:
        title = self.exercise.CHECKS.get(check, check)
        if check not in self.exercise.CHECKS:
            raise KeyError(f"exercise {self.exercise.id}: undeclared check {check!r}")
        self.results[check] = CheckResult(check, title, status, message, hint)

    def ok(self, check: str) -> bool:
        r = self.results.get(check)
        return r is not None and r.passed

    def step(self, check: str, needs: Sequence[str] = ()) -> Callable[[Callable[[], Any]], Any]:
        """Decorator running a check at once::

            @g.step("only-target", needs=["fires"])
            def _():
                if bad: raise Fail("what was seen", "what to try")

        A Fail records a failure, returning normally a pass; when a check in ``needs``
        did not pass, the body is not run and the check is skipped. Returns what the body returned.
        """
        def run(fn: Callable[[], Any]) -> Any:
            missing = [n for n in needs if not self.ok(n)]
            if missing:
                self.record(check, SKIP, f"not checked: '{missing[0]}' has to pass first")
                return None
            try:
                value = fn()
            except Fail as f:
                self.record(check, FAIL, f.message, f.hint)
                return None
            except LabError as e:
                self.record(check, FAIL, f"{type(e).__name__}: {e}", "")
                return None
            if check not in self.results:
                self.record(check, PASS)
            return value

        return run

    # -- programs
    def program(self, text: str, hooks: Sequence[Hook], cflags: Sequence[str] = (), *, events_map: str = "",
                label: str = "your program") -> GradedProgram:
        p = GradedProgram(text, hooks, cflags, events_map=events_map, label=label)
        self.programs.append(p)
        self.stack.callback(p.detach)
        return p

    def build(self, text: Optional[str], hooks: Sequence[Hook], cflags: Sequence[str] = (), *,
              events_map: str = "", compiles: str = "compiles", loads: str = "loads",
              prepare: Optional[Callable[[GradedProgram], None]] = None) -> Optional[GradedProgram]:
        """Compile, load and attach the learner's program, recording 'compiles' and 'loads'.

        ``prepare(program)`` runs before compiling (e.g. to say where network hooks attach).
        """
        if not text or not text.strip():
            self.record(compiles, FAIL, "no BPF program was found in your notebook.",
                        f"keep your C code in the string {self.exercise.bpf_var} = r\"\"\"...\"\"\" in the cell tagged "
                        f"'{self.exercise.bpf_tag}'.")
            return None
        odd = not_text(text)
        if odd:
            self.record(compiles, FAIL, f"your C program cannot be compiled: {odd}",
                        "C source is plain text: delete the character and type it again.")
            return None
        bad = forbidden_helpers(text)
        if bad:
            self.record(compiles, FAIL, f"your program calls {', '.join(bad)}(), which changes the machine "
                        "(signals, memory of other processes, return values); the grader does not run programs "
                        "that use it.", "this exercise only observes: remove that call.")
            return None
        p = self.program(text, hooks, cflags, events_map=events_map)
        if prepare is not None:
            prepare(p)
        if not self._trial(p, text, compiles, loads):
            return None
        try:
            p.compile()
        except CompileError as e:  # the trial compiled it: only a difference between two compiles lands here
            log = e.log or p.compile_log
            self.record(compiles, FAIL, "your C program does not compile. clang says:\n" + first_errors(log),
                        _hints.compile_hint(p.compile_log or log)[1])
            return None
        self.record(compiles, PASS)
        try:
            p.load()
        except VerifierError as e:
            self.record(loads, FAIL, "the kernel's verifier refused your program. The end of its log:\n"
                        + verifier_summary(e.log), _hints.verifier_hint(e.log, p.compile_log, str(e))[1])
            return None
        except FeatureUnavailable as e:
            self.record(loads, FAIL, str(e), "this machine cannot run the hook; try the lab VM (see the README).")
            return None
        try:
            p.attach()
        except (AttachError, FeatureUnavailable) as e:
            self.record(loads, FAIL, f"your program loaded but could not be attached: {e}",
                        "keep the hook function's signature as given in the exercise.")
            return None
        if p.events_map and p._reader is None:
            self.record(loads, FAIL, f"your program has no ring buffer named '{events_map}'.",
                        f"keep the line BPF_RINGBUF_OUTPUT({events_map}, ...) from the exercise.")
            return None
        self.record(loads, PASS)
        self.hooks = [h.name for h in p.hooks]
        return p

    def rebuild(self, text: str, hooks: Sequence[Hook], cflags: Sequence[str], *, check: str, why: str, hint: str,
                events_map: str = "", prepare: Optional[Callable[[GradedProgram], None]] = None
                ) -> Optional[GradedProgram]:
        """The learner's program once more (e.g. at a second drawn value), built exactly as :meth:`build` does:
        tried in the compile child first, then compiled, loaded and attached here.

        'compiles' and 'loads' keep what the first build recorded; a failure now is recorded at ``check``,
        as ``why`` (what changed) + what went wrong, with ``hint``. None then.
        """
        before = self.results.pop(check, None)
        p = self.build(text, hooks, cflags, events_map=events_map, compiles=check, loads=check, prepare=prepare)
        now = self.results.pop(check, None)
        if p is None:
            said = now.message if now and now.message else "it failed."
            self.record(check, FAIL, f"{why} {said[:1].lower()}{said[1:]}", hint)
            return None
        if before is not None:
            self.results[check] = before
        return p

    def _trial(self, p: GradedProgram, text: str, compiles: str, loads: str) -> bool:
        """Compile and load the learner's program in a child process first (see ebpf_lab._trial).

        A crash of LLVM or bcc there (a stack frame over 512 bytes, an undeclared name handed to a map
        method) becomes a failed check with the compiler's own words; so do compile and verifier errors,
        each with the hint for its class. True when the program may be compiled in this process.
        """
        from .. import _trial
        from ..bpf import prog_type
        from ..kernel_headers import prepare

        p.preflight()
        prepare()
        hooks = p.select_hooks()
        t = _trial.trial(text, p.cflags(), [(h.fn, prog_type(h.kind)) for h in hooks], load=True)
        p._trial_done = True
        if t.ok:
            return True
        if t.stage in ("crash", "timeout"):
            kind, hint = _hints.crash_hint(t.log)
            said = first_errors(p._explain_compile(t.log)) if t.log.strip() else ""
            how = (t.error if t.stage == "timeout" else
                   f"killed by {_trial._signame(t.signal)}" if t.signal else t.error or "no answer")
            what = "did not finish" if t.stage == "timeout" else "crashed"
            self.record(compiles, FAIL, f"the compiler {what} on your program ({how}); it ran in a separate "
                        "process, so the grader carried on. " + (f"clang/LLVM said:\n{said}" if said
                                                                 else t.crash_summary()), hint)
            return False
        if t.stage == "compile":
            kind, hint = _hints.compile_hint(t.log)
            if kind in ("map-too-big", "map-invalid", "map-refused"):  # clang was content; the kernel refused to create the map
                self.record(compiles, PASS)
                self.record(loads, FAIL, "the kernel refused to create one of your maps: "
                            + _hints.compile_error_line(t.log), hint)
                return False
            self.record(compiles, FAIL, "your C program does not compile. clang says:\n"
                        + first_errors(p._explain_compile(t.log)), hint)
            return False
        if t.stage == "missing":
            fn = t.missing[0]
            where = next((h.name for h in hooks if h.fn == fn), "its hook")
            self.record(compiles, FAIL, f"your program compiles, but has no function {fn}().",
                        f"the grader attaches {fn}() to {where}: keep the function's name as given.")
            return False
        self.record(compiles, PASS)
        self.record(loads, FAIL, "the kernel's verifier refused your program. The end of its log:\n"
                    + verifier_summary(t.log), _hints.verifier_hint(t.log, t.compile_log, t.error)[1])
        return False

    def hidden(self, file: str, hooks: Sequence[Hook], cflags: Sequence[str] = ()) -> GradedProgram:
        """The exercise's own truth program (ebpf_lab/exercises/programs/FILE), attached next to the learner's."""
        from importlib import resources

        text = (resources.files("ebpf_lab") / "exercises" / "programs" / file).read_text()
        p = self.program(text, hooks, cflags, label=f"grader's {file}")
        p._trial_done = True  # the grader's own program: no need to try it in a child first
        p.compile()
        p.load()
        p.attach()
        return p

    def run_python(self, function: str, *args: Any, check: str, timeout: Optional[float] = None) -> Any:
        """Call the learner's Python ``function`` in a child process; a fault records ``check`` as failed."""
        timeout = PY_TIMEOUT if timeout is None else timeout
        src = self.sub.python.get(function)
        if src is None:
            raise Fail(f"your notebook does not define {function}().",
                       f"write def {function}(...) in the cell tagged '{self.exercise.py_tag}', keeping its name.")
        out = _sandbox.run_function(src, function, args, timeout=timeout)
        if out.ok:
            return out.value
        if out.status == "timeout":
            raise Fail(f"{function}() did not return within {timeout:g} s, so the grader stopped it.",
                       "look for a loop that never ends (a while loop whose condition never becomes false).")
        if out.status == "missing":
            raise Fail(f"your cell runs, but does not define {function}().", f"keep the name {function} as given.")
        if out.status == "error" and out.error_type == "NotImplementedError":
            raise Fail(f"{function}() is not written yet (it still raises NotImplementedError).",
                       "replace `raise NotImplementedError()` with your code.")
        if out.status == "error":
            where = (f" at line {out.line} of your cell" + (f": {out.text.strip()}" if out.text.strip() else "")
                     if out.line else "")
            raise Fail(f"{function}() stopped with {out.error_type}: {out.message}{where}.",
                       _python_hint(out.error_type))
        if out.status == "unpicklable":
            raise Fail(f"{function}() returned a {out.error_type}, which cannot be checked.",
                       "return a pandas DataFrame (or plain numbers, strings, lists and dicts).")
        raise Fail(f"{function}() crashed the Python interpreter ({out.message}).", "")

    # -- finish
    def close(self) -> None:
        ids = [i for p in self.programs for i in p.prog_ids]
        self.stack.close()
        self.facts["prog_ids"] = ids

    def verify_clean(self, check: str = "clean") -> None:
        """After detaching: no program of this run is left in the kernel."""
        ids = self.facts.get("prog_ids", [])
        left = wait_gone(ids)
        nets = [x for n in self.nets for x in n.leftovers()]
        # only what the learner's own source names (BPF_TABLE_PINNED takes a literal path): never
        # someone else's object pinned meanwhile
        pinned = sorted(e for e in bpffs_entries() - self.pinned_before if e in (self.sub.bpf or ""))
        if pinned:
            for path in sorted(pinned, key=len, reverse=True):  # the machine is left clean all the same
                try:
                    os.rmdir(path) if os.path.isdir(path) else os.unlink(path)
                except OSError:
                    pass
            self.record(check, FAIL, f"your program pinned {', '.join(pinned)} in bpffs: a pinned map outlives "
                        "the program and the process, and stays in the kernel until someone deletes it. "
                        "The grader removed it.",
                        "use BPF_HASH / BPF_ARRAY (not BPF_TABLE_PINNED) in this exercise.")
        elif nets:
            self.record(check, FAIL, f"the grader's lab network is still there: {', '.join(nets)}.",
                        "run `sudo ebpf-lab cleanup`; if this persists, tell your teacher.")
        elif left:
            self.record(check, FAIL, f"{len(left)} BPF program(s) of this run are still loaded (ids {left}).",
                        "run `sudo ebpf-lab cleanup`; if this persists, tell your teacher.")
        else:
            self.record(check, PASS)


def _python_hint(kind: str) -> str:
    return {
        "KeyError": "a dict or DataFrame has no such key/column: print what you get to see the names.",
        "NameError": "a name is used before it is defined, or misspelt.",
        "TypeError": "a value is not of the type the code expects: print(type(x)) helps.",
        "AttributeError": "the object has no such attribute/method: check the spelling, or what type it is.",
        "SyntaxError": "Python cannot read the cell: look at the line named, and the line before it.",
        "IndentationError": "the indentation of the line named does not match its block.",
        "ZeroDivisionError": "a division by zero: is your total 0?",
        "ModuleNotFoundError": "only the standard library, numpy and pandas are available to your function.",
    }.get(kind, "run your function in the notebook on a small example to see where it goes wrong.")


# ------------------------------------------------------ the exercise
class Exercise:
    """Base class: subclasses set the class attributes and write ``grade``."""

    id: ClassVar[str] = ""
    lesson: ClassVar[str] = ""
    title: ClassVar[str] = ""
    level: ClassVar[int] = 1  # difficulty: 1, 2, 3
    #: check id -> what it checks (in the order they are reported)
    CHECKS: ClassVar[Dict[str, str]] = {}
    #: the notebook cell tags and names where answers live
    bpf_tag: ClassVar[str] = "answer-bpf"
    bpf_var: ClassVar[str] = "PROGRAM"
    py_tag: ClassVar[str] = "answer-py"
    py_functions: ClassVar[Tuple[str, ...]] = ()
    #: markers a test of this exercise needs (besides root/bpf)
    needs: ClassVar[Tuple[str, ...]] = ("tracepoints",)

    @property
    def notebook(self) -> str:
        return f"{self.id}.ipynb"

    def hook_variants(self) -> List[str]:
        """Hook paths this exercise can be graded on, best first (e.g. kprobe, then tracepoint)."""
        return ["tracepoint"]

    def choose_hook(self, force: Optional[str] = None) -> str:
        variants = self.hook_variants()
        if force:
            if force not in variants:
                raise LabError(f"exercise {self.id}: no hook path {force!r}; paths: {', '.join(variants)}")
            return force
        if "kprobe" in variants and _kernel.kprobes_available():
            return "kprobe"
        return [v for v in variants if v != "kprobe"][0] if len(variants) > 1 else variants[0]

    def grade(self, g: Grader) -> None:  # pragma: no cover - subclasses
        raise NotImplementedError

    def run(self, sub: Submission, *, force_hook: Optional[str] = None) -> Report:
        t0 = time.monotonic()
        g = Grader(self, sub, force_hook=force_hook)
        try:
            with _watchdog(GRADE_TIMEOUT):
                self._run(g, sub, force_hook)
        except _GradeTimeout:
            first = next((c for c in self.CHECKS if c not in g.results), next(iter(self.CHECKS)))
            g.record(first, FAIL, f"grading took longer than {GRADE_TIMEOUT:g} s and was stopped; everything it "
                     "attached was removed.", "grade again; if it happens again, tell your teacher.")
        finally:
            g.close()
        if "clean" in self.CHECKS:
            g.verify_clean("clean")
        for c in self.CHECKS:  # everything not reached is reported as skipped
            if c not in g.results:
                failed = next((r.check for r in g.results.values() if r.status == FAIL), None)
                g.results[c] = CheckResult(c, self.CHECKS[c], SKIP,
                                           f"not checked: '{failed}' has to pass first" if failed else "not reached")
        ordered = [g.results[c] for c in self.CHECKS]
        hp = {"kprobe": "graded on kprobes", "tracepoint": "graded on tracepoints (this kernel has no kprobes)"
              if "kprobe" in self.hook_variants() else "graded on tracepoints"}.get(g.hook_path, f"graded on {g.hook_path}")
        return Report(self.id, sub.origin, ordered, hp, round(time.monotonic() - t0, 2), g.data, g.hooks)

    def _run(self, g: Grader, sub: Submission, force_hook: Optional[str]) -> None:
        try:
            _kernel.require_root(f"grading exercise {self.id}")
            _kernel.ensure_kernel_fs()
            if sub.problems and sub.bpf is None and not sub.python:
                first = next(iter(self.CHECKS))
                g.record(first, FAIL, sub.problems[0], "open the notebook in JupyterLab and check the answer cells.")
            else:
                g.hook_path = self.choose_hook(force_hook)
                try:
                    self.grade(g)
                except Stop:
                    pass
        except PrivilegeError as e:
            first = next(iter(self.CHECKS))
            g.record(first, FAIL, str(e), "grading loads your program into the kernel: it needs root.")
        except Fail as f:
            first = next((c for c in self.CHECKS if c not in g.results), next(iter(self.CHECKS)))
            g.record(first, FAIL, f.message, f.hint)
        except LabError as e:
            first = next((c for c in self.CHECKS if c not in g.results), next(iter(self.CHECKS)))
            g.record(first, FAIL, f"the grader could not run your code: {e}", "")
        except Exception as e:  # the grader's own fault: say so, kindly, without a traceback
            first = next((c for c in self.CHECKS if c not in g.results), next(iter(self.CHECKS)))
            g.record(first, FAIL, f"the grader hit an unexpected problem ({type(e).__name__}: {e}).",
                     "this is not necessarily your fault: tell your teacher.")


# ------------------------------------------------------ notebooks
def _cells(nb: Dict[str, Any]) -> List[Dict[str, Any]]:
    return nb.get("cells", [])


def cell_source(cell: Dict[str, Any]) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def cell_tags(cell: Dict[str, Any]) -> List[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def not_text(source: str) -> str:
    """'' when ``source`` is plain text; else one line saying where it is not (a lone surrogate, a NUL)."""
    for i, line in enumerate(source.splitlines() or [source], 1):
        try:
            line.encode("utf-8")
        except UnicodeEncodeError as e:
            return f"line {i} holds a character that is not text ({line[e.start]!r}): retype that line."
        if "\0" in line:
            return f"line {i} holds a NUL character: retype that line."
    return ""


def string_assigned(source: str, name: str) -> Tuple[Optional[str], str]:
    """The string literal assigned to ``name`` in ``source`` (without running it), or a problem."""
    bad = not_text(source)
    if bad:
        return None, f"the cell with your C program cannot be read: {bad}"
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as e:
        if not isinstance(e, SyntaxError):
            return None, f"the cell with your C program is not valid Python ({e})."
        return None, f"the cell with your C program is not valid Python (line {e.lineno}: {e.msg})."
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return node.value.value, ""
            return None, f"{name} must be a plain string literal (r\"\"\"...\"\"\"), not an expression."
    return None, f"the cell tagged for your C program does not assign {name} = r\"\"\"...\"\"\"."


def functions_defined(source: str, names: Sequence[str]) -> Dict[str, str]:
    """Which of ``names`` the cell defines; each maps to the whole cell (imports and helpers included)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # ValueError: a NUL or a lone surrogate
        return {n: source for n in names}  # let the sandbox report the error with its line
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return {n: source for n in names if n in defined}


def not_a_notebook(nb: Any) -> str:
    """'' for something shaped like a notebook (nbformat 4: a dict with a list of cells), else why not."""
    if not isinstance(nb, dict):
        return f"it holds a JSON {type(nb).__name__}, not an object with \"cells\"."
    if not isinstance(nb.get("cells"), list):
        return "it has no list of \"cells\"."
    for i, c in enumerate(nb["cells"]):
        if not isinstance(c, dict):
            return f"cell {i} is not an object."
        src = c.get("source", "")
        if not isinstance(src, str) and not (isinstance(src, list) and all(isinstance(x, str) for x in src)):
            return f"cell {i}'s source is neither text nor a list of lines."
        meta = c.get("metadata", {})
        if not isinstance(meta, dict) or not isinstance(meta.get("tags", []), list):
            return f"cell {i}'s metadata is malformed."
    if not isinstance(nb.get("metadata", {}), dict) or not isinstance(nb.get("metadata", {}).get("ebpf_lab", {}), dict):
        return "its metadata is malformed."
    return ""


def submission_from_notebook(path: str, ex: Exercise) -> Submission:
    try:
        with open(path, encoding="utf-8") as f:
            nb = json.load(f)
    except UnicodeDecodeError as e:
        return Submission(None, {}, path, [f"could not read the notebook {path}: it is not UTF-8 text "
                                           f"(byte {e.object[e.start:e.start + 1]!r} at offset {e.start})."])
    except ValueError as e:
        return Submission(None, {}, path, [f"could not read the notebook {path}: it is not JSON ({e})."])
    except OSError as e:
        return Submission(None, {}, path, [f"could not read the notebook {path}: {e.strerror or e}."])
    why = not_a_notebook(nb)
    if why:
        return Submission(None, {}, path, [f"{path} is not a Jupyter notebook: {why}"])
    problems: List[str] = []
    bpf: Optional[str] = None
    py_src: List[str] = []
    for cell in _cells(nb):
        if cell.get("cell_type") != "code":
            continue
        tags = cell_tags(cell)
        if ex.bpf_tag in tags:
            text, why = string_assigned(cell_source(cell), ex.bpf_var)
            if text is None:
                problems.append(why)
            else:
                bpf = text
        if ex.py_tag in tags:
            py_src.append(cell_source(cell))
    python: Dict[str, str] = {}
    if ex.py_functions:
        src = "\n\n".join(py_src)
        python = functions_defined(src, ex.py_functions)
    if bpf is None and not problems and ex.bpf_tag:
        problems.append(f"no cell tagged '{ex.bpf_tag}' was found (the cell holding {ex.bpf_var} = r\"\"\"...\"\"\").")
    meta = nb.get("metadata", {}).get("ebpf_lab", {})
    if meta.get("exercise") and meta["exercise"] != ex.id:
        problems.append(f"this notebook is for exercise {meta['exercise']!r}, not {ex.id!r}.")
        bpf, python = None, {}
    return Submission(bpf, python, path, problems)


def submission_from_namespace(ns: Dict[str, Any], ex: Exercise, origin: str = "this notebook") -> Submission:
    import inspect

    problems: List[str] = []
    bpf = ns.get(ex.bpf_var)
    if bpf is not None and not isinstance(bpf, str):
        problems.append(f"{ex.bpf_var} should be a string holding your C program.")
        bpf = None
    python: Dict[str, str] = {}
    for name in ex.py_functions:
        fn = ns.get(name)
        if fn is None:
            continue
        try:
            import linecache

            cell = "".join(linecache.getlines(fn.__code__.co_filename))  # the whole cell (IPython keeps it)
            python[name] = cell if f"def {name}" in cell else inspect.getsource(fn)
        except (OSError, TypeError, AttributeError):
            problems.append(f"the source of {name}() could not be found: run its cell again.")
    return Submission(bpf, python, origin, problems)
