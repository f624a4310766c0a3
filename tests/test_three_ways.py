"""Lesson 06 (three-ways): the same kill tracer written with bcc, bpftrace and libbpf CO-RE.

On every kernel: each way reports every kill the workload sent; bpftrace's and
libbpf's parent pids (read through BTF / relocated by libbpf) equal what /proc
told the workload; bcc's equal them exactly where bcc compiled against the
running kernel's own headers, and are flagged untrusted where it did not (this
lab's host: fallback headers). Nothing stays loaded: no program, no bpftrace
or loader process. The guest-kernel tier runs this file on a stock Debian
kernel with matching headers, where bcc must be right and trusted.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from attached import bpftool_progs
from ebpf_lab import FeatureUnavailable, LabParameterError
from ebpf_lab.catalog import get_lesson
from ebpf_lab.kernel_headers import headers_info
from ebpf_lab.lessons import three_ways
from ebpf_lab.lessons.three_ways import (
    ThreeWaysLesson,
    build_core,
    core_relocations,
    cost_conclusions,
    environment,
    measure_costs,
)
from labtest import bpf_fds

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.tracepoints, pytest.mark.ringbuf]

REQUIRED = ["method", "sender_pid", "sender_comm", "parent_pid", "target_pid", "signal", "trusted", "why_not_trusted"]


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def assert_nothing_left(lab, fds_before):
    ids = {p.get("id") for p in bpftool_progs()}
    for method, prog_ids in lab.prog_ids.items():
        assert not ids & set(prog_ids), f"{method}'s program(s) {prog_ids} are still loaded"
    for method, child in lab.children.items():
        assert child.proc.returncode is not None and not alive(child.proc.pid), f"the {method} process is still running"
    import gc

    gc.collect()
    now = bpf_fds()
    assert not {k: now[k] - fds_before[k] for k in now if now[k] > fds_before[k]}, "BPF file descriptors left open"


@pytest.fixture(scope="module")
def run():
    """One run of the whole lesson (every way this machine allows), shared by the checks below."""
    fds = bpf_fds()
    lab = ThreeWaysLesson()
    df = lab.run()
    return lab, df, fds


def test_every_way_this_machine_allows_runs(run):
    lab, df, _ = run
    env = environment()
    assert lab.methods == env["methods"]
    assert "bcc" in lab.methods
    if env["btf"]:  # with BTF all three run, unless a tool is missing or too old: then its reason names it
        assert sorted(lab.methods + list(lab.skipped)) == ["bcc", "bpftrace", "libbpf"], lab.skipped
        for m, why in lab.skipped.items():
            assert ("install" in why) if m == "libbpf" else ("bpftrace" in why), (m, why)
    assert lab.skipped == env["why_not"]
    assert set(df["method"].astype(str)) == set(lab.methods)
    assert df.attrs["hooks"] == ["tracepoint:syscalls:sys_enter_kill"]


def test_each_way_reports_the_workloads_kills(run):
    lab, df, _ = run
    procs, kills = lab.truth()
    assert sorted(procs["comm"]) == ["ebl-3w-child", "ebl-3w-sender"]
    sender, child = (int(procs.set_index("comm").loc[c, "pid"]) for c in ("ebl-3w-sender", "ebl-3w-child"))
    assert int(procs.set_index("comm").loc["ebl-3w-child", "proc_parent_pid"]) == sender
    assert len(kills) == 5 and set(kills["sender_pid"]) == {sender, child}
    assert (kills["result"] == 0).all()
    agree = lab.agreement(df).set_index("method")
    for m in lab.methods:
        assert agree.loc[m, "kills_seen"] == 5, f"{m} missed some of the workload's kills:\n{agree}"
        rows = df[(df["method"] == m) & df["sender_pid"].isin([sender, child])]
        got = sorted(zip(rows["sender_pid"], rows["target_pid"], rows["signal"]))
        assert got == sorted(zip(kills["sender_pid"], kills["target_pid"], kills["signal"]))
        assert set(rows["sender_comm"]) == {"ebl-3w-sender", "ebl-3w-child"}


def test_btf_ways_read_the_true_parent(run):
    lab, df, _ = run
    mine = df[df["proc_parent_pid"].notna()]
    for m in ("bpftrace", "libbpf"):
        if m not in lab.methods:
            continue
        rows = mine[mine["method"] == m]
        assert len(rows) == 5
        assert (rows["parent_pid"] == rows["proc_parent_pid"].astype("int64")).all(), rows
        assert rows["trusted"].all() and (rows["why_not_trusted"] == "").all()
        assert rows["matches_proc"].all()


def test_bcc_is_right_where_headers_match_and_flagged_where_not(run):
    lab, df, _ = run
    rows = df[(df["method"] == "bcc") & df["proc_parent_pid"].notna()]
    assert len(rows) == 5
    h = headers_info()
    if h.status == "matching":  # the guest tier's stock kernel
        assert rows["trusted"].all()
        assert (rows["parent_pid"] == rows["proc_parent_pid"].astype("int64")).all(), rows
    else:  # this lab's host: fallback headers
        assert not rows["trusted"].any()
        assert rows["why_not_trusted"].str.contains(h.headers).all()
        assert rows["why_not_trusted"].str.contains("may be read from the wrong place").all()
    # the flag goes with the method on every row, the workload's or not
    assert (df[df["method"] == "bcc"]["trusted"] == (h.status == "matching")).all()


def test_nothing_stays_loaded(run):
    lab, _, fds = run
    assert set(lab.prog_ids) == {m for m in lab.methods if m != "bpftrace"}
    assert_nothing_left(lab, fds)


def test_core_relocations_are_shown(run):
    lab, df, _ = run
    if "libbpf" not in lab.methods:
        pytest.skip("libbpf does not run here")
    rel = df.attrs["libbpf_relocations"]
    fields = set(zip(rel["type"], rel["field"]))
    assert {("struct task_struct", "real_parent"), ("struct task_struct", "tgid")} <= fields, rel
    assert "CO-RE relocating" in lab.libbpf_log


def test_core_object_is_embedded_unchanged_in_the_loader():
    core = build_core()
    assert core.object_in_loader()
    assert os.path.getsize(core.object) > 0 and core.built_on
    again = build_core()
    assert again.cached and again.object_sha256 == core.object_sha256


def test_loader_stops_by_itself():
    core = build_core()
    t0 = time.monotonic()
    r = subprocess.run([core.loader, "-d", "1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert lines[0]["type"] == "ready" and lines[-1]["type"] == "done"
    assert time.monotonic() - t0 < 120
    assert lines[0]["prog_id"] not in {p.get("id") for p in bpftool_progs()}


def test_cli_writes_one_row_per_event_and_method(tmp_path):
    out = tmp_path / "three.csv"
    r = subprocess.run([sys.executable, "-m", "ebpf_lab", "run", "three-ways", "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr + r.stdout
    df = pd.read_csv(out)
    assert set(REQUIRED) <= set(df.columns)
    assert len(df) > 0 and df["trusted"].dtype == bool
    assert set(df["method"]) == set(environment()["methods"])
    assert get_lesson("three-ways") is ThreeWaysLesson


def test_costs_are_measured():
    core = build_core()
    costs = measure_costs(core)
    env = environment()
    assert list(costs["method"]) == env["methods"]
    assert (costs["first_event_s"] > 0).all() and (costs["peak_rss_mb"] > 0).all() and (costs["disk_mb"] > 0).all()
    text = "\n".join(cost_conclusions(costs))
    for m in env["methods"]:
        assert m in text
    lowest = costs.sort_values("disk_mb").iloc[0]["method"]
    assert f"lowest {lowest}" in text


def test_bad_methods_are_refused():
    with pytest.raises(LabParameterError, match="choose among bcc, bpftrace, libbpf"):
        ThreeWaysLesson(methods="perl")
    with pytest.raises(LabParameterError):
        ThreeWaysLesson(methods="")


def test_without_btf_the_btf_ways_are_left_out_with_a_reason(monkeypatch):
    """A kernel without /sys/kernel/btf/vmlinux: bpftrace and libbpf say why they cannot run; bcc still runs."""
    monkeypatch.setattr(three_ways, "BTF_PATH", "/nonexistent/btf/vmlinux")
    env = environment()
    assert env["btf"] is False and env["methods"] == ["bcc"]
    for m in ("bpftrace", "libbpf"):
        assert "no BTF" in env["why_not"][m]
    with pytest.raises(FeatureUnavailable, match="no BTF"):
        ThreeWaysLesson(methods="libbpf")
    with pytest.raises(FeatureUnavailable, match="absent"):
        build_core(btf="/nonexistent/btf/vmlinux")
    fds = bpf_fds()
    lab = ThreeWaysLesson()
    assert set(lab.skipped) == {"bpftrace", "libbpf"}
    df = lab.run()
    assert set(df["method"].astype(str)) == {"bcc"} and len(df[df["proc_parent_pid"].notna()]) == 5
    assert df.attrs["skipped"].keys() == {"bpftrace", "libbpf"}
    assert_nothing_left(lab, fds)


def test_interrupt_during_collect_stops_every_way():
    fds = bpf_fds()
    lab = ThreeWaysLesson()
    lab.build()
    lab.compile()
    lab.load()
    lab.attach()
    pids = {m: c.proc.pid for m, c in lab.children.items()}
    assert all(alive(p) for p in pids.values())
    old = signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(KeyboardInterrupt):
            lab.collect(seconds=30)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert lab.state.value == "closed"
    assert_nothing_left(lab, fds)
