"""``ebpf-lab bench ingest``: what tracing costs the traced, and whether it loses events.

A compiled storm (``workloads/kmalloc_storm.c``: open/read/close of a /proc
file in a loop, pinned to CPU 0) makes kmalloc events; each way of getting them
to Python runs in its own fresh process pinned to CPU 1, in the same run:

- ``untraced``: the storm alone (its speed is the 100 %)
- ``tutorial``: ``bpf_trace_printk`` + the tutorial's ``trace_fields()`` loop
- ``bcc-perf``: ``BPF_PERF_OUTPUT`` + one Python callback per event (bcc's examples)
- ``bcc-ring``: ``BPF_RINGBUF_OUTPUT`` + one Python callback per event
- ``ebpf-lab``: lesson 02's program and the lab's collector (no wake-ups, bulk numpy drain)

For each: the storm's speed as a % of untraced, events lost against the kernel's
own count of the storm's events, collector CPU per event, and the collector
process's peak RSS. Then the memory of a 1M-row lesson DataFrame. Figures are
printed, not asserted: a noisy machine moves them.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

METHODS = ["untraced", "tutorial", "bcc-perf", "bcc-ring", "ebpf-lab"]


def _pin(cpu: int) -> None:
    try:
        if os.cpu_count() and os.cpu_count() > cpu:  # type: ignore[operator]
            os.sched_setaffinity(0, {cpu})
    except OSError:
        pass


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _start_storm(iterations: int) -> subprocess.Popen:
    from ._workloads import binary

    exe = binary("kmalloc_storm")
    return subprocess.Popen([exe, str(iterations), "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, preexec_fn=lambda: _pin(0))


def _go(storm: subprocess.Popen) -> None:
    assert storm.stdin is not None
    storm.stdin.write("g")
    storm.stdin.close()


def _storm_result(storm: subprocess.Popen) -> Tuple[int, float]:
    out = storm.stdout.read() if storm.stdout else ""
    storm.wait()
    n, secs = out.split()
    return int(n), float(secs)


def _plain_bpf(output: int, pid: int) -> Any:
    from ._bcc import import_bcc
    from .bpf import lab_bpf_class, program_path
    from .kernel_headers import prepare

    prepare()
    bcc = import_bcc()
    b = lab_bpf_class(bcc)(src_file=program_path("bench_ingest.bpf.c"), cflags=[f"-DOUTPUT={output}", f"-DONLY_PID={pid}"])
    b.attach_tracepoint(tp="kmem:kmalloc", fn_name="on_kmalloc")
    return b


def child(method: str, iterations: int) -> Dict[str, Any]:
    """One method in this (fresh) process. Returns its figures."""
    _pin(1)
    storm = _start_storm(iterations)
    received = 0
    known: Optional[int] = None
    lost_reported = 0
    extra: Dict[str, Any] = {}
    b = None
    lesson = None
    try:
        if method == "untraced":
            cpu0 = _cpu_s()
            _go(storm)
            storm.wait()
        elif method == "tutorial":
            from .tutorial import drain_trace_pipe

            b = _plain_bpf(0, storm.pid)
            drain_trace_pipe()
            b.trace_open(nonblocking=True)
            cpu0 = _cpu_s()
            _go(storm)
            idle_since = None
            while True:
                task = b.trace_fields(nonblocking=True)[0]
                if task is None:
                    if storm.poll() is not None:
                        idle_since = idle_since or time.monotonic()
                        if time.monotonic() - idle_since > 0.5:
                            break
                    time.sleep(0.001)
                    continue
                idle_since = None
                if task.startswith(b"ebl-kmalloc"):
                    received += 1
        elif method in ("bcc-perf", "bcc-ring"):
            b = _plain_bpf(1 if method == "bcc-perf" else 2, storm.pid)
            rows: List[tuple] = []
            tab = b["events"]

            def cb(*args: Any) -> None:
                data = args[-2]
                ev = tab.event(data)
                rows.append((ev.ts_ns, ev.call_site, ev.pid, ev.bytes_req, ev.bytes_alloc))

            def lost_cb(n: int) -> None:
                nonlocal lost_reported
                lost_reported += n

            if method == "bcc-perf":
                tab.open_perf_buffer(cb, lost_cb=lost_cb)
                poll = lambda: b.perf_buffer_poll(timeout=100)  # noqa: E731
            else:
                tab.open_ring_buffer(cb)
                poll = lambda: b.ring_buffer_poll(timeout=100)  # noqa: E731
            cpu0 = _cpu_s()
            _go(storm)
            while storm.poll() is None:
                poll()
            for _ in range(5):
                poll()
            received = len(rows)
        elif method == "ebpf-lab":
            from .engine import Workload
            from .lessons.kmalloc import KmallocLesson

            lesson = KmallocLesson(min_bytes=0, only_pid=storm.pid)
            lesson.compile()
            lesson.load()
            lesson.attach()
            lesson.workload = Workload("storm", storm, time.monotonic())
            cpu0 = _cpu_s()
            _go(storm)
            df = lesson.collect(seconds=None, quiet=True)
            received = len(df)
            known = lesson.counts()["seen"]
            extra["df_mb"] = round(df.memory_usage(deep=True).sum() / 2**20, 1)
        else:
            raise SystemExit(f"unknown method {method}")
        cpu = _cpu_s() - cpu0
        if b is not None:
            known = int(b["count"][0].value)
        n, secs = _storm_result(storm)
    finally:
        if storm.poll() is None:
            storm.kill()
        if b is not None:
            b.cleanup()
        if lesson is not None:
            lesson.detach()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"method": method, "iterations": n, "storm_s": secs, "storm_rate": n / secs,
            "events_known": known, "events_received": received,
            "events_lost": (known - received) if known is not None else None,
            "collector_cpu_s": round(cpu, 4),
            "cpu_us_per_event": round(1e6 * cpu / received, 3) if received else None,
            "peak_rss_mb": round(rss_mb, 1), **extra}


def frame_memory(rows: int) -> Dict[str, Any]:
    """A lesson-02 DataFrame of ``rows`` real events: its memory."""
    _pin(1)
    from .engine import Workload
    from .lessons.kmalloc import KmallocLesson

    storm = _start_storm(max(1, rows // 3 + 1000))
    with KmallocLesson(min_bytes=0, only_pid=storm.pid) as lesson:
        lesson.compile()
        lesson.load()
        lesson.attach()
        lesson.workload = Workload("storm", storm, time.monotonic())
        _go(storm)
        df = lesson.collect(max_events=rows, quiet=True)
        storm.kill()
        storm.wait()
    return {"rows": len(df), "df_mb": round(df.memory_usage(deep=True).sum() / 2**20, 1),
            "bytes_per_row": round(df.memory_usage(deep=True).sum() / max(1, len(df)), 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _spawn(args: List[str]) -> Dict[str, Any]:
    r = subprocess.run([sys.executable, "-m", "ebpf_lab.bench", *args], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"bench child {' '.join(args)} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(args: argparse.Namespace) -> int:
    from . import _kernel

    _kernel.require_root("benchmarking ingest")
    _kernel.ensure_kernel_fs()
    events = int(args.events)
    # How many kmalloc events one storm iteration makes, counted in the kernel.
    cal = _spawn(["--child", "bcc-ring", "--iterations", "20000"])
    per_iter = max(1e-9, cal["events_known"] / cal["iterations"])
    iterations = max(1000, int(events / per_iter))
    print(f"storm: {per_iter:.2f} kmalloc events per iteration; {iterations:,} iterations ~ {events:,} events; "
          f"storm on CPU 0, collector on CPU 1")
    rounds = max(1, int(getattr(args, "rounds", 3)))
    runs: Dict[str, List[Dict[str, Any]]] = {m: [] for m in METHODS}
    for rnd in range(rounds):
        order = METHODS[rnd % len(METHODS):] + METHODS[:rnd % len(METHODS)]  # rotate: noise hits every method
        for m in order:
            res = _spawn(["--child", m, "--iterations", str(iterations)])
            runs[m].append(res)
            print(f"  round {rnd + 1}/{rounds} {m:<9} storm {res['storm_rate']:,.0f} it/s, "
                  f"{res['events_received']:,} events received", flush=True)
    # Each traced run is compared with the untraced run of its own round.
    results = []
    for m in METHODS:
        speeds = sorted(100.0 * r["storm_rate"] / runs["untraced"][i]["storm_rate"] for i, r in enumerate(runs[m]))
        med = sorted(runs[m], key=lambda r: r["storm_rate"])[len(runs[m]) // 2]
        res = dict(med)
        res["storm_speed_pct"] = round(speeds[len(speeds) // 2], 1)
        res["speed_spread"] = f"{speeds[0]:.0f}-{speeds[-1]:.0f}%"
        res["events_lost"] = max((r["events_lost"] or 0) for r in runs[m]) if m != "untraced" else None
        cpu = sorted(r["cpu_us_per_event"] for r in runs[m] if r["cpu_us_per_event"])
        res["cpu_us_per_event"] = cpu[len(cpu) // 2] if cpu else None
        res["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs[m])
        results.append(res)
    print(f"\nmedians of {rounds} round(s); storm speed spread in brackets; lost = worst round; RSS = highest")
    print(f"{'method':<10} {'storm speed':>20} {'known':>9} {'received':>9} {'lost':>8} {'CPU/event':>10} {'peak RSS':>9}")
    for r in results:
        print(f"{r['method']:<10} {r['storm_speed_pct']:>9.1f}% ({r['speed_spread']:>8}) "
              f"{r['events_known'] if r['events_known'] is not None else '-':>9} "
              f"{r['events_received']:>9,} {r['events_lost'] if r['events_lost'] is not None else '-':>8} "
              f"{(str(r['cpu_us_per_event']) + ' us') if r['cpu_us_per_event'] else '-':>10} {r['peak_rss_mb']:>7.0f} MB")
    mem = _spawn(["--frame", str(args.rows)])
    print(f"\nDataFrame: {mem['rows']:,} rows = {mem['df_mb']} MB ({mem['bytes_per_row']} bytes/row); collector peak RSS {mem['peak_rss_mb']:.0f} MB")
    lab = results[-1]
    per_cb = min(r["cpu_us_per_event"] for r in results if r["method"] in ("bcc-perf", "bcc-ring") and r["cpu_us_per_event"])
    ratio = lab["cpu_us_per_event"] / per_cb if lab["cpu_us_per_event"] else float("nan")
    checks = [
        ("storm speed >= 90%", lab["storm_speed_pct"] >= 90),
        ("0 events lost", lab["events_lost"] == 0),
        ("CPU/event <= 1/4 of per-event callback", ratio <= 0.25),
        ("peak RSS < 250 MB", lab["peak_rss_mb"] < 250),
        ("1M-row DataFrame < 100 MB", mem["df_mb"] < 100 and mem["rows"] >= args.rows),
    ]
    print("\ntargets for ebpf-lab: " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in checks))
    print(f"SUMMARY ingest: events={lab['events_known']} storm_speed_untraced=100% "
          + " ".join(f"{r['method']}={r['storm_speed_pct']}%/lost={r['events_lost']}/cpu_us={r['cpu_us_per_event']}/rss_mb={r['peak_rss_mb']}"
                     for r in results[1:])
          + f" lab_cpu_ratio_vs_callback={ratio:.3f} df_1M_mb={mem['df_mb']}")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--child")
    p.add_argument("--iterations", type=int, default=100000)
    p.add_argument("--frame", type=int)
    a = p.parse_args()
    if a.frame:
        print(json.dumps(frame_memory(a.frame)))
    else:
        print(json.dumps(child(a.child, a.iterations)))
