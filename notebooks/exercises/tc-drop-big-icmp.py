# ---
# jupyter:
#   ebpf_lab:
#     exercise: tc-drop-big-icmp
#     version: learner
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 04.2 · Drop only big ICMP  ★★☆
#
# *Lesson 04 — the TC classifier*
#
# The tutorial's classifier drops **every** IPv4 packet of 500 bytes or more — your video calls too.
# Make the rule precise: drop only **ICMP** packets whose frame is at least `LIMIT` bytes long; let
# everything else through (smaller ICMP, any UDP or TCP, and anything that is not IPv4 — such as ARP,
# without which the two hosts cannot even find each other).
#
# **Your task.** Write the body of `on_tc_ingress()`: parse the Ethernet header, then the IPv4 header,
# and return `TC_ACT_SHOT` for ICMP frames with `skb->len >= LIMIT`, `TC_ACT_OK` for everything else.
# `LIMIT` is set by the grader (`-D` flag), drawn afresh for every grading run: write the name, never a number.
#
# **Hints**
# - The verifier lets you read a header only after you have shown that it ends before `data_end`:
#   `if ((void *)(ip + 1) > data_end) return TC_ACT_OK;`
# - `eth->h_proto` is in network byte order: compare it with `bpf_htons(ETH_P_IP)`.
# - `ip->protocol == IPPROTO_ICMP`.
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

int on_tc_ingress(struct __sk_buff *skb)
{
    void *data = (void *)(long)skb->data;
    void *data_end = (void *)(long)skb->data_end;

    // YOUR CODE HERE
    return TC_ACT_OK;
}
"""

# %% [markdown]
# ## Check your answer
#
# Run the cell below. It builds a fresh lab network (two network namespaces and a veth pair — never
# your machine's interfaces), attaches your program on the receiver's side, sends real pings, UDP
# datagrams and a TCP connection across, compares what arrived with what should have, and removes the network. `.data` of
# the last report (with `.data`, what your code produced) is `ebpf_lab.classroom.last_report()`. From a terminal:
# `sudo ebpf-lab check tc-drop-big-icmp notebooks/exercises/tc-drop-big-icmp.ipynb`.

# %% nbgrader={"grade": true, "grade_id": "check-tc-drop-big-icmp", "locked": true, "points": 7, "schema_version": 3, "solution": false, "task": false} tags=["check-tc-drop-big-icmp"]
"""Checks tc-drop-big-icmp: PROGRAM passes the verifier at TC ingress of a lab network; pings in frames of
LIMIT bytes or more are dropped (LIMIT-1 passes), smaller pings, ARP and UDP of any size get through."""
check("tc-drop-big-icmp", globals())
