# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ebpf-lab)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Hello kill — 开发 · kprobes · 辅助函数 · 动手: who sends kill?
#
# > 假如系统当中有进程莫名其妙的被杀死,我们能否写一个bpf程序来检测kill是谁发起的呢?
# > *Suppose a process on the machine keeps dying for no visible reason: can we write a BPF program that tells us
# > who sent the kill?*
#
# In this lesson you will
#
# 1. see the two halves of every bcc program (C for the kernel, Python for you),
# 2. search the kernel for places a program can hook "kill", and find the kill system call's kernel function,
# 3. write the tutorial's loader yourself — `BPF(...)`, an attach line, a bounded `trace_fields()` loop, `cleanup()` —
#    and see `Hello, World!` on every `kill()`, read back through `trace_pipe`,
# 4. answer the real question — **who killed whom, with which signal, and did it work?** — as a DataFrame, one row
#    per `kill()`, with the system call's arguments joined to its result,
# 5. plot who signals whom, and check every row against what the lesson's workload really did,
# 6. ask bpftrace the same question on the same workload, and check that both answers agree.

# %% tags=["imports"]
import matplotlib.pyplot as plt
import pandas as pd
from ebpf_lab.engine import program_path
from ebpf_lab.lessons.hello_kill import (HelloKillLesson, search_traceable, syscall_fnname,
                                         plot_who_kills_whom, bcc_module)
from ebpf_lab import _kernel

# %% [markdown]
# ## 开发 · 代码格式 — the two halves of a bcc program
#
# > BCC框架当中代码分为两部分,第一部分为C代码,为内核态处理逻辑,第二部分为Python,用于处理数据输出
# > *A bcc program has two parts: C code, the logic that runs in the kernel, and Python, which handles the output.*
#
# ```python
# from bcc import BPF
# bpf_text = """
# xxxxxx
# """
# b = BPF(text=bpf_text)
# print "xxxxxx"
# ```
#
# `BPF(text=...)` hands the C half to clang, which compiles it into BPF bytecode; the kernel's verifier checks it
# and the Python half attaches it to a hook and reads what it reports. (The tutorial's `print "xxxxxx"` is
# Python 2; today it is `print("xxxxxx")`.) Here is the tutorial's first program, both halves side by side:

# %% tags=["two-halves"]
print("---- C half: runs in the kernel (ebpf_lab/programs/hello_kill_tutorial.bpf.c) ----")
print(open(program_path("hello_kill_tutorial.bpf.c")).read())
print("---- Python half: the tutorial's loader ----")
print('''from bpfcc import BPF
b = BPF(text=bpf_text)
b.attach_kprobe(event="__x64_sys_kill", fn_name="hello_world")
while 1:
    (task, pid, cpu, flags, ts, ret) = b.trace_fields()
    print("%-18.9f %-16s %-6d %s \\n" % (ts, task, pid, ret))''')

# %% [markdown]
# The tutorial imports `from bpfcc import BPF`. On Debian and Ubuntu that line fails: the package
# `python3-bpfcc` installs a module named **`bcc`**. Let's see it fail, then use the right name (the lab also finds
# the system's `bcc` from inside this notebook's virtual environment):

# %% tags=["bpfcc-import"]
try:
    from bpfcc import BPF            # the tutorial's line
except ModuleNotFoundError as e:
    print(f"the tutorial's import fails here: {e}")
bcc_module()                         # makes the OS's bcc importable from this environment
from bcc import BPF                  # the module's real name
print("works:", BPF)

# %% [markdown]
# ## kprobes — 怎么知道哪些点可以插入bpf程序呢 (where can a program hook in?)
#
# > 通过 cat 查看可以追踪的函数 /proc/kallsyms (不一定都可以追踪); bpftrace -l 也可以查看
# > *`/proc/kallsyms` lists the kernel's functions (not all of them can be traced); `bpftrace -l` lists probes too.*
# >
# > `bpftrace -l | grep kill` #查看插桩点,查找与kill相关的函数,可以发现__x64_sys_kill函数与我们较为相关。
#
# `search_traceable("kill")` looks where the tutorial looks — `/proc/kallsyms`, tracefs's
# `available_filter_functions` (the functions **ftrace** can trace: the function tracer's list, and so
# fentry/fexit's; kprobes are not limited to it — they attach to most functions in `/proc/kallsyms`, except those
# the kernel protects), tracefs's `available_events` (tracepoints) and `bpftrace -l` — and says what it could not
# read. Expect a count of matches per source, then the notes:

# %% tags=["search"]
hits = search_traceable("kill")
display(hits.groupby(["source", "kind"]).size().rename("matches").to_frame())
for source, note in hits.attrs["notes"].items():
    print(f"- {source}: {note}")

# %% tags=["search-syscall"]
hits[hits.name.str.contains("sys_kill|sys_enter_kill|sys_exit_kill")].drop_duplicates(["source", "name"])

# %% [markdown]
# The tutorial hard-codes `__x64_sys_kill`. That name is x86-64's since Linux 4.17; arm64 says `__arm64_sys_kill`
# and older kernels `sys_kill`. bcc's `get_syscall_fnname("kill")` asks the running kernel instead (it looks up
# which prefix the `bpf` system call has in `/proc/kallsyms`):

# %% tags=["fnname"]
fn = syscall_fnname("kill")
print(f"the kill system call's kernel function here: {fn}")
print(f"kprobes on this kernel: {_kernel.kprobes_available()}")

# %% [markdown]
# ## 辅助函数 · 动手 — the tutorial's program, in your own cells
#
# > `bpf_trace_printk()` … 可以快速的输出信息至终端 … 通过 `tail -f /sys/kernel/debug/tracing/trace_pipe` 可以捕捉到信息 …
# > 也可以使用 `b.trace_fields()` 函数来获取trace_pipe文件当中的输出。
# > *`bpf_trace_printk()` prints quickly to the kernel's `trace_pipe`; `b.trace_fields()` reads it back.*
#
# Now you write the Python half yourself, as you would in a script. Two facts about the running kernel decide what
# that script must do; the lab's doctor (notebook 00) finds both by trying:
#
# * **kernel headers** — bcc compiles your C against the running kernel's headers. Where no headers package
#   matches the kernel, plain bcc cannot compile at all ("Failed to compile BPF module") until the environment
#   variable `BCC_KERNEL_SOURCE` names a headers tree;
# * **kprobes** — the tutorial's `attach_kprobe` needs a kernel built with kprobes (`CONFIG_KPROBES`).
#
# Expect two lines: the headers' status and whether kprobes attached (the doctor takes a few seconds).

# %% tags=["doctor"]
import os
from ebpf_lab.diagnose import doctor

checks = doctor().set_index("check")
has_kprobes = bool(checks.loc["kprobe", "ok"])
why_no_kprobes = checks.loc["kprobe", "fix"].split(". ")[0]   # the doctor's first sentence: why not
print(f"kernel headers: {checks.loc['kernel headers', 'status']} — {checks.loc['kernel headers', 'detail']}")
print(f"kprobes: yes — {checks.loc['kprobe', 'detail']}" if has_kprobes else f"kprobes: no — {why_no_kprobes}")

# %% [markdown]
# Where the headers are only a *fallback*, the lab's prepare step merges the nearest headers the distribution has
# into one tree and points `BCC_KERNEL_SOURCE` at it; this cell does it openly, and only then:

# %% tags=["headers"]
from ebpf_lab import kernel_headers

if checks.loc["kernel headers", "status"] == "fallback":
    info = kernel_headers.prepare()   # builds the merged tree once, sets os.environ["BCC_KERNEL_SOURCE"]
    print(f"no headers match kernel {info.kernel}, so plain bcc would not compile. The lab's prepare step points it "
          f"at the {info.headers} headers:\n  BCC_KERNEL_SOURCE={os.environ.get('BCC_KERNEL_SOURCE')}\n"
          "(in a script of your own, export that variable first). Tracepoint arguments stay right with these "
          "headers; kernel structs read through them may not be.")
else:
    print(f"kernel headers: {checks.loc['kernel headers', 'detail']}: bcc compiles without help")

# %% [markdown]
# ### The loader, written out
#
# The tutorial's Python half, made safe to run twice and to fail half-way:
#
# * `BPF(src_file=...)` compiles and loads the C — with an **absolute** path: bcc resolves a relative `src_file`
#   against `sys.argv[0]`, which in Jupyter is the kernel launcher. `BPF(text=bpf_text)`, the tutorial's way, does
#   the same from a string.
# * **`with BPF(...) as b:`** — bcc's `BPF` is a context manager: leaving the block calls `b.cleanup()`, which
#   detaches every probe and closes the program, *also when a line inside the block fails*. (`b = BPF(...)` then
#   `try: ... finally: b.cleanup()` does the same.)
# * The attach line branches on the doctor's answer, visibly: `attach_kprobe(event=b.get_syscall_fnname("kill"),
#   fn_name="hello_world")` where the kernel has kprobes; else `attach_tracepoint(tp="syscalls:sys_enter_kill",
#   fn_name="hello_world")`, a hook that fires at the same moment, on entry to `kill()`. `hello_world` takes no
#   arguments, so it runs unchanged on either.
# * `trace_pipe` is global and keeps old lines: drain it first, then read in a **bounded** loop (3 seconds or 15
#   lines) instead of `while 1:`. Under Python 3 `trace_fields()` returns bytes: decode them before printing.
# * The lesson's workload (`ebl-killer`, 9 kills sent to two victims) runs while the loop reads.
#
# Expect lines `<time> ebl-killer <pid> Hello, World!`, one per `kill()` (other programs' kills and `trace_printk`
# lines can show up too), then the hook used and how many probes are still attached after the block: 0.

# %% tags=["tutorial-run"]
import subprocess
import time
from bcc import BPF
from ebpf_lab.tutorial import drain_trace_pipe
from ebpf_lab.lessons.hello_kill import workload_command

src = program_path("hello_kill_tutorial.bpf.c")         # the tutorial's C half, by absolute path
with BPF(src_file=src) as b:                             # compile + load; b.cleanup() when the block ends, error or not
    kill_fn = b.get_syscall_fnname("kill").decode()      # the kill syscall's kernel function on this kernel
    if has_kprobes:
        b.attach_kprobe(event=kill_fn, fn_name="hello_world")
        hook = f"kprobe:{kill_fn}"
    else:
        b.attach_tracepoint(tp="syscalls:sys_enter_kill", fn_name="hello_world")
        hook = "tracepoint:syscalls:sys_enter_kill"
        print(f"the doctor says {why_no_kprobes}, so attach_kprobe(event=\"{kill_fn}\") "
              "cannot work: hello_world is attached to the tracepoint syscalls:sys_enter_kill instead\n")
    drain_trace_pipe()                                   # throw away what older programs left in trace_pipe
    workload = subprocess.Popen(workload_command(5), stdout=subprocess.DEVNULL)
    lines, deadline = 0, time.monotonic() + 3
    while lines < 15 and time.monotonic() < deadline:    # bounded: no while 1
        (task, pid, cpu, flags, ts, msg) = b.trace_fields(nonblocking=True)
        if task is None:                                 # nothing waiting yet
            time.sleep(0.05)
            continue
        lines += 1
        print("%-18.9f %-16s %-6d %s" % (ts, task.decode(errors="replace"), pid, msg.decode(errors="replace")))
    workload.wait()
print(f"\nhook used: {hook}; {lines} lines read; probes still attached after the block: "
      f"{b.num_open_kprobes() + b.num_open_tracepoints()}")

# %% [markdown]
# What if a cell fails half-way? Here is a deliberate mistake right after an attach. Expect "attached: 1", the
# error, then "attached after the failure: 0" — the `with` block detached on the way out:

# %% tags=["cleanup-guard"]
try:
    with BPF(src_file=src) as b:
        b.attach_tracepoint(tp="syscalls:sys_enter_kill", fn_name="hello_world")
        print(f"attached: {b.num_open_tracepoints()} tracepoint(s)")
        raise RuntimeError("a mistake half-way through the cell")
except RuntimeError as e:
    print(f"the cell failed: {e}")
print(f"attached after the failure: {b.num_open_tracepoints()} tracepoint(s)")

# %% [markdown]
# **Programs that attach themselves.** bcc attaches some functions on its own while `BPF(...)` is created, by
# their names: `kprobe__<function>` and `kretprobe__<function>`, `tracepoint__<category>__<event>` — which is the
# name bcc's `TRACEPOINT_PROBE(category, event)` macro gives a function — and `raw_tracepoint__<name>`. That is why
# the tutorial's kmalloc loader in lesson 02 has no attach line at all: its `TRACEPOINT_PROBE(kmem, kmalloc)` is
# attached by `BPF(text=...)` itself. (The lab turns this off in its own steps so that attaching stays a step.)

# %% [markdown]
# ### Why `trace_pipe` is a poor data channel
#
# * It is **global**: every program on the machine that calls `bpf_trace_printk` writes into the same pipe (other
#   senders' lines may show up above), and lines stay there until somebody reads them.
# * It carries **text** formatted in the kernel and parsed again in Python, and only three arguments per line.
# * "Hello, World!" says *that* `kill()` ran — not who was targeted, with which signal, or whether it worked.
#
# The lesson's own program sends one fixed-size binary record per `kill()` through a **BPF ring buffer** that
# belongs to this program alone; the lab drains it in bulk into a DataFrame.
#
# ## What the lab does for you from here on
#
# The loader above is the whole of bcc's Python half. From here on the lab does it for you, one named step per
# cell, each a method you can open: `lab.source()` prints the exact C with its `-D` flags, `lab.compile()` is
# `BPF(...)`, `lab.load()` loads each function through the verifier, `lab.attach()` is the attach lines (each
# detach registered the moment its attach succeeds), `lab.collect()` the bounded read, `lab.detach()` the
# `cleanup()`.
#
# ## 动手 1 — who sends kill? One row per call
#
# To know whether a kill worked we need its **result** too, which only exists when `kill()` returns. So the
# program has two handlers: one at **entry** (the arguments: target pid and signal), one at **return** (the
# result, 0 or `-errno`). The entry handler stores the arguments in a BPF hash map keyed by thread id; the return
# handler takes them out, adds the result and the time spent, and sends the record. On a kernel with kprobes these
# are a kprobe and a kretprobe on the kill function; without kprobes, the tracepoints `syscalls:sys_enter_kill` and
# `syscalls:sys_exit_kill`. Both fill the same record, so the DataFrame is the same.
#
# ### 1 · Source (the exact C that will be compiled, with its `-D` flags)

# %% tags=["source"]
lab = HelloKillLesson()
print(lab.source())

# %% [markdown]
# ### 2 · Compile (clang turns the C into BPF bytecode)

# %% tags=["compile"]
lab.compile()

# %% [markdown]
# ### 3 · Load (the kernel's verifier checks every path of both handlers before accepting them)

# %% tags=["load"]
lab.load()

# %% [markdown]
# ### 4 · Attach (which hooks were used, and why)

# %% tags=["attach"]
hooks = lab.attach()
for h in lab.hooks:
    print(f"{h.name:45} <- {h.fn}")
for note in hooks.note[hooks.note != ""]:
    print(f"\nnote: {note}")

# %% [markdown]
# ### 5 · Trigger the workload
# A small C program named `ebl-killer` starts two victim processes (`ebl-victim`) and signals them: signal 0
# (does it exist?), SIGUSR1 and SIGUSR2 (handled), signal 99 (no such signal), SIGSTOP then SIGCONT, SIGTERM,
# SIGKILL — and SIGTERM to pid 99999999, which cannot exist. It prints what it sent and what `kill()` answered.

# %% tags=["trigger"]
wl = lab.trigger()
print(f"workload pid {wl.pid}: {wl.description}")

# %% [markdown]
# ### 6 · Collect (until the workload ends; the ring buffer is drained a few times a second)
#
# Expect one row per `kill()` on the machine while the workload ran — at least the workload's 9 — and `lost: 0`.

# %% tags=["collect"]
df = lab.collect()
print(f"{len(df)} kill() calls seen; lost: {df.attrs['lost']}; hooks: {df.attrs['hooks']}")
df

# %% [markdown]
# Every column is typed and documented (`HelloKillLesson.columns`). Other processes' kills show up too (the
# program watches the whole machine); the workload's are those with its pid as `sender_pid`.
#
# ### Does it match what the workload did?
# The workload's own account (what it sent, what `kill()` returned to it) beside what the BPF program saw:

# %% tags=["check"]
check = lab.compare_with_workload(df)
display(check)
assert check.agree.all(), "BPF and the workload disagree"
print("every kill the workload sent was seen, with the same target, signal and result")

# %% [markdown]
# ### 7 · Detach (nothing stays attached)

# %% tags=["detach"]
lab.detach()
print(lab)

# %% [markdown]
# ## Who signals whom
#
# One marker per `kill()`: across, time; down, the target; colour, the signal; a cross where the call failed.
# The failed ones carry their `errno`: `EINVAL` for signal 99, `ESRCH` ("no such process") for pid 99999999.
# Expect the workload's 9 kills against its two victims and pid 99999999, two of them crossed, then the count per
# sender, signal and error.

# %% tags=["plot"]
plot_who_kills_whom(df)
plt.show()
df.groupby(["sender_comm", "signal_name", "error"], observed=True).size().rename("calls").to_frame()

# %% [markdown]
# ## The tutorial's hook: a kprobe and a kretprobe
#
# The kprobe variant is the same file, `hello_kill.bpf.c`, compiled with `-DHOOK_KPROBE`; `lab.source("kprobe")`
# prints the exact C with the flags this kernel would give it. On x86-64 (since 4.17) the kill
# function is a *wrapper*: its only argument is a `struct pt_regs *` holding the caller's registers, so the
# handler reads `pid` and `sig` from there (`PT_REGS_PARM1_SYSCALL`); the kretprobe reads the result with
# `PT_REGS_RC(ctx)`, as the tutorial does in its advanced section. `struct pt_regs` is the CPU's register frame —
# an ABI, the same whatever kernel headers compile the program.

# %% tags=["kprobe-source"]
print(lab.source("kprobe"))

# %% tags=["kprobe-run"]
if df.attrs["hooks"][0].startswith("kprobe:"):
    print(f"This kernel has kprobes: the lesson above already ran this variant, hooks: {df.attrs['hooks']}")
elif _kernel.kprobes_available():  # hook="tracepoint" was chosen above; run the kprobe variant too
    kp = HelloKillLesson(hook="kprobe")
    d = kp.run()
    print(f"hooks: {d.attrs['hooks']}")
    c = kp.compare_with_workload(d)
    display(c)
    assert c.agree.all()
else:
    print("This kernel has no kprobes (CONFIG_KPROBES is not set: tracefs has no kprobe_events), so the kprobe "
          "variant cannot attach here; the lesson above used the tracepoints syscalls:sys_enter_kill and "
          "sys_exit_kill instead. On a kernel with kprobes the lesson runs this kprobe + kretprobe variant.")

# %% [markdown]
# ## The same question in bpftrace
#
# > bpftrace最简单 — *bpftrace is the simplest way in.*
#
# bpftrace compiles a one-line program, attaches it and prints. `bpftrace_program()` writes the lesson's question on
# the hook the lesson used on this kernel, and says why; `bpftrace_kills()` runs it bounded (`timeout -s INT`), with
# JSON output (`-f json`), and lets bpftrace's own `-c` start a fresh run of the workload once the probe is attached
# — so `cpid` in the program is the workload's pid — then turns each printed line into a row
# (`ebpf_lab.bpftrace.run`, a small runner you can open).
#
# Expect the command to type in a shell, the hook and why, then the workload's 9 kills as rows:

# %% tags=["bpftrace"]
from ebpf_lab.lessons.hello_kill import bpftrace_kills, compare_with_bpftrace

bt = bpftrace_kills(kprobes=has_kprobes)
print(f"$ {bt.attrs['command']}\n\nhook: {bt.attrs['hook_note']}\n")
bt

# %% [markdown]
# The two runs had their own victims, so kills are compared by role ("victim 1", "victim 2", the pid that cannot
# exist) and signal, in order. Expect one row per kill with `bcc`, `bpftrace` and `agree` all True:

# %% tags=["bpftrace-compare"]
both = compare_with_bpftrace(check, lab.workload_report().attrs["victims"], bt)
display(both)
assert both.agree.all(), "bcc and bpftrace disagree"
print(f"bcc and bpftrace agree on all {len(both)} kills of the workload")

# %% [markdown]
# ## What you saw
#
# * A bcc program is C for the kernel plus Python for you; `from bcc import BPF` (not `bpfcc`); `with BPF(...) as b:`
#   detaches everything when the block ends, even after an error.
# * Hooks are found in `/proc/kallsyms`, `available_filter_functions`, `available_events` and `bpftrace -l`;
#   `get_syscall_fnname` names the system call's kernel function for this kernel.
# * `bpf_trace_printk` says *that* something happened; a ring buffer and two handlers (entry + return) joined per
#   thread say **who, to whom, with what, and the result**.
# * Where kprobes are missing, the syscall tracepoints give the same answer — and bpftrace, on the same hook, agrees.
#
# > 当然,bcctool当中已经自带了killsnoop工具 — bcc ships a finished tool for this, `killsnoop`
# > (Debian: `killsnoop-bpfcc`). From the shell, this lesson is `ebpf-lab run hello-kill --out kills.csv`;
# > add `--no-workload --seconds 30` to watch the rest of the machine instead.
#
# Next: **02_kmalloc** (tracepoints), then **03_args_return** (arguments and return values of any function).

# %% [markdown]
# ## Exercises
#
# | exercise | level | what to do |
# |---|---|---|
# | [kill-to-pid](exercises/kill-to-pid.ipynb) | ★ | Only the signals sent to one process |
# | [kill-signal-counts](exercises/kill-signal-counts.ipynb) | ★★ | A table of who signals whom, counted in the kernel |
#
# Open one, fill in the marked gaps, and check it from a cell (`check(...)`, at its end) or from a shell:
# `sudo .venv/bin/ebpf-lab check EXERCISE notebooks/exercises/EXERCISE.ipynb`.
