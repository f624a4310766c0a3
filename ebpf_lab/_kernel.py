"""Small facts about the running kernel and machine, and mounting what is missing."""
from __future__ import annotations

import os
import subprocess
from typing import Dict, Optional

from .errors import PrivilegeError

CAPS = {"CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21, "CAP_SYS_RESOURCE": 24, "CAP_PERFMON": 38, "CAP_BPF": 39}
TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
#: A software-emulated machine, said so by whoever started it (the test tiers' guests and lab VM set
#: EBPF_LAB_EMULATED=1): clang, bpftrace and bpftool run 10-30x slower there, more beside another
#: emulated machine, and the clocks of a vCPU that the host stops and starts part. Time bounds that
#: depend on it take their wider defaults from here.
EMULATED = os.environ.get("EBPF_LAB_EMULATED") == "1"


def effective_caps() -> Dict[str, bool]:
    try:
        with open("/proc/self/status") as f:
            line = next(ln for ln in f if ln.startswith("CapEff:"))
        mask = int(line.split()[1], 16)
    except (OSError, StopIteration):
        mask = 0
    return {name: bool(mask >> bit & 1) for name, bit in CAPS.items()}


def require_root(doing: str) -> None:
    caps = effective_caps()
    if os.geteuid() != 0 and not (caps["CAP_BPF"] and caps["CAP_PERFMON"]):
        raise PrivilegeError(
            f"{doing}: loading BPF programs needs root (CAP_BPF and CAP_PERFMON, CAP_NET_ADMIN for networking); "
            "start the lab with `sudo ./lab`, or run the command with sudo."
        )


def _mounted(path: str) -> bool:
    try:
        with open("/proc/mounts") as f:
            return any(line.split()[1] == path for line in f)
    except OSError:
        return False


def ensure_kernel_fs() -> Dict[str, bool]:
    """Mount tracefs, debugfs and bpffs where missing (needs root); report what is mounted."""
    want = {"/sys/kernel/tracing": "tracefs", "/sys/kernel/debug": "debugfs", "/sys/fs/bpf": "bpf"}
    out = {}
    for path, fstype in want.items():
        if not _mounted(path) and os.geteuid() == 0 and os.path.isdir(path):
            try:
                subprocess.run(["mount", "-t", fstype, fstype, path], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=30)
            except subprocess.TimeoutExpired:
                pass  # reported below as not mounted
        out[path] = _mounted(path)
    return out


def tracefs() -> Optional[str]:
    """The tracefs folder, or None."""
    for p in TRACEFS_CANDIDATES:
        if os.path.exists(os.path.join(p, "available_events")):
            return p
    return None


def kprobes_available() -> bool:
    """kprobes exist when tracefs offers kprobe_events (CONFIG_KPROBES)."""
    ensure_kernel_fs()
    t = tracefs()
    return t is not None and os.path.exists(os.path.join(t, "kprobe_events"))


def tracepoint_exists(category: str, event: str) -> bool:
    t = tracefs()
    return t is not None and os.path.isdir(os.path.join(t, "events", category, event))
