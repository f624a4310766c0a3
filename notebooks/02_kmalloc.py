# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ebpf-lab)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Who is allocating memory? — 动手 2: tracepoints and `kmem:kmalloc`
#
# > 设想一个场景,当系统当中一直有进程在吃内存,如何发现有什么进程在申请内存呢?
# > *Imagine some process keeps eating memory: how do we find out who is asking the kernel for memory?*
#
# The tutorial answers with a **tracepoint**: a hook the kernel developers placed in the code on purpose and keep
# stable, with a fixed, documented set of fields. In this lesson you will
#
# 1. find the tracepoint (`available_events`) and read its fields (`format`),
# 2. run the tutorial's program from your own loader cell (`bpf_trace_printk`, read back with `trace_fields`) —
#    a loader with no attach line, since `TRACEPOINT_PROBE` attaches itself,
# 3. see why that output channel does not scale, and
# 4. build the real answer: every allocation as a row of a DataFrame, with plots, a threshold slider,
#    and in-kernel aggregation,
# 5. ask bpftrace the same question on the same workload, and check that both answers agree.

# %% tags=["imports"]
import ebpf_lab
from ebpf_lab.lessons.kmalloc import (KmallocLesson, list_tracepoints, tracepoint_format,
                                      plot_sizes, plot_top, plot_slack, plot_histogram_table)
import matplotlib.pyplot as plt

# %% [markdown]
# ## tracepoints — 先找追踪点 (first, find the tracepoint)
#
# > 可以通过 `bpftrace -l` 命令以及 `cat /sys/kernel/debug/tracing/available_events` 来查看有哪些追踪点。
#
# The kernel lists every tracepoint in tracefs's `available_events`. Memory-related ones live in the `kmem` category:

# %% tags=["tracepoints"]
kmem = list_tracepoints(r"^kmem:")
print(f"{len(list_tracepoints())} tracepoints in this kernel; {len(kmem)} in kmem:")
kmem

# %% [markdown]
# > 可以看到有许多内存相关的追踪点,明显kmalloc是我们比较想要的。 *Of these, `kmalloc` is clearly the one we want.*
#
# ## `cat /sys/kernel/debug/tracing/events/kmem/kmalloc/format`
#
# Each tracepoint describes its own fields in a `format` file. Parsed into a table (the `common_` fields are a
# header every event shares; the rest are kmalloc's own):

# %% tags=["format"]
fmt = tracepoint_format("kmem", "kmalloc")
print(open(fmt.attrs["path"]).read()[:400], "...")
fmt

# %% [markdown]
# `bytes_req` is what the caller asked for, `bytes_alloc` what the allocator actually handed out (it rounds up to
# size classes), and `call_site` the kernel code that asked. bcc turns this file into a C struct, so a program reads
# `args->bytes_alloc` — and because it comes from the *running* kernel, it is right even when the compile headers
# are not this kernel's own.
#
# ## The tutorial's program, as written
#
# > 可以看到相关字段有bytes_alloc,让我们来捕捉一下它吧。 *Let's capture `bytes_alloc`.*

# %% tags=["tutorial-source"]
from ebpf_lab.engine import program_path
print(open(program_path("kmalloc_tutorial.bpf.c")).read())

# %% [markdown]
# ### The tutorial's loader, in your own cell
#
# The tutorial's Python half for this program is `b = BPF(text=bpf_text)` and a `while 1:` loop over
# `b.trace_fields()` — **no attach line**. `TRACEPOINT_PROBE(kmem, kmalloc)` names its function
# `tracepoint__kmem__kmalloc`, and bcc attaches functions named like that by itself, while `BPF(...)` is created.
# Here it is, changed only where it must be:
#
# * `from bpfcc import BPF` fails on Debian and Ubuntu (`No module named 'bpfcc'`): the module is **`bcc`**;
# * plain bcc needs kernel headers: where only a *fallback* exists (the check behind the doctor's "kernel
#   headers" row says so), the lab's prepare step points `BCC_KERNEL_SOURCE` at them first;
# * `with BPF(...) as b:` calls `b.cleanup()` when the block ends, even after an error;
# * `trace_pipe` is shared and keeps old lines: drain it first; read for at most 2 seconds or 15 lines (no
#   `while 1:`), and decode the bytes `trace_fields()` returns under Python 3.
#
# Expect up to 15 lines `<time> <process> <pid> bytes_alloc: <n>`, each with `n` ≥ 128 — from the workload
# (`ebl-kmalloc`, named `python` while it is being started) and from any other process that allocated meanwhile —
# then how many tracepoints are still attached after the block: 0.

# %% tags=["tutorial-run"]
import os
import subprocess
import time
from ebpf_lab import kernel_headers
from ebpf_lab.lessons.hello_kill import bcc_module
from ebpf_lab.lessons.kmalloc import workload_command
from ebpf_lab.tutorial import drain_trace_pipe

headers = kernel_headers.headers_info()
if headers.status == "fallback":
    kernel_headers.prepare()
    print(f"headers: no package matches kernel {headers.kernel}; BCC_KERNEL_SOURCE={os.environ['BCC_KERNEL_SOURCE']} "
          f"({headers.headers} headers)\n")
bcc_module()                                             # makes the OS's bcc importable from this environment
from bcc import BPF

with BPF(src_file=program_path("kmalloc_tutorial.bpf.c")) as b:   # TRACEPOINT_PROBE: attached right here
    print(f"attached by BPF() itself: {b.num_open_tracepoints()} tracepoint(s)\n")
    drain_trace_pipe()
    workload = subprocess.Popen(workload_command(3000), stdout=subprocess.DEVNULL)
    lines, deadline = 0, time.monotonic() + 2
    while lines < 15 and time.monotonic() < deadline:
        (task, pid, cpu, flags, ts, msg) = b.trace_fields(nonblocking=True)
        if task is None:
            time.sleep(0.02)
            continue
        lines += 1
        print("%-18.9f %-16s %-6d %s" % (ts, task.decode(errors="replace"), pid, msg.decode(errors="replace")))
    workload.wait()
print(f"\n{lines} lines read; tracepoints still attached after the block: {b.num_open_tracepoints()}")

# %% [markdown]
# ### Why `trace_pipe` is a poor data channel
#
# * It is **global**: every BPF program on the machine that calls `bpf_trace_printk` writes into the same pipe,
#   and lines stay there until somebody reads them.
# * It is **text**: every event is formatted in the kernel and parsed again in Python.
# * It is **lossy**: the pipe is a fixed-size kernel buffer, and when events come faster than user space reads
#   the text back, lines are dropped without a count you could read (`ebpf-lab bench ingest` measures it on your
#   machine).
#
# The lesson's own program sends fixed-size binary records through a **BPF ring buffer** instead, and the lab
# drains them in bulk into numpy arrays — no text, no per-event Python call.
#
# ## What the lab does for you from here on: the real lesson, step by step
#
# The loader cell above is all of bcc's Python half. From here on the lab does it for you, one named step per cell,
# each a method you can open: `source()` prints the exact C with its `-D` flags, `compile()` is `BPF(...)` (which
# also creates the maps), `load()` loads each function through the verifier, `attach()` the attach lines (each
# detach registered the moment its attach succeeds), `collect()` a bounded, bulk read of the ring buffer,
# `detach()` the `cleanup()`.
#
# ### 1 · Source — `ebpf_lab/programs/kmalloc.bpf.c`
# Parameters reach the C code as `-D` flags (here `MIN_BYTES`, the tutorial's `128`):

# %% tags=["source"]
lab = KmallocLesson(min_bytes=128, iterations=20000)
print(lab.source())

# %% [markdown]
# ### 2 · Compile (clang turns the C into BPF bytecode)

# %% tags=["compile"]
lab.compile()

# %% [markdown]
# ### 3 · Load (the kernel's verifier checks every path of the program before accepting it)

# %% tags=["load"]
lab.load()

# %% [markdown]
# ### 4 · Attach (which hooks were used)
#
# Kernels before 6.1 report node-specific and large `kmalloc`s through a separate tracepoint, `kmem:kmalloc_node`;
# the lesson looks for it in tracefs and, where it exists, attaches a second entry point (`on_kmalloc_node`,
# compiled with `-DHOOK_KMALLOC_NODE`).
#
# Where the kernel has the tracepoints `task:task_rename` and `task:task_newtask`, the lesson attaches two more
# functions, `on_task_rename` and `on_task_newtask`. They send no events: they tell the program's name cache
# (`current_comm()` in the source above, compiled with `-DCOMM_CACHE`) that some task just changed its name (at
# `exec`, or through `prctl`) or that a new task began (it may reuse the id of a thread that ended), so the next
# event copies the name again instead of reusing the one it copied before. Copying the 16-byte name once per thread
# rather than once per event is one of the things that keep the lesson's program about as cheap as tracing at all
# (`ebpf-lab bench
# ingest` measures it). Expect the table of hooks, then which events were traced and why:

# %% tags=["attach"]
from ebpf_lab.lessons.kmalloc import traced_events_sentence
attached = lab.attach()
display(attached)
print(traced_events_sentence([h.name for h in lab.hooks]))

# %% [markdown]
# ### 5 · Trigger the workload
# A small C program named `ebl-kmalloc` opens, reads and closes `/proc/self/stat` 20,000 times; each round makes the
# kernel allocate, among others, a buffer for the file's text (the stack traces further down show where).

# %% tags=["trigger"]
wl = lab.trigger()
print(f"workload pid {wl.pid}: {wl.description}")

# %% [markdown]
# ### 6 · Collect (until the workload ends; the ring buffer is drained a few times a second)
#
# Expect at least one allocation per round of the workload (20,000), plus whatever the rest of the machine
# allocated meanwhile, `lost: 0`, and the first rows:

# %% tags=["collect"]
df = lab.collect()
print(f"{len(df):,} allocations; lost: {df.attrs['lost']}; hook: {df.attrs['hooks']}")
df.head()

# %% [markdown]
# Every column is typed and documented (`KmallocLesson.columns`). The in-kernel counters tell how many allocations
# the program saw in total, and how many passed the threshold:

# %% tags=["columns"]
import pandas as pd
display(pd.Series(KmallocLesson.columns, name="meaning").to_frame())
lab.counts()

# %% [markdown]
# ### 7 · Detach (nothing stays attached)

# %% tags=["detach"]
lab.detach()
print(lab)

# %% [markdown]
# ## Plots
#
# **Sizes.** The slab allocator serves fixed size classes — powers of two, and also 96 and 192 — so
# `bytes_alloc` takes only a few values. Expect a few tall bars, the workload's size among the tallest; the most
# frequent sizes in this run are listed below the plot:

# %% tags=["plot-sizes"]
plot_sizes(df); plt.show()
top = df.bytes_alloc.value_counts().head(6)
print("most frequent bytes_alloc here: " + ", ".join(f"{int(k):,} ({v:,})" for k, v in top.items()))

# %% [markdown]
# **Who allocates?** By process name, and by the kernel function that called kmalloc (`call_site`). Expect
# `ebl-kmalloc` among the top processes on the left, and the function that allocates its buffer among the top
# call sites on the right:

# %% tags=["plot-top"]
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
plot_top(df, by="comm", ax=axes[0])
plot_top(df, by="call_site_sym", ax=axes[1])
plt.show()
mine = df[(df.pid == wl.pid) & (df.comm == "ebl-kmalloc")]
print(f"the workload's own allocations: {len(mine):,} (pid {wl.pid})")

# %% [markdown]
# **Requested vs allocated.** The difference (`slack`) is memory handed out but never asked for. Expect one bar
# per size class: the share of its bytes nobody asked for, and the overall share in the title:

# %% tags=["plot-slack"]
plot_slack(df); plt.show()

# %% [markdown]
# ## The threshold as a slider
#
# The tutorial's `bytes_alloc >= 128` is a compile-time constant. Move the slider: each change recompiles the program
# with a new `-DMIN_BYTES`, runs the workload briefly, and redraws. Expect fewer bars, and fewer allocations in
# the title, as the threshold rises:

# %% tags=["slider"]
import ipywidgets as widgets

def explore(min_bytes=128):
    d = KmallocLesson(min_bytes=min_bytes, iterations=3000).run(quiet=True)
    plot_sizes(d, title=f"min_bytes = {min_bytes}: {len(d):,} allocations in {d.attrs['seconds']} s")
    plt.show()

slider = widgets.SelectionSlider(options=[0, 32, 64, 128, 256, 512, 1024, 2048, 4096], value=128,
                                 description="min_bytes", continuous_update=False)
widgets.interactive(explore, min_bytes=slider)

# %% [markdown]
# ## Aggregating in the kernel instead of streaming
#
# Sending every event to Python costs a record in the ring buffer and work in user space. When all you need is a
# histogram, the program can count in a BPF map and send nothing (`stream=False`): the kernel does the aggregation,
# user space reads a few dozen numbers once. That is why tools such as bcc's `biolatency` scale to millions of
# events a second. Expect both runs' event counts and the workload's time, then the in-kernel histogram:

# %% tags=["aggregation"]
import time
def timed(stream):
    with KmallocLesson(stream=stream, iterations=100000) as l:
        l.compile(); l.load(); l.attach(); l.trigger()
        d = l.collect(quiet=True)
        took = l.workload.proc.stdout.read().split()[1]
        return d, l.histogram(), float(took)

d_stream, h_stream, t_stream = timed(True)
d_agg, h_agg, t_agg = timed(False)
print(f"streaming:  {len(d_stream):>7,} events to Python, workload took {t_stream:.3f} s")
print(f"in-kernel:  {len(d_agg):>7,} events to Python, workload took {t_agg:.3f} s")
plot_histogram_table(h_agg); plt.show()

# %% [markdown]
# ## Getting data out: trace_pipe, perf buffer, ring buffer — in plain bcc
#
# A BPF program has three ways to hand events to user space, and maps to keep answers in. Here you write each in
# plain bcc, on one program, `kmalloc_channels.bpf.c`, compiled once per channel with a `-D` flag (print it to
# see all three side by side). Each cell runs one storm of the lesson's workload, started *waiting* so that the
# program can be compiled for its pid (`-DONLY_PID`) and attached before the storm begins (`start_storm`,
# `release`). The program counts every event it offers to the channel in a per-CPU counter, `seen`, so each cell
# can tell what got lost on the way. Its `TRACEPOINT_PROBE` attaches itself in `BPF(...)`: no attach lines.

# %% tags=["channels-source"]
from ebpf_lab.channels import start_storm, release, counter
print(open(program_path("kmalloc_channels.bpf.c")).read())

# %% [markdown]
# **1 · `bpf_trace_printk` + `trace_fields`** — text in the shared `trace_pipe`. Only lines carrying the storm's
# pid and the program's marker are ours. Expect a count of lines read against events offered, and the share lost:

# %% tags=["channel-printk"]
N = 20000
storm = start_storm(N)
with BPF(src_file=program_path("kmalloc_channels.bpf.c"), cflags=["-DCHANNEL_PRINTK", f"-DONLY_PID={storm.pid}"]) as b:
    drain_trace_pipe()
    release(storm)
    got, deadline, quiet, empty = 0, time.monotonic() + 10, 0, 0
    while time.monotonic() < deadline and quiet < 10:    # until the storm is over and the pipe stays empty
        (task, pid, cpu, flags, ts, msg) = b.trace_fields(nonblocking=True)
        if task is None:                                 # non-blocking reads come back empty now and then
            empty += 1                                   # even while lines wait: only several in a row
            if empty > 2:                                # mean the pipe is empty
                quiet += storm.poll() is not None
                time.sleep(0.02)
            continue
        empty = 0
        got += pid == storm.pid and msg.startswith(b"ebl-channel")
    offered = counter(b["seen"])
storm.wait()
print(f"trace_pipe: {got:,} lines of {offered:,} events offered; lost {offered - got:,} "
      f"({100 * (offered - got) / max(offered, 1):.1f}%) — and trace_pipe itself never says so")

# %% [markdown]
# **2 · `BPF_PERF_OUTPUT` + `open_perf_buffer` / `perf_buffer_poll`** — binary records, one buffer **per CPU**.
# The callback gets the CPU whose buffer the event came from; a full buffer drops events and calls the
# **lost-sample callback** with how many. Events from different CPUs are read one buffer at a time, so they can
# arrive out of time order. Expect events received, lost (as reported by the callback), the CPUs they came from,
# and how many arrived after a later one:

# %% tags=["channel-perf"]
events, lost_reported = [], 0

def on_event(cpu, data, size):                 # one call per event
    e = b["events"].event(data)                # the C struct, as a ctypes object
    events.append((cpu, e.ts_ns, e.bytes_alloc))

def on_lost(n):                                # a per-CPU buffer was full: n events dropped
    global lost_reported
    lost_reported += n

storm = start_storm(N)
with BPF(src_file=program_path("kmalloc_channels.bpf.c"), cflags=["-DCHANNEL_PERF", f"-DONLY_PID={storm.pid}"]) as b:
    b["events"].open_perf_buffer(on_event, page_cnt=64, lost_cb=on_lost)
    release(storm)
    deadline = time.monotonic() + 10
    while storm.poll() is None and time.monotonic() < deadline:
        b.perf_buffer_poll(timeout=50)
    b.perf_buffer_poll(timeout=50)             # what is still in the buffers
    offered = counter(b["seen"])
storm.wait()
ts = [t for _, t, _ in events]
late = sum(1 for a, c in zip(ts, ts[1:]) if c < a)
print(f"perf buffer: {len(events):,} of {offered:,} received; lost callback: {lost_reported:,}; "
      f"CPUs: {sorted({c for c, _, _ in events})}; arrived after a later event: {late:,}")

# %% [markdown]
# **3 · `BPF_RINGBUF_OUTPUT` + `open_ring_buffer` / `ring_buffer_poll`** — one buffer shared by all CPUs, read in
# the order events were submitted. A full ring makes `ringbuf_output` fail in the program, which counts it
# (`dropped`): there is no lost callback. Expect events received, dropped, and none out of order:

# %% tags=["channel-ringbuf"]
events = []

def on_ring_event(ctx, data, size):
    e = b["events"].event(data)
    events.append((e.cpu, e.ts_ns, e.bytes_alloc))

storm = start_storm(N)
with BPF(src_file=program_path("kmalloc_channels.bpf.c"), cflags=["-DCHANNEL_RINGBUF", f"-DONLY_PID={storm.pid}"]) as b:
    b["events"].open_ring_buffer(on_ring_event)
    release(storm)
    deadline = time.monotonic() + 10
    while storm.poll() is None and time.monotonic() < deadline:
        b.ring_buffer_poll(timeout=50)
    b.ring_buffer_poll(timeout=50)
    offered, dropped = counter(b["seen"]), counter(b["dropped"])
storm.wait()
ts = [t for _, t, _ in events]
print(f"ring buffer: {len(events):,} of {offered:,} received; dropped in the kernel: {dropped:,}; "
      f"arrived after a later event: {sum(1 for a, c in zip(ts, ts[1:]) if c < a):,}")

# %% [markdown]
# "Ring buffer" names two different things in this workbook: this BPF ring buffer (a memory area shared by a
# program and user space) and, in lesson 04, the **NIC's receive ring**, where a network card puts incoming frames
# for the driver. Same shape, different layers.
#
# ### Maps read from Python: `BPF_HASH`, `BPF_HISTOGRAM`, `BPF_STACK_TRACE`
#
# Nothing streamed at all: `kmalloc_maps.bpf.c` counts allocations per process in a hash, their sizes in a log2
# histogram, and, for allocations of at least 4 KiB, the kernel stack that led there. Python reads the maps once,
# after the storm. Expect bcc's `print_log2_hist` table, the top processes, then the kernel paths that allocate
# ≥ 4 KiB, most frequent first:

# %% tags=["maps"]
print(open(program_path("kmalloc_maps.bpf.c")).read().split("*/", 1)[0] + "*/\n")
storm = start_storm(N)
with BPF(src_file=program_path("kmalloc_maps.bpf.c"), cflags=[f"-DONLY_PID={storm.pid}", "-DBIG_BYTES=4096"]) as b:
    release(storm)
    storm.wait()
    b["sizes"].print_log2_hist("bytes_alloc")
    per_comm = sorted(((k.comm.decode(), v.value) for k, v in b["per_comm"].items()), key=lambda kv: -kv[1])
    print("\nallocations per process:", per_comm[:5])
    print("\nwhich kernel paths allocate >= 4 KiB?")
    for stack_id, n in sorted(b["big"].items(), key=lambda kv: -kv[1].value)[:3]:
        frames = [b.ksym(addr).decode() for addr in b["stacks"].walk(stack_id.value)]
        print(f"  {n.value:,} x " + " <- ".join(frames[:7]))

# %% [markdown]
# ### The three channels and the lab's bulk reader, measured
#
# `measure_channels()` runs one storm through each channel the way the cells above do, and one through the lab's
# own reader (a ring buffer drained in bulk into numpy arrays, `ebpf_lab/_ringbuf.py`), timing each reader's CPU.
# It takes a few seconds. Expect a table — events offered (`seen`), received, lost, what the channel itself
# reported, events/s into Python, CPU µs per event — three bar charts, and conclusions computed from this table
# (they describe the machine you run on):

# %% tags=["channels-measure"]
from ebpf_lab.channels import measure_channels, plot_channels, conclusions
ch = measure_channels(N)
display(ch.round(2))
plot_channels(ch); plt.show()
for line in conclusions(ch):
    print("-", line)

# %% [markdown]
# ## 当然,还可以捕捉page_alloc — page allocations work the same way
#
# > 当然,还可以捕捉page_alloc,方法也与此类似。 *You can also trace page allocations the same way.*
#
# `kmem:mm_page_alloc` fires when whole pages (4 KiB × 2^order) are taken from the page allocator; the same program
# has a handler for it (`on_page_alloc`), chosen with `event="mm_page_alloc"`. Expect a count of page allocations
# and the processes that made them:

# %% tags=["page-alloc"]
pages = KmallocLesson(event="mm_page_alloc", min_bytes=0).run(seconds=1.5)
print(f"{len(pages):,} page allocations in 1.5 s via {pages.attrs['hooks']}")
plot_top(pages, by="comm"); plt.show()

# %% [markdown]
# ## The same question in bpftrace
#
# > bpftrace最简单 — *bpftrace is the simplest way in.*
#
# In bpftrace the whole lesson is one line: count the workload's allocations per size in a map, on the same
# tracepoints the lesson used here. `bpftrace_sizes()` runs it bounded (`timeout -s INT`, JSON output with
# `-f json`), lets bpftrace's `-c` start a fresh run of the workload once the probes are attached (`cpid` is its
# pid), and turns the map bpftrace prints at exit into a DataFrame (`ebpf_lab.bpftrace.run`, a small runner you
# can open). Expect the command, which events it traced and why, then counts per size:

# %% tags=["bpftrace"]
from ebpf_lab.lessons.kmalloc import bpftrace_sizes, compare_sizes

bt = bpftrace_sizes(iterations=lab.values["iterations"], min_bytes=lab.values["min_bytes"])
print(f"$ {bt.attrs['command']}\n\n{bt.attrs['note']}\n")
bt

# %% [markdown]
# The two runs are separate runs of the same workload, so their counts per size should match for the workload's
# own allocations (its start-up may differ by a few). Expect the same size on top in both columns:

# %% tags=["bpftrace-compare"]
both = compare_sizes(df, wl.pid, bt)
display(both)
top_bcc, top_bt = both.loc[both.bcc.idxmax()], both.loc[both.bpftrace.idxmax()]
assert top_bcc.bytes_alloc == top_bt.bytes_alloc, "bcc and bpftrace disagree on the workload's main size"
print(f"both see the workload's allocations mostly at {int(top_bcc.bytes_alloc):,} bytes: "
      f"{int(top_bcc.bcc):,} (bcc) and {int(top_bt.bpftrace):,} (bpftrace) for {lab.values['iterations']:,} rounds")

# %% [markdown]
# ## What you saw
#
# * Tracepoints are stable hooks with self-describing fields (`format`), found in `available_events`;
#   `TRACEPOINT_PROBE` functions attach themselves when `BPF(...)` is created.
# * `bpf_trace_printk` + `trace_fields` is fine for a first look, but the pipe is shared, textual and lossy.
# * A ring buffer + bulk draining gives every event, typed, as a DataFrame.
# * Aggregating in the kernel (a BPF map) is cheaper still when a summary is all you need.
#
# Next: **03_args_return** captures a kernel function's arguments and return value.

# %% [markdown]
# ## Exercises
#
# | exercise | level | what to do |
# |---|---|---|
# | [kmalloc-filter](exercises/kmalloc-filter.ipynb) | ★ | Only one process, only big allocations |
# | [fix-the-verifier](exercises/fix-the-verifier.ipynb) | ★ | Make it pass the verifier (and keep it working) |
# | [kmalloc-per-pid](exercises/kmalloc-per-pid.ipynb) | ★★ | Bytes per process, counted in the kernel |
#
# Open one, fill in the marked gaps, and check it from a cell (`check(...)`, at its end) or from a shell:
# `sudo .venv/bin/ebpf-lab check EXERCISE notebooks/exercises/EXERCISE.ipynb`.
