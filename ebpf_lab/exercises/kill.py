"""Exercises of lesson 01 (who sends kill?).

The learner writes ``on_kill(target_pid, sig)``; the hook functions around it are
given: a kprobe on the kill syscall's kernel function where the kernel has
kprobes (the guest-kernel tier), the tracepoint ``syscalls:sys_enter_kill``
where it has not. The workload: two idle ``sleep``
processes, and a sender named ``ebl-ex-killer`` that sends them (and a pid
that cannot exist) a known plan of harmless signals.
"""
from __future__ import annotations

import collections
import signal
from typing import Dict, List, Tuple

import pandas as pd

from ..engine import Hook
from ._base import Exercise, Fail, Grader, Stop
from ._workload import Paused, Sleepers

NO_SUCH_PID = 99999999  # above PID_MAX_LIMIT: kill() answers ESRCH
BPF_MAP_TYPE_HASH = 1


class KillWorkload:
    def __init__(self) -> None:
        self.victims = Sleepers(2)
        a, b = self.victims.pids
        self.a, self.b = a, b
        self.plan: List[Tuple[int, int, int]] = [
            (a, 0, 5), (a, int(signal.SIGCONT), 3), (a, int(signal.SIGWINCH), 2),
            (b, 0, 4), (b, int(signal.SIGWINCH), 6), (NO_SUCH_PID, 0, 1),
        ]
        script = ("import os\n"
                  f"for target, sig, n in {self.plan!r}:\n"
                  "    for _ in range(n):\n"
                  "        try:\n"
                  "            os.kill(target, sig)\n"
                  "        except OSError:\n"
                  "            pass\n")
        self.sender = Paused(script, "ebl-ex-killer")

    def go(self) -> None:
        self.sender.go()

    def stop(self) -> None:
        self.sender.stop()
        self.victims.stop()

    def counts(self) -> Dict[Tuple[int, int], int]:
        return {(t, s): n for t, s, n in self.plan}


class _KillExercise(Exercise):
    lesson = "hello-kill"

    def hook_variants(self) -> List[str]:
        return ["kprobe", "tracepoint"]

    def hooks(self, g: Grader) -> Tuple[List[Hook], List[str]]:
        if g.hook_path == "kprobe":
            from ..bpf import syscall_fnname

            return [Hook("kprobe", syscall_fnname("kill"), "on_kill_entry")], ["-DEBL_KPROBE=1"]
        return [Hook("tracepoint", "syscalls:sys_enter_kill", "on_kill_entry")], []

    def start(self, g: Grader) -> KillWorkload:
        w = KillWorkload()
        g.stack.callback(w.stop)
        return w


class KillToPid(_KillExercise):
    id = "kill-to-pid"
    title = "Only the signals sent to one process"
    level = 1
    CHECKS = {
        "compiles": "your C program compiles",
        "loads": "the verifier accepts it; it attaches to the kill hook",
        "fires": "it sends events while the workload sends signals",
        "only-target": "every event is a kill() aimed at TARGET_PID",
        "complete": "every kill() aimed at TARGET_PID is reported, once",
        "fields": "sender_pid, target_pid, sig and comm hold the right values",
        "clean": "nothing is left in the kernel afterwards",
    }

    def grade(self, g: Grader) -> None:
        w = self.start(g)
        hooks, flags = self.hooks(g)
        p = g.build(g.sub.bpf, hooks, flags + [f"-DTARGET_PID={w.a}"], events_map="events")
        if p is None:
            raise Stop
        w.go()
        ev = p.events()
        g.data["events"] = ev
        want = sum(n for t, _, n in w.plan if t == w.a)
        need = {"sender_pid", "target_pid", "sig", "comm"}

        @g.step("fires")
        def _():
            if len(ev) == 0:
                raise Fail(f"your program sent no event, while the workload called kill() {want} times on "
                           f"TARGET_PID={w.a}.",
                           "compare the kill()'s target (the target_pid argument) with TARGET_PID — not the "
                           "sender's pid — and call ringbuf_submit().")
            if not need <= set(ev.columns):
                raise Fail(f"your event struct lacks field(s) {', '.join(sorted(need - set(ev.columns)))}.",
                           "keep struct kill_event as given.")

        @g.step("only-target", needs=["fires"])
        def _():
            bad = ev[ev["target_pid"] != w.a]
            if len(bad):
                if (ev["target_pid"] == 0).all():
                    raise Fail("target_pid is 0 in every event.",
                               "the event's target_pid is never filled in: the hook's argument holds it.")
                raise Fail(f"{len(bad)} of {len(ev)} events are kill()s aimed at other pids "
                           f"({sorted(set(bad['target_pid'].tolist()))[:4]}), not at TARGET_PID={w.a}.",
                           "return early unless target_pid == TARGET_PID.")

        mine = ev[ev["target_pid"] == w.a] if g.ok("fires") else ev

        @g.step("complete", needs=["only-target"])
        def _():
            from_sender = mine[mine["sender_pid"] == w.sender.pid] if "sender_pid" in mine else mine
            n = len(from_sender) if len(from_sender) else len(mine)
            if n != want:
                raise Fail(f"your program reported {n} kill()s aimed at {w.a}; the workload made {want}.",
                           "report every call, once: filter on the target only, not on the signal.")

        @g.step("fields", needs=["complete"])
        def _():
            senders = set(mine["sender_pid"].tolist())
            if senders != {w.sender.pid}:
                hint = ("sender_pid should be the caller's process id, not the target: the process that runs "
                        "the hook is the sender.") if senders == {w.a} else (
                    "the sender is the process running the hook: a helper returns its ids, the process id in "
                    "one half of the 64-bit result.")
                raise Fail(f"sender_pid is {sorted(senders)[:3]}; the sender's pid was {w.sender.pid}.", hint)
            got = collections.Counter(mine["sig"].tolist())
            exp = collections.Counter({s: n for t, s, n in w.plan if t == w.a})
            if got != exp:
                raise Fail(f"the signals reported are {dict(got)}; the workload sent {dict(exp)}.",
                           "the event's sig must be the signal each call sent (the hook's argument), not a constant.")
            comms = set(mine["comm"].tolist())
            if comms != {"ebl-ex-killer"}:
                raise Fail(f"comm should be the sender's name 'ebl-ex-killer', got {sorted(comms)[:3]}.",
                           "comm is the name of the process running the hook: a bpf_get_current_... helper fills a "
                           "char buffer with it.")


class KillSignalCounts(_KillExercise):
    id = "kill-signal-counts"
    title = "A table of who signals whom, counted in the kernel"
    level = 2
    py_functions = ("signal_table",)
    CHECKS = {
        "compiles": "your C program compiles",
        "loads": "the verifier accepts it; it attaches to the kill hook",
        "map": "counts is a hash map keyed by struct sig_key (target, sig) with u64 values",
        "fires": "the map fills while the workload sends signals",
        "counts": "each (target, signal) pair of the workload has exactly its number of calls",
        "py-runs": "signal_table() returns a DataFrame",
        "py-shape": "one row per target pid (sorted), one column per signal name (sorted)",
        "py-values": "each cell is the number of calls, 0 where there were none",
        "clean": "nothing is left in the kernel afterwards",
    }

    def grade(self, g: Grader) -> None:
        w = self.start(g)
        hooks, flags = self.hooks(g)
        p = g.build(g.sub.bpf, hooks, flags, events_map="")
        w.go()
        if p is not None:
            self._grade_map(g, p, w)
        self._grade_python(g, w)

    def _grade_map(self, g: Grader, p, w: KillWorkload) -> None:
        @g.step("map", needs=["loads"])
        def _():
            shape = p.map_shape("counts")
            if shape is None:
                raise Fail("your program has no map named counts.", "keep BPF_HASH(counts, struct sig_key, u64, ...) as given.")
            if shape["type"] != BPF_MAP_TYPE_HASH or shape["key_size"] != 8 or shape["value_size"] != 8:
                raise Fail(f"counts has type {shape['type']}, {shape['key_size']}-byte keys, {shape['value_size']}-byte values.",
                           "keep BPF_HASH(counts, struct sig_key, u64, 1024) as given.")

        items: Dict[Tuple[int, int], int] = {}
        if g.ok("map"):
            for k, v in p.map_items("counts"):
                items[(int(k["target"]), int(k["sig"]))] = int(v)
            g.data["counts"] = pd.DataFrame([(t, s_, n) for (t, s_), n in items.items()], columns=["target", "sig", "calls"])

        @g.step("fires", needs=["map"])
        def _():
            if not items:
                raise Fail(f"counts stayed empty while the workload called kill() {sum(n for _, _, n in w.plan)} times.",
                           "on every call: fill a struct sig_key from the hook's arguments, then add one to that "
                           "key's entry (the lesson shows the BCC map method that does it in one call).")

        @g.step("counts", needs=["fires"])
        def _():
            exp = w.counts()
            wrong = {k: items.get(k) for k, n in exp.items() if items.get(k) != n}
            if wrong:
                k = next(iter(wrong))
                got = wrong[k]
                msg = (f"for target {k[0]} and signal {k[1]} your map holds "
                       f"{'nothing' if got is None else got}; the workload called kill() {exp[k]} times.")
                swapped = {(s, t): n for (t, s), n in exp.items()}
                if all(items.get(kk) == n for kk, n in swapped.items()):
                    raise Fail(msg, "target and sig are swapped in the key.")
                if all(items.get(kk) == 1 for kk in exp):
                    raise Fail(msg, "every pair holds 1: update() replaces the value; use the map method that "
                                    "adds to an entry instead.")
                per_target = collections.Counter()
                for (t, _), n in exp.items():
                    per_target[t] += n
                if all(items.get((t, 0)) == n for t, n in per_target.items()):
                    raise Fail(msg, "all signals of a target land in one entry: the signal is missing from "
                                    "your key: set both of its fields.")
                raise Fail(msg, "one map entry per (target, sig) pair, incremented on every call; "
                                "initialise the key with = {} first.")

    def _grade_python(self, g: Grader, w: KillWorkload) -> None:
        rows = [(t, s, n) for t, s, n in w.plan]
        names = {s: (signal.Signals(s).name if s else "check") for _, s, _ in rows}
        targets = sorted({t for t, _, _ in rows})
        cols = sorted(set(names.values()))
        exp = pd.DataFrame(0, index=targets, columns=cols)
        for t, s, n in rows:
            exp.loc[t, names[s]] += n

        @g.step("py-runs")
        def df():
            df = g.run_python("signal_table", rows, check="py-runs")
            g.data["signal_table"] = df
            if not isinstance(df, pd.DataFrame):
                raise Fail(f"signal_table() returned a {type(df).__name__}, not a DataFrame.",
                           "return a DataFrame, e.g. from pivot_table().")
            return df

        @g.step("py-shape", needs=["py-runs"])
        def _():
            idx = [int(x) for x in df.index]
            if sorted(idx) != targets:
                raise Fail(f"the rows (index) are {idx}; expected the target pids {targets}.",
                           "index by target: pivot_table(index='target', columns='signal', ...).")
            if [str(c) for c in df.columns] != cols:
                if sorted(str(c) for c in df.columns) == cols:
                    raise Fail(f"the columns are {list(map(str, df.columns))}.",
                               "sort the columns by name: df[sorted(df.columns)].")
                raise Fail(f"the columns are {list(map(str, df.columns))}; expected {cols}.",
                           "name each signal with signal.Signals(sig).name, and 0 as 'check'.")
            if idx != targets:
                raise Fail(f"the rows are in the order {idx}.", "sort the rows: .sort_index().")

        @g.step("py-values", needs=["py-shape"])
        def _():
            got = df.reindex(index=targets, columns=cols)
            if got.isna().any().any():
                raise Fail("some cells are empty (NaN).", "fill missing pairs with 0: fill_value=0 or .fillna(0).")
            if not (got.astype("int64").values == exp.values).all():
                raise Fail(f"the table is\n{got.to_string()}\nexpected\n{exp.to_string()}",
                           "each cell: the sum of calls for that target and signal (aggfunc='sum').")
