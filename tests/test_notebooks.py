"""Every lesson notebook runs top to bottom headless on this kernel (nbclient), cells read by tag.

One test per notebook, named after its stem (``notebooks/02_kmalloc.ipynb`` ->
``test_02_kmalloc``). Lessons 01 and 03 run twice over: on this kernel, whatever
hooks it offers (here: the syscall tracepoints, since it has no kprobes), and —
marked ``kprobes`` — on a kernel with kprobes, where the notebook must have used
the kprobe/kretprobe path (the guest-kernel tier runs these). Afterwards nothing
may stay attached, and no lab network may be left behind.
"""
import os
import re

import pytest

from attached import Snapshot
from ebpf_lab import _kernel
from ebpf_lab.lessons.hello_kill import syscall_fnname
from ebpf_lab.netlab import lab_objects
from labtest import lab_orphans_since
from nbrun import has_image, outputs_by_tag, run_notebook, text_of

pytestmark = [pytest.mark.notebook, pytest.mark.root]


def needs(*marks):
    """Apply several markers at once: what a notebook needs of the kernel."""
    def apply(test):
        for mark in marks:
            test = mark(test)
        return test
    return apply


tracing = needs(pytest.mark.bpf, pytest.mark.tracepoints, pytest.mark.uprobes)
network = needs(pytest.mark.bpf, pytest.mark.netns, pytest.mark.tc, pytest.mark.slow)

HANDLERS = ("hello_world", "on_kill_entry", "on_kill_return", "get_segments", "get_segments_res",
            "on_openat_entry", "on_openat_return", "on_strtol_entry", "on_strtol_return",
            "on_collatz_entry", "on_collatz_return")


def run_checked(name):
    snap = Snapshot(HANDLERS)
    out = outputs_by_tag(run_notebook(name))
    assert snap.leftovers() == {}, f"{name} left something attached"
    return out


# ------------------------------------------------------------------ 00 setup
@pytest.mark.tracepoints
def test_00_setup():
    out = outputs_by_tag(run_notebook("00_setup.ipynb"))
    assert "bcc tools installed" in text_of(out["tools"])
    doctor = text_of(out["doctor"]) + str(out["doctor"])
    assert "tracepoint" in doctor and "kprobe" in doctor
    assert "kmalloc" in text_of(out["lessons"])


# ------------------------------------------------------------------ 01 hello kill
def check_01(out, expect_kprobes):
    fn = syscall_fnname("kill")
    assert "No module named 'bpfcc'" in text_of(out["bpfcc-import"])
    assert "sys_enter_kill" in text_of(out["search-syscall"]) and fn in text_of(out["search-syscall"])
    assert fn in text_of(out["fnname"])
    tut = text_of(out["tutorial-run"])
    assert re.search(r"\d+\.\d{9}\s+ebl-killer\s+\d+\s+Hello, World!", tut) and "b'" not in tut
    assert "probes still attached after the block: 0" in tut
    assert "trace_pipe" in text_of(out["trace-pipe-readers"])
    assert "attached: 1 tracepoint(s)" in text_of(out["cleanup-guard"])
    assert "attached after the failure: 0 tracepoint(s)" in text_of(out["cleanup-guard"])
    assert "kernel headers: " in text_of(out["doctor"]) and "BCC_KERNEL_SOURCE" in text_of(out["headers"]) \
        or "bcc compiles without help" in text_of(out["headers"])
    assert "bcc and bpftrace agree on all 9 kills of the workload" in text_of(out["bpftrace-compare"])
    assert "-f json -c " in text_of(out["bpftrace"])
    attach = text_of(out["attach"])
    if expect_kprobes:
        assert f"hook used: kprobe:{fn}" in tut
        assert f"kprobe:{fn}" in attach and f"kretprobe:{fn}" in attach and "note:" not in attach
        assert f"already ran this variant, hooks: ['kprobe:{fn}', 'kretprobe:{fn}']" in text_of(out["kprobe-run"])
        assert f"kprobe:{fn} /pid == cpid/" in text_of(out["bpftrace"])
    else:
        assert "hook used: tracepoint:syscalls:sys_enter_kill" in tut
        assert "tracepoint:syscalls:sys_enter_kill" in attach and "note: this kernel has no kprobes" in attach
        assert "has no kprobes" in text_of(out["kprobe-run"])
        assert "tracepoint:syscalls:sys_enter_kill" in text_of(out["bpftrace"]) and "no kprobes" in text_of(out["bpftrace"])
    assert "every kill the workload sent was seen" in text_of(out["check"])
    assert re.search(r"\d+ kill\(\) calls seen; lost: 0", text_of(out["collect"]))
    assert "[closed]" in text_of(out["detach"])
    assert has_image(out["plot"])


@tracing
def test_01_hello_kill():
    check_01(run_checked("01_hello_kill.ipynb"), expect_kprobes=_kernel.kprobes_available())


@tracing
@pytest.mark.kprobes
def test_01_hello_kill_on_kprobes():
    check_01(run_checked("01_hello_kill.ipynb"), expect_kprobes=True)


# ------------------------------------------------------------------ 02 kmalloc
@pytest.mark.tracepoints
def test_02_kmalloc():
    out = outputs_by_tag(run_notebook("02_kmalloc.ipynb"))
    assert "kmem:kmalloc" in text_of(out["tracepoints"])
    assert "bytes_alloc" in text_of(out["format"])
    tut = text_of(out["tutorial-run"])
    assert re.search(r"\d+\.\d{9}\s+\S+\s+\d+\s+bytes_alloc: \d+", tut) and "b'" not in tut
    assert "attached by BPF() itself: 1 tracepoint(s)" in tut
    assert "tracepoints still attached after the block: 0" in tut
    assert "traced kmem:kmalloc" in text_of(out["attach"])
    assert "most frequent bytes_alloc here: " in text_of(out["plot-sizes"])
    assert "-f json -c " in text_of(out["bpftrace"]) and "tracepoint:kmem:kmalloc" in text_of(out["bpftrace"])
    assert "both see the workload's allocations mostly at " in text_of(out["bpftrace-compare"])
    assert re.search(r"trace_pipe: [\d,]+ lines of [\d,]+ events offered", text_of(out["channel-printk"]))
    assert re.search(r"perf buffer: [\d,]+ of [\d,]+ received; lost callback: [\d,]+", text_of(out["channel-perf"]))
    assert re.search(r"ring buffer: [\d,]+ of [\d,]+ received; dropped in the kernel: [\d,]+; "
                     r"arrived after a later event: 0", text_of(out["channel-ringbuf"]))
    maps = text_of(out["maps"])
    assert "bytes_alloc" in maps and "distribution" in maps and "ebl-kmalloc" in maps and " x " in maps
    assert has_image(out["channels-measure"]) and "most events per second into Python: " in text_of(out["channels-measure"])
    collected = text_of(out["collect"])
    assert re.search(r"[\d,]+ allocations; lost: 0; hook: \['tracepoint:kmem:kmalloc'(, 'tracepoint:kmem:kmalloc_node')?"
                     r"(, 'tracepoint:task:task_rename', 'tracepoint:task:task_newtask')?\]", collected)
    assert "[closed]" in text_of(out["detach"])
    for tag in ("plot-sizes", "plot-top", "plot-slack", "aggregation", "page-alloc"):
        assert has_image(out[tag]), f"cell {tag} drew no plot"
    assert "workload's own allocations" in text_of(out["plot-top"])
    assert "application/vnd.jupyter.widget-view+json" in str(out["slider"])
    agg = text_of(out["aggregation"])
    assert re.search(r"in-kernel:\s+0 events to Python", agg)

# ------------------------------------------------------------------ 03 arguments and return values
def check_03(out, expect_kprobes):
    fn = syscall_fnname("openat")
    attach = text_of(out["attach"])
    tut = text_of(out["tutorial-run"])
    assert "blk_insert_cloned_request" in tut
    assert re.search(r"compiled\s+True", tut) and re.search(r"loaded\s+True", tut)
    if expect_kprobes:
        assert f"kprobe:{fn}" in attach and f"kretprobe:{fn}" in attach and "note:" not in attach
        assert "CONFIG_KPROBES" not in tut
        if re.search(r"function_in_kernel\s+True", tut):  # the tutorial's own probes attached for real
            assert re.search(r"attached\s+True", tut) and "attached for real" in tut
    else:
        assert "tracepoint:syscalls:sys_enter_openat" in attach or f"fentry:{fn}" in attach
        assert "note: this kernel has no kprobes" in attach
    assert re.search(r"all \d+ openat\(\) calls of the workload were seen", text_of(out["check"]))
    assert "[closed]" in text_of(out["detach"])
    assert "this lesson's ids: 0 programs" in text_of(out["detach"])
    sig = text_of(out["signature"])
    assert "the tutorial declares: blk_insert_cloned_request(struct request_queue *q" in sig
    if os.path.exists("/sys/kernel/btf/vmlinux"):
        assert "int do_sys_openat2(int dfd, const char *filename, struct open_how *how)" in sig
    else:
        assert "has no BTF" in sig
    kernel = text_of(out["kernel-view"]) + str(out["kernel-view"])
    for h in ("on_openat_entry", "on_openat_return"):
        assert h[:15] in kernel, f"bpftool does not list {h}"
    bt = text_of(out["bpftrace"])
    assert "bpftrace -f json -c" in bt
    if expect_kprobes:
        assert "hook: kprobe + kretprobe on" in bt
    else:
        assert "hook: this kernel has no kprobes" in bt and "sys_enter_openat" in bt
    assert re.search(r"bcc and bpftrace agree on all \d+ openat\(\) calls", text_of(out["bpftrace-compare"]))
    for tag in ("plot-latency", "plot-errors", "uprobe-plot"):
        assert has_image(out[tag]), f"cell {tag} drew no plot"
    assert "uprobe:" in text_of(out["uprobe-steps"]) and "ebl_collatz" in text_of(out["uprobe-steps"])
    assert "True" in text_of(out["uprobe-check"]) and "False" not in text_of(out["uprobe-check"])


@tracing
def test_03_args_return():
    check_03(run_checked("03_args_return.ipynb"), expect_kprobes=_kernel.kprobes_available())


@tracing
@pytest.mark.kprobes
def test_03_args_return_on_kprobes():
    check_03(run_checked("03_args_return.ipynb"), expect_kprobes=True)


# ------------------------------------------------------------------ 04 TC classifier
@network
def test_04_tc_classifier():
    before = set(lab_objects())
    out = outputs_by_tag(run_notebook("04_tc_classifier.ipynb"))
    assert has_image(out["diagram"]) and has_image(out["plot-sweep"])
    from ebpf_lab.lessons.tc_classifier import clang_rejects_implicit_declarations

    if clang_rejects_implicit_declarations():  # clang >= 16: the tutorial's file fails as printed
        assert "error: call to undeclared function 'process_packet'" in text_of(out["build"])
    else:
        assert "warning: implicit declaration of function 'process_packet'" in text_of(out["build"])
    strict = text_of(out["build-strict"])
    assert "error:" in strict and "-Wimplicit-function-declaration" in strict and "[exit status 1]" in strict
    assert "foo.o built from tc_classifier" in text_of(out["build-fixed"])
    attach = text_of(out["tc-attach"])
    assert "tc qdisc add dev" in attach and "ingress bpf direct-action obj" in attach and "foo.o:[test]" in attach
    assert "ping -s 56: 2/2" in text_of(out["tc-ping"]) and "ping -s 500: 0/2" in text_of(out["tc-ping"])
    assert "tc qdisc del dev" in text_of(out["tc-detach"]) and "['noqueue']" in text_of(out["tc-detach"])
    assert "delivery stops at ping -s 458 (skb->len 500 >= limit 500)" in text_of(out["boundary"])
    assert "from pings: 458;  from the headers: 458;  from BPF_PROG_TEST_RUN: 458" in text_of(out["test-run"])
    verifier = text_of(out["verifier-no"])
    assert "-DBOUNDS_CHECK=0" in verifier and "VerifierError:" in verifier and "invalid access to packet" in verifier
    kernel = text_of(out["kernel-view"])
    assert "sched_cls" in kernel and "on_tc_ingress" in kernel and "clsact/ingress" in kernel
    detach = text_of(out["detach"])
    assert "[closed]" in detach
    assert "this lesson's ids: 0 programs" in detach and "this lesson's ids: 0 attachments" in detach
    assert "application/vnd.jupyter.widget-view+json" in str(out["slider"])
    assert "delivery stops at ping -s 758" in text_of(out["slider"])
    assert "left behind by this notebook: nothing" in text_of(out["cleanup"])
    assert lab_orphans_since(before) == []


# ------------------------------------------------------------------ 05 XDP vs TC
@network
@pytest.mark.xdp
def test_05_xdp_vs_tc():
    from ebpf_lab.lessons.xdp_vs_tc import HOOKS

    before = set(lab_objects())
    out = outputs_by_tag(run_notebook("05_xdp_vs_tc.ipynb"))
    assert has_image(out["diagram"]) and has_image(out["plot"])
    assert "trafgen" in text_of(out["trafgen"]) and "csumip(14, 33)" in text_of(out["trafgen"])
    findings = text_of(out["findings"])
    for hook in HOOKS:
        assert hook in findings
    assert "cheapest drop here:" in findings and "the tutorial's claim" in findings
    linear = text_of(out["linear"])  # what the BPF hooks were given, counted by the programs
    assert "TC was given" in linear and "xdp-generic always saw the whole frame linear" in linear, linear
    summary = text_of(out["summary"])
    assert "dropped_pps_median" in summary and "runs" in summary
    assert "left behind by this notebook: nothing" in text_of(out["detach"])
    assert "this lesson's ids: 0 programs" in text_of(out["detach"])
    attach = text_of(out["attach"]) + str(out["attach"])
    assert "on_xdp" in attach and "on_tc_ingress" in attach
    assert "iptables v" in text_of(out["imports"])
    assert lab_orphans_since(before) == []


# ------------------------------------------------------------------ a teacher's edit in JupyterLab
def test_jupyterlab_saves_the_text_form_too(tmp_path, monkeypatch):
    """The lab's own JupyterLab (scripts/jupyter.sh) writes NAME.py when NAME.ipynb is saved (jupytext pairing).

    Run on a copy of the lab (the script, notebooks/jupytext.toml and one notebook pair) so
    that the real notebooks are never touched: an edit saved through the contents API, as
    JupyterLab saves, must reach the .py.
    """
    import json
    import shutil
    import urllib.request
    from pathlib import Path

    from ebpf_lab import nbpair
    from labserver import ROOT, _stop, start_lab

    lab = tmp_path / "lab"
    (lab / "scripts").mkdir(parents=True)
    (lab / "notebooks").mkdir()
    shutil.copy(ROOT / "scripts" / "jupyter.sh", lab / "scripts")
    shutil.copy(ROOT / "scripts" / "jupyterlab-overrides.json", lab / "scripts")  # jupyter.sh installs it
    for name in ("jupytext.toml", "02_kmalloc.ipynb", "02_kmalloc.py"):
        shutil.copy(ROOT / "notebooks" / name, lab / "notebooks")
    monkeypatch.setenv("EBPF_LAB_VENV", os.environ.get("EBPF_LAB_VENV", str(ROOT / ".venv")))
    server = start_lab(tmp_path, root=lab)
    try:
        url = f"{server.base}/api/contents/02_kmalloc.ipynb"
        auth = {"Authorization": f"token {server.token}", "Content-Type": "application/json"}
        with urllib.request.urlopen(urllib.request.Request(url + "?content=1", headers=auth), timeout=30) as r:
            model = json.load(r)
        cell = model["content"]["cells"][0]
        assert cell["cell_type"] == "markdown"
        cell["source"] += "\n\nA sentence a teacher added in JupyterLab."
        body = json.dumps({"type": "notebook", "format": "json", "content": model["content"]}).encode()
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=auth, method="PUT"), timeout=30) as r:
            assert r.status == 200
    finally:
        _stop(server.proc)
    py = Path(lab / "notebooks" / "02_kmalloc.py").read_text(encoding="utf-8")
    assert "# A sentence a teacher added in JupyterLab." in py, "JupyterLab did not write the .py (is jupytext installed?)"
    assert nbpair.drift(str(lab / "notebooks" / "02_kmalloc.py")) == []
    # and JupyterLab wrote the .ipynb byte for byte as `ebpf-lab release` writes it: no churn between the two
    saved = str(lab / "notebooks" / "02_kmalloc.py")
    assert nbpair.write_pair(nbpair.read_pair(saved), saved, check_only=True) == []
