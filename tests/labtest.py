"""Helpers shared by the tests (import as `from labtest import ...`; conftest is not importable by name)."""
import os
from typing import Dict


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


