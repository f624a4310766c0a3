"""Small workloads of the exercises: child processes that wait for a go, so pids are known first."""
from __future__ import annotations

import subprocess
import sys
from typing import List

from ..errors import LabError

_PRELUDE = r'''
import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(15, COMM, 0, 0, 0)  # PR_SET_NAME
if sys.stdin.buffer.read(1) != b"g":
    sys.exit(2)
'''


class Paused:
    """``python -c SCRIPT`` named ``comm``, paused until :meth:`go`; its stdout is returned by go()."""

    def __init__(self, script: str, comm: str) -> None:
        code = f"COMM = {comm.encode()!r}\n" + _PRELUDE + script
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.pid = self.proc.pid
        self.comm = comm

    def go(self, timeout: float = 30.0) -> str:
        out, err = self.proc.communicate(b"g", timeout=timeout)
        if self.proc.returncode != 0:
            raise LabError(f"the workload {self.comm} failed: {err.decode(errors='replace').strip()[-300:]}")
        return out.decode()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Sleepers:
    """``n`` idle processes (``sleep``) to be signalled; killed by :meth:`stop`."""

    def __init__(self, n: int) -> None:
        self.procs: List[subprocess.Popen] = [subprocess.Popen(["sleep", "120"]) for _ in range(n)]
        self.pids = [p.pid for p in self.procs]

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
