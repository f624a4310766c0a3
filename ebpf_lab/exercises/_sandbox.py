"""Run a learner's Python function in a child interpreter, with a time limit.

The learner's code never runs in the grader's process: a loop that never ends
is killed when its time is up, an exception becomes a short message naming the
line, and the child has no BPF object (it gets plain Python data read from the
kernel by the grader), so it cannot leave anything attached. When the grader
runs as root, the child drops to the ``nobody`` user.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import subprocess
import sys
import tempfile
from typing import Any, Optional

# Runs in the child. Kept free of ebpf_lab imports: the child only needs pandas/numpy.
_CHILD = r'''
import pickle, sys, traceback, linecache
req = pickle.load(open(sys.argv[1], "rb"))
out_path = sys.argv[2]
def reply(d):
    with open(out_path, "wb") as f:
        pickle.dump(d, f)
try:
    import numpy as np, pandas as pd
    ns = {"__name__": "__learner__", "np": np, "pd": pd}
    code = compile(req["source"], "<your cell>", "exec")
    linecache.cache["<your cell>"] = (len(req["source"]), None, req["source"].splitlines(True), "<your cell>")
    exec(code, ns)
    fn = ns.get(req["function"])
    if not callable(fn):
        reply({"status": "missing"})
        sys.exit(0)
    value = fn(*req["args"], **req["kwargs"])
    try:
        reply({"status": "ok", "value": value})
    except Exception as e:
        reply({"status": "unpicklable", "type": type(value).__name__, "message": str(e)})
except BaseException as e:
    tb = traceback.extract_tb(sys.exc_info()[2])
    mine = [f for f in tb if f.filename == "<your cell>"]
    where = mine[-1] if mine else None
    reply({"status": "error", "type": type(e).__name__, "message": str(e),
           "line": where.lineno if where else None, "text": (where.line or "") if where else "",
           "syntax_line": getattr(e, "lineno", None) if isinstance(e, SyntaxError) else None})
'''


@dataclasses.dataclass
class Outcome:
    status: str  # ok, error, timeout, missing, crashed, unpicklable
    value: Any = None
    error_type: str = ""
    message: str = ""
    line: Optional[int] = None
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _drop_privileges() -> None:
    os.setsid()
    if os.geteuid() == 0:
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        except OSError:
            pass


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_function(source: str, function: str, args: tuple = (), kwargs: Optional[dict] = None,
                 timeout: float = 10.0) -> Outcome:
    """Execute ``source`` in a fresh interpreter, call ``function(*args)``; never raises for learner faults."""
    with tempfile.TemporaryDirectory(prefix=f"ebl-ex-{os.getpid()}-py-") as tmp:
        os.chmod(tmp, 0o777)
        req_path = os.path.join(tmp, "request.pickle")
        out_path = os.path.join(tmp, "reply.pickle")
        with open(req_path, "wb") as f:
            pickle.dump({"source": source, "function": function, "args": tuple(args), "kwargs": kwargs or {}}, f)
        os.chmod(req_path, 0o644)
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "PYTHONPATH")}
        env.update(HOME=tmp, MPLCONFIGDIR=tmp, PYTHONDONTWRITEBYTECODE="1")
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, req_path, out_path], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp, env=env,
                                preexec_fn=_drop_privileges)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait()
            return Outcome("timeout", message=f"did not return within {timeout:g} s")
        _kill_group(proc.pid)  # whatever the learner's code started in the background goes too
        if not os.path.exists(out_path):
            tail = (err or b"").decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
            return Outcome("crashed", message=tail[0])
        with open(out_path, "rb") as f:
            d = pickle.load(f)
    st = d["status"]
    if st == "ok":
        return Outcome("ok", value=d["value"])
    if st == "error":
        return Outcome("error", error_type=d["type"], message=d["message"], line=d.get("line") or d.get("syntax_line"),
                       text=d.get("text", ""))
    if st == "unpicklable":
        return Outcome("unpicklable", error_type=d["type"], message=d["message"])
    return Outcome(st)
