"""Exercises of lesson 03 (arguments and return values, joined per thread).

The learner writes ``on_enter(filename)`` and ``on_return(ret)``; the hook
functions are given: kprobe + kretprobe on the openat syscall's kernel
function where the kernel has kprobes (the guest-kernel tier), the tracepoints
``syscalls:sys_enter_openat`` / ``sys_exit_openat`` where it has not (this
lab's host). The workload, ``ebl-ex-opener``, opens known paths in a fresh
folder: some fail (ENOENT, EISDIR), the last ones succeed. The grader's truth
program (``programs/openat_truth.bpf.c``) watches the same calls.
"""
from __future__ import annotations

import collections
import errno
import os
import shutil
import tempfile
from typing import Dict, List, Tuple

import pandas as pd

from ..engine import Hook
from ._base import Exercise, Fail, Grader, Stop
from ._workload import Paused

BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY = 1, 2
TRUTH_HOOKS = [Hook("tracepoint", "syscalls:sys_enter_openat", "on_enter"),
               Hook("tracepoint", "syscalls:sys_exit_openat", "on_exit")]


class OpenWorkload:
    """Opens, in order: missing.txt x4 (ENOENT), sub/ for writing x3 (EISDIR), 3 new files, present.txt x6 (an fd)."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix=f"ebl-ex-{os.getpid()}-open-")
        os.chmod(self.dir, 0o755)
        self.present = os.path.join(self.dir, "present.txt")
        self.missing = os.path.join(self.dir, "missing.txt")
        self.sub = os.path.join(self.dir, "sub")
        open(self.present, "w").close()
        os.mkdir(self.sub)
        create = os.O_WRONLY | os.O_CREAT | os.O_EXCL  # slower calls (a new inode each): latencies spread out
        self.plan = [(self.missing, os.O_RDONLY, 4, errno.ENOENT), (self.sub, os.O_WRONLY, 3, errno.EISDIR)]
        self.plan += [(os.path.join(self.dir, f"new-{i}.txt"), create, 1, 0) for i in range(3)]
        self.plan += [(self.present, os.O_RDONLY, 6, 0)]
        script = ("import os\n"
                  f"for path, flags, n, _ in {self.plan!r}:\n"
                  "    for _ in range(n):\n"
                  "        try:\n"
                  "            os.close(os.open(path, flags))\n"
                  "        except OSError:\n"
                  "            pass\n")
        self.proc = Paused(script, "ebl-ex-opener")
        self.pid = self.proc.pid

    def go(self) -> None:
        self.proc.go()

    def stop(self) -> None:
        self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class _OpenatExercise(Exercise):
    lesson = "args-return"

    def hook_variants(self) -> List[str]:
        return ["kprobe", "tracepoint"]

    def hooks(self, g: Grader) -> Tuple[List[Hook], List[str]]:
        if g.hook_path == "kprobe":
            from ..bpf import syscall_fnname

            fn = syscall_fnname("openat")
            return [Hook("kprobe", fn, "on_openat_entry"), Hook("kretprobe", fn, "on_openat_return")], ["-DEBL_KPROBE=1"]
        return [Hook("tracepoint", "syscalls:sys_enter_openat", "on_openat_entry"),
                Hook("tracepoint", "syscalls:sys_exit_openat", "on_openat_return")], []

    def start(self, g: Grader, events_map: str) -> tuple:
        w = OpenWorkload()
        g.stack.callback(w.stop)
        hooks, flags = self.hooks(g)
        flags.append(f"-DTARGET_PID={w.pid}")
        p = g.build(g.sub.bpf, hooks, flags, events_map=events_map)
        truth = g.hidden("openat_truth.bpf.c", TRUTH_HOOKS, [f"-DTARGET_PID={w.pid}"])
        w.go()
        return w, p, truth

    def leak_check(self, g: Grader, p, w: OpenWorkload, name: str, needs: List[str]) -> None:
        @g.step("no-leak", needs=needs)
        def _():
            shape = p.map_shape(name)
            if shape is None:
                raise Fail(f"your program has no map named {name}.", f"keep the map {name} as given.")
            left = len(p.map_items(name))
            if left:
                raise Fail(f"{name} still holds {left} entr{'y' if left == 1 else 'ies'} after the workload ended: "
                           "an entry is left behind for calls that already returned.",
                           f"delete the thread's entry in on_return() on every path: {name}.delete(&tid); "
                           "otherwise the map fills up and new calls are lost.")


class OpenatFailures(_OpenatExercise):
    id = "openat-failures"
    title = "Which opens fail, and why: an argument joined with its result"
    level = 2
    CHECKS = {
        "compiles": "your C program compiles",
        "loads": "the verifier accepts it; it attaches to the openat entry and return hooks",
        "fires": "it sends events while the workload opens files",
        "only-failures": "every event is a failed call (err > 0)",
        "complete": "every failed openat() of TARGET_PID is reported, once",
        "errno": "err is the errno the kernel returned (ENOENT, EISDIR)",
        "filenames": "each event carries the path given at entry",
        "no-leak": "no stale entry is left in inflight",
        "clean": "nothing is left in the kernel afterwards",
    }

    def grade(self, g: Grader) -> None:
        w, p, truth = self.start(g, "events")
        if p is None:
            raise Stop
        ev = p.events()
        g.data["events"] = ev
        res = {int(k): int(v) for k, v in truth.map_items("results")}
        fails = {-k: n for k, n in res.items() if k < 0}
        need = {"err", "filename"}

        @g.step("fires")
        def _():
            if len(ev) == 0:
                raise Fail(f"your program sent no event, while the workload's openat() failed {sum(fails.values())} times.",
                           "in on_return(): look up what on_enter() stored for this thread, and when ret < 0 "
                           "reserve, fill and submit an event.")
            if not need <= set(ev.columns):
                raise Fail(f"your event struct lacks field(s) {', '.join(sorted(need - set(ev.columns)))}.",
                           "keep struct failure as given.")

        @g.step("only-failures", needs=["fires"])
        def _():
            bad = ev[ev["err"] <= 0]
            if len(bad):
                if (ev["err"] < 0).all():
                    raise Fail("every err is negative.", "ret is -errno: store err = -ret.")
                raise Fail(f"{len(bad)} of {len(ev)} events have err <= 0: successful calls were reported too.",
                           "report only when ret < 0.")

        @g.step("complete", needs=["only-failures"])
        def _():
            want = sum(fails.values())
            if len(ev) != want:
                hint = ("other processes' failures are in there too: in on_enter(), keep only TARGET_PID."
                        if len(ev) > want else "every failed call needs its entry stored in on_enter() and found in on_return().")
                raise Fail(f"your program reported {len(ev)} failures; the workload's openat() failed {want} times.", hint)

        @g.step("errno", needs=["complete"])
        def _():
            got = collections.Counter(int(x) for x in ev["err"])
            exp = collections.Counter(fails)
            if got != exp:
                name = lambda c: {errno.errorcode.get(k, k): v for k, v in c.items()}  # noqa: E731
                raise Fail(f"your errors are {name(got)}; the kernel returned {name(exp)}.", "err = -ret, for each call.")

        @g.step("filenames", needs=["errno"])
        def _():
            by_err = {errno.ENOENT: w.missing, errno.EISDIR: w.sub}
            wrong = ev[[by_err.get(int(e)) != f for e, f in zip(ev["err"], ev["filename"])]]
            if len(wrong):
                f = wrong["filename"].iloc[0]
                raise Fail(f"{len(wrong)} event(s) carry the wrong path, e.g. {f!r} for "
                           f"{errno.errorcode.get(int(wrong['err'].iloc[0]))}.",
                           "empty means the path was never copied: read it at entry with bpf_probe_read_user_str(), "
                           "keep it in inflight, and copy it into the event at return." if not f else
                           "copy the path stored at entry for this thread into the event.")

        self.leak_check(g, p, w, "inflight", ["loads"])


class OpenatLatency(_OpenatExercise):
    id = "openat-latency"
    title = "A latency histogram from an entry and a return hook"
    level = 3
    py_functions = ("latency_table",)
    CHECKS = {
        "compiles": "your C program compiles",
        "loads": "the verifier accepts it; it attaches to the openat entry and return hooks",
        "fires": "the histogram fills while the workload opens files",
        "count": "it counts each openat() of TARGET_PID exactly once",
        "plausible": "the buckets are log2 of durations in nanoseconds",
        "no-leak": "no stale entry is left in start",
        "py-runs": "latency_table() returns a DataFrame",
        "py-columns": "its columns are low_ns, high_ns, calls",
        "py-rows": "one row per non-empty bucket, in order, with the right bounds and counts",
        "clean": "nothing is left in the kernel afterwards",
    }

    def grade(self, g: Grader) -> None:
        w, p, truth = self.start(g, "")
        res = {int(k): int(v) for k, v in truth.map_items("results")}
        calls = sum(res.values())
        truth_hist = {int(k): int(v) for k, v in truth.map_items("latency")}
        if p is not None:
            self._grade_c(g, p, w, calls)
        self._grade_python(g, truth_hist)

    def _grade_c(self, g: Grader, p, w: OpenWorkload, calls: int) -> None:
        hist: Dict[int, int] = {}

        @g.step("fires", needs=["loads"])
        def _():
            shape = p.map_shape("dist")
            if shape is None or shape["type"] != BPF_MAP_TYPE_ARRAY or shape["max_entries"] != 64:
                raise Fail("your program has no histogram named dist (64 buckets).",
                           "keep BPF_HISTOGRAM(dist, int, 64) as given.")
            hist.update({int(k): int(v) for k, v in p.map_items("dist") if int(v)})
            g.data["dist"] = pd.Series(hist, name="calls", dtype="int64").rename_axis("bucket").sort_index()
            if not hist:
                raise Fail(f"dist stayed empty while the workload called openat() {calls} times.",
                           "in on_return(): find the entry time on_enter() stored for this thread, work out how "
                           "long the call took, and add one to the histogram bucket of that duration's log2.")

        @g.step("count", needs=["fires"])
        def _():
            n = sum(hist.values())
            if n != calls:
                hint = ("other processes' calls are counted too: keep only TARGET_PID in on_enter()." if n > calls
                        else "each call must be stored at entry and found again at return (keyed by thread id).")
                raise Fail(f"your histogram holds {n} calls; the workload made {calls}.", hint)

        @g.step("plausible", needs=["count"])
        def _():
            top, low = max(hist), min(hist)
            if top >= 36:
                raise Fail(f"bucket {top} means about 2^{top - 1} ns — hours: that is a timestamp, not a duration.",
                           "take the log2 of (bpf_ktime_get_ns() - start time).")
            if low <= 3:
                raise Fail(f"bucket {low} means {2 ** max(low - 1, 0)} ns or less: an openat() takes longer.",
                           "keep nanoseconds (do not divide), and subtract the entry time from the return time.")

        self.leak_check(g, p, w, "start", ["loads"])

    def _grade_python(self, g: Grader, truth_hist: Dict[int, int]) -> None:
        full = {k: truth_hist.get(k, 0) for k in range(64)}
        # bpf_log2l(d) = floor(log2 d) + 1, and 1 for d = 0: bucket k holds 2^(k-1) .. 2^k - 1,
        # bucket 1 holds 0 and 1, bucket 0 stays empty (bcc's print_log2_hist prints "0 -> 1").
        exp = [(2 ** (k - 1) if k > 1 else 0, 2 ** k - 1, n) for k, n in sorted(full.items()) if n]

        @g.step("py-runs")
        def df():
            df = g.run_python("latency_table", dict(full), check="py-runs")
            g.data["latency_table"] = df
            if not isinstance(df, pd.DataFrame):
                raise Fail(f"latency_table() returned a {type(df).__name__}, not a DataFrame.", "return a pandas DataFrame.")
            return df

        @g.step("py-columns", needs=["py-runs"])
        def _():
            if list(map(str, df.columns)) != ["low_ns", "high_ns", "calls"]:
                raise Fail(f"the columns are {list(map(str, df.columns))}.", "name them exactly low_ns, high_ns, calls.")

        @g.step("py-rows", needs=["py-columns"])
        def _():
            got = [tuple(int(x) for x in row) for row in df[["low_ns", "high_ns", "calls"]].itertuples(index=False)]
            if len(got) != len(exp):
                zero = sum(1 for r in got if r[2] == 0)
                raise Fail(f"{len(got)} rows for {len(exp)} non-empty buckets.",
                           "drop the empty buckets (calls == 0)." if zero else "one row per bucket with calls > 0.")
            if got == sorted(exp, reverse=True) and got != exp:
                raise Fail("the rows run from the slowest bucket down.", "order by low_ns, smallest first.")
            if [r[2] for r in got] != [r[2] for r in exp]:
                raise Fail(f"the calls column is {[r[2] for r in got]}; expected {[r[2] for r in exp]}.",
                           "calls is the count of bucket k.")
            if got != exp:
                g_, e_ = next((a, b) for a, b in zip(got, exp) if a != b)
                raise Fail(f"a row is {g_}; expected {e_}.",
                           "bucket k (from bpf_log2l) holds durations from 2**(k-1) to 2**k - 1 ns "
                           "(bucket 1: 0 and 1 ns).")
            if list(df.index) != list(range(len(df))):
                raise Fail(f"the index is {list(df.index)}.", "number the rows from 0: .reset_index(drop=True).")
