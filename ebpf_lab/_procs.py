"""Child processes that die with the lab process that started them.

Every workload, sandbox and compiler child the lab starts gets, before it runs:

- its own process group (so that it and whatever it starts can be ended at once), and
- ``PR_SET_PDEATHSIG`` = SIGKILL: the kernel kills it when its parent dies, even by SIGKILL
  (a grader killed mid-check, a Jupyter kernel restarted), so nothing holds the caller's
  stdout open or keeps running unseen.

:func:`owned` also records the child with the reaper (``_registry``), which kills it if the
parent dies while it runs, as a second guard (e.g. for grandchildren started by the child).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
from typing import Any, Callable, Dict, Iterator, Optional

PR_SET_PDEATHSIG = 1
_libc: Any = None


def _prctl_pdeathsig() -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    _libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def die_with_parent(parent: Optional[int] = None) -> None:
    """In a child (preexec_fn): be killed when the parent dies; exit at once if it already has."""
    _prctl_pdeathsig()
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def preexec(extra: Optional[Callable[[], None]] = None, *, session: bool = False) -> Callable[[], None]:
    """A preexec_fn: its own process group (or session), then ``extra`` (e.g. dropping privileges, which
    resets the parent-death signal, so it is set after it), then die-with-parent, checked against this
    process as parent."""
    parent = os.getpid()

    def run() -> None:
        os.setsid() if session else os.setpgid(0, 0)
        if extra is not None:
            extra()
        die_with_parent(parent)

    return run


def child_env() -> Dict[str, str]:
    return dict(os.environ)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the child's process group (the child and what it started), then reap the child."""
    for target in (lambda: os.killpg(proc.pid, signal.SIGKILL), lambda: proc.kill()):
        try:
            target()
        except (ProcessLookupError, PermissionError, OSError):
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' when it is gone): pid + start time name it uniquely."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def register(proc: subprocess.Popen) -> int:
    """Record a running child with the reaper (and forget recorded children that are gone); returns a token."""
    from . import _registry

    with _registry._lock:
        gone = [t for t, e in _registry._entries.items()
                if e.get("kind") == "proc" and start_time(int(e["pid"])) != e.get("start")]
        for t in gone:
            _registry._entries.pop(t, None)
        return _registry.register("proc", pid=str(proc.pid), start=start_time(proc.pid))


def end(entry: Dict[str, str]) -> bool:
    """The reaper's side: kill a recorded child's process group, unless its pid now names another process."""
    pid = int(entry["pid"])
    now = start_time(pid)
    if now and now != entry.get("start"):
        return True  # that pid is someone else now; ours is long gone
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass
    return True


@contextlib.contextmanager
def owned(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """The child is ended (with its process group) and unrecorded when the block ends, however it ends."""
    from . import _registry

    token = register(proc)
    try:
        yield proc
    finally:
        kill_group(proc)
        _registry.unregister(token)


def popen(argv: Any, **kw: Any) -> subprocess.Popen:
    """subprocess.Popen for a lab child: own process group, dies with us, recorded with the reaper."""
    kw.setdefault("preexec_fn", preexec())
    proc = subprocess.Popen(argv, **kw)
    register(proc)
    return proc
