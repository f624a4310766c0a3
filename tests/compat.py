"""pytest plugin: record, per lesson, what this tier proved — for docs/compatibility.md.

Every test of a lesson (by module, or by the lesson whose ``attach()`` ran
during the test) adds its outcome to that lesson's row; the hooks the lesson
really attached are recorded from ``Lesson.attach`` itself. At the end of the
session one JSON file is written per tier:

    $EBPF_LAB_COMPAT_DIR/<tier>.json   (<tier>--<part>.json with EBPF_LAB_COMPAT_PART)

only when EBPF_LAB_COMPAT_DIR is set (``./test`` sets it to artifacts/compat;
the guest tier to its results share), so that a quick run of one test file
never overwrites a tier's record
with the tier's name (EBPF_LAB_TIER, default "host" or "guest-<suite>"), the
kernel, distribution, bcc, clang, bpftrace and Python versions, and per
lesson: passed / failed / skipped counts, skip reasons, hooks. The table is
made from these files by ``scripts/compat_table.py`` (``./test`` runs it at
the end); never by hand.
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from typing import Any, Dict, List, Set

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: test module -> lesson (tests that exercise several lessons are attributed through the attach() record)
MODULE_LESSON = {
    "test_hello_kill": "hello-kill",
    "test_kmalloc": "kmalloc",
    "test_args_return": "args-return",
    "test_tc_classifier": "tc-classifier",
    "test_xdp_vs_tc": "xdp-vs-tc",
    "test_three_ways": "three-ways",
    "test_notebook_06": "three-ways",
}
#: notebook tests: test name fragment -> lesson
NOTEBOOK_LESSON = {"00": "setup", "01": "hello-kill", "02": "kmalloc", "03": "args-return", "04": "tc-classifier",
                   "05": "xdp-vs-tc", "06": "three-ways"}

_attached: Set[tuple] = set()          # (lesson id, hook) attached during the current test
_lessons_in_test: Set[str] = set()


def _version(cmd: List[str], rx: str = r"(\d+\.\d+(\.\d+)?)") -> str:
    if shutil.which(cmd[0]) is None:
        return "not installed"
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    m = re.search(rx, out.stdout + out.stderr)
    return m.group(1) if m else "?"


def _distro() -> str:
    try:
        with open("/etc/os-release") as f:
            kv = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
        return kv.get("PRETTY_NAME", "?").strip('"')
    except OSError:
        return "?"


def environment() -> Dict[str, str]:
    try:
        from ebpf_lab._bcc import bcc_version

        bcc = bcc_version() or "not found"
    except Exception as e:  # noqa: BLE001 - recorded, never fatal
        bcc = f"not found ({e.__class__.__name__})"
    try:
        from ebpf_lab import _kernel

        kprobes = "yes" if _kernel.kprobes_available() else "no"
    except Exception:  # noqa: BLE001
        kprobes = "?"
    return {"kernel": platform.release(), "distro": _distro(), "arch": platform.machine(), "bcc": bcc,
            "clang": _version(["clang", "--version"]), "bpftrace": _version(["bpftrace", "--version"]),
            "python": platform.python_version(), "kprobes": kprobes}


def tier_name() -> str:
    if os.environ.get("EBPF_LAB_TIER"):
        return os.environ["EBPF_LAB_TIER"]
    if os.environ.get("EBPF_LAB_GUEST"):
        return "guest-" + os.environ.get("EBPF_LAB_GUEST_SUITE", "bookworm")
    return "host"


def _lessons_of(item: pytest.Item) -> List[str]:
    mod = item.module.__name__.rsplit(".", 1)[-1] if getattr(item, "module", None) else ""
    found = set(_lessons_in_test)
    if mod in MODULE_LESSON:
        found.add(MODULE_LESSON[mod])
    if item.get_closest_marker("notebook"):
        m = re.search(r"(?:notebook_|test_)(\d\d)", item.name) or re.search(r"(\d\d)_", item.name)
        if m and m.group(1) in NOTEBOOK_LESSON:
            found.add(NOTEBOOK_LESSON[m.group(1)])
    return sorted(found)


class CompatRecorder:
    def __init__(self) -> None:
        self.rows: Dict[str, Dict[str, Any]] = {}
        self._orig_attach = None

    # --------------------------------------------------------- record hooks
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        try:
            from ebpf_lab.engine import Lesson
        except Exception:  # noqa: BLE001 - nothing to record without the package
            return
        orig = Lesson.attach

        def attach(lesson: Any, *a: Any, **kw: Any) -> Any:
            out = orig(lesson, *a, **kw)
            _lessons_in_test.add(lesson.id)
            for h in getattr(lesson, "hooks", []):
                _attached.add((lesson.id, h.name))
            return out

        self._orig_attach = orig
        Lesson.attach = attach  # type: ignore[method-assign]

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        _attached.clear()
        _lessons_in_test.clear()

    def _row(self, lesson: str) -> Dict[str, Any]:
        return self.rows.setdefault(lesson, {"passed": 0, "failed": 0, "skipped": 0, "skip_reasons": [],
                                             "hooks": [], "failures": []})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" and not (report.when == "setup" and (report.skipped or report.failed)):
            return
        item_lessons = getattr(report, "_ebl_lessons", None)
        if not item_lessons:
            return
        for lesson in item_lessons:
            row = self._row(lesson)
            if report.passed:
                row["passed"] += 1
            elif report.skipped:
                row["skipped"] += 1
                reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
                reason = reason.removeprefix("Skipped: ")
                if reason not in row["skip_reasons"]:
                    row["skip_reasons"].append(reason)
            else:
                row["failed"] += 1
                row["failures"].append(report.nodeid)
            for les, hook in sorted(_attached):
                if les == lesson and hook not in row["hooks"]:
                    row["hooks"].append(hook)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any):
        outcome = yield
        rep = outcome.get_result()
        rep._ebl_lessons = _lessons_of(item)  # type: ignore[attr-defined]

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self._orig_attach is not None:
            from ebpf_lab.engine import Lesson

            Lesson.attach = self._orig_attach  # type: ignore[method-assign]
        out_dir = os.environ.get("EBPF_LAB_COMPAT_DIR")
        if not self.rows or not out_dir:
            return
        tier = tier_name()
        data = {"tier": tier, "environment": environment(), "lessons": self.rows,
                "selection": " ".join(session.config.invocation_params.args)}
        try:
            os.makedirs(out_dir, exist_ok=True)
            # EBPF_LAB_COMPAT_PART: a second run on the same tier (lesson 06's guest test beside its
            # suite's row) writes beside the first; scripts/compat_table.py merges a tier's parts
            part = os.environ.get("EBPF_LAB_COMPAT_PART", "")
            path = os.path.join(out_dir, f"{tier}--{part}.json" if part else f"{tier}.json")
            with open(path + ".tmp", "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            os.replace(path + ".tmp", path)
        except OSError:
            pass  # a read-only checkout: the table is a report, never a reason to fail a run


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("ebl-compat"):
        config.pluginmanager.register(CompatRecorder(), "ebl-compat")
