"""Writes notebooks/00_setup.ipynb and notebooks/02_kmalloc.ipynb (without outputs).

    .venv/bin/python notebooks/_build/lessons_00_02.py

Every code cell carries a tag naming its step (tests address cells by tag).
Edit the notebooks here, not in JupyterLab, so that they stay reviewable.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbkit import code as _code, md, write_all  # noqa: E402


def code(text, tags=()):
    return _code(tags[0], text)


setup = [
    md("""
# 00 · Setup and the doctor — 简介 / 安装 (introduction, installation)

This workbook follows a Chinese eBPF tutorial section by section. Each notebook keeps the
tutorial's own section titles and commands beside the English, so you can read both side by side.

> **简介** — eBPF全称为extended Berkeley Packet Filter … eBPF功能主要分为**追踪**以及**网络**两大类。
> *eBPF (extended Berkeley Packet Filter) grew out of BPF; its programs fall into two families:*
> **tracing** *(pull facts out of the running system: monitoring, debugging, performance work) and*
> **networking** *(filter and process packets: observability, firewalls, traffic control).*
> *It is safe (a verifier checks every program), fast (JIT-compiled) and can be changed on a live system.*

In this workbook:

| lesson | tutorial section | hook |
|---|---|---|
| 01 hello kill | 开发 / kprobes / 辅助函数 / 动手 1 | kprobe on the kill syscall (or its tracepoints) |
| 02 kmalloc | tracepoints / 动手 2 | tracepoint `kmem:kmalloc` |
| 03 args & return | 进阶用法 | kprobe + kretprobe, uprobes |
| 04 TC classifier | 网络 / 实例 | TC clsact ingress |
| 05 XDP vs TC vs iptables | xdp与tc | XDP, TC, iptables, measured |
| 06 three ways | 开发方式 (libbpf, bpftrace, bcc) | tracepoint `syscalls:sys_enter_kill`, with bcc, bpftrace and libbpf + CO-RE |
"""),
    md("""
## 内核追踪 — ways to write eBPF programs

> 目前开发方式主要有以下几种,其中libbpf支持多个环境运行,bpftrace最简单。bcc依赖编译环境相对来说较为全面。

*There are several ways: **libbpf** (C, compile once, run on many kernels), **bpftrace** (one-liners, the simplest),
and **bcc** (Python + C compiled at run time; needs a compiler and kernel headers, but is the most complete).*
The tutorial — and this workbook — use **bcc**: a C half that runs in the kernel and a Python half that loads it
and reads its output.
"""),
    md("""
## 安装 — installing bcc and its ready-made tools

> 在rhel 7.8以上的redhat当中 … 使用 `dnf install bcc-tools` 即可完成安装。自带的工具会存放于 `/usr/share/bcc/tools` 目录。

On RHEL/Fedora: `dnf install bcc-tools python3-bcc`; the tools live in `/usr/share/bcc/tools`.
On Debian and Ubuntu (this lab): `apt-get install bpfcc-tools python3-bpfcc`; the same tools are installed as
`/usr/sbin/<tool>-bpfcc` (for example `killsnoop-bpfcc`). The lab's set-up (`sudo ./lab`) installed them.
Let's see which of bcc's tools this machine has:
"""),
    code("""
import glob, os
tools = sorted(glob.glob("/usr/share/bcc/tools/*") + glob.glob("/usr/sbin/*-bpfcc"))
print(f"{len(tools)} bcc tools installed, for example:")
for t in [t for t in tools if any(k in t for k in ("killsnoop", "opensnoop", "execsnoop", "biolatency", "memleak"))]:
    print("  ", t)
""", tags=["tools"]),
    md("""
## The doctor: what can this kernel do?

Not every kernel can run every kind of BPF program. `ebpf_lab.doctor()` finds out **by trying**: it loads and
attaches a tiny program of each kind (kprobe, tracepoint, uprobe, TC, XDP, …) rather than trusting the kernel's
configuration — some kernels advertise a feature (fentry, for instance) and then refuse it.
Each row that is not green says what to do, or which fallback the lessons will use.
"""),
    code("""
import ebpf_lab
doc = ebpf_lab.doctor()

def colour(row):
    c = {"ok": "#e6f4ea", "missing": "#fce8e6", "fallback": "#fef7e0", "warn": "#fef7e0"}[row.status]
    return [f"background-color: {c}"] * len(row)

doc.style.apply(colour, axis=1).hide(axis="index")
""", tags=["doctor"]),
    md("""
## What to do about each red or yellow row

The lessons adapt by themselves: when a hook is missing they say so, use the nearest one that works, and
name it in their results. Here is what this machine lacks, and what happens instead:
"""),
    code("""
for r in doc[doc.status != "ok"].itertuples():
    print(f"● {r.check} ({r.status}): {r.detail}\\n    → {r.fix}\\n")
if (doc.status == "ok").all():
    print("Everything works here: every lesson runs its first-choice hook.")
""", tags=["fixes"]),
    md("""
A word on **kernel headers**: bcc compiles every program against the running kernel's headers. When the
distribution has no headers package for this exact kernel, the lab compiles against the nearest generic headers.
Tracepoint arguments stay right (bcc reads them from the running kernel), but the layout of kernel structures may
differ — so the lessons never present a struct field read through mismatched headers as a true value.

## The lessons
"""),
    code("""
ebpf_lab.lessons()
""", tags=["lessons"]),
    md("""
Open **01_hello_kill** next. Everything the lessons attach is removed when a lesson ends, fails or is interrupted;
if a kernel is ever killed mid-lesson, `sudo .venv/bin/ebpf-lab cleanup` removes whatever was left.
"""),
]

kmalloc = [
    md("""
# 02 · Who is allocating memory? — 动手 2: tracepoints and `kmem:kmalloc`

> 设想一个场景,当系统当中一直有进程在吃内存,如何发现有什么进程在申请内存呢?
> *Imagine some process keeps eating memory: how do we find out who is asking the kernel for memory?*

The tutorial answers with a **tracepoint**: a hook the kernel developers placed in the code on purpose and keep
stable, with a fixed, documented set of fields. In this lesson you will

1. find the tracepoint (`available_events`) and read its fields (`format`),
2. run the tutorial's program as written (`bpf_trace_printk`, read back with `trace_fields`),
3. see why that output channel does not scale, and
4. build the real answer: every allocation as a row of a DataFrame, with plots, a threshold slider,
   and in-kernel aggregation.
"""),
    code("""
import ebpf_lab
from ebpf_lab.lessons.kmalloc import (KmallocLesson, list_tracepoints, tracepoint_format,
                                      plot_sizes, plot_top, plot_slack, plot_histogram_table)
import matplotlib.pyplot as plt
""", tags=["imports"]),
    md("""
## tracepoints — 先找追踪点 (first, find the tracepoint)

> 可以通过 `bpftrace -l` 命令以及 `cat /sys/kernel/debug/tracing/available_events` 来查看有哪些追踪点。

The kernel lists every tracepoint in tracefs's `available_events`. Memory-related ones live in the `kmem` category:
"""),
    code("""
kmem = list_tracepoints(r"^kmem:")
print(f"{len(list_tracepoints())} tracepoints in this kernel; {len(kmem)} in kmem:")
kmem
""", tags=["tracepoints"]),
    md("""
> 可以看到有许多内存相关的追踪点,明显kmalloc是我们比较想要的。 *Of these, `kmalloc` is clearly the one we want.*

## `cat /sys/kernel/debug/tracing/events/kmem/kmalloc/format`

Each tracepoint describes its own fields in a `format` file. Parsed into a table (the `common_` fields are a
header every event shares; the rest are kmalloc's own):
"""),
    code("""
fmt = tracepoint_format("kmem", "kmalloc")
print(open(fmt.attrs["path"]).read()[:400], "...")
fmt
""", tags=["format"]),
    md("""
`bytes_req` is what the caller asked for, `bytes_alloc` what the allocator actually handed out (it rounds up to
size classes), and `call_site` the kernel code that asked. bcc turns this file into a C struct, so a program reads
`args->bytes_alloc` — and because it comes from the *running* kernel, it is right even when the compile headers
are not this kernel's own.

## The tutorial's program, as written

> 可以看到相关字段有bytes_alloc,让我们来捕捉一下它吧。 *Let's capture `bytes_alloc`.*
"""),
    code("""
from ebpf_lab.engine import program_path
print(open(program_path("kmalloc_tutorial.bpf.c")).read())
""", tags=["tutorial-source"]),
    md("""
Two things change when running the tutorial's Python half on a current Debian/Ubuntu:

* `from bpfcc import BPF` fails (`No module named 'bpfcc'`): the module `python3-bpfcc` installs is **`bcc`**.
* `trace_fields()` returns **bytes** under Python 3, so the tutorial's `print` would show `b'bash'`; we decode first.

And its `while 1:` loop never ends by itself; here it reads for at most 2 seconds or 15 lines, then detaches.
Output goes through the kernel's shared `trace_pipe`, so stale lines from earlier runs are drained first.
"""),
    code("""
from ebpf_lab.tutorial import run_trace_printk
lab = KmallocLesson(iterations=3000)
lines = run_trace_printk(
    "kmalloc_tutorial.bpf.c",
    attach=lambda b: b.attach_tracepoint(tp="kmem:kmalloc", fn_name="tracepoint__kmem__kmalloc"),
    seconds=2, max_lines=15, workload=lambda: lab.start_workload().proc)
print(f"\\n(threw away {lines.attrs['stale_bytes']} bytes of stale trace_pipe output first)")
""", tags=["tutorial-run"]),
    md("""
### Why `trace_pipe` is a poor data channel

* It is **global**: every BPF program on the machine that calls `bpf_trace_printk` writes into the same pipe,
  and lines stay there until somebody reads them.
* It is **text**: every event is formatted in the kernel and parsed again in Python.
* It is **slow and lossy**: at a few hundred thousand allocations a second, most lines are dropped
  (the `ebpf-lab bench ingest` command measures this).

The lesson's own program sends fixed-size binary records through a **BPF ring buffer** instead, and the lab
drains them in bulk into numpy arrays — no text, no per-event Python call.

## The real lesson, step by step

### 1 · Source — `ebpf_lab/programs/kmalloc.bpf.c`
Parameters reach the C code as `-D` flags (here `MIN_BYTES`, the tutorial's `128`):
"""),
    code("""
lab = KmallocLesson(min_bytes=128, iterations=20000)
print(lab.source())
""", tags=["source"]),
    md("### 2 · Compile (clang turns the C into BPF bytecode)"),
    code("lab.compile()", tags=["compile"]),
    md("### 3 · Load (the kernel's verifier checks every path of the program before accepting it)"),
    code("lab.load()", tags=["load"]),
    md("### 4 · Attach (which hook was used)"),
    code("lab.attach()", tags=["attach"]),
    md("""
### 5 · Trigger the workload
A small C program named `ebl-kmalloc` opens, reads and closes `/proc/self/stat` 20,000 times; each open makes the
kernel allocate a buffer for the file.
"""),
    code("""
wl = lab.trigger()
print(f"workload pid {wl.pid}: {wl.description}")
""", tags=["trigger"]),
    md("### 6 · Collect (until the workload ends; the ring buffer is drained a few times a second)"),
    code("""
df = lab.collect()
print(f"{len(df):,} allocations; lost: {df.attrs['lost']}; hook: {df.attrs['hooks']}")
df.head()
""", tags=["collect"]),
    md("""
Every column is typed and documented (`KmallocLesson.columns`). The in-kernel counters tell how many allocations
the program saw in total, and how many passed the threshold:
"""),
    code("""
import pandas as pd
display(pd.Series(KmallocLesson.columns, name="meaning").to_frame())
lab.counts()
""", tags=["columns"]),
    md("### 7 · Detach (nothing stays attached)"),
    code("""
lab.detach()
print(lab)
""", tags=["detach"]),
    md("""
## Plots

**Sizes.** Kernel allocations cluster on powers of two: the slab allocator serves fixed size classes.
"""),
    code("plot_sizes(df); plt.show()", tags=["plot-sizes"]),
    md("**Who allocates?** By process name, and by the kernel function that called kmalloc (`call_site`):"),
    code("""
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
plot_top(df, by="comm", ax=axes[0])
plot_top(df, by="call_site_sym", ax=axes[1])
plt.show()
mine = df[(df.pid == wl.pid) & (df.comm == "ebl-kmalloc")]
print(f"the workload's own allocations: {len(mine):,} (pid {wl.pid})")
""", tags=["plot-top"]),
    md("**Requested vs allocated.** The difference (`slack`) is memory handed out but never asked for:"),
    code("plot_slack(df); plt.show()", tags=["plot-slack"]),
    md("""
## The threshold as a slider

The tutorial's `bytes_alloc >= 128` is a compile-time constant. Move the slider: each change recompiles the program
with a new `-DMIN_BYTES`, runs the workload briefly, and redraws.
"""),
    code("""
import ipywidgets as widgets

def explore(min_bytes=128):
    d = KmallocLesson(min_bytes=min_bytes, iterations=3000).run(quiet=True)
    plot_sizes(d, title=f"min_bytes = {min_bytes}: {len(d):,} allocations in {d.attrs['seconds']} s")
    plt.show()

slider = widgets.SelectionSlider(options=[0, 32, 64, 128, 256, 512, 1024, 2048, 4096], value=128,
                                 description="min_bytes", continuous_update=False)
widgets.interactive(explore, min_bytes=slider)
""", tags=["slider"]),
    md("""
## Aggregating in the kernel instead of streaming

Sending every event to Python costs a record in the ring buffer and work in user space. When all you need is a
histogram, the program can count in a BPF map and send nothing (`stream=False`): the kernel does the aggregation,
user space reads a few dozen numbers once. That is why tools such as bcc's `biolatency` scale to millions of
events a second.
"""),
    code("""
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
""", tags=["aggregation"]),
    md("""
## 当然,还可以捕捉page_alloc — page allocations work the same way

> 当然,还可以捕捉page_alloc,方法也与此类似。 *You can also trace page allocations the same way.*

`kmem:mm_page_alloc` fires when whole pages (4 KiB × 2^order) are taken from the page allocator; the same program
has a handler for it (`on_page_alloc`), chosen with `event="mm_page_alloc"`:
"""),
    code("""
pages = KmallocLesson(event="mm_page_alloc", min_bytes=0).run(seconds=1.5)
print(f"{len(pages):,} page allocations in 1.5 s via {pages.attrs['hooks']}")
plot_top(pages, by="comm"); plt.show()
""", tags=["page-alloc"]),
    md("""
## What you saw

* Tracepoints are stable hooks with self-describing fields (`format`), found in `available_events`.
* `bpf_trace_printk` + `trace_fields` is fine for a first look, but the pipe is shared, textual and lossy.
* A ring buffer + bulk draining gives every event, typed, as a DataFrame.
* Aggregating in the kernel (a BPF map) is cheaper still when a summary is all you need.

Next: **03_args_return** captures a kernel function's arguments and return value.
"""),
]

if __name__ == "__main__":
    sys.exit(write_all((("00_setup.ipynb", setup), ("02_kmalloc.ipynb", kmalloc))))
