"""Writes notebooks/01_hello_kill.ipynb and notebooks/03_args_return.ipynb (without outputs).

    .venv/bin/python notebooks/_build/lessons_01_03.py

Every code cell carries a tag naming its step (tests address cells by tag).
Edit the notebooks here, not in JupyterLab, so that they stay reviewable.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbkit import code, md, write_all  # noqa: E402


# ============================================================== lesson 01
HELLO_KILL = [
    md("""
# 01 · Hello kill — 开发 · kprobes · 辅助函数 · 动手: who sends kill?

> 假如系统当中有进程莫名其妙的被杀死,我们能否写一个bpf程序来检测kill是谁发起的呢?
> *Suppose a process on the machine keeps dying for no visible reason: can we write a BPF program that tells us
> who sent the kill?*

In this lesson you will

1. see the two halves of every bcc program (C for the kernel, Python for you),
2. search the kernel for places a program can hook "kill", and find the kill system call's kernel function,
3. run the tutorial's first program as written: `Hello, World!` on every `kill()`, read back through `trace_pipe`,
4. answer the real question — **who killed whom, with which signal, and did it work?** — as a DataFrame, one row
   per `kill()`, with the system call's arguments joined to its result,
5. plot who signals whom, and check every row against what the lesson's workload really did.
"""),
    code("imports", """
import matplotlib.pyplot as plt
import pandas as pd
from ebpf_lab.engine import program_path
from ebpf_lab.lessons.hello_kill import (HelloKillLesson, search_traceable, syscall_fnname, run_tutorial,
                                         plot_who_kills_whom, bcc_module)
from ebpf_lab import _kernel
"""),
    md("""
## 开发 · 代码格式 — the two halves of a bcc program

> BCC框架当中代码分为两部分,第一部分为C代码,为内核态处理逻辑,第二部分为Python,用于处理数据输出
> *A bcc program has two parts: C code, the logic that runs in the kernel, and Python, which handles the output.*

```python
from bcc import BPF
bpf_text = \"\"\"
xxxxxx
\"\"\"
b = BPF(text=bpf_text)
print "xxxxxx"
```

`BPF(text=...)` hands the C half to clang, which compiles it into BPF bytecode; the kernel's verifier checks it
and the Python half attaches it to a hook and reads what it reports. (The tutorial's `print "xxxxxx"` is
Python 2; today it is `print("xxxxxx")`.) Here is the tutorial's first program, both halves side by side:
"""),
    code("two-halves", """
print("---- C half: runs in the kernel (ebpf_lab/programs/hello_kill_tutorial.bpf.c) ----")
print(open(program_path("hello_kill_tutorial.bpf.c")).read())
print("---- Python half: the tutorial's loader ----")
print('''from bpfcc import BPF
b = BPF(text=bpf_text)
b.attach_kprobe(event="__x64_sys_kill", fn_name="hello_world")
while 1:
    (task, pid, cpu, flags, ts, ret) = b.trace_fields()
    print("%-18.9f %-16s %-6d %s \\\\n" % (ts, task, pid, ret))''')
"""),
    md("""
The tutorial imports `from bpfcc import BPF`. On Debian and Ubuntu that line fails: the package
`python3-bpfcc` installs a module named **`bcc`**. Let's see it fail, then use the right name (the lab also finds
the system's `bcc` from inside this notebook's virtual environment):
"""),
    code("bpfcc-import", """
try:
    from bpfcc import BPF            # the tutorial's line
except ModuleNotFoundError as e:
    print(f"the tutorial's import fails here: {e}")
bcc_module()                         # makes the OS's bcc importable from this environment
from bcc import BPF                  # the module's real name
print("works:", BPF)
"""),
    md("""
## kprobes — 怎么知道哪些点可以插入bpf程序呢 (where can a program hook in?)

> 通过 cat 查看可以追踪的函数 /proc/kallsyms (不一定都可以追踪); bpftrace -l 也可以查看
> *`/proc/kallsyms` lists the kernel's functions (not all of them can be traced); `bpftrace -l` lists probes too.*
>
> `bpftrace -l | grep kill` #查看插桩点,查找与kill相关的函数,可以发现__x64_sys_kill函数与我们较为相关。

`search_traceable("kill")` looks where the tutorial looks — `/proc/kallsyms`, tracefs's
`available_filter_functions` (the functions kprobes can really attach to, when the kernel lets us read it),
tracefs's `available_events` (tracepoints) and `bpftrace -l` — and says what it could not read:
"""),
    code("search", """
hits = search_traceable("kill")
display(hits.groupby(["source", "kind"]).size().rename("matches").to_frame())
for source, note in hits.attrs["notes"].items():
    print(f"- {source}: {note}")
"""),
    code("search-syscall", """
hits[hits.name.str.contains("sys_kill|sys_enter_kill|sys_exit_kill")].drop_duplicates(["source", "name"])
"""),
    md("""
The tutorial hard-codes `__x64_sys_kill`. That name is x86-64's since Linux 4.17; arm64 says `__arm64_sys_kill`
and older kernels `sys_kill`. bcc's `get_syscall_fnname("kill")` asks the running kernel instead (it looks up
which prefix the `bpf` system call has in `/proc/kallsyms`):
"""),
    code("fnname", """
fn = syscall_fnname("kill")
print(f"the kill system call's kernel function here: {fn}")
print(f"kprobes on this kernel: {_kernel.kprobes_available()}")
"""),
    md("""
## 辅助函数 · 动手 — the tutorial's program, run as written

> `bpf_trace_printk()` … 可以快速的输出信息至终端 … 通过 `tail -f /sys/kernel/debug/tracing/trace_pipe` 可以捕捉到信息 …
> 也可以使用 `b.trace_fields()` 函数来获取trace_pipe文件当中的输出。
> *`bpf_trace_printk()` prints quickly to the kernel's `trace_pipe`; `b.trace_fields()` reads it back.*

`run_tutorial()` compiles the C above unchanged, attaches `hello_world` with `attach_kprobe(event=<the kill
function>)` — **or, on a kernel without kprobes (it prints why), to the tracepoint `syscalls:sys_enter_kill`,
which fires at the same moment, on entry to `kill()`** — starts the lesson's workload, which sends 9 kills,
and prints `trace_fields()` in the tutorial's format. Two changes from the tutorial's Python half:
`trace_fields()` returns **bytes** under Python 3, so they are decoded before printing (else `b'bash'`), and the
endless `while 1:` loop becomes a bounded read (3 seconds or 15 lines), then everything is detached.
"""),
    code("tutorial-run", """
lines = run_tutorial(seconds=3, max_lines=15)
print(f"\\nhook used: {lines.attrs['hook']}")
"""),
    md("""
### Why `trace_pipe` is a poor data channel

* It is **global**: every program on the machine that calls `bpf_trace_printk` writes into the same pipe (other
  senders' lines may show up above), and lines stay there until somebody reads them.
* It carries **text** formatted in the kernel and parsed again in Python, and only three arguments per line.
* "Hello, World!" says *that* `kill()` ran — not who was targeted, with which signal, or whether it worked.

The lesson's own program sends one fixed-size binary record per `kill()` through a **BPF ring buffer** that
belongs to this program alone; the lab drains it in bulk into a DataFrame.

## 动手 1 — who sends kill? One row per call

To know whether a kill worked we need its **result** too, which only exists when `kill()` returns. So the
program has two handlers: one at **entry** (the arguments: target pid and signal), one at **return** (the
result, 0 or `-errno`). The entry handler stores the arguments in a BPF hash map keyed by thread id; the return
handler takes them out, adds the result and the time spent, and sends the record. On a kernel with kprobes these
are a kprobe and a kretprobe on the kill function; without kprobes, the tracepoints `syscalls:sys_enter_kill` and
`syscalls:sys_exit_kill`. Both fill the same record, so the DataFrame is the same.

### 1 · Source (the exact C that will be compiled, with its `-D` flags)
"""),
    code("source", """
lab = HelloKillLesson()
print(lab.source())
"""),
    md("### 2 · Compile (clang turns the C into BPF bytecode)"),
    code("compile", "lab.compile()"),
    md("### 3 · Load (the kernel's verifier checks every path of both handlers before accepting them)"),
    code("load", "lab.load()"),
    md("### 4 · Attach (which hooks were used, and why)"),
    code("attach", """
hooks = lab.attach()
for h in lab.hooks:
    print(f"{h.name:45} <- {h.fn}")
for note in hooks.note[hooks.note != ""]:
    print(f"\\nnote: {note}")
"""),
    md("""
### 5 · Trigger the workload
A small C program named `ebl-killer` starts two victim processes (`ebl-victim`) and signals them: signal 0
(does it exist?), SIGUSR1 and SIGUSR2 (handled), signal 99 (no such signal), SIGSTOP then SIGCONT, SIGTERM,
SIGKILL — and SIGTERM to pid 99999999, which cannot exist. It prints what it sent and what `kill()` answered.
"""),
    code("trigger", """
wl = lab.trigger()
print(f"workload pid {wl.pid}: {wl.description}")
"""),
    md("### 6 · Collect (until the workload ends; the ring buffer is drained a few times a second)"),
    code("collect", """
df = lab.collect()
print(f"{len(df)} kill() calls seen; lost: {df.attrs['lost']}; hooks: {df.attrs['hooks']}")
df
"""),
    md("""
Every column is typed and documented (`HelloKillLesson.columns`). Other processes' kills show up too (the
program watches the whole machine); the workload's are those with its pid as `sender_pid`.

### Does it match what the workload did?
The workload's own account (what it sent, what `kill()` returned to it) beside what the BPF program saw:
"""),
    code("check", """
check = lab.compare_with_workload(df)
display(check)
assert check.agree.all(), "BPF and the workload disagree"
print("every kill the workload sent was seen, with the same target, signal and result")
"""),
    md("### 7 · Detach (nothing stays attached)"),
    code("detach", """
lab.detach()
print(lab)
"""),
    md("""
## Who signals whom

One marker per `kill()`: across, time; down, the target; colour, the signal; a cross where the call failed.
The failed ones carry their `errno`: `EINVAL` for signal 99, `ESRCH` ("no such process") for pid 99999999.
"""),
    code("plot", """
plot_who_kills_whom(df)
plt.show()
df.groupby(["sender_comm", "signal_name", "error"], observed=True).size().rename("calls").to_frame()
"""),
    md("""
## The tutorial's hook: a kprobe and a kretprobe

Here is the kprobe variant of the same program, `hello_kill_kprobe.bpf.c`. On x86-64 (since 4.17) the kill
function is a *wrapper*: its only argument is a `struct pt_regs *` holding the caller's registers, so the
handler reads `pid` and `sig` from there (`PT_REGS_PARM1_SYSCALL`); the kretprobe reads the result with
`PT_REGS_RC(ctx)`, as the tutorial does in its advanced section. `struct pt_regs` is the CPU's register frame —
an ABI, the same whatever kernel headers compile the program.
"""),
    code("kprobe-source", """
print(open(program_path("hello_kill_kprobe.bpf.c")).read())
"""),
    code("kprobe-run", """
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
"""),
    md("""
## What you saw

* A bcc program is C for the kernel plus Python for you; `from bcc import BPF` (not `bpfcc`).
* Hooks are found in `/proc/kallsyms`, `available_filter_functions`, `available_events` and `bpftrace -l`;
  `get_syscall_fnname` names the system call's kernel function for this kernel.
* `bpf_trace_printk` says *that* something happened; a ring buffer and two handlers (entry + return) joined per
  thread say **who, to whom, with what, and the result**.
* Where kprobes are missing, the syscall tracepoints give the same answer.

> 当然,bcctool当中已经自带了killsnoop工具 — bcc ships a finished tool for this, `killsnoop`
> (Debian: `killsnoop-bpfcc`). From the shell, this lesson is `ebpf-lab run hello-kill --out kills.csv`;
> add `--no-workload --seconds 30` to watch the rest of the machine instead.

Next: **02_kmalloc** (tracepoints), then **03_args_return** (arguments and return values of any function).
"""),
]


# ============================================================== lesson 03
ARGS_RETURN = [
    md("""
# 03 · Arguments and return values — 进阶用法, and uprobes

> 如果想获取某一个kernel函数传入参数的值或者函数返回的值呢?
> *What if we want the values a kernel function was called with, or the value it returned?*

The tutorial's answer: a **kprobe** at the function's entry, whose handler declares the function's arguments
after `struct pt_regs *ctx`, and a **kretprobe** at its return, where `PT_REGS_RC(ctx)` is the return value.
In this lesson you will

1. see the tutorial's own example (`blk_insert_cloned_request`) and why it hardly ever fires,
2. use the same technique on a function that fires all the time — `openat()`: filename and flags in, a file
   descriptor or `-errno` out — with each call's entry joined to its return per thread, and its latency,
3. check every row against files the lesson's workload opened, some of which fail on purpose,
4. do the same in user space with **uprobes**: libc's `strtol()` and a function of a small program.
"""),
    code("imports", """
import matplotlib.pyplot as plt
import pandas as pd
from ebpf_lab.engine import program_path
from ebpf_lab.kernel_headers import headers_info
from ebpf_lab.lessons.args_return import (ArgsReturnLesson, UprobeArgsReturnLesson, tutorial_example,
                                          plot_latency, plot_errors, plot_uprobe_calls)
from ebpf_lab import _kernel
"""),
    md("""
## 进阶用法 — the tutorial's example

```python
b.attach_kprobe(event="blk_insert_cloned_request", fn_name="get_segments")
b.attach_kretprobe(event="blk_insert_cloned_request", fn_name="get_segments_res")
```
```c
int get_segments(struct pt_regs *ctx, struct request_queue *q, struct request *rq, bool no_sg_merge) { }
int get_segments_res(struct pt_regs *ctx, struct request_queue *q, struct request *rq)
{
   int ret = PT_REGS_RC(ctx);
   ...
}
```

> 第一个参数必需为 struct pt_regs *ctx — *the first parameter must be `struct pt_regs *ctx`*; the ones after it are
> the probed function's own, and bcc turns them into reads of the argument registers.

The tutorial leaves the bodies out; in the lab's copy they count calls:
"""),
    code("tutorial-source", """
print(open(program_path("args_return_tutorial.bpf.c")).read())
"""),
    md("""
`tutorial_example()` compiles and loads it (the verifier accepts it), then — where the kernel has kprobes and the
function — attaches both probes for a second while the openat workload below does file I/O, and counts:
"""),
    code("tutorial-run", """
ex = tutorial_example(seconds=1.0)
display(ex.T.rename(columns={0: "fact"}))
print(ex.why[0])
"""),
    md("""
`blk_insert_cloned_request()` belongs to **request-based device-mapper** (dm-multipath): it hands a cloned I/O
request to the disk underneath. A lab VM has no multipath storage, so the function is called rarely — usually
never (and some kernels do not build it at all). A probe that never fires teaches nothing, so the lesson uses a
function that fires under its own workload: the kernel side of `openat()`.

One more reason to pick a system call: the tutorial's handler receives `struct request *rq` — to read anything
*inside* it, the program must know the struct's layout, which comes from the kernel headers it is compiled with.
"""),
    code("headers", """
h = headers_info()
print(f"headers: {h.status} — {h.detail}")
print(f"kernel struct fields readable with the right offsets: {h.struct_reads_trustworthy}")
"""),
    md("""
When the headers are not the running kernel's own (`fallback`), offsets inside kernel structs can be silently
wrong, so this lesson's programs read **no kernel struct fields**: system call arguments come from the caller's
registers (`struct pt_regs`, fixed by the CPU's ABI) or from tracepoint fields (described by the running kernel
itself), and user-space arguments from user memory.

## The same technique on `openat()`

Hooks, best first — the lesson takes the first this kernel really allows, and says which:

| hook | program | needs |
|---|---|---|
| kprobe + kretprobe on the `openat` function (`__x64_sys_openat`) | `args_return_kprobe.bpf.c` | kprobes |
| fentry + fexit (BPF trampolines) on the same function | `args_return_fexit.bpf.c` | BTF, and a kernel that really loads them |
| tracepoints `syscalls:sys_enter_openat` + `sys_exit_openat` | `args_return.bpf.c` | syscall tracepoints |

### 1 · Source
"""),
    code("source", """
lab = ArgsReturnLesson(rounds=20)
print(lab.source())
"""),
    md("### 2 · Compile"),
    code("compile", "lab.compile()"),
    md("### 3 · Load (the verifier)"),
    code("load", "lab.load()"),
    md("### 4 · Attach (which hooks, and why)"),
    code("attach", """
hooks = lab.attach()
for h in lab.hooks:
    print(f"{h.name:45} <- {h.fn}")
for note in hooks.note[hooks.note != ""]:
    print(f"\\nnote: {note}")
"""),
    md("""
### 5 · Trigger the workload
`ebl-opener` makes a fresh folder `/tmp/ebl-trace-open-XXXXXX`, creates two files in it, then 20 times opens:
a readable file (an fd), a missing one (`ENOENT`), a folder for writing (`EISDIR`), a path through a file
(`ENOTDIR`), a new file with `O_CREAT|O_EXCL` (an fd) and the same again (`EEXIST`), a symlink with `O_NOFOLLOW`
(`ELOOP`), and a mode-0600 file from a child running as `nobody` (`EACCES`). It prints every call and result.
"""),
    code("trigger", """
wl = lab.trigger()
print(f"workload pid {wl.pid}: {wl.description}")
"""),
    md("### 6 · Collect"),
    code("collect", """
df = lab.collect()
print(f"{len(df):,} openat() calls seen on the whole machine; lost: {df.attrs['lost']}; hooks: {df.attrs['hooks']}")
folder = lab.workload_report().attrs["dir"]
mine = df[df.filename.str.startswith(folder + "/")]
mine[["pid", "comm", "filename", "flags_text", "ret", "fd", "error", "latency_us"]].head(12)
"""),
    md("""
Each row joins what was known at **entry** (`filename`, `flags`, `mode`) with what was known at **return**
(`ret`: a file descriptor, or `-errno`) — matched by thread id in a BPF hash map — and the time in between.

### Does it match what the workload did?
"""),
    code("check", """
check = lab.compare_with_workload(df)
display(check.head(10))
assert check.agree.all(), "BPF and the workload disagree"
print(f"all {len(check)} openat() calls of the workload were seen, each with the fd or error it really got")
"""),
    md("### 7 · Detach"),
    code("detach", """
lab.detach()
print(lab)
"""),
    md("""
## Plots

**Latency.** How long `openat()` took, entry to return, for every call on the machine during the run. Failing
calls are usually the fastest: the path lookup stops early. Creating a file costs the most.
"""),
    code("plot-latency", """
plot_latency(df)
plt.show()
outcome = df.error.astype(str).replace("", "success (fd)").rename("result")
df.groupby(outcome)["latency_us"].describe(percentiles=[0.5, 0.9])[["count", "50%", "90%", "max"]]
"""),
    md("**Errors by cause.** The return value's `-errno`, named:"),
    code("plot-errors", """
plot_errors(df)
plt.show()
"""),
    md("""
## uprobes — 与kprobe类似,但是用于用户态程序插桩

> *uprobes are like kprobes, but instrument user-space programs.*

The same entry/return technique on functions in user space: libc's `strtol(nptr, endptr, base)` — which every
program on the machine shares, so other processes' calls show up too — and `ebl_collatz(label, n)`, a function of
`ebpf_lab/workloads/argsret_target.c` that the lab compiles. The handlers declare the functions' arguments after
`struct pt_regs *ctx`, exactly like the tutorial's kprobe handler; uprobes need no fallback on this kernel.
"""),
    code("uprobe-source", """
up = UprobeArgsReturnLesson()
print(up.source())
"""),
    code("uprobe-steps", """
up.compile()
display(up.load())
display(up.attach())
uwl = up.trigger()
udf = up.collect()
up.detach()
print(f"{len(udf)} calls seen; hooks: {udf.attrs['hooks']}")
udf[udf.pid == uwl.pid][["comm", "function", "text_arg", "int_arg", "ret", "latency_us"]]
"""),
    md("""
The first `strtol` call of the workload's pid comes from its own `atoi(argv[1])` (glibc's `atoi` calls
`strtol`), before it renamed itself `ebl-argsret`. Compared with what the program printed:
"""),
    code("uprobe-check", """
ucheck = up.compare_with_workload(udf)
display(ucheck)
assert ucheck.agree.all()
"""),
    code("uprobe-plot", """
plot_uprobe_calls(udf[udf.comm.astype(str) == "ebl-argsret"])
plt.tight_layout()
plt.show()
"""),
    md("""
A uprobe costs a trap into the kernel at entry and another at return, several microseconds together, which is
most of what `latency_us` shows for these short functions: the longest Collatz run (524 steps) takes well under
a microsecond of real work.

## What you saw

* Entry probes see arguments, return probes see results; a BPF hash keyed by thread id joins them, and the
  difference of their timestamps is the call's latency.
* The tutorial's `blk_insert_cloned_request` rarely fires outside device-mapper multipath; `openat()` always does.
* Where kprobes are missing, fentry/fexit may work — only loading one tells — and else the syscall tracepoints
  carry the same arguments and result.
* Kernel struct fields need headers that match the running kernel; arguments and tracepoint fields do not.
* uprobes do the same for user-space functions, libraries and programs alike.

From the shell: `ebpf-lab run args-return --out opens.csv`, `ebpf-lab run args-return-uprobes --out calls.csv`.
"""),
]


def main() -> int:
    return write_all((("01_hello_kill.ipynb", HELLO_KILL), ("03_args_return.ipynb", ARGS_RETURN)))


if __name__ == "__main__":
    sys.exit(main())
