"""The doctor tells the truth about this kernel; the command line works end to end."""
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from ebpf_lab import _kernel, _registry

CLI = [sys.executable, "-m", "ebpf_lab"]


def cli(*args, check=True, timeout=120):
    r = subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def doc():
    from ebpf_lab import doctor

    return doctor()


EXPECTED = ["kernel version", "architecture", "root / capabilities", "bpf() syscall", "BPF JIT", "BTF", "tracefs", "debugfs",
            "bpffs", "kernel headers", "bcc", "bcc compiles here", "clang", "llc", "tc", "bpftool", "bpftrace",
            "bpftrace BTF in tracepoints", "kprobe", "kretprobe",
            "tracepoint", "raw tracepoint", "uprobe", "uretprobe", "perf buffer", "ring buffer", "TC (sched_cls)",
            "XDP", "fentry"]


@pytest.mark.root
@pytest.mark.bpf
def test_doctor_rows_and_fixes(doc):
    assert list(doc.columns) == ["group", "check", "ok", "status", "detail", "fix"]
    assert list(doc.check) == EXPECTED
    bad = doc[~doc.ok | (doc.status != "ok")]
    assert (bad.fix.str.len() > 20).all(), "every failing row carries its fix or fallback"


@pytest.mark.root
@pytest.mark.bpf
def test_doctor_agrees_with_the_kernel(doc):
    row = doc.set_index("check")
    assert bool(row.loc["kprobe", "ok"]) == _kernel.kprobes_available()
    assert bool(row.loc["tracepoint", "ok"])
    if not _kernel.kprobes_available():
        assert "tracepoint" in row.loc["kprobe", "fix"]
    from ebpf_lab.kernel_headers import headers_info

    assert row.loc["kernel headers", "status"] == {"matching": "ok"}.get(headers_info().status, headers_info().status)


@pytest.mark.root
@pytest.mark.bpf
def test_fentry_is_tried_not_assumed(doc):
    """This kernel advertises fentry (BTF, bcc's support_kfunc) yet refuses it: the doctor must load one."""
    row = doc.set_index("check").loc["fentry"]
    assert row.detail.startswith("attached") == bool(row.ok)
    if not row.ok:
        assert row.fix


@pytest.mark.root
@pytest.mark.bpf
def test_doctor_cli_json():
    data = json.loads(cli("doctor", "--json").stdout)
    assert [r["check"] for r in data] == EXPECTED
    text = cli("doctor").stdout
    assert "kprobe" in text and "->" in text or all(r["ok"] for r in data)


def test_lessons_listed():
    out = cli("lessons").stdout
    assert "kmalloc" in out and "notebooks/02_kmalloc.ipynb" in out


@pytest.mark.root
@pytest.mark.tracepoints
@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_run_writes_the_frame(tmp_path, ext):
    out = tmp_path / f"k.{ext}"
    r = cli("run", "kmalloc", "--set", "min_bytes=256", "--set", "iterations=2000", "--out", str(out))
    assert "tracepoint:kmem:kmalloc" in r.stdout and "events lost: 0" in r.stdout
    df = pd.read_csv(out) if ext == "csv" else pd.read_parquet(out)
    assert len(df) > 2000 and (df.bytes_alloc >= 256).all()


@pytest.mark.root
@pytest.mark.tracepoints
def test_run_no_workload_collects_the_system(tmp_path):
    out = tmp_path / "k.csv"
    # the rest of the system: here, a shell of this test's own making (an idle VM may allocate nothing)
    busy = subprocess.Popen(["sh", "-c", "for i in $(seq 400); do cat /proc/self/stat >/dev/null; sleep 0.005; done"])
    try:
        r = cli("run", "kmalloc", "--no-workload", "--seconds", "2", "--set", "min_bytes=0", "--out", str(out))
    finally:
        busy.kill()
        busy.wait()
    assert "workload:" not in r.stdout  # no built-in workload was started
    df = pd.read_csv(out)
    # what the test's own shell did was collected (other lab runs on a shared machine may show up too: their
    # ebl-kmalloc storms are not this run's workload, so the test does not look for their absence)
    assert len(df) > 0 and {"sh", "cat"} & set(df["comm"].astype(str))


@pytest.mark.parametrize("args, words", [
    (["run", "kmalloc", "--set", "min_bytes=-5"], "out of range"),
    (["run", "kmalloc", "--set", "nope=1"], "unknown parameter"),
    (["run", "kmalloc", "--set", "min_bytes"], "expected NAME=VALUE"),
    (["run", "nosuchlesson"], "no lesson 'nosuchlesson'"),
    (["run", "kmalloc", "--out", "x.xlsx"], ".csv or .parquet"),
])
def test_bad_input_one_clear_error(args, words):
    r = cli(*args, check=False)
    assert r.returncode == 1
    assert words in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2


def test_not_root_is_told_what_to_do():
    if os.geteuid() != 0:
        pytest.skip("already not root")
    code = ("import os; os.setuid(65534)\nfrom ebpf_lab.lessons.kmalloc import KmallocLesson\n"
            "try:\n KmallocLesson().compile()\nexcept Exception as e: print(type(e).__name__, e)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "PrivilegeError" in r.stdout and "sudo" in r.stdout


@pytest.mark.root
@pytest.mark.netns
def test_reaper_and_cleanup_remove_what_a_killed_process_left():
    name = f"ebl-t-{os.getpid()}"
    code = (f"import subprocess, time\nfrom ebpf_lab import _registry\n"
            f"subprocess.run(['ip','netns','add','{name}'], check=True)\n"
            f"_registry.register('netns', name='{name}')\nprint('ready', flush=True)\ntime.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    assert os.path.exists(f"/run/netns/{name}")
    p.send_signal(signal.SIGKILL)
    p.wait()
    deadline = time.monotonic() + 30  # the reaper notices the owner's death (slower on a busy machine)
    while os.path.exists(f"/run/netns/{name}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/run/netns/{name}")
    assert not os.path.exists(os.path.join(_registry.RUN_DIR, f"{p.pid}.json"))
    out = cli("cleanup").stdout  # the reaper already removed ours; other dead lab processes may have left theirs
    assert name not in out and ("nothing of the lab was left" in out or "removed" in out)


@pytest.mark.root
@pytest.mark.netns
def test_cleanup_command_after_reaper_also_died(tmp_path):
    name = f"ebl-u-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    os.makedirs(_registry.RUN_DIR, exist_ok=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    with open(os.path.join(_registry.RUN_DIR, f"{dead.pid}.json"), "w") as f:
        json.dump([{"kind": "netns", "name": name}], f)
    r = cli("cleanup")
    assert f"netns name={name}" in r.stdout
    assert not os.path.exists(f"/run/netns/{name}")


def test_a_non_x86_machine_is_named_with_what_to_do():
    from ebpf_lab.diagnose import _arch_row

    assert _arch_row("x86_64")["ok"]
    row = _arch_row("aarch64")
    assert not row["ok"] and row["status"] == "warn"
    assert "aarch64: not x86-64" in row["detail"] and "_ringbuf.py" in row["detail"] and "x86-64" in row["fix"]


@pytest.mark.parametrize("bcc_ver, kernel, known", [("0.18.0", "5.15.0-91-generic", True),
                                                     ("0.26.0", "6.1.0-27-amd64", False)])
def test_a_bcc_that_cannot_compile_is_named(monkeypatch, bcc_ver, kernel, known):
    """The canary compile runs in a child; when it fails, a known-broken bcc/kernel pair is named as such."""
    from ebpf_lab import diagnose

    monkeypatch.setattr(diagnose.sys, "executable", "/bin/false")  # a child that fails like a broken bcc
    row = diagnose._canary_row(bcc_ver, kernel=kernel, timeout=30)
    assert not row["ok"] and row["check"] == "bcc compiles here" and f"bcc {bcc_ver}" in row["detail"]
    assert ("known broken" in row["fix"] and "#3993" in row["fix"]) == known
    assert "vagrant up" in row["fix"]


def test_the_canary_compiles_with_this_machines_bcc():
    from ebpf_lab import diagnose
    from ebpf_lab._bcc import bcc_version

    row = diagnose._canary_row(bcc_version())
    assert row["ok"], row
