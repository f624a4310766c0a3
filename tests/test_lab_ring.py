"""The lesson programs' shared pieces: lab_ring.h (when to wake the collector) and their license comments.

- every lesson program that submits to a ring buffer decides its wake-ups with lab_ring.h's
  wake_flags() (or wake_flags_every(), which asks the ring less often), names ``events`` by its true position (the verifier refuses any other map), and
  its source() shows the header after it, so that the printout is all the C that is compiled
  and compiles again as a learner's ``program_text=``;
- each program's license comment says truly whether it needs GPL: loaded under a non-GPL
  license, the kernel refuses exactly the programs that call a GPL-only helper.
"""
import glob
import os
import re

import pytest

from ebpf_lab.bpf import capture_stderr, include_flags, lab_bpf_class, program_path

PROGRAMS = os.path.dirname(program_path("lab_ring.h"))
# xdp_vs_tc.bpf.c is lesson 05's own (it submits nothing through lab_ring.h yet); bench_helpers.bpf.c's ring is
# never read (`bench helpers` times a record's cost, PIECE=8): nobody is there to wake
SUBMITTERS = sorted(p for p in glob.glob(os.path.join(PROGRAMS, "*.bpf.c"))
                    if ".ringbuf_submit(" in open(p).read()
                    and not p.endswith(("xdp_vs_tc.bpf.c", "bench_helpers.bpf.c")))


def test_every_ring_submitter_wakes_through_lab_ring():
    assert {os.path.basename(p) for p in SUBMITTERS} >= {"kmalloc.bpf.c", "hello_kill.bpf.c", "args_return.bpf.c",
                                                         "args_return_uprobe.bpf.c", "three_ways.bpf.c"}
    for path in SUBMITTERS:
        text = open(path).read()
        assert '#include "lab_ring.h"' in text, path
        submits = re.findall(r"\.ringbuf_submit\(\w+, ([^;]*)\);", text)
        assert submits and all(s == "wake_flags(sizeof(*e))" or re.fullmatch(r"wake_flags_every\(sizeof\(\*e\), [\w>-]+\)", s)
                               for s in submits), (path, submits)
        assert "bpf_ringbuf_query" not in text, f"{path}: the wake-up block lives in lab_ring.h only"


def test_source_shows_the_header_after_the_program():
    from ebpf_lab.lessons.kmalloc import KmallocLesson

    src = KmallocLesson().source()
    program, _, header = src.partition("// ---- lab_ring.h, which the program above includes")
    assert '#include "lab_ring.h"' in program and "static __always_inline u64 wake_flags" in header
    assert header.count("#ifndef LAB_RING_H") == 1


def _bcc():
    from ebpf_lab._bcc import import_bcc
    from ebpf_lab.kernel_headers import prepare

    prepare()
    return import_bcc()


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
@pytest.mark.ringbuf
def test_the_printed_source_compiles_and_loads_as_the_learners_text(no_bpf_leak):
    from ebpf_lab.lessons.kmalloc import KmallocLesson

    lab = KmallocLesson(program_text=KmallocLesson().source())
    try:
        lab.compile()
        lab.load()
    finally:
        lab.detach()


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
@pytest.mark.ringbuf
def test_the_wrong_map_position_is_refused(no_bpf_leak):
    """wake_flags() names `events` by position: pointing it at another map must not load."""
    bcc = _bcc()
    text = open(program_path("three_ways.bpf.c")).read().replace("#define EVENTS_MAP_POSITION 1",
                                                                "#define EVENTS_MAP_POSITION 2")
    b = bcc.BPF(text=text, cflags=include_flags())
    try:
        with capture_stderr() as log, pytest.raises(Exception):
            b.load_func("on_kill_entry", bcc.BPF.TRACEPOINT)
        assert "bpf_ringbuf_query" in log() or "map" in log(), log()
    finally:
        b.cleanup()


# (program, -D flags, function, needs GPL): what each program's closing license comment says
LICENSES = [
    ("kmalloc.bpf.c", [], "on_kmalloc", False),
    ("kmalloc.bpf.c", ["-DCOMM_CACHE"], "on_kmalloc", False),   # the name cache too
    ("hello_kill.bpf.c", ["-DHOOK_TRACEPOINT"], "on_kill_entry", False),
    ("three_ways.bpf.c", [], "on_kill_entry", True),        # bpf_get_current_task, bpf_probe_read_kernel
    ("args_return.bpf.c", ["-DHOOK_TRACEPOINT"], "on_openat_entry", True),  # bpf_probe_read_user_str
    ("kmalloc_maps.bpf.c", [], "tracepoint__kmem__kmalloc", True),  # bpf_get_stackid
    ("kmalloc_channels.bpf.c", ["-DCHANNEL_RINGBUF"], "tracepoint__kmem__kmalloc", False),
    ("kmalloc_channels.bpf.c", ["-DCHANNEL_PRINTK"], "tracepoint__kmem__kmalloc", True),
    ("bench_helpers.bpf.c", ["-DPIECE=6"], "on_kmalloc", False),
    ("bench_helpers.bpf.c", ["-DPIECE=8", "-DRING_PAGES=4"], "on_kmalloc", False),  # the ring record
    ("bench_helpers.bpf.c", ["-DPIECE=5"], "on_kmalloc", True),   # bpf_get_current_task
]


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
@pytest.mark.ringbuf
@pytest.mark.parametrize("name,flags,fn,needs_gpl", LICENSES, ids=[f"{n}{''.join(f)}" for n, f, _, _ in LICENSES])
def test_license_comment_is_true(no_bpf_leak, name, flags, fn, needs_gpl):
    text = open(program_path(name)).read()
    comment = text[text.rindex("/* License:"):]
    says_none = "None of the helpers used here is GPL-only" in comment or "uses none" in comment \
        or "are not" in comment
    assert "GPL-only" in comment, comment
    bcc = _bcc()
    # bcc's footer.h takes the license from BPF_LICENSE, defined in the text (never through cflags)
    # the lab's BPF class: no auto-attach of TRACEPOINT_PROBE at construction (load_func below says it all)
    b = lab_bpf_class(bcc)(text="#define BPF_LICENSE Proprietary\n" + text, cflags=flags + include_flags() + ["-DONLY_PID=1"])
    try:
        with capture_stderr() as log:
            try:
                b.load_func(fn, bcc.BPF.TRACEPOINT)
                refused = False
            except Exception:
                refused = True
        assert refused == needs_gpl, log()
        if refused:
            assert "GPL-restricted" in log()
        else:
            assert says_none, comment
    finally:
        b.cleanup()
