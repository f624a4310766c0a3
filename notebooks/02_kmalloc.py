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
# 2. run the tutorial's program as written (`bpf_trace_printk`, read back with `trace_fields`),
# 3. see why that output channel does not scale, and
# 4. build the real answer: every allocation as a row of a DataFrame, with plots, a threshold slider,
#    and in-kernel aggregation.

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
# Two things change when running the tutorial's Python half on a current Debian/Ubuntu:
#
# * `from bpfcc import BPF` fails (`No module named 'bpfcc'`): the module `python3-bpfcc` installs is **`bcc`**.
# * `trace_fields()` returns **bytes** under Python 3, so the tutorial's `print` would show `b'bash'`; we decode first.
#
# And its `while 1:` loop never ends by itself; here it reads for at most 2 seconds or 15 lines, then detaches.
# Output goes through the kernel's shared `trace_pipe`, so stale lines from earlier runs are drained first.

# %% tags=["tutorial-run"]
from ebpf_lab.tutorial import run_trace_printk
lab = KmallocLesson(iterations=3000)
lines = run_trace_printk(
    "kmalloc_tutorial.bpf.c",
    attach=lambda b: b.attach_tracepoint(tp="kmem:kmalloc", fn_name="tracepoint__kmem__kmalloc"),
    seconds=2, max_lines=15, workload=lambda: lab.start_workload().proc)
print(f"\n(threw away {lines.attrs['stale_bytes']} bytes of stale trace_pipe output first)")

# %% [markdown]
# ### Why `trace_pipe` is a poor data channel
#
# * It is **global**: every BPF program on the machine that calls `bpf_trace_printk` writes into the same pipe,
#   and lines stay there until somebody reads them.
# * It is **text**: every event is formatted in the kernel and parsed again in Python.
# * It is **slow and lossy**: at a few hundred thousand allocations a second, most lines are dropped
#   (the `ebpf-lab bench ingest` command measures this).
#
# The lesson's own program sends fixed-size binary records through a **BPF ring buffer** instead, and the lab
# drains them in bulk into numpy arrays — no text, no per-event Python call.
#
# ## The real lesson, step by step
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
# ### 4 · Attach (which hook was used)

# %% tags=["attach"]
lab.attach()

# %% [markdown]
# ### 5 · Trigger the workload
# A small C program named `ebl-kmalloc` opens, reads and closes `/proc/self/stat` 20,000 times; each open makes the
# kernel allocate a buffer for the file.

# %% tags=["trigger"]
wl = lab.trigger()
print(f"workload pid {wl.pid}: {wl.description}")

# %% [markdown]
# ### 6 · Collect (until the workload ends; the ring buffer is drained a few times a second)

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
# **Sizes.** Kernel allocations cluster on powers of two: the slab allocator serves fixed size classes.

# %% tags=["plot-sizes"]
plot_sizes(df); plt.show()

# %% [markdown]
# **Who allocates?** By process name, and by the kernel function that called kmalloc (`call_site`):

# %% tags=["plot-top"]
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
plot_top(df, by="comm", ax=axes[0])
plot_top(df, by="call_site_sym", ax=axes[1])
plt.show()
mine = df[(df.pid == wl.pid) & (df.comm == "ebl-kmalloc")]
print(f"the workload's own allocations: {len(mine):,} (pid {wl.pid})")

# %% [markdown]
# **Requested vs allocated.** The difference (`slack`) is memory handed out but never asked for:

# %% tags=["plot-slack"]
plot_slack(df); plt.show()

# %% [markdown]
# ## The threshold as a slider
#
# The tutorial's `bytes_alloc >= 128` is a compile-time constant. Move the slider: each change recompiles the program
# with a new `-DMIN_BYTES`, runs the workload briefly, and redraws.

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
# events a second.

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
# ## 当然,还可以捕捉page_alloc — page allocations work the same way
#
# > 当然,还可以捕捉page_alloc,方法也与此类似。 *You can also trace page allocations the same way.*
#
# `kmem:mm_page_alloc` fires when whole pages (4 KiB × 2^order) are taken from the page allocator; the same program
# has a handler for it (`on_page_alloc`), chosen with `event="mm_page_alloc"`:

# %% tags=["page-alloc"]
pages = KmallocLesson(event="mm_page_alloc", min_bytes=0).run(seconds=1.5)
print(f"{len(pages):,} page allocations in 1.5 s via {pages.attrs['hooks']}")
plot_top(pages, by="comm"); plt.show()

# %% [markdown]
# ## What you saw
#
# * Tracepoints are stable hooks with self-describing fields (`format`), found in `available_events`.
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
