# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ebpf-lab)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Arguments and return values — 进阶用法, and uprobes
#
# > 如果想获取某一个kernel函数传入参数的值或者函数返回的值呢?
# > *What if we want the values a kernel function was called with, or the value it returned?*
#
# The tutorial's answer: a **kprobe** at the function's entry, whose handler declares the function's arguments
# after `struct pt_regs *ctx`, and a **kretprobe** at its return, where `PT_REGS_RC(ctx)` is the return value.
# In this lesson you will
#
# 1. see the tutorial's own example (`blk_insert_cloned_request`) and why it hardly ever fires,
# 2. use the same technique on a function that fires all the time — `openat()`: filename and flags in, a file
#    descriptor or `-errno` out — with each call's entry joined to its return per thread, and its latency,
# 3. check every row against files the lesson's workload opened, some of which fail on purpose,
# 4. do the same in user space with **uprobes**: libc's `strtol()` and a function of a small program.

# %% tags=["imports"]
import matplotlib.pyplot as plt
import pandas as pd
from ebpf_lab.engine import program_path
from ebpf_lab.kernel_headers import headers_info
from ebpf_lab.lessons.args_return import (ArgsReturnLesson, UprobeArgsReturnLesson, tutorial_example,
                                          kernel_signature, TUTORIAL_SIGNATURE,
                                          plot_latency, plot_errors, plot_uprobe_calls)
from ebpf_lab.bpftool import programs, programs_gone
from ebpf_lab import _kernel

# %% [markdown]
# ## 进阶用法 — the tutorial's example
#
# ```python
# b.attach_kprobe(event="blk_insert_cloned_request", fn_name="get_segments")
# b.attach_kretprobe(event="blk_insert_cloned_request", fn_name="get_segments_res")
# ```
# ```c
# int get_segments(struct pt_regs *ctx, struct request_queue *q, struct request *rq, bool no_sg_merge) { }
# int get_segments_res(struct pt_regs *ctx, struct request_queue *q, struct request *rq)
# {
#    int ret = PT_REGS_RC(ctx);
#    ...
# }
# ```
#
# > 第一个参数必需为 struct pt_regs *ctx — *the first parameter must be `struct pt_regs *ctx`*; the ones after it are
# > the probed function's own, and bcc turns them into reads of the argument registers.
#
# The tutorial leaves the bodies out; in the lab's copy they count calls:

# %% tags=["tutorial-source"]
print(open(program_path("args_return_tutorial.bpf.c")).read())

# %% [markdown]
# `tutorial_example()` compiles and loads it (the verifier accepts it), then — where the kernel has kprobes and the
# function — attaches both probes for a second while the openat workload below does file I/O, and counts:

# %% tags=["tutorial-run"]
ex = tutorial_example(seconds=1.0)
display(ex.T.rename(columns={0: "fact"}))
print(ex.why[0])

# %% [markdown]
# `blk_insert_cloned_request()` belongs to **request-based device-mapper** (dm-multipath): it hands a cloned I/O
# request to the disk underneath. Unless the machine's storage goes through multipath, nothing calls it — the
# `calls` row above says how often it fired here, if it could be attached at all (some kernels do not build it).
# A probe that never fires teaches nothing, so the lesson uses a function that fires under its own workload: the
# kernel side of `openat()`.
#
# ### Is the tutorial's signature right? Ask the kernel
#
# Not on current kernels. Since about Linux 5.16 the function is `blk_status_t blk_insert_cloned_request(struct
# request *rq)` — one argument; the `request_queue` is found from the request (before, it took `q` and `rq`). And
# `bool no_sg_merge` never was one of its arguments. bcc does not check a handler's declared
# arguments against anything: it simply reads the 1st, 2nd, 3rd argument registers under the names you gave. A
# wrong signature compiles, loads and attaches, and then `q` holds the request, `rq` holds whatever the second
# register held, and `no_sg_merge` garbage — silently.
#
# And in a **kretprobe**, declared arguments hold nothing useful at all: the probe runs when the function returns,
# when the argument registers have long been reused. Only `PT_REGS_RC(ctx)`, the return value, is meaningful
# there. To use an argument at return, save it at entry, in a map keyed by thread id — which is exactly what this
# lesson's `openat` programs do below.
#
# The running kernel describes its own functions in its **BTF** (`/sys/kernel/btf/vmlinux`). `kernel_signature()`
# reads it with `bpftool btf dump` (on kernels where bpftrace can use fentry, `bpftrace -lv 'kfunc:NAME'` shows the
# same). Expect the tutorial's declaration, then what this kernel says — for the tutorial's function (if it has it)
# and for `do_sys_openat2`, the function behind `openat()`:

# %% tags=["signature"]
print("the tutorial declares:", TUTORIAL_SIGNATURE)
for name in ("blk_insert_cloned_request", "do_sys_openat2"):
    sig = kernel_signature(name)
    print(f"\n{name}: {sig['signature'] or 'not known here'}\n  from: {sig['source']}")
print("\nby hand:", sig["command"])
#
# One more reason to pick a system call: the tutorial's handler receives `struct request *rq` — to read anything
# *inside* it, the program must know the struct's layout, which comes from the kernel headers it is compiled with.

# %% tags=["headers"]
h = headers_info()
print(f"headers: {h.status} — {h.detail}")
print(f"kernel struct fields readable with the right offsets: {h.struct_reads_trustworthy}")

# %% [markdown]
# When the headers are not the running kernel's own (`fallback`), offsets inside kernel structs can be silently
# wrong, so this lesson's programs read **no kernel struct fields**: system call arguments come from the caller's
# registers (`struct pt_regs`, fixed by the CPU's ABI) or from tracepoint fields (described by the running kernel
# itself), and user-space arguments from user memory.
#
# ## The same technique on `openat()`
#
# Hooks, best first — the lesson takes the first this kernel really allows, and says which:
#
# | hook | program | needs |
# |---|---|---|
# | kprobe + kretprobe on the `openat` function (`__x64_sys_openat` on x86-64) | `args_return.bpf.c` with `-DHOOK_KPROBE` | kprobes |
# | fentry + fexit (BPF trampolines) on the same function | `args_return.bpf.c` with `-DHOOK_FEXIT` | BTF, and a kernel that really loads them |
# | tracepoints `syscalls:sys_enter_openat` + `sys_exit_openat` | `args_return.bpf.c` with `-DHOOK_TRACEPOINT` | syscall tracepoints |
#
# One C body; the `-D` flag picks the entry points (the source below starts with the flags it is compiled with).
#
# ### 1 · Source

# %% tags=["source"]
lab = ArgsReturnLesson(rounds=20)
print(lab.source())

# %% [markdown]
# ### 2 · Compile

# %% tags=["compile"]
lab.compile()

# %% [markdown]
# ### 3 · Load (the verifier)
#
# Loading hands each function's bytecode to the kernel, whose **verifier** walks every path through it and refuses
# anything unsafe (lesson 04 shows a refusal). The table has one row per function, with what the kernel reports:
#
# * `prog_id` — the program's id in the kernel, as `bpftool prog show id N` knows it (used below);
# * `xlated_insns` — its length in BPF instructions *after* the verifier rewrote it (context accesses become reads
#   of the real kernel structures, some helper calls are inlined), so not the same as the compiled size;
# * `verified_insns` — how many instructions the verifier *walked* to prove it safe, counting an instruction again
#   on every path that reaches it (Linux 5.16+; empty before). Its work, not the program's size: a program is
#   refused when this passes one million;
# * `jited_bytes` — the size of the native machine code the JIT compiler made of it (0 where the JIT is off).

# %% tags=["load"]
loaded = lab.load()
loaded

# %% [markdown]
# ### 4 · Attach (which hooks, and why)

# %% tags=["attach"]
hooks = lab.attach()
for h in lab.hooks:
    print(f"{h.name:45} <- {h.fn}")
for note in hooks.note[hooks.note != ""]:
    print(f"\nnote: {note}")

# %% [markdown]
# What the kernel now holds, asked with `bpftool prog show id N` for the ids of the load table (this lesson's own
# programs only: other programs on the machine are never listed). Expect one row per function, with the program
# type of the hook that was chosen (`kprobe` for kprobes, `tracing` for fentry/fexit, `tracepoint`), and the ids of
# the maps they share:

# %% tags=["kernel-view"]
programs(loaded.prog_id)

# %% [markdown]
# ### 5 · Trigger the workload
# `ebl-opener` makes a fresh folder `/tmp/ebl-trace-open-XXXXXX`, creates two files in it, then 20 times opens:
# a readable file (an fd), a missing one (`ENOENT`), a folder for writing (`EISDIR`), a path through a file
# (`ENOTDIR`), a new file with `O_CREAT|O_EXCL` (an fd) and the same again (`EEXIST`), a symlink with `O_NOFOLLOW`
# (`ELOOP`), and a mode-0600 file from a child running as `nobody` (`EACCES`). It prints every call and result.

# %% tags=["trigger"]
wl = lab.trigger()
print(f"workload pid {wl.pid}: {wl.description}")

# %% [markdown]
# ### 6 · Collect
#
# Expect every `openat()` on the machine while the workload ran — at least the workload's own (eight a
# round), usually many more from other programs — with `lost: 0`, and then the workload's own calls: filenames in its folder, and for each a file
# descriptor (`fd`) or an error name.

# %% tags=["collect"]
df = lab.collect()
print(f"{len(df):,} openat() calls seen on the whole machine; lost: {df.attrs['lost']}; hooks: {df.attrs['hooks']}")
folder = lab.workload_report().attrs["dir"]
mine = df[df.filename.str.startswith(folder + "/")]
mine[["pid", "comm", "filename", "flags_text", "ret", "fd", "error", "latency_us"]].head(12)

# %% [markdown]
# Each row joins what was known at **entry** (`filename`, `flags`, `mode`) with what was known at **return**
# (`ret`: a file descriptor, or `-errno`) — matched by thread id in a BPF hash map — and the time in between.
#
# ### Does it match what the workload did?

# %% tags=["check"]
check = lab.compare_with_workload(df)
display(check.head(10))
assert check.agree.all(), "BPF and the workload disagree"
print(f"all {len(check)} openat() calls of the workload were seen, each with the fd or error it really got")

# %% [markdown]
# ### 7 · Detach
#
# Expect `[closed]`, and `bpftool` to find none of the lesson's programs any more (the kernel frees a closed program
# a moment later; `programs_gone()` asks again until it has, for a few seconds at most).

# %% tags=["detach"]
lab.detach()
print(lab)
print("bpftool prog show, this lesson's ids:", len(programs_gone(loaded.prog_id)), "programs")

# %% [markdown]
# ## Plots
#
# **Latency.** How long `openat()` took, entry to return, for every call on the machine during the run. Expect
# failing calls to be among the fastest (the path lookup stops early) and creating a file to cost the most; the
# table under the plot gives the median, the 90th percentile and the maximum per result.

# %% tags=["plot-latency"]
plot_latency(df)
plt.show()
outcome = df.error.astype(str).replace("", "success (fd)").rename("result")
df.groupby(outcome)["latency_us"].describe(percentiles=[0.5, 0.9])[["count", "50%", "90%", "max"]]

# %% [markdown]
# **Errors by cause.** The return value's `-errno`, named. Expect at least the workload's own failures —
# `ENOENT`, `EISDIR`, `ENOTDIR`, `EEXIST`, `ELOOP`, `EACCES`, one per round each — plus whatever else failed on the
# machine meanwhile (`ENOENT` is the usual one: programs probing for files that are not there):

# %% tags=["plot-errors"]
plot_errors(df)
plt.show()

# %% [markdown]
# ## uprobes — 与kprobe类似,但是用于用户态程序插桩
#
# > *uprobes are like kprobes, but instrument user-space programs.*
#
# The same entry/return technique on functions in user space: libc's `strtol(nptr, endptr, base)` — which every
# program on the machine shares, so other processes' calls show up too — and `ebl_collatz(label, n)`, a function of
# `ebpf_lab/workloads/argsret_target.c` that the lab compiles. The handlers declare the functions' arguments after
# `struct pt_regs *ctx`, exactly like the tutorial's kprobe handler. There is no fallback hook for user-space
# functions: this part needs uprobes (the doctor, lesson 00, says whether the kernel has them).
#
# Expect below: the load and attach tables (four functions: entry and return of each), then the workload's calls —
# `ebl_collatz` with its label and `n` in, the number of steps out, and `strtol` with the text and base in, the
# number out.

# %% tags=["uprobe-source"]
up = UprobeArgsReturnLesson()
print(up.source())

# %% tags=["uprobe-steps"]
up.compile()
display(up.load())
display(up.attach())
uwl = up.trigger()
udf = up.collect()
up.detach()
print(f"{len(udf)} calls seen; hooks: {udf.attrs['hooks']}")
udf[udf.pid == uwl.pid][["comm", "function", "text_arg", "int_arg", "ret", "latency_us"]]

# %% [markdown]
# The first `strtol` call of the workload's pid comes from its own `atoi(argv[1])` (glibc's `atoi` calls
# `strtol`), before it renamed itself `ebl-argsret`. Compared with what the program printed:

# %% tags=["uprobe-check"]
ucheck = up.compare_with_workload(udf)
display(ucheck)
assert ucheck.agree.all()

# **The plot.** Left: each `ebl_collatz(label, n)` call of the workload, its argument `n` on the x axis (symlog:
# linear near 0, logarithmic beyond), the time from entry to return on the y axis, and the returned step count as
# a label — arguments in, result out, joined per call. Right: the workload's `strtol()` calls, one bar per
# (string, base) pair, the bar's length the number it returned. Expect the Collatz times to stay flat — see below
# why — and each `strtol` bar to equal its string read in that base.

# %% tags=["uprobe-plot"]
plot_uprobe_calls(udf[udf.comm.astype(str) == "ebl-argsret"])
plt.tight_layout()
plt.show()

# %% [markdown]
# A uprobe costs a trap into the kernel at entry and another at return, several microseconds together, which is
# most of what `latency_us` shows for these short functions: the longest Collatz run (524 steps) takes well under
# a microsecond of real work.
#
# ## The same question in bpftrace
#
# > bpftrace最简单 — *bpftrace is the simplest way in.*
#
# The openat question — filename and flags at entry, the result at return, joined per thread — fits in one
# bpftrace program: two probes and two maps keyed by `tid` (`@path[tid]`), the same join the lesson's C program
# makes in a BPF hash. `bpftrace_program()` writes it on the hook the lesson would use on this kernel — kprobe +
# kretprobe where there are kprobes, else the syscall tracepoints — and says which and why (computed from the
# running kernel). `bpftrace_opens()` runs it bounded (`timeout -s INT`), with JSON output (`-f json`), and lets
# bpftrace's own `-c` start a fresh run of the workload (5 rounds) once the probes are attached; each printed line
# becomes a row (`ebpf_lab.bpftrace.run`, a small runner you can open).
#
# Expect the command to type in a shell, the hook and why, then the workload's calls as rows — the same paths,
# flags and results as the lesson's table above, in a folder of their own:

# %% tags=["bpftrace"]
from ebpf_lab.lessons.args_return import bpftrace_opens, compare_with_bpftrace

bt = bpftrace_opens(kprobes=_kernel.kprobes_available(), rounds=5)
print(f"$ {bt.attrs['command']}\n\nhook: {bt.attrs['hook_note']}\n")
bt.head(12)

# %% [markdown]
# The two runs worked in their own folders, so calls are compared by the path inside the folder, the flags and the
# result the workload reported, in order (the first 5 rounds of the lesson's 20). Expect one row per call with
# `bcc`, `bpftrace` and `agree` all True:

# %% tags=["bpftrace-compare"]
both = compare_with_bpftrace(check, bt)
display(both.head(10))
if not (len(both) and both.agree.all()):  # show where they differ before failing
    display(both[~both.agree])
    print(f"bpftrace: {len(bt)} rows, {len(bt.attrs['report'])} calls reported, lost {bt.attrs['lost']}; {bt.attrs['stderr']}")
assert len(both) and both.agree.all(), "bcc and bpftrace disagree"
print(f"bcc and bpftrace agree on all {len(both)} openat() calls both runs made")

# %% [markdown]
# ## What you saw
#
# * Entry probes see arguments, return probes see results; a BPF hash keyed by thread id joins them, and the
#   difference of their timestamps is the call's latency.
# * The tutorial's `blk_insert_cloned_request` rarely fires outside device-mapper multipath; `openat()` always does.
#   Its printed signature is out of date (one argument since 5.16): check a function's arguments in the running
#   kernel's BTF before declaring them, and never trust declared arguments in a return probe.
# * `bpftool prog show` lists the programs a lesson loaded while they live, and nothing after detach.
# * Where kprobes are missing, fentry/fexit may work — only loading one tells — and else the syscall tracepoints
#   carry the same arguments and result.
# * Kernel struct fields need headers that match the running kernel; arguments and tracepoint fields do not.
# * uprobes do the same for user-space functions, libraries and programs alike.
# * bpftrace answers the same question in two probes and two maps, on the same hook, and agrees with the lesson.
#
# From the shell: `ebpf-lab run args-return --out opens.csv`, `ebpf-lab run args-return-uprobes --out calls.csv`.

# %% [markdown]
# ## Exercises
#
# | exercise | level | what to do |
# |---|---|---|
# | [openat-failures](exercises/openat-failures.ipynb) | ★★ | Which opens fail, and why: an argument joined with its result |
# | [openat-latency](exercises/openat-latency.ipynb) | ★★★ | A latency histogram from an entry and a return hook |
#
# Open one, fill in the marked gaps, and check it from a cell (`check(...)`, at its end) or from a shell:
# `sudo .venv/bin/ebpf-lab check EXERCISE notebooks/exercises/EXERCISE.ipynb`.
