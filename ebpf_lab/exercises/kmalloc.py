"""Exercises of lesson 02 (who is allocating memory? the kmem:kmalloc tracepoint).

Both run the learner's program next to the grader's truth program
(``programs/kmalloc_truth.bpf.c``) on the same workload: two processes of the
lesson's ``kmalloc_storm`` (a target and a noise process), started paused so
their pids are known before the programs are compiled.
"""
from __future__ import annotations

import os
import random
import subprocess
from typing import Any, Dict, Iterable, List, Sequence

import pandas as pd

from .._workloads import binary
from .. import _procs
from ..engine import Hook
from ._base import FAIL, Exercise, Fail, Grader, Stop
from ._workload import Paused

HOOK = [Hook("tracepoint", "kmem:kmalloc", "on_kmalloc")]
BPF_MAP_TYPE_HASH = 1


class Storms:
    """Paused kmalloc_storm processes: ``target`` and ``noise`` (a count of 0 starts none); ``go()`` releases them."""

    def __init__(self, target_iterations: int = 3000, noise_iterations: int = 1000) -> None:
        exe = binary("kmalloc_storm")
        self.procs: List[subprocess.Popen] = []
        pids = []
        for n in (target_iterations, noise_iterations):
            if not n:
                pids.append(0)
                continue
            p = _procs.popen([exe, str(n), "wait"], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append(p)
            pids.append(p.pid)
        self.target, self.noise = pids

    def go(self, timeout: float = 30.0, wait: bool = True) -> None:
        for p in self.procs:
            assert p.stdin is not None  # stdin=PIPE
            if not p.stdin.closed:
                p.stdin.write(b"g")
                p.stdin.close()
        if wait:
            for p in self.procs:
                p.wait(timeout)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


#: kmalloc size classes the threshold is drawn from, and the class below each
MIN_CLASSES = {192: 128, 256: 192, 512: 256, 1024: 512}


def writev_plan(min_bytes: int) -> List[tuple]:
    """(iovecs, calls) of writev(): more than 8 iovecs are copied into a kmalloc'ed array of 16 bytes each.

    Around ``min_bytes`` (a size class C, the class below P): requests of P bytes (handed out P, below
    the threshold), of between P and C (handed out C: "requested at least" differs from "got at least"),
    of exactly C ("at least" differs from "more than") and of 2C (well above).
    """
    c, p = min_bytes, MIN_CLASSES[min_bytes]
    plan = [(p // 16, 200)] if p // 16 > 8 else []
    return plan + [((p + c) // 32, 500), (c // 16, 300), (2 * c // 16, 200)]


def writev_script(values: Sequence[int]) -> str:
    plan = sorted({x for v in values for x in writev_plan(v)} | {(128, 100)})  # and 2048 bytes, whatever is drawn
    return ("import os\n"
            "fd = os.open('/dev/null', os.O_WRONLY)\n"
            f"for n, k in {plan!r}:\n"
            "    bufs = [b'x'] * n\n"
            "    for _ in range(k):\n"
            "        os.writev(fd, bufs)\n")


def draw(values: Iterable[int], k: int = 2) -> List[int]:
    """``k`` distinct parameter values for one grading run, drawn afresh (``EBPF_LAB_GRADE_SEED`` fixes them)."""
    seed = os.environ.get("EBPF_LAB_GRADE_SEED")
    rng = random.Random(seed) if seed else random.SystemRandom()
    return rng.sample(list(values), k)


def _run_storms(g: Grader, min_bytes: int) -> tuple:
    st = Storms()
    g.stack.callback(st.stop)
    flags = [f"-DTARGET_PID={st.target}", f"-DNOISE_PID={st.noise}", f"-DMIN_BYTES={min_bytes}"]
    return st, flags


def truth_counts(truth) -> Dict[int, Dict[str, int]]:
    return {int(k): v for k, v in truth.map_items("truth_by_pid")}


class KmallocFilter(Exercise):
    id = "kmalloc-filter"
    lesson = "kmalloc"
    title = "Only one process, only big allocations"
    level = 1
    #: the threshold is drawn afresh for each grading run from kmalloc's size classes (MIN_CLASSES), and the
    #: learner's program is compiled and run at two of them side by side: a number written in place of
    #: MIN_BYTES passes at one value at most. The workload allocates around both (writev_plan).
    MIN_BYTES = 192  # the value in use while a check runs (set by grade)
    CHECKS = {
        "compiles": "your C program compiles",
        "loads": "the verifier accepts it; it attaches to kmem:kmalloc",
        "fires": "it sends events while the workload allocates",
        "only-target": "every event comes from the process TARGET_PID",
        "threshold": "no event has bytes_alloc below MIN_BYTES (at each value the grader draws)",
        "complete": "every allocation of TARGET_PID with bytes_alloc >= MIN_BYTES is reported, once",
        "fields": "pid, bytes_req, bytes_alloc and comm hold the right values",
        "clean": "nothing is left in the kernel afterwards",
    }

    def grade(self, g: Grader) -> None:
        values = draw(MIN_CLASSES)
        g.facts["MIN_BYTES"] = values
        target = Paused(writev_script(values), "ebl-ex-alloc")
        g.stack.callback(target.stop)
        noise = Storms(noise_iterations=1000, target_iterations=0)
        g.stack.callback(noise.stop)
        rounds = []
        for i, mb in enumerate(values):
            flags = [f"-DTARGET_PID={target.pid}", f"-DMIN_BYTES={mb}"]
            if i == 0:
                p = g.build(g.sub.bpf, HOOK, flags, events_map="events")
                if p is None:
                    raise Stop
            else:
                assert g.sub.bpf is not None  # g.build() made a program of it in round 0
                p = g.rebuild(g.sub.bpf, HOOK, flags, events_map="events", check="fires",
                              why=f"compiled again with -DMIN_BYTES={mb} (a second value drawn in this run), your "
                                  "program no longer compiles or loads:",
                              hint="use MIN_BYTES only as a number in comparisons.")
                if p is None:
                    raise Stop
            truth = g.hidden("kmalloc_truth.bpf.c", HOOK, flags + [f"-DNOISE_PID={noise.noise}"])
            rounds.append((mb, p, truth))
        noise.go(wait=False)
        target.go()
        noise.go()
        tp = target.pid
        judged = []
        for mb, p, truth in rounds:
            ev = p.events()
            t = truth_counts(truth).get(tp)
            if t is None or t["ge_alloc"] == 0:
                raise Fail("the workload did not allocate as expected, so nothing could be checked.",
                           "grade again; tell your teacher if it persists.")
            judged.append((mb, ev, t))
        g.data["events"] = judged[0][1]
        if len(judged) > 1:
            g.data["events_at"] = {mb: ev for mb, ev, _ in judged}
        same = len({len(ev[ev["pid"] == tp]) if "pid" in ev else len(ev) for _, ev, _ in judged}) == 1 and \
            len({t["ge_alloc"] for _, _, t in judged}) > 1
        fixed = (f"your program reported the same allocations at MIN_BYTES={values[0]} and at MIN_BYTES={values[1]}: "
                 "compare with the name MIN_BYTES, not with a number (the grader draws its value afresh each run "
                 "and passes it with -DMIN_BYTES=...).")
        for i, (mb, ev, t) in enumerate(judged):
            self.MIN_BYTES = mb
            self._judge(g, ev, t, tp, fixed if same else "")
            if any(r.status == FAIL for r in g.results.values()):
                return
            if i + 1 < len(judged):  # judged again at the next value
                for c in ("fires", "only-target", "threshold", "complete", "fields"):
                    g.results.pop(c, None)

    def _judge(self, g: Grader, ev: Any, t: Dict[str, int], tp: int, fixed: str) -> None:
        need = {"pid", "bytes_req", "bytes_alloc", "comm"}
        @g.step("fires")
        def _():
            if len(ev) == 0:
                raise Fail(f"your program sent no event, while the workload (pid {tp}) made "
                           f"{t['ge_alloc']:,} allocations of at least {self.MIN_BYTES} bytes.",
                           "is your filter ever true? The process id is the upper half of "
                           "64-bit value bpf_get_current_pid_tgid() returns. And is "
                           "ringbuf_submit() called?")
            if not need <= set(ev.columns):
                raise Fail(f"your event struct lacks field(s) {', '.join(sorted(need - set(ev.columns)))}.",
                           "keep struct alloc_event as given.")
        @g.step("only-target", needs=["fires"])
        def _():
            others = ev[ev["pid"] != tp]
            if len(others):
                if (ev["pid"] == 0).all():
                    raise Fail("every event has pid 0.", "the event's pid is never filled in.")
                pids = sorted(set(others["pid"].tolist()))[:5]
                raise Fail(f"{len(others):,} of {len(ev):,} events came from other processes (pids {pids}...), "
                           f"not only from TARGET_PID={tp}.",
                           "return early unless the current process id equals TARGET_PID (the process id is "
                           "the upper half of bpf_get_current_pid_tgid(), the thread id the lower).")
        mine = ev[ev["pid"] == tp] if g.ok("fires") else ev
        @g.step("threshold", needs=["fires"])
        def _():
            if (mine["bytes_req"] > mine["bytes_alloc"]).any():
                raise Fail("some events have bytes_req > bytes_alloc, but an allocator never hands out less than "
                           "was asked for: bytes_req and bytes_alloc look swapped.",
                           "look at which tracepoint field goes into which event field.")
            small = mine[mine["bytes_alloc"] < self.MIN_BYTES]
            if len(small):
                raise Fail(f"{len(small):,} events have bytes_alloc below MIN_BYTES={self.MIN_BYTES} "
                           f"(e.g. {int(small['bytes_alloc'].iloc[0])}).",
                           fixed or "skip allocations with args->bytes_alloc < MIN_BYTES.")
        @g.step("complete", needs=["only-target", "threshold"])
        def _():
            n = len(mine)
            if n != t["ge_alloc"]:
                msg = (f"your program reported {n:,} allocations of pid {tp}; the workload made "
                       f"{t['ge_alloc']:,} with bytes_alloc >= MIN_BYTES={self.MIN_BYTES}.")
                if fixed:
                    raise Fail(msg, fixed)
                if n == t["gt_alloc"]:
                    raise Fail(msg, f"allocations of exactly MIN_BYTES={self.MIN_BYTES} bytes are missing: the "
                                    "exercise asks for 'at least' (>=), not 'more than' (>).")
                if n == t["ge_req"]:
                    raise Fail(msg, "you compared bytes_req (what was asked for); the exercise filters on "
                                    "bytes_alloc (what was handed out).")
                if n > t["ge_alloc"]:
                    raise Fail(msg, "some allocations were reported more than once: submit one event per call.")
                raise Fail(msg, "check the conditions of your filter: nothing else should be left out.")
        @g.step("fields", needs=["complete"])
        def _():
            a, r = int(mine["bytes_alloc"].sum()), int(mine["bytes_req"].sum())
            if a == t["ge_req_sum"] and r == t["ge_alloc_sum"] and a != r:
                raise Fail("bytes_req and bytes_alloc are swapped.",
                           "look at which tracepoint field goes into which event field.")
            if a != t["ge_alloc_sum"]:
                raise Fail(f"the bytes_alloc of your events add up to {a:,}; the kernel handed out {t['ge_alloc_sum']:,}.",
                           "bytes_alloc must be what the tracepoint says the allocator handed out.")
            if r != t["ge_req_sum"]:
                raise Fail(f"the bytes_req of your events add up to {r:,}; the callers asked for {t['ge_req_sum']:,}.",
                           "bytes_req must be what the tracepoint says the caller asked for.")
            comms = set(mine["comm"].tolist())
            if comms != {"ebl-ex-alloc"}:
                raise Fail(f"comm should be the process name 'ebl-ex-alloc', got {sorted(comms)[:3]}.",
                           "comm is the name of the process running the hook: a bpf_get_current_... helper fills a "
                           "char buffer with it.")


class KmallocPerPid(Exercise):
    id = "kmalloc-per-pid"
    lesson = "kmalloc"
    title = "Bytes per process, counted in the kernel"
    level = 2
    py_functions = ("top_allocators",)
    CHECKS = {
        "compiles": "your C program compiles",
        "loads": "the verifier accepts it; it attaches to kmem:kmalloc",
        "map": "bytes_by_pid is a hash map from a u32 pid to a u64 total",
        "fires": "the map fills while the workload allocates",
        "target-total": "the total of the workload process is exactly the bytes the kernel handed out",
        "every-process": "other processes are counted too, each on its own",
        "py-runs": "top_allocators() returns a DataFrame",
        "py-columns": "its columns are pid, bytes, share",
        "py-top": "it holds the n largest totals, largest first, numbered from 0",
        "py-share": "share is each process's fraction of all bytes",
        "clean": "nothing is left in the kernel afterwards",
    }
    N = 3

    def grade(self, g: Grader) -> None:
        st, flags = _run_storms(g, 0)
        third = Storms(target_iterations=0, noise_iterations=500)  # so that the top n always leaves someone out
        g.stack.callback(third.stop)
        p = g.build(g.sub.bpf, HOOK, [], events_map="")
        truth = g.hidden("kmalloc_truth.bpf.c", HOOK, flags)
        third.go(wait=False)
        st.go()
        third.go()
        t = truth_counts(truth)
        totals = {int(k): int(v) for k, v in truth.map_items("all_bytes")}
        if p is not None:
            self._grade_map(g, p, st, t)
        self._grade_python(g, totals)

    def _grade_map(self, g: Grader, p, st: Storms, t: Dict[int, Dict[str, int]]) -> None:
        @g.step("map", needs=["loads"])
        def _():
            shape = p.map_shape("bytes_by_pid")
            if shape is None:
                raise Fail("your program has no map named bytes_by_pid.", "keep BPF_HASH(bytes_by_pid, u32, u64, ...) as given.")
            if shape["type"] != BPF_MAP_TYPE_HASH or shape["key_size"] != 4 or shape["value_size"] != 8:
                raise Fail(f"bytes_by_pid has type {shape['type']}, {shape['key_size']}-byte keys and "
                           f"{shape['value_size']}-byte values.", "a hash map: BPF_HASH(bytes_by_pid, u32, u64, 10240).")
        items: Dict[int, int] = {}
        if g.ok("map"):
            items = {int(k): int(v) for k, v in p.map_items("bytes_by_pid")}
            g.data["bytes_by_pid"] = pd.Series(items, name="bytes", dtype="int64").rename_axis("pid").sort_values(ascending=False)
        @g.step("fires", needs=["map"])
        def _():
            if not items:
                raise Fail("bytes_by_pid stayed empty while the workload allocated.",
                           "in on_kmalloc, add each allocation's size to its process's entry (which BCC map "
                           "method adds an amount to an entry?).")
        @g.step("target-total", needs=["fires"])
        def _():
            want = t[st.target]
            got = items.get(st.target)
            if got is None:
                raise Fail(f"the map has no entry for the workload's pid {st.target} (it has {len(items)} entries).",
                           "key the map by process id (the upper half of bpf_get_current_pid_tgid()), not by "
                           "thread id or anything else.")
            if got != want["alloc_sum"]:
                msg = f"for pid {st.target} your map holds {got:,}; the kernel handed out {want['alloc_sum']:,} bytes."
                if got == want["req_sum"]:
                    raise Fail(msg, "you added bytes_req (what was asked); count bytes_alloc (what was handed out).")
                if got == want["calls"]:
                    raise Fail(msg, "you counted allocations (+1 each); the exercise adds up their sizes.")
                if got <= want["max_alloc"]:
                    raise Fail(msg, "the map holds a single allocation: update() replaces the value; add to it "
                                    "with the map method that adds an amount, or an atomic add on the looked-up value.")
                raise Fail(msg, "add args->bytes_alloc of every allocation to the process's entry.")
        @g.step("every-process", needs=["target-total"])
        def _():
            want = t[st.noise]["alloc_sum"]
            got = items.get(st.noise)
            if got != want:
                raise Fail(f"a second process (pid {st.noise}) allocated {want:,} bytes; your map holds "
                           f"{'nothing' if got is None else f'{got:,}'} for it.",
                           "count every process: do not filter on a pid in this exercise.")

    def _grade_python(self, g: Grader, totals: Dict[int, int]) -> None:
        n = max(1, min(self.N, len(totals) - 1))  # fewer than all, or a top-n mistake would not show
        @g.step("py-runs")
        def df():
            df = g.run_python("top_allocators", dict(totals), n, check="py-runs")
            g.data["top_allocators"] = df
            if not isinstance(df, pd.DataFrame):
                raise Fail(f"top_allocators() returned a {type(df).__name__}, not a DataFrame.",
                           "build one with pd.DataFrame(...) and return it.")
            return df
        @g.step("py-columns", needs=["py-runs"])
        def _():
            if list(df.columns) != ["pid", "bytes", "share"]:
                raise Fail(f"the columns are {list(map(str, df.columns))}.",
                           "name them exactly pid, bytes, share, in this order.")
        exp = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        @g.step("py-top", needs=["py-columns"])
        def _():
            got_bytes = [int(x) for x in df["bytes"].tolist()]
            want_bytes = [b for _, b in exp]
            if len(df) != len(exp):
                raise Fail(f"top_allocators(totals, n={n}) returned {len(df)} rows from {len(totals)} processes.",
                           "keep only the n largest: .head(n).")
            if got_bytes != want_bytes:
                if len(got_bytes) > 1 and got_bytes == sorted(got_bytes) and got_bytes != sorted(got_bytes, reverse=True):
                    raise Fail("the rows are in increasing order.", "sort largest first: sort_values('bytes', ascending=False).")
                raise Fail(f"the bytes column is {got_bytes}; the {n} largest totals are {want_bytes}.",
                           "sort by bytes, largest first, then take the first n rows.")
            if {int(x) for x in df["pid"]} != {pid for pid, _ in exp} or any(
                    totals.get(int(pid)) != int(b) for pid, b in zip(df["pid"], df["bytes"])):
                raise Fail("the pids do not go with their bytes.", "keep each pid on the row of its own total.")
            if list(df.index) != list(range(len(df))):
                raise Fail(f"the index is {list(df.index)}.", "number the rows from 0: .reset_index(drop=True).")
        @g.step("py-share", needs=["py-top"])
        def _():
            total = sum(totals.values())
            want = [b / total for _, b in exp]
            got = [float(x) for x in df["share"]]
            if any(abs(a - b) > 1e-9 for a, b in zip(got, want)):
                top = sum(b for _, b in exp)
                if all(abs(a - b / top) < 1e-9 for a, (_, b) in zip(got, exp)):
                    raise Fail("share is the fraction of the top n only.",
                               "divide by the sum of ALL totals, before taking the top n.")
                if all(abs(a - 100 * b) < 1e-6 for a, b in zip(got, want)):
                    raise Fail("share is in percent.", "share is a fraction between 0 and 1 (do not multiply by 100).")
                raise Fail(f"share is {got}; expected {want}.", "share = bytes / (sum of all bytes).")
