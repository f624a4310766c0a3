"""What the lab created in the kernel that outlives a process, and how to remove it.

Tracing hooks (tracepoints, kprobes, uprobes through perf events) belong to
file descriptors and vanish with the process. Network objects do not: network
namespaces, veth links, clsact qdiscs, XDP programs and firewall rules stay
until someone removes them; nor do child processes (workloads, sandboxes,
compiler trials: ``_procs``) and scratch folders. Every such object is recorded here the moment it
is created, in ``/run/ebpf-lab/<pid>.json``, and removed by whichever comes
first:

- the owner releasing it (context managers, ``Lesson.close()``),
- the interpreter exiting (``atexit``),
- a reaper process that waits for its owner to die (even by SIGKILL, or a
  Jupyter kernel restart) and then removes what the owner left,
- ``ebpf-lab cleanup`` (removes everything recorded for dead processes, and
  every object bearing the lab's name prefix).
"""
from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import threading
from typing import Dict, List, Optional

RUN_DIR = os.environ.get("EBPF_LAB_RUN_DIR", "/run/ebpf-lab")
PREFIX = "ebl"  # every lab-made network object's name starts with this

_lock = threading.RLock()
_entries: Dict[int, Dict[str, str]] = {}
_next = 0
_reaper: Optional[subprocess.Popen] = None


def _path(pid: int) -> str:
    return os.path.join(RUN_DIR, f"{pid}.json")


def _save() -> None:
    os.makedirs(RUN_DIR, exist_ok=True)
    tmp = _path(os.getpid()) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(list(_entries.values()), f)
    os.replace(tmp, _path(os.getpid()))


def _start_reaper() -> None:
    global _reaper
    if _reaper is not None and _reaper.poll() is None:
        return
    r, w = os.pipe()
    # The reaper blocks reading the pipe; when this process dies the pipe closes.
    _reaper = subprocess.Popen(
        [sys.executable, "-m", "ebpf_lab._registry", "--reap", str(os.getpid()), str(r)],
        pass_fds=(r,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.close(r)
    globals()["_reaper_fd"] = w  # keep the write end open for our lifetime


def register(kind: str, **details: str) -> int:
    """Record an object (kind: netns, link, qdisc, xdp, iptables, nft, file, dir, proc). Returns a token."""
    global _next
    with _lock:
        _next += 1
        _entries[_next] = {"kind": kind, **{k: str(v) for k, v in details.items()}}
        _save()
        _start_reaper()
        return _next


def unregister(token: int) -> None:
    with _lock:
        if _entries.pop(token, None) is not None:
            _save()


def _run(cmd: List[str], timeout: float = 60.0) -> bool:
    """Run one removal command; False when it fails or does not finish within ``timeout`` seconds
    (a removal that hangs must not hang the interpreter's exit, the reaper, or `ebpf-lab cleanup`)."""
    try:
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout).returncode == 0
    except subprocess.TimeoutExpired:
        sys.stderr.write(f"ebpf-lab: `{' '.join(cmd)}` did not finish within {timeout:g} s; "
                         "run `ebpf-lab cleanup` later to retry\n")
        return False


def remove(entry: Dict[str, str]) -> bool:
    """Remove one recorded object; True when it is gone (or was already)."""
    kind = entry["kind"]
    ns = entry.get("netns")
    inns = ["ip", "netns", "exec", ns] if ns else []
    if kind == "netns":
        return _run(["ip", "netns", "delete", entry["name"]]) or not os.path.exists(f"/run/netns/{entry['name']}")
    if kind == "link":
        return _run(inns + ["ip", "link", "delete", entry["name"]]) or not _run(inns + ["ip", "link", "show", entry["name"]])
    if kind == "qdisc":
        return _run(inns + ["tc", "qdisc", "del", "dev", entry["dev"], entry.get("qdisc", "clsact")]) or True
    if kind == "xdp":
        return _run(inns + ["ip", "link", "set", "dev", entry["dev"], entry.get("mode", "xdp"), "off"]) or True
    if kind == "iptables":
        return _run(inns + ["iptables", "-D"] + json.loads(entry["rule"])) or True
    if kind == "nft":
        return _run(inns + ["nft", "delete", "table"] + entry["table"].split()) or True
    if kind == "proc":
        from ._procs import end

        return end(entry)
    if kind == "dir":
        import shutil

        shutil.rmtree(entry["path"], ignore_errors=True)
        return True
    if kind == "file":
        try:
            os.unlink(entry["path"])
        except FileNotFoundError:
            pass
        return True
    return False


def release_all() -> None:
    """Remove everything this process recorded (newest first)."""
    with _lock:
        for token in sorted(_entries, reverse=True):
            remove(_entries[token])
            _entries.pop(token, None)
        try:
            os.unlink(_path(os.getpid()))
        except FileNotFoundError:
            pass


def pid_alive(pid: int) -> bool:
    """Whether a process exists (a zombie still counts)."""
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def cleanup_dead(include_alive: bool = False) -> List[str]:
    """Remove what dead lab processes left behind; return a description per object."""
    done: List[str] = []
    if not os.path.isdir(RUN_DIR):
        return done
    for name in sorted(os.listdir(RUN_DIR)):
        if not name.endswith(".json"):
            continue
        pid = int(name[:-5])
        if pid == os.getpid() or (pid_alive(pid) and not include_alive):
            continue
        try:
            with open(os.path.join(RUN_DIR, name)) as f:
                entries = json.load(f)
        except (OSError, ValueError):
            entries = []
        for e in reversed(entries):
            if remove(e):
                done.append(f"{e['kind']} " + " ".join(f"{k}={v}" for k, v in e.items() if k != "kind") + f" (pid {pid})")
        os.unlink(os.path.join(RUN_DIR, name))
    return done


def _reap(pid: int, fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass
    path = _path(pid)
    if os.path.exists(path):
        with open(path) as f:
            entries = json.load(f)
        for e in reversed(entries):
            remove(e)
        os.unlink(path)


def _forget_in_child() -> None:
    """A forked child owns nothing: it must never remove its parent's objects at its exit.

    pyroute2 forks to enter network namespaces and ends those children with
    SIGTERM; a child that unwinds (e.g. through a SIGTERM handler raising
    SystemExit) would otherwise run release_all() on its copy of the entries.
    """
    global _reaper
    _entries.clear()
    _reaper = None


os.register_at_fork(after_in_child=_forget_in_child)
atexit.register(release_all)

if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--reap":
    _reap(int(sys.argv[2]), int(sys.argv[3]))
