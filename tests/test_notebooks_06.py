"""Notebook 06 (three ways) runs top to bottom headless on this kernel; nothing stays loaded.

Its sentences are computed from the doctor and the data, so the test checks the
facts they must state here: which headers bcc used, whether bcc's parent pids
were trusted, that bpftrace's and libbpf's equal /proc's, and that the costs
were measured and concluded from.
"""
import re

import pytest

from ebpf_lab.kernel_headers import headers_info
from ebpf_lab.lessons.three_ways import environment
from labtest import processes
from nbrun import has_image, outputs_by_tag, run_notebook, text_of

pytestmark = [pytest.mark.notebook, pytest.mark.root, pytest.mark.bpf, pytest.mark.tracepoints, pytest.mark.ringbuf]


def loader_or_bpftrace_running():
    return processes(lambda pid, argv: any(a.endswith((b"three_ways_loader", b"three_ways.bt")) for a in argv))


def test_06_three_ways():
    before = set(loader_or_bpftrace_running())
    out = outputs_by_tag(run_notebook("06_three_ways.ipynb"))
    env = environment()
    doctor = text_of(out["doctor"])
    h = headers_info()
    if h.status == "matching":
        assert "headers made for this very kernel" in doctor
    else:
        assert f"bcc compiles against the {h.headers} headers instead" in doctor
    assert "BTF: present" in doctor if env["btf"] else "BTF: ABSENT" in doctor
    assert "tracepoint syscalls:sys_enter_kill: present" in text_of(out["hook"])
    assert "BPF_CORE_READ(task, real_parent, tgid)" in text_of(out["source-libbpf"])
    assert "curtask->real_parent->tgid" in text_of(out["source-bpftrace"])
    said = text_of(out["truth-say"])
    for m in env["methods"]:
        assert re.search(rf"^{m}: saw 5 of 5 kills", said, re.M), said
    for m in ("bpftrace", "libbpf"):
        if m in env["methods"]:
            assert f"{m}: saw 5 of 5 kills; its parent pid equals /proc's in 5 of 5." in said
    if h.status == "matching":
        assert "bcc: saw 5 of 5 kills; its parent pid equals /proc's in 5 of 5." in said
    else:
        assert "bcc: saw 5 of 5 kills; its parent pids are NOT trusted here" in said
    if "libbpf" in env["methods"]:
        assert "struct task_struct" in text_of(out["relocations"])
        assert "$ " in text_of(out["build"]) and "bpftool gen skeleton" in text_of(out["build"])
    assert "[closed]" in text_of(out["detach"])
    concl = text_of(out["plot-costs"])
    assert "time from nothing to the first event" in concl and "peak memory" in concl
    for tag in ("plot-parents", "plot-costs"):
        assert has_image(out[tag]), f"cell {tag} drew no plot"
    assert set(loader_or_bpftrace_running()) <= before, "a loader or bpftrace process was left running"
