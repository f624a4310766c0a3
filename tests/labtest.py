"""Helpers shared by the tests (import as `from labtest import ...`; conftest is not importable by name)."""
import os
import re
from pathlib import Path
from typing import Callable, Dict, List, Tuple


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


def read_selection(path: Path) -> Tuple[List[str], int]:
    """(pytest arguments, budget in seconds or 0) of one selection file (tests/guest/*.txt).

    One pytest argument per line; ``#`` starts a comment; ``# budget: SECONDS`` gives a guest row's
    time; a line ``@NAME`` takes the arguments of NAME, a file beside this one (the lesson core that
    the guest rows and the lab VM share: tests/guest/core-lessons.txt)."""
    args: List[str] = []
    budget = 0
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"\s*#\s*budget:\s*(\d+)\s*", line)
        if m:
            budget = int(m.group(1))
        line = line.strip()
        if line.startswith("@"):
            args += read_selection(path.parent / line[1:])[0]
        elif line and not line.startswith("#"):
            args.append(line)
    return args, budget
