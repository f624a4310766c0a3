"""Lesson 02 on the running kernel: load, trigger the workload, assert on the DataFrame."""
import contextlib
import io
import os
import re
import signal
import subprocess
import threading

import numpy as np
import pandas as pd
import pytest

from labtest import bpf_fds
from ebpf_lab import CompileError, LessonStateError, VerifierError, _kernel
from ebpf_lab._workloads import binary
from ebpf_lab.lessons.kmalloc import (KmallocLesson, kmalloc_node_separate, list_tracepoints, log2_histogram,
                                      log2l_bounds, tracepoint_format)
from ebpf_lab.tutorial import run_trace_printk

pytestmark = [pytest.mark.root, pytest.mark.tracepoints]

ITER = 3000
# Kernels before 6.1 report node-specific allocations through kmem:kmalloc_node, which the lesson traces too.
# Where the kernel has task:task_rename and task:task_newtask, the lesson attaches them too: they keep the program's
# name cache right.
RENAME = (["tracepoint:task:task_rename", "tracepoint:task:task_newtask"]
          if all(_kernel.tracepoint_exists("task", e) for e in ("task_rename", "task_newtask")) else [])
HOOKS = ["tracepoint:kmem:kmalloc"] + (["tracepoint:kmem:kmalloc_node"] if kmalloc_node_separate() else []) + RENAME


@pytest.fixture(scope="module")
def df():
    return KmallocLesson(min_bytes=128, iterations=ITER).run()


def test_columns_are_documented_and_typed(df):
    assert list(df.columns) == list(KmallocLesson.columns)
    assert str(df["time"].dtype) == "datetime64[ns]"
    assert df["pid"].dtype == np.int32 and df["bytes_alloc"].dtype == np.int64
    assert isinstance(df["comm"].dtype, pd.CategoricalDtype)


def test_workload_allocations_present(df):
    mine = df[df.pid == df.attrs["workload_pid"]]
    # every open() of /proc/self/stat allocates a seq_file buffer well above 128 bytes;
    # before exec() the child still bears its parent's name, hence the comm filter
    mine = mine[mine.comm == "ebl-kmalloc"]
    assert len(mine) >= ITER
    assert (mine.call_site_sym.astype(str) != "").all()


def test_names_follow_exec_and_prctl_in_order():
    """The program copies a task's name once and reuses it (current_comm in kmalloc.bpf.c): a rename must show at once.

    A process allocates under its first name, execs kmalloc_storm (the kernel renames it "kmalloc_storm")
    and that renames itself "ebl-kmalloc" (prctl): in time order, no row may carry a name after a later one.
    """
    import sys
    import time

    from ebpf_lab.engine import Workload

    storm = binary("kmalloc_storm")
    code = ("import os, sys\nsys.stdin.read(1)\n"
            "for _ in range(300):\n    open('/proc/self/stat').read()\n"
            f"os.execv({storm!r}, [{storm!r}, '2000'])\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             preexec_fn=lambda: os.sched_setaffinity(0, {0}))
    try:
        first = open(f"/proc/{child.pid}/comm").read().strip()
        lab = KmallocLesson(min_bytes=0, only_pid=child.pid)
        lab.compile(), lab.load(), lab.attach()
        lab.workload = Workload("exec then prctl", child, time.monotonic())
        child.stdin.write(b"g")
        child.stdin.close()
        df = lab.collect(seconds=None, quiet=True)
    finally:
        child.kill()
        child.wait()
    names = df.sort_values("ts_ns", kind="stable").comm.astype(str).tolist()
    runs = [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]]
    assert runs in ([first, "kmalloc_storm", "ebl-kmalloc"], [first, "ebl-kmalloc"]), runs[:10]
    assert names.count(first) >= 300 and names.count("ebl-kmalloc") >= 2000
    assert lab.counts()["seen"] == len(df)


def _fork_as(pid: int, body) -> int:
    """Fork a child that runs ``body`` then exits, asking the kernel for process id ``pid`` (root:
    /proc/sys/kernel/ns_last_pid); returns the id it got (another fork may take ``pid`` first)."""
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(pid - 1))
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        try:
            os.sched_setaffinity(0, {0})
            body()
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    return child


def _allocate(n: int) -> None:
    for _ in range(n):
        with open("/proc/self/stat") as f:
            f.read()


def test_a_new_task_with_an_old_thread_id_gets_its_own_name():
    """The name cache is keyed by thread id (current_comm in kmalloc.bpf.c): a new task that gets the id of one
    that ended must not show the old one's name. Both run on CPU 0, the second without exec or rename."""
    import ctypes
    import time

    def first() -> None:
        ctypes.CDLL(None).prctl(15, b"ebl-first", 0, 0, 0)  # PR_SET_NAME
        time.sleep(0.05)  # past the program's settling time after a rename: the name is cached from here on
        _allocate(300)

    mine = open("/proc/self/comm").read().strip()
    pid_max = int(open("/proc/sys/kernel/pid_max").read())
    for attempt in range(3):
        pid = int(open("/proc/sys/kernel/ns_last_pid").read()) + 5000 + 1000 * attempt
        pid = 300 + pid % (pid_max - 400)
        if os.path.exists(f"/proc/{pid}"):
            continue
        lab = KmallocLesson(min_bytes=0, only_pid=pid)
        try:
            lab.compile(), lab.load(), lab.attach()
            if _fork_as(pid, first) != pid or _fork_as(pid, lambda: _allocate(300)) != pid:
                continue  # another process took the id in between: try another
            df = lab.collect(seconds=0.3, quiet=True)
        finally:
            lab.detach()
        names = df.sort_values("ts_ns", kind="stable").comm.astype(str).tolist()
        runs = [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]]
        assert runs in (["ebl-first", mine], [mine, "ebl-first", mine]), runs[:10]
        assert names.count("ebl-first") >= 300 and names[-300:] == [mine] * 300
        return
    pytest.fail("three times another process took the chosen process id between ns_last_pid and fork")


def test_each_row_names_the_tracepoint_that_saw_it(df):
    mine = df[(df.pid == df.attrs["workload_pid"]) & (df.comm == "ebl-kmalloc")]
    seen = set(mine.event.astype(str))
    if kmalloc_node_separate():
        # before 6.1, seq_file's buffer (kvmalloc -> kmalloc_node, one per open() of /proc/self/stat)
        # arrives through kmem:kmalloc_node: without that hook the lesson would miss it
        assert (mine.event == "kmalloc_node").sum() >= ITER, mine.event.value_counts()
        assert seen <= {"kmalloc", "kmalloc_node"}
    else:
        assert seen == {"kmalloc"}


def test_threshold_and_slack(df):
    assert (df.bytes_alloc >= 128).all()
    assert (df.slack >= 0).all() and (df.slack == df.bytes_alloc - df.bytes_req).all()


def test_attrs_name_the_hook_and_losses(df):
    assert df.attrs["hooks"] == HOOKS
    assert df.attrs["lost"] == 0
    kc = df.attrs["kernel_counts"]
    # counted after the last drain, so other processes' later allocations may add up
    assert kc["reported"] >= len(df) and kc["seen"] >= kc["reported"]


def test_step_by_step_and_histogram(no_bpf_leak):
    lab = KmallocLesson(min_bytes=1024, iterations=ITER)
    funcs = lab.compile()
    assert list(funcs.function) == (["on_kmalloc"] + (["on_kmalloc_node"] if kmalloc_node_separate() else [])
                                    + (["on_task_rename", "on_task_newtask"] if RENAME else []))
    loaded = lab.load()
    assert loaded.loc[0, "verifier"] == "accepted" and loaded.loc[0, "xlated_insns"] > 0
    hooks = lab.attach()
    assert list(hooks.hook) == HOOKS
    with pytest.raises(LessonStateError):
        lab.attach()
    wl = lab.trigger()
    df = lab.collect()
    hist = lab.histogram()
    assert (df.bytes_alloc >= 1024).all()
    assert hist["count"].sum() >= len(df) and lab.counts()["reported"] >= len(df)
    assert (hist.low >= 1024).all()
    assert (df.pid == wl.pid).sum() >= ITER
    lab.detach()
    lab.detach()  # idempotent


def test_bucket_bounds_are_the_ones_bcc_prints():
    """log2l_bounds(k) == the range bcc's print_log2_hist() prints for bucket k."""
    from bcc.table import _print_log2_hist

    for k in range(1, 33):
        vals = [0] * 64
        vals[k] = 1
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            _print_log2_hist(vals, "bytes", True)
        low, high = map(int, re.search(r"(\d+) -> (\d+)\s*: 1 ", out.getvalue()).groups())
        assert log2l_bounds(k) == (low, high), k
    # bpf_log2l(v) = floor(log2 v) + 1; 0 and 1 share bucket 1
    assert list(log2_histogram([0, 1, 2, 3, 4, 4095, 4096, 8191, 8192]).itertuples(index=False, name=None)) == [
        (1, 0, 1, 2), (2, 2, 3, 2), (3, 4, 7, 1), (12, 2048, 4095, 1), (13, 4096, 8191, 2), (14, 8192, 16383, 1)]


def test_histogram_labels_hold_the_sizes_they_counted(no_bpf_leak):
    """The in-kernel histogram and the streamed events of one process, over the same allocations.

    The workload waits on stdin until the program (filtered to its pid) is
    attached, and has exited before collecting ends: the map and the stream saw
    exactly the same allocations. Each in-kernel bucket must hold as many events
    as lie inside its own label, and every event must lie in some label.
    """
    proc = subprocess.Popen([binary("kmalloc_storm"), str(ITER), "wait"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        with KmallocLesson(min_bytes=0, only_pid=proc.pid) as lab:
            lab.compile(), lab.load(), lab.attach()
            proc.stdin.write(b"g")
            proc.stdin.close()
            assert proc.wait(timeout=300) == 0
            df = lab.collect(seconds=1.0, quiet=True)
            hist = lab.histogram()
            kc = lab.counts()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert kc["lost"] == 0 and kc["reported"] == kc["seen"] == len(df) == hist["count"].sum()
    assert (df.pid == proc.pid).all()
    sizes = df["bytes_alloc"].to_numpy()
    for row in hist.itertuples():
        inside = int(((sizes >= row.low) & (sizes <= row.high)).sum())
        assert inside == row.count, f"bucket {row.bucket} labelled {row.low:,}-{row.high:,} counted {row.count}, " \
                                    f"but {inside} events lie in that range"
    pd.testing.assert_frame_equal(hist, log2_histogram(sizes))
    # A known size: every open() of /proc/self/stat allocates its one-page seq_file buffer.
    assert (sizes == 4096).sum() >= ITER
    assert hist[(hist.low <= 4096) & (hist.high >= 4096)][["low", "high"]].values.tolist() == [[4096, 8191]]


def test_in_kernel_aggregation_streams_nothing(no_bpf_leak):
    with KmallocLesson(stream=False, iterations=ITER) as lab:
        lab.compile(), lab.load(), lab.attach(), lab.trigger()
        df = lab.collect()
        assert len(df) == 0
        assert lab.histogram()["count"].sum() >= ITER


def test_page_alloc_variant():
    df = KmallocLesson(event="mm_page_alloc", min_bytes=0).run(seconds=1.0)
    assert df.attrs["hooks"] == ["tracepoint:kmem:mm_page_alloc"] + RENAME
    assert len(df) > 0 and set(df.event.astype(str)) == {"mm_page_alloc"}
    assert (df.bytes_alloc % 4096 == 0).all()


def test_only_pid_filter():
    df = KmallocLesson(only_pid=1, iterations=100).run(seconds=1.0)
    assert (df.pid == 1).all()


def test_clang_15_and_later_quoted_lines_map_to_the_learners_line():
    """clang 15+ quotes the offending line behind a gutter ("   12 | code"); the line is still the learner's."""
    lab = KmallocLesson(program_text="int on_kmalloc(struct tracepoint__kmem__kmalloc *args)\n{\n    return args->no_such_field;\n}\n")
    log = ("/virtual/main.c:12:18: error: no member named 'no_such_field' in 'struct tracepoint__kmem__kmalloc'\n"
           "   12 |     return args->no_such_field;\n      |            ~~~~  ^\n1 error generated.")
    text = lab._explain_compile(log)
    assert text.startswith("your program:3:18: error: no member named 'no_such_field'")
    assert "    3 |     return args->no_such_field;" in text and "12 |" not in text


def test_learner_c_that_does_not_compile_points_at_the_line(no_bpf_leak):
    bad = "int on_kmalloc(struct tracepoint__kmem__kmalloc *args)\n{\n    return args->no_such_field;\n}\n"
    with pytest.raises(CompileError) as e:
        KmallocLesson(program_text=bad).compile()
    assert "your program:3:" in str(e.value) and "no_such_field" in str(e.value)


def test_learner_c_the_verifier_refuses_carries_the_log(no_bpf_leak):
    bad = ("BPF_HASH(counts, int, u64);\n"
           "int on_kmalloc(struct tracepoint__kmem__kmalloc *args)\n{\n"
           "    int k = 0;\n    u64 *v = counts.lookup(&k);\n    return *v;  /* NULL never checked */\n}\n")
    lab = KmallocLesson(program_text=bad)
    lab.compile()
    with pytest.raises(VerifierError) as e:
        lab.load()
    assert "map_value_or_null" in e.value.log
    lab.detach()


def test_interrupt_during_collect_detaches():
    lab = KmallocLesson(iterations=10_000_000)
    lab.compile(), lab.load(), lab.attach(), lab.trigger()
    wl = lab.workload
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        lab.collect(seconds=30)
    assert lab.state.value == "closed" and lab.bpf is None
    assert wl.done()
    assert bpf_fds()["perf_event"] == 0


def test_tutorial_program_runs_as_written(capsys):
    def attach(b):
        b.attach_tracepoint(tp="kmem:kmalloc", fn_name="tracepoint__kmem__kmalloc")

    lab = KmallocLesson(iterations=2000)
    out = run_trace_printk("kmalloc_tutorial.bpf.c", attach, seconds=3, max_lines=10,
                           workload=lambda: lab.start_workload().proc)
    assert len(out) == 10
    assert out.msg.str.match(r"bytes_alloc: \d+").all()
    assert (out.msg.str.extract(r"(\d+)")[0].astype(int) >= 128).all()
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 10 and "b'" not in printed[0]


def test_listing_and_format():
    tps = list_tracepoints(r"^kmem:")
    assert "kmem:kmalloc" in set(tps.tracepoint)
    fmt = tracepoint_format("kmem", "kmalloc")
    assert {"call_site", "bytes_req", "bytes_alloc", "gfp_flags"} <= set(fmt.field)


def test_compile_builds_the_workload_before_anything_is_attached(monkeypatch):
    """A first run's cold build of the storm must not run under the attached, system-wide program."""
    from ebpf_lab import _workloads

    asked = []
    monkeypatch.setattr(_workloads, "binary", lambda name, extra_flags=(): asked.append(name) or binary(name))
    lab = KmallocLesson(min_bytes=128)
    try:
        lab.compile()
        assert asked == ["kmalloc_storm"]
        assert lab.state.name == "COMPILED" and not any(h.attached for h in lab.hooks)
    finally:
        lab.detach()
