"""Lesson 06 inside the guest kernel: the CO-RE tool built on the host, loaded unchanged here.

Not collected by default (its name does not start with ``test_``): the host
side, test_guest_three_ways.py, builds the CO-RE object and loader on the host
kernel, shares them with the guest over 9p and names them in
EBPF_LAB_THREE_WAYS_FOREIGN_CORE; vm/run-guest.sh then runs this file (with
tests/test_three_ways.py and the notebook test) in the guest. The same check
runs on the host afterwards for the build the guest made.
"""
from __future__ import annotations

import hashlib
import os
import platform

import pytest

from ebpf_lab.lessons.three_ways import ThreeWaysLesson, load_core_build

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.tracepoints, pytest.mark.ringbuf]


def check_foreign_core(path: str) -> dict:
    """Run a CO-RE build made on another kernel here, unchanged; it must read /proc's parents.

    Returns facts for the tier report: the kernels and the relocated offsets.
    """
    core = load_core_build(path)
    here = platform.release()
    assert core.built_on != here, f"{path} was built on this very kernel ({here}): nothing is proven"
    with open(core.object, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == core.object_sha256, "the object changed on its way here"
    assert core.object_in_loader(), "the loader does not carry the object unchanged"
    lab = ThreeWaysLesson(methods="libbpf", core_build=core)
    df = lab.run()
    procs, kills = lab.truth()
    mine = df[df["proc_parent_pid"].notna()]
    assert len(mine) == len(kills) == 5, df
    assert (mine["parent_pid"] == mine["proc_parent_pid"].astype("int64")).all(), mine
    rel = df.attrs["libbpf_relocations"]
    tp = rel[rel["type"] == "struct task_struct"].set_index("field")
    assert {"real_parent", "tgid"} <= set(tp.index), rel
    return {"built_on": core.built_on, "ran_on": here,
            "offsets": {f: (int(tp.loc[f, "offset_in_object"]), int(tp.loc[f, "offset_on_this_kernel"]))
                        for f in ("real_parent", "tgid")}}


def test_core_built_on_the_host_runs_here_unchanged():
    path = os.environ.get("EBPF_LAB_THREE_WAYS_FOREIGN_CORE", "")
    assert path, "EBPF_LAB_THREE_WAYS_FOREIGN_CORE names no build (run this file through test_guest_three_ways.py)"
    facts = check_foreign_core(path)
    print(f"CO-RE object built on {facts['built_on']} ran unchanged on {facts['ran_on']}; "
          + ", ".join(f"task_struct.{f}: offset {a} in the object -> {b} here" for f, (a, b) in facts["offsets"].items()))
