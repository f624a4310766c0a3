"""The lesson engine: one lesson = one program file = one class = one notebook.

A lesson walks through the life of a BPF program, one public method per step,
so that a notebook cell can call each on its own::

    lab = KmallocLesson(min_bytes=128)
    print(lab.source())      # the exact C that will be compiled, with its -D flags
    lab.compile()            # clang -> BPF bytecode (CompileError with clang's message)
    lab.load()               # into the kernel: the verifier's verdict, instruction counts
    lab.attach()             # onto the hook; says which hook was used
    lab.trigger()            # start the lesson's built-in workload
    df = lab.collect()       # drain events for a bounded time/count -> DataFrame
    lab.detach()             # nothing stays attached

(a lesson that needs more than bcc's compile, e.g. lesson 06's libbpf tool, has a
``lab.build()`` step first; for the others it does nothing) or all at once:
``df = KmallocLesson().run()``. A lesson is a context manager; every attachment
registers its own removal the moment it succeeds, and errors,
KeyboardInterrupt and interpreter exit all detach.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import enum
import os
import re
import subprocess
import time
import weakref
from typing import Any, Callable, ClassVar, Dict, List, Optional, Sequence, TypeVar

import numpy as np
import pandas as pd

from . import _kernel
from ._bcc import import_bcc
from ._progress import Progress
from .bpf import Hook, attach_hook, build, capture_stderr, lab_bpf_class, load_function, program_path
from ._ringbuf import RingReader
from .errors import AttachError, FeatureUnavailable, LabParameterError, LessonStateError

__all__ = ["Lesson", "Param", "Hook", "State", "Workload", "program_path", "match_in_order"]

_L = TypeVar("_L", bound="Lesson")


@dataclasses.dataclass(frozen=True)
class Param:
    """A lesson parameter. ``cflag`` names the C macro it becomes (``-DNAME=value``)."""

    default: Any
    doc: str
    min: Optional[float] = None
    max: Optional[float] = None
    choices: Optional[Sequence[Any]] = None
    cflag: Optional[str] = None

    def check(self, name: str, value: Any) -> Any:
        kind = type(self.default)
        if kind is bool:
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                value = value.lower() in ("1", "true", "yes", "on")
            if not isinstance(value, (bool, int)):
                raise LabParameterError(f"parameter {name}={value!r}: expected true or false")
            return bool(value)
        if kind in (int, float):
            try:
                if isinstance(value, bool):
                    raise ValueError
                if isinstance(value, str) and kind is int:
                    v = int(value, 0)
                else:
                    v = kind(value)
                if kind is int and isinstance(value, float) and not value.is_integer():
                    raise ValueError
            except (TypeError, ValueError):
                raise LabParameterError(
                    f"parameter {name}={value!r}: expected {'an integer' if kind is int else 'a number'}") from None
            if self.min is not None and v < self.min or self.max is not None and v > self.max:
                raise LabParameterError(f"parameter {name}={value!r} is out of range [{self.min}, {self.max}]: {self.doc}")
            value = v
        if self.choices is not None and value not in self.choices:
            raise LabParameterError(f"parameter {name}={value!r}: choose one of {', '.join(map(str, self.choices))}")
        return value


class State(enum.Enum):
    NEW = "new"
    COMPILED = "compiled"
    LOADED = "loaded"
    ATTACHED = "attached"
    CLOSED = "closed"


@dataclasses.dataclass
class Workload:
    """A running built-in workload (a child process)."""

    description: str
    proc: subprocess.Popen
    started: float
    facts: Dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def done(self) -> bool:
        return self.proc.poll() is not None

    def wait(self, timeout: Optional[float] = None) -> int:
        return self.proc.wait(timeout)

    def __post_init__(self) -> None:
        from ._procs import register  # the reaper ends it if this process dies first (even by SIGKILL)

        register(self.proc)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


_live: "weakref.WeakSet[Lesson]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for lesson in list(_live):
        lesson.detach()


# A forked child (pyroute2 forks to enter network namespaces) must not detach its parent's lessons at exit.
os.register_at_fork(after_in_child=_live.clear)


def _np_dtype_of(cls: Any) -> np.dtype:
    """numpy dtype of a ctypes Structure, with char arrays as fixed-size byte strings."""
    names, formats, offsets = [], [], []
    for fname, ftype in cls._fields_:
        off = getattr(cls, fname).offset
        if issubclass(ftype, ctypes.Array) and ftype._type_ is ctypes.c_char:
            fmt: Any = f"S{ftype._length_}"
        else:
            fmt = np.dtype(ftype)
        names.append(fname)
        formats.append(fmt)
        offsets.append(off)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": ctypes.sizeof(cls)})


def factorize(values: np.ndarray) -> "tuple[np.ndarray, np.ndarray]":
    """(codes, uniques) by hashing, O(n): far cheaper than sorting for repetitive event fields."""
    codes, uniques = pd.factorize(values)
    return np.asarray(codes, dtype=np.int32), np.asarray(uniques)


def encode_bytes(col: np.ndarray) -> "tuple[np.ndarray, np.ndarray]":
    """Fixed-size byte strings -> (int32 codes, distinct values), exactly, by hashing 64-bit words."""
    n = len(col)
    width = col.dtype.itemsize
    raw = np.ascontiguousarray(col).view(np.uint8).reshape(n, width)
    pad = (-width) % 8
    if pad:
        raw = np.concatenate([raw, np.zeros((n, pad), np.uint8)], axis=1)
    words = raw.view(np.uint64)
    key = np.zeros(n, np.int64)
    for i in range(words.shape[1]):  # exact combination: codes of (codes, next word)
        c, u = factorize(words[:, i])
        key, _ = factorize(key * len(u) + c)
    codes, uniq_keys = factorize(key)
    firsts = np.zeros(len(uniq_keys), np.int64)
    firsts[codes[::-1]] = np.arange(n - 1, -1, -1)
    return codes, col[firsts]


def _decode(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode("utf-8", "replace")


def category_from_codes(codes: np.ndarray, values: np.ndarray) -> pd.Categorical:
    """codes into distinct byte strings -> a sorted pandas categorical of decoded text."""
    names = np.array([_decode(v) for v in values.tolist()], dtype=object)
    cats, remap = np.unique(names, return_inverse=True)  # also merges values that decode equal
    return pd.Categorical.from_codes(remap.astype(np.int32)[codes], categories=pd.Index(cats, dtype=object))


def bytes_to_category(col: np.ndarray) -> pd.Categorical:
    """Fixed-size C strings (numpy 'S16') -> a pandas categorical, decoding each distinct value once."""
    if len(col) == 0:
        return pd.Categorical([])
    codes, values = encode_bytes(col)
    return category_from_codes(codes, values)


class ChunkedRecords:
    """Drained events kept column by column, handed over one column at a time.

    Each drained chunk is split into one array per field; ``records["field"]``
    (or ``records.take("field")``) concatenates that field and releases its
    chunks. Building a DataFrame therefore never holds the raw records and the
    finished columns in full at the same time.

    **Each field is handed over once**: a second ``records["field"]`` raises
    :class:`KeyError` saying the field was already taken (keep the array the
    first read returned); ``taken`` lists the fields handed over so far.
    """

    def __init__(self, dtype: Optional[np.dtype]) -> None:
        self.dtype = dtype
        self._cols: Dict[str, List[np.ndarray]] = {n: [] for n in (dtype.names or ())} if dtype is not None else {}
        self._dicts: Dict[str, Dict[bytes, int]] = {}
        self._n = 0
        #: fields already handed over (each is handed over once)
        self.taken: List[str] = []

    def add(self, arr: np.ndarray) -> None:
        for name in self._cols:
            col = arr[name]
            if col.dtype.kind == "S":  # strings (comm): dictionary-encoded as they arrive
                codes, values = encode_bytes(col)
                table = self._dicts.setdefault(name, {})
                remap = np.array([table.setdefault(v, len(table)) for v in values.tolist()], dtype=np.int32)
                self._cols[name].append(remap[codes])
            else:
                self._cols[name].append(np.ascontiguousarray(col))
        self._n += len(arr)

    def category(self, field: str) -> pd.Categorical:
        """A string field as a pandas categorical (takes the field)."""
        codes = self._take(field)
        values = np.array(list(self._dicts.get(field, {})), dtype=self.dtype[field] if self.dtype is not None else "S16")
        if len(codes) == 0:
            return pd.Categorical([])
        return category_from_codes(codes, values)

    def limit(self, n: int) -> None:
        """Keep only the first ``n`` events."""
        if n >= self._n:
            return
        for name, chunks in self._cols.items():
            kept, left = [], n
            for c in chunks:
                if left <= 0:
                    break
                kept.append(c[:left])
                left -= len(c)
            self._cols[name] = kept
        self._n = n

    def __len__(self) -> int:
        return self._n

    def _take(self, field: str) -> np.ndarray:
        if field in self.taken:
            raise KeyError(f"{field!r} was already taken: the events hand each field over once, to keep memory "
                           "low; keep the array the first read returned")
        if field not in self._cols:
            raise KeyError(f"{field!r}: no such field; fields: {', '.join(self._cols) or 'none'}")
        chunks = self._cols.pop(field)
        self.taken.append(field)
        if not chunks:
            return np.empty(0, np.int32 if field in self._dicts or (self.dtype is not None and self.dtype[field].kind == "S")
                            else (self.dtype[field] if self.dtype is not None else np.uint8))
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def take(self, field: str) -> np.ndarray:
        """The field as one numpy array; the field is handed over (a second take raises KeyError)."""
        return self[field]

    def __getitem__(self, field: str) -> np.ndarray:
        """The field as one numpy array; the field is handed over (a second read raises KeyError)."""
        if self.dtype is not None and field in (self.dtype.names or ()) and self.dtype[field].kind == "S":
            codes = self._take(field)
            values = np.array(list(self._dicts.get(field, {})), dtype=self.dtype[field])
            return values[codes] if len(codes) else np.empty(0, self.dtype[field])
        return self._take(field)


class Lesson:
    """Base class of every lesson. Subclasses set the class attributes and hooks."""

    #: short stable id used on the command line (``ebpf-lab run ID``)
    id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    notebook: ClassVar[str] = ""
    #: the program file in ebpf_lab/programs
    program: ClassVar[str] = ""
    params: ClassVar[Dict[str, Param]] = {}
    #: the DataFrame's columns, documented: name -> meaning
    columns: ClassVar[Dict[str, str]] = {}
    #: name of the BPF_RINGBUF_OUTPUT map events arrive through ('' for none)
    events_map: str = "events"
    #: set once the program has been compiled and loaded in a child process first (see ``_trial``)
    _trial_done: bool = False
    #: name of the per-CPU counter of events the ring buffer had no room for
    lost_map: ClassVar[str] = "lost"
    #: default collection time when no workload is running
    default_seconds: ClassVar[float] = 2.0
    poll_interval: ClassVar[float] = 0.05
    #: the workload programs (ebpf_lab/workloads/NAME.c) that trigger() runs: compile() builds them, so that
    #: a first, cold build never runs while the program is attached (a system-wide hook would trace the
    #: compiler, and its events could fill the ring before collecting begins)
    workload_binaries: ClassVar[Sequence[str]] = ()

    def __init__(self, *, program_text: Optional[str] = None, **params: Any) -> None:
        unknown = set(params) - set(self.params)
        if unknown:
            raise LabParameterError(
                f"lesson {self.id}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(self.params) or 'none'}"
            )
        self.values: Dict[str, Any] = {n: p.check(n, params.get(n, p.default)) for n, p in self.params.items()}
        self.program_text = program_text
        self.state = State.NEW
        self.bpf: Any = None
        self.hooks: List[Hook] = []
        self.workload: Optional[Workload] = None
        self._stack = contextlib.ExitStack()
        self._reader: Optional[RingReader] = None
        self._pending: Optional[ChunkedRecords] = None
        self.compile_log = ""
        _live.add(self)

    # ------------------------------------------------------------ helpers
    def __repr__(self) -> str:
        vals = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        return f"<{type(self).__name__} {self.id} [{self.state.value}] {vals}>"

    def _require(self, *states: State, doing: str) -> None:
        if self.state not in states:
            order = "source -> compile -> load -> attach -> trigger -> collect -> detach"
            hint = {
                State.NEW: "call compile() first",
                State.COMPILED: "call load() first",
                State.LOADED: "call attach() first",
                State.ATTACHED: "it is already attached",
                State.CLOSED: "this lesson was detached; make a new one to run again",
            }[self.state]
            raise LessonStateError(f"{doing} lesson {self.id}: the lesson is {self.state.value}; {hint} (steps: {order})")

    def cflags(self) -> List[str]:
        """The -D flags the parameters become."""
        flags = []
        for name, p in self.params.items():
            if p.cflag:
                v = self.values[name]
                flags.append(f"-D{p.cflag}={int(v) if isinstance(v, bool) else v}")
        return flags + self.extra_cflags()

    def extra_cflags(self) -> List[str]:
        return []

    def program_file(self) -> str:
        return program_path(self.program)

    def source(self) -> str:
        """The exact C source that will be compiled, headed by the flags it gets."""
        text = self.program_text if self.program_text is not None else open(self.program_file()).read()
        where = "your program" if self.program_text is not None else self.program_file()
        return (f"// {where}\n// compiled by bcc with: {' '.join(self.cflags()) or '(no flags)'}\n\n{text}"
                + lab_headers(text))

    def select_hooks(self) -> List[Hook]:
        """Which hooks this kernel gets (subclasses choose fallbacks here)."""
        raise NotImplementedError

    def preflight(self) -> None:
        """Check privileges and features before compiling; raise a LabError saying what to do."""
        _kernel.require_root(f"compiling lesson {self.id}")
        _kernel.ensure_kernel_fs()

    # -------------------------------------------------------------- steps
    def build(self) -> Any:
        """Build what the lesson needs besides the program bcc compiles (a tool, an object file), before compile().

        A lesson whose only program is compiled by bcc has nothing to build: this returns None.
        A lesson that builds something overrides it and returns what it did (``run()`` calls it first).
        """
        return None

    def compile(self) -> pd.DataFrame:
        """Compile the C program with clang (through bcc). Returns the functions found.

        The lesson's workload programs (``workload_binaries``) are built first, while nothing is attached.
        """
        self._require(State.NEW, doing="compiling")
        self.preflight()
        from .kernel_headers import prepare

        prepare()
        hooks = self.select_hooks()
        if self.workload_binaries:  # first: a failed build leaves nothing compiled behind
            from ._workloads import binary

            for name in self.workload_binaries:
                binary(name)
        if self.program_text is not None and not getattr(self, "_trial_done", False):
            # a learner's text: a crash of clang or bcc must not end this process
            from ._trial import compile_or_raise

            compile_or_raise(self, hooks)
        t0 = time.monotonic()
        label = "your program" if self.program_text is not None else self.program
        doing = f"compiling lesson {self.id} ({label})"
        if self.program_text is not None:
            self.bpf, self.compile_log = build(text=self.program_text, cflags=self.cflags(), doing=doing,
                                               explain=self._explain_compile)
        else:
            self.bpf, self.compile_log = build(src_file=self.program_file(), cflags=self.cflags(), doing=doing,
                                               explain=self._explain_compile)
        self._stack.callback(self._cleanup_bpf)
        self.hooks = hooks
        self.state = State.COMPILED
        rows = [{"function": h.fn, "hook": h.name, "bytecode_insns": self._fn_insns(h.fn)} for h in hooks]
        df = pd.DataFrame(rows)
        df.attrs["compile_seconds"] = round(time.monotonic() - t0, 3)
        df.attrs["warnings"] = self.compile_log.count("warning:")
        return df

    def _fn_insns(self, fn: str) -> int:
        bcc = import_bcc()
        size = bcc.lib.bpf_function_size(self.bpf.module, fn.encode())
        return int(size) // 8

    def _explain_compile(self, log: str) -> str:
        """clang's diagnostics, with file names and line numbers of the program as written.

        bcc puts generated declarations (tracepoint structs) in front of the
        program, so clang's line numbers run ahead; each diagnostic is mapped
        back by finding the source line clang quotes.
        """
        where = self.program_file() if self.program_text is None else "your program"
        text = self.program_text if self.program_text is not None else open(self.program_file()).read()
        src = text.splitlines()
        lines = log.splitlines()
        out = []
        for i, ln in enumerate(lines):
            m = re.match(r"^/virtual/main\.c:(\d+):(\d+): (.*)$", ln)
            if m:
                quoted = lines[i + 1] if i + 1 < len(lines) else ""
                # clang 15+ quotes the line behind a gutter ("   12 |     code"); older clang quotes it bare
                gutter = re.match(r"^(\s*)(\d+) \| (.*)$", quoted)
                code = gutter[3] if gutter else quoted
                hits = [n + 1 for n, s_ in enumerate(src) if s_ == code]
                lineno = min(hits, key=lambda h: abs(h - int(m[1]))) if hits else int(m[1])
                ln = f"{where}:{lineno}:{m[2]}: {m[3]}"
                if gutter:
                    width = len(gutter[1]) + len(gutter[2])
                    lines[i + 1] = f"{str(lineno).rjust(width)} | {gutter[3]}"
            ln = ln.replace("/virtual/main.c", where)
            if "/virtual/" in ln and "note:" in ln:
                continue
            out.append(ln)
        keep = [ln for ln in out if "error" in ln or ln.startswith(" ") or "^" in ln or ln.startswith(where)]
        return "\n".join(keep) or "\n".join(out)

    def load(self) -> pd.DataFrame:
        """Load every handler into the kernel: the verifier checks it here."""
        self._require(State.COMPILED, doing="loading")
        rows = []
        for h in self.hooks:
            fn = load_function(self.bpf, h.fn, h.kind, doing=f"loading {h.fn} ({h.name}) into the kernel")
            from ._bpfsys import prog_info

            info: Dict[str, Any] = {"function": h.fn, "hook": h.name, "verifier": "accepted"}
            try:
                info.update(prog_info(fn.fd))
            except OSError:
                pass
            rows.append(info)
        self.state = State.LOADED
        cols = ["function", "hook", "verifier", "prog_id", "xlated_insns", "verified_insns", "jited_bytes"]
        df = pd.DataFrame(rows)
        return df[[c for c in cols if c in df.columns]]

    def attach(self) -> pd.DataFrame:
        """Attach every handler to its hook; the removal is registered at once."""
        self._require(State.LOADED, doing="attaching")
        for h in self.hooks:
            try:
                detach = self._attach_one(h)
            except FeatureUnavailable:
                self.detach()
                raise
            except Exception as e:  # bcc raises bare Exception; pyroute2 its NetlinkError
                self.detach()
                if isinstance(e, AttachError):
                    raise
                raise AttachError(f"attaching {h.fn} to {h.name} failed: {e}") from e
            h.attached = True
            self._stack.callback(self._safe, detach)
        if self.events_map:
            tab = self.bpf[self.events_map]
            from bcc.table import _get_event_class

            dtype = _np_dtype_of(_get_event_class(tab))
            size = self._map_size(tab)
            self._reader = RingReader(tab.map_fd, size, dtype)
            self._stack.callback(self._reader.close)
        self.state = State.ATTACHED
        return pd.DataFrame([{"hook": h.name, "function": h.fn, "note": h.note} for h in self.hooks])

    @staticmethod
    def _map_size(tab: Any) -> int:
        from ._bpfsys import map_info

        return int(map_info(tab.map_fd)["max_entries"])

    def _attach_one(self, h: Hook) -> Callable[[], None]:
        """Attach one hook (through the table of hook kinds, ebpf_lab.bpf.HOOK_KINDS); returns its detach."""
        return attach_hook(self.bpf, h)

    @staticmethod
    def _safe(fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:  # bcc raises bare Exception when a probe is already gone (e.g. bcc cleaned up first)
            pass

    def start_workload(self, *args: Any, **kw: Any) -> Workload:
        """Start the lesson's built-in workload: each subclass that has one defines it with its own keyword parameters."""
        raise NotImplementedError(f"lesson {self.id} has no built-in workload")

    def trigger(self, **kw: Any) -> Workload:
        """Start the lesson's built-in workload; collect() waits for it to finish."""
        self._require(State.ATTACHED, doing="triggering the workload of")
        try:
            self.workload = self.start_workload(**kw)
        except BaseException:
            self.detach()
            raise
        self._stack.callback(self.workload.stop)
        return self.workload

    def drain(self) -> int:
        """Move events from the ring buffer into memory; returns how many arrived."""
        if self._reader is None:
            return 0
        arr = self._reader.drain()
        if len(arr):
            if self._pending is None:
                self._pending = ChunkedRecords(self._reader.dtype)
            self._pending.add(arr)
        return len(arr)

    def _drain_reserved(self, timeout: float = 0.5) -> int:
        """After the last drain: a record reserved but not yet committed (its program still running on another
        CPU, or that CPU held up) stops every drain in front of it, and the records behind it with it. Wait for
        what was reserved by now to be committed and drained (at most ``timeout`` seconds) rather than leave
        it in the ring."""
        if self._reader is None:
            return 0
        end = self._reader.producer_position()
        deadline = time.monotonic() + timeout
        n = 0
        while not self._reader.consumed(end) and time.monotonic() < deadline:
            time.sleep(0.005)
            n += self.drain()
        return n

    def _wait(self, timeout: float) -> None:
        """Between drains: wait on the ring's epoll fd (the program wakes it at its high-water mark)."""
        if self._reader is not None:
            self._reader.wait(timeout)
        else:
            time.sleep(timeout)

    def collect(self, seconds: Optional[float] = None, *, max_events: Optional[int] = None,
                quiet: bool = False) -> pd.DataFrame:
        """Collect events until the workload ends (+ a moment), ``seconds`` pass, or ``max_events`` arrive.

        Without a running workload, collects for ``seconds`` (default: the lesson's
        ``default_seconds``). Any error or interrupt here detaches the lesson.
        """
        self._require(State.ATTACHED, doing="collecting from")
        if seconds is not None and not (0 < seconds <= 3600):
            raise LabParameterError(f"collecting from lesson {self.id}: seconds={seconds!r} must be in (0, 3600]")
        if max_events is not None and max_events < 1:
            raise LabParameterError(f"collecting from lesson {self.id}: max_events={max_events!r} must be >= 1")
        wl = self.workload
        limit = seconds if seconds is not None else (60.0 if wl else self.default_seconds)
        t0 = time.monotonic()
        n = len(self._pending) if self._pending is not None else 0
        try:
            with Progress(limit if not wl else min(limit, self.expected_workload_seconds()), f"collecting {self.id}",
                          quiet=quiet) as prog:
                done_at: Optional[float] = None
                while True:
                    n += self.drain()
                    now = time.monotonic()
                    if max_events is not None and n >= max_events:
                        break
                    if now - t0 >= limit:
                        break
                    if wl is not None and seconds is None and wl.done():
                        done_at = done_at or now
                        if now - done_at >= 0.2:
                            break
                    prog.update(now - t0, f"{n:,} events")
                    self._wait(min(self.poll_interval, max(0.0, t0 + limit - now)))
                n += self.drain()
                n += self._drain_reserved()
            arr = self._pending or ChunkedRecords(self._reader.dtype if self._reader else None)
            self._pending = None
            if max_events is not None:
                arr.limit(max_events)
            df = self.to_frame(arr)  # type: ignore[arg-type]
            del arr
        except BaseException:
            self.detach()
            raise
        df.attrs.update(self.describe(elapsed=time.monotonic() - t0))
        return df

    def expected_workload_seconds(self) -> float:
        return 1.0

    def lost(self) -> Optional[int]:
        """Events the ring buffer had no room for (counted in the kernel); None when unknown.

        0 only when the lesson has no ring buffer or its counter really reads 0;
        None when the counter cannot be read (no program loaded, no such map).
        """
        if not self.lost_map:
            return 0 if not self.events_map else None
        if self.bpf is None:
            return None
        try:
            return int(self.bpf[self.lost_map].sum(0).value)
        except (KeyError, OSError, AttributeError):  # no such map in the program, or it is gone
            return None

    def describe(self, elapsed: float = 0.0) -> Dict[str, Any]:
        """Facts recorded on every DataFrame's ``attrs``."""
        wl = self.workload
        return {
            "lesson": self.id,
            "hooks": [h.name for h in self.hooks],
            "hook_notes": [h.note for h in self.hooks if h.note],
            "params": dict(self.values),
            "lost": self.lost(),
            "seconds": round(elapsed, 3),
            "workload_pid": wl.pid if wl else None,
            "workload": dict(wl.facts, description=wl.description) if wl else None,
        }

    def to_frame(self, arr: np.ndarray) -> pd.DataFrame:
        """Turn raw event records into the lesson's documented DataFrame (subclasses)."""
        raise NotImplementedError

    def detach(self) -> None:
        """Detach every hook and free the programs. Safe to call any number of times."""
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self._stack.close()
        self._reader = None
        for h in self.hooks:
            h.attached = False

    close = detach

    def _cleanup_bpf(self) -> None:
        b, self.bpf = self.bpf, None
        if b is not None:
            self._safe(b.cleanup)

    def run(self, seconds: Optional[float] = None, *, workload: bool = True,
            max_events: Optional[int] = None, quiet: bool = False) -> pd.DataFrame:
        """Every step at once: build, compile, load, attach, trigger, collect, detach."""
        with self:
            self.build()
            self.compile()
            self.load()
            self.attach()
            if workload:
                self.trigger()
            return self.collect(seconds, max_events=max_events, quiet=quiet)

    def __enter__(self: _L) -> _L:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.detach()

    def __del__(self) -> None:
        try:
            self.detach()
        except Exception:  # a finalizer must not raise (late in interpreter shutdown anything can fail)
            pass


def lab_headers(text: str) -> str:
    """The lab's headers (``ebpf_lab/programs/*.h``) that ``text`` includes, as a learner reads them after it.

    A lesson's ``source()`` ends with these, so that what it prints is all the C that is compiled.
    Each is guarded (``#ifndef``), so the whole printout, handed back as ``program_text``, still compiles.
    """
    out = []
    for name in dict.fromkeys(re.findall(r'^\s*#\s*include\s+"([\w.]+\.h)"', text, re.M)):
        path = program_path(name)
        if os.path.exists(path):
            with open(path) as f:
                out.append(f"\n// ---- {name}, which the program above includes ({path}) ----\n{f.read()}")
    return "".join(out)


def match_in_order(seen: Sequence[tuple], wanted: Sequence[tuple]) -> List[Optional[int]]:
    """For each wanted key, the index of the next seen key equal to it (in order), or None.

    How a lesson checks its events against what its workload reports it did:
    both lists are in time order; events of other processes may lie between.
    """
    out: List[Optional[int]] = []
    i = 0
    for key in wanted:
        j = i
        while j < len(seen) and seen[j] != key:
            j += 1
        if j < len(seen):
            out.append(j)
            i = j + 1
        else:
            out.append(None)  # keep looking for later keys from where we were
    return out


def wall_clock(ts_ns: np.ndarray) -> np.ndarray:
    """bpf_ktime_get_ns() (CLOCK_MONOTONIC) -> datetime64[ns] wall-clock times."""
    offset = time.time_ns() - time.monotonic_ns()
    return (ts_ns.astype(np.int64) + offset).astype("datetime64[ns]")


# Old private names, kept importable while callers move to ebpf_lab.bpf.
_capture_stderr = capture_stderr
_lab_bpf_class = lab_bpf_class


def _prog_type(bcc: Any, kind: str) -> int:
    """Old private name of :func:`ebpf_lab.bpf.prog_type`."""
    from .bpf import prog_type

    return prog_type(kind)
