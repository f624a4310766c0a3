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
# 3. run the tutorial's first program as written: `Hello, World!` on every `kill()`, read back through `trace_pipe`,
# 4. answer the real question — **who killed whom, with which signal, and did it work?** — as a DataFrame, one row
#    per `kill()`, with the system call's arguments joined to its result,
# 5. plot who signals whom, and check every row against what the lesson's workload really did.

# %% tags=["imports"]
import matplotlib.pyplot as plt
import pandas as pd
from ebpf_lab.engine import program_path
from ebpf_lab.lessons.hello_kill import (HelloKillLesson, search_traceable, syscall_fnname, run_tutorial,
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
# `available_filter_functions` (the functions kprobes can really attach to, when the kernel lets us read it),
# tracefs's `available_events` (tracepoints) and `bpftrace -l` — and says what it could not read:

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
# ## 辅助函数 · 动手 — the tutorial's program, run as written
#
# > `bpf_trace_printk()` … 可以快速的输出信息至终端 … 通过 `tail -f /sys/kernel/debug/tracing/trace_pipe` 可以捕捉到信息 …
# > 也可以使用 `b.trace_fields()` 函数来获取trace_pipe文件当中的输出。
# > *`bpf_trace_printk()` prints quickly to the kernel's `trace_pipe`; `b.trace_fields()` reads it back.*
#
# `run_tutorial()` compiles the C above unchanged, attaches `hello_world` with `attach_kprobe(event=<the kill
# function>)` — **or, on a kernel without kprobes (it prints why), to the tracepoint `syscalls:sys_enter_kill`,
# which fires at the same moment, on entry to `kill()`** — starts the lesson's workload, which sends 9 kills,
# and prints `trace_fields()` in the tutorial's format. Two changes from the tutorial's Python half:
# `trace_fields()` returns **bytes** under Python 3, so they are decoded before printing (else `b'bash'`), and the
# endless `while 1:` loop becomes a bounded read (3 seconds or 15 lines), then everything is detached.

# %% tags=["tutorial-run"]
lines = run_tutorial(seconds=3, max_lines=15)
print(f"\nhook used: {lines.attrs['hook']}")

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

# %% tags=["plot"]
plot_who_kills_whom(df)
plt.show()
df.groupby(["sender_comm", "signal_name", "error"], observed=True).size().rename("calls").to_frame()

# %% [markdown]
# ## The tutorial's hook: a kprobe and a kretprobe
#
# Here is the kprobe variant of the same program, `hello_kill_kprobe.bpf.c`. On x86-64 (since 4.17) the kill
# function is a *wrapper*: its only argument is a `struct pt_regs *` holding the caller's registers, so the
# handler reads `pid` and `sig` from there (`PT_REGS_PARM1_SYSCALL`); the kretprobe reads the result with
# `PT_REGS_RC(ctx)`, as the tutorial does in its advanced section. `struct pt_regs` is the CPU's register frame —
# an ABI, the same whatever kernel headers compile the program.

# %% tags=["kprobe-source"]
print(open(program_path("hello_kill_kprobe.bpf.c")).read())

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
# ## What you saw
#
# * A bcc program is C for the kernel plus Python for you; `from bcc import BPF` (not `bpfcc`).
# * Hooks are found in `/proc/kallsyms`, `available_filter_functions`, `available_events` and `bpftrace -l`;
#   `get_syscall_fnname` names the system call's kernel function for this kernel.
# * `bpf_trace_printk` says *that* something happened; a ring buffer and two handlers (entry + return) joined per
#   thread say **who, to whom, with what, and the result**.
# * Where kprobes are missing, the syscall tracepoints give the same answer.
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
# | [choose-the-hook](exercises/choose-the-hook.ipynb) | ★ | Choose the hook: which tracepoint fires once per chdir()? |
# | [kill-to-pid](exercises/kill-to-pid.ipynb) | ★ | Only the signals sent to one process |
# | [kill-signal-counts](exercises/kill-signal-counts.ipynb) | ★★ | A table of who signals whom, counted in the kernel |
# | [write-the-loader](exercises/write-the-loader.ipynb) | ★★ | Write the loader: attach, poll a ring buffer for a while, clean up |
#
# Open one, fill in the marked gaps, and check it from a cell (`check(...)`, at its end) or from a shell:
# `sudo .venv/bin/ebpf-lab check EXERCISE notebooks/exercises/EXERCISE.ipynb`.
