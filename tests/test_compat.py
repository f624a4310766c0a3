"""docs/compatibility.md is written from the tiers' records: a cell says pass, FAIL or skip-with-reason, never more."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {"kernel": "6.12.48+deb13-amd64", "distro": "Debian GNU/Linux 13 (trixie)", "arch": "x86_64", "bcc": "0.31.0",
       "clang": "19.1.7", "bpftrace": "0.23.5", "python": "3.13.5", "kprobes": "yes"}


def _row(passed=0, failed=0, skipped=0, reasons=(), hooks=(), failures=()):
    return {"passed": passed, "failed": failed, "skipped": skipped, "skip_reasons": list(reasons),
            "hooks": list(hooks), "failures": list(failures)}


def test_the_table_says_what_each_tier_proved(tmp_path):
    src = tmp_path / "compat"
    src.mkdir()
    (src / "host.json").write_text(json.dumps({"tier": "host", "environment": dict(ENV, kprobes="no"), "selection": "x",
        "lessons": {"hello-kill": _row(passed=3, skipped=2, reasons=["kprobes: CONFIG_KPROBES is not set"],
                                       hooks=["tracepoint:syscalls:sys_enter_kill"]),
                    "kmalloc": _row(skipped=4, reasons=["tracepoints: tracefs is not mounted"])}}))
    (src / "guest-trixie.json").write_text(json.dumps({"tier": "guest-trixie", "environment": ENV, "selection": "y",
        "lessons": {"hello-kill": _row(passed=5, hooks=["kprobe:__x64_sys_kill"]),
                    "tc-classifier": _row(passed=3, failed=1, failures=["tests/test_tc_classifier.py::test_x"])}}))
    # a second run on the same tier (lesson 06's guest test beside the trixie row) adds to its column
    (src / "guest-trixie--three-ways.json").write_text(json.dumps({"tier": "guest-trixie", "environment": ENV,
        "selection": "z", "lessons": {"hello-kill": _row(passed=1, hooks=["tracepoint:syscalls:sys_enter_kill"]),
                                      "three-ways": _row(passed=4)}}))
    out = tmp_path / "compatibility.md"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "compat_table.py"), "--in", str(src),
                        "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "from 2 tier(s): host, guest-trixie" in r.stdout
    text = out.read_text()
    assert "Do not edit by hand" in text
    rows = {}
    for line in text.split("## Hooks")[0].splitlines():  # the outcome table (the hooks table follows)
        if line.startswith("| 0"):
            rows[line.split("|")[1].strip()] = [c.strip() for c in line.split("|")[2:-1]]
    assert rows["01 hello kill"][0].startswith("pass (3 tests; 2 skipped: kprobes")
    assert rows["01 hello kill"][1] == "pass (6 tests)"
    assert rows["06 three ways"] == ["not run", "pass (4 tests)"]
    assert rows["02 kmalloc"] == ["skip: tracepoints: tracefs is not mounted", "not run"]
    assert rows["04 TC classifier"][1].startswith("**FAIL** (1 of 4: test_x")
    assert "`kprobe:__x64_sys_kill`, `tracepoint:syscalls:sys_enter_kill`" in text
    assert "`kprobe:__x64_sys_kill`" in text and "| guest-trixie | Debian GNU/Linux 13 (trixie) | 6.12.48+deb13-amd64" in text


def test_no_records_leaves_the_table_alone(tmp_path):
    out = tmp_path / "compatibility.md"
    out.write_text("previous\n")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "compat_table.py"), "--in", str(tmp_path / "none"),
                        "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and out.read_text() == "previous\n"
