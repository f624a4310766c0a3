"""Lesson 02 — who is allocating memory? The ``kmem:kmalloc`` tracepoint.

Notebook: ``notebooks/02_kmalloc.ipynb``. Program: ``ebpf_lab/programs/kmalloc.bpf.c``
(the tutorial's own version: ``kmalloc_tutorial.bpf.c``).
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from typing import Any, ClassVar, Dict, List, Optional

import numpy as np
import pandas as pd

from .. import _kernel
from .._bcc import import_bcc
from .._workloads import binary
from ..engine import Hook, Lesson, Param, Workload, bytes_to_category, factorize, wall_clock
from ..errors import FeatureUnavailable, LabError

__all__ = ["KmallocLesson", "tracepoint_format", "list_tracepoints"]


def list_tracepoints(pattern: str = "") -> pd.DataFrame:
    """Tracepoints of the running kernel (tracefs ``available_events``) matching ``pattern`` (a regex)."""
    _kernel.ensure_kernel_fs()
    t = _kernel.tracefs()
    if t is None:
        raise FeatureUnavailable("tracefs", "listing tracepoints: tracefs is not mounted and could not be mounted (needs root)")
    rx = re.compile(pattern)
    rows = []
    with open(os.path.join(t, "available_events")) as f:
        for line in f:
            cat, _, ev = line.strip().partition(":")
            if rx.search(line):
                rows.append({"category": cat, "event": ev, "tracepoint": f"{cat}:{ev}"})
    return pd.DataFrame(rows, columns=["category", "event", "tracepoint"])


_FIELD = re.compile(r"field:(?P<decl>[^;]+);\s*offset:(?P<offset>\d+);\s*size:(?P<size>\d+);\s*signed:(?P<signed>\d+);")


def tracepoint_format(category: str, event: str) -> pd.DataFrame:
    """Parse ``events/<category>/<event>/format`` into a table of fields.

    Columns: field, type, offset, size, signed, common (True for the header every
    event shares). ``attrs['print_fmt']`` keeps the event's printf format.
    """
    _kernel.ensure_kernel_fs()
    t = _kernel.tracefs()
    path = os.path.join(t or "/sys/kernel/tracing", "events", category, event, "format")
    try:
        text = open(path).read()
    except FileNotFoundError:
        raise FeatureUnavailable(f"tracepoint {category}:{event}", f"reading {path}: this kernel has no tracepoint {category}:{event}") from None
    rows = []
    for m in _FIELD.finditer(text):
        decl = m["decl"].strip()
        name_m = re.search(r"(\w+)\s*(\[[^\]]*\])?\s*$", decl)
        name = name_m.group(1) if name_m else decl
        ctype = decl[: name_m.start()].strip() + (name_m.group(2) or "") if name_m else decl
        rows.append({"field": name, "type": ctype, "offset": int(m["offset"]), "size": int(m["size"]),
                     "signed": m["signed"] == "1", "common": name.startswith("common_")})
    df = pd.DataFrame(rows)
    pm = re.search(r"^print fmt: (.*)$", text, re.M)
    df.attrs["print_fmt"] = pm.group(1) if pm else ""
    df.attrs["path"] = path
    return df


class KmallocLesson(Lesson):
    """Who is allocating memory: every kernel allocation at or above ``min_bytes`` as a row.

    >>> df = KmallocLesson(min_bytes=128).run()
    """

    id = "kmalloc"
    title = "02 · Who is allocating memory? (kmem:kmalloc tracepoint)"
    notebook = "02_kmalloc.ipynb"
    program = "kmalloc.bpf.c"
    params: ClassVar[Dict[str, Param]] = {
        "min_bytes": Param(128, "report allocations of at least this many bytes (the tutorial's 128)",
                           min=0, max=1 << 30, cflag="MIN_BYTES"),
        "event": Param("kmalloc", "which tracepoint: kmalloc, or mm_page_alloc (whole pages)",
                       choices=("kmalloc", "mm_page_alloc")),
        "stream": Param(True, "send every allocation to user space (False: in-kernel histogram only)", cflag="STREAM"),
        "only_pid": Param(0, "0 for every process, else only this process id", min=0, max=1 << 22, cflag="ONLY_PID"),
        "iterations": Param(20000, "how many open/read/close rounds the built-in workload does", min=1, max=10_000_000),
    }
    columns = {
        "time": "wall-clock time of the allocation (datetime64[ns])",
        "ts_ns": "bpf_ktime_get_ns(): CLOCK_MONOTONIC nanoseconds (int64)",
        "cpu": "CPU the allocation ran on (int16)",
        "pid": "process id (tgid) that allocated (int32)",
        "tid": "thread id (int32)",
        "comm": "process name (category)",
        "bytes_req": "bytes the caller asked for (int64)",
        "bytes_alloc": "bytes the allocator handed out (int64)",
        "slack": "bytes_alloc - bytes_req: memory lost to size classes (int64)",
        "gfp_flags": "allocation flags (uint32)",
        "call_site": "kernel address that called kmalloc, 0 for page allocations (uint64)",
        "call_site_sym": "call_site as a kernel symbol (category; '' for page allocations)",
        "event": "kmalloc or mm_page_alloc (category)",
    }

    def select_hooks(self) -> List[Hook]:
        ev = self.values["event"]
        if not _kernel.tracepoint_exists("kmem", ev):
            raise FeatureUnavailable(f"tracepoint kmem:{ev}", f"compiling lesson kmalloc: this kernel has no kmem:{ev} tracepoint")
        fn = "on_kmalloc" if ev == "kmalloc" else "on_page_alloc"
        return [Hook("tracepoint", f"kmem:{ev}", fn)]

    def start_workload(self, iterations: Optional[int] = None, cpu: Optional[int] = None) -> Workload:
        n = int(iterations or self.values["iterations"])
        exe = binary("kmalloc_storm")
        pre = None
        if cpu is not None:
            pre = lambda: os.sched_setaffinity(0, {cpu})  # noqa: E731
        proc = subprocess.Popen([exe, str(n)], stdout=subprocess.PIPE, text=True, preexec_fn=pre)
        return Workload(f"ebl-kmalloc: {n} x open/read/close of /proc/self/stat", proc, time.monotonic(),
                        {"comm": "ebl-kmalloc", "iterations": n})

    def expected_workload_seconds(self) -> float:
        return max(0.5, self.values["iterations"] / 100_000)

    def to_frame(self, arr: Any) -> pd.DataFrame:
        n = len(arr)
        cs = arr["call_site"]
        req = arr["bytes_req"].astype(np.int64)
        alloc = arr["bytes_alloc"].astype(np.int64)
        cols = {
            "time": wall_clock(arr["ts_ns"]),
            "ts_ns": arr["ts_ns"].astype(np.int64),
            "cpu": arr["cpu"].astype(np.int16),
            "pid": arr["pid"].astype(np.int32),
            "tid": arr["tid"].astype(np.int32),
            "comm": bytes_to_category(arr["comm"]),
            "bytes_req": req,
            "bytes_alloc": alloc,
            "slack": alloc - req,
            "gfp_flags": arr["gfp_flags"].astype(np.uint32),
            "call_site": cs.astype(np.uint64),
            "call_site_sym": symbolize(cs),
            "event": pd.Categorical.from_codes(arr["kind"].astype(np.int8),
                                               categories=pd.Index(["kmalloc", "mm_page_alloc"], dtype=object)),
        }
        # copy=False keeps one block per column: no consolidation copy of the whole frame.
        return pd.DataFrame(cols, copy=False) if n else pd.DataFrame(cols)

    # --------------------------------------------------- in-kernel aggregation
    def histogram(self) -> pd.DataFrame:
        """The in-kernel log2 histogram of bytes_alloc: one row per power-of-two bucket."""
        if self.bpf is None:
            raise LabError("reading the histogram: the lesson is not compiled/attached (or already detached)")
        tab = self.bpf["sizes"]
        rows = [(k, int(tab.sum(k).value)) for k in range(64)]
        rows = [(k, c) for k, c in rows if c]
        df = pd.DataFrame(
            [{"bucket": k, "low": 1 << k, "high": (1 << (k + 1)) - 1, "count": c} for k, c in rows],
            columns=["bucket", "low", "high", "count"],
        )
        return df

    def counts(self) -> Dict[str, int]:
        """Allocations the program saw, and how many passed the filters (counted in the kernel)."""
        if self.bpf is None:
            raise LabError("reading the counters: the lesson is not compiled/attached (or already detached)")
        seen = self.bpf["seen"]
        return {"seen": int(seen.sum(0).value), "reported": int(seen.sum(1).value), "lost": self.lost()}

    def describe(self, elapsed: float = 0.0) -> Dict[str, Any]:
        d = super().describe(elapsed)
        if self.bpf is not None:
            d["kernel_counts"] = self.counts()
        return d


def symbolize(addrs: np.ndarray) -> pd.Categorical:
    """Kernel addresses -> symbol names (looked up once per distinct address)."""
    if len(addrs) == 0:
        return pd.Categorical([])
    bcc = import_bcc()
    codes, uniq = factorize(addrs)
    names = []
    for a in uniq.tolist():
        if a == 0:
            names.append("")
            continue
        try:
            names.append(bcc.BPF.ksym(a, show_offset=False).decode(errors="replace"))
        except Exception:
            names.append(hex(a))
    cats, remap = np.unique(np.array(names, dtype=object), return_inverse=True)
    return pd.Categorical.from_codes(remap.astype(np.int32)[codes], categories=pd.Index(cats, dtype=object))
