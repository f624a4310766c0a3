"""A new kind of exercise: write the loader (lesson 01).

The C is given (``programs/loader_kill.bpf.c``: one ring-buffer event per kill()
aimed at TARGET_PID); the learner writes the Python around it::

    def load_and_poll(program: str, target_pid: int, seconds: float) -> list:
        # compile with -DTARGET_PID, attach on_kill to syscalls:sys_enter_kill,
        # poll the ring buffer `events` for `seconds`, clean up, return the events

The grader runs that function in a child interpreter (as root: it loads BPF; in
its own session, killed with its whole process group when its time is up), and
sends kill()s from a workload once the child has attached. Graded on the events
delivered and on what the child still holds after the function returned: a BPF
program, map or perf-event file descriptor left open is something left attached.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

from .. import _kernel
from ._base import Exercise, Fail, Grader
from ._workload import Paused, Sleepers

SECONDS = 2.0
# How long the learner's program may take to compile and attach (bcc runs clang in their process):
# seconds on a laptop, far more under software emulation (_kernel.EMULATED: 120 s there);
# EBPF_LAB_GRADE_COMPILE_S sets it. The windows below are built on it: the wait for the attach,
# the upper bound of 'bounded' (its poll plus the compile), the hard stop.
COMPILE_S = float(os.environ.get("EBPF_LAB_GRADE_COMPILE_S", "120" if _kernel.EMULATED else "15"))

# Runs in the child (as root: it loads BPF). Reply: JSON on a copy of stdout.
_CHILD = r'''
import gc, json, os, sys, time, traceback
out = os.fdopen(os.dup(1), "w")
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
req = json.load(open(sys.argv[1]))
from ebpf_lab._bcc import import_bcc
import_bcc()  # `from bcc import BPF` finds the OS's bcc, as in the lab's notebooks
def bpf_fds():
    kinds = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        for k in ("bpf-prog", "bpf-map", "bpf_link", "perf_event", "bpf_ringbuf"):
            if k in link:
                kinds[k] = kinds.get(k, 0) + 1
    return kinds
before = bpf_fds()
t0 = time.monotonic()
try:
    ns = {"__name__": "__learner__"}
    exec(compile(req["source"], "<your cell>", "exec"), ns)
    fn = ns.get("load_and_poll")
    if not callable(fn):
        reply = {"status": "missing"}
    else:
        value = fn(req["program"], req["target_pid"], req["seconds"])
        took = time.monotonic() - t0
        gc.collect()
        after = bpf_fds()
        left = {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}
        try:
            events = [{"target_pid": int(e["target_pid"]), "sig": int(e["sig"])} for e in value]
            reply = {"status": "ok", "events": events, "took": took, "left": left}
        except Exception as e:
            reply = {"status": "shape", "type": type(value).__name__, "message": f"{type(e).__name__}: {e}",
                     "took": took, "left": left}
except BaseException as e:
    tb = [f for f in traceback.extract_tb(sys.exc_info()[2]) if f.filename == "<your cell>"]
    reply = {"status": "error", "type": type(e).__name__, "message": str(e)[:400],
             "line": tb[-1].lineno if tb else None}
out.write(json.dumps(reply))
out.flush()
'''


def given_program() -> str:
    """The C program of the exercise (the learner's loader compiles this text)."""
    from importlib import resources

    return (resources.files("ebpf_lab") / "exercises" / "programs" / "loader_kill.bpf.c").read_text()


def _holds_perf_event(pid: int) -> bool:
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if "perf_event" in os.readlink(f"/proc/{pid}/fd/{fd}"):
                    return True
            except OSError:
                continue
    except OSError:
        pass
    return False


class WriteTheLoader(Exercise):
    id = "write-the-loader"
    lesson = "hello-kill"
    title = "Write the loader: attach, poll a ring buffer for a while, clean up"
    level = 2
    bpf_tag = ""           # the C is given: nothing to extract
    py_tag = "answer-py"
    py_functions = ("load_and_poll",)
    GATES = ("runs",)
    KEEPS_WORKING = ("clean",)
    POINTS = {"runs": 0, "attaches": 2, "events": 2, "fields": 1, "bounded": 1, "cleanup": 2, "clean": 1}
    CHECKS = {
        "runs": "load_and_poll() runs and returns a list of events",
        "attaches": "the program was attached while the workload sent signals",
        "events": "every kill() aimed at TARGET_PID was delivered, once",
        "fields": "each event has the right target_pid and sig",
        "bounded": "it returned after polling for about `seconds` (not much sooner or later)",
        "cleanup": "after it returned, nothing of it was left attached or open",
        "clean": "nothing is left in the kernel afterwards",
    }

    def grade(self, g: Grader) -> None:
        src = g.sub.python.get("load_and_poll")
        if src is None:
            raise Fail("your notebook does not define load_and_poll().",
                       "write def load_and_poll(program, target_pid, seconds) in the cell tagged 'answer-py'.")
        victims = Sleepers(1)
        g.stack.callback(victims.stop)
        target = victims.pids[0]
        plan = [(target, 0, 4), (target, int(signal.SIGCONT), 3), (os.getpid(), 0, 2)]
        script = ("import os\n"
                  f"for t, s, n in {plan!r}:\n"
                  "    for _ in range(n):\n"
                  "        os.kill(t, s)\n")
        sender = Paused(script, "ebl-ex-killer")
        g.stack.callback(sender.stop)
        from .. import kernel_headers

        kernel_headers.prepare()  # the learner's BPF(text=...) finds the same headers as the lab (BCC_KERNEL_SOURCE)
        req = json.dumps({"source": src, "program": given_program(), "target_pid": target, "seconds": SECONDS})
        with tempfile.TemporaryDirectory(prefix=f"ebl-ex-{os.getpid()}-loader-") as home:
            env = {k: v for k, v in os.environ.items()
                   if k in ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "BCC_KERNEL_SOURCE")}
            env.update(HOME=home, PYTHONDONTWRITEBYTECODE="1")
            path = os.path.join(home, "request.json")
            with open(path, "w") as f:
                f.write(req)
            child = subprocess.Popen([sys.executable, "-c", _CHILD, path], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=home, env=env,
                                     start_new_session=True)
            g.stack.callback(_kill_group, child)
            attached = False
            end = time.monotonic() + SECONDS + COMPILE_S  # compiling takes a while on a busy machine
            while time.monotonic() < end and child.poll() is None:
                if _holds_perf_event(child.pid):
                    attached = True
                    break
                time.sleep(0.02)
            if attached:
                g.hooks = ["tracepoint:syscalls:sys_enter_kill"]  # where the given program attaches
                sender.go()
            limit = SECONDS + COMPILE_S + 5
            try:
                out, err = child.communicate(timeout=limit)
            except subprocess.TimeoutExpired as e:
                _kill_group(child)
                raise Fail(f"load_and_poll() did not return within {limit:g} s (asked to poll for {SECONDS:g} s), "
                           "so the grader stopped it.",
                           "poll in a loop that ends when the time is up: compare time.monotonic() with a deadline.") from e
        try:
            d = json.loads(out.decode(errors="replace"))
        except ValueError as e:
            tail = (err or b"").decode(errors="replace").strip().splitlines()[-1:] or [f"exit {child.returncode}"]
            raise Fail(f"load_and_poll() crashed the Python interpreter ({tail[0]}).", "") from e
        self._judge(g, d, attached, target, plan)

    def _judge(self, g: Grader, d: Dict[str, Any], attached: bool, target: int, plan: List[tuple]) -> None:
        st = d.get("status")
        if st == "error" and d.get("type") == "NotImplementedError":
            raise Fail("load_and_poll() is not written yet (it still raises NotImplementedError).",
                       "replace `raise NotImplementedError()` with your code.")
        if st == "error":
            where = f" at line {d['line']} of your cell" if d.get("line") else ""
            raise Fail(f"load_and_poll() stopped with {d.get('type')}: {d.get('message')}{where}.",
                       "run it in the notebook (as root) to see where it goes wrong: BPF(text=..., cflags=[...]), "
                       "then the tracepoint, then the ring buffer.")
        if st == "missing":
            raise Fail("your cell runs, but does not define load_and_poll().", "keep the name load_and_poll.")
        if st == "shape":
            raise Fail(f"load_and_poll() returned a {d.get('type')} that is not a list of events ({d.get('message')}).",
                       "return a list with one dict per event: {'target_pid': ..., 'sig': ...}.")
        g.record("runs", "pass")
        events = d["events"]
        g.data["events"] = events
        want = [(t, s) for t, s, n in plan for _ in range(n) if t == target]

        @g.step("attaches", needs=["runs"])
        def _():
            if not attached:
                raise Fail("the grader never saw your program attached (no perf event open in your process) "
                           "while it waited, so it sent no signals.",
                           "attach on_kill to the tracepoint syscalls:sys_enter_kill before you start polling.")

        @g.step("events", needs=["attaches"])
        def _():
            if len(events) != len(want):
                hint = ("nothing arrived: open the ring buffer with a callback and call ring_buffer_poll() "
                        "repeatedly until the time is up." if not events else
                        "some events are missing: keep polling until the deadline, and poll once more at the end."
                        if len(events) < len(want) else "events were delivered twice: append each one once.")
                raise Fail(f"your loader returned {len(events)} events; the workload sent {len(want)} kill()s "
                           f"to TARGET_PID={target}.", hint)

        @g.step("fields", needs=["events"])
        def _():
            if sorted((e["target_pid"], e["sig"]) for e in events) != sorted(want):
                raise Fail("the events' target_pid and sig do not match the kill()s sent.",
                           "copy the fields of the event your callback receives (ctypes: b['events'].event(data)).")

        @g.step("bounded", needs=["runs"])
        def _():
            took = float(d.get("took", 0))
            if took < SECONDS * 0.8:
                raise Fail(f"load_and_poll() returned after {took:.1f} s; it was asked to poll for {SECONDS:g} s.",
                           "keep polling until `seconds` have passed, not just once.")
            if took > SECONDS + COMPILE_S - 5:
                raise Fail(f"load_and_poll() returned after {took:.1f} s; it was asked to poll for {SECONDS:g} s.",
                           "stop polling at the deadline; give ring_buffer_poll() a timeout (in ms).")

        @g.step("cleanup", needs=["runs"])
        def _():
            left = d.get("left") or {}
            if left:
                what = ", ".join(f"{n} {k}" for k, n in sorted(left.items()))
                raise Fail(f"after load_and_poll() returned, its process still held {what} file descriptor(s): "
                           "the program stayed loaded and attached.",
                           "detach and free everything before returning: `with BPF(...) as b:` or "
                           "try/finally: b.cleanup().")


def _kill_group(child: subprocess.Popen) -> None:
    if child.poll() is None:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        child.wait()
