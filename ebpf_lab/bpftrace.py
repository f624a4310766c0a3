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

__all__ = ["run", "executable", "command_line", "map_frame", "btf_in_tracepoints", "HARMLESS_STDERR"]

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


def command_line(program: str, *, seconds: Optional[float] = None, run: Optional[Sequence[str]] = None) -> List[str]:
    """The command line :func:`run` starts; with ``seconds`` the same bounded by ``timeout -s INT``.

    ``shlex.join(command_line(p, seconds=5))`` is what a learner types in a shell; ``run`` is the
    workload's argv, given to bpftrace's ``-c``.
    """
    argv = [executable() or "bpftrace", "-f", "json"]
    if run:
        argv += ["-c", " ".join(str(c) for c in run)]
    argv += ["-e", program]
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


def run(program: str, *, seconds: float = 5.0, columns: Optional[Sequence[str]] = None, sep: str = "\t",
        command: Optional[Sequence[str]] = None, attach_timeout: float = 120.0, grace: float = 10.0,
        echo: bool = False) -> pd.DataFrame:
    """Run ``program`` with bpftrace for at most ``seconds``; its printf lines as rows.

    - ``columns``: names for the fields of each printf line, split at ``sep``
      (numbers become numbers); without them the frame has one column ``line``.
    - ``command``: a workload's argv; bpftrace starts it once every probe is attached
      (``-c``) and ends when it ends. What it prints is in ``attrs['command_output']``.
    - ``attrs``: ``command`` (what to type in a shell, bounded by ``timeout``), ``probes``
      (how many bpftrace attached), ``maps`` (name -> value as printed), ``lost`` (events
      bpftrace reported lost), ``stderr`` (its warnings), ``stopped_by`` (``exit`` when the
      program or its command ended, ``SIGINT``, or ``SIGKILL`` when it did not stop in time).
    """
    if not isinstance(program, str) or not program.strip():
        raise LabParameterError("running bpftrace: the program is empty; give it a probe and an action, "
                                "e.g. 'tracepoint:syscalls:sys_enter_kill { @[comm] = count(); }'")
    if not (0 < float(seconds) <= _MAX_SECONDS):
        raise LabParameterError(f"running bpftrace: seconds={seconds!r} is outside (0, {_MAX_SECONDS:g}]")
    if columns is not None and (not columns or len(set(columns)) != len(columns)):
        raise LabParameterError(f"running bpftrace: columns={columns!r} must be distinct names")
    if command is not None and (not command or any(not str(c) or any(ch.isspace() for ch in str(c)) for c in command)):
        raise LabParameterError(f"running bpftrace: command={command!r}: bpftrace -c splits its command at spaces "
                                "and honours no quotes, so no argument may be empty or hold a space; "
                                "put a longer workload in a script and give its path")
    exe = executable()
    if exe is None:
        raise FeatureUnavailable("bpftrace", "running bpftrace: it is not installed "
                                 "(sudo apt-get install bpftrace, or bash scripts/setup.sh)")
    if command is not None:  # bpftrace -c wants one binary: a bare name can match several on PATH
        command = [shutil.which(str(command[0])) or str(command[0])] + [str(c) for c in command[1:]]
    # bpftrace's JSON goes to a file of its own (-o): the -c command shares bpftrace's stdout, and
    # its lines could land in the middle of a JSON line there. The command's output stays on stdout.
    tmp = tempfile.mkdtemp(prefix="ebl-bpftrace-")
    out_path = os.path.join(tmp, "out.json")
    argv = [exe, "-o", out_path] + command_line(program, run=command)[1:]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, bufsize=1, start_new_session=True)
    lines: "queue.Queue[Optional[str]]" = queue.Queue()
    errs: "queue.Queue[Optional[str]]" = queue.Queue()
    said: "queue.Queue[Optional[str]]" = queue.Queue()
    readers = [threading.Thread(target=_tail, args=(out_path, proc, lines), daemon=True),
               threading.Thread(target=_reader, args=(proc.stdout, said), daemon=True),
               threading.Thread(target=_reader, args=(proc.stderr, errs), daemon=True)]
    for t in readers:
        t.start()
    records: List[Dict[str, Any]] = []
    probes: Optional[int] = None
    stopped_by = "exit"
    eof = False

    def take(block_until: float) -> None:
        nonlocal eof, probes
        while not eof:
            left = block_until - time.monotonic()
            try:
                line = lines.get(timeout=max(0.0, min(left, 0.2))) if left > 0 else lines.get_nowait()
            except queue.Empty:
                if time.monotonic() >= block_until:
                    return
                continue
            if line is None:
                eof = True
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
            records.append(rec)
            if echo and rec.get("type") == "printf":
                print(str(rec.get("data", "")), end="")
            if rec.get("type") == "attached_probes" and probes is None:
                probes = int(rec.get("data", {}).get("probes", 0))
                return

    try:
        deadline = time.monotonic() + attach_timeout
        while probes is None and not eof and time.monotonic() < deadline:
            take(deadline)
        if probes is None:
            stopped_by = _stop(proc, grace, ending=eof)
            for t in readers:
                t.join(timeout=5)
            stderr = _drain(errs)
            problem = [ln for ln in stderr if not any(h in ln for h in HARMLESS_STDERR)]
            why = "\n".join(problem) or f"bpftrace exited with status {proc.returncode} before attaching"
            if stopped_by != "exit":
                raise AttachError(f"running bpftrace: no probe attached within {attach_timeout:g} s; "
                                  f"stopped it ({stopped_by}). bpftrace said:\n{why}")
            kind = AttachError if "attach" in why.lower() else CompileError
            raise kind(f"running bpftrace: it refused the program `{program}`", why)
        end = time.monotonic() + float(seconds)
        while not eof and time.monotonic() < end:
            take(end)
        stopped_by = _stop(proc, grace, ending=eof)
        for t in readers:
            t.join(timeout=grace)
        take(time.monotonic())
    finally:
        if proc.poll() is None:  # an exception (e.g. Ctrl-C) got here first
            _stop(proc, grace)
        for t in readers:
            t.join(timeout=5)
        for s in (proc.stdout, proc.stderr):
            if s is not None:
                s.close()
        shutil.rmtree(tmp, ignore_errors=True)
    stderr = _drain(errs)
    command_output = "".join(_drain_raw(said))

    printed = [str(r.get("data", "")) for r in records if r.get("type") == "printf"]
    text_lines = [ln for chunk in printed for ln in chunk.split("\n") if ln != ""]
    if columns is None:
        df = pd.DataFrame({"line": text_lines})
    else:
        rows = [ln.split(sep, len(columns) - 1) for ln in text_lines]
        rows = [r for r in rows if len(r) == len(columns)]
        df = pd.DataFrame(rows, columns=list(columns))
        for c in columns:
            df[c] = _number(df[c])
    maps: Dict[str, Any] = {}
    for r in records:
        if r.get("type") in ("map", "hist", "stats") and isinstance(r.get("data"), dict):
            maps.update(r["data"])
    lost = sum(int(r.get("data", {}).get("events", 0)) for r in records
               if r.get("type") == "lost_events" and isinstance(r.get("data"), dict))
    df.attrs.update({
        "command": shlex.join(command_line(program, seconds=seconds, run=command)),
        "program": program,
        "probes": probes,
        "maps": maps,
        "lost": lost,
        "stderr": "\n".join(ln for ln in stderr if not any(h in ln for h in HARMLESS_STDERR)),
        "stopped_by": stopped_by,
        "command_output": command_output,
    })
    return df


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
