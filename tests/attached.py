"""What this test process left attached in the kernel: BPF programs and probe events.

Used by the lesson tests (01, 03) after a lesson ran: nothing may stay behind.
Checks three things, each one a different way a probe can outlive its lesson:

- this process's file descriptors on BPF programs, maps, links and perf events
  (``conftest.bpf_fds``): bcc attaches kprobes, uprobes and tracepoints through
  perf events held open by the process;
- ``bpftool prog show``: no program with one of the lesson's handler names
  that was loaded after the snapshot was taken;
- tracefs ``kprobe_events`` / ``uprobe_events``: no ``p_``/``r_`` entries that
  bcc created for this process (bcc names them ``..._bcc_<pid>``), and none
  that appeared since the snapshot (a notebook's kernel is another process).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Dict, Iterable, List

from labtest import bpf_fds


def bpftool_progs() -> List[dict]:
    exe = shutil.which("bpftool")
    if exe is None:
        return []
    r = subprocess.run([exe, "prog", "show", "--json"], capture_output=True, text=True, timeout=60)
    try:
        return json.loads(r.stdout or "[]")
    except ValueError:
        return []


def probe_event_lines() -> List[str]:
    out: List[str] = []
    for t in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        for name in ("kprobe_events", "uprobe_events"):
            try:
                with open(os.path.join(t, name)) as f:
                    out += [f"{name}: {ln.strip()}" for ln in f if ln.strip()]
            except OSError:
                pass
    return out


def _ours(pid: int) -> bool:
    """``pid`` is this process or one of its descendants (a notebook's kernel is a child)."""
    me = os.getpid()
    for _ in range(64):
        if pid == me:
            return True
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
        if pid <= 1:
            return False
    return False


def held_by_others_only(prog_id: int) -> bool:
    """The program is held open only by processes outside this test's tree: another test's, not a leftover.

    On a shared machine other tests load programs with the same handler names at the
    same time; a program that outlived its lesson is held by no process, or by ours.
    """
    holders = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fdinfo"):
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    if f"prog_id:\t{prog_id}\n" in f.read():
                        holders.add(int(pid))
                        break
        except OSError:
            continue
    return bool(holders) and not any(_ours(p) for p in holders)


class Snapshot:
    """Take before a lesson runs; ``leftovers()`` after it lists what stayed."""

    def __init__(self, handler_names: Iterable[str]) -> None:
        # The kernel keeps the first 15 bytes of a program's name.
        self.names = {n[:15] for n in handler_names}
        self.fds = bpf_fds()
        self.max_id = max([p.get("id", 0) for p in bpftool_progs()] or [0])
        self.events = set(probe_event_lines())

    def leftovers(self) -> Dict[str, object]:
        import gc

        gc.collect()
        found: Dict[str, object] = {}
        now = bpf_fds()
        leaked = {k: now[k] - self.fds[k] for k in now if now[k] > self.fds[k]}
        if leaked:
            found["fds"] = leaked
        progs = [p for p in bpftool_progs() if p.get("id", 0) > self.max_id and p.get("name") in self.names
                 and not held_by_others_only(p["id"])]
        if progs:
            found["programs"] = [(p["id"], p.get("type"), p.get("name")) for p in progs]
        mine = [ln for ln in probe_event_lines() if f"bcc_{os.getpid()}" in ln or ln not in self.events]
        if mine:
            found["probe_events"] = mine
        return found
