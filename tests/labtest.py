"""Helpers shared by the tests (import as `from labtest import ...`; conftest is not importable by name)."""
import os
import re
from typing import Callable, Dict, List


def bpf_fds(pid: int = 0) -> Dict[str, int]:
    """Count this process's BPF objects and perf events (attached probes) by kind."""
    pid = pid or os.getpid()
    out = {"bpf-prog": 0, "bpf-map": 0, "bpf_link": 0, "perf_event": 0}
    d = f"/proc/{pid}/fd"
    for fd in os.listdir(d):
        try:
            target = os.readlink(os.path.join(d, fd))
        except OSError:
            continue
        for k in out:
            if k in target:
                out[k] += 1
    return out




def lab_orphans_since(before: set) -> List[str]:
    """Lab objects that appeared since ``before`` and whose owner process is gone (others' live tests excluded)."""
    from ebpf_lab.netlab import lab_objects

    out = []
    for o in set(lab_objects()) - set(before):
        m = re.search(r"ebl-(\d+)-", o)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            out.append(o)
    return out


def processes(match: Callable[[int, List[bytes]], bool]) -> List[int]:
    """Pids of the processes whose (pid, argv) ``match`` accepts (processes that vanish meanwhile are skipped)."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
            if match(int(p), args):
                pids.append(int(p))
        except OSError:
            continue
    return pids
