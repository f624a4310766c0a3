# ---
# jupyter:
#   ebpf_lab:
#     exercise: xdp-drop-big-icmp
#     version: learner
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 05.1 · Move the rule from TC to XDP  ★★☆
#
# *Lesson 05 — XDP vs TC vs iptables*
#
# XDP runs earlier than TC: with a NIC driver that supports native XDP, before the kernel has built an
# `sk_buff` at all — which is why a drop there can be cheaper (lesson 05 measured it on a veth, where the
# sender has already built one). Move the rule of exercise 04.2 to XDP: drop **ICMP** frames of at least
# `LIMIT` bytes, pass everything else.
#
# **Your task.** Write the body of `on_xdp()`. At XDP there is no `skb`: the context is a `struct xdp_md`
# with `data` and `data_end`, the frame's length is `data_end - data`, and the verdicts are `XDP_PASS` and
# `XDP_DROP`. The grader attaches your program in XDP *generic* mode on the lab network's receiver
# (generic XDP linearises the frame first, so `data`…`data_end` holds all of it).
#
# **Hints**
# - The same bounds checks as at TC: `if ((void *)(ip + 1) > data_end) return XDP_PASS;`
# - Careful with the verdicts: `TC_ACT_SHOT` is 2, which at XDP means `XDP_PASS`.
# - The length of a frame counts every header: 14 (Ethernet) + 20 (IPv4) + 8 (ICMP) + the ping's payload.
# At TC it is `skb->len`; at XDP it is `data_end - data`.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false} tags=["setup"]
from ebpf_lab.grading import check

# %% nbgrader={"grade": false, "grade_id": "answer-bpf", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["answer-bpf"]
PROGRAM = r"""
#include <uapi/linux/bpf.h>
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
#include <uapi/linux/in.h>
#include <uapi/linux/pkt_cls.h>

int on_xdp(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;

    // YOUR CODE HERE
    return XDP_PASS;
}
"""

# %% [markdown]
# ## Check your answer
#
# Run the cell below. It builds a fresh lab network (two network namespaces and a veth pair — never
# your machine's interfaces), attaches your program on the receiver's side, sends real pings, UDP
# datagrams and a TCP connection across, compares what arrived with what should have, and removes the network. `.data` of
# the last report (with `.data`, what your code produced) is `ebpf_lab.classroom.last_report()`. From a terminal:
# `sudo ebpf-lab check xdp-drop-big-icmp notebooks/exercises/xdp-drop-big-icmp.ipynb`.

# %% nbgrader={"grade": true, "grade_id": "check-xdp-drop-big-icmp", "locked": true, "points": 7, "schema_version": 3, "solution": false, "task": false} tags=["check-xdp-drop-big-icmp"]
"""Checks xdp-drop-big-icmp: PROGRAM passes the verifier and attaches at XDP (generic) on a lab network; pings
in frames of LIMIT bytes or more are dropped (LIMIT-1 passes), smaller pings, ARP and UDP get through."""
check("xdp-drop-big-icmp", globals())
