"""Execute a notebook headless (nbclient) and read its cells by tag — shared by the notebook tests.

Every wait is bounded and named: the kernel must start within ``STARTUP_S``,
each cell must finish within ``CELL_S`` and the whole notebook within
``NOTEBOOK_S`` (environment overrides: EBPF_LAB_NB_STARTUP_S, EBPF_LAB_NB_CELL_S,
EBPF_LAB_NB_TOTAL_S). When one is exceeded the test fails with the cell's tag,
its source's first line and how long every cell before it took, instead of
sitting silently. Cell durations of the last run are kept in ``LAST_TIMINGS``
and written to ``artifacts/notebook-timings.json`` for the CI log.
"""
import json
import os
import re
import signal
import subprocess
import time
from typing import Any, Dict, List, Optional

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env_s(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        raise ValueError(f"{name}={os.environ[name]!r} is not a number of seconds") from None


# A cell of these notebooks takes seconds (all six notebooks ~85 s together on
# the CI host); under software emulation 5-20x more. The bounds are far above
# that and far below "sits for ten minutes".
STARTUP_S = _env_s("EBPF_LAB_NB_STARTUP_S", 120)
CELL_S = _env_s("EBPF_LAB_NB_CELL_S", 300)
NOTEBOOK_S = _env_s("EBPF_LAB_NB_TOTAL_S", 900)
LAST_TIMINGS: Dict[str, List[dict]] = {}


class NotebookStalled(AssertionError):
    """A notebook exceeded one of its bounds; the message names the cell."""


def _label(cell: nbformat.NotebookNode, index: int) -> str:
    tags = cell.get("metadata", {}).get("tags", [])
    first = next((ln for ln in cell.get("source", "").splitlines() if ln.strip()), "")
    return f"cell {index} [{', '.join(tags) or 'untagged'}] `{first[:80]}`"


def _save_timings(name: str, rows: List[dict]) -> None:
    LAST_TIMINGS[name] = rows
    try:
        os.makedirs(os.path.join(ROOT, "artifacts"), exist_ok=True)
        path = os.path.join(ROOT, "artifacts", "notebook-timings.json")
        data = {}
        if os.path.exists(path):
            with open(path) as f:
                data = json.load(f)
        data[name] = rows
        with open(path + ".tmp", "w") as f:
            json.dump(data, f, indent=1)
        os.replace(path + ".tmp", path)
    except (OSError, ValueError):
        pass  # timings are a diagnostic; never fail a run on them


def _kernel_log() -> List[str]:
    try:
        return subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return []


def why_dead(proc: Any, log_from: int = 0) -> str:
    """What is known of a dead kernel: its exit status (a signal, e.g. the OOM killer's SIGKILL), the
    kernel log's out-of-memory or crash lines from line ``log_from`` on (the log's length when the
    notebook started), and the memory and /tmp left."""
    facts = []
    rc = proc.poll() if proc is not None else None
    if rc is None:
        facts.append("kernel process: still running or unknown")
    elif rc < 0:
        facts.append(f"kernel process: killed by signal {-rc} ({signal.Signals(-rc).name})")
    else:
        facts.append(f"kernel process: exited with status {rc}")
    log = _kernel_log()
    hits = [ln for ln in log[log_from:] if re.search(r"(?i:out of memory|oom-kill|killed process|segfault|"
                                                     r"general protection|traps:)|BUG:|Call Trace", ln)]
    facts.append("kernel log since the notebook started: "
                 + ("\n  ".join([""] + hits[-12:]) if hits else "no OOM or crash lines" if log else "unreadable"))
    try:
        with open("/proc/meminfo") as f:
            mem = dict(ln.split(":", 1) for ln in f)
        st = os.statvfs("/tmp")
        used_mib = (st.f_blocks - st.f_bfree) * st.f_frsize >> 20
        facts.append(f"MemAvailable {mem['MemAvailable'].strip()}, /tmp {used_mib} MiB used")
    except (OSError, KeyError):
        pass
    return "\n".join(facts)


def run_notebook(name: str, timeout: Optional[float] = None, *, total: Optional[float] = None) -> nbformat.NotebookNode:
    """Run notebooks/NAME top to bottom in its folder; any cell error fails (CellExecutionError).

    ``timeout``: seconds per cell (default CELL_S); ``total``: seconds for the
    whole notebook (default NOTEBOOK_S). Exceeding either raises NotebookStalled
    naming the cell that was running.
    """
    cell_s = float(timeout if timeout is not None else CELL_S)
    total_s = float(total if total is not None else NOTEBOOK_S)
    path = os.path.join(ROOT, "notebooks", name)
    nb = nbformat.read(path, as_version=4)
    rows: List[dict] = []
    t_start = time.monotonic()
    current: Dict[str, float] = {}
    kernel: Dict[str, Any] = {"log_from": len(_kernel_log())}

    def on_execute(cell, cell_index, **_kw):
        spent = time.monotonic() - t_start
        if spent > total_s:
            raise NotebookStalled(f"{name}: {spent:.0f} s spent before {_label(cell, cell_index)}, over the "
                                  f"notebook's bound of {total_s:g} s (EBPF_LAB_NB_TOTAL_S); cells so far: {rows}")
        current["t"] = time.monotonic()
        current["i"] = cell_index
        # the kernel's process, kept for why_dead(): the client forgets it when it cleans up
        kernel["proc"] = kernel.get("proc") or getattr(getattr(client.km, "provisioner", None), "process", None)

    def on_executed(cell, cell_index, **_kw):
        rows.append({"cell": cell_index, "tags": cell.get("metadata", {}).get("tags", []),
                     "seconds": round(time.monotonic() - current.get("t", t_start), 2)})

    client = NotebookClient(
        nb, timeout=cell_s, startup_timeout=int(STARTUP_S), kernel_name="python3",
        # a kernel that does not stop when asked is killed, not waited for
        shutdown_kernel="immediate",
        # the cell's outputs must arrive with its reply: a silent iopub is an error, not a pass
        iopub_timeout=30, raise_on_iopub_timeout=True,
        on_cell_execute=on_execute, on_cell_executed=on_executed,
        resources={"metadata": {"path": os.path.dirname(path)}})
    try:
        client.execute()
    except CellTimeoutError as e:
        i = int(current.get("i", -1))
        where = _label(nb.cells[i], i) if 0 <= i < len(nb.cells) else "a cell"
        raise NotebookStalled(f"{name}: {where} ran longer than {cell_s:g} s (EBPF_LAB_NB_CELL_S) and was "
                              f"stopped; earlier cells took: {rows}\n{e}") from None
    except DeadKernelError as e:
        i = int(current.get("i", -1))
        where = f"while running {_label(nb.cells[i], i)}" if 0 <= i < len(nb.cells) else "before its first cell"
        raise NotebookStalled(f"{name}: the kernel died {where}, or did not start within {STARTUP_S:g} s "
                              f"(EBPF_LAB_NB_STARTUP_S): {e}; earlier cells took: {rows}\n"
                              f"{why_dead(kernel.get('proc'), kernel['log_from'])}") from None
    except RuntimeError as e:
        if "Kernel didn't respond" in str(e) or "kernel" in str(e).lower() and "start" in str(e).lower():
            raise NotebookStalled(f"{name}: the kernel did not start within {STARTUP_S:g} s "
                                  f"(EBPF_LAB_NB_STARTUP_S): {e}") from None
        raise
    finally:
        _save_timings(name, rows + [{"cell": "total", "seconds": round(time.monotonic() - t_start, 2)}])
    return nb


def outputs_by_tag(nb: nbformat.NotebookNode) -> Dict[str, List[dict]]:
    out: Dict[str, List[dict]] = {}
    for cell in nb.cells:
        for tag in cell.get("metadata", {}).get("tags", []):
            out.setdefault(tag, []).extend(cell.get("outputs", []))
    return out


def text_of(outputs: List[dict]) -> str:
    parts = []
    for o in outputs:
        if o.get("output_type") == "stream":
            parts.append(o.get("text", ""))
        elif "data" in o:
            parts.append(o["data"].get("text/plain", ""))
    return "".join(parts)


def has_image(outputs: List[dict]) -> bool:
    return any("image/png" in o.get("data", {}) for o in outputs)
