"""Start the lab's JupyterLab the way a user does, for the browser and security tests.

:func:`lab_server` runs ``scripts/jupyter.sh --port N`` (what ``./lab`` runs
after set-up) on a free loopback port, reads the URL with the token that the
script prints, waits until the server answers, and on teardown stops the
whole process group and checks that the port is closed again. A leftover
server would be a root shell on the port: it is killed on success, failure
and interrupt (an ``atexit`` hook backs up the fixture's teardown).
"""
from __future__ import annotations

import atexit
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import pytest

ROOT = Path(__file__).resolve().parents[1]
URL_LINE = re.compile(r"JupyterLab at (http://(127\.0\.0\.1):(\d+)/lab\?token=([0-9a-f]+))")


@dataclass
class LabServer:
    proc: subprocess.Popen
    url: str
    host: str
    port: int
    token: str
    log: Path

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: str, timeout: float = 5.0) -> int:
    """The HTTP status of a GET (no redirects followed, errors included; 0: no answer)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):  # noqa: D401
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return 0  # nothing answered


def port_listening(port: int) -> bool:
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
    return bool(out.strip())


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def start_lab(log_dir: Path, port: Optional[int] = None, timeout: float = 90.0,
              root: Path = ROOT) -> LabServer:
    """Run ``<root>/scripts/jupyter.sh --port N``; it serves ``<root>/notebooks``."""
    port = port or free_port()
    log = log_dir / f"jupyter-{port}.log"
    fh = open(log, "wb")
    # A new session: the script execs jupyter, whose kernels are its children;
    # the whole group is stopped on teardown.
    proc = subprocess.Popen(["bash", str(root / "scripts" / "jupyter.sh"), "--port", str(port)],
                            cwd=root, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    fh.close()
    atexit.register(_stop, proc)
    deadline = time.monotonic() + timeout
    m = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"scripts/jupyter.sh exited with {proc.returncode}:\n{log.read_text()}")
        m = m or URL_LINE.search(log.read_text(errors="replace"))
        if m and http_status(f"http://127.0.0.1:{port}/api") == 200:
            return LabServer(proc, m.group(1), m.group(2), int(m.group(3)), m.group(4), log)
        time.sleep(0.5)
    _stop(proc)
    raise RuntimeError(f"JupyterLab did not answer on port {port} within {timeout:.0f} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory) -> Iterator[LabServer]:
    if os.geteuid() != 0:
        pytest.skip("root: scripts/jupyter.sh serves the lab as root (BPF needs it)")
    server = start_lab(tmp_path_factory.mktemp("lab"))
    try:
        yield server
    finally:
        _stop(server.proc)
        assert not port_listening(server.port), f"JupyterLab still listens on {server.port} after stopping"
