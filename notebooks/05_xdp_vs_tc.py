# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ebpf-lab)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · XDP vs TC vs iptables — is earlier really cheaper?
#
# > 从上图当中可以很明显的看到,xdp介入点比iptables会早很多。越早处理,消耗的系统资源会越少,相对来说性能就会越高
# > *The figure makes it plain that XDP steps in much earlier than iptables. The earlier a packet is handled, the
# > fewer resources it consumes, and the higher the performance.*
#
# This lesson measures the claim. **One drop rule** — drop IPv4 UDP datagrams to port 9 — at each hook in turn:
#
# | hook | where |
# |---|---|
# | `xdp-native` | XDP in the veth driver (native mode) |
# | `xdp-generic` | XDP in generic (skb) mode, after the `sk_buff` exists |
# | `tc` | TC clsact ingress (lesson 04's hook) |
# | `nft-ingress` | an nftables `netdev` ingress chain on the veth: netfilter's hook right after TC ingress |
# | `iptables-raw` | `iptables -t raw -A PREROUTING … -j DROP`: iptables' earliest table (netfilter's netdev ingress, the row above, runs before it) |
# | `iptables-input` | `iptables -A INPUT … -j DROP`: after routing |
# | `none` | no rule: the datagram climbs to UDP, which finds no socket and drops it (the baseline) |
#
# Same lab network, same traffic from a real packet generator, each measurement a few seconds, repeated.
# Which `iptables` this machine has matters for the last two rows — it is asked in the first cell below.

# %% tags=["imports"]
import os
import matplotlib.pyplot as plt
import pandas as pd
import subprocess
from ebpf_lab.netlab import lab_objects
from ebpf_lab.lessons._net import receive_path_figure
from ebpf_lab.bpftool import programs, programs_gone
from ebpf_lab.lessons.xdp_vs_tc import XdpVsTcLesson, HOOKS, summarize, plot_hooks, findings, iptables_backend, shapes

print(iptables_backend())

# %% [markdown]
# Lesson 04's figure of the receive path again, top to bottom in the order a received frame meets the hooks: native
# XDP, generic XDP, TC ingress with nftables' netdev ingress right after it, then iptables' PREROUTING (`raw`
# first) and, after routing, INPUT. The rows of the table above are measured in that order.

# %% tags=["diagram"]
fig = receive_path_figure()
plt.show()

# %% [markdown]
# ## One rule, two BPF hooks
#
# `xdp_vs_tc.bpf.c` has one function, `rule_drops()`, called from an XDP handler and from a TC handler; only the
# return codes differ (`XDP_DROP` / `TC_ACT_SHOT`). Note the `bpf_skb_pull_data()` in the TC handler: an `sk_buff`
# can keep most of a frame in page fragments, and a TC program sees only the linear part directly. A packet
# generator writing into a packet socket's TX ring (below) sends frames whose linear part is the link-layer header
# only, so without the pull the rule would never see the UDP header at TC. The program does not take this on
# trust: each handler counts, for every frame of the flow, its whole length and the part it can read directly
# (the `shapes` map; at TC `skb->len` against `data_end - data` before the pull), and the lesson reports it below.
#
# The XDP handler needs no pull, but not because XDP frames are linear by nature: the kernel makes them so, at a
# price. **Generic XDP** linearises a non-linear `sk_buff` before running the program — it copies the fragments
# into one buffer (unless the program declares it handles fragments, which this one does not). **Native XDP on
# veth** has no DMA buffer to run on: the sender built an `sk_buff`, and the veth driver turns it into an XDP
# buffer, copying the frame into a freshly allocated page when the `sk_buff` is non-linear, shared or short of
# headroom. When the frames reach TC non-linear, both XDP rows below therefore pay for a copy that TC (which pulls
# only the 42 header bytes it needs) does not — the section "What each hook was given" shows whether they do on
# this kernel. On a physical NIC with native XDP support there is no such copy: the program runs on the driver's
# receive buffer itself.

# %% tags=["source"]
lab = XdpVsTcLesson(seconds=1.0, repeats=3)
print(lab.source())

# %% [markdown]
# ## The traffic: trafgen
#
# A Python loop sending packets is far too slow to load any hook. netsniff-ng's `trafgen` (installed by
# `scripts/setup.sh`) writes frames straight into a packet socket's TX ring, without a system call per frame — many
# times faster, from one CPU. It runs inside the sender namespace, on the lab veth only, under `timeout` (so
# it stops by itself even if this kernel dies), pinned to one CPU. First the program:

# %% tags=["compile"]
lab.compile()

# %% [markdown]
# The load table's columns are explained in lesson 03 (`prog_id`, `xlated_insns`, `verified_insns`, `jited_bytes`).
# Expect two rows, `on_xdp` and `on_tc_ingress`, both accepted.

# %% tags=["load"]
loaded = lab.load()     # both handlers, checked by the verifier
loaded

# %% [markdown]
# `attach()` builds the lab network; each hook is attached only while it is being measured, and removed right after.
# So after it the kernel holds both programs (loaded, open) but nothing is attached to the veth yet — `bpftool prog
# show` for the load table's ids lists the two programs:

# %% tags=["attach"]
lab.attach()
programs(loaded.prog_id)

# %% [markdown]
# trafgen's packet description — one 64-byte frame, addressed to the receiver's MAC and IP, UDP to port 9:

# %% tags=["trafgen"]
print(subprocess.run(["trafgen", "-v"], capture_output=True, text=True).stdout.splitlines()[0])
print(lab.trafgen_config())

# %% [markdown]
# ## How the cost is measured
#
# On a veth pair the receiving side runs in softirq **on the sender's CPU** (the frame goes to that CPU's backlog,
# or its NAPI context for native XDP). So with trafgen pinned to one CPU, that CPU does all the work: build the
# frame, transmit, receive, run the hook, drop. For each measurement the lesson records, over a window after a
# short warm-up:
#
# * `sent_pps` — the sender's rate (veth tx counter); when the CPU is saturated, a cheaper drop means a faster sender;
# * `dropped_pps` — what the rule dropped (BPF map counter, iptables rule counter, or UDP `NoPorts` for `none`);
# * `task_ns_per_pkt` — CPU time charged to trafgen plus that CPU's `ksoftirqd`, per frame: the send path, and the
#   receive softirq that runs in trafgen's context — unless the kernel accounts IRQ time separately
#   (`CONFIG_IRQ_TIME_ACCOUNTING`), which puts that softirq time in `softirq_ns_per_pkt` instead. Other programs
#   that share the CPU do not count, so this is the steadiest figure on a busy machine;
# * `cpu_ns_per_pkt` — all busy time of that CPU (from `/proc/stat`) per frame — including whatever else ran there;
# * `bpf_ns_per_run` — the BPF program's own run time (kernel BPF run statistics, switched on only while measuring).
#
# One measurement, TC. Expect one row of figures: `sent_pps` and `dropped_pps` of the same order (every frame sent
# is dropped; within a window they can differ a little), `task_ns_per_pkt` in the microseconds, `bpf_ns_per_run`
# far smaller:

# %% tags=["one"]
pd.Series(lab.measure("tc"))

# %% [markdown]
# ## Every hook, three times, interleaved
#
# Expect a progress line per measurement (hooks in turn, then again, so that a slow moment of the machine does not
# hit one hook only), then one row per measurement.

# %% tags=["measure"]
df = lab.sweep(quiet=False)
df

# %% [markdown]
# Per hook: the median of its runs, and their range (min, max). Expect `dropped_pps` to be highest and
# `task_ns_per_pkt` lowest for the cheapest hook — and look at whether the ranges of two hooks overlap before
# calling one cheaper.

# %% tags=["summary"]
summarize(df)[["sent_pps_median", "dropped_pps_median", "dropped_pps_min", "dropped_pps_max",
               "task_ns_per_pkt_median", "task_ns_per_pkt_min", "task_ns_per_pkt_max", "bpf_ns_per_run_median",
               "runs"]].round(1)

# %% [markdown]
# **The plot.** One bar per hook, its height the median of its runs; each black dot is one run, so the dots show
# the spread. Left: frames dropped per second (higher is better: the sender got more frames through the whole
# send-and-drop path per second). Right: CPU time per frame, send + receive + drop (lower is better). Grey is the
# no-rule baseline, orange the XDP hooks, green TC, blue the netfilter hooks. Expect the baseline to be the worst
# on both panels, and the other bars to differ by less than the baseline differs from them.

# %% tags=["plot"]
fig = plot_hooks(df)
plt.show()

# %% [markdown]
# ## What each hook was given: whole frames, or a linear part and fragments
#
# The programs' own counters over every burst of the sweep: how many of the flow's frames each BPF hook was given,
# how many of them were non-linear (longer than the part the program could read directly), and the mean whole
# length against the mean linear part. Expect TC to be given the generator's frames as they travel, and the XDP
# hooks the same frames whole: a non-linear frame there would mean the kernel did not copy it.

# %% tags=["linear"]
print(df.attrs["linearity"])
shapes(df)

# %% [markdown]
# ## What this run measured
#
# `findings(df)` puts the summary in words, each figure computed from this run (the machine's kernel and CPU count
# from `df.attrs`):

# %% tags=["findings"]
print(findings(df))

# %% [markdown]
# ### Reading the numbers
#
# * **Dropping anywhere is much cheaper than not dropping** (`none`): a datagram that climbs to UDP costs a socket
#   lookup and an ICMP "port unreachable" attempt.
# * **Between the hooks, look at the spread before the medians.** Most of the cost per frame is the sender's own —
#   trafgen's packet socket and the veth transmit path, paid before any hook runs — so the hooks differ by a
#   fraction of the total, and a machine that other work shares (or a virtual machine) adds noise of the same
#   size. The BPF programs
#   themselves take tens of nanoseconds (`bpf_ns_per_run`) out of a few microseconds per frame; the TC one a bit more,
#   because it first pulls the headers into the linear part of the `sk_buff`.
# * **Why XDP cannot shine on veth.** On a veth pair the `sk_buff` already exists before the receiver sees the
#   frame: the sender built it. Generic XDP runs on that `sk_buff` (linearising it first); "native" XDP on veth
#   even converts it into an XDP buffer — copying it into a new page — and queues it through a ring and a NAPI
#   poll first — so native XDP on veth coming out no cheaper (or dearer) than generic XDP or TC is expected, not a
#   measuring error. The thing XDP saves on real hardware — allocating and initialising an `sk_buff` for a frame
#   that will be dropped anyway — has already been paid here.
# * **On a physical NIC with a driver that supports native XDP** (mlx5, i40e, ixgbe, ice, bnxt, …) the program runs
#   in the driver's NAPI poll on the raw DMA buffer, before any `sk_buff`. The XDP paper (Høiland-Jørgensen et al.,
#   CoNEXT 2018) reports roughly 24 million drops per second on one core with native XDP — several times what the
#   same kernel reached dropping in iptables' raw table — because the later hooks pay for the
#   `sk_buff`, GRO, and (iptables) the netfilter machinery for every frame. Traffic would come from another machine
#   and arrive through hardware queues spread over CPUs (RSS), so the receiving cost would not share a CPU with the
#   sender as it does here. That is where the tutorial's claim holds.
# * The first line of the findings says how many CPUs this machine has; with few CPUs, other work on the machine,
#   or a virtual machine, treat single numbers as indications and look at the spread. When the CPU is overloaded the kernel defers receive work to `ksoftirqd`, which then competes
#   with trafgen: inside one window `dropped_pps` can lag `sent_pps`, though over the whole burst every frame sent
#   is dropped (`sent_total` = `dropped_total`). `task_ns_per_pkt` counts trafgen and `ksoftirqd` together, so it
#   stays meaningful either way.

# %% tags=["detach"]
lab.detach()
print(lab)
print("bpftool prog show, this lesson's ids:", len(programs_gone(loaded.prog_id)), "programs")
print("left behind by this notebook:", [o for o in lab_objects() if f"ebl-{os.getpid()}-" in o] or "nothing")

# %% [markdown]
# From the shell: `ebpf-lab run xdp-vs-tc --out hooks.csv` (`--set hooks=xdp-native,tc --set repeats=5`, …).

# %% [markdown]
# ## Exercises
#
# | exercise | level | what to do |
# |---|---|---|
# | [xdp-drop-big-icmp](exercises/xdp-drop-big-icmp.ipynb) | ★★ | Move the rule from TC to XDP |
# | [xdp-then-tc](exercises/xdp-then-tc.ipynb) | ★★★ | XDP runs first: drop at XDP, count what reaches TC |
#
# Open one, fill in the marked gaps, and check it from a cell (`check(...)`, at its end) or from a shell:
# `sudo .venv/bin/ebpf-lab check EXERCISE notebooks/exercises/EXERCISE.ipynb`.
