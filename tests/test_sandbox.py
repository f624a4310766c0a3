"""The child interpreter that runs a learner's Python function (ebpf_lab/exercises/_sandbox.py).

Pure code (no kernel): the time limit bounds the learner's code alone, not the child's start.
"""
from __future__ import annotations

import time

from ebpf_lab.exercises import _sandbox

SLOW = "import time\ndef f(x):\n    time.sleep(x)\n    return x * 2\n"


def test_returns_the_value():
    out = _sandbox.run_function(SLOW, "f", (0.0,), timeout=30)
    assert out.status == "ok" and out.value == 0.0


def test_the_limit_is_the_learners_code_not_the_imports(monkeypatch):
    # A limit shorter than starting Python and importing pandas here still lets a quick function return:
    # the clock starts when the child says it is ready.
    t0 = time.monotonic()
    out = _sandbox.run_function(SLOW, "f", (0.0,), timeout=0.05)
    assert out.status == "ok", out
    assert time.monotonic() - t0 > 0.05  # the child's start took longer than the limit: it was not counted


def test_a_function_that_overruns_is_stopped():
    out = _sandbox.run_function(SLOW, "f", (60.0,), timeout=1.0)
    assert out.status == "timeout" and "1 s" in out.message


def test_a_child_that_never_starts_is_reported(monkeypatch):
    monkeypatch.setattr(_sandbox, "STARTUP_TIMEOUT_S", 0.001)
    out = _sandbox.run_function(SLOW, "f", (0.0,), timeout=30)
    assert out.status == "crashed" and "did not start" in out.message
