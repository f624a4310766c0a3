"""Lesson 02 — who is allocating memory? The ``kmem:kmalloc`` tracepoint.

Notebook: ``notebooks/02_kmalloc.ipynb``. Program: ``ebpf_lab/programs/kmalloc.bpf.c``
(the tutorial's own version: ``kmalloc_tutorial.bpf.c``).
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from typing import Any, ClassVar, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from .. import _kernel, _ksyms
from .._workloads import binary
from ..engine import Hook, Lesson, Param, Workload, bytes_to_category, factorize, wall_clock
from ..errors import FeatureUnavailable, LabError

__all__ = ["KmallocLesson", "kmalloc_node_separate", "traced_events_sentence", "tracepoint_format", "list_tracepoints",
           "plot_sizes", "plot_top", "plot_slack", "plot_histogram_table",
           "log2l_bounds", "log2_histogram", "workload_command", "bpftrace_program", "bpftrace_sizes",
           "compare_sizes"]


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
        raise FeatureUnavailable(f"tracepoint {category}:{event}",
                                 f"reading {path}: this kernel has no tracepoint {category}:{event}") from None
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


def kmalloc_node_separate() -> bool:
    """Does this kernel trace node-specific (and, before 6.1, large) kmallocs as kmem:kmalloc_node?

    Kernels before 6.1 have a tracepoint kmem:kmalloc_node beside kmem:kmalloc; 6.1
    merged them (kmem:kmalloc gained a ``node`` field). Found in tracefs, not by version.
    """
    return _kernel.tracepoint_exists("kmem", "kmalloc_node")


# the name cache's hooks (no events: see current_comm in kmalloc.bpf.c), as category:event -> function;
# df.attrs["hooks"] names each "tracepoint:" + category:event
NAME_CACHE_TRACEPOINTS = {"task:task_rename": "on_task_rename", "task:task_newtask": "on_task_newtask"}


def traced_events_sentence(hooks: List[str]) -> str:
    """Which kmalloc tracepoints a run used, and why, for a notebook: computed from ``df.attrs['hooks']``."""
    if "tracepoint:kmem:kmalloc_node" in hooks:
        return ("traced kmem:kmalloc and kmem:kmalloc_node: this kernel (before 6.1) reports node-specific and "
                "large kmallocs through the separate kmalloc_node tracepoint, so both are needed to see them all")
    if "tracepoint:kmem:kmalloc" in hooks:
        return ("traced kmem:kmalloc only: this kernel has no kmem:kmalloc_node tracepoint (6.1 merged it into "
                "kmem:kmalloc, which carries a node field), so kmem:kmalloc sees every kmalloc")
    return f"traced {', '.join(h for h in hooks if h[len('tracepoint:'):] not in NAME_CACHE_TRACEPOINTS)}"


class KmallocLesson(Lesson):
    """Who is allocating memory: every kernel allocation at or above ``min_bytes`` as a row.

    >>> df = KmallocLesson(min_bytes=128).run()
    """

    id = "kmalloc"
    title = "02 · Who is allocating memory? (kmem:kmalloc tracepoint)"
    notebook = "02_kmalloc.ipynb"
    program = "kmalloc.bpf.c"
    workload_binaries = ("kmalloc_storm",)
    params: ClassVar[Dict[str, Param]] = {
        "min_bytes": Param(128, "report allocations of at least this many bytes (the tutorial's 128)",
                           min=0, max=1 << 30, cflag="MIN_BYTES"),
        "event": Param("kmalloc", "which tracepoint: kmalloc, or mm_page_alloc (whole pages)",
                       choices=("kmalloc", "mm_page_alloc")),
        "stream": Param(True, "send every allocation to user space (False: in-kernel histogram only)", cflag="STREAM"),
        "only_pid": Param(0, "0 for every process, else only this process id", min=0, max=1 << 22, cflag="ONLY_PID"),
        "ring_pages": Param(2048, "ring buffer size in 4 KiB pages (a power of two). The default, 8 MiB, holds "
                            "~130,000 events: an eighth of a second of one CPU allocating a million times a second, "
                            "so the collector (woken when 1 MiB waits) has time to drain even on a busy machine; "
                            "a smaller ring can lose events, and the lesson then says how many",
                            choices=tuple(1 << k for k in range(0, 17)), cflag="RING_PAGES"),
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
        "event": "the tracepoint that saw it: kmalloc, kmalloc_node (kernels before 6.1) or mm_page_alloc (category)",
    }

    def select_hooks(self) -> List[Hook]:
        ev = self.values["event"]
        if not _kernel.tracepoint_exists("kmem", ev):
            raise FeatureUnavailable(f"tracepoint kmem:{ev}",
                                     f"compiling lesson kmalloc: this kernel has no kmem:{ev} tracepoint")
        fn = "on_kmalloc" if ev == "kmalloc" else "on_page_alloc"
        hooks = [Hook("tracepoint", f"kmem:{ev}", fn)]
        if ev == "kmalloc" and kmalloc_node_separate():
            hooks.append(Hook("tracepoint", "kmem:kmalloc_node", "on_kmalloc_node"))
        if self._comm_cache():
            for tp, fn in NAME_CACHE_TRACEPOINTS.items():
                what = "was renamed" if tp.endswith("rename") else "was created (it may reuse an old thread id)"
                hooks.append(Hook("tracepoint", tp, fn, note="no events: tells the program's name cache "
                                                              f"(current_comm in kmalloc.bpf.c) that a task {what}"))
        return hooks

    def _comm_cache(self) -> bool:
        """Compile with -DCOMM_CACHE: the program's own text (or a learner's that has the cache's functions), and a
        kernel with task:task_rename and task:task_newtask to keep the cache right. Elsewhere every event copies the
        name (bpf_get_current_comm)."""
        mine = self.program_text is None or all(fn in self.program_text for fn in NAME_CACHE_TRACEPOINTS.values())
        return mine and all(_kernel.tracepoint_exists(*tp.split(":")) for tp in NAME_CACHE_TRACEPOINTS)

    def extra_cflags(self) -> List[str]:
        # on_kmalloc_node exists only where its tracepoint does (bcc needs its format file)
        node = self.values["event"] == "kmalloc" and kmalloc_node_separate()
        return (["-DHOOK_KMALLOC_NODE"] if node else []) + (["-DCOMM_CACHE"] if self._comm_cache() else [])

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
        sym = symbolize(cs)  # first: the symbol table is freed before the other columns exist (peak memory)
        ts = arr["ts_ns"].astype(np.int64)
        req = arr["bytes_req"].astype(np.int64)
        alloc = arr["bytes_alloc"].astype(np.int64)
        cols = {
            "time": wall_clock(ts),
            "ts_ns": ts,
            "cpu": arr["cpu"].astype(np.int16),
            "pid": arr["pid"].astype(np.int32),
            "tid": arr["tid"].astype(np.int32),
            "comm": arr.category("comm") if hasattr(arr, "category") else bytes_to_category(arr["comm"]),
            "bytes_req": req,
            "bytes_alloc": alloc,
            "slack": alloc - req,
            "gfp_flags": arr["gfp_flags"].astype(np.uint32),
            "call_site": cs.astype(np.uint64),
            "call_site_sym": sym,
            "event": pd.Categorical.from_codes(arr["kind"].astype(np.int8),
                                               categories=pd.Index(["kmalloc", "mm_page_alloc", "kmalloc_node"],
                                                                   dtype=object)),
        }
        # copy=False keeps one block per column: no consolidation copy of the whole frame.
        return pd.DataFrame(cols, copy=False) if n else pd.DataFrame(cols)

    # --------------------------------------------------- in-kernel aggregation
    def histogram(self) -> pd.DataFrame:
        """The in-kernel log2 histogram of bytes_alloc: one row per non-empty bucket.

        Columns bucket, low, high, count: bucket k counted the allocations with
        low <= bytes_alloc <= high (see :func:`log2l_bounds`).
        """
        if self.bpf is None:
            raise LabError("reading the histogram: the lesson is not compiled/attached (or already detached)")
        sizes = np.sum([np.ctypeslib.as_array(v.sizes) for v in self._stats()], axis=0)
        return _log2_frame({k: int(c) for k, c in enumerate(sizes.tolist()) if c})

    def counts(self) -> Dict[str, int]:
        """Allocations the program saw, and how many passed the filters (counted in the kernel)."""
        if self.bpf is None:
            raise LabError("reading the counters: the lesson is not compiled/attached (or already detached)")
        per_cpu = self._stats()
        return {"seen": sum(v.seen for v in per_cpu), "reported": sum(v.reported for v in per_cpu),
                "lost": sum(v.lost for v in per_cpu)}

    def lost(self) -> Optional[int]:
        """Events the ring buffer had no room for (counted in the kernel); None when unknown."""
        if self.bpf is None:
            return None
        try:
            return sum(v.lost for v in self._stats())
        except LabError:   # a learner's own program without the lesson's counters: unknown, not 0
            return None

    def _stats(self) -> List[Any]:
        """The program's ``stats`` map: one ``struct alloc_stats`` per CPU."""
        try:
            return list(self.bpf["stats"].getvalue(0))
        except (KeyError, AttributeError, OSError) as e:  # no such map (a learner's program), or it is gone
            raise LabError(f"reading the in-kernel counters (map 'stats'): {e}") from e

    def describe(self, elapsed: float = 0.0) -> Dict[str, Any]:
        d = super().describe(elapsed)
        if self.bpf is not None:
            d["kernel_counts"] = self.counts()
        d["ring_bytes"] = self.values["ring_pages"] * 4096
        if self._reader is not None:
            d["collector_wakeups"] = self._reader.wakeups
        if d.get("lost"):
            d["summary"] = (f"{d['lost']:,} events were lost: the ring buffer ({d['ring_bytes'] // 1024:,} KiB) was full "
                            "when they happened, so the kernel dropped them (and counted them). A bigger ring "
                            f"(ring_pages, now {self.values['ring_pages']}) gives the collector more time to drain.")
        return d


def log2l_bounds(k: int) -> Tuple[int, int]:
    """The values that bcc's ``bpf_log2l()`` puts in bucket ``k``: (low, high), both included.

    ``bpf_log2l(v)`` is floor(log2 v) + 1, and 1 for v = 0 (bcc's helpers.h), so
    bucket k >= 1 holds 2^(k-1) ... 2^k - 1 (a 4,096-byte allocation lands in
    bucket 13: 4,096-8,191), bucket 1 holds 0 and 1, and bucket 0 is never
    filled: the ranges bcc's own ``print_log2_hist()`` prints.
    """
    if k < 0 or k > 64:
        raise ValueError(f"log2l_bounds: bucket {k} is outside 0..64")
    if k <= 1:
        return 0, k
    return 1 << (k - 1), (1 << k) - 1


def log2_histogram(values: Any) -> pd.DataFrame:
    """The same histogram as :meth:`KmallocLesson.histogram`, computed in Python from ``values``.

    ``values``: sizes in bytes (e.g. a DataFrame's ``bytes_alloc``). Each value v
    goes to bucket floor(log2 v) + 1 (bucket 1 for v = 0), as ``bpf_log2l()`` does.
    """
    v = np.asarray(values, dtype=np.uint64)
    k = np.zeros(len(v), dtype=np.int64)
    pos = v > 0
    # frexp: v = m * 2**e with 0.5 <= m < 1, so e = floor(log2 v) + 1, exact for
    # the 32-bit sizes of this lesson (float64 holds them without rounding).
    k[pos] = np.frexp(v[pos].astype(np.float64))[1]
    k[~pos] = 1
    counts = np.bincount(k, minlength=1)
    return _log2_frame({int(b): int(c) for b, c in enumerate(counts.tolist()) if c})


def _log2_frame(counts: Dict[int, int]) -> pd.DataFrame:
    rows = [(k, *log2l_bounds(k), c) for k, c in sorted(counts.items())]
    return pd.DataFrame(rows, columns=["bucket", "low", "high", "count"]).astype(
        {"bucket": np.int64, "low": np.int64, "high": np.int64, "count": np.int64})


def symbolize(addrs: np.ndarray) -> pd.Categorical:
    """Kernel addresses -> symbol names: each distinct address looked up once, all at once (ebpf_lab/_ksyms.py)."""
    if len(addrs) == 0:
        return pd.Categorical([])
    codes, uniq = factorize(addrs)
    names = _ksyms.names(uniq)
    cats, remap = np.unique(np.array(names, dtype=object), return_inverse=True)
    return pd.Categorical.from_codes(remap.astype(np.int32).reshape(-1)[codes], categories=pd.Index(cats, dtype=object))


# ------------------------------------------------------------------ plots
def _axes(ax: Any) -> Any:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(8, 3.5))
    return ax


def plot_sizes(df: pd.DataFrame, ax: Any = None, title: str = "") -> Any:
    """Histogram of bytes_alloc on log2 buckets (the shape of kernel allocation sizes)."""
    ax = _axes(ax)
    if len(df):
        b = np.log2(np.maximum(df["bytes_alloc"].to_numpy(), 1)).astype(int)
        counts = np.bincount(b)
        nz = np.nonzero(counts)[0]
        ax.bar(nz, counts[nz], color="#4c72b0")
        ax.set_xticks(nz)
        ax.set_xticklabels([f"{1 << k:,}" for k in nz], rotation=45, ha="right")
        ax.set_yscale("log")
    ax.set_xlabel("bytes_alloc (log2 bucket lower bound, bytes)")
    ax.set_ylabel("allocations (log scale)")
    ax.set_title(title or f"kmalloc sizes: {len(df):,} allocations ≥ {df.attrs.get('params', {}).get('min_bytes', '?')} bytes")
    ax.figure.tight_layout()
    return ax


def plot_top(df: pd.DataFrame, by: str = "comm", n: int = 10, ax: Any = None) -> Any:
    """Top allocators by total bytes_alloc, grouped by ``by`` (comm, pid or call_site_sym)."""
    ax = _axes(ax)
    top = df.groupby(by, observed=True)["bytes_alloc"].agg(["sum", "count"]).nlargest(n, "sum")[::-1]
    labels = [str(i) for i in top.index]
    ax.barh(labels, top["sum"] / 1024, color="#dd8452")
    for y, (s, c) in enumerate(zip(top["sum"], top["count"])):
        ax.text(s / 1024, y, f" {c:,} calls", va="center", fontsize=8)
    ax.set_xlabel("KiB allocated (bytes_alloc summed)")
    ax.set_title(f"Who allocates the most? top {len(top)} by {by}")
    ax.figure.tight_layout()
    return ax


def plot_slack(df: pd.DataFrame, ax: Any = None) -> Any:
    """Requested vs allocated: the allocator rounds requests up to size classes."""
    ax = _axes(ax)
    g = df.groupby("bytes_alloc")[["bytes_req", "slack"]].agg({"bytes_req": "count", "slack": "sum"})
    g = g[g["bytes_req"] > 0]
    wasted = g["slack"] / (g.index.to_numpy() * g["bytes_req"]) * 100
    ax.bar([f"{i:,}" for i in g.index], wasted, color="#55a868")
    ax.set_xlabel("size class (bytes_alloc)")
    ax.set_ylabel("% of the class's bytes unused")
    total = 100 * df["slack"].sum() / max(1, df["bytes_alloc"].sum())
    ax.set_title(f"Slack: requested vs allocated — {total:.1f}% of all allocated bytes were never asked for")
    ax.tick_params(axis="x", rotation=45)
    ax.figure.tight_layout()
    return ax


def plot_histogram_table(hist: pd.DataFrame, ax: Any = None) -> Any:
    """The in-kernel histogram (BPF map) as bars."""
    ax = _axes(ax)
    ax.bar([f"{lo:,}-{hi:,}" for lo, hi in zip(hist["low"], hist["high"])], hist["count"], color="#8172b3")
    ax.set_yscale("log")
    ax.set_xlabel("bytes_alloc bucket (aggregated inside the kernel)")
    ax.set_ylabel("allocations (log scale)")
    ax.set_title(f"In-kernel histogram: {int(hist['count'].sum()):,} allocations, 0 events sent to Python")
    ax.tick_params(axis="x", rotation=45)
    ax.figure.tight_layout()
    return ax


# ------------------------------------------------------------- bpftrace beside bcc
def workload_command(iterations: int = 20000) -> List[str]:
    """The lesson's workload as an argv (built on first use): ``ebl-kmalloc ITERATIONS``."""
    return [binary("kmalloc_storm"), str(int(iterations))]


def bpftrace_program(min_bytes: int = 128) -> Tuple[str, str]:
    """The lesson's question as a bpftrace one-liner — the workload's allocations per size — and which events.

    Uses the tracepoints the lesson uses on this kernel (kmem:kmalloc, plus
    kmem:kmalloc_node where it exists); counts only the ``-c`` workload (``cpid``).
    """
    hooks = ["tracepoint:kmem:kmalloc"] + (["tracepoint:kmem:kmalloc_node"] if kmalloc_node_separate() else [])
    prog = (f"{','.join(hooks)} /pid == cpid && args->bytes_alloc >= {int(min_bytes)}/ "
            "{ @bytes[args->bytes_alloc] = count(); }")
    return prog, traced_events_sentence(hooks)


def bpftrace_sizes(*, iterations: int = 20000, min_bytes: int = 128, seconds: float = 120.0) -> pd.DataFrame:
    """Run :func:`bpftrace_program` on a fresh run of the workload (bpftrace ``-c``): count per bytes_alloc.

    Columns bytes_alloc, count (largest count first); ``attrs``: ``command``, ``note``
    (which events and why), and the runner's (``stopped_by``, ...).
    """
    from .. import bpftrace

    prog, note = bpftrace_program(min_bytes)
    run = bpftrace.run(prog, seconds=seconds, command=workload_command(iterations))
    counts = run.attrs["maps"].get("@bytes", {})
    df = bpftrace.map_frame(counts, key_names=["bytes_alloc"], value_name="count") if counts else \
        pd.DataFrame({"bytes_alloc": pd.Series(dtype="int64"), "count": pd.Series(dtype="int64")})
    df = df.sort_values(["count", "bytes_alloc"], ascending=[False, True]).reset_index(drop=True)
    df.attrs.update({k: v for k, v in run.attrs.items() if k != "maps"})
    df.attrs["note"] = note
    return df


def compare_sizes(df: pd.DataFrame, pid: int, bt: pd.DataFrame) -> pd.DataFrame:
    """The workload's allocations per size as the lesson saw them (rows of ``pid``) beside bpftrace's.

    Columns bytes_alloc, bcc, bpftrace (counts, 0 where one saw none), largest first.
    """
    mine = df.loc[df["pid"] == pid, "bytes_alloc"].value_counts().rename("bcc")
    theirs = bt.set_index("bytes_alloc")["count"].rename("bpftrace")
    both = pd.concat([mine, theirs], axis=1).fillna(0).astype("int64")
    both.index.name = "bytes_alloc"
    return both.sort_values(["bcc", "bpftrace"], ascending=False).reset_index()
