# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · One tool, three ways — bcc, bpftrace, libbpf with CO-RE
#
# > 目前开发方式主要有以下几种,其中libbpf支持多个环境运行,bpftrace最简单。bcc依赖编译环境相对来说较为全面。
# > *There are several ways to develop today: libbpf runs in many environments, bpftrace is the simplest, and bcc
# > depends on a fairly complete compile environment.*
#
# The tutorial says it in one sentence; this lesson makes it real. One small tool — for every `kill()` on the
# machine: the sender's pid and name, **its parent's pid read from the kernel's `task_struct`**
# (`current->real_parent->tgid`), the target and the signal — written three ways:
#
# 1. **bcc**: C compiled at run time by clang against the kernel headers bcc finds, loaded from Python;
# 2. **bpftrace**: one probe line; it reads `curtask->real_parent->tgid` through the kernel's BTF;
# 3. **libbpf + CO-RE**, the libbpf-bootstrap way: compile once against a `vmlinux.h` made from BTF, a skeleton,
#    a small C loader; libbpf fixes the field offsets up when it loads the program.
#
# A workload sends known kills and writes down, from `/proc`, who its parent really is. We put the three answers
# beside that truth, and then measure what each way costs.

# %% tags=["imports"]
import matplotlib.pyplot as plt
import pandas as pd

import ebpf_lab
from ebpf_lab.lessons.three_ways import (ThreeWaysLesson, environment, core_relocations, measure_costs,
                                         cost_conclusions, plot_costs, plot_parents, HOOK)

pd.set_option("display.max_colwidth", 120)

# %% [markdown]
# ## What this machine offers
#
# Whether each way can run, and whether its answer can be believed, depends on three facts about the kernel: are
# there **headers** matching it (bcc compiles against them), is there **BTF** (`/sys/kernel/btf/vmlinux`, the
# kernel's own description of its types, which bpftrace and CO-RE read), and which **hooks** work. The doctor
# checks them by trying:

# %% tags=["doctor"]
doc = ebpf_lab.doctor()
env = environment(doc)
display(doc[doc["check"].isin(["kernel version", "BTF", "kernel headers", "bpftool", "bpftrace", "clang",
                               "kprobe", "tracepoint", "ring buffer"])][["check", "ok", "status", "detail"]])

if env["headers_status"] == "matching":
    print(f"Headers: bcc compiles against headers made for this very kernel ({env['kernel']}): the struct offsets "
          "it compiles in are the running kernel's.")
elif env["headers_status"] == "fallback":
    print(f"Headers: there are no headers for this kernel ({env['kernel']}); bcc compiles against the "
          f"{env['headers_version']} headers instead. Tracepoint arguments stay right (they come from the running "
          "kernel's format files), but struct task_struct in those headers is another kernel's: any field bcc "
          "reads from it is read at that kernel's offset.")
else:
    print(f"Headers: none for this kernel ({env['kernel']}): bcc cannot compile here.")
print(f"BTF: {'present' if env['btf'] else 'ABSENT'} — "
      + ("bpftrace and libbpf can learn task_struct's real layout from the kernel itself." if env["btf"] else
         "bpftrace and libbpf have no way to learn task_struct's real layout here (see the end of the lesson)."))
print(f"Ways that run here: {', '.join(env['methods']) or 'none'}")
for m, why in env["why_not"].items():
    print(f"  {m} does not run here: {why}")

# %% [markdown]
# ## One hook for all three
#
# The lesson on kill (01) prefers a kprobe on the kill system call's kernel function. Here every way uses the
# **tracepoint `syscalls:sys_enter_kill`** instead: it exists on kernels with and without kprobes, and the same hook
# everywhere keeps the comparison fair — the three programs see exactly the same calls.

# %% tags=["hook"]
print(f"tracepoint {HOOK}: {'present' if env['tracepoint'] else 'ABSENT'} on this kernel")
print("kprobes on this kernel: " + ("yes — they would work too, but the lesson keeps one hook for all three ways"
                                    if env["kprobes"] else "no (CONFIG_KPROBES is not set) — the tracepoint is the hook that works here"))

# %% [markdown]
# ## Way 1 — bcc: C compiled at run time, loaded from Python
#
# The same shape as lessons 01–03. Look at the line `e->parent_pid = task->real_parent->tgid;`: bcc rewrites that
# pointer chain into `bpf_probe_read_kernel()` calls at the offsets **of the headers it compiles against**.

# %% tags=["source-bcc"]
lab = ThreeWaysLesson()
print(lab.source("bcc"))

# %% [markdown]
# ## Way 2 — bpftrace: the one-liner
#
# The probe is a single `printf`. `curtask` is the current `task_struct`, typed through BTF; `-f json` makes each
# printed line a JSON object, which is how the lesson reads it into a DataFrame. An `interval` probe ends it by
# itself, so it can never run forever.

# %% tags=["source-bpftrace"]
print(lab.source("bpftrace"))

# %% [markdown]
# ## Way 3 — libbpf with CO-RE: the kernel half, the shared header, the loader
#
# `BPF_CORE_READ(task, real_parent, tgid)` looks like bcc's pointer chain, but clang records each field access as a
# **CO-RE relocation** ("the offset of `real_parent` in `struct task_struct`"), and libbpf answers it at load time
# from the running kernel's BTF.

# %% tags=["source-libbpf"]
print(lab.source("libbpf"))
print(lab.source("header"))

# %% [markdown]
# The loader is ordinary C: open, load, attach through the skeleton, then poll the ring buffer and print one JSON
# line per event. It stops by itself after `-d SECONDS`.

# %% tags=["source-loader"]
print(lab.source("loader"))

# %% [markdown]
# ## Build the libbpf way, step by step
#
# These are libbpf-bootstrap's steps: `vmlinux.h` from the kernel's BTF, clang with `-target bpf -g`, `bpftool gen
# object` (link: keeps BTF, drops DWARF), `bpftool gen skeleton`, and the loader linked against the OS's libbpf.
# The files go to a cache, never into the project. Each command, as run, with its output:

# %% tags=["build"]
steps = lab.build()
if lab.core is None:
    print(f"The libbpf way is not built here: {lab.skipped.get('libbpf', 'it was not asked for')}")
else:
    for s in steps.itertuples():
        print(f"## {s.step}  ({s.seconds:g} s)\n$ {s.command}")
        if s.output:
            print("\n".join(s.output.splitlines()[:8]))
        print()
    print(f"reused the build made earlier in {lab.core.dir}: the commands and times above are that build's"
          if lab.core.cached else f"built into {lab.core.dir}")
    print(f"built from the BTF of kernel {lab.core.built_on}; object sha256 {lab.core.object_sha256[:16]}…; "
          f"the loader carries the object unchanged: {lab.core.object_in_loader()}")

# %% [markdown]
# ## Compile and load the bcc way
#
# bcc does at run time, on the target machine, what the libbpf way did once above: clang compiles the C.

# %% tags=["compile"]
lab.compile()

# %% tags=["load"]
lab.load()

# %% [markdown]
# ## Attach all three
#
# bcc's program is attached from this Python process; bpftrace and the libbpf loader are started as child
# processes, each stopped when the lesson ends (or fails, or is interrupted). The lesson waits until each says it
# is attached.

# %% tags=["attach"]
lab.attach()

# %% [markdown]
# ### What libbpf relocated
#
# The loader ran with libbpf's debug log on. Its CO-RE lines say, for each field the program reads, the offset
# clang compiled in (from the kernel `vmlinux.h` was made from) and the offset libbpf found in **this** kernel's
# BTF and patched into the instruction:

# %% tags=["relocations"]
log = lab.loader_log()
print("\n".join(ln for ln in log.splitlines() if "CO-RE" in ln or "relo #" in ln) or "(the libbpf way does not run here)")
rel = core_relocations(log)
rel

# %% tags=["relocations-say"]
if len(rel) and lab.core is not None:
    moved = rel[rel["offset_in_object"] != rel["offset_on_this_kernel"]]
    same = lab.core.built_on == env["kernel"]
    print(f"The object was built from the BTF of {lab.core.built_on} and runs on {env['kernel']}"
          + (" (the same kernel)." if same else " (another kernel)."))
    if len(moved):
        for r in moved.itertuples():
            print(f"- {r.type}.{r.field}: compiled at offset {r.offset_in_object}, this kernel has it at "
                  f"{r.offset_on_this_kernel}: libbpf patched instruction #{r.insn}.")
    else:
        print("Every field sits where the object expected it, so libbpf patched each offset to the same value. "
              "On another kernel the same object gets other numbers here: the guest-kernel tests load this very "
              "object on a Debian 6.1 kernel and check the parent it reads there.")

# %% [markdown]
# ## Trigger the workload
#
# `ebl-3w-sender` reads its parent from `/proc/self/stat`, starts a victim, sends it signal 0, `SIGUSR1` and
# `SIGUSR2`; its child `ebl-3w-child` (whose parent is the sender) sends `SIGUSR1`; the sender ends with `SIGTERM`.

# %% tags=["trigger"]
lab.trigger()

# %% tags=["collect"]
df = lab.collect()
print(f"{len(df)} events from {', '.join(df.attrs['methods'])}; the workload sent {df.attrs['kills_sent']} kills")
df.head(20)

# %% [markdown]
# ## The truth, side by side
#
# The workload's own record (from `/proc`), then each way's answer for the workload's kills. A value the lesson
# knows to be unreliable on this kernel is flagged `trusted = False`, with the reason.

# %% tags=["truth"]
procs, kills = lab.truth()
display(procs)
mine = df[df["proc_parent_pid"].notna()]
display(mine[["method", "sender_comm", "sender_pid", "signal", "parent_pid", "proc_parent_pid", "matches_proc",
              "trusted"]])
agree = lab.agreement(df)
display(agree[["method", "kills_sent", "kills_seen", "parent_right", "parent_wrong", "trusted"]])

# %% tags=["truth-say"]
for r in agree.itertuples():
    n = r.parent_right + r.parent_wrong
    if r.trusted:
        print(f"{r.method}: saw {r.kills_seen} of {r.kills_sent} kills; its parent pid equals /proc's in "
              f"{r.parent_right} of {n}.")
    else:
        print(f"{r.method}: saw {r.kills_seen} of {r.kills_sent} kills; its parent pids are NOT trusted here "
              f"({r.parent_right} of {n} happen to equal /proc's): {r.why_not_trusted}.")

# %% tags=["plot-parents"]
plot_parents(df)
plt.show()

# %% [markdown]
# ## Detach
#
# bcc's program is removed, bpftrace and the loader are stopped (their programs go with them), nothing stays.

# %% tags=["detach"]
lab.detach()
print(lab)
for m, child in lab.children.items():
    print(f"{m}: process {child.proc.pid} ended with status {child.proc.returncode}")

# %% [markdown]
# ## Compile once, run everywhere
#
# The object above was built once. Nothing in it is tied to the kernel that built it except the offsets, and
# those libbpf rewrote at load time. So the same `.bpf.o` — the same bytes, inside the same loader — can be copied
# to a machine with another kernel and no compiler at all. The project's guest-kernel tests do exactly that: they
# load the object built here on a stock Debian 6.1 kernel (and one built there, here) and check that it reads the
# right parent on both. bcc has to compile on each machine, with that machine's headers; bpftrace compiles each
# script on each machine too, but from BTF.
#
# ## What each way costs, measured
#
# Each way is started again from nothing, in a fresh process, until it reports its first event (this notebook
# sends `kill(own pid, 0)` every 20 ms while it waits): the wall time, the tool process's peak memory, and what
# the target machine must have on disk for it.

# %% tags=["costs"]
costs = measure_costs(lab.core, methods=lab.methods)
costs

# %% tags=["plot-costs"]
plot_costs(costs)
plt.show()
for sentence in cost_conclusions(costs):
    print("-", sentence)

# %% [markdown]
# ## Where there is no BTF
#
# Both bpftrace and CO-RE stand on `/sys/kernel/btf/vmlinux`. Without it (a kernel built without
# `CONFIG_DEBUG_INFO_BTF`), bpftrace cannot type `curtask` and the libbpf way has no `vmlinux.h` to build from and
# nothing to relocate against; only bcc remains, and only as right as its headers.

# %% tags=["no-btf"]
if env["btf"]:
    print(f"This kernel has BTF ({env['kernel']}), so nothing above was lost.")
else:
    print("This kernel has no BTF. What was left out, and why:")
    for m, why in lab.skipped.items():
        print(f"- {m}: {why}")
