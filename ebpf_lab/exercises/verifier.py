"""A new kind of exercise: make it pass the verifier (lesson 02).

The learner is handed a program that compiles but that the kernel's verifier
rejects (a map value pointer used without a NULL check). The fix must make the
verifier accept it AND keep the program's job: the grader runs it on lesson 02's
``kmalloc_storm`` workload next to its truth program and compares the totals.
"""
from __future__ import annotations

from typing import Dict

from ._base import Exercise, Fail, Grader, Stop
from .kmalloc import HOOK, Storms, truth_counts


class FixTheVerifier(Exercise):
    id = "fix-the-verifier"
    lesson = "kmalloc"
    title = "Make it pass the verifier (and keep it working)"
    level = 1
    # the program handed out compiles: "loads" is what the learner has to earn here
    GATES = ("compiles",)
    KEEPS_WORKING = ("only-target", "clean")
    POINTS = {"compiles": 0, "loads": 3, "fires": 1, "only-target": 1, "total": 2, "clean": 1}
    CHECKS = {
        "compiles": "your C program compiles",
        "loads": "the verifier accepts it; it attaches to kmem:kmalloc",
        "fires": "bytes_by_pid fills while the workload allocates",
        "only-target": "only TARGET_PID is counted, as in the program handed out",
        "total": "TARGET_PID's total is exactly the bytes the kernel handed out to it",
        "clean": "nothing is left in the kernel afterwards",
    }

    def grade(self, g: Grader) -> None:
        st = Storms()
        g.stack.callback(st.stop)
        flags = [f"-DTARGET_PID={st.target}"]
        p = g.build(g.sub.bpf, HOOK, flags, events_map="")
        if p is None:
            raise Stop
        truth = g.hidden("kmalloc_truth.bpf.c", HOOK, flags + [f"-DNOISE_PID={st.noise}", "-DMIN_BYTES=0"])
        st.go()
        t = truth_counts(truth)[st.target]
        items: Dict[int, int] = {}

        @g.step("fires", needs=["loads"])
        def _():
            if p.map_shape("bytes_by_pid") is None:
                raise Fail("your program has no map named bytes_by_pid.", "keep the map of the program handed out.")
            items.update({int(k): int(v) for k, v in p.map_items("bytes_by_pid")})
            if not any(items.values()):  # (lookup_or_try_init makes zero entries even when nothing is added)
                raise Fail(f"bytes_by_pid stayed empty (or all zeros) while the workload (pid {st.target}) made {t['calls']:,} "
                           "allocations.",
                           "the verifier is happy, but the program no longer does its job: the fix adds a "
                           "check, it does not remove the work. Only the path where the pointer is NULL returns early.")

        @g.step("only-target", needs=["fires"])
        def _():
            others = sorted(k for k in items if k != st.target)
            if others:
                raise Fail(f"bytes_by_pid also counts other processes ({others[:4]}...).",
                           "keep the program's filter on TARGET_PID: fix only what the verifier refused.")

        @g.step("total", needs=["fires"])
        def _():
            got, want = items.get(st.target), t["alloc_sum"]
            if got != want:
                msg = (f"for pid {st.target} the map holds {got if got is None else f'{got:,}'}; "
                       f"the kernel handed out {want:,} bytes.")
                if got == t["calls"]:
                    raise Fail(msg, "you counted allocations (+1 each); the program adds up their sizes (bytes_alloc).")
                if got == t["req_sum"]:
                    raise Fail(msg, "that is bytes_req (what was asked); the program adds bytes_alloc.")
                if got is not None and got <= t["max_alloc"]:
                    raise Fail(msg, "the map holds a single allocation: the value is replaced instead of added to.")
                raise Fail(msg, "add each allocation's bytes_alloc to the entry the lookup returned.")
