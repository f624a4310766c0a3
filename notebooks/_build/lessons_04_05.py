"""Writes notebooks/04_tc_classifier.ipynb and notebooks/05_xdp_tc_iptables.ipynb (without outputs).

    .venv/bin/python notebooks/_build/lessons_04_05.py

Every code cell carries a tag naming its step (tests address cells by tag).
Edit the notebooks here, not in JupyterLab, so that they stay reviewable.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbkit import code, md, write_all  # noqa: E402


# ============================================================== lesson 04
TC = [
    md("""
# 04 · A TC classifier — 网络 · 服务器收包流程 · xdp与tc · 实例

> 服务器在收到数据包后,会先放入ring buffer当中,再由kernel循环的去拉取数据。
> *When the server receives a packet it first lands in a ring buffer; the kernel then pulls packets from it in a loop.*

In this lesson you will

1. see where XDP, TC and iptables sit on the receive path,
2. build the tutorial's classifier **with the tutorial's own commands** (`clang … | llc …`), see why a newer clang
   refuses it and fix it,
3. attach it with the tutorial's `tc qdisc add … clsact` / `tc filter add … bpf direct-action obj … sec test` —
   on a **disposable lab network** (two network namespaces joined by a veth pair), never on this machine's own
   interfaces — and remove it with `tc qdisc del`,
4. load the same program through bcc, with the limit as a `-D` parameter and pass/drop counters in a map,
5. sweep real `ping -s` sizes across the lab network and find the **exact** payload where delivery stops — and
   explain it byte by byte,
6. check the same boundary without any traffic, with `BPF_PROG_TEST_RUN`, and move the limit with a slider.
"""),
    code("imports", """
import os
import matplotlib.pyplot as plt
import pandas as pd
from ebpf_lab.engine import program_path
from ebpf_lab.netlab import LabNetwork, lab_objects
from ebpf_lab.lessons._net import receive_path_figure
from ebpf_lab.lessons.tc_classifier import (TcClassifierLesson, TutorialTC, HEADER_BYTES, OVERHEAD,
                                            plot_sweep, limit_explorer)
"""),
    md("""
## 服务器收包流程 — the receive path, and where BPF can hook it

> BPF可以挂载在xdp hook点,tc hook点上,下图简单描述了他们在数据传输当中的位置。
> *BPF can hook the XDP point and the TC point; the figure shows where they sit as data travels.*

The tutorial's figure, redrawn: a frame goes from the NIC's ring buffer through the driver, becomes an
`sk_buff`, passes the traffic-control (TC) ingress hook, then netfilter (iptables) and routing, and finally
reaches a socket. XDP runs first — in the driver, before an `sk_buff` even exists (native mode), or right after
it is built (generic mode). TC's clsact ingress hook comes next, then iptables.
"""),
    code("diagram", """
fig = receive_path_figure()
plt.show()
"""),
    md("""
## xdp与tc — two program types

> XDP 程序的类型定义为 BPF_PROG_TYPE_XDP,它在网络驱动程序刚刚收到数据包时触发执行。…
> TC 程序的类型定义为 BPF_PROG_TYPE_SCHED_CLS 和 BPF_PROG_TYPE_SCHED_ACT … TC 程序可以直接获取内核解析后的网络报文数据结构sk_buff
> *An XDP program (BPF_PROG_TYPE_XDP) runs the moment the driver receives a packet. A TC program
> (BPF_PROG_TYPE_SCHED_CLS / SCHED_ACT) is a classifier or action of Linux traffic control; it sees the kernel's
> parsed `sk_buff`, on receive and on transmit (XDP: receive only).*

This lesson's program is a `SCHED_CLS` classifier in **direct-action** mode: its return value is the verdict
(`TC_ACT_OK` = let the packet through, `TC_ACT_SHOT` = drop it).

## 实例 — the tutorial's program, as printed

It drops every IPv4 packet whose `skb->len` is 500 bytes or more. The file below is the tutorial's code
unchanged (a header comment added):
"""),
    code("tutorial-source", """
print(open(program_path("tc_classifier.bpf.c")).read())
"""),
    md("""
## The lab network

The tutorial attaches to `ens3`, the machine's real network card. Here that would cut this machine off, so the
lesson builds its own network: two namespaces — a sender (`snd`) and a receiver (`rcv`) — joined by a veth pair,
`10.200.0.1` ↔ `10.200.0.2`. All of it is made through netlink (pyroute2), recorded the moment it exists, and
removed when the lesson ends, fails, is interrupted, or its process is killed (`ebpf-lab cleanup` removes what a
crash left).
"""),
    code("network", """
net = LabNetwork().up()
print(net)
print(net.ping(56))
"""),
    md("""
## 编译 — build it with the tutorial's own pipeline

> clang -O2 -emit-llvm -c foo.c -o - | llc -march=bpf -mcpu=probe -filetype=obj -o foo.o

No bcc here: clang turns the C into LLVM IR, `llc` turns that into a BPF ELF object, `foo.o`.
(The tutorial installs the tools with `yum install -y make clang llvm elfutils-libelf-devel bpftool`, for
CentOS/RHEL; on Debian and Ubuntu they are `clang llvm libelf-dev bpftool`, which `scripts/setup.sh` installed.)
"""),
    code("build", """
tut = TutorialTC(net)
print(tut.build())
"""),
    md("""
The warning is real: `classifier()` calls `process_packet()` before the compiler has seen it. C89 allowed that
("implicit declaration"); C99 removed it. **clang 16 and newer make it an error by default** — Ubuntu 24.04's
clang 18, for example, refuses the tutorial's file as printed. The same error, here, by asking clang 14 to treat
that warning as an error:
"""),
    code("build-strict", """
print(tut.build(strict=True))
"""),
    md("""
The fix is one line: declare the function before it is used (or move `process_packet()` above `classifier()`).
`tc_classifier_fixed.bpf.c` adds `int process_packet(struct __sk_buff *skb);` — and builds cleanly even with the
strict flag:
"""),
    code("build-fixed", """
import difflib
a = open(program_path("tc_classifier.bpf.c")).read().splitlines()
b = open(program_path("tc_classifier_fixed.bpf.c")).read().splitlines()
print("\\n".join(l for l in difflib.unified_diff(a, b, "tc_classifier.bpf.c", "tc_classifier_fixed.bpf.c", lineterm="", n=0)
                if not l.startswith(("@@", "- *", "+ *"))))
print(tut.build("tc_classifier_fixed.bpf.c", strict=True))
print(tut.build())   # back to the tutorial's own object for the next steps
print(tut.sections())
"""),
    md("""
The object has a section called `test` — the tutorial's `SEC("test")` — which `tc` is told to load.

## 加载到系统上 — attach it with the tutorial's `tc` commands

> tc qdisc add dev ens3 clsact
> tc filter add dev ens3 ingress bpf direct-action obj foo.o sec test

`clsact` is a pseudo-qdisc that exists only to give BPF programs an ingress and an egress hook. Same commands,
on the lab's receiver veth, inside its namespace:
"""),
    code("tc-attach", """
for r in tut.attach():
    print(r, "\\n")
print(tut.show())
"""),
    md("""
> 使用ping -s 500测试发现无法连通,不加参数发现可以ping通。
> *With `ping -s 500` there is no connectivity; without the option, ping works.*
"""),
    code("tc-ping", """
for size in (56, 500):
    r = net.ping(size, count=2)
    print(f"ping -s {size}: {r['received']}/{r['sent']} replies")
"""),
    md("""
## 清除 — remove it

> tc qdisc del dev ens3 clsact

Deleting the qdisc deletes its filters, and with them the program.
"""),
    code("tc-detach", """
print(tut.detach())
print("qdiscs now:", net.qdiscs("rcv"))
r = net.ping(500, count=1)
print(f"ping -s 500 after removal: {r['received']}/{r['sent']} replies")
tut.close()
"""),
    md("""
## The same program through bcc

Now the lab's way: `tc_classifier_bcc.bpf.c` holds the same rule, with the limit as a `-D LIMIT=…` flag instead of
a constant in the code, and two maps the classifier fills as it runs: `by_len` counts passed and dropped IPv4
packets per `skb->len`, `totals` counts everything. bcc compiles it, loads it as `BPF_PROG_TYPE_SCHED_CLS`, and
the lab attaches it with pyroute2 (a clsact qdisc plus a direct-action bpf filter, exactly what `tc` did).
"""),
    code("bcc-source", """
lab = TcClassifierLesson(net=net, limit=500)
print(lab.source())
"""),
    code("compile", """
lab.compile()
"""),
    code("load", """
lab.load()
"""),
    code("attach", """
lab.attach()
"""),
    md("""
## The evidence: a sweep of ping sizes

For each payload size the lesson runs `ping -M do -c 2 -s SIZE` from the sender to the receiver (`-M do`: no
fragmentation, so one echo request = one frame), and records whether replies came back, and what the classifier
counted for that size — read from its own `by_len` map.
"""),
    code("sweep", """
df = lab.sweep()
df
"""),
    md("""
### Where does delivery stop, and why there?
"""),
    code("boundary", """
print(df.attrs["summary"])
b = df.attrs["boundary_payload"]
bytes_table = pd.DataFrame([
    {"part": "Ethernet header (dst MAC, src MAC, EtherType)", "bytes": HEADER_BYTES["Ethernet"]},
    {"part": "IPv4 header (no options)", "bytes": HEADER_BYTES["IPv4"]},
    {"part": "ICMP echo header (type, code, checksum, id, sequence)", "bytes": HEADER_BYTES["ICMP"]},
    {"part": f"ping -s {b}: payload", "bytes": b},
])
print(bytes_table.to_string(index=False))
print(f"skb->len = {bytes_table.bytes.sum()} >= {lab.limit} -> TC_ACT_SHOT;   ping -s {b - 1} gives {b - 1 + OVERHEAD} < {lab.limit} -> TC_ACT_OK")
df[(df.payload_bytes >= b - 3) & (df.payload_bytes <= b + 3)]
"""),
    md("""
So `ping -s 500` was never the edge: it makes a 542-byte frame. The first payload that is dropped is
**limit − 42**. At TC ingress `skb->len` counts the whole frame from the Ethernet header on: the stack has
already pulled the Ethernet header off `skb->data` at this point, but `cls_bpf` pushes it back before running a
classifier at ingress, so that ingress and egress programs see the same thing — the frame from its first byte.
Not counted: the 4-byte frame check sequence (the NIC strips it) — and an 802.1Q VLAN tag, if there were one,
would add 4 bytes. The `skb_len` column is what the program really saw, from its map — it equals payload + 42
on every row.
"""),
    code("plot-sweep", """
fig = plot_sweep(df)
plt.show()
"""),
    md("""
## A deterministic check: BPF_PROG_TEST_RUN

No interface, no traffic: the kernel builds an `sk_buff` from bytes we hand it, runs the loaded program once, and
returns its verdict. Frames of exactly `limit − 1`, `limit` and `limit + 1` bytes (Ethernet + IPv4 + ICMP, crafted
in Python):
"""),
    code("test-run", """
print(lab.test_run())
tr = lab.boundary_from_test_run()
print(f"smallest frame dropped, test-running every length 42..1514: {tr} bytes = ping payload {tr - OVERHEAD}")
print(f"boundary from pings: {df.attrs['boundary_payload']};  from the headers: {lab.predicted_boundary()};  "
      f"from BPF_PROG_TEST_RUN: {tr - OVERHEAD}")
"""),
    code("counters", """
print(lab.totals())     # whole-program counts (test runs included)
lab.counters().tail()
"""),
    code("detach", """
lab.detach()
print(lab)
print("qdiscs on the receiver veth:", net.qdiscs("rcv"))
"""),
    md("""
## Move the limit

Each move of the slider compiles the program again with a new `-DLIMIT`, builds a fresh lab network, sweeps, plots
and removes everything. (The cell below also runs it once for limit 800, the same as moving the slider there.)
"""),
    code("slider", """
explorer = limit_explorer(500)
display(explorer)
d800 = explorer.rerun(800)
print(d800.attrs["summary"])
"""),
    code("cleanup", """
net.close()
print("left behind by this notebook:", [o for o in lab_objects() if f"ebl-{os.getpid()}-" in o] or "nothing")
"""),
    md("""
## What you saw

* XDP runs in the driver, TC at the clsact hook just after the `sk_buff` exists, iptables later in netfilter.
* The tutorial's program builds and attaches with its own commands; clang 16+ needs the one-line declaration fix.
* At TC ingress `skb->len` is the whole frame: `ping -s P` is dropped once `P + 14 + 20 + 8 >= LIMIT`, so with
  the tutorial's 500 the last payload that passes is 457 — measured with pings, predicted from the headers and
  confirmed by `BPF_PROG_TEST_RUN`.
* Nothing stays attached: qdiscs, filters and namespaces went away with the lesson.

From the shell: `ebpf-lab run tc-classifier --out sweep.csv` (`--set limit=800` to move the limit).
Next: lesson 05 measures the tutorial's claim that XDP is cheaper because it acts earlier.
"""),
]

# ============================================================== lesson 05
XDP = [
    md("""
# 05 · XDP vs TC vs iptables — is earlier really cheaper?

> 从上图当中可以很明显的看到,xdp介入点比iptables会早很多。越早处理,消耗的系统资源会越少,相对来说性能就会越高
> *The figure makes it plain that XDP steps in much earlier than iptables. The earlier a packet is handled, the
> fewer resources it consumes, and the higher the performance.*

This lesson measures the claim. **One drop rule** — drop IPv4 UDP datagrams to port 9 — at each hook in turn:

| hook | where |
|---|---|
| `xdp-native` | XDP in the veth driver (native mode) |
| `xdp-generic` | XDP in generic (skb) mode |
| `tc` | TC clsact ingress (lesson 04's hook) |
| `nft-ingress` | an nftables `netdev` ingress chain on the veth: netfilter's hook right after TC ingress |
| `iptables-raw` | `iptables -t raw -A PREROUTING … -j DROP`: netfilter's first hook |
| `iptables-input` | `iptables -A INPUT … -j DROP`: after routing |
| `none` | no rule: the datagram climbs to UDP, which finds no socket and drops it (the baseline) |

Same lab network, same traffic from a real packet generator, each measurement a few seconds, repeated.
(On this Debian the `iptables` command is `iptables-nft`: its rules are nftables rules underneath, in the
classic tables and chains.)
"""),
    code("imports", """
import os
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import subprocess
from ebpf_lab.netlab import lab_objects
from ebpf_lab.lessons._net import receive_path_figure
from ebpf_lab.lessons.xdp_vs_tc import XdpVsTcLesson, HOOKS, summarize, plot_hooks
"""),
    code("diagram", """
fig = receive_path_figure()
plt.show()
"""),
    md("""
## One rule, two BPF hooks

`xdp_vs_tc.bpf.c` has one function, `rule_drops()`, called from an XDP handler and from a TC handler; only the
return codes differ (`XDP_DROP` / `TC_ACT_SHOT`). Note the `bpf_skb_pull_data()` in the TC handler: an `sk_buff`
can keep most of a frame in page fragments, and a TC program sees only the linear part directly. The generator's
frames arrive that way (only the 14-byte Ethernet header is linear), so without the pull the rule would never
see the UDP header at TC. XDP never has this problem: its frame is always linear.
"""),
    code("source", """
lab = XdpVsTcLesson(seconds=1.0, repeats=3)
print(lab.source())
"""),
    md("""
## The traffic: trafgen

A Python loop sends a few tens of thousands of packets per second — far too slow to load any hook. netsniff-ng's
`trafgen` (installed by `scripts/setup.sh`) writes frames straight into a packet socket's TX ring: hundreds of
thousands per second from one CPU. It runs inside the sender namespace, on the lab veth only, under `timeout` (so
it stops by itself even if this kernel dies), pinned to one CPU. First the program:
"""),
    code("compile", """
lab.compile()
"""),
    code("load", """
lab.load()     # both handlers, checked by the verifier
"""),
    md("""
`attach()` builds the lab network; each hook is attached only while it is being measured, and removed right after.
"""),
    code("attach", """
lab.attach()
"""),
    md("""
trafgen's packet description — one 64-byte frame, addressed to the receiver's MAC and IP, UDP to port 9:
"""),
    code("trafgen", """
print(subprocess.run(["trafgen", "-v"], capture_output=True, text=True).stdout.splitlines()[0])
lab._trafgen_config("/tmp/ebl-udp.cfg")
print(open("/tmp/ebl-udp.cfg").read())
os.unlink("/tmp/ebl-udp.cfg")
"""),
    md("""
## How the cost is measured

On a veth pair the receiving side runs in softirq **on the sender's CPU** (the frame goes to that CPU's backlog,
or its NAPI context for native XDP). So with trafgen pinned to one CPU, that CPU does all the work: build the
frame, transmit, receive, run the hook, drop. For each measurement the lesson records, over a window after a
short warm-up:

* `sent_pps` — the sender's rate (veth tx counter); when the CPU is saturated, a cheaper drop means a faster sender;
* `dropped_pps` — what the rule dropped (BPF map counter, iptables rule counter, or UDP `NoPorts` for `none`);
* `task_ns_per_pkt` — CPU time of trafgen (its send path, and the receive softirq that runs in its context) plus
  that CPU's `ksoftirqd`, per frame: send + receive + drop. Other programs that share the CPU do not count, so
  this is the steadiest figure on a busy machine;
* `cpu_ns_per_pkt` — all busy time of that CPU (from `/proc/stat`) per frame — including whatever else ran there;
* `bpf_ns_per_run` — the BPF program's own run time (kernel BPF run statistics, switched on only while measuring).

One measurement, TC:
"""),
    code("one", """
pd.Series(lab.measure("tc"))
"""),
    md("""
## Every hook, three times, interleaved
"""),
    code("measure", """
df = lab.sweep(quiet=False)
df
"""),
    code("summary", """
summarize(df)[["sent_pps_median", "dropped_pps_median", "dropped_pps_min", "dropped_pps_max",
               "task_ns_per_pkt_median", "task_ns_per_pkt_min", "task_ns_per_pkt_max", "bpf_ns_per_run_median",
               "runs"]].round(1)
"""),
    code("plot", """
fig = plot_hooks(df)
plt.show()
"""),
    md("""
## What this machine measured
"""),
    code("findings", """
s = summarize(df)
base = s.loc["none", "task_ns_per_pkt_median"] if "none" in s.index else np.nan
print(f"kernel {df.attrs['kernel']}, {df.attrs['cpus']} CPUs, {df.attrs['params']['frame_bytes']}-byte frames, "
      f"{df.attrs['params']['repeats']} x {df.attrs['params']['seconds']} s per hook\\n")
for hook, r in s.iterrows():
    spread = (r.dropped_pps_max - r.dropped_pps_min) / r.dropped_pps_median * 100 if r.dropped_pps_median else float("nan")
    saved = (f", {1 - r.task_ns_per_pkt_median / base:.0%} less CPU/frame than no rule" if hook != "none" and base == base
             and r.task_ns_per_pkt_median < base else (", more CPU/frame than no rule" if hook != "none" else ""))
    bpf = f", program itself {r.bpf_ns_per_run_median:.0f} ns/run" if r.bpf_ns_per_run_median == r.bpf_ns_per_run_median else ""
    print(f"{hook:15s} {r.dropped_pps_median:>10,.0f} drops/s (spread {spread:.0f}%), "
          f"{r.task_ns_per_pkt_median:>6,.0f} ns CPU/frame{saved}{bpf}")
drops = s.drop(index="none", errors="ignore")
best, worst = drops["task_ns_per_pkt_median"].idxmin(), drops["task_ns_per_pkt_median"].idxmax()
gap = drops.loc[worst, "task_ns_per_pkt_median"] / drops.loc[best, "task_ns_per_pkt_median"] - 1
overlap = drops.loc[best, "task_ns_per_pkt_max"] >= drops.loc[worst, "task_ns_per_pkt_min"]
print(f"\\ncheapest drop here: {best}; most expensive: {worst} (+{gap:.0%}); "
      + ("their ranges overlap: on this machine the hooks are not clearly apart."
         if overlap else "their ranges do not overlap."))
xdp = [h for h in ("xdp-native", "xdp-generic") if h in s.index]
ipt = [h for h in ("iptables-raw", "iptables-input") if h in s.index]
if xdp and ipt:
    x = s.loc[xdp, "task_ns_per_pkt_median"].min(); i = s.loc[ipt, "task_ns_per_pkt_median"].min()
    print(f"the tutorial's claim, XDP cheaper than iptables: best XDP {x:,.0f} ns/frame vs best iptables {i:,.0f} ns/frame -> "
          + ("holds here" if x < i else "does not hold on this machine (see below why veth is special)"))
"""),
    md("""
### Reading the numbers

* **Dropping anywhere is much cheaper than not dropping** (`none`): a datagram that climbs to UDP costs a socket
  lookup and an ICMP "port unreachable" attempt.
* **Between the hooks, look at the spread before the medians.** Most of the cost per frame is the sender's own —
  trafgen's packet socket and the veth transmit path, paid before any hook runs — so the hooks differ by a
  fraction of the total, and a shared, virtualised machine adds noise of the same size. The BPF programs
  themselves take tens of nanoseconds (`bpf_ns_per_run`) out of a few microseconds per frame; the TC one a bit more,
  because it first pulls the headers into the linear part of the `sk_buff`.
* **Why XDP cannot shine on veth.** On a veth pair the `sk_buff` already exists before the receiver sees the
  frame: the sender built it. Generic XDP runs on that `sk_buff`; "native" XDP on veth even converts it into an
  XDP buffer and queues it through a ring and a NAPI poll first — so native XDP on veth coming out no cheaper (or
  dearer) than generic XDP or TC is expected, not a measuring error. The thing XDP saves on real hardware — allocating and initialising an `sk_buff` for a frame
  that will be dropped anyway — has already been paid here.
* **On a physical NIC with a driver that supports native XDP** (mlx5, i40e, ixgbe, ice, bnxt, …) the program runs
  in the driver's NAPI poll on the raw DMA buffer, before any `sk_buff`. The XDP paper (Høiland-Jørgensen et al.,
  CoNEXT 2018) reports roughly 24 million drops per second on one core with native XDP — several times what the
  same kernel reached dropping in iptables' raw table — because the later hooks pay for the
  `sk_buff`, GRO, and (iptables) the netfilter machinery for every frame. Traffic would come from another machine
  and arrive through hardware queues spread over CPUs (RSS), so the receiving cost would not share a CPU with the
  sender as it does here. That is where the tutorial's claim holds.
* The machine this ran on is shared, virtualised and has two CPUs: treat single numbers as indications and look
  at the spread. When the CPU is overloaded the kernel defers receive work to `ksoftirqd`, which then competes
  with trafgen: inside one window `dropped_pps` can lag `sent_pps`, though over the whole burst every frame sent
  is dropped (`sent_total` = `dropped_total`). `task_ns_per_pkt` counts trafgen and `ksoftirqd` together, so it
  stays meaningful either way.
"""),
    code("detach", """
lab.detach()
print(lab)
print("left behind by this notebook:", [o for o in lab_objects() if f"ebl-{os.getpid()}-" in o] or "nothing")
"""),
    md("""
From the shell: `ebpf-lab run xdp-vs-tc --out hooks.csv` (`--set hooks=xdp-native,tc --set repeats=5`, …).
"""),
]


def main() -> int:
    return write_all((("04_tc_classifier.ipynb", TC), ("05_xdp_tc_iptables.ipynb", XDP)))


if __name__ == "__main__":
    sys.exit(main())
