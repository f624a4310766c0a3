"""Run a bpftrace program for a bounded time and read its ``-f json`` output as DataFrames.

The tutorial: "bpftrace最简单" — bpftrace is the simplest way in. A lesson answers its
question with bcc, then asks bpftrace the same question on the same workload::

    from ebpf_lab import bpftrace
    df = bpftrace.run('tracepoint:syscalls:sys_enter_kill /pid == cpid/ { printf("%d\\t%d\\n", args->pid, args->sig); }',
                      columns=["target_pid", "signal"], seconds=10, command=["/path/to/workload", "arg"])

What :func:`run` does, in order:

1. starts ``bpftrace -f json [-c COMMAND] -e PROGRAM`` in a process group of its own,
2. bpftrace attaches every probe, then starts ``command`` (its pid is ``cpid`` in the program):
   the workload's events all happen while attached — bpftrace's own ``-c`` does this; a
   workload started by us when bpftrace says ``attached_probes`` would race it, since
   bpftrace says so before it attaches,
3. lets it run until the command ends (bpftrace then exits), the program calls ``exit()``,
   or ``seconds`` have passed since bpftrace said it was attaching,
4. stops it with SIGINT, as Ctrl-C or ``timeout -s INT`` would (bpftrace then prints
   its maps), and SIGKILLs the whole group if it has not ended ``grace`` seconds later.

A script file works as well as a one-liner: ``run(script="/path/tool.bt", args=["10"])``
(``args`` are its positional parameters, ``$1``...). A lesson that runs bpftrace beside
other tools keeps it in the background with a :class:`Session` (what :func:`run` uses):
``start()`` returns once bpftrace has attached, ``lines()`` are its printf lines so far,
``stop()`` ends it as step 4 does.

Nothing is left behind: the process group is gone when :func:`run` returns or raises,
and with it every probe bpftrace attached. Each ``printf`` line becomes a row (its text
split at ``sep`` into ``columns``); maps, histograms and stats printed at the end are in
``df.attrs['maps']``. A program bpftrace rejects raises :class:`~ebpf_lab.errors.CompileError`
(or :class:`~ebpf_lab.errors.AttachError` when a probe would not attach) carrying
bpftrace's own message; a missing bpftrace raises :class:`~ebpf_lab.errors.FeatureUnavailable`.
"""
from __future__ import annotations

import functools
import json
import os
import queue
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pandas as pd

from .errors import AttachError, CompileError, FeatureUnavailable, LabParameterError

__all__ = ["run", "Session", "executable", "command_line", "map_frame", "btf_in_tracepoints", "HARMLESS_STDERR"]

#: stderr lines bpftrace prints that do not mean the program failed. On kernels 5.11+
#: BPF memory is charged to the cgroup, so a RLIMIT_MEMLOCK bpftrace cannot raise is harmless.
HARMLESS_STDERR = ("couldn't set RLIMIT_MEMLOCK",)

_MAX_SECONDS = 600.0


def executable() -> Optional[str]:
    """Path of the ``bpftrace`` binary, or None when it is not installed."""
    return shutil.which("bpftrace")


#: a tracepoint probe reading a kernel struct through BTF (lesson 06's bpftrace way does this)
BTF_PROBE = 'tracepoint:syscalls:sys_enter_kill { printf("%d\\n", curtask->real_parent->tgid); } BEGIN { exit(); }'


@functools.lru_cache(maxsize=None)
def btf_in_tracepoints() -> Tuple[bool, str]:
    """Can this bpftrace read a kernel struct through BTF inside a tracepoint probe? (ok, bpftrace's error).

    Found by asking bpftrace (it compiles and attaches :data:`BTF_PROBE`, which exits at once), not
    by its version: some releases (e.g. 0.11) resolve ``curtask`` through BTF in a kprobe but
    not in a tracepoint probe, and say "Unknown struct/union: 'struct task_struct'". Needs root.
    """
    exe = executable()
    if not exe:
        return False, "bpftrace is not installed"
    try:
        p = subprocess.run([exe, "-e", BTF_PROBE], capture_output=True, text=True, timeout=300,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"bpftrace did not answer: {e}"
    if p.returncode == 0:
        return True, ""
    err = [ln.strip() for ln in p.stderr.splitlines() if "ERROR" in ln]
    return False, (err[0] if err else p.stderr.strip()[-300:]) or f"bpftrace exited with status {p.returncode}"


def command_line(program: Optional[str] = None, *, seconds: Optional[float] = None,
                 run: Optional[Sequence[str]] = None, script: Optional[str] = None,
                 args: Sequence[str] = ()) -> List[str]:
    """The command line :func:`run` starts; with ``seconds`` the same bounded by ``timeout -s INT``.

    ``shlex.join(command_line(p, seconds=5))`` is what a learner types in a shell; ``run`` is the
    workload's argv, given to bpftrace's ``-c``. ``script`` (a .bt file) replaces ``-e program``;
    ``args`` are the program's positional parameters ($1, $2...).
    """
    argv = [executable() or "bpftrace", "-f", "json"]
    if run:
        argv += ["-c", " ".join(str(c) for c in run)]
    argv += [script] if script is not None else ["-e", str(program)]
    argv += [str(a) for a in args]
    if seconds is not None:
        argv = ["timeout", "-s", "INT", f"{seconds:g}"] + argv
    return argv


def _number(col: pd.Series) -> pd.Series:
    try:
        return pd.to_numeric(col)
    except (ValueError, TypeError):
        return col


def map_frame(value: Any, *, key_names: Optional[Sequence[str]] = None, value_name: str = "value") -> pd.DataFrame:
    """One bpftrace map as printed by ``-f json`` -> a DataFrame.

    ``{"bash,15": 2}`` (keys joined with ","; bpftrace's own format) becomes columns
    ``key_names`` + ``value``; a histogram (a list of ``{min, max, count}``) becomes
    columns min, max, count; a ``stats()`` dict or a scalar becomes one row.
    """
    if isinstance(value, list):
        return pd.DataFrame(value)
    if isinstance(value, dict) and value and all(not isinstance(v, (dict, list)) for v in value.values()) \
            and not {"count", "average", "total"} >= set(value):
        keys = list(value)
        n = max(k.count(",") + 1 for k in keys)
        names = list(key_names) if key_names else ([f"key{i}" for i in range(n)] if n > 1 else ["key"])
        # only the last len(names)-1 commas split: a first key (often comm) may hold commas itself
        parts = [k.rsplit(",", len(names) - 1) for k in keys]
        df = pd.DataFrame([p + [None] * (len(names) - len(p)) for p in parts], columns=names)
        for c in names:
            df[c] = _number(df[c])
        df[value_name] = list(value.values())
        return df
    if isinstance(value, dict):
        return pd.DataFrame([value])
    return pd.DataFrame({value_name: [value]})


def _reader(stream: Any, out: "queue.Queue[Optional[str]]") -> None:
    for line in iter(stream.readline, ""):
        out.put(line)
    out.put(None)


def _tail(path: str, proc: "subprocess.Popen[str]", out: "queue.Queue[Optional[str]]") -> None:
    """Follow bpftrace's ``-o`` file line by line (it writes whole lines, flushed) until bpftrace has ended."""
    partial = ""
    f = None
    try:
        while True:
            if f is None:
                try:
                    f = open(path)
                except FileNotFoundError:
                    if proc.poll() is not None:
                        return
                    time.sleep(0.02)
                    continue
            chunk = f.readline()
            if chunk:
                partial += chunk
                if partial.endswith("\n"):
                    out.put(partial)
                    partial = ""
                continue
            if proc.poll() is not None:
                rest = partial + f.read()
                for line in rest.splitlines(keepends=True):
                    out.put(line)
                return
            time.sleep(0.02)
    finally:
        if f is not None:
            f.close()
        out.put(None)


def _stop(proc: "subprocess.Popen[str]", grace: float, ending: bool = False) -> str:
    """SIGINT the group, then SIGKILL it after ``grace`` s; say how it ended.

    ``ending``: bpftrace closed its output, so it is exiting by itself: give it ``grace`` s first.
    """
    if ending:
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is not None:
        return "exit"
    try:
        os.killpg(proc.pid, signal.SIGINT)
    except ProcessLookupError:
        return "exit"
    try:
        proc.wait(timeout=grace)
        return "SIGINT"
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    return "SIGKILL"


class Session:
    """One bpftrace process: started in a process group of its own, attached, read as it prints, stopped.

    :func:`run` is a Session from start to stop. A lesson that runs bpftrace beside other tools
    keeps one open while its workload runs::

        s = Session(script=program_path("three_ways.bt"), args=["300"])
        lab_stack.callback(s.stop)  # registered before it starts: stop() before start() does nothing
        s.start()                   # returns once bpftrace said it attached; raises CompileError/AttachError
        ...                         # the workload
        s.lines()                   # [(time read, printf line), ...] so far
        s.stop()                    # SIGINT, then SIGKILL the group after ``grace`` s; says how it ended

    Give ``program`` (text) or ``script`` (a file), not both; ``args`` are positional parameters.
    ``proc`` is the bpftrace process (``proc.pid``, ``proc.returncode``); ``started`` the
    monotonic time it was started; ``command`` what a learner would type.
    """

    def __init__(self, program: Optional[str] = None, *, script: Optional[str] = None, args: Sequence[str] = (),
                 command: Optional[Sequence[str]] = None, attach_timeout: float = 120.0, grace: float = 10.0,
                 echo: bool = False) -> None:
        if script is not None:
            if program is not None:
                raise LabParameterError("running bpftrace: give a program or a script, not both")
            if not os.path.isfile(script):
                raise LabParameterError(f"running bpftrace: the script {script!r} is not a file")
        elif not isinstance(program, str) or not program.strip():
            raise LabParameterError("running bpftrace: the program is empty; give it a probe and an action, "
                                    "e.g. 'tracepoint:syscalls:sys_enter_kill { @[comm] = count(); }'")
        if command is not None and (not command or any(not str(c) or any(ch.isspace() for ch in str(c))
                                                       for c in command)):
            raise LabParameterError(f"running bpftrace: command={command!r}: bpftrace -c splits its command at "
                                    "spaces and honours no quotes, so no argument may be empty or hold a space; "
                                    "put a longer workload in a script and give its path")
        self.exe = executable()
        if self.exe is None:
            raise FeatureUnavailable("bpftrace", "running bpftrace: it is not installed "
                                     "(sudo apt-get install bpftrace, or bash scripts/setup.sh)")
        if command is not None:  # bpftrace -c wants one binary: a bare name can match several on PATH
            command = [shutil.which(str(command[0])) or str(command[0])] + [str(c) for c in command[1:]]
        self.program, self.script, self.args, self.run = program, script, [str(a) for a in args], command
        self.attach_timeout, self.grace, self.echo = float(attach_timeout), float(grace), echo
        self.command = shlex.join(command_line(program, run=command, script=script, args=self.args))
        self.proc: Optional["subprocess.Popen[str]"] = None
        self.started = 0.0
        self.records: List[Dict[str, Any]] = []
        self._times: List[float] = []  # when each record was read
        self.probes: Optional[int] = None
        self.stopped_by: Optional[str] = None
        self.stderr = ""
        self.command_output = ""
        self._eof = False
        self._tmp = ""
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self._errs: "queue.Queue[Optional[str]]" = queue.Queue()
        self._said: "queue.Queue[Optional[str]]" = queue.Queue()
        self._readers: List[threading.Thread] = []

    @property
    def ended(self) -> bool:
        """bpftrace closed its output: it is exiting (its program called exit(), or its command ended)."""
        return self._eof

    def start(self) -> "Session":
        """Start bpftrace; return once it says it attached (``probes`` is then how many)."""
        if self.proc is not None:
            raise LabParameterError("running bpftrace: this session was started already; make a new one")
        # bpftrace's JSON goes to a file of its own (-o): the -c command shares bpftrace's stdout, and
        # its lines could land in the middle of a JSON line there. The command's output stays on stdout.
        self._tmp = tempfile.mkdtemp(prefix="ebl-bpftrace-")
        out_path = os.path.join(self._tmp, "out.json")
        argv = [str(self.exe), "-o", out_path] + command_line(self.program, run=self.run, script=self.script,
                                                             args=self.args)[1:]
        self.started = time.monotonic()
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True, bufsize=1, start_new_session=True)
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        self._readers = [threading.Thread(target=_tail, args=(out_path, self.proc, self._lines), daemon=True),
                         threading.Thread(target=_reader, args=(self.proc.stdout, self._said), daemon=True),
                         threading.Thread(target=_reader, args=(self.proc.stderr, self._errs), daemon=True)]
        for t in self._readers:
            t.start()
        try:
            deadline = time.monotonic() + self.attach_timeout
            while self.probes is None and not self._eof and time.monotonic() < deadline:
                self.read(deadline)
        except BaseException:
            self.stop()
            raise
        if self.probes is None:
            stopped_by = self.stop(wait_readers=5.0)
            problem = [ln for ln in self.stderr.splitlines() if ln.strip()]
            why = "\n".join(problem) or f"bpftrace exited with status {self.proc.returncode} before attaching"
            if stopped_by != "exit":
                raise AttachError(f"running bpftrace: no probe attached within {self.attach_timeout:g} s; "
                                  f"stopped it ({stopped_by}). bpftrace said:\n{why}")
            what = f"the script {self.script}" if self.script is not None else f"the program `{self.program}`"
            kind = AttachError if "attach" in why.lower() else CompileError
            raise kind(f"running bpftrace: it refused {what}", why)
        return self

    def read(self, until: float) -> None:
        """Take what bpftrace printed, waiting until ``until`` (monotonic) or its end; returns early once
        it has said it attached (the first time)."""
        while not self._eof:
            left = until - time.monotonic()
            try:
                line = self._lines.get(timeout=max(0.0, min(left, 0.2))) if left > 0 else self._lines.get_nowait()
            except queue.Empty:
                if time.monotonic() >= until:
                    return
                continue
            if line is None:
                self._eof = True
                return
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                rec = None
            if not isinstance(rec, dict):
                rec = {"type": "text", "data": line}
            self.records.append(rec)
            self._times.append(time.monotonic())
            if self.echo and rec.get("type") == "printf":
                print(str(rec.get("data", "")), end="")
            if rec.get("type") == "attached_probes" and self.probes is None:
                self.probes = int(rec.get("data", {}).get("probes", 0))
                return

    def lines(self) -> List[Tuple[float, str]]:
        """Every printf line so far (what is waiting is read first), with the monotonic time it was read."""
        if self.proc is not None:
            self.read(time.monotonic())
        return [(t, ln) for t, r in zip(self._times, self.records) if r.get("type") == "printf"
                for ln in str(r.get("data", "")).split("\n") if ln != ""]

    def stop(self, wait_readers: Optional[float] = None) -> str:
        """Stop bpftrace (SIGINT, SIGKILL to its group ``grace`` s later) and read what it printed last.

        Returns how it ended (``exit``, ``SIGINT`` or ``SIGKILL``); again the same answer when
        called again; ``''`` when it was never started.
        """
        if self.proc is None:
            return ""
        if self.stopped_by is not None:
            return self.stopped_by
        try:
            self.stopped_by = _stop(self.proc, self.grace, ending=self._eof)
        except BaseException:  # interrupted while waiting: the group must still go
            _stop(self.proc, self.grace)
            raise
        finally:
            if self.stopped_by is None and self.proc.poll() is not None:
                self.stopped_by = "exit"
            for t in self._readers:
                t.join(timeout=self.grace if wait_readers is None else wait_readers)
            self.read(time.monotonic())
            for s in (self.proc.stdout, self.proc.stderr):
                if s is not None:
                    s.close()
            shutil.rmtree(self._tmp, ignore_errors=True)
            self.stderr = "\n".join(ln for ln in _drain(self._errs) if not any(h in ln for h in HARMLESS_STDERR))
            self.command_output = "".join(_drain_raw(self._said))
        return self.stopped_by

    def frame(self, columns: Optional[Sequence[str]] = None, sep: str = "\t",
              seconds: Optional[float] = None) -> pd.DataFrame:
        """What bpftrace printed as a DataFrame (see :func:`run`); ``seconds`` goes into ``attrs['command']``."""
        text_lines = [ln for _, ln in self.lines()]
        if columns is None:
            df = pd.DataFrame({"line": text_lines})
        else:
            rows = [ln.split(sep, len(columns) - 1) for ln in text_lines]
            rows = [r for r in rows if len(r) == len(columns)]
            df = pd.DataFrame(rows, columns=list(columns))
            for c in columns:
                df[c] = _number(df[c])
        maps: Dict[str, Any] = {}
        for r in self.records:
            if r.get("type") in ("map", "hist", "stats") and isinstance(r.get("data"), dict):
                maps.update(r["data"])
        lost = sum(int(r.get("data", {}).get("events", 0)) for r in self.records
                   if r.get("type") == "lost_events" and isinstance(r.get("data"), dict))
        df.attrs.update({
            "command": shlex.join(command_line(self.program, seconds=seconds, run=self.run, script=self.script,
                                               args=self.args)),
            "program": self.program if self.script is None else self.script,
            "probes": self.probes,
            "maps": maps,
            "lost": lost,
            "stderr": self.stderr,
            "stopped_by": self.stopped_by or "exit",
            "command_output": self.command_output,
        })
        return df


def run(program: Optional[str] = None, *, seconds: float = 5.0, columns: Optional[Sequence[str]] = None,
        sep: str = "\t", command: Optional[Sequence[str]] = None, attach_timeout: float = 120.0,
        grace: float = 10.0, echo: bool = False, script: Optional[str] = None,
        args: Sequence[str] = ()) -> pd.DataFrame:
    """Run ``program`` (or the file ``script``) with bpftrace for at most ``seconds``; its printf lines as rows.

    - ``columns``: names for the fields of each printf line, split at ``sep``
      (numbers become numbers); without them the frame has one column ``line``.
    - ``command``: a workload's argv; bpftrace starts it once every probe is attached
      (``-c``) and ends when it ends. What it prints is in ``attrs['command_output']``.
    - ``args``: the program's positional parameters ($1, $2...).
    - ``attrs``: ``command`` (what to type in a shell, bounded by ``timeout``), ``probes``
      (how many bpftrace attached), ``maps`` (name -> value as printed), ``lost`` (events
      bpftrace reported lost), ``stderr`` (its warnings), ``stopped_by`` (``exit`` when the
      program or its command ended, ``SIGINT``, or ``SIGKILL`` when it did not stop in time).
    """
    if script is None and (not isinstance(program, str) or not program.strip()):
        raise LabParameterError("running bpftrace: the program is empty; give it a probe and an action, "
                                "e.g. 'tracepoint:syscalls:sys_enter_kill { @[comm] = count(); }'")
    if not (0 < float(seconds) <= _MAX_SECONDS):
        raise LabParameterError(f"running bpftrace: seconds={seconds!r} is outside (0, {_MAX_SECONDS:g}]")
    if columns is not None and (not columns or len(set(columns)) != len(columns)):
        raise LabParameterError(f"running bpftrace: columns={columns!r} must be distinct names")
    session = Session(program, script=script, args=args, command=command, attach_timeout=attach_timeout,
                      grace=grace, echo=echo)
    session.start()
    try:
        end = time.monotonic() + float(seconds)
        while not session.ended and time.monotonic() < end:
            session.read(end)
    finally:
        session.stop()
    return session.frame(columns, sep, seconds=seconds)


def _drain_raw(q: "queue.Queue[Optional[str]]") -> List[str]:
    out: List[str] = []
    while True:
        try:
            x = q.get_nowait()
        except queue.Empty:
            return out
        if x is not None:
            out.append(x)


def _drain(q: "queue.Queue[Optional[str]]") -> List[str]:
    """The queued lines that hold text, without their newlines."""
    return [x.rstrip("\n") for x in _drain_raw(q) if x.strip()]
