"""Run a learner's Python function in a child interpreter, with a time limit.

The learner's code never runs in the grader's process: a loop that never ends
is killed when its time is up, an exception becomes a short message naming the
line, and the child has no BPF object (it gets plain Python data read from the
kernel by the grader), so it cannot leave anything attached. When the grader
runs as root, the child drops to the ``nobody`` user.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
import select
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional

# Runs in the child. Kept free of ebpf_lab imports: the child only needs pandas/numpy.
# The request comes in on stdin (pickle: from the grader, trusted); the reply goes out as JSON on a
# copy of stdout (never pickle: the learner's code is not trusted, and JSON cannot run code when read).
_CHILD = r'''
import json, linecache, os, pickle, sys, traceback
out = os.fdopen(os.dup(1), "w")
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # the learner's print()s go nowhere
import numpy as np, pandas as pd  # before the clock starts: the time limit is the learner's code's
out.write("ready\n")
out.flush()
req = pickle.load(sys.stdin.buffer)
def native(v):
    if hasattr(v, "item"):
        return v.item()
    if hasattr(v, "tolist"):
        return v.tolist()
    raise TypeError(type(v).__name__)
def encode(v):
    import pandas as pd
    if isinstance(v, pd.DataFrame):
        d = v.to_dict(orient="split")
        return {"__frame__": {"index": list(d["index"]), "columns": [str(c) for c in d["columns"]], "data": d["data"]}}
    return {"__plain__": v}
def reply(d):
    out.write(json.dumps(d, default=native))
    out.flush()
try:
    ns = {"__name__": "__learner__", "np": np, "pd": pd}
    code = compile(req["source"], "<your cell>", "exec")
    linecache.cache["<your cell>"] = (len(req["source"]), None, req["source"].splitlines(True), "<your cell>")
    exec(code, ns)
    fn = ns.get(req["function"])
    if not callable(fn):
        text = json.dumps({"status": "missing"})
    else:
        value = fn(*req["args"], **req["kwargs"])
        try:
            text = json.dumps({"status": "ok", "value": encode(value)}, default=native)
        except Exception as e:
            text = json.dumps({"status": "unpicklable", "type": type(value).__name__, "message": str(e)})
    out.write(text)
    out.flush()
except BaseException as e:
    tb = traceback.extract_tb(sys.exc_info()[2])
    mine = [f for f in tb if f.filename == "<your cell>"]
    where = mine[-1] if mine else None
    reply({"status": "error", "type": type(e).__name__, "message": str(e),
           "line": where.lineno if where else None, "text": (where.line or "") if where else "",
           "syntax_line": getattr(e, "lineno", None) if isinstance(e, SyntaxError) else None})
'''


def _decode(v: Any) -> Any:
    if isinstance(v, dict) and "__frame__" in v:
        import pandas as pd

        f = v["__frame__"]
        return pd.DataFrame(f["data"], index=f["index"], columns=f["columns"])
    if isinstance(v, dict) and "__plain__" in v:
        return v["__plain__"]
    return v


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


#: How long the child may take to start Python and import numpy and pandas, before the learner's
#: time limit starts: seconds on a laptop, far more in a software-emulated lab VM.
STARTUP_TIMEOUT_S = 300.0


def _wait_ready(proc: subprocess.Popen, limit: float) -> bool:
    """Read the child's "ready" line from its stdout (raw reads: communicate() reads the rest)."""
    assert proc.stdout is not None
    fd, got, deadline = proc.stdout.fileno(), b"", time.monotonic() + limit
    while not got.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return False
        chunk = os.read(fd, 1)
        if not chunk:
            return False
        got += chunk
    return got == b"ready\n"


def run_function(source: str, function: str, args: tuple = (), kwargs: Optional[dict] = None,
                 timeout: float = 10.0) -> Outcome:
    """Execute ``source`` in a fresh interpreter, call ``function(*args)``; never raises for learner faults.

    ``timeout`` bounds the learner's code alone: the child's start (Python, numpy, pandas) has its
    own limit, :data:`STARTUP_TIMEOUT_S`, so a slow machine does not fail a learner for the imports.
    """
    request = pickle.dumps({"source": source, "function": function, "args": tuple(args), "kwargs": kwargs or {}})
    from .. import _procs, _registry

    with tempfile.TemporaryDirectory(prefix=f"ebl-ex-{os.getpid()}-py-") as home:
        dir_token = _registry.register("dir", path=home)  # removed by the reaper if the grader is killed
        if os.geteuid() == 0:
            os.chown(home, 65534, 65534)  # the learner's own scratch space; nothing is read back from it
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "PYTHONPATH")}
        env.update(HOME=home, MPLCONFIGDIR=home, PYTHONDONTWRITEBYTECODE="1")
        proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=home, env=env,
                                preexec_fn=_procs.preexec(_drop_privileges, session=True))
        token = _procs.register(proc)
        try:
            if not _wait_ready(proc, STARTUP_TIMEOUT_S):
                _kill_group(proc.pid)
                out, err = proc.communicate()
                tail = (err or b"").decode(errors="replace").strip().splitlines()[-1:]
                return Outcome("crashed", message="the grader's Python child did not start (numpy and pandas "
                                                  f"within {STARTUP_TIMEOUT_S:g} s)" + (f": {tail[0]}" if tail else ""))
            out, err = proc.communicate(request, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.communicate()
            return Outcome("timeout", message=f"did not return within {timeout:g} s")
        finally:
            _kill_group(proc.pid)  # whatever the learner's code started in the background goes too
            _registry.unregister(token)
            _registry.unregister(dir_token)
    try:
        d = json.loads(out.decode(errors="replace"))
    except ValueError:
        tail = (err or b"").decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        return Outcome("crashed", message=tail[0])
    st = d.get("status") if isinstance(d, dict) else None
    if st == "ok":
        return Outcome("ok", value=_decode(d.get("value")))
    if st == "error":
        return Outcome("error", error_type=str(d.get("type")), message=str(d.get("message")),
                       line=d.get("line") or d.get("syntax_line"), text=str(d.get("text") or ""))
    if st == "unpicklable":
        return Outcome("unpicklable", error_type=str(d.get("type")), message=str(d.get("message")))
    return Outcome("missing" if st == "missing" else "crashed", message="no answer")
