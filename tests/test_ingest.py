"""Every event arrives, and collected data reaches its file: the ring buffer collector and `run --out`.

No test here asserts a duration or a rate (the machine is shared and its
speed varies): each asserts what the workload or the kernel guarantees.
"""
import io
import os
import subprocess
import sys
import time
import uuid

import numpy as np
import pandas as pd
import pytest

from ebpf_lab import _ksyms
from ebpf_lab._workloads import binary
from ebpf_lab.engine import Workload
from ebpf_lab.errors import LabParameterError
from ebpf_lab.lessons.kmalloc import KmallocLesson
from ebpf_lab.output import OutputError, check_out_path, write_csv, write_frame

CLI = [sys.executable, "-m", "ebpf_lab"]
EVENT_BYTES = 64  # struct alloc_event (56 bytes) + the ring's 8-byte header


def _storm(iterations, cpu=None):
    """The kmalloc storm, stopped before its loop until _go(): the lesson attaches knowing its pid."""
    pre = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None and (os.cpu_count() or 1) > cpu else None
    return subprocess.Popen([binary("kmalloc_storm"), str(iterations), "wait"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, preexec_fn=pre)


def _go(p):
    p.stdin.write("g")
    p.stdin.close()


@pytest.mark.root
@pytest.mark.tracepoints
def test_storm_collection_reports_exactly_the_workloads_events(no_bpf_leak):
    """A storm's every allocation, counted: rows == the kernel's count, and each iteration's three kmallocs.

    Exact under any load because of sizing, not speed: the storm's events all
    fit in the ring at once (asserted below from the kernel's own count), so
    no event can be dropped even if the collector never ran until the storm
    ended. Each iteration opens, reads and closes /proc/self/stat; the read
    allocates the seq_file buffer (4096 bytes, seq_read_iter) exactly once.
    """
    n = 30_000  # 90,000 events, 5.8 MB: the default ring holds 8 MiB
    storm = _storm(n, cpu=0)
    try:
        lab = KmallocLesson(min_bytes=0, only_pid=storm.pid)
        lab.compile(), lab.load(), lab.attach()
        lab.workload = Workload("storm", storm, time.monotonic())
        _go(storm)
        df = lab.collect(quiet=True)
        counts = lab.counts()
        lab.detach()
    finally:
        storm.kill()
        storm.wait()
    assert counts["seen"] * EVENT_BYTES <= df.attrs["ring_bytes"], "premise: the whole storm fits in the ring"
    assert df.attrs["lost"] == 0 and counts["lost"] == 0
    assert len(df) == counts["reported"] == counts["seen"]
    assert (df.pid == storm.pid).all()
    buffers = df[(df.bytes_req == 4096) & (df.call_site_sym == "seq_read_iter")]
    assert len(buffers) == n
    assert df.ts_ns.is_monotonic_increasing  # one CPU, one ring: in order


@pytest.mark.root
@pytest.mark.tracepoints
def test_the_program_wakes_the_collector_at_its_high_water_mark(no_bpf_leak, monkeypatch):
    """With a 60 s timeout, only the program's wake-up can end the wait: it must come when 1 MiB waits."""
    monkeypatch.setattr(KmallocLesson, "poll_interval", 60.0)
    mark_events = (KmallocLesson.params["ring_pages"].default * 4096 // 8) // EVENT_BYTES  # WAKE_BYTES, in events
    storm = _storm(30_000)  # 90,000 events: past the mark, within the ring
    try:
        with KmallocLesson(min_bytes=0, only_pid=storm.pid) as lab:
            lab.compile(), lab.load(), lab.attach()
            lab.workload = Workload("storm", storm, time.monotonic())
            _go(storm)
            df = lab.collect(max_events=mark_events, quiet=True)
    finally:
        storm.kill()
        storm.wait()
    assert len(df) == mark_events
    assert df.attrs["collector_wakeups"] >= 1


@pytest.mark.root
@pytest.mark.tracepoints
def test_a_tiny_ring_loses_events_and_says_so(no_bpf_leak, monkeypatch):
    """One page of ring and a collector that does not drain before the storm ends: losses are counted and told."""
    monkeypatch.setattr(KmallocLesson, "poll_interval", 60.0)
    storm = _storm(5_000)  # 15,000 events; one page holds 64
    try:
        with KmallocLesson(min_bytes=0, only_pid=storm.pid, ring_pages=1) as lab:
            lab.compile(), lab.load(), lab.attach()
            lab.workload = Workload("storm", storm, time.monotonic())
            _go(storm)
            storm.wait()  # the whole storm happens before the first drain
            df = lab.collect(seconds=0.5, quiet=True)
            counts = lab.counts()
    finally:
        storm.kill()
        storm.wait()
    assert counts["seen"] == 15_000
    assert df.attrs["lost"] == counts["lost"] > 0
    assert len(df) + counts["lost"] == counts["seen"]
    assert f"{counts['lost']:,} events were lost" in df.attrs["summary"] and "ring_pages" in df.attrs["summary"]


def test_kernel_symbols_match_kallsyms():
    if os.geteuid() != 0:
        pytest.skip("kallsyms addresses read as 0 unless root")
    syms, name_at, line_end, data = _ksyms.table()
    assert (np.diff(syms.astype(np.uint64)) >= 0).all() and len(syms) > 1000
    # the address of a function and an address inside it both name it; 0 (page allocations) is ''
    line = next(ln for ln in data.split(b"\n") if ln.endswith(b" T seq_read_iter"))
    a = int(line.split(b" ", 1)[0], 16)
    assert _ksyms.names(np.array([a, a + 1, 0], dtype=np.uint64)) == ["seq_read_iter", "seq_read_iter", ""]


# ------------------------------------------------------------------ writers
def _frame(n=70_000):
    rng = np.random.default_rng(7)
    ts = np.arange(n, dtype=np.int64) * 997 + 1_700_000_000 * 10**9
    return pd.DataFrame({
        "time": ts.astype("datetime64[ns]"),
        "ts_ns": ts,
        "cpu": rng.integers(0, 4, n).astype(np.int16),
        "neg": rng.integers(-10**12, 10**12, n),
        "comm": pd.Categorical.from_codes(rng.integers(0, 5, n), ["a", "with,comma", 'with"quote', "", "x y"]),
        "call_site": rng.integers(0, 2**64 - 1, n, dtype=np.uint64),
        "f": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
        "ok": rng.random(n) < 0.5,
    })


def test_csv_writer_reads_back_as_the_frame():
    df = _frame()
    df.loc[5, "neg"] = np.iinfo(np.int64).min
    df.loc[6, "call_site"] = np.uint64(0)
    buf = io.BytesIO()
    write_csv(df, buf, chunk=10_000)  # several chunks
    back = pd.read_csv(io.BytesIO(buf.getvalue()), keep_default_na=False, na_values={"f": [""]},
                       dtype={"comm": str, "call_site": np.uint64})
    assert list(back.columns) == list(df.columns) and len(back) == len(df)
    assert (pd.to_datetime(back.time).to_numpy() == df.time.to_numpy()).all()
    for c in ("ts_ns", "cpu", "neg", "call_site"):
        assert (back[c].to_numpy() == df[c].to_numpy()).all(), c
    assert (back.comm.to_numpy() == df.comm.astype(str).to_numpy()).all()
    assert np.allclose(back.f.to_numpy(), df.f.to_numpy(), equal_nan=True)
    assert (back.ok.to_numpy() == df.ok.to_numpy()).all()


def test_csv_writer_times_far_apart_missing_and_full_width_numbers():
    """Chunks whose times span years or hold NaT (no per-second index: the sorted fallback), and integer
    columns whose every value has all its digits (no leading-zero pass), read back exactly."""
    rng = np.random.default_rng(11)
    n = 5_000
    t = pd.Series(pd.to_datetime(rng.integers(0, 2**62, n)))
    t.iloc[[0, 17, n - 1]] = pd.NaT
    df = pd.DataFrame({"t": t, "full": rng.integers(10**15, 10**16, n),
                       "mixed": np.where(rng.random(n) < 0.5, 7, 10**17)})
    buf = io.BytesIO()
    write_csv(df, buf, chunk=999)
    back = pd.read_csv(io.BytesIO(buf.getvalue()))
    assert (pd.to_datetime(back.t).isna() == df.t.isna()).all()
    assert (pd.to_datetime(back.t).dropna().to_numpy() == df.t.dropna().to_numpy()).all()
    for c in ("full", "mixed"):
        assert (back[c].to_numpy() == df[c].to_numpy()).all(), c


def test_out_path_is_refused_before_any_work(tmp_path):
    with pytest.raises(LabParameterError, match="does not exist"):
        check_out_path(str(tmp_path / "no" / "x.csv"))
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(LabParameterError, match="is a folder"):
        check_out_path(str(tmp_path / "d.csv"))
    with pytest.raises(LabParameterError, match=".csv or .parquet"):
        check_out_path(str(tmp_path / "x.xlsx"))
    assert check_out_path(str(tmp_path / "x.parquet")) == str(tmp_path / "x.parquet")
    assert not list(tmp_path.glob(".ebpf-lab-probe-*"))  # the writability probe leaves nothing


def test_write_is_atomic_and_a_failed_write_keeps_the_data(tmp_path, monkeypatch):
    import ebpf_lab.output as output

    df = _frame(1000)
    out = tmp_path / "x.csv"
    assert write_frame(df, str(out)) == str(out)
    assert len(pd.read_csv(out)) == 1000 and [p.name for p in tmp_path.iterdir()] == ["x.csv"]

    real = output._write_to

    def full_disk(frame, path, fmt):
        if os.path.basename(path).startswith(".y.csv."):
            real(frame.iloc[:10], path, fmt)  # half a file, then the disk is full
            raise OSError(28, "No space left on device")
        return real(frame, path, fmt)

    monkeypatch.setattr(output, "_write_to", full_disk)
    with pytest.raises(OutputError, match="No space left on device") as e:
        write_frame(df, str(tmp_path / "y.csv"))
    assert not (tmp_path / "y.csv").exists()  # never half a file under the asked name
    saved = e.value.saved
    assert saved and os.path.dirname(saved) == str(tmp_path) and saved in str(e.value)
    assert len(pd.read_csv(saved)) == 1000
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.root
@pytest.mark.tracepoints
def test_cli_full_disk_keeps_the_collected_rows(tmp_path):
    """`run --out` onto a 64 KiB filesystem: the check passes, the write fails, the rows land beside."""
    small = tmp_path / f"ebl-full-{uuid.uuid4().hex[:8]}"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "ebl-test-tmpfs", str(small)], check=True)
    try:
        r = subprocess.run(CLI + ["run", "kmalloc", "--set", "iterations=3000", "--set", "min_bytes=0",
                                  "--out", str(small / "k.csv")], capture_output=True, text=True, timeout=180,
                           cwd=tmp_path)
    finally:
        subprocess.run(["umount", str(small)], check=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "No space left on device" in r.stderr and "saved to" in r.stderr
    saved = r.stderr.split("saved to ", 1)[1].split(" instead", 1)[0]
    assert os.path.dirname(saved) == str(tmp_path)
    df = pd.read_csv(saved)
    assert len(df) >= 3 * 3000 and (df.comm == "ebl-kmalloc").sum() >= 3000


WRAP_PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ringbuf_wrap.bpf.c")


@pytest.mark.root
@pytest.mark.tracepoints
def test_records_that_wrap_around_the_ring_arrive_whole(no_bpf_leak):
    """A 48-byte stride does not divide the ring: records straddle its end and must be read whole."""
    from ebpf_lab._bcc import import_bcc
    from ebpf_lab._bpfsys import map_info
    from ebpf_lab._ringbuf import RingReader
    from ebpf_lab.engine import _lab_bpf_class
    from ebpf_lab.kernel_headers import prepare

    prepare()
    storm = _storm(3000)
    b = _lab_bpf_class(import_bcc())(src_file=WRAP_PROGRAM, cflags=[f"-DONLY_PID={storm.pid}"])
    reader = None
    try:
        b.attach_tracepoint(tp="kmem:kmalloc", fn_name="on_kmalloc")
        tab = b["events"]
        dtype = np.dtype([("seq", "<u8"), ("triple", "<u8"), ("inverse", "<u8"), ("pid", "<u8"), ("tail", "<u8")])
        reader = RingReader(tab.map_fd, int(map_info(tab.map_fd)["max_entries"]), dtype)
        _go(storm)
        got = []
        while storm.poll() is None:
            got.append(reader.drain())
        got.append(reader.drain())
        recs = np.concatenate(got)
        made, dropped = (int(v.value) for v in b["counts"].values())
    finally:
        storm.kill()
        storm.wait()
        if reader is not None:
            reader.close()
        b.cleanup()
    assert made == 9000 and len(recs) + dropped == made
    assert reader.wrapped > 0  # the straddling path ran
    seq = recs["seq"]
    assert (np.diff(seq.astype(np.int64)) > 0).all()
    assert (recs["triple"] == seq * np.uint64(3)).all() and (recs["inverse"] == ~seq).all()
    assert (recs["pid"] == storm.pid).all() and (recs["tail"] == np.uint64(0x5A5A5A5A5A5A5A5A)).all()


@pytest.mark.root
@pytest.mark.tracepoints
@pytest.mark.ringbuf
def test_bench_helpers_times_every_piece(no_bpf_leak):
    """`ebpf-lab bench helpers` loads every piece of programs/bench_helpers.bpf.c and prints the kernel's time for each.

    Only that each piece loaded, ran under the storm and was timed is asserted, never a figure."""
    from ebpf_lab.bench import PIECES

    r = subprocess.run(CLI + ["bench", "helpers", "--rounds", "1", "--events", "15000"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    table = r.stdout.split("over count\n", 1)[1]
    for name in PIECES:
        line = next((ln for ln in table.splitlines() if ln.startswith(name + " ")), None)
        assert line is not None, (name, r.stdout)
        ns = line[len(name):].split()[0]
        assert ns.isdigit() and int(ns) > 0, line
