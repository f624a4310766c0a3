"""A new kind of exercise: choose the hook (lesson 01's search tools).

The question names an event of a process's life; the learner answers with the
tracepoint that fires exactly once for it, found with ``search_traceable()`` /
``list_tracepoints()`` — the answer is a name, ``HOOK = "category:event"``, not
code. The grader attaches its own counting program
(``programs/hook_counter.bpf.c``) to the named tracepoint while a workload makes
a number of such calls drawn afresh each run, among calls of look-alike system
calls, and checks that the hook fired exactly once per call.
"""
from __future__ import annotations

import dataclasses
import os
import random
import re
import shutil
import tempfile
from typing import List, Optional

from .. import _kernel
from ..engine import Hook
from ..errors import LabError
from ._base import FAIL, Exercise, Fail, Grader, Report, Stop, Submission
from ._workload import Paused

_NAME = re.compile(r"^([a-z0-9_]+):([A-Za-z0-9_]+)$")


class ChooseHook(Exercise):
    id = "choose-the-hook"
    lesson = "hello-kill"
    title = "Choose the hook: which tracepoint fires once per chdir()?"
    level = 1
    bpf_tag = "answer-hook"
    bpf_var = "HOOK"
    GATES = ("answered",)
    KEEPS_WORKING = ("clean",)
    POINTS = {"answered": 0, "exists": 1, "fires": 2, "once-per-call": 2, "clean": 1}
    CHECKS = {
        "answered": "HOOK names a tracepoint as \"category:event\"",
        "exists": "this kernel has that tracepoint",
        "fires": "it fires while the workload changes directory",
        "once-per-call": "it fires exactly once per chdir() call, and for no other call",
        "clean": "nothing is left in the kernel afterwards",
    }

    def run(self, sub: Submission, *, force_hook: Optional[str] = None) -> Report:
        # the released cell still raises NotImplementedError: no HOOK yet is an empty answer, with the search hint
        if sub.bpf is None and sub.problems and all(f"assign {self.bpf_var}" in p for p in sub.problems):
            sub = dataclasses.replace(sub, bpf="", problems=[])
        return super().run(sub, force_hook=force_hook)

    def grade(self, g: Grader) -> None:
        answer = (g.sub.bpf or "").strip()

        @g.step("answered")
        def _():
            if not answer:
                raise Fail("HOOK is empty.", "search with search_traceable('chdir') (or list_tracepoints('chdir')) "
                           "and write the tracepoint's name, as \"category:event\".")
            if answer.startswith(("tracepoint:", "t:")):
                raise Fail(f"HOOK is {answer!r}: that is bpftrace's way to name it.",
                           "leave out the 'tracepoint:' prefix: \"category:event\".")
            if not _NAME.match(answer):
                hint = ("that looks like a kernel function (a kprobe); this question asks for a tracepoint, "
                        "which this kernel has even without kprobes." if ":" not in answer else
                        "a tracepoint is named \"category:event\", e.g. \"kmem:kmalloc\".")
                raise Fail(f"HOOK is {answer!r}, which is not a tracepoint's name.", hint)

        if not g.ok("answered"):
            raise Stop
        m = _NAME.match(answer)
        assert m is not None  # the "answered" step passed
        cat, ev = m.groups()

        @g.step("exists", needs=["answered"])
        def _():
            t = _kernel.tracefs()
            if t is None or not os.path.isdir(os.path.join(t, "events", cat, ev)):
                near = [x for x in _events(t, cat) if ev[:8] in x][:3] if t else []
                raise Fail(f"this kernel has no tracepoint {answer}.",
                           "check the spelling against what the search returns"
                           + (f" (in category {cat}: {', '.join(near)} ...)" if near else "") + ".")

        if not g.ok("exists"):
            raise Stop
        rng = random.SystemRandom()
        n_chdir = rng.randrange(5, 40)
        n_other = rng.choice([n for n in range(5, 40) if n != n_chdir])  # a look-alike's count is told apart
        d = tempfile.mkdtemp(prefix=f"ebl-ex-{os.getpid()}-hook-")
        g.stack.callback(shutil.rmtree, d, True)
        # chdir() n_chdir times; around them look-alikes: fchdir(), and stat()s of the same folder
        script = ("import os\n"
                  f"d = {d!r}\n"
                  "fd = os.open(d, os.O_RDONLY)\n"
                  f"for i in range({max(n_chdir, n_other)}):\n"
                  f"    if i < {n_chdir}:\n"
                  "        os.chdir(d)\n"
                  f"    if i < {n_other}:\n"
                  "        os.fchdir(fd)\n"
                  "        os.stat(d)\n")
        w = Paused(script, "ebl-ex-chdir")
        g.stack.callback(w.stop)
        p = g.program(_counter(), [Hook("tracepoint", answer, "on_hook")], [f"-DTARGET_PID={w.pid}"],
                      label="grader's hook counter")
        try:
            p.compile()
            p.load()
            p.attach()
        except LabError as e:
            g.record("fires", FAIL, f"the grader could not attach a program to {answer}: {e}",
                     "is it a tracepoint BPF programs may attach to? Pick one from the syscalls category.")
            raise Stop from e
        g.hooks = [h.name for h in p.hooks]
        w.go()
        fired = int(dict(p.map_items("fired")).get(0, 0))
        g.data["fired"] = {"hook": answer, "fired": fired, "chdir_calls": n_chdir, "other_calls": 2 * n_other}

        @g.step("fires", needs=["exists"])
        def _():
            if fired == 0:
                raise Fail(f"{answer} never fired while the workload called chdir() {n_chdir} times.",
                           "it is a tracepoint of another event: search for the system call by its name.")

        @g.step("once-per-call", needs=["fires"])
        def _():
            if fired != n_chdir:
                if fired == n_other:
                    hint = "it fires for a look-alike call (the workload made that many fchdir() calls): look again."
                elif fired > n_chdir:
                    hint = ("it fires for more than chdir(): a tracepoint shared by every system call (or by a "
                            "family of them) counts the others too. Find the one of this call alone.")
                else:
                    hint = "it fires for only some of the calls: find the tracepoint of the call itself."
                raise Fail(f"{answer} fired {fired} times while the workload called chdir() {n_chdir} times "
                           f"(and made {2 * n_other} other calls).", hint)


def _counter() -> str:
    from importlib import resources

    return (resources.files("ebpf_lab") / "exercises" / "programs" / "hook_counter.bpf.c").read_text()


def _events(t: str, cat: str) -> List[str]:
    try:
        return sorted(os.listdir(os.path.join(t, "events", cat)))
    except OSError:
        return []
