# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ebpf-lab)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · A TC classifier — 网络 · 服务器收包流程 · xdp与tc · 实例
#
# > 服务器在收到数据包后,会先放入ring buffer当中,再由kernel循环的去拉取数据。
# > *When the server receives a packet it first lands in a ring buffer; the kernel then pulls packets from it in a loop.*
#
# In this lesson you will
#
# 1. see where XDP, TC and iptables sit on the receive path,
# 2. build the tutorial's classifier **with the tutorial's own commands** (`clang … | llc …`), see why a newer clang
#    refuses it and fix it,
# 3. attach it with the tutorial's `tc qdisc add … clsact` / `tc filter add … bpf direct-action obj … sec test` —
#    on a **disposable lab network** (two network namespaces joined by a veth pair), never on this machine's own
#    interfaces — and remove it with `tc qdisc del`,
# 4. load the same program through bcc, with the limit as a `-D` parameter and pass/drop counters in a map — and
#    once **without the tutorial's bounds check**, to see the verifier say no — and look at what the kernel then
#    holds with `bpftool`,
# 5. sweep real `ping -s` sizes across the lab network and find the **exact** payload where delivery stops — and
#    explain it byte by byte,
# 6. check the same boundary without any traffic, with `BPF_PROG_TEST_RUN`, and move the limit with a slider.

# %% tags=["imports"]
import os
import matplotlib.pyplot as plt
import pandas as pd
from ebpf_lab import VerifierError
from ebpf_lab.bpf import program_path
from ebpf_lab.bpftool import net_attachments, programs, programs_gone
from ebpf_lab.netlab import LabNetwork, lab_objects
from ebpf_lab.lessons._net import receive_path_figure
from ebpf_lab.lessons.tc_classifier import (TcClassifierLesson, TutorialTC, OVERHEAD,
                                            boundary_table, fix_diff, plot_sweep, limit_explorer)

# %% [markdown]
# ## 服务器收包流程 — the receive path, and where BPF can hook it
#
# > BPF可以挂载在xdp hook点,tc hook点上,下图简单描述了他们在数据传输当中的位置。
# > *BPF can hook the XDP point and the TC point; the figure shows where they sit as data travels.*
#
# The tutorial's figure, redrawn: a frame goes from the NIC's ring buffer through the driver, becomes an
# `sk_buff`, passes the traffic-control (TC) ingress hook, then netfilter (iptables) and routing, and finally
# reaches a socket. XDP runs first — in the driver, before an `sk_buff` even exists (native mode), or right after
# it is built (generic mode). TC's clsact ingress hook comes next, then iptables.

# %% tags=["diagram"]
fig = receive_path_figure()
plt.show()

# %% [markdown]
# ## xdp与tc — two program types
#
# > XDP 程序的类型定义为 BPF_PROG_TYPE_XDP,它在网络驱动程序刚刚收到数据包时触发执行。…
# > TC 程序的类型定义为 BPF_PROG_TYPE_SCHED_CLS 和 BPF_PROG_TYPE_SCHED_ACT … TC 程序可以直接获取内核解析后的网络报文数据结构sk_buff
# > *An XDP program (BPF_PROG_TYPE_XDP) runs the moment the driver receives a packet. A TC program
# > (BPF_PROG_TYPE_SCHED_CLS / SCHED_ACT) is a classifier or action of Linux traffic control; it sees the kernel's
# > parsed `sk_buff`, on receive and on transmit (XDP: receive only).*
#
# This lesson's program is a `SCHED_CLS` classifier in **direct-action** mode: its return value is the verdict
# (`TC_ACT_OK` = let the packet through, `TC_ACT_SHOT` = drop it).
#
# ## 实例 — the tutorial's program, as printed
#
# It drops every IPv4 packet whose `skb->len` is 500 bytes or more. The file below is the tutorial's code
# unchanged (a header comment added):

# %% tags=["tutorial-source"]
print(open(program_path("tc_classifier.bpf.c")).read())

# %% [markdown]
# ## The lab network
#
# The tutorial attaches to `ens3`, the machine's real network card. Here that would cut this machine off, so the
# lesson builds its own network: two namespaces — a sender (`snd`) and a receiver (`rcv`) — joined by a veth pair,
# `10.200.0.1` ↔ `10.200.0.2`. All of it is made through netlink (pyroute2), recorded the moment it exists, and
# removed when the lesson ends, fails, is interrupted, or its process is killed (`ebpf-lab cleanup` removes what a
# crash left).

# %% tags=["network"]
net = LabNetwork().up()
print(net)
print(net.ping(56))

# %% [markdown]
# ## 编译 — build it with the tutorial's own pipeline
#
# > clang -O2 -emit-llvm -c foo.c -o - | llc -march=bpf -mcpu=probe -filetype=obj -o foo.o
#
# No bcc here: clang turns the C into LLVM IR, `llc` turns that into a BPF ELF object, `foo.o`.
# (The tutorial installs the tools with `yum install -y make clang llvm elfutils-libelf-devel bpftool`, for
# CentOS/RHEL; on Debian and Ubuntu they are `clang llvm libelf-dev bpftool`, which `scripts/setup.sh` installed.)

# %% tags=["build"]
from ebpf_lab.lessons.tc_classifier import clang_rejects_implicit_declarations

tut = TutorialTC(net)
print(tut.build())
print("this clang refuses the file as printed (clang 16+)" if clang_rejects_implicit_declarations()
      else "this clang only warns (clang 15 and older)")

# %% [markdown]
# The warning (or error) is real: `classifier()` calls `process_packet()` before the compiler has seen it. C89
# allowed that ("implicit declaration"); C99 removed it. **clang 16 and newer make it an error by default** —
# Ubuntu 24.04's clang 18 and Debian 13's clang 19, for example, refuse the tutorial's file as printed. Asking
# any clang to treat that warning as an error shows the same refusal:

# %% tags=["build-strict"]
print(tut.build(strict=True))

# %% [markdown]
# The fix is one line: declare the function before it is used (or move `process_packet()` above `classifier()`).
# `fix_diff()` shows it as a diff against the tutorial's file (the fixed file is made from the tutorial's, never
# kept as a second copy), and the fixed file builds cleanly even with the strict flag:

# %% tags=["build-fixed"]
print(fix_diff())
print(tut.build(fixed=True, strict=True))
for r in tut.build_runnable():  # the tutorial's own object where this clang accepts it, else its one-line fix
    print(r)
print("foo.o built from", tut.built_from)
print(tut.sections())

# %% [markdown]
# The object has a section called `test` — the tutorial's `SEC("test")` — which `tc` is told to load.
#
# ## 加载到系统上 — attach it with the tutorial's `tc` commands
#
# > tc qdisc add dev ens3 clsact
# > tc filter add dev ens3 ingress bpf direct-action obj foo.o sec test
#
# `clsact` is a pseudo-qdisc that exists only to give BPF programs an ingress and an egress hook. Same commands,
# on the lab's receiver veth, inside its namespace:
#
# Expect two commands that print nothing (success), then `tc filter show` listing one `bpf` filter on ingress,
# named `foo.o:[test]`, `direct-action`, with the program's kernel id.

# %% tags=["tc-attach"]
for r in tut.attach():
    print(r, "\n")
print(tut.show())

# %% [markdown]
# > 使用ping -s 500测试发现无法连通,不加参数发现可以ping通。
# > *With `ping -s 500` there is no connectivity; without the option, ping works.*
#
# Expect 2/2 replies for the default size and 0/2 for `-s 500`.

# %% tags=["tc-ping"]
for size in (56, 500):
    r = net.ping(size, count=2)
    print(f"ping -s {size}: {r['received']}/{r['sent']} replies")

# %% [markdown]
# ## 清除 — remove it
#
# > tc qdisc del dev ens3 clsact
#
# Deleting the qdisc deletes its filters, and with them the program.

# %% tags=["tc-detach"]
print(tut.detach())
print("qdiscs now:", net.qdiscs("rcv"))
r = net.ping(500, count=1)
print(f"ping -s 500 after removal: {r['received']}/{r['sent']} replies")
tut.close()

# %% [markdown]
# ## The same program through bcc
#
# Now the lab's way: `tc_classifier_bcc.bpf.c` holds the same rule, with the limit as a `-D LIMIT=…` flag instead of
# a constant in the code, and two maps the classifier fills as it runs: `by_len` counts passed and dropped IPv4
# packets per `skb->len`, `totals` counts everything. bcc compiles it, loads it as `BPF_PROG_TYPE_SCHED_CLS`, and
# the lab attaches it with pyroute2 (a clsact qdisc plus a direct-action bpf filter, exactly what `tc` did).

# %% tags=["bcc-source"]
lab = TcClassifierLesson(net=net, limit=500)
print(lab.source())

# %% tags=["compile"]
lab.compile()

# %% [markdown]
# ## 加载 — the verifier checks it
#
# Loading hands the bytecode to the kernel, whose **verifier** walks every path through it before it may run.
# The table's columns are explained in lesson 03: the program's kernel id (`prog_id`, used with `bpftool` below),
# its size after the verifier's rewriting (`xlated_insns`), the instructions the verifier walked to prove it safe
# (`verified_insns`) and the size of its JIT-compiled machine code (`jited_bytes`).

# %% tags=["load"]
loaded = lab.load()
loaded

# %% [markdown]
# ## The verifier, saying no
#
# The tutorial's classifier starts with a check the comment insists on:
#
# ```c
# struct ethhdr *eth = data;  //用于安全检测,如果不加上这些代码,则无法通过bpf验证器。
# if (data + sizeof(struct ethhdr) > data_end)
#     return TC_ACT_SHOT;
# ```
#
# *"For safety: without these lines the program does not pass the BPF verifier."* Let us see it. The same program is
# compiled with `-DBOUNDS_CHECK=0`, which leaves exactly those lines out, and loaded. The verifier refuses it; the
# lab raises `VerifierError`, whose `.log` is the verifier's own log. Expect its last lines to name the refused
# instruction — the read of `eth->h_proto`, 12 bytes into the packet — with *invalid access to packet*:

# %% tags=["verifier-no"]
unchecked = TcClassifierLesson(limit=500, bounds_check=False)
print(unchecked.cflags())
unchecked.compile()
try:
    unchecked.load()
    print("loaded?! this kernel's verifier accepted the program without a bounds check")
except VerifierError as e:
    print("VerifierError:", str(e).splitlines()[0][:160], "…\n")
    print("\n".join(e.log.splitlines()[-6:]))
finally:
    unchecked.detach()

# %% [markdown]
# Why may the program read `skb->len` with no check, but not `eth->h_proto`?
#
# * `skb->len` is a field of the **context**, the `struct __sk_buff` the program is handed. Its layout is fixed and
#   known to the verifier, which checks each context access once, when loading (offset and size of a field it
#   allows this program type to read), and rewrites it into a read of the real kernel `sk_buff`. Nothing about it
#   depends on the packet.
# * `eth->h_proto` is **packet data**: bytes between `skb->data` and `skb->data_end`, whose length differs for every
#   packet. The verifier cannot know it, so it tracks, for each pointer into the packet, how many bytes have been
#   proven to lie before `data_end` (the `r=` in the log: `r=0` is *no bytes proven*). A comparison against
#   `data_end` on the path before the read is the only proof it accepts; after
#   `if (data + 14 > data_end) return …;` the pointer carries `r=14`, and reading 2 bytes at offset 12 is allowed.
#
# The check is not decoration: without it a 10-byte runt frame would make the program read past the end of the
# packet buffer, in the kernel.
#
# ## 挂载 — attach, and what the kernel now holds

# %% tags=["attach"]
lab.attach()

# %% [markdown]
# `bpftool` (in the tutorial's install line) asks the kernel directly. `programs(ids)` runs `bpftool prog show id N`
# for the ids in the load table above (only this lesson's programs, never other programs on the machine);
# `net_attachments(ids, net=net)` runs `bpftool net show` inside the receiver's namespace. Expect one `sched_cls`
# program named `on_tc_ingress` with the load table's `prog_id` and the ids of its two maps (`by_len`, `totals`),
# and one `tc` attachment of that id on the receiver veth at `clsact/ingress`:

# %% tags=["kernel-view"]
print(programs(loaded.prog_id).to_string(index=False), "\n")
print(net_attachments(loaded.prog_id, net=net).to_string(index=False))

# %% [markdown]
# ## The evidence: a sweep of ping sizes
#
# For each payload size the lesson runs `ping -M do -c 2 -s SIZE` from the sender to the receiver (`-M do`: no
# fragmentation, so one echo request = one frame), and records whether replies came back, and what the classifier
# counted for that size — read from its own `by_len` map. Expect one row per size: `delivered` True up to a point,
# False from there on, and the classifier's `classifier_drop` counts where the replies stop.

# %% tags=["sweep"]
df = lab.sweep()
df

# %% [markdown]
# ### Where does delivery stop, and why there?

# %% tags=["boundary"]
print(df.attrs["summary"])
b = df.attrs["boundary_payload"]
bytes_table = boundary_table(b)
print(bytes_table.to_string(index=False))
print(f"skb->len = {bytes_table.bytes.sum()} >= {lab.limit} -> TC_ACT_SHOT;   ping -s {b - 1} gives {b - 1 + OVERHEAD} < {lab.limit} -> TC_ACT_OK")
df[(df.payload_bytes >= b - 3) & (df.payload_bytes <= b + 3)]

# %% [markdown]
# So `ping -s 500` was never the edge: it makes a 542-byte frame. The first payload that is dropped is
# **limit − 42**. At TC ingress `skb->len` counts the whole frame from the Ethernet header on: the stack has
# already pulled the Ethernet header off `skb->data` at this point, but `cls_bpf` pushes it back before running a
# classifier at ingress, so that ingress and egress programs see the same thing — the frame from its first byte.
# Not counted: the 4-byte frame check sequence (the NIC strips it) — and an 802.1Q VLAN tag, if there were one,
# would add 4 bytes. The `skb_len` column is what the program really saw, from its map — it equals payload + 42
# on every row.
#
# The plot: one dot per ping size, at the fraction of echo requests answered (green: replies came back, red: none),
# joined as a step. The bottom axis is the ping payload, the top axis the same frame's `skb->len`; the dashed line is
# the limit. Expect every dot left of the line at 1 and every dot on or right of it at 0 — a single clean step.

# %% tags=["plot-sweep"]
fig = plot_sweep(df)
plt.show()

# %% [markdown]
# ## A deterministic check: BPF_PROG_TEST_RUN
#
# No interface, no traffic: the kernel builds an `sk_buff` from bytes we hand it, runs the loaded program once, and
# returns its verdict. Frames of exactly `limit − 1`, `limit` and `limit + 1` bytes (Ethernet + IPv4 + ICMP, crafted
# in Python). Expect `TC_ACT_OK` for the first and `TC_ACT_SHOT` for the other two, then the same boundary found
# three ways:

# %% tags=["test-run"]
print(lab.test_run())
tr = lab.boundary_from_test_run()
print(f"smallest frame dropped, test-running every length 42..1514: {tr} bytes = ping payload {tr - OVERHEAD}")
print(f"boundary from pings: {df.attrs['boundary_payload']};  from the headers: {lab.predicted_boundary()};  "
      f"from BPF_PROG_TEST_RUN: {tr - OVERHEAD}")

# The classifier's own counters: the whole-program totals, then the last rows of its `by_len` map (one row per
# `skb->len` it saw, with how many it passed and dropped). Expect the big lengths of the sweep in the `drop` column.

# %% tags=["counters"]
print(lab.totals())     # whole-program counts (test runs included)
lab.counters().tail()

# %% [markdown]
# ## 清除 — detach, and what the kernel holds now
#
# `detach()` deletes the clsact qdisc (and the filter with it) and closes the program; the kernel frees a closed
# program a moment later, so `programs_gone()` asks again until it is gone (for a few seconds at most). Expect the
# lesson to say `[closed]`, the veth to have no qdisc but its default, and `bpftool` to find neither the program nor the
# attachment any more:

# %% tags=["detach"]
lab.detach()
print(lab)
print("qdiscs on the receiver veth:", net.qdiscs("rcv"))
print("bpftool prog show, this lesson's ids:", len(programs_gone(loaded.prog_id)), "programs")
print("bpftool net show, this lesson's ids:", len(net_attachments(loaded.prog_id, net=net)), "attachments")

# %% [markdown]
# ## Move the limit
#
# Each move of the slider compiles the program again with a new `-DLIMIT`, builds a fresh lab network, sweeps, plots
# and removes everything. (The cell below also runs it once for limit 800, the same as moving the slider there.)
# Expect the slider, then the same step plot with its edge moved to payload 758 (= 800 − 42).

# %% tags=["slider"]
explorer = limit_explorer(500)
display(explorer)
d800 = explorer.rerun(800)
print(d800.attrs["summary"])

# %% tags=["cleanup"]
net.close()
print("left behind by this notebook:", [o for o in lab_objects() if f"ebl-{os.getpid()}-" in o] or "nothing")

# %% [markdown]
# ## What you saw
#
# * XDP runs in the driver, TC at the clsact hook just after the `sk_buff` exists, iptables later in netfilter.
# * The tutorial's program builds and attaches with its own commands; clang 16+ needs the one-line declaration fix.
# * The verifier refuses a read of packet data that no `data_end` check has proven in bounds; context fields such as
#   `skb->len` need no check. `bpftool` shows the loaded program and its attachment, and shows nothing once detached.
# * At TC ingress `skb->len` is the whole frame: `ping -s P` is dropped once `P + 14 + 20 + 8 >= LIMIT`, so with
#   the tutorial's 500 the last payload that passes is 457 — measured with pings, predicted from the headers and
#   confirmed by `BPF_PROG_TEST_RUN`.
# * Nothing stays attached: qdiscs, filters and namespaces went away with the lesson.
#
# From the shell: `ebpf-lab run tc-classifier --out sweep.csv` (`--set limit=800` to move the limit).
# Next: lesson 05 measures the tutorial's claim that XDP is cheaper because it acts earlier.

# %% [markdown]
# ## Exercises
#
# | exercise | level | what to do |
# |---|---|---|
# | [tc-count-protocols](exercises/tc-count-protocols.ipynb) | ★ | Count instead of drop: packets and bytes per protocol |
# | [tc-drop-big-icmp](exercises/tc-drop-big-icmp.ipynb) | ★★ | Drop only big ICMP, at TC ingress |
#
# Open one, fill in the marked gaps, and check it from a cell (`check(...)`, at its end) or from a shell:
# `sudo .venv/bin/ebpf-lab check EXERCISE notebooks/exercises/EXERCISE.ipynb`.
