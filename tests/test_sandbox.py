"""The child interpreter that runs a learner's Python function (ebpf_lab/exercises/_sandbox.py).

No kernel needed, but root: the child is recorded in the lab's registry (/run/ebpf-lab), as the grader,
which runs as root, does. The time limit bounds the learner's code alone, not the child's start.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest

from ebpf_lab.exercises import _sandbox

pytestmark = [pytest.mark.root]

SLOW = "import time\ndef f(x):\n    time.sleep(x)\n    return x * 2\n"


def test_returns_the_value():
    out = _sandbox.run_function(SLOW, "f", (0.0,), timeout=30)
    assert out.status == "ok" and out.value == 0.0


def test_the_limit_is_the_learners_code_not_the_start(monkeypatch):
    # A child whose start takes 3 s (a sitecustomize that sleeps: Python runs it before the child's
    # imports) and a learner's function that returns at once, with a limit of 2 s: the clock starts
    # when the child says it is ready, so the slow start is not counted against the learner.
    site = tempfile.mkdtemp(prefix="ebl-test-sandbox-")
    try:
        os.chmod(site, 0o755)  # the child runs as nobody when the grader is root
        with open(os.path.join(site, "sitecustomize.py"), "w") as f:
            f.write("import time\ntime.sleep(3)\n")
        os.chmod(os.path.join(site, "sitecustomize.py"), 0o644)
        monkeypatch.setenv("PYTHONPATH", site)
        t0 = time.monotonic()
        out = _sandbox.run_function(SLOW, "f", (0.0,), timeout=2.0)
        assert time.monotonic() - t0 >= 3.0  # the slow start really happened
        assert out.status == "ok", out
    finally:
        shutil.rmtree(site, ignore_errors=True)


def test_a_function_that_overruns_is_stopped():
    out = _sandbox.run_function(SLOW, "f", (60.0,), timeout=1.0)
    assert out.status == "timeout" and "1 s" in out.message


def test_a_child_that_never_starts_is_reported(monkeypatch):
    monkeypatch.setattr(_sandbox, "STARTUP_TIMEOUT_S", 0.001)
    out = _sandbox.run_function(SLOW, "f", (0.0,), timeout=30)
    assert out.status == "crashed" and "did not start" in out.message
