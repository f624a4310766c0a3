# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ebpf-lab)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 · Setup and the doctor — 简介 / 安装 (introduction, installation)
#
# This workbook follows a Chinese eBPF tutorial section by section. Each notebook keeps the
# tutorial's own section titles and commands beside the English, so you can read both side by side.
#
# > **简介** — eBPF全称为extended Berkeley Packet Filter … eBPF功能主要分为**追踪**以及**网络**两大类。
# > *eBPF (extended Berkeley Packet Filter) grew out of BPF; its programs fall into two families:*
# > **tracing** *(pull facts out of the running system: monitoring, debugging, performance work) and*
# > **networking** *(filter and process packets: observability, firewalls, traffic control).*
# > *It is safe (a verifier checks every program), fast (JIT-compiled) and can be changed on a live system.*
#
# In this workbook:
#
# | lesson | tutorial section | hook |
# |---|---|---|
# | 01 hello kill | 开发 / kprobes / 辅助函数 / 动手 1 | kprobe on the kill syscall (or its tracepoints) |
# | 02 kmalloc | tracepoints / 动手 2 | tracepoint `kmem:kmalloc` |
# | 03 args & return | 进阶用法 | kprobe + kretprobe, uprobes |
# | 04 TC classifier | 网络 / 实例 | TC clsact ingress |
# | 05 XDP vs TC vs iptables | xdp与tc | XDP, TC, iptables, measured |
# | 06 three ways | 开发方式 (libbpf, bpftrace, bcc) | tracepoint `syscalls:sys_enter_kill`, with bcc, bpftrace and libbpf + CO-RE |

# %% [markdown]
# ## 内核追踪 — ways to write eBPF programs
#
# > 目前开发方式主要有以下几种,其中libbpf支持多个环境运行,bpftrace最简单。bcc依赖编译环境相对来说较为全面。
#
# *There are several ways: **libbpf** (C, compile once, run on many kernels), **bpftrace** (one-liners, the simplest),
# and **bcc** (Python + C compiled at run time; needs a compiler and kernel headers, but is the most complete).*
# The tutorial — and this workbook — use **bcc**: a C half that runs in the kernel and a Python half that loads it
# and reads its output.

# %% [markdown]
# ## 安装 — installing bcc and its ready-made tools
#
# > 在rhel 7.8以上的redhat当中 … 使用 `dnf install bcc-tools` 即可完成安装。自带的工具会存放于 `/usr/share/bcc/tools` 目录。
#
# On RHEL/Fedora: `dnf install bcc-tools python3-bcc`; the tools live in `/usr/share/bcc/tools`.
# On Debian and Ubuntu (this lab): `apt-get install bpfcc-tools python3-bpfcc`; the same tools are installed as
# `/usr/sbin/<tool>-bpfcc` (for example `killsnoop-bpfcc`). The lab's set-up (`sudo ./lab`) installed them.
# Let's see which of bcc's tools this machine has:

# %% tags=["tools"]
import glob, os
tools = sorted(glob.glob("/usr/share/bcc/tools/*") + glob.glob("/usr/sbin/*-bpfcc"))
print(f"{len(tools)} bcc tools installed, for example:")
for t in [t for t in tools if any(k in t for k in ("killsnoop", "opensnoop", "execsnoop", "biolatency", "memleak"))]:
    print("  ", t)

# %% [markdown]
# ## The doctor: what can this kernel do?
#
# Not every kernel can run every kind of BPF program. `ebpf_lab.doctor()` finds out **by trying**: it loads and
# attaches a tiny program of each kind (kprobe, tracepoint, uprobe, TC, XDP, …) rather than trusting the kernel's
# configuration — some kernels advertise a feature (fentry, for instance) and then refuse it.
# Each row that is not green says what to do, or which fallback the lessons will use.

# %% tags=["doctor"]
import ebpf_lab
doc = ebpf_lab.doctor()

def colour(row):
    c = {"ok": "#e6f4ea", "missing": "#fce8e6", "fallback": "#fef7e0", "warn": "#fef7e0"}[row.status]
    return [f"background-color: {c}"] * len(row)

doc.style.apply(colour, axis=1).hide(axis="index")

# %% [markdown]
# ## What to do about each red or yellow row
#
# The lessons adapt by themselves: when a hook is missing they say so, use the nearest one that works, and
# name it in their results. Here is what this machine lacks, and what happens instead:

# %% tags=["fixes"]
for r in doc[doc.status != "ok"].itertuples():
    print(f"● {r.check} ({r.status}): {r.detail}\n    → {r.fix}\n")
if (doc.status == "ok").all():
    print("Everything works here: every lesson runs its first-choice hook.")

# %% [markdown]
# A word on **kernel headers**: bcc compiles every program against the running kernel's headers. When the
# distribution has no headers package for this exact kernel, the lab compiles against the nearest generic headers.
# Tracepoint arguments stay right (bcc reads them from the running kernel), but the layout of kernel structures may
# differ — so the lessons never present a struct field read through mismatched headers as a true value.
#
# ## The lessons

# %% tags=["lessons"]
ebpf_lab.lessons()

# %% [markdown]
# Open **01_hello_kill** next. Everything the lessons attach is removed when a lesson ends, fails or is interrupted;
# if a kernel is ever killed mid-lesson, `sudo .venv/bin/ebpf-lab cleanup` removes whatever was left.
