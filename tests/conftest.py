"""Markers -> skips that name the missing feature; leak checks shared by the tests.

A test declares what it needs with markers (registered in pyproject.toml):
``root``, ``bpf``, ``tracepoints``, ``kprobes``, ``uprobes``, ``netns``, ``tc``,
``xdp``, ``notebook``, ``guest``, ``vm``, ``browser``. A test whose need is not
met here is skipped with a reason naming the feature. Under CI (CI=true) only
kprobes may be missing — they are run in the guest-kernel tier instead — and
any other missing feature fails the test: CI must not pass by skipping.
"""
from __future__ import annotations

import functools
import os
import shutil
import sys
from typing import Callable, Dict, List, Tuple

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from labtest import bpf_fds  # noqa: E402  (shared helpers live in tests/labtest.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Features that may be missing in CI because another tier covers them.
CI_MAY_SKIP = {"kprobes"}


@functools.lru_cache(maxsize=None)
def _bcc_ok() -> Tuple[bool, str]:
    try:
        from ebpf_lab._bcc import import_bcc

        import_bcc()
        return True, ""
    except Exception as e:
        return False, f"bcc: {e}"


def _root() -> Tuple[bool, str]:
    return (os.geteuid() == 0, "root: these tests load BPF programs (run with sudo)")


@functools.lru_cache(maxsize=None)
def _tracepoints() -> Tuple[bool, str]:
    from ebpf_lab import _kernel

    if os.geteuid() == 0:
        _kernel.ensure_kernel_fs()
    return (_kernel.tracefs() is not None, "tracepoints: tracefs is not mounted")


@functools.lru_cache(maxsize=None)
def _kprobes() -> Tuple[bool, str]:
    from ebpf_lab import _kernel

    return (_kernel.kprobes_available(),
            "kprobes: CONFIG_KPROBES is not set on this kernel (no kprobe_events in tracefs); "
            "run in the guest-kernel tier")


@functools.lru_cache(maxsize=None)
def _uprobes() -> Tuple[bool, str]:
    from ebpf_lab import _kernel

    t = _kernel.tracefs()
    return (bool(t) and os.path.exists(os.path.join(t, "uprobe_events")), "uprobes: no uprobe_events in tracefs")


def _tool(name: str, feature: str) -> Callable[[], Tuple[bool, str]]:
    return lambda: (shutil.which(name) is not None, f"{feature}: `{name}` is not installed")


def _module(name: str, feature: str) -> Callable[[], Tuple[bool, str]]:
    def check() -> Tuple[bool, str]:
        try:
            __import__(name)
            return True, ""
        except ImportError:
            return False, f"{feature}: Python module {name} is not installed"

    return check


CHECKS: Dict[str, List[Callable[[], Tuple[bool, str]]]] = {
    "root": [_root],
    "bpf": [_root, _bcc_ok],
    "tracepoints": [_root, _bcc_ok, _tracepoints],
    "kprobes": [_root, _bcc_ok, _kprobes],
    "uprobes": [_root, _bcc_ok, _uprobes],
    "ringbuf": [_root, _bcc_ok],
    "netns": [_root, _tool("ip", "netns")],
    "tc": [_root, _tool("tc", "tc")],
    "xdp": [_root, _tool("ip", "xdp")],
    "notebook": [_module("nbclient", "notebook")],
    "guest": [_tool("qemu-system-x86_64", "guest"), _tool("debootstrap", "guest")],
    "vm": [_tool("vagrant", "vm")],
    "browser": [_module("playwright", "browser"), lambda: (bool(shutil.which("chromium")), "browser: chromium is not installed")],
}


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """A test that declares no need of the kernel, root or a tool is pure code: the ``unit`` tier
    (``./test --unit``, no root, seconds).

    Order: the host's tests first, then the guest tier (QEMU), then the lab VM's. The guest images
    that ``./test`` builds in the background (5-10 min each when cold) are then built while the host
    tier runs, not waited for."""
    for item in items:
        if not any(m.name in CHECKS or m.name == "slow" for m in item.iter_markers()):
            item.add_marker(pytest.mark.unit)
    items.sort(key=lambda item: 2 if item.get_closest_marker("vm") else 1 if item.get_closest_marker("guest") else 0)


def pytest_configure(config: pytest.Config) -> None:
    import compat  # per-lesson outcomes and hooks of this tier, for docs/compatibility.md

    compat.pytest_configure(config)


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers():
        for check in CHECKS.get(mark.name, []):
            ok, reason = check()
            if ok:
                continue
            feature = reason.split(":", 1)[0]
            if IN_CI and feature not in CI_MAY_SKIP and mark.name not in CI_MAY_SKIP:
                pytest.fail(f"CI must run this test, but a feature is missing here — {reason}", pytrace=False)
            pytest.skip(reason)


# ------------------------------------------------------------- leak checks
@pytest.fixture
def no_bpf_leak():
    """Fails the test if it leaves BPF programs, maps or probes open in this process."""
    before = bpf_fds()
    yield
    import gc

    gc.collect()
    after = bpf_fds()
    leaked = {k: after[k] - before[k] for k in after if after[k] > before[k]}
    assert not leaked, f"left open after the test: {leaked}"


@pytest.fixture(scope="session")
def repo_root() -> str:
    return ROOT




# ------------------------------------------------------- the lab network
@pytest.fixture
def lab_net():
    """A fresh LabNetwork (two namespaces + veth) for one test; asserts it is gone afterwards."""
    from ebpf_lab.netlab import LabNetwork

    with LabNetwork() as net:
        yield net
    assert net.leftovers() == [], f"lab network left behind: {net.leftovers()}"


# ------------------------------------------------------------ tier reports
# A passing test's output is hidden by `pytest -ra`. Tests that run others
# elsewhere (the guest-kernel tier, tests/guest/) report what ran there through
# this fixture; the lines are printed in a section at the end of the run.
_TIER_REPORT = pytest.StashKey[List[str]]()


@pytest.fixture
def tier_report(pytestconfig: pytest.Config) -> List[str]:
    """A list to append summary lines to; printed under "tier reports" at the end."""
    return pytestconfig.stash.setdefault(_TIER_REPORT, [])


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    lines = config.stash.get(_TIER_REPORT, [])
    if lines:
        terminalreporter.section("tier reports")
        for line in lines:
            terminalreporter.write_line(line)
