"""Run the tutorial's own programs as written: ``bpf_trace_printk`` + ``trace_fields``.

The tutorial reads its output from the kernel's ``trace_pipe``. That file is
global: every program on the machine that calls ``bpf_trace_printk`` writes to
it, and lines left from earlier runs are still there. So this runner drains the
stale lines first, reads for a bounded time (no ``while 1:``), detaches, and
drains again so the next user starts clean.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, List, Optional

import pandas as pd

from . import _kernel
from .bpf import build, program_path
from .errors import AttachError
from .kernel_headers import prepare

__all__ = ["run_trace_printk", "tutorial_line", "drain_trace_pipe"]


def tutorial_line(ts: float, task: bytes, pid: int, msg: bytes) -> str:
    """The tutorial's ``print("%-18.9f %-16s %-6d %s \\n" % (...))``, with bytes decoded.

    Under Python 3, ``trace_fields()`` returns bytes, so the tutorial's format would
    print ``b'bash'``; decoding first gives the output the tutorial shows.
    """
    return "%-18.9f %-16s %-6d %s " % (ts, task.decode(errors="replace"), pid, msg.decode(errors="replace"))


def drain_trace_pipe() -> int:
    """Throw away whatever waits in trace_pipe; returns how many bytes were stale."""
    t = _kernel.tracefs()
    if t is None:
        return 0
    fd = os.open(os.path.join(t, "trace_pipe"), os.O_RDONLY | os.O_NONBLOCK)
    n = 0
    try:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            n += len(chunk)
    finally:
        os.close(fd)
    return n


def run_trace_printk(
    program: str,
    attach: Callable[[Any], None],
    *,
    seconds: float = 1.0,
    max_lines: int = 20,
    workload: Optional[Callable[[], Any]] = None,
    echo: bool = True,
) -> pd.DataFrame:
    """Compile ``program`` (a file in ebpf_lab/programs), attach it with ``attach(bpf)``,
    start ``workload()`` if given, read up to ``max_lines`` lines of trace_pipe for at
    most ``seconds``, print them in the tutorial's format, detach.

    Returns a DataFrame (ts, task, pid, cpu, flags, msg); ``attrs['stale_bytes']`` says
    how much stale output was thrown away first.
    """
    _kernel.require_root("running the tutorial's program")
    _kernel.ensure_kernel_fs()
    prepare()
    path = program_path(program)
    b, _ = build(src_file=path, doing=f"compiling the tutorial's program {program}")
    rows: List[dict] = []
    proc = None
    try:
        stale = drain_trace_pipe()
        b.trace_open(nonblocking=True)
        try:
            attach(b)
        except Exception as e:  # bcc raises bare Exception
            raise AttachError(f"attaching the tutorial's program {program}: {e}") from e
        if workload is not None:
            proc = workload()
        deadline = time.monotonic() + seconds
        while len(rows) < max_lines and time.monotonic() < deadline:
            task, pid, cpu, flags, ts, msg = b.trace_fields(nonblocking=True)
            if task is None:
                time.sleep(0.02)
                continue
            rows.append({"ts": float(ts), "task": task.decode(errors="replace"), "pid": int(pid),
                         "cpu": int(cpu), "flags": flags.decode(errors="replace"),
                         "msg": msg.decode(errors="replace").strip()})
            if echo:
                print(tutorial_line(float(ts), task, int(pid), msg))
    finally:
        if proc is not None and getattr(proc, "poll", lambda: 0)() is None:
            proc.kill()
            proc.wait()
        b.cleanup()  # detaches everything bcc attached
        drain_trace_pipe()
    df = pd.DataFrame(rows, columns=["ts", "task", "pid", "cpu", "flags", "msg"])
    df.attrs["stale_bytes"] = stale
    df.attrs["program"] = path
    return df
