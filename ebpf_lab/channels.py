"""Getting data out of the kernel: one kmalloc storm through trace_pipe, a perf buffer, a ring buffer
and the lab's bulk reader, measured side by side (lesson 02).

:func:`read_channel` is the plain-bcc loader a learner writes for each channel
(``ebpf_lab/programs/kmalloc_channels.bpf.c``, one ``-DCHANNEL_*`` per channel);
:func:`measure_channels` runs the same storm through each and returns one row per
channel; :func:`conclusions` turns that table into sentences — computed from the
numbers, so they say what this machine measured.
"""
from __future__ import annotations

import errno
import os
import subprocess
import time
from typing import Any, Dict, List, Optional, Sequence

import pandas as pd

from . import _kernel
from ._bcc import import_bcc
from ._workloads import binary
from .bpf import program_path
from .errors import LabParameterError
from .kernel_headers import prepare
from .tutorial import drain_trace_pipe

__all__ = ["CHANNELS", "start_storm", "release", "counter", "read_channel", "measure_channels", "conclusions", "plot_channels"]

#: channel name -> the -D flag that compiles kmalloc_channels.bpf.c for it
CHANNELS = {"trace_pipe": "-DCHANNEL_PRINTK", "perf buffer": "-DCHANNEL_PERF", "ring buffer": "-DCHANNEL_RINGBUF"}
_ALL = tuple(CHANNELS) + ("lab bulk reader",)


def start_storm(iterations: int) -> "subprocess.Popen[bytes]":
    """The lesson's workload (``ebl-kmalloc ITERATIONS wait``), waiting on stdin until :func:`release`.

    A tracer can so compile for its pid (``-DONLY_PID=...``) and attach before the storm begins.
    """
    return subprocess.Popen([binary("kmalloc_storm"), str(int(iterations)), "wait"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL)


def release(storm: "subprocess.Popen[bytes]") -> None:
    """Let a :func:`start_storm` workload begin."""
    assert storm.stdin is not None
    storm.stdin.write(b"g")
    storm.stdin.close()


def counter(table: Any) -> int:
    """A BPF_PERCPU_ARRAY counter read from Python: the sum over every CPU's copy."""
    return int(sum(sum(v) for v in table.values()))


def read_channel(channel: str, iterations: int = 20000, *, timeout: float = 30.0,
                 perf_pages: int = 64, ring_pages: int = 64) -> Dict[str, Any]:
    """Run one storm of ``iterations`` through ``channel`` with plain bcc; what arrived and what it cost.

    Returns seen (events the program offered to the channel), received (events
    Python got), lost (seen - received), lost_reported (what the channel itself said
    it lost: perf's lost callback, the ring buffer's failed reserves; trace_pipe says
    nothing), out_of_order (events that arrived with an earlier timestamp than the one
    before), seconds (storm start to last event read) and cpu_s (this process's CPU time).
    """
    if channel not in CHANNELS:
        raise LabParameterError(f"reading channel {channel!r}: choose one of {', '.join(CHANNELS)}")
    if not (1 <= int(iterations) <= 10_000_000):
        raise LabParameterError(f"reading channel {channel}: iterations={iterations!r} must be in [1, 10,000,000]")
    _kernel.require_root(f"reading kmalloc events through the {channel}")
    _kernel.ensure_kernel_fs()
    prepare()
    BPF = import_bcc().BPF
    storm = start_storm(iterations)
    b = None
    try:
        b = BPF(src_file=program_path("kmalloc_channels.bpf.c"),  # TRACEPOINT_PROBE: attached here
                cflags=[CHANNELS[channel], f"-DONLY_PID={storm.pid}", f"-DRINGBUF_PAGES={int(ring_pages)}"])
        received, lost_reported, out_of_order, last_ts = 0, 0, 0, 0

        def on_event(ts: int) -> None:
            nonlocal received, out_of_order, last_ts
            received += 1
            if ts < last_ts:
                out_of_order += 1
            last_ts = max(last_ts, ts)

        if channel == "trace_pipe":
            drain_trace_pipe()
            for attempt in range(100):  # trace_pipe takes one reader at a time: EBUSY while another holds it
                try:
                    b.trace_open(nonblocking=True)
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY or attempt == 99:
                        raise
                    time.sleep(0.05)
            mine = f"-{storm.pid} ".encode()  # "ebl-kmalloc-1234 [001] ...": the storm's lines

            def poll() -> int:
                n = 0
                while True:
                    line = b.trace_readline(nonblocking=True)
                    if not line:
                        return n
                    line = line if isinstance(line, bytes) else line.encode()
                    if mine in line and b"ebl-channel " in line:  # the pipe is shared: only ours
                        on_event(0)
                        n += 1
        else:
            def cb(*args: Any) -> None:  # (cpu, data, size) for perf, (ctx, data, size) for the ring
                on_event(int(b["events"].event(args[-2]).ts_ns))

            if channel == "perf buffer":
                def lost_cb(n: int) -> None:
                    nonlocal lost_reported
                    lost_reported += n

                b["events"].open_perf_buffer(cb, page_cnt=int(perf_pages), lost_cb=lost_cb)

                def poll() -> int:
                    before = received
                    b.perf_buffer_poll(timeout=50)
                    return received - before
            else:
                b["events"].open_ring_buffer(cb)

                def poll() -> int:
                    before = received
                    b.ring_buffer_poll(timeout=50)
                    return received - before
        cpu0, t0 = time.process_time(), time.monotonic()
        release(storm)
        deadline, t_last, idle = t0 + timeout, t0, 0
        while time.monotonic() < deadline:
            got = poll()
            if got:
                t_last, idle = time.monotonic(), 0
            elif storm.poll() is not None:
                idle += 1
                if idle > 5:  # the storm is over and the channel stayed empty for a few polls
                    break
                time.sleep(0.02)
        cpu = time.process_time() - cpu0
        seen = counter(b["seen"])
        if channel == "ring buffer":
            lost_reported = counter(b["dropped"])
        return {"channel": channel, "seen": seen, "received": received, "lost": max(0, seen - received),
                "lost_reported": lost_reported if channel != "trace_pipe" else None,
                "out_of_order": out_of_order if channel != "trace_pipe" else None,
                "seconds": max(t_last - t0, 1e-9), "cpu_s": cpu}
    finally:
        if storm.poll() is None:
            storm.kill()
        storm.wait()
        if b is not None:
            b.cleanup()
        if channel == "trace_pipe":
            drain_trace_pipe()


def _lab_reader(iterations: int, timeout: float) -> Dict[str, Any]:
    from .lessons.kmalloc import KmallocLesson

    storm = start_storm(iterations)
    try:
        with KmallocLesson(only_pid=storm.pid, min_bytes=0) as lab:
            lab.compile()
            lab.load()
            lab.attach()
            cpu0, t0 = time.process_time(), time.monotonic()
            release(storm)
            frames: List[pd.DataFrame] = []
            deadline = t0 + timeout
            while storm.poll() is None and time.monotonic() < deadline:
                frames.append(lab.collect(seconds=0.2, quiet=True))
            frames.append(lab.collect(seconds=0.3, quiet=True))
            t_last = time.monotonic()
            cpu = time.process_time() - cpu0
            c = lab.counts()
            received = sum(len(f) for f in frames)
            return {"channel": "lab bulk reader", "seen": c["seen"], "received": received,
                    "lost": max(0, c["seen"] - received), "lost_reported": c["lost"], "out_of_order": None,
                    "seconds": max(t_last - t0, 1e-9), "cpu_s": cpu}
    finally:
        if storm.poll() is None:
            storm.kill()
        storm.wait()


def measure_channels(iterations: int = 20000, *, channels: Sequence[str] = _ALL, timeout: float = 30.0) -> pd.DataFrame:
    """The same storm through each channel; one row per channel.

    Columns: channel, seen, received, lost, lost_reported, out_of_order, seconds, cpu_s,
    events_per_s (received / seconds), lost_pct, cpu_us_per_event (this process's CPU
    time per event received). ``attrs``: iterations, cpus (CPUs this process may use).
    """
    unknown = [c for c in channels if c not in _ALL]
    if unknown:
        raise LabParameterError(f"measuring channels: unknown {unknown}; choose from {', '.join(_ALL)}")
    rows = [(_lab_reader(iterations, timeout) if c == "lab bulk reader" else read_channel(c, iterations, timeout=timeout))
            for c in channels]
    df = pd.DataFrame(rows)
    df["events_per_s"] = df["received"] / df["seconds"]
    df["lost_pct"] = 100.0 * df["lost"] / df["seen"].clip(lower=1)
    df["cpu_us_per_event"] = 1e6 * df["cpu_s"] / df["received"].clip(lower=1)
    df.attrs["iterations"] = int(iterations)
    df.attrs["cpus"] = len(os.sched_getaffinity(0))
    return df


def conclusions(df: pd.DataFrame) -> List[str]:
    """Sentences derived from a :func:`measure_channels` table — only what its numbers show."""
    out = []
    d = df.set_index("channel")
    best = d["events_per_s"].idxmax()
    out.append(f"most events per second into Python: {best} ({d.loc[best, 'events_per_s']:,.0f}/s)")
    cheap = d["cpu_us_per_event"].idxmin()
    out.append(f"least CPU per event: {cheap} ({d.loc[cheap, 'cpu_us_per_event']:.2f} µs)")
    lossless = [c for c in d.index if d.loc[c, "lost"] == 0]
    lossy = [f"{c} ({d.loc[c, 'lost_pct']:.1f}%)" for c in d.index if d.loc[c, "lost"] > 0]
    out.append("lost nothing: " + (", ".join(lossless) or "none") + ("; lost some: " + ", ".join(lossy) if lossy else ""))
    for c in d.index:
        rep = d.loc[c, "lost_reported"]
        if d.loc[c, "lost"] > 0:
            if c == "trace_pipe":
                out.append(f"trace_pipe lost {d.loc[c, 'lost']:,} events without telling anyone: "
                           "only the in-kernel counter shows it")
            elif pd.notna(rep):
                out.append(f"{c} lost {d.loc[c, 'lost']:,} events and reported {int(rep):,} of them itself")
    if "perf buffer" in d.index and pd.notna(d.loc["perf buffer", "out_of_order"]):
        n = int(d.loc["perf buffer", "out_of_order"])
        out.append(f"perf buffer: {n:,} events arrived after a later one (per-CPU buffers are read one CPU at a time)"
                   if n else "perf buffer: every event arrived in time order in this run (its per-CPU buffers "
                             "can reorder events from different CPUs; the storm may have stayed on one CPU)")
    return out


def plot_channels(df: pd.DataFrame, axes: Optional[Sequence[Any]] = None) -> Any:
    """Three bar charts: events/s received, % lost, CPU µs per event — one bar per channel."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    names = list(df["channel"])
    for ax, col, label in zip(axes, ("events_per_s", "lost_pct", "cpu_us_per_event"),
                              ("events/s into Python", "% of events lost", "CPU µs per event (reader)")):
        ax.bar(names, df[col], color=["#c44e52", "#4c72b0", "#55a868", "#8172b3"][:len(names)])
        ax.set_title(label)
        ax.tick_params(axis="x", rotation=20)
    axes[0].figure.suptitle(f"One storm of {df.attrs.get('iterations', 0):,} open/read/close rounds, four channels")
    axes[0].figure.tight_layout()
    return axes
