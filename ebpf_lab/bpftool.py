"""What the kernel holds, as ``bpftool`` sees it: the lab's own programs, never anyone else's.

The tutorial installs ``bpftool`` with its compilers; it is the kernel's own
view of loaded BPF programs and of what is attached to network devices. These
helpers run it with ``-j`` (JSON) and return DataFrames, **filtered by the
program ids a lesson loaded** (the ``prog_id`` column of its load step's
table): other people's programs on the same kernel are never listed.

    loaded = lab.load()                         # ... prog_id column
    lab.attach()
    programs(loaded.prog_id)                    # bpftool prog show id N, for each of ours
    net_attachments(loaded.prog_id, net=lab.net)  # bpftool net show, inside the lab namespace
    lab.detach()
    programs_gone(loaded.prog_id)               # empty: the kernel freed them
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from typing import Any, Iterable, List

import pandas as pd

from .errors import FeatureUnavailable, LabParameterError

__all__ = ["programs", "programs_gone", "net_attachments", "PROGRAM_COLUMNS", "NET_COLUMNS"]

#: the columns of :func:`programs`, with what bpftool means by each
PROGRAM_COLUMNS = {
    "id": "the program's id in the kernel (bpftool prog show id N)",
    "type": "program type (tracepoint, kprobe, sched_cls, xdp, ...)",
    "name": "the function's name (first 15 characters)",
    "tag": "hash of the program's instructions",
    "bytes_xlated": "size of the program after the verifier rewrote it (8 bytes an instruction)",
    "bytes_jited": "size of the native machine code the JIT made of it",
    "map_ids": "ids of the maps it uses",
    "pids": "processes holding it open (pid:comm)",
}
#: the columns of :func:`net_attachments`
NET_COLUMNS = {
    "hook": "xdp or tc",
    "devname": "the interface it is attached to",
    "attach": "tc: clsact/ingress or clsact/egress; xdp: generic, driver (native) or offload",
    "prog_id": "the program's id (matches programs())",
    "name": "the program's name",
    "netns": "the network namespace bpftool was run in ('' for this process's own)",
}


def _ids(ids: Iterable[Any]) -> List[int]:
    try:
        out = sorted({int(i) for i in ids if i is not None and not (isinstance(i, float) and i != i)})
    except (TypeError, ValueError):
        raise LabParameterError(f"asking bpftool about programs: ids must be integers, got {ids!r}") from None
    if any(i <= 0 for i in out):
        raise LabParameterError(f"asking bpftool about programs: ids must be positive, got {out}")
    return out


def _bpftool(argv: List[str], *, netns: str = "", doing: str) -> Any:
    if shutil.which("bpftool") is None:
        raise FeatureUnavailable("bpftool", f"{doing}: bpftool is not installed (`apt-get install bpftool`, "
                                            "or linux-tools-$(uname -r) on Ubuntu)")
    cmd = ["bpftool", "-j"] + argv
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    try:
        return json.loads(p.stdout or "null")
    except json.JSONDecodeError:
        return {"error": (p.stdout + p.stderr).strip()}


def programs(ids: Iterable[Any]) -> pd.DataFrame:
    """``bpftool prog show id N`` for each of ``ids``: one row per program the kernel still holds.

    A program the kernel has freed (detached and closed) has no row, so after a
    lesson's ``detach()`` the DataFrame is empty. Only the given ids are asked
    about: never the whole list of the machine's programs.
    """
    rows = []
    for i in _ids(ids):
        d = _bpftool(["prog", "show", "id", str(i)], doing=f"asking bpftool about program {i}")
        if not isinstance(d, dict) or "error" in d:
            continue
        rows.append({
            "id": d.get("id"), "type": d.get("type"), "name": d.get("name"), "tag": d.get("tag"),
            "bytes_xlated": d.get("bytes_xlated"), "bytes_jited": d.get("bytes_jited"),
            "map_ids": d.get("map_ids", []),
            "pids": [f"{p.get('pid')}:{p.get('comm')}" for p in d.get("pids", [])],
        })
    return pd.DataFrame(rows, columns=list(PROGRAM_COLUMNS))


def programs_gone(ids: Iterable[Any], *, timeout: float = 10.0) -> pd.DataFrame:
    """:func:`programs` once the kernel has freed them all, or after ``timeout`` seconds (whatever is left).

    Closing a program's last file descriptor frees it a moment later (after an
    RCU grace period), not at once: right after ``detach()`` bpftool may still
    list it. This asks again every 50 ms until none of ``ids`` is listed.
    """
    wanted = _ids(ids)
    deadline = time.monotonic() + max(0.0, float(timeout))
    while True:
        df = programs(wanted)
        if df.empty or time.monotonic() >= deadline:
            return df
        time.sleep(0.05)


def net_attachments(ids: Iterable[Any], *, net: Any = None, side: str = "rcv") -> pd.DataFrame:
    """``bpftool net show``: XDP and TC attachments of the given program ids.

    With ``net`` (a :class:`~ebpf_lab.netlab.LabNetwork`), bpftool runs inside
    that network's ``side`` namespace, where the lab's veth is; otherwise in
    this process's own namespace. Rows of programs not in ``ids`` are left out.
    """
    want = set(_ids(ids))
    netns = net.netns[side] if net is not None else ""
    d = _bpftool(["net", "show"], netns=netns, doing="asking bpftool what is attached to network devices")
    rows = []
    for block in d if isinstance(d, list) else []:
        for hook in ("xdp", "tc"):
            for a in block.get(hook, []) or []:
                pid = a.get("id", a.get("prog_id"))
                if pid in want:
                    rows.append({"hook": hook, "devname": a.get("devname"),
                                 "attach": a.get("kind", a.get("mode", "")), "prog_id": pid,
                                 "name": a.get("name", ""), "netns": netns})
    return pd.DataFrame(rows, columns=list(NET_COLUMNS))
